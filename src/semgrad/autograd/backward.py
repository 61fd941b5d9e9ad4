"""Semantic backpropagation over a recorded forward trace (ALGORITHMS.md §2).

The traversal is the generic part: reverse topological order by dependency counting, a
node's gradient complete once each of its successors has sent its message, independent
backward calls run concurrently. The local rules are small:

- an LLM node w with node inputs sends one message to each of them. In ``neighbors`` mode
  (the paper's rule, default) that is **one** call showing all of w's inputs side by side,
  so the backward model can say which input helped and which misled; in ``independent``
  mode (TextGrad-style ablation) one call per input, which sees no sibling;
- a function node passes its gradient through to each node input unchanged;
- graph inputs (the query) are sources: they receive no gradient.

Messages arriving at a node are aggregated in successor order, stripped, de-duplicated
and emptied of blanks (`aggregate`). A reply without a block for some input gives that
input an empty message, recorded on the call, never an exception.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from semgrad.execution.context import RunContext
from semgrad.execution.executor import is_fatal
from semgrad.execution.trace import Trace
from semgrad.graph.core import Graph, LLMNode
from semgrad.llm.types import Message, Request
from semgrad.prompts import render_backward_independent, render_backward_neighbors

__all__ = [
    "BackwardCall",
    "BackwardMode",
    "BackwardResult",
    "aggregate",
    "backward",
    "parameter_gradients",
    "parse_feedback",
]

BackwardMode = Literal["neighbors", "independent"]


@dataclass(frozen=True)
class BackwardCall:
    """One backward-model call: which successor, which inputs it judged, what came back."""

    successor: str
    inputs: tuple[str, ...]
    prompt: tuple[Message, ...]
    raw: str | None
    messages: dict[str, str]
    missing: tuple[str, ...]
    cached: bool = False
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "successor": self.successor,
            "inputs": list(self.inputs),
            "prompt": [{"role": m.role, "content": m.content} for m in self.prompt],
            "raw": self.raw,
            "messages": self.messages,
            "missing": list(self.missing),
            "cached": self.cached,
            "error": self.error,
        }


@dataclass
class BackwardResult:
    example_id: str
    mode: BackwardMode
    calls: list[BackwardCall] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "mode": self.mode,
            "calls": [c.to_dict() for c in self.calls],
        }


def parse_feedback(reply: str, n: int) -> dict[int, str]:
    """The ``<feedback_i>`` blocks of a reply, by index 1..n; missing blocks are absent.

    A block ends at its own closing tag, or, when a small model forgets it, at the next
    opening tag or the end of the reply. The index is matched exactly: ``<feedback_1>``
    never matches ``<feedback_10>``.
    """
    found: dict[int, str] = {}
    for i in range(1, n + 1):
        m = re.search(
            rf"<feedback_{i}>(.*?)(?:</feedback_{i}>|(?=<feedback_\d+>)|\Z)", reply, re.DOTALL
        )
        if m is not None:
            text = m.group(1).strip()
            if text:
                found[i] = text
    return found


def aggregate(messages: Iterable[str]) -> list[str]:
    """A_v: messages in the order given, stripped, without blanks and exact duplicates."""
    seen: dict[str, None] = {}
    for msg in messages:
        text = msg.strip()
        if text and text not in seen:
            seen[text] = None
    return list(seen)


async def backward(
    graph: Graph,
    trace: Trace,
    feedback: str,
    ctx: RunContext,
    *,
    mode: BackwardMode = "neighbors",
    llm_role: str = "backward",
) -> BackwardResult:
    """Fill ``trace.nodes[n].grad`` for every node, seeded with the metric's feedback.

    Uses the model under `llm_role` of the context (the phase tag is ``backward``).
    """
    if mode not in ("neighbors", "independent"):
        raise ValueError(f"mode must be 'neighbors' or 'independent', got {mode!r}")
    ctx = ctx.with_phase("backward")
    result = BackwardResult(example_id=trace.example_id, mode=mode)
    position = {n: i for i, n in enumerate(graph.order)}
    successors = graph.successors_map()
    pending = {n: len(successors[n]) for n in graph.nodes}
    inbox: dict[str, list[tuple[int, int, str]]] = {n: [] for n in graph.nodes}
    for rec in trace.nodes.values():
        rec.grad = []

    async def visit(w: str) -> None:
        sent = await _local_backward(graph, trace, w, ctx, mode, llm_role, result)
        for k, (v, text) in enumerate(sent):
            inbox[v].append((position[w], k, text))

    running: dict[asyncio.Task[None], str] = {}

    def start(w: str) -> None:
        seed = [feedback] if w == graph.output else []
        trace.nodes[w].grad = aggregate([*seed, *(text for _, _, text in sorted(inbox[w]))])
        running[asyncio.create_task(visit(w))] = w

    for name in reversed(graph.order):
        if pending[name] == 0:
            start(name)
    try:
        while running:
            done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                w = running.pop(task)
                task.result()
                for v in graph.nodes[w].inputs:
                    if v in graph.nodes:
                        pending[v] -= 1
                        if pending[v] == 0:
                            start(v)
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return result


async def _local_backward(
    graph: Graph,
    trace: Trace,
    w: str,
    ctx: RunContext,
    mode: BackwardMode,
    llm_role: str,
    result: BackwardResult,
) -> list[tuple[str, str]]:
    """The messages node `w` sends to its node inputs, as (input, text) in input order."""
    node = graph.nodes[w]
    rec = trace.nodes[w]
    targets = [r for r in node.inputs if r in graph.nodes]
    if not targets or not rec.grad or rec.value is None:
        return []  # nothing to send: no node inputs, no gradient, or the node never ran
    if not isinstance(node, LLMNode):
        # A function is not differentiated by a model: its gradient passes through.
        return [(v, g) for v in targets for g in rec.grad]
    graph_inputs = {r: rec.inputs[r] for r in node.inputs if r in graph.inputs}
    if mode == "neighbors":
        prompt = render_backward_neighbors(
            node.instruction.value,
            graph_inputs,
            [(v, rec.inputs[v]) for v in targets],
            rec.value,
            rec.grad,
        )
        call = await _call(ctx, llm_role, w, targets, prompt)
        result.calls.append(call)
        return [(v, call.messages[v]) for v in targets if v in call.messages]
    prompts = [
        render_backward_independent(
            node.instruction.value, graph_inputs, rec.inputs[v], rec.value, rec.grad
        )
        for v in targets
    ]
    calls = await asyncio.gather(
        *(_call(ctx, llm_role, w, [v], p) for v, p in zip(targets, prompts, strict=True))
    )
    result.calls.extend(calls)
    return [(v, c.messages[v]) for v, c in zip(targets, calls, strict=True) if v in c.messages]


async def _call(
    ctx: RunContext,
    llm_role: str,
    successor: str,
    targets: Sequence[str],
    prompt: tuple[Message, ...],
) -> BackwardCall:
    request = Request(
        messages=prompt,
        temperature=0.0,
        max_tokens=160 * len(targets) + 64,
        seed=ctx.seed,
        node=successor,
        phase="backward",
    )
    try:
        async with ctx.semaphore():
            response = await ctx.llm(llm_role).complete(request)
    except Exception as exc:
        if is_fatal(exc):
            raise
        return BackwardCall(
            successor,
            tuple(targets),
            prompt,
            None,
            {},
            tuple(targets),
            error=f"{type(exc).__name__}: {exc}",
        )
    parsed = parse_feedback(response.text, len(targets))
    messages = {v: parsed[i] for i, v in enumerate(targets, start=1) if i in parsed}
    missing = tuple(v for v in targets if v not in messages)
    return BackwardCall(
        successor, tuple(targets), prompt, response.text, messages, missing, cached=response.cached
    )


def parameter_gradients(graph: Graph, traces: Sequence[Trace]) -> None:
    """Set each trainable parameter's ``.grad`` from its node's output gradients.

    The explicit parameter gradient, for inspection and reports: the messages its node
    received over the batch, in example order, de-duplicated. No model call is made; the
    optimizer turns (inputs, output, gradient) triples into an update in one fused call.
    """
    for name, param in graph.named_parameters():
        node_name = name.rsplit(".", 1)[0]
        if param.requires_grad:
            param.grad = aggregate(g for t in traces for g in t.nodes[node_name].grad)
