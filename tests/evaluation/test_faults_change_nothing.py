"""Faults change nothing: an evaluation behind 20 % injected faults (truncated JSON, garbage,
an empty body, 500, 503, 429) gives the same per-example results as a fault-free one, with
the faults visible only as retries; at a fault rate the retries cannot absorb, examples
are errors, never wrong answers."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

import pytest

from semgrad.data.example import Example
from semgrad.evaluation.evaluator import evaluate, is_error
from semgrad.evaluation.metrics import NumericMatch
from semgrad.execution import RunContext
from semgrad.graph import hint_graph
from semgrad.llm import FakeOpenAIServer, Meter, OpenAICompatible, RetryPolicy
from semgrad.llm.fakes import ScriptedFailure
from semgrad.llm.stack import build_llm

FAULTS: list[ScriptedFailure] = [
    (200, {}, '{"choices": [{"message": {"content": "Answ'),  # truncated JSON
    (200, {}, "<html><body>502 bad gateway</body></html>"),  # garbage
    (200, {}, ""),  # an empty body
    (200, {}, '{"choices": []}'),  # JSON, but no completion
    (500, {}),
    (503, {}),
    (429, {"Retry-After": "0"}),
]
EXAMPLES = [Example(f"q{i}", {"question": f"What is {i} + {i}?"}, str(2 * i)) for i in range(12)]


def _answer(body: Mapping[str, Any]) -> str:
    """A deterministic model: right for even questions, wrong for odd ones."""
    text = str(body["messages"][-1]["content"])
    i = int(re.findall(r"What is (\d+)", text)[0])
    return f"Answer: {2 * i if i % 2 == 0 else i}"


def _evaluate(fault_rate: float, seed: int, attempts: int = 8) -> tuple[list[Any], int, int]:
    rng = random.Random(seed)
    server = FakeOpenAIServer(reply=lambda body: reply(body))

    def reply(body: Mapping[str, Any]) -> str:
        if rng.random() < fault_rate:
            server.fail_next(rng.choice(FAULTS))  # the next request to arrive gets it
        return _answer(body)

    meter = Meter()
    with server:
        policy = RetryPolicy(max_attempts=attempts, base_delay=0, jitter=0)
        llm = build_llm(OpenAICompatible(server.base_url, "m"), retry=policy, meter=meter)
        ctx = RunContext(llms={"forward": llm}, max_concurrency=4)
        result = evaluate(hint_graph(2), EXAMPLES, NumericMatch(), ctx, meter=meter)
    rows = [(r.example.id, r.trace.output, r.score.value, is_error(r)) for r in result.results]
    return rows, result.errors, meter.snapshot().total().retries


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twenty_percent_faults_give_the_same_per_example_results(seed: int) -> None:
    clean, clean_errors, clean_retries = _evaluate(0.0, seed)
    faulty, errors, retries = _evaluate(0.2, seed)
    assert clean_errors == errors == 0 and clean_retries == 0
    assert faulty == clean
    assert retries > 0  # the faults happened and were absorbed


def test_faults_beyond_the_retries_are_errors_never_wrong_answers() -> None:
    clean, _, _ = _evaluate(0.0, 0)
    faulty, errors, _ = _evaluate(0.6, 0, attempts=1)
    assert errors > 0
    for (id_, output, score, errored), (_, clean_output, clean_score, _) in zip(
        faulty, clean, strict=True
    ):
        assert errored or (output, score) == (clean_output, clean_score), id_
