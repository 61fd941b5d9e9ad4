"""Optimizers over text parameters: compute an update (`propose`), then `apply` it.

PyTorch-shaped: parameters first, keyword-only options, `zero_grad`, `step`,
`state_dict` / `load_state_dict` keyed by parameter name. An optimizer reads only its
parameters' gradients (``param.grad``, the `GradientEntry` list that `backward`
accumulates): `zero_grad` empties them, `accumulate` fills them for a batch the way the
method learns (semantic backprop, or the final feedback alone). Proposing calls the
optimizer model and mutates nothing; applying mutates the parameters and calls nothing, so
the training loop can gate a candidate before anything changes for good.

Every proposal passes the same checks (ALGORITHMS.md §3c): it is read from the last
complete ``<improved>`` block, and fails when there is none, when it is a fragment (the
tag mentioned in prose), mostly the optimizer's own request, or a copy of an example's
inputs, of the node's own output or of the feedback it was given.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from semgrad.autograd.backward import (
    BackwardMode,
    BackwardResult,
    Verdict,
    backward_many,
    final_feedback,
)
from semgrad.errors import ConfigError
from semgrad.execution.context import RunContext
from semgrad.execution.executor import is_fatal
from semgrad.execution.trace import Trace
from semgrad.graph.core import GradientEntry, Graph, Parameter
from semgrad.llm.types import Message, Request
from semgrad.prompts import OptimizerExample, OptimizerStyle, last_block, render_optimizer
from semgrad.telemetry import traced

__all__ = [
    "NodeOptimizer",
    "Optimizer",
    "Proposal",
    "SemanticGradientDescent",
    "parse_improved",
]


def parse_improved(reply: str) -> str | None:
    """The text of the last complete ``<improved>…</improved>`` block, or None.

    Strict on purpose: a reply without the tags (or with an unclosed block) is a failed
    proposal. Taking the whole reply instead (the reference code's behaviour) turns
    reasoning into the new prompt. Same rule as the backward parser
    (`semgrad.prompts.last_block`).
    """
    return last_block(reply, "improved")


def _is_fragment(text: str, prompt: Sequence[Message]) -> bool:
    """True when `text` is what the request itself holds between the tags: the reply only
    mentioned the tags in prose ("...between <improved> and </improved>"), which a stop at
    the closing tag turns into the block "and"."""
    said = {_norm(b) for m in prompt for b in re.findall(r"<improved>(.*?)</improved>", m.content)}
    return _norm(text) in said


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _grams(words: Sequence[str], n: int) -> Iterator[tuple[str, ...]]:
    """The runs of `n` consecutive `words`, in order (none when there are fewer)."""
    return zip(*(itertools.islice(words, i, None) for i in range(n)), strict=False)


def _copied_starts(words: Sequence[str], sources: Iterable[str], n: int) -> list[int]:
    """Where in `words` the runs of `n` words start that also occur in one of `sources`.

    Linear in the lengths of `words` and the sources: the runs of `words` are a set, and
    each source's runs are only looked up in it (a 2 MB text takes a fraction of a second).
    """
    mine = set(_grams(words, n))
    shared: set[tuple[str, ...]] = set()
    for source in sources:
        if mine:
            shared |= mine.intersection(_grams(_words(source), n))
    if not shared:
        return []
    return [i for i, gram in enumerate(_grams(words, n)) if gram in shared]


def _echoes(text: str, *sources: str, n: int = 6, share: float = 0.5) -> bool:
    """True when most of `text` (at least `share` of its words) sits in runs of `n` words
    copied from the `sources`, case and punctuation aside.

    Small optimizer models sometimes answer with the request itself ("Keep what works,
    and add specific guidance…"); such a reply is a failed proposal, not an instruction.
    A good proposal that borrows one phrase of the request is kept.
    """
    words = _words(text)
    if len(words) < n:
        return False
    covered = end = 0  # the words in copied runs; where the runs counted so far end
    for start in _copied_starts(words, sources, n):
        covered += start + n - max(start, end)
        end = start + n
    return covered >= share * len(words)


def _copies_own_work(text: str, examples: Sequence[OptimizerExample]) -> bool:
    """True when most of `text` is copied from the node's own outputs or the feedback it
    was given on the batch (`_echoes` of those).

    The no-gate run accepted an instruction made of a hint's output plus its backward
    message: that is the example replayed, not an instruction. A proposal that takes up one
    phrase of the feedback's advice inside its own wording is kept.
    """
    return _echoes(
        text, *(s for ex in examples for s in (ex.output, *ex.feedback, ex.final) if s)
    )


def _copies_an_input(text: str, examples: Sequence[OptimizerExample], n: int = 10) -> bool:
    """True when `text` contains a run of `n` words of a training example's inputs.

    Small optimizer models paste the batch's questions, often with a worked "solution",
    into the instruction. That is overfitting to two examples (and usually a wrong
    solution), not a better instruction: such a proposal fails, and the step retries.
    """
    mine = set(_grams(_words(text), n))
    return any(
        not mine.isdisjoint(_grams(_words(value), n))
        for ex in examples
        for value in ex.inputs.values()
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
        style: OptimizerStyle = "paper",
        rejected: int = 3,
        final_answer: bool = False,
    ) -> None:
        if style not in ("paper", "search"):
            raise ConfigError(f"must be 'paper' or 'search', got {style!r}", key="style")
        self.style: OptimizerStyle = style
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
        # What the search style shows: the incumbent's gate score and, per parameter, the
        # last `rejected` texts that were gated and not accepted, with their scores.
        self.score: float | None = None
        self.rejected_limit = rejected
        # ... and, for a node that is not the output node, the feedback on the final answer.
        self.final_answer = final_answer
        self._rejected: dict[str, list[tuple[str, float]]] = {name: [] for name in self.params}

    def zero_grad(self) -> None:
        """Empty every parameter's gradient: the next batch starts from nothing."""
        for p in self.params.values():
            p.zero_grad()

    async def accumulate(
        self,
        graph: Graph,
        traces: Sequence[Trace],
        feedback: Sequence[str | Verdict],
        ctx: RunContext,
        *,
        mode: BackwardMode = "neighbors",
    ) -> list[BackwardResult]:
        """Add a batch's gradients to the parameters, the way this optimizer learns.

        The base rule is `final_feedback`: every node is shown the metric's feedback on the
        whole system's final answer, labelled as such; no backward call is made (an empty
        list is returned). `SemanticGradientDescent` backpropagates instead.
        """
        for trace, fb in zip(traces, feedback, strict=True):
            final_feedback(graph, trace, fb)
        return []

    def remember(self, scores: Mapping[str, tuple[str, float]]) -> None:
        """Record gate scores of texts (parameter name → (text, score)) for the memory."""
        for name, (text, score) in scores.items():
            if name in self._memory:
                self._memory[name].add(text, score)

    def reject(self, name: str, text: str, score: float) -> None:
        """Record that `text` for parameter `name` was gated with `score` and not accepted
        (the search style shows the last few to the optimizer)."""
        if name in self._rejected and self.rejected_limit:
            kept = [e for e in self._rejected[name] if e[0] != text] + [(text, score)]
            self._rejected[name] = kept[-self.rejected_limit :]

    @staticmethod
    def _examples(entries: Sequence[GradientEntry]) -> list[OptimizerExample]:
        return [
            OptimizerExample(
                dict(e.inputs),
                e.output,
                list(e.messages),
                e.correct,
                e.about,
                e.answer_found,
                e.final,
            )
            for e in entries
            if e.messages
        ]

    @traced("semgrad.proposal")
    async def propose(
        self,
        ctx: RunContext,
        *,
        temperature: float = 0.0,
        sample_index: int = 0,
        only: Sequence[str] | None = None,
    ) -> list[Proposal]:
        """One optimizer call per trainable parameter that has gradient entries (of the
        parameters named in `only`, when given; demonstrations are never rewritten as text).

        Reads only ``param.grad``. A `sample_index` > 0 with a `temperature` > 0 asks for
        another, different sample (cached under its own key), e.g. when the first proposals
        changed nothing.
        """
        ctx = ctx.with_phase("optimizer")
        jobs = []
        for name, param in self.params.items():
            if not param.requires_grad or param.role == "demos":
                continue
            if only is not None and name not in only:
                continue
            examples = self._examples(param.grad)
            if examples:
                node = next(e.node for e in param.grad if e.messages)
                jobs.append(
                    self._propose_one(name, node, param, examples, ctx, temperature, sample_index)
                )
        return list(await asyncio.gather(*jobs))

    async def _propose_one(
        self,
        name: str,
        node: str,
        param: Parameter,
        examples: list[OptimizerExample],
        ctx: RunContext,
        temperature: float = 0.0,
        sample_index: int = 0,
    ) -> Proposal:
        prompt = render_optimizer(
            param.role,
            param.value,
            examples,
            self._memory[name].best(self.memory),
            style=self.style,
            score=self.score,
            rejected=self._rejected[name],
            final_answer=self.final_answer,
        )
        request = Request(
            messages=prompt,
            temperature=temperature,
            sample_index=sample_index,
            max_tokens=self.max_tokens,
            seed=ctx.seed,
            # Stop at the closing tag: what a small model writes after it is noise we pay for.
            stop=("</improved>",),
            node=node,
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
        if new is None:
            pass
        elif _is_fragment(new, prompt):
            new, error = None, "the reply only mentions the <improved> tag in prose"
        elif _echoes(new, task):
            new, error = None, "the proposal repeats the optimizer's own instructions"
        elif _copies_an_input(new, examples):
            new, error = None, "the proposal copies a training example's input"
        elif _copies_own_work(new, examples):
            new, error = None, "the proposal copies the node's output or the feedback on it"
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

    async def step(self, ctx: RunContext) -> list[Proposal]:
        """Propose from the accumulated gradients and apply at once (no gate)."""
        proposals = await self.propose(ctx)
        self.apply(proposals)
        return proposals

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "steps": self.steps,
            "memory": {n: [list(e) for e in m.entries] for n, m in self._memory.items()},
        }
        if self.style == "search":
            state["score"] = self.score
            state["rejected"] = {n: [list(e) for e in r] for n, r in self._rejected.items()}
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.steps = int(state.get("steps", 0))
        score = state.get("score")
        self.score = None if score is None else float(score)
        for name, entries in dict(state.get("rejected", {})).items():
            if name in self._rejected:
                self._rejected[name] = [(str(t), float(s)) for t, s in entries]
        for name, entries in dict(state.get("memory", {})).items():
            if name in self._memory:
                self._memory[name] = _Memory([(str(t), float(s)) for t, s in entries])


class SemanticGradientDescent(Optimizer):
    """The paper's optimizer: each parameter is rewritten from its node's (inputs, output,
    semantic gradient) triples over the batch (ALGORITHMS.md §3).

    With ``use_gradients=False`` (the "no gradients" ablation) `accumulate` makes no
    backward call: every node is shown the metric's feedback, labelled as feedback on the
    whole system's final answer (the output node's as feedback on its output, which it
    is). The reference code's ablation shows the nodes no feedback at all, only their
    inputs and outputs on examples "it did not answer well"; semgrad keeps the final
    feedback so the ablation measures what backpropagation adds over passing the metric's
    words to every node, and labels it honestly.
    """

    def __init__(
        self,
        params: Iterable[tuple[str, Parameter]] | Iterable[Parameter],
        *,
        use_gradients: bool = True,
        **options: Any,
    ) -> None:
        """`options` are the `Optimizer` ones: llm_role, max_tokens, memory, partial, seed,
        style."""
        super().__init__(params, **options)
        self.use_gradients = use_gradients

    async def accumulate(
        self,
        graph: Graph,
        traces: Sequence[Trace],
        feedback: Sequence[str | Verdict],
        ctx: RunContext,
        *,
        mode: BackwardMode = "neighbors",
    ) -> list[BackwardResult]:
        """Semantic backpropagation of each example's feedback (`backward_many`); without
        gradients, the base rule (`final_feedback`)."""
        if not self.use_gradients:
            return await super().accumulate(graph, traces, feedback, ctx, mode=mode)
        return await backward_many(graph, traces, feedback, ctx, mode=mode)


class NodeOptimizer(Optimizer):
    """GPTSwarm-style local optimization (ALGORITHMS.md §4), a baseline: each node is
    rewritten from its own executions and the metric's feedback on the final answer, with
    no credit assignment through the graph (`accumulate` makes no backward call)."""
