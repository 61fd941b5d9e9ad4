"""The sync doors work inside a running event loop (a notebook cell), and function nodes
may be `async def`."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import semgrad as sg
from semgrad._sync import run_sync
from semgrad.llm.fakes import ScriptedLLM


def _graph() -> sg.Graph:
    return sg.Graph(
        ["question"],
        [
            sg.LLMNode("solve", ("question",), sg.Parameter("Solve it.")),
            sg.FunctionNode("answer", ("solve",), "last_number"),
        ],
        "answer",
    )


def _ctx() -> sg.RunContext:
    return sg.RunContext(llms={"forward": ScriptedLLM(lambda _r: "so the answer is 7")})


def test_run_sync_without_a_loop_uses_this_thread() -> None:
    async def where() -> str:
        return threading.current_thread().name

    assert run_sync(where()) == threading.current_thread().name


def test_run_sync_inside_a_running_loop_uses_a_fresh_loop() -> None:
    async def inner() -> int:
        await asyncio.sleep(0)
        return 42

    async def cell() -> tuple[int, asyncio.AbstractEventLoop]:
        return run_sync(inner()), asyncio.get_running_loop()

    value, _outer = asyncio.run(cell())
    assert value == 42


def test_run_sync_reraises_the_coroutines_error() -> None:
    async def boom() -> None:
        raise sg.SemgradError("bad")

    async def cell() -> None:
        run_sync(boom())

    with pytest.raises(sg.SemgradError, match="bad"):
        asyncio.run(cell())


def test_run_and_evaluate_from_inside_a_running_loop() -> None:
    """What a Jupyter cell does: call the sync entry points while a loop is running."""
    examples = [sg.Example(id=str(i), inputs={"question": "3+4?"}, target="7") for i in range(3)]

    async def notebook_cell() -> tuple[sg.Trace, sg.EvalResult]:
        trace = sg.run(_graph(), {"question": "3+4?"}, _ctx())
        result = sg.evaluate(_graph(), examples, sg.metric_for("numeric"), _ctx())
        return trace, result

    trace, result = asyncio.run(notebook_cell())
    assert trace.output == "7"
    assert result.score == 1.0


@pytest.fixture
def async_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "my_async_tools.py").write_text(
        "import asyncio\n"
        "async def shout(inputs):\n"
        "    await asyncio.sleep(0)\n"
        "    return next(iter(inputs.values())).upper()\n"
        "async def broken(inputs):\n"
        "    raise ValueError('no luck')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_async_tools"
    sys.modules.pop("my_async_tools", None)


def test_async_function_node_is_awaited(async_module: str) -> None:
    graph = sg.Graph(
        ["question"],
        [sg.FunctionNode("loud", ("question",), f"{async_module}:shout")],
        "loud",
    )
    trace = sg.run(graph, {"question": "hi"}, _ctx())
    assert trace.output == "HI"


def test_async_function_node_failure_is_recorded(async_module: str) -> None:
    graph = sg.Graph(
        ["question"],
        [sg.FunctionNode("bad", ("question",), f"{async_module}:broken")],
        "bad",
    )
    trace = asyncio.run(sg.forward(graph, {"question": "hi"}, _ctx()))
    assert trace.output is None
    assert "ValueError: no luck" in (trace.nodes["bad"].error or "")


def test_a_full_client_stack_twice_in_one_notebook_loop(tmp_path: Path) -> None:
    """Cache, limiter, retries and an HTTP client, called from a running loop twice (the
    second time from the cache), and once more outside it."""
    from semgrad.llm.fakes import FakeOpenAIServer

    examples = [sg.Example(id=str(i), inputs={"question": f"{i}+1?"}, target="7") for i in range(4)]
    with FakeOpenAIServer(reply=lambda _body: "the answer is 7") as server:
        meter = sg.Meter()
        llm = sg.build_llm(
            sg.OpenAICompatible(server.base_url, "fake-model"),
            cache=sg.Cache(tmp_path / "cache.sqlite"),
            meter=meter,
            max_concurrency=2,
        )
        ctx = sg.RunContext(llms={"forward": llm})

        async def cell() -> list[float]:
            return [sg.evaluate(_graph(), examples, "numeric", ctx).score for _ in range(2)]

        assert asyncio.run(cell()) == [1.0, 1.0]
        assert sg.evaluate(_graph(), examples, "numeric", ctx).score == 1.0
        assert server.request_count == 4
        assert meter.snapshot().total().cache_hits == 8
