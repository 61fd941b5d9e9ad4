"""Meter and MeteredLLM: spend per node and phase, cache hits, errors, snapshots."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from semgrad.errors import LLMHTTPError
from semgrad.llm import (
    PHASES,
    Cache,
    CachedLLM,
    EchoLLM,
    Meter,
    MeteredLLM,
    Request,
    Response,
    ScriptedLLM,
    Spend,
)


def _ask(llm: MeteredLLM, *requests: Request) -> list[Response]:
    async def run() -> list[Response]:
        return list(await asyncio.gather(*(llm.complete(r) for r in requests)))

    return asyncio.run(run())


def test_rows_per_node_and_phase_in_a_fixed_order() -> None:
    meter = Meter()
    llm = MeteredLLM(EchoLLM(), meter)
    _ask(
        llm,
        Request.chat("three word question", node="b", phase="evaluation"),
        Request.chat("one", node="b", phase="forward"),
        Request.chat("two words", node="a", phase="backward"),
        Request.chat("again two", node="a", phase="backward"),
    )
    snapshot = meter.snapshot()
    assert [(row.node, row.phase) for row in snapshot.rows] == [
        ("a", "backward"),
        ("b", "forward"),
        ("b", "evaluation"),
    ]
    assert snapshot.row("a", "backward") == Spend(
        requests=2, calls=2, prompt_tokens=4, completion_tokens=4
    )
    assert snapshot.row("b", "evaluation").total_tokens == 6
    assert snapshot.row("nobody", "forward") == Spend()
    assert snapshot.total().calls == 4
    assert list(snapshot.by_phase()) == list(PHASES)
    assert snapshot.by_phase()["optimizer"] == Spend()
    assert snapshot.by_phase()["backward"].calls == 2
    assert list(snapshot.by_node()) == ["a", "b"]
    assert snapshot.by_node()["b"].requests == 2


def test_cache_hits_count_as_requests_but_not_calls(tmp_path: Path) -> None:
    meter = Meter()
    with Cache(tmp_path / "c.sqlite") as cache:
        llm = MeteredLLM(CachedLLM(EchoLLM(), cache), meter)
        request = Request.chat("four words of prompt", node="n")
        _ask(llm, request)
        _ask(llm, request)
        _ask(llm, request)
    spend = meter.snapshot().row("n", "forward")
    assert (spend.requests, spend.cache_hits, spend.calls) == (3, 2, 1)
    assert (spend.prompt_tokens, spend.completion_tokens) == (4, 4)  # only the real call
    assert (spend.cached_prompt_tokens, spend.cached_completion_tokens) == (8, 8)  # saved


def test_errors_are_counted_and_raised() -> None:
    meter = Meter()
    llm = MeteredLLM(ScriptedLLM([LLMHTTPError(500, "boom"), "fine"]), meter)
    with pytest.raises(LLMHTTPError):
        _ask(llm, Request.chat("x", node="n"))
    _ask(llm, Request.chat("x", node="n"))
    spend = meter.snapshot().row("n", "forward")
    assert (spend.requests, spend.errors, spend.calls) == (2, 1, 1)


def test_snapshot_difference_is_the_spend_in_between() -> None:
    meter = Meter()
    llm = MeteredLLM(EchoLLM(), meter)
    _ask(llm, Request.chat("a b", node="x"), Request.chat("c", node="y"))
    before = meter.snapshot()
    _ask(llm, Request.chat("d e f", node="y"), Request.chat("g", node="z", phase="optimizer"))
    delta = meter.snapshot() - before
    assert [(row.node, row.phase) for row in delta.rows] == [("y", "forward"), ("z", "optimizer")]
    assert delta.row("y", "forward") == Spend(
        requests=1, calls=1, prompt_tokens=3, completion_tokens=3
    )
    assert delta.total().calls == 2
    assert (before - before).rows == ()
    # Snapshots are frozen copies: later spend does not change them.
    assert before.total().calls == 2


def test_to_dict_is_json_and_complete() -> None:
    meter = Meter()
    _ask(MeteredLLM(EchoLLM(), meter), Request.chat("hi there", node="n", phase="backward"))
    data = json.loads(json.dumps(meter.snapshot().to_dict()))
    assert data["rows"] == [
        {
            "node": "n",
            "phase": "backward",
            "requests": 1,
            "cache_hits": 0,
            "calls": 1,
            "prompt_tokens": 2,
            "completion_tokens": 2,
            "cached_prompt_tokens": 0,
            "cached_completion_tokens": 0,
            "errors": 0,
            "retries": 0,
        }
    ]
    assert data["total"]["calls"] == 1
    assert list(data["by_phase"]) == list(PHASES)
    assert data["by_node"]["n"]["prompt_tokens"] == 2


def test_exact_counts_under_many_concurrent_requests() -> None:
    meter = Meter()
    llm = MeteredLLM(EchoLLM(delay=0.001), meter)
    requests = [
        Request.chat(f"q {i}", node=f"node{i % 3}", phase=PHASES[i % 4]) for i in range(240)
    ]
    _ask(llm, *requests)
    snapshot = meter.snapshot()
    assert snapshot.total() == Spend(
        requests=240, calls=240, prompt_tokens=480, completion_tokens=480
    )
    assert all(row.spend.requests == 20 for row in snapshot.rows)  # 3 nodes x 4 phases


def test_metered_llm_delegates_the_model_name() -> None:
    assert MeteredLLM(EchoLLM(model="tiny"), Meter()).model == "tiny"
