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

Where gradients live: the trace keeps each *variable's* gradient (``trace.nodes[n].grad``,
for reports); each trainable *parameter* accumulates one `GradientEntry` per example in
``param.grad`` (the node's inputs and output on that example and the messages its output
received), which is all an optimizer reads. `backward_many` runs a batch concurrently and
accumulates in the batch's order; `final_feedback` is the no-backpropagation alternative.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from semgrad.execution.context import RunContext
from semgrad.execution.executor import is_fatal
from semgrad.execution.trace import Trace
from semgrad.graph.core import FeedbackOn, GradientEntry, Graph, LLMNode, Parameter
from semgrad.llm.types import Message, Request
from semgrad.prompts import last_block, render_backward_independent, render_backward_neighbors
from semgrad.telemetry import traced

__all__ = [
    "BackwardCall",
    "BackwardMode",
    "BackwardResult",
    "Verdict",
    "aggregate",
    "backward",
    "backward_many",
    "final_feedback",
    "gradient_messages",
    "parse_feedback",
]

BackwardMode = Literal["neighbors", "independent"]


class Verdict(Protocol):
    """What backpropagation needs of a metric's verdict on a final answer; a
    `semgrad.Score` is one. `prediction` is the answer the metric read ("" when none)."""

    @property
    def value(self) -> float: ...

    @property
    def feedback(self) -> str: ...

    @property
    def prediction(self) -> str: ...


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

    Each index is read with `semgrad.prompts.last_block`, the rule every tagged reply
    follows: the last complete block counts, so a reply that echoes the requested format
    (``<feedback_1>...</feedback_1>``) before answering is read for its answer. When a small
    model forgets a closing tag, the block ends at the next opening tag or the end of the
    reply. The index is matched exactly: ``<feedback_1>`` never matches ``<feedback_10>``.
    """
    found: dict[int, str] = {}
    for i in range(1, n + 1):
        text = last_block(reply, f"feedback_{i}", unclosed_until=r"<feedback_\d+>")
        if text is not None:
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


@traced("semgrad.backward")
async def backward(
    graph: Graph,
    trace: Trace,
    feedback: str | Verdict,
    ctx: RunContext,
    *,
    mode: BackwardMode = "neighbors",
    llm_role: str = "backward",
) -> BackwardResult:
    """Backpropagate the metric's verdict on `trace` and accumulate into the parameters.

    Seeded with `feedback` (the text, or a verdict such as a `Score`, whose value is then
    recorded on every entry), it fills ``trace.nodes[n].grad`` for every node and appends a
    `GradientEntry` to ``param.grad`` of every trainable parameter whose node ran and
    received a message. Nothing is zeroed: call ``optimizer.zero_grad()`` (or
    ``graph.zero_grad()``) before a new batch. Uses the model under `llm_role` of the
    context (phase ``backward``).
    """
    result = await _backward(graph, trace, _seed(feedback), ctx, mode, llm_role)
    _accumulate(graph, trace, feedback, "output")
    return result


@traced("semgrad.backward")
async def backward_many(
    graph: Graph,
    traces: Sequence[Trace],
    feedback: Sequence[str | Verdict],
    ctx: RunContext,
    *,
    mode: BackwardMode = "neighbors",
    llm_role: str = "backward",
) -> list[BackwardResult]:
    """`backward` over a batch, concurrently; results and each parameter's entries in the
    order of `traces`, however the calls finish (so the optimizer's prompt is reproducible)."""
    if len(traces) != len(feedback):
        raise ValueError(
            f"backward_many needs one feedback per trace: got {len(traces)} traces and "
            f"{len(feedback)} feedbacks"
        )
    results = await asyncio.gather(
        *(
            _backward(graph, t, _seed(f), ctx, mode, llm_role)
            for t, f in zip(traces, feedback, strict=True)
        )
    )
    for t, f in zip(traces, feedback, strict=True):
        _accumulate(graph, t, f, "output")
    return list(results)


def final_feedback(graph: Graph, trace: Trace, feedback: str | Verdict) -> None:
    """The no-backpropagation alternative to `backward` (the "no gradients" ablation, the
    node optimizer): no model call; the output node's gradient is the metric's feedback,
    and every trainable parameter gets an entry holding that feedback, labelled as feedback
    on the whole system's final answer (``about="final_answer"``) except for the output
    node's own parameters, whose output that answer is.
    """
    for rec in trace.nodes.values():
        rec.grad = []
    trace.nodes[graph.output].grad = aggregate([_seed(feedback)])
    _accumulate(graph, trace, feedback, "final_answer")


def gradient_messages(param: Parameter) -> list[str]:
    """The semantic gradient of a parameter as plain messages: what its node's output
    received over the batch, in example order, de-duplicated. Entries that only pass the
    final feedback on (`final_feedback`) are not a gradient of the node and are left out,
    except for the output node, whose output the feedback judges."""
    return aggregate(m for e in param.grad if e.about == "output" for m in e.messages)


def _seed(feedback: str | Verdict) -> str:
    return feedback if isinstance(feedback, str) else feedback.feedback


def _accumulate(graph: Graph, trace: Trace, feedback: str | Verdict, about: FeedbackOn) -> None:
    """Append one entry per (node that ran and received a message, trainable parameter)."""
    score = None if isinstance(feedback, str) else feedback.value
    found = None if isinstance(feedback, str) else bool(feedback.prediction)
    seed = _seed(feedback).strip() or None
    seeded = (seed,) if seed else ()
    for name in graph.order:
        rec = trace.nodes.get(name)
        if rec is None or rec.value is None:
            continue
        messages = tuple(rec.grad) if about == "output" else seeded
        if not messages:
            continue
        for _, param in graph.nodes[name].named_parameters():
            if param.requires_grad:
                param.grad.append(
                    GradientEntry(
                        example_id=trace.example_id,
                        node=name,
                        inputs=dict(rec.inputs),
                        output=rec.value,
                        messages=messages,
                        about="output" if name == graph.output else about,
                        score=score,
                        answer_found=found,
                        # The metric's word on the final answer, beside an upstream node's
                        # own gradient (the output node's gradient is that word already).
                        final=seed if about == "output" and name != graph.output else None,
                    )
                )


async def _backward(
    graph: Graph,
    trace: Trace,
    feedback: str,
    ctx: RunContext,
    mode: BackwardMode,
    llm_role: str,
) -> BackwardResult:
    """Fill ``trace.nodes[n].grad`` for every node, seeded with `feedback`."""
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
