"""Evaluating a graph on many examples: scores, feedback, traces, cost and time."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semgrad._sync import run_sync
from semgrad.atomic import atomic_open
from semgrad.data.example import Example
from semgrad.evaluation.metrics import Metric, Score, note_truncation
from semgrad.evaluation.resolve import MetricLike, resolve_metric, score_output
from semgrad.execution.context import RunContext
from semgrad.execution.executor import forward_many
from semgrad.execution.trace import Trace
from semgrad.graph.core import Graph
from semgrad.llm.meter import Meter, MeterSnapshot

__all__ = ["EvalResult", "ExampleResult", "aevaluate", "evaluate", "write_jsonl"]


@dataclass(frozen=True)
class ExampleResult:
    example: Example
    trace: Trace
    score: Score

    @property
    def error(self) -> str | None:
        return self.trace.error

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.example.id,
            "inputs": dict(self.example.inputs),
            "target": self.example.target,
            "output": self.trace.output,
            "prediction": self.score.prediction,
            "score": self.score.value,
            "feedback": self.score.feedback,
            "error": self.trace.error,
            "trace": self.trace.to_dict(),
        }


@dataclass(frozen=True)
class EvalResult:
    results: tuple[ExampleResult, ...]
    wall_s: float
    usage: MeterSnapshot | None = None

    @property
    def n(self) -> int:
        return len(self.results)

    @property
    def score(self) -> float:
        """Mean score; a failed example counts as 0 and is also counted in `errors`."""
        return sum(r.score.value for r in self.results) / self.n if self.n else 0.0

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r.error is not None)

    @property
    def truncated(self) -> int:
        """Examples where some reply was cut off at max_tokens (see `NodeTrace.truncated`)."""
        return sum(1 for r in self.results if r.trace.truncated)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "n": self.n,
            "score": self.score,
            "errors": self.errors,
            "truncated": self.truncated,
            "wall_s": round(self.wall_s, 3),
        }
        if self.usage is not None:
            out["usage"] = (
                self.usage.total().to_dict() if hasattr(self.usage.total(), "to_dict") else None
            )
        return out


async def _score(metric: Metric, trace: Trace, example: Example, ctx: RunContext) -> Score:
    if trace.output is None:
        score = Score(value=0.0, feedback=f"The system failed: {trace.error}", prediction="")
    else:
        score = await score_output(metric, trace.output, example, ctx)
    cut_off = [(n.node, n.usage.completion_tokens) for n in trace.truncated]
    return note_truncation(score, cut_off, trace.output_node)


async def aevaluate(
    graph: Graph,
    examples: Sequence[Example],
    metric: MetricLike,
    ctx: RunContext,
    *,
    meter: Meter | None = None,
    on_result: Callable[[ExampleResult], None] | None = None,
) -> EvalResult:
    """Run and score every example concurrently; results come back in input order.

    `metric` may be anything `resolve_metric` takes (a name, ``module:function``, a
    function returning a bool, a number or a `Score`); an async metric (the LLM judge) is
    awaited with `ctx`.
    """
    resolved = resolve_metric(metric)
    before = meter.snapshot() if meter is not None else None
    t0 = time.perf_counter()
    scored: dict[int, ExampleResult] = {}

    async def done(i: int, trace: Trace) -> None:
        # Score as each example finishes, so progress shows the running score.
        score = await _score(resolved, trace, examples[i], ctx)
        scored[i] = ExampleResult(examples[i], trace, score)
        if on_result is not None:
            on_result(scored[i])

    await forward_many(graph, examples, ctx, on_trace=done)
    results = tuple(scored[i] for i in range(len(examples)))
    usage = None
    if meter is not None and before is not None:
        usage = meter.snapshot() - before
    return EvalResult(results=results, wall_s=time.perf_counter() - t0, usage=usage)


def evaluate(
    graph: Graph,
    examples: Sequence[Example],
    metric: MetricLike,
    ctx: RunContext,
    *,
    meter: Meter | None = None,
    on_result: Callable[[ExampleResult], None] | None = None,
) -> EvalResult:
    """The sync door to `aevaluate`; works inside a running event loop too (`run_sync`)."""
    return run_sync(aevaluate(graph, examples, metric, ctx, meter=meter, on_result=on_result))


def write_jsonl(path: str | Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write JSON lines atomically: a crash leaves the old file or the new one, never half."""
    with atomic_open(path) as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
