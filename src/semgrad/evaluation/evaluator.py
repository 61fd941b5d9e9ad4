"""Evaluating a graph on many examples: scores, feedback, traces, cost and time.

An example is either *scored* (the graph produced an output, or a function node found no
answer in the model's reply: a wrong answer, score 0) or an *error*: a model call failed
even after its retries (server faults, timeouts, a reply that was never a completion). An
error says nothing about the graph, so it is counted and shown apart (`EvalResult.errors`,
`first_error`), never learned from (`is_error` keeps it out of training batches), and the
CLI exits non-zero when the error rate is above what the user allows.
"""

from __future__ import annotations

import json
import time
from collections import Counter
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

__all__ = [
    "EvalResult",
    "ExampleResult",
    "aevaluate",
    "evaluate",
    "failed_call",
    "is_error",
    "write_jsonl",
]


def failed_call(trace: Trace) -> str | None:
    """``"node 'x': <error>"`` for the first model call in `trace` that failed (after its
    retries), or None when every call returned a reply.

    A node that got a reply and then failed (an empty reply, a function that found no number
    in it) is not a failed call: that is what the model answered, scored as a wrong answer.
    """
    for rec in trace.nodes.values():
        called = rec.kind == "llm" and rec.error is not None and rec.raw is None
        if called and rec.error is not None and not rec.error.startswith("skipped"):
            return f"node {rec.node!r}: {rec.error}"
    return None


def is_error(result: ExampleResult) -> bool:
    """True when a model call of this example failed: an error, not a wrong answer. Such an
    example must not be picked as a training mistake nor counted as a wrong answer."""
    return result.failed_call is not None


@dataclass(frozen=True)
class ExampleResult:
    example: Example
    trace: Trace
    score: Score

    @property
    def error(self) -> str | None:
        """Why the graph produced no output (a failed call or a node failing on a reply)."""
        return self.trace.error

    @property
    def failed_call(self) -> str | None:
        """The first model call that failed after its retries; see `failed_call`."""
        return failed_call(self.trace)

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
            "errored": is_error(self),
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
        """Mean score over all examples; an errored example counts as 0 here, so check
        `errors` (or `error_rate`) before trusting it."""
        return sum(r.score.value for r in self.results) / self.n if self.n else 0.0

    @property
    def errors(self) -> int:
        """Examples with a failed model call (`is_error`), not wrong answers."""
        return sum(1 for r in self.results if is_error(r))

    @property
    def error_rate(self) -> float:
        return self.errors / self.n if self.n else 0.0

    @property
    def first_error(self) -> ExampleResult | None:
        """The first errored example in input order, to show the user what went wrong."""
        return next((r for r in self.results if is_error(r)), None)

    @property
    def truncated(self) -> int:
        """Examples where some reply was cut off at max_tokens (see `NodeTrace.truncated`)."""
        return sum(1 for r in self.results if r.trace.truncated)

    def truncated_by_node(self) -> dict[str, int]:
        """Per node, the examples whose reply from it was cut off at max_tokens (nodes in
        the order they were first cut): a hint cut short is not an answer cut short."""
        return dict(Counter(n.node for r in self.results for n in r.trace.truncated))

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


async def _score(
    metric: Metric, trace: Trace, example: Example, ctx: RunContext, *, notes: bool = True
) -> Score:
    if trace.output is None:
        score = Score(value=0.0, feedback=f"The system failed: {trace.error}", prediction="")
    else:
        score = await score_output(metric, trace.output, example, ctx)
    if not notes:
        return score
    answer_from = _answer_nodes(trace)
    cut_off = [(n.node, n.usage.completion_tokens) for n in trace.truncated if n.node in answer_from]
    return note_truncation(score, cut_off, trace.output_node)


def _answer_nodes(trace: Trace) -> set[str]:
    """The nodes whose replies the answer is read from: the output node, and when that is
    a function (an answer extractor, a vote) the nodes it reads. Only their truncation can
    make the metric read an intermediate number as the answer, so only it is noted in the
    feedback; a cut-off hint is marked in its trace and counted, not blamed for the answer."""
    out = trace.nodes.get(trace.output_node)
    if out is None:
        return {trace.output_node}
    if out.kind == "function":
        return {trace.output_node, *out.inputs}
    return {trace.output_node}


async def aevaluate(
    graph: Graph,
    examples: Sequence[Example],
    metric: MetricLike,
    ctx: RunContext,
    *,
    meter: Meter | None = None,
    on_result: Callable[[ExampleResult], None] | None = None,
    truncation_notes: bool = True,
) -> EvalResult:
    """Run and score every example concurrently; results come back in input order.

    `metric` may be anything `resolve_metric` takes (a name, ``module:function``, a
    function returning a bool, a number or a `Score`); an async metric (the LLM judge) is
    awaited with `ctx`. With `truncation_notes` (the default) the feedback of an example
    whose answer was read from a reply cut off at max_tokens says so; the paper's protocol
    turns it off, to give the backward model exactly the reference feedback (the cut-off
    reply is marked in the trace either way).
    """
    resolved = resolve_metric(metric)
    before = meter.snapshot() if meter is not None else None
    t0 = time.perf_counter()
    scored: dict[int, ExampleResult] = {}

    async def done(i: int, trace: Trace) -> None:
        # Score as each example finishes, so progress shows the running score.
        score = await _score(resolved, trace, examples[i], ctx, notes=truncation_notes)
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
