"""Demonstrations for LLM nodes: harvested from successful traces, or labelled from targets.

ALGORITHMS.md §4. A node's demos are the trainable `DemoParameter` ``<node>.demos``
(`semgrad.graph.core`); this module finds candidates and picks subsets:

- `harvest(results, graph)`: every training example whose final score is 1 (and whose
  calls did not fail) gives, for each LLM node, that node's (inputs, output) in its trace
  — DSPy's BootstrapFewShot. `ateacher_results` produces those traces with the run
  context's ``teacher`` model in place of ``forward``.
- `labelled(examples, graph, metric, traces)`: when nothing succeeds yet, demos for the
  output node built from training targets written as a reply the metric scores 1
  (`semgrad.evaluation.metrics.format_target`) — DSPy's LabeledFewShot.
- `ateach(graph, results, metric, ctx)`: the ``teacher`` model answers the output node's
  prompt with the inputs the node had in each result's trace; the answers the metric
  scores 1 are demos for the output node (DSPy's BootstrapFewShot with a teacher, at the
  cost of one call per example: the forward model's hints are kept, so a demo shows what
  the node really reads).
- `DemoPool.sample(node, k, rng)`: a seeded subset, in pool order; `demo_rng` is the one
  seeding rule (``f"{seed}/{step}/demos/{node}"``); `with_demos` sets demos on a copy.

Everything here is pure except `ateacher_results` and `ateach`, which call models.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from semgrad.data.example import Example
from semgrad.errors import GraphError
from semgrad.evaluation.evaluator import ExampleResult, aevaluate, is_error
from semgrad.evaluation.metrics import Metric, format_target
from semgrad.evaluation.resolve import MetricLike, resolve_metric, score_output
from semgrad.execution.context import RunContext
from semgrad.execution.executor import run_node
from semgrad.execution.trace import NodeTrace, Trace
from semgrad.graph.core import Demo, Graph, LLMNode

__all__ = [
    "DEFAULT_MAX_DEMOS",
    "DemoPool",
    "ateach",
    "ateacher_results",
    "demo_rng",
    "harvest",
    "labelled",
    "select",
    "teacher_context",
    "with_demos",
]

DEFAULT_MAX_DEMOS = 3
"""Demos per node unless configured otherwise (ALGORITHMS.md §4)."""


@dataclass(frozen=True)
class DemoPool:
    """Candidate demos per LLM node, each node's in example order, without duplicates."""

    candidates: Mapping[str, tuple[Demo, ...]] = field(default_factory=dict)

    @property
    def nodes(self) -> tuple[str, ...]:
        """The nodes that have at least one candidate, in the pool's order."""
        return tuple(n for n, demos in self.candidates.items() if demos)

    def get(self, node: str) -> tuple[Demo, ...]:
        return self.candidates.get(node, ())

    def __len__(self) -> int:
        return sum(len(d) for d in self.candidates.values())

    def sample(self, node: str, k: int, rng: random.Random) -> tuple[Demo, ...]:
        """Up to `k` of `node`'s candidates drawn with `rng`, kept in pool order (so the
        rendered prefix does not depend on the draw order). All of them when there are at
        most `k`; none when the node has no candidates."""
        if k < 0:
            raise ValueError(f"k must be at least 0, got {k}")
        pool = self.get(node)
        if len(pool) <= k:
            return pool
        chosen = sorted(rng.sample(range(len(pool)), k))
        return tuple(pool[i] for i in chosen)

    def merge(self, other: DemoPool) -> DemoPool:
        """This pool's candidates, then `other`'s new ones, per node."""
        out = {n: list(d) for n, d in self.candidates.items()}
        for node, demos in other.candidates.items():
            out.setdefault(node, []).extend(demos)
        return DemoPool({n: _unique(d) for n, d in out.items()})


def _key(demo: Demo) -> tuple[tuple[tuple[str, str], ...], str]:
    return tuple(sorted(demo.inputs.items())), demo.output


def _unique(demos: Iterable[Demo]) -> tuple[Demo, ...]:
    seen: set[tuple[tuple[tuple[str, str], ...], str]] = set()
    out: list[Demo] = []
    for demo in demos:
        if _key(demo) not in seen:
            seen.add(_key(demo))
            out.append(demo)
    return tuple(out)


def _llm_nodes(graph: Graph) -> list[LLMNode]:
    return [n for name in graph.order if isinstance(n := graph.nodes[name], LLMNode)]


def _node_demo(node: LLMNode, trace: Trace) -> Demo | None:
    """What `node` saw and answered in `trace`, when it answered cleanly."""
    rec = trace.nodes.get(node.name)
    if rec is None or not rec.ok or rec.value is None or rec.truncated:
        return None
    if set(rec.inputs) != set(node.inputs):  # a trace of a differently wired graph
        return None
    return Demo({k: rec.inputs[k] for k in node.inputs}, rec.value)


def harvest(results: Sequence[ExampleResult], graph: Graph) -> DemoPool:
    """Candidate demos from evaluated training results (BootstrapFewShot).

    Every result whose final score is 1 gives, for each LLM node of `graph`, that node's
    inputs and output in the result's trace. Errored examples (a failed model call,
    `is_error`) never give demos, nor do nodes that failed, were skipped or were cut off
    at max_tokens. Candidates are in example order, duplicates dropped.
    """
    out: dict[str, list[Demo]] = {n.name: [] for n in _llm_nodes(graph)}
    for result in results:
        if is_error(result) or result.score.value < 1.0:
            continue
        for node in _llm_nodes(graph):
            demo = _node_demo(node, result.trace)
            if demo is not None:
                out[node.name].append(demo)
    return DemoPool({n: _unique(d) for n, d in out.items()})


def labelled(
    examples: Sequence[Example],
    graph: Graph,
    metric: Metric,
    traces: Mapping[str, Trace] | Sequence[ExampleResult] | None = None,
) -> DemoPool:
    """Demos for the output node from training targets (LabeledFewShot).

    Each demo's reply is the example's target written as the metric reads an answer
    (`format_target`); a reply the metric does not score 1 is dropped, so every labelled
    demo is a correct answer by the run's own measure. The demo's inputs are what the
    output node sees: the example's graph inputs, and for each predecessor node its output
    in a real forward trace of that example (`traces`, by example id, or evaluated
    results). An example whose predecessors have no clean output in a trace gives no
    demo: a demo shows what the node really reads, never invented hints. A graph whose
    output node is a function node gets no labelled demos (empty pool): the reply would
    be scored only after the function.
    """
    out_node = graph.nodes[graph.output]
    if not isinstance(out_node, LLMNode):
        return DemoPool({})
    by_id: dict[str, Trace] = {}
    if traces is not None:
        if isinstance(traces, Mapping):
            by_id = dict(traces)
        else:
            by_id = {r.example.id: r.trace for r in traces if not is_error(r)}
    demos: list[Demo] = []
    for example in examples:
        reply = format_target(metric, example)
        if reply is None:
            continue
        inputs = _node_inputs(out_node, graph, example, by_id.get(example.id))
        if inputs is not None:
            demos.append(Demo(inputs, reply))
    return DemoPool({out_node.name: _unique(demos)})


def _node_inputs(
    node: LLMNode, graph: Graph, example: Example, trace: Trace | None
) -> dict[str, str] | None:
    """What `node` reads for `example`: graph inputs from the example, each predecessor's
    output from `trace`; None when one is missing or did not come out cleanly."""
    inputs: dict[str, str] = {}
    for ref in node.inputs:
        if ref in graph.inputs:
            if ref not in example.inputs:
                return None
            inputs[ref] = example.inputs[ref]
            continue
        rec = None if trace is None else trace.nodes.get(ref)
        if rec is None or not rec.ok or rec.value is None:
            return None
        inputs[ref] = rec.value
    return inputs


def demo_rng(seed: int, step: int, node: str) -> random.Random:
    """The generator for one node's demo draw at one step: the same seed, step and node
    always draw the same demos, whatever else the run drew before."""
    return random.Random(f"{seed}/{step}/demos/{node}")


def select(
    pool: DemoPool, *, seed: int, step: int, k: int = DEFAULT_MAX_DEMOS
) -> dict[str, tuple[Demo, ...]]:
    """Up to `k` demos for every node of the pool, each drawn with `demo_rng`."""
    return {node: pool.sample(node, k, demo_rng(seed, step, node)) for node in pool.nodes}


def with_demos(graph: Graph, demos: Mapping[str, Sequence[Demo]]) -> Graph:
    """A copy of `graph` whose nodes named in `demos` have those demos (others unchanged)."""
    unknown = [n for n in demos if n not in graph.nodes]
    if unknown:
        raise GraphError(f"no node {unknown} in graph {graph.name!r}; it has {list(graph.nodes)}")
    out = graph.copy()
    for node, chosen in demos.items():
        out.set_demos(node, chosen)
    return out


def teacher_context(ctx: RunContext, role: str = "teacher", serves: str = "forward") -> RunContext:
    """`ctx` with its `role` model (``teacher``) answering as `serves` (``forward``): traces
    run on it are produced by the teacher, for `harvest`."""
    ctx.llm(role)  # a missing role is a ConfigError naming it
    return replace(ctx, llms={**ctx.llms, serves: ctx.llms[role]})


async def ateacher_results(
    graph: Graph,
    examples: Sequence[Example],
    metric: Metric,
    ctx: RunContext,
    *,
    role: str = "teacher",
) -> tuple[ExampleResult, ...]:
    """Run and score `examples` with the teacher as the forward model; `harvest` the
    result for demos the forward model could not have produced itself."""
    result = await aevaluate(graph, examples, metric, teacher_context(ctx, role))
    return result.results


async def ateach(
    graph: Graph,
    results: Sequence[ExampleResult],
    metric: MetricLike,
    ctx: RunContext,
    *,
    role: str = "teacher",
) -> tuple[Demo, ...]:
    """Demos for the output node answered by the `role` model (the teacher).

    For each result (an evaluated training example) whose trace reached the output node
    with clean inputs, the teacher answers the node's prompt (instruction and inputs as in
    the trace; no demos, so the answer does not depend on the current ones) in phase
    ``teacher``. An answer the metric scores 1 on the example, not cut off at max_tokens,
    is a demo: what the node read and the teacher's correct reply (`metric` is anything
    `resolve_metric` takes, scored as the evaluator scores, an async judge included). The calls run
    concurrently; a failed call gives no demo (a fatal error is raised). Empty when the
    output node is a function node.
    """
    node = graph.nodes[graph.output]
    if not isinstance(node, LLMNode):
        return ()
    bare = graph.copy()
    bare.set_demos(node.name, ())
    bare_node = bare.nodes[node.name]
    assert isinstance(bare_node, LLMNode)
    teacher_ctx = replace(teacher_context(ctx, role, serves=node.llm), phase="teacher")
    cases: list[tuple[Example, dict[str, str]]] = []
    for result in results:
        if not is_error(result):
            values = _node_inputs(node, graph, result.example, result.trace)
            if values is not None:
                cases.append((result.example, values))
    semaphore = ctx.semaphore()

    async def answer(values: Mapping[str, str]) -> NodeTrace:
        async with semaphore:
            return await run_node(bare_node, bare, values, teacher_ctx)

    replies = await asyncio.gather(*(answer(values) for _, values in cases))
    resolved = resolve_metric(metric)
    demos: list[Demo] = []
    for (example, values), rec in zip(cases, replies, strict=True):
        if not rec.ok or rec.value is None or rec.truncated:
            continue
        if (await score_output(resolved, rec.value, example, ctx)).value >= 1.0:
            demos.append(Demo(values, rec.value))
    return _unique(demos)
