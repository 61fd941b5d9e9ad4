"""LimitedLLM, and the order build_llm stacks the wrappers in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semgrad.errors import ConfigError, LLMHTTPError
from semgrad.llm import (
    LLM,
    Cache,
    CachedLLM,
    EchoLLM,
    LimitedLLM,
    Meter,
    MeteredLLM,
    Request,
    Response,
    RetryingLLM,
    RetryPolicy,
    ScriptedLLM,
    build_llm,
    find_layer,
)


def _ask_all(llm: LLM, requests: list[Request]) -> list[Response]:
    async def run() -> list[Response]:
        return list(await asyncio.gather(*(llm.complete(r) for r in requests)))

    return asyncio.run(run())


def test_never_more_than_the_bound_in_flight() -> None:
    limited = LimitedLLM(EchoLLM(delay=0.01), max_concurrency=5)
    responses = _ask_all(limited, [Request.chat(f"q{i}") for i in range(40)])
    assert [r.text for r in responses] == [f"q{i}" for i in range(40)]
    assert limited.peak_in_flight == 5  # reached, never exceeded
    assert limited.in_flight == 0


def test_a_failure_frees_its_slot() -> None:
    inner = ScriptedLLM([LLMHTTPError(500, "x")] * 3 + ["ok"], delay=0.005)
    limited = LimitedLLM(inner, max_concurrency=1)

    async def run() -> list[Response | BaseException]:
        requests = [limited.complete(Request.chat(str(i))) for i in range(4)]
        return await asyncio.gather(*requests, return_exceptions=True)

    results = asyncio.run(run())
    assert [type(r).__name__ for r in results] == ["LLMHTTPError"] * 3 + ["Response"]
    assert limited.in_flight == 0 and limited.peak_in_flight == 1


def test_works_across_event_loops() -> None:
    limited = LimitedLLM(EchoLLM(delay=0.001), max_concurrency=2)
    for _ in range(2):  # each asyncio.run is a new loop; the semaphore must follow
        _ask_all(limited, [Request.chat(str(i)) for i in range(6)])
    assert limited.peak_in_flight == 2


def test_bound_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        LimitedLLM(EchoLLM(), max_concurrency=0)


def test_build_llm_stacks_meter_cache_retry_limit(tmp_path: Path) -> None:
    meter = Meter()
    echo = EchoLLM(model="tiny", delay=0.005)
    with Cache(tmp_path / "c.sqlite") as cache:
        llm = build_llm(echo, cache=cache, max_concurrency=3, meter=meter)
        assert llm.model == "tiny"
        assert isinstance(llm, MeteredLLM)
        assert isinstance(llm.inner, CachedLLM)
        assert isinstance(llm.inner.inner, RetryingLLM)
        assert isinstance(llm.inner.inner.inner, LimitedLLM)
        assert llm.inner.inner.inner.inner is echo
        limited = find_layer(llm, LimitedLLM)
        assert limited is not None

        requests = [Request.chat(f"q{i}", node="n") for i in range(10)]
        _ask_all(llm, requests)
        assert len(echo.requests) == 10 and limited.peak_in_flight == 3

        # Every answer now comes from the cache: no model call, no slot taken.
        limited.peak_in_flight = 0
        _ask_all(llm, requests)
        assert len(echo.requests) == 10 and limited.peak_in_flight == 0
        spend = meter.snapshot().row("n", "forward")
        assert (spend.requests, spend.calls, spend.cache_hits) == (20, 10, 10)


def test_build_llm_leaves_out_what_was_not_asked_for() -> None:
    echo = EchoLLM()
    assert build_llm(echo, retry=None) is echo
    assert isinstance(build_llm(echo), RetryingLLM)
    assert find_layer(build_llm(echo), LimitedLLM) is None


def test_build_llm_counts_retries_in_the_meter() -> None:
    meter = Meter()
    inner = ScriptedLLM([LLMHTTPError(429, "slow", retry_after=0), "ok"])
    llm = build_llm(inner, retry=RetryPolicy(base_delay=0), meter=meter)
    _ask_all(llm, [Request.chat("x", node="n", phase="optimizer")])
    spend = meter.snapshot().row("n", "optimizer")
    assert (spend.requests, spend.calls, spend.retries, spend.errors) == (1, 1, 1, 0)
    retrying = find_layer(llm, RetryingLLM)
    assert retrying is not None and retrying.retries == 1
