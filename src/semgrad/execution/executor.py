"""The async executor: every node starts the moment its inputs are ready.

Scheduling is dependency counting, not polling: each node has a count of unfinished
predecessors; when a node finishes, its successors' counts drop and those reaching zero
start. A node that fails is recorded on the trace and its descendants are recorded as
skipped; the other branches still run, so a trace always shows as much as could be known.

Errors that mean the whole run cannot go on (no model, server unreachable, replay-only cache
miss, budget reached) are raised at once instead of being recorded example by example.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence

from semgrad._sync import run_sync
from semgrad.data.example import Example
from semgrad.errors import (
    BudgetExceededError,
    CacheMissError,
    GraphError,
    LLMConnectionError,
    ModelError,
    NodeError,
    RetryExhaustedError,
    UserInputError,
)
from semgrad.execution.context import RunContext
from semgrad.execution.trace import NodeTrace, Trace
from semgrad.graph.core import Demo, FunctionNode, Graph, LLMNode
from semgrad.graph.functions import resolve_function
from semgrad.llm.types import Request
from semgrad.prompts import DemoTurn, render_forward
from semgrad.telemetry import span, traced

__all__ = ["forward", "forward_many", "is_fatal", "run", "run_node"]


def is_fatal(exc: BaseException) -> bool:
    """True for errors that no other example could avoid: stop instead of recording them."""
    if isinstance(exc, RetryExhaustedError):
        return isinstance(exc.last_error, LLMConnectionError)
    return isinstance(
        exc, ModelError | LLMConnectionError | CacheMissError | BudgetExceededError | UserInputError
    )


def _check_inputs(graph: Graph, example: Example) -> None:
    missing = [name for name in graph.inputs if name not in example.inputs]
    if missing:
        raise UserInputError(
            f"example {example.id!r} has no value for graph input(s) {missing}; "
            f"it has {list(example.inputs)}. Map the data's fields to the graph's inputs "
            f"({list(graph.inputs)})."
        )


def _split(
    node: LLMNode, graph: Graph, values: Mapping[str, str]
) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A node's inputs as its prompt shows them: graph inputs by name, then hints."""
    graph_inputs = {r: values[r] for r in node.inputs if r in graph.inputs}
    hints = [(r, values[r]) for r in node.inputs if r in graph.nodes]
    return graph_inputs, hints


def _demo_inputs(node: LLMNode, demo: Demo) -> Mapping[str, str]:
    missing = [r for r in node.inputs if r not in demo.inputs]
    if missing:
        raise GraphError(
            f"node {node.name!r}: a demo lacks the node's input(s) {missing} (it has "
            f"{list(demo.inputs)}); give every demo exactly the inputs {list(node.inputs)}"
        )
    return demo.inputs


async def _run_llm_node(
    node: LLMNode, graph: Graph, values: Mapping[str, str], ctx: RunContext, rec: NodeTrace
) -> None:
    """Fill `rec` with the node's prompt and reply; a failure other examples could avoid
    is recorded in `rec.error`, a fatal one (`is_fatal`) raised."""
    try:
        await _call_llm_node(node, graph, values, ctx, rec)
    except Exception as exc:
        if is_fatal(exc):
            raise
        rec.error = f"{type(exc).__name__}: {exc}"


async def _call_llm_node(
    node: LLMNode, graph: Graph, values: Mapping[str, str], ctx: RunContext, rec: NodeTrace
) -> None:
    demos = [
        DemoTurn(*_split(node, graph, _demo_inputs(node, d)), d.output) for d in node.demos.value
    ]
    rec.prompt = render_forward(node.instruction.value, *_split(node, graph, values), demos)
    request = Request(
        messages=rec.prompt,
        temperature=node.temperature,
        max_tokens=node.max_tokens,
        seed=ctx.seed,
        node=node.name,
        phase=ctx.phase,
    )
    response = await ctx.llm(node.llm).complete(request)
    rec.raw = response.text
    rec.usage = response.usage
    rec.cached = response.cached
    rec.finish_reason = response.finish_reason
    text = response.text.strip()
    if not text:
        # A malformed reply is a recorded failure of this node, never a silent empty value.
        rec.error = f"the model returned an empty reply (finish_reason={response.finish_reason})"
        return
    rec.value = text


async def run_node(
    node: LLMNode, graph: Graph, values: Mapping[str, str], ctx: RunContext
) -> NodeTrace:
    """Run one LLM node of `graph` on `values` (its inputs by name: graph inputs and
    predecessors' outputs), with the prompt `forward` would send. A failure that other
    examples could avoid is recorded in the result's `error`; a fatal one is raised."""
    rec = NodeTrace(node=node.name, kind=node.kind, inputs={r: values[r] for r in node.inputs})
    await _run_llm_node(node, graph, values, ctx, rec)
    return rec


async def _run_function_node(node: FunctionNode, values: Mapping[str, str], rec: NodeTrace) -> None:
    fn = resolve_function(node.fn)
    try:
        result: object = fn({r: values[r] for r in node.inputs})
        if inspect.isawaitable(result):  # an `async def` function node is awaited
            result = await result
    except Exception as exc:  # a user's function failing is a node failure, recorded
        rec.error = f"function {node.fn!r} raised {type(exc).__name__}: {exc}"
        return
    if not isinstance(result, str):
        rec.error = f"function {node.fn!r} returned {type(result).__name__}, expected str"
        return
    rec.value = result


@traced("semgrad.forward")
async def forward(graph: Graph, example: Example | Mapping[str, str], ctx: RunContext) -> Trace:
    """Run the graph on one example and return its trace (failures recorded, not raised)."""
    if not isinstance(example, Example):
        example = Example(id="input", inputs=dict(example), target="")
    _check_inputs(graph, example)
    t0 = time.perf_counter()
    trace = Trace(
        example_id=example.id,
        inputs={k: example.inputs[k] for k in graph.inputs},
        output_node=graph.output,
    )
    for name in graph.order:  # pre-create records so the trace is in topological order
        node = graph.nodes[name]
        trace.nodes[name] = NodeTrace(node=name, kind=node.kind, inputs={})
    values: dict[str, str] = dict(trace.inputs)
    successors = graph.successors_map()
    waiting = {
        n: sum(1 for r in node.inputs if r in graph.nodes) for n, node in graph.nodes.items()
    }
    semaphore = ctx.semaphore()

    async def run_node(name: str) -> str:
        node = graph.nodes[name]
        rec = trace.nodes[name]
        rec.inputs = {r: values[r] for r in node.inputs}
        async with semaphore, span(ctx.tracer, "semgrad.node", **{"semgrad.node": name}):
            rec.start_s = time.perf_counter() - t0
            if isinstance(node, LLMNode):
                await _run_llm_node(node, graph, values, ctx, rec)
            else:
                await _run_function_node(node, values, rec)
            rec.duration_s = time.perf_counter() - t0 - rec.start_s
        return name

    running: set[asyncio.Task[str]] = set()

    def release(name: str) -> None:
        # Called when `name` is finished (done, failed or skipped): start what became ready.
        for succ in successors[name]:
            waiting[succ] -= 1
            if waiting[succ] == 0:
                failed = [
                    r for r in graph.nodes[succ].inputs if r in graph.nodes and r not in values
                ]
                if failed:
                    trace.nodes[succ].error = f"skipped: input {failed[0]!r} failed"
                    release(succ)
                else:
                    running.add(asyncio.create_task(run_node(succ)))

    for name in graph.order:
        if waiting[name] == 0:
            running.add(asyncio.create_task(run_node(name)))
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                running.discard(task)
                name = task.result()  # re-raises fatal errors
                rec = trace.nodes[name]
                if rec.value is not None and rec.error is None:
                    values[name] = rec.value
                release(name)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)

    trace.duration_s = time.perf_counter() - t0
    out = trace.nodes[graph.output]
    if out.ok:
        trace.output = out.value
    else:
        first_failure = next(
            (n for n in trace.nodes.values() if n.error and not n.error.startswith("skipped")), out
        )
        trace.error = f"node {first_failure.node!r}: {first_failure.error}"
    return trace


async def forward_many(
    graph: Graph,
    examples: Sequence[Example],
    ctx: RunContext,
    *,
    on_trace: Callable[[int, Trace], Awaitable[None] | None] | None = None,
) -> list[Trace]:
    """Run many examples concurrently under the context's limit; traces in input order.

    At most `ctx.max_concurrency` examples are in flight, so the first results arrive early
    (steady progress) while the node limit stays saturated.
    """
    gate = asyncio.Semaphore(ctx.max_concurrency)
    results: list[Trace | None] = [None] * len(examples)

    async def one(i: int, ex: Example) -> None:
        async with gate:
            trace = await forward(graph, ex, ctx)
        results[i] = trace
        if on_trace is not None:
            maybe = on_trace(i, trace)
            if maybe is not None:
                await maybe

    tasks = [asyncio.create_task(one(i, ex)) for i, ex in enumerate(examples)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return [t for t in results if t is not None]


def run(graph: Graph, inputs: Example | Mapping[str, str], ctx: RunContext) -> Trace:
    """The sync door: one forward pass; raises `NodeError` if the output could not be computed.

    Works in a script and inside a running event loop (a notebook) alike (`run_sync`).
    """
    trace = run_sync(forward(graph, inputs, ctx))
    if not trace.ok:
        failed = next(
            (n for n in trace.nodes.values() if n.error and not n.error.startswith("skipped")),
            trace.nodes[graph.output],
        )
        raise NodeError(failed.node, failed.error or "no output", trace.example_id)
    return trace
