from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import pytest

from semgrad.data.example import Example
from semgrad.errors import ConfigError, LLMConnectionError, NodeError, UserInputError
from semgrad.execution import RunContext, forward, forward_many, run
from semgrad.graph import FunctionNode, Graph, LLMNode, Parameter, hint_graph
from semgrad.llm.types import Request, Response, Usage


@dataclass
class Recorder:
    """A fake model that records timing and concurrency, and fails on demand per node."""

    delay: float = 0.0
    fail_nodes: tuple[str, ...] = ()
    empty_nodes: tuple[str, ...] = ()
    fatal: bool = False
    events: list[tuple[str, str]] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0

    @property
    def model(self) -> str:
        return "recorder"

    async def complete(self, request: Request) -> Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        self.events.append(("start", request.node))
        try:
            await asyncio.sleep(self.delay)
            if request.node in self.fail_nodes:
                if self.fatal:
                    raise LLMConnectionError("http://127.0.0.1:9", "connection refused")
                raise RuntimeError(f"boom in {request.node}")
            text = "" if request.node in self.empty_nodes else f"<{request.node}>"
            return Response(text=text, usage=Usage(10, 2))
        finally:
            self.in_flight -= 1
            self.events.append(("end", request.node))


def ctx_for(llm: Recorder, **kw: object) -> RunContext:
    return RunContext(llms={"forward": llm}, **kw)  # type: ignore[arg-type]


def test_forward_runs_in_topological_order_and_records_everything() -> None:
    llm = Recorder()
    g = hint_graph(2)
    trace = asyncio.run(forward(g, {"question": "2+2?"}, ctx_for(llm)))
    assert trace.ok and trace.output == "<final>"
    assert list(trace.nodes) == ["hint_1", "hint_2", "final"]
    final = trace.nodes["final"]
    assert final.inputs == {"question": "2+2?", "hint_1": "<hint_1>", "hint_2": "<hint_2>"}
    assert "Hint 1:\n<hint_1>" in final.prompt[0].content
    assert final.raw == "<final>" and final.usage == Usage(10, 2)
    assert trace.usage == Usage(30, 6)
    starts = [n for kind, n in llm.events if kind == "start"]
    assert starts.index("final") == 2


def test_siblings_start_together_no_polling() -> None:
    llm = Recorder(delay=0.05)
    g = hint_graph(3)
    trace = asyncio.run(forward(g, {"question": "q"}, ctx_for(llm)))
    assert llm.peak == 3  # all three hints at once
    # Two levels of 50 ms, not four sequential calls.
    assert trace.duration_s < 0.18


def test_concurrency_limit_is_respected_across_examples() -> None:
    llm = Recorder(delay=0.01)
    g = hint_graph(4)
    examples = [Example(str(i), {"question": str(i)}, "") for i in range(20)]
    traces = asyncio.run(forward_many(g, examples, ctx_for(llm, max_concurrency=3)))
    assert llm.peak <= 3
    assert [t.example_id for t in traces] == [str(i) for i in range(20)]
    assert all(t.ok for t in traces)


def test_failing_node_recorded_descendants_skipped_siblings_run() -> None:
    llm = Recorder(fail_nodes=("hint_1",))
    g = hint_graph(2)
    trace = asyncio.run(forward(g, {"question": "q"}, ctx_for(llm)))
    assert not trace.ok and trace.output is None
    assert "boom in hint_1" in (trace.nodes["hint_1"].error or "")
    assert trace.nodes["hint_2"].ok
    assert trace.nodes["final"].error == "skipped: input 'hint_1' failed"
    assert "hint_1" in (trace.error or "")
    with pytest.raises(NodeError, match="hint_1"):
        run(g, {"question": "q"}, ctx_for(Recorder(fail_nodes=("hint_1",))))


def test_empty_reply_is_a_recorded_failure_not_a_value() -> None:
    trace = asyncio.run(
        forward(hint_graph(2), {"question": "q"}, ctx_for(Recorder(empty_nodes=("final",))))
    )
    assert trace.nodes["final"].value is None
    assert "empty reply" in (trace.nodes["final"].error or "")


def test_fatal_errors_raise_instead_of_recording() -> None:
    llm = Recorder(fail_nodes=("hint_2",), fatal=True)
    with pytest.raises(LLMConnectionError):
        asyncio.run(forward(hint_graph(2), {"question": "q"}, ctx_for(llm)))


def test_function_nodes_and_their_errors() -> None:
    g = Graph(
        ["question"],
        [
            LLMNode("solve", ("question",), Parameter("solve")),
            FunctionNode("answer", ("solve",), "last_number"),
        ],
        "answer",
    )

    class Numbers(Recorder):
        async def complete(self, request: Request) -> Response:
            return Response(text="so it is 1,234 apples")

    trace = run(g, {"question": "q"}, ctx_for(Numbers()))
    assert trace.output == "1234"
    trace2 = asyncio.run(forward(g, {"question": "q"}, ctx_for(Recorder())))
    assert "no number" in (trace2.nodes["answer"].error or "")


def test_missing_input_and_missing_model_role_are_clear() -> None:
    g = hint_graph(2)
    with pytest.raises(UserInputError, match="question"):
        asyncio.run(forward(g, {"query": "q"}, ctx_for(Recorder())))
    g.nodes["final"].llm = "strong"  # type: ignore[union-attr]
    # A node asking for a model the context lacks is a configuration error: raised, not recorded.
    with pytest.raises(ConfigError, match="strong"):
        asyncio.run(forward(g, {"question": "q"}, ctx_for(Recorder())))


def test_context_validation() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        RunContext(llms={"forward": Recorder()}, max_concurrency=0)
    with pytest.raises(ConfigError):
        RunContext(llms={})
    ctx = RunContext(llms={"forward": Recorder()})
    assert ctx.with_phase("backward").semaphore is not None


# --- finish_reason on every reply ------------------------------------------------------------


def test_every_reply_records_its_finish_reason_and_a_cut_off_one_is_marked() -> None:
    from semgrad.llm.fakes import ScriptedLLM

    def reply(request: Request) -> str:
        # hint_1 rambles past its 96 tokens; the others stop on their own.
        return "step " * 200 if request.node == "hint_1" else "Answer: 4"

    llm = ScriptedLLM(reply, honour_max_tokens=True)
    g = Graph(
        ["question"],
        [
            LLMNode("hint_1", ("question",), Parameter("Hint."), max_tokens=96),
            LLMNode("final", ("question", "hint_1"), Parameter("Answer.")),
            FunctionNode("extract", ("final",), "last_number"),
        ],
        "extract",
    )
    trace = asyncio.run(forward(g, {"question": "2+2?"}, RunContext(llms={"forward": llm})))
    assert trace.ok and trace.output == "4"
    hint, final, extract = trace.nodes.values()
    assert (hint.finish_reason, hint.truncated) == ("length", True)
    assert (final.finish_reason, final.truncated) == ("stop", False)
    assert (extract.finish_reason, extract.truncated) == (None, False)  # no model reply
    assert hint.usage.completion_tokens == 96 and hint.value  # the cut reply is still used
    assert [n.node for n in trace.truncated] == ["hint_1"]
    data = trace.to_dict()
    assert data["truncated"] == ["hint_1"]
    assert data["nodes"]["hint_1"]["finish_reason"] == "length"
    assert data["nodes"]["hint_1"]["truncated"] is True
    assert data["nodes"]["final"]["finish_reason"] == "stop"
