"""Optimizers over text parameters: compute an update (`propose`), then `apply` it.

PyTorch-shaped: parameters first, keyword-only options, `zero_grad`, `step`,
`state_dict` / `load_state_dict` keyed by parameter name. Proposing calls the optimizer
model and mutates nothing; applying mutates the parameters and calls nothing, so the
training loop can gate a candidate before anything changes for good.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from semgrad.errors import ConfigError
from semgrad.execution.context import RunContext
from semgrad.execution.executor import is_fatal
from semgrad.execution.trace import Trace
from semgrad.graph.core import Parameter
from semgrad.llm.types import Message, Request
from semgrad.prompts import OptimizerExample, render_optimizer

__all__ = [
    "NodeOptimizer",
    "Optimizer",
    "Proposal",
    "SemanticGradientDescent",
    "parse_improved",
]

_IMPROVED = re.compile(r"<improved>(.*?)</improved>", re.DOTALL)


def parse_improved(reply: str) -> str | None:
    """The text of the last ``<improved>…</improved>`` block, or None.

    Strict on purpose: a reply without the tags is a failed proposal. Taking the whole
    reply instead (the reference code's behaviour) turns reasoning into the new prompt.
    """
    # Nothing after the last closing tag can be in a block: cutting it off keeps the lazy
    # scan linear (else each unclosed opening tag scans to the end: quadratic).
    end = reply.rfind("</improved>")
    reply = reply[: end + len("</improved>")] if end >= 0 else ""
    blocks = [b.strip() for b in _IMPROVED.findall(reply)]
    blocks = [b for b in blocks if b]
    return blocks[-1] if blocks else None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _copied(words: list[str], source: str, n: int) -> list[bool]:
    """Which of `words` sit in a run of `n` words that also occurs in `source`."""
    source_words = _words(source)
    source_grams = {tuple(source_words[i : i + n]) for i in range(len(source_words) - n + 1)}
    covered = [False] * len(words)
    for i in range(len(words) - n + 1):
        if tuple(words[i : i + n]) in source_grams:
            covered[i : i + n] = [True] * n
    return covered


def _echoes(text: str, source: str, n: int = 6, share: float = 0.5) -> bool:
    """True when most of `text` (at least `share` of its words) sits in runs of `n` words
    copied from `source`, case and punctuation aside.

    Small optimizer models sometimes answer with the request itself ("Keep what works,
    and add specific guidance…"); such a reply is a failed proposal, not an instruction.
    A good proposal that borrows one phrase of the request is kept.
    """
    words = _words(text)
    if len(words) < n:
        return False
    return sum(_copied(words, source, n)) >= share * len(words)


def _copies_an_input(text: str, examples: Sequence[OptimizerExample], n: int = 10) -> bool:
    """True when `text` contains a run of `n` words of a training example's inputs.

    Small optimizer models paste the batch's questions, often with a worked "solution",
    into the instruction. That is overfitting to two examples (and usually a wrong
    solution), not a better instruction: such a proposal fails, and the step retries.
    """
    words = _words(text)
    return any(
        any(_copied(words, value, n)) for ex in examples for value in ex.inputs.values()
    )


@dataclass(frozen=True)
class Proposal:
    """A proposed new text for one parameter; `new` is None when the proposal failed."""

    parameter: str
    old: str
    new: str | None
    prompt: tuple[Message, ...] = ()
    raw: str | None = None
    error: str | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.new is not None and self.new != self.old

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "old": self.old,
            "new": self.new,
            "prompt": [{"role": m.role, "content": m.content} for m in self.prompt],
            "raw": self.raw,
            "error": self.error,
            "cached": self.cached,
        }


def _named(params: Iterable[tuple[str, Parameter]] | Iterable[Parameter]) -> dict[str, Parameter]:
    if isinstance(params, set | frozenset):
        raise ConfigError(
            "parameters must be an ordered collection (a list, or graph.named_parameters()), "
            "not a set: a set's order changes between runs, and so would the optimizer's",
            key="params",
        )
    named: dict[str, Parameter] = {}
    for item in params:
        name, param = item if isinstance(item, tuple) else (item.name, item)
        if not name:
            raise ConfigError(
                "a parameter has no name; pass graph.named_parameters() so every parameter "
                "has its dotted name",
                key="params",
            )
        named[name] = param
    if not named:
        raise ConfigError("the optimizer got no parameters to optimize", key="params")
    return named


def _node_of(parameter_name: str) -> str:
    return parameter_name.rsplit(".", 1)[0]


@dataclass
class _Memory:
    """Past texts of one parameter and the gate scores they got (OPRO-style)."""

    entries: list[tuple[str, float]] = field(default_factory=list)

    def add(self, text: str, score: float) -> None:
        self.entries = [e for e in self.entries if e[0] != text] + [(text, score)]

    def best(self, n: int) -> list[tuple[str, float]]:
        return sorted(self.entries, key=lambda e: e[1])[-n:] if n else []


class Optimizer:
    """Shared machinery: parameters by name, the optimizer model, proposals, apply."""

    def __init__(
        self,
        params: Iterable[tuple[str, Parameter]] | Iterable[Parameter],
        *,
        llm_role: str = "optimizer",
        max_tokens: int = 400,
        memory: int = 0,
        partial: float | None = None,
        seed: int = 0,
    ) -> None:
        self.params = _named(params)
        self.llm_role = llm_role
        self.max_tokens = max_tokens
        self.memory = memory
        if partial is not None and not 0.0 < partial <= 1.0:
            raise ConfigError(f"must be in (0, 1], got {partial}", key="partial")
        self.partial = partial
        self.seed = seed
        self.steps = 0
        self._memory: dict[str, _Memory] = {name: _Memory() for name in self.params}

    def zero_grad(self) -> None:
        for p in self.params.values():
            p.zero_grad()

    def remember(self, scores: Mapping[str, tuple[str, float]]) -> None:
        """Record gate scores of texts (parameter name → (text, score)) for the memory."""
        for name, (text, score) in scores.items():
            if name in self._memory:
                self._memory[name].add(text, score)

    def _examples(self, name: str, traces: Sequence[Trace]) -> list[OptimizerExample]:
        raise NotImplementedError

    async def propose(
        self,
        traces: Sequence[Trace],
        ctx: RunContext,
        *,
        temperature: float = 0.0,
        sample_index: int = 0,
    ) -> list[Proposal]:
        """One optimizer call per trainable parameter that has something to learn from.

        A `sample_index` > 0 with a `temperature` > 0 asks for another, different sample
        (cached under its own key), e.g. when the first proposals changed nothing.
        """
        ctx = ctx.with_phase("optimizer")
        jobs = []
        for name, param in self.params.items():
            if not param.requires_grad:
                continue
            examples = self._examples(name, traces)
            if examples:
                jobs.append(
                    self._propose_one(name, param, examples, ctx, temperature, sample_index)
                )
        return list(await asyncio.gather(*jobs))

    async def _propose_one(
        self,
        name: str,
        param: Parameter,
        examples: list[OptimizerExample],
        ctx: RunContext,
        temperature: float = 0.0,
        sample_index: int = 0,
    ) -> Proposal:
        prompt = render_optimizer(
            param.role, param.value, examples, self._memory[name].best(self.memory)
        )
        request = Request(
            messages=prompt,
            temperature=temperature,
            sample_index=sample_index,
            max_tokens=self.max_tokens,
            seed=ctx.seed,
            # Stop at the closing tag: what a small model writes after it is noise we pay for.
            stop=("</improved>",),
            node=_node_of(name),
            phase="optimizer",
        )
        try:
            async with ctx.semaphore():
                response = await ctx.llm(self.llm_role).complete(request)
        except Exception as exc:
            if is_fatal(exc):
                raise
            return Proposal(name, param.value, None, prompt, None, f"{type(exc).__name__}: {exc}")
        text = response.text
        if "<improved>" in text and "</improved>" not in text and response.finish_reason == "stop":
            text += "</improved>"  # the server stopped at the tag and left it out
        new = parse_improved(text)
        error = None if new is not None else "the reply has no <improved>...</improved> block"
        task = prompt[-1].content.rsplit("\n\n", 1)[-1]  # what the optimizer was asked to do
        if new is not None and _echoes(new, task):
            new, error = None, "the proposal repeats the optimizer's own instructions"
        elif new is not None and _copies_an_input(new, examples):
            new, error = None, "the proposal copies a training example's input"
        return Proposal(name, param.value, new, prompt, response.text, error, response.cached)

    def apply(self, proposals: Sequence[Proposal], *, step: int | None = None) -> list[str]:
        """Set the proposed texts; returns the names changed.

        With `partial`, each parameter is updated with that probability, decided by a
        generator seeded from (seed, step) so a resumed run makes the same choices.
        """
        step = self.steps if step is None else step
        rng = random.Random(f"{self.seed}/{step}/apply")
        changed = []
        for prop in proposals:
            if not prop.ok or prop.parameter not in self.params:
                continue
            if self.partial is not None and rng.random() >= self.partial:
                continue
            self.params[prop.parameter].value = prop.new  # type: ignore[assignment]
            changed.append(prop.parameter)
        self.steps = step + 1
        return changed

    async def step(self, traces: Sequence[Trace], ctx: RunContext) -> list[Proposal]:
        proposals = await self.propose(traces, ctx)
        self.apply(proposals)
        return proposals

    def state_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "memory": {n: [list(e) for e in m.entries] for n, m in self._memory.items()},
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps = int(state.get("steps", 0))
        for name, entries in dict(state.get("memory", {})).items():
            if name in self._memory:
                self._memory[name] = _Memory([(str(t), float(s)) for t, s in entries])


class SemanticGradientDescent(Optimizer):
    """The paper's optimizer: each parameter is rewritten from its node's (inputs, output,
    semantic gradient) triples over the batch (ALGORITHMS.md §3).

    With ``use_gradients=False`` (the "no gradients" ablation) every node is shown only the
    metric's feedback on the final answer, as if there were no backpropagation.
    """

    def __init__(
        self,
        params: Iterable[tuple[str, Parameter]] | Iterable[Parameter],
        *,
        use_gradients: bool = True,
        **options: Any,
    ) -> None:
        """`options` are the `Optimizer` ones: llm_role, max_tokens, memory, partial, seed."""
        super().__init__(params, **options)
        self.use_gradients = use_gradients

    def _examples(self, name: str, traces: Sequence[Trace]) -> list[OptimizerExample]:
        node = _node_of(name)
        out: list[OptimizerExample] = []
        for trace in traces:
            rec = trace.nodes.get(node)
            if rec is None or rec.value is None:
                continue
            if self.use_gradients:
                feedback = list(rec.grad)
            else:
                feedback = list(trace.nodes[trace.output_node].grad)
            if feedback:
                out.append(OptimizerExample(dict(rec.inputs), rec.value, feedback))
        return out


class NodeOptimizer(Optimizer):
    """GPTSwarm-style local optimization (ALGORITHMS.md §4), a baseline: each node is
    rewritten from its own executions and the final feedback, with no credit assignment
    through the graph. Traces need no backward pass; the feedback is read from
    ``trace.nodes[output].grad`` when set, else from the `feedback` mapping given to
    `propose_with_feedback`.
    """

    def __init__(
        self, params: Iterable[tuple[str, Parameter]] | Iterable[Parameter], **options: Any
    ) -> None:
        """`options` are the `Optimizer` ones: llm_role, max_tokens, memory, partial, seed."""
        super().__init__(params, **options)
        self._feedback: dict[str, str] = {}

    async def propose_with_feedback(
        self, traces: Sequence[Trace], feedback: Mapping[str, str], ctx: RunContext
    ) -> list[Proposal]:
        """Propose from traces and the metric feedback per example id."""
        self._feedback = dict(feedback)
        try:
            return await self.propose(traces, ctx)
        finally:
            self._feedback = {}

    def _examples(self, name: str, traces: Sequence[Trace]) -> list[OptimizerExample]:
        node = _node_of(name)
        out: list[OptimizerExample] = []
        for trace in traces:
            rec = trace.nodes.get(node)
            if rec is None or rec.value is None:
                continue
            fb = self._feedback.get(trace.example_id) or "\n".join(
                trace.nodes[trace.output_node].grad
            )
            if fb:
                out.append(
                    OptimizerExample(
                        dict(rec.inputs),
                        rec.value,
                        [f"The whole system's final answer was judged: {fb}"],
                    )
                )
        return out
