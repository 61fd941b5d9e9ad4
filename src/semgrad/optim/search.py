"""Gradient-guided candidate search: the step of the default method (ALGORITHMS.md §3b).

Semantic backprop gives the direction; the step is a small search that spends cheap forward
calls to make up for a weak optimizer model. One step:

 1. **minibatch**: `batch_size` (default 4) training examples the incumbent gets wrong
    (examples whose model call failed are no mistakes and are skipped);
 2. **backprop**: neighbour-aware semantic gradients on their traces (`accumulate`);
 3. **candidates** (default 4), each a small edit of the incumbent, in this order:
    ``node``   the instruction of the one node the gradients blame (`blame`);
    ``full``   every instruction at once (the paper's update);
    ``teacher`` the output node's demonstrations, a seeded draw from the teacher's: the
               teacher model ([optimizer] teacher, default the backward model) answers
               the output node for the step's scored training examples (mistakes first)
               it has not answered before, and its answers the metric scores 1 are kept
               over the run (`SearchHost.teach`, `semgrad.optim.demos.ateach`);
    ``demos``  one node's demonstrations (the blamed node's first), a seeded draw from
               the pool harvested from successful traces, or labelled from targets when
               nothing succeeded yet (`semgrad.optim.demos`; when there is a pool);
    ``sample`` the one-node edit sampled again at `retry_temperature` (sample i is cached
               as sample i), for diversity.
    The optimizer prompt (style "search") shows the incumbent text with its gate score
    and the recently rejected texts with theirs;
 4. **screen** (successive halving): every candidate is scored on the minibatch plus
    `screen_size` validation items; the incumbent's scores on them are known (the
    minibatch from step 1, the validation items from its per-item gate scores, scoring
    being deterministic). Only the candidates that beat it on the same items (`gate.
    screen`) go on; a one-node edit re-runs only that node and the ones after it, the
    others are cache hits. A demonstrations candidate is not scored on a minibatch item
    whose own inputs its demonstrations show (``skip_shown``, `shown_items`): the teacher
    answers the minibatch's questions, and a demonstration of the very question asked
    wins by showing its answer;
 5. **gate**: the best `gate_survivors` (default 1) of the survivors — the largest margin
    on the screen, then the fewest nodes re-run per item — are scored on the whole gate
    set, stopping a candidate as soon as it cannot pass (`PairedGate.hopeless`: exact);
    the best one that beats the incumbent in the paired comparison (`PairedGate`, margin
    or sign test) on the same items is accepted, and its per-item scores become the
    incumbent's. The comparison leaves out the validation items the screen used
    (`decision_items`; ``gate_held_out``): the candidate was chosen for winning those.
    The gate is where a step's forward requests go (50 items × the nodes a candidate
    re-runs): gating one survivor instead of every one leaves the budget for more steps.
    With ``gate = "none"`` (an ablation) the best survivor of the screen is accepted
    without a gate.

With ``[optimizer] parents = "pareto"`` the trainer first draws a parent from the Pareto
front of the programs accepted so far (`semgrad.optim.pool`) and makes it the step's
incumbent; the step itself is the same.

The method ``demos`` is the same step with demonstration candidates only (no backward or
optimizer call): draws for the output node first, then the others. Everything random is
seeded by (seed, step), so a resumed run takes the same step again. The step returns its
`StepRecord`; the trainer records it.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from semgrad.autograd.backward import BackwardResult
from semgrad.data.example import Example
from semgrad.errors import ConfigError, GraphError
from semgrad.evaluation.evaluator import ExampleResult, is_error
from semgrad.execution.context import RunContext
from semgrad.graph.core import DemoParameter, Graph, Parameter
from semgrad.optim.config import RunConfig
from semgrad.optim.gate import PairedDecision, PairedGate, compare, screen
from semgrad.optim.optimizer import Optimizer, Proposal
from semgrad.optim.records import (
    BatchItem,
    CandidateKind,
    CandidateRecord,
    Decision,
    GateResult,
    StepRecord,
)
from semgrad.optim.splits import Splits
from semgrad.telemetry import traced

__all__ = [
    "DemoSource",
    "DemoSourceFactory",
    "SearchHost",
    "blame",
    "check_method",
    "decision_items",
    "demo_names",
    "demo_source",
    "encode_demos",
    "incumbent_gate_scores",
    "search_step",
    "shown_items",
]


class DemoSource(Protocol):
    """What the search needs of a demonstration pool (`semgrad.optim.demos.DemoPool`):
    a seeded draw of at most `k` demonstrations for `node` (empty when it has none)."""

    def sample(self, node: str, k: int, rng: random.Random) -> Sequence[Any]: ...


DemoSourceFactory = Callable[[Sequence[ExampleResult], Graph, Splits], DemoSource | None]
"""Builds the step's pool from the training results scored while looking for mistakes (and
the graph and splits, for labelled demonstrations when nothing succeeded yet); None: no
pool."""


def demo_names(graph: Graph) -> list[str]:
    """The graph's demonstration parameters (``<node>.demos``), in topological order: every
    LLM node's with `semgrad.optim.demos` (``graph.named_demos()``), else the parameters
    whose role is ``"demos"``."""
    named = getattr(graph, "named_demos", None)
    if callable(named):
        return [str(name) for name, _ in named()]
    return [name for name, p in graph.named_parameters() if p.role == "demos"]


def demo_source(
    results: Sequence[ExampleResult], graph: Graph, splits: Splits
) -> DemoSource | None:
    """The pool of `semgrad.optim.demos`: demonstrations harvested from the successful
    traces among `results` (`harvest`), or, when none succeeded, labelled from the training
    examples' targets (`labelled`, for the output node, with `results` as the traces that
    show what it reads). None when that module is not there or the graph has no
    demonstrations."""
    if not demo_names(graph):
        return None
    try:
        demos = importlib.import_module("semgrad.optim.demos")
    except ImportError:
        return None
    pool = demos.harvest(list(results), graph)
    if len(pool):
        return cast(DemoSource, pool)
    return cast(DemoSource, demos.labelled(list(splits.train), graph, splits.metric, list(results)))


def encode_demos(demos: Sequence[Any]) -> str:
    """The state-dict text of a demonstrations parameter holding `demos`: the JSON list of
    each demonstration's ``to_dict()`` (`DemoParameter.to_text`'s form)."""
    rows = [d.to_dict() if hasattr(d, "to_dict") else d for d in demos]
    return json.dumps(rows, ensure_ascii=False)


def check_method(method: str, graph: Graph) -> None:
    """Refuse, before any model call, a method the graph cannot be optimized with."""
    if method == "demos" and not demo_names(graph):
        raise ConfigError(
            'method = "demos" changes only demonstrations, and this graph has no '
            "demonstrations parameter (no LLM node); use the default method "
            '"search" or "paper"',
            key="optimizer.method",
        )


class SearchHost(Protocol):
    """What a search step needs of the training loop (a `semgrad.optim.trainer.Trainer`)."""

    graph: Graph
    optimizer: Optimizer
    config: RunConfig
    splits: Splits
    ctx: RunContext
    step: int
    best_gate: float | None
    incumbent_scores: dict[str, float]
    demo_source: DemoSourceFactory

    async def score(
        self, examples: Sequence[Example], *, what: str, phase: str = "evaluation"
    ) -> list[ExampleResult]: ...

    async def find_examples(
        self, rng: random.Random, k: int
    ) -> tuple[list[ExampleResult], list[ExampleResult]]: ...

    async def backprop(
        self, batch: Sequence[ExampleResult]
    ) -> tuple[list[BackwardResult], dict[str, list[str]]]: ...

    async def teach(self, results: Sequence[ExampleResult]) -> DemoSource: ...


def blame(params: Mapping[str, Parameter], step: int) -> tuple[list[str], str]:
    """The text parameters ordered by blame (most blamed first) and why.

    A node is blamed on an example when the backward pass sent its output a message there
    (`param.grad` entries about its own output, or the final feedback when there was no
    backpropagation). The node blamed on the most examples comes first; when several are
    blamed equally (typical: neighbour-aware backprop messages every input), the step
    number rotates among them (round-robin), so successive steps edit different nodes.
    """
    counts = {name: len({e.example_id for e in p.grad if e.messages}) for name, p in params.items()}
    blamed = [n for n in params if counts[n] > 0]
    if not blamed:
        return [], "no node received a gradient"
    top = max(counts[n] for n in blamed)
    tied = [n for n in blamed if counts[n] == top]
    first = tied[step % len(tied)]
    rest = sorted((n for n in blamed if n != first), key=lambda n: -counts[n])
    if len(blamed) == 1:
        why = f"only {first} received gradients"
    elif len(tied) == 1:
        why = f"{first} received gradients on the most examples ({top})"
    else:
        why = f"round-robin (step {step}) among {len(tied)} nodes blamed on {top} examples each"
    return [first, *rest], why


@dataclass
class _Candidate:
    index: int
    kind: CandidateKind
    changes: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    temperature: float = 0.0
    sample_index: int = 0
    proposals: list[Proposal] = field(default_factory=list)
    screen: dict[str, float] = field(default_factory=dict)
    screen_decision: PairedDecision | None = None
    shown: list[str] = field(default_factory=list)
    survived: bool = False
    gate: GateResult | None = None
    decision: PairedDecision | None = None
    accepted: bool = False

    def record(self) -> CandidateRecord:
        return CandidateRecord(
            index=self.index,
            kind=self.kind,
            changes=dict(self.changes),
            error=self.error,
            temperature=self.temperature,
            sample_index=self.sample_index,
            proposals=[p.to_dict() for p in self.proposals],
            screen=dict(self.screen),
            screen_decision=_decision(self.screen_decision),
            shown=list(self.shown),
            survived=self.survived,
            gate=self.gate,
            decision=_decision(self.decision),
            accepted=self.accepted,
        )


def _decision(d: PairedDecision | None) -> Decision | None:
    if d is None:
        return None
    return Decision(
        d.accepted, d.wins, d.losses, d.ties, d.evaluated, d.of, d.partial, d.rule, d.p_value
    )


def _usable(results: Sequence[ExampleResult]) -> dict[str, float]:
    """Per-item scores, leaving out items whose model call failed (no verdict on the graph)."""
    return {r.example.id: r.score.value for r in results if not is_error(r)}


def batch_item(r: ExampleResult) -> BatchItem:
    """How the step's record shows one minibatch example."""
    return BatchItem(
        id=r.example.id,
        inputs=dict(r.example.inputs),
        target=r.example.target,
        output=r.trace.output,
        score=r.score.value,
        feedback=r.score.feedback,
        node_outputs={n: t.value for n, t in r.trace.nodes.items()},
        node_gradients={n: list(t.grad) for n, t in r.trace.nodes.items()},
    )


class _Step:
    """One search step over `host` (state lives here only for the step's duration)."""

    def __init__(self, host: SearchHost) -> None:
        self.host = host
        self.cfg = host.config.optimizer
        self.seed = host.config.seed
        self.step = host.step
        self.gate_rule = PairedGate(
            rule=self.cfg.gate_rule, margin=self.cfg.gate_margin, level=self.cfg.gate_level
        )
        self.incumbent = host.graph.state_dict()

    def _rng(self, what: str) -> random.Random:
        return random.Random(f"{self.seed}/{self.step}/{what}")

    # -- candidates --------------------------------------------------------------------

    def _text_params(self) -> dict[str, Parameter]:
        return {
            name: p
            for name, p in self.host.optimizer.params.items()
            if p.requires_grad and p.role != "demos"
        }

    async def _text_candidates(self, order: list[str], slots: int) -> list[_Candidate]:
        """The ``node``, ``full`` and ``sample`` candidates (at most `slots`)."""
        host, cfg = self.host, self.cfg
        if not order or slots <= 0:
            return []
        first = order[0]
        temperature = cfg.retry_temperature
        n_samples = slots - 1 - (1 if len(order) > 1 else 0)
        if temperature <= 0:
            n_samples = 0  # temperature 0 would sample the same text again
        samples = [
            host.optimizer.propose(host.ctx, temperature=temperature, sample_index=i, only=[first])
            for i in range(1, n_samples + 1)
        ]
        # One optimizer call per blamed parameter at temperature 0: the one-node candidate
        # is the blamed node's proposal, the full edit all of them.
        everything, *sampled = await asyncio.gather(
            host.optimizer.propose(host.ctx, only=order), *samples
        )
        # ALGORITHMS.md §3c: a proposal that failed (or repeats the current text) is
        # sampled again, once, at the retry temperature, as sample n_samples + 1 (so it is
        # never one of the diversity samples, and a resumed step gets it from the cache).
        failed = [p.parameter for p in everything if not p.ok]
        retried: dict[str, Proposal] = {}
        if failed and temperature > 0:
            again = await host.optimizer.propose(
                host.ctx, temperature=temperature, sample_index=n_samples + 1, only=failed
            )
            retried = {p.parameter: p for p in again}

        def with_retries(proposals: Sequence[Proposal]) -> list[Proposal]:
            """`proposals`, each failed one followed by its retry (the retry's text wins)."""
            out: list[Proposal] = []
            for p in proposals:
                out.append(p)
                if not p.ok and p.parameter in retried:
                    out.append(retried[p.parameter])
            return out

        by_name = {p.parameter: p for p in everything}
        node = self._from_proposals(0, "node", with_retries([by_name[first]]))
        if node.error is not None and cfg.node_fallback:
            # The next blamed node whose proposal (or its retry) is a real edit; the record
            # keeps the failed proposal of the node before it.
            for name in order[1:]:
                other = self._from_proposals(0, "node", with_retries([by_name[name]]))
                if other.error is None:
                    other.proposals = [*node.proposals, *other.proposals]
                    node = other
                    break
        out = [node]
        if len(order) > 1 and slots > 1:
            out.append(self._from_proposals(0, "full", with_retries(everything)))
        for i, props in enumerate(sampled, start=1):
            out.append(self._from_proposals(0, "sample", props, temperature, i))
        return out

    def _from_proposals(
        self,
        index: int,
        kind: CandidateKind,
        proposals: Sequence[Proposal],
        temperature: float = 0.0,
        sample_index: int = 0,
    ) -> _Candidate:
        changes = {p.parameter: p.new for p in proposals if p.ok and p.new is not None}
        errors = [f"{p.parameter}: {p.error}" for p in proposals if p.error]
        error = None
        if not changes:
            error = "; ".join(errors) or "the proposal repeats the current text"
        return _Candidate(index, kind, changes, error, temperature, sample_index, list(proposals))

    def _demo_candidates(
        self, pool: DemoSource | None, order: list[str], count: int
    ) -> list[_Candidate]:
        """Up to `count` changes of one node's demonstrations each: seeded draws from the
        pool for the nodes the gradients blame (in blame order), then the output node,
        then the others, cycling with a new draw when there are more candidates than nodes.
        Nodes the pool has nothing for are skipped; no pool, no candidates."""
        names = demo_names(self.host.graph)
        if pool is None or not names or count <= 0 or self.cfg.demos == 0:
            return []
        node_of = {name: name.rsplit(".", 1)[0] for name in names}
        blamed = [n.rsplit(".", 1)[0] for n in order]
        output = self.host.graph.output
        ranked = sorted(
            names,
            key=lambda n: (
                blamed.index(node_of[n]) if node_of[n] in blamed else len(blamed),
                node_of[n] != output,
                names.index(n),
            ),
        )
        draws: list[tuple[str, tuple[Any, ...]]] = []
        for round_ in range(count):
            for name in ranked:
                if len(draws) == count:
                    break
                node = node_of[name]
                what = f"demos/{node}" if round_ == 0 else f"demos/{node}/{round_}"
                drawn = tuple(pool.sample(node, self.cfg.demos, self._rng(what)))
                if drawn:
                    draws.append((name, drawn))
            if not draws:
                break  # the pool has nothing for any node
        out = []
        for name, drawn in draws[:count]:
            text = encode_demos(drawn)
            if text == self.incumbent.get(name, encode_demos(())):
                out.append(_Candidate(0, "demos", error="the draw repeats the current demos"))
            else:
                out.append(_Candidate(0, "demos", {name: text}))
        return out

    def _teacher_candidate(self, taught: DemoSource | None) -> list[_Candidate]:
        """The output node's demos drawn from the teacher's (`SearchHost.teach`): none when
        the teacher has given none yet."""
        output = self.host.graph.output
        name = f"{output}.demos"
        if taught is None or self.cfg.demos == 0 or name not in demo_names(self.host.graph):
            return []
        drawn = taught.sample(output, self.cfg.demos, self._rng("demos/teacher"))
        if not drawn:
            return []
        text = encode_demos(drawn)
        if text == self.incumbent.get(name, encode_demos(())):
            return [_Candidate(0, "teacher", error="the draw repeats the current demos")]
        return [_Candidate(0, "teacher", {name: text})]

    async def candidates(
        self, scored: Sequence[ExampleResult], order: list[str], taught: DemoSource | None = None
    ) -> list[_Candidate]:
        host, cfg = self.host, self.cfg
        pool = host.demo_source(scored, host.graph, host.splits) if cfg.demos else None
        out: list[_Candidate] = []
        teacher = self._teacher_candidate(taught)
        if cfg.method == "demos":
            out = [*teacher, *self._demo_candidates(pool, order, cfg.candidates - len(teacher))]
        else:
            own = 1 if cfg.candidates > 2 + len(teacher) else 0
            demos = [*teacher, *self._demo_candidates(pool, order, own)][: cfg.candidates - 1]
            text = await self._text_candidates(order, cfg.candidates - len(demos))
            # Order: node, full, teacher demos, demos, samples.
            head = [c for c in text if c.kind in ("node", "full")]
            tail = [c for c in text if c.kind == "sample"]
            out = [*head, *demos, *tail][: cfg.candidates]
        seen = [self.incumbent]
        for i, cand in enumerate(out):
            cand.index = i
            if cand.error is None:
                state = {**self.incumbent, **cand.changes}
                same = next((j for j, s in enumerate(seen) if s == state), None)
                if same is not None:
                    cand.error = (
                        "changes nothing" if same == 0 else f"the same edit as candidate {same - 1}"
                    )
                seen.append(state)
            else:
                seen.append({})  # keeps `seen` aligned with the candidates
        return out

    # -- scoring -----------------------------------------------------------------------

    async def _score_as(
        self, cand: _Candidate, examples: Sequence[Example], what: str
    ) -> list[ExampleResult]:
        graph = self.host.graph
        graph.load_state_dict({**self.incumbent, **cand.changes})
        try:
            return await self.host.score(examples, what=what)
        finally:
            graph.load_state_dict(self.incumbent)

    @property
    def ctx(self) -> RunContext:
        """The run context (its tracer names the gate's span)."""
        return self.host.ctx

    @traced("semgrad.gate")
    async def gate(self, cand: _Candidate, incumbent: Mapping[str, float]) -> None:
        """Score `cand` on the gate set and decide against the incumbent's per-item scores
        on the items of `incumbent` (`decision_items`: the gate items the screen did not
        use, by default); with the early-stop gate, stop once it cannot pass on those (the
        decision is then partial)."""
        host = self.host
        gate = host.splits.gate
        n = len(gate)
        early = self.cfg.gate == "early-stop"
        llm_nodes = sum(1 for node in host.graph.nodes.values() if node.kind == "llm") or 1
        chunk = max(2, -(-host.config.models.concurrency // llm_nodes)) if early else n
        scores: dict[str, float] = {}
        usable: dict[str, float] = {}
        tokens = 0
        done = 0
        partial = False
        for start in range(0, n, chunk):
            part = await self._score_as(
                cand, gate[start : start + chunk], f"gate candidate {cand.index}"
            )
            scores.update((r.example.id, r.score.value) for r in part)
            usable.update(_usable(part))
            tokens += sum(r.trace.usage.total_tokens for r in part)
            done += len(part)
            wins, losses, _ = compare(usable, incumbent)
            left = sum(1 for item in incumbent if item not in scores)
            if done < n and self.gate_rule.hopeless(wins, losses, left):
                partial = True
                break
        saved = round(tokens / done * (n - done)) if partial and done else None
        cand.gate = GateResult.from_scores(
            scores, n, early_stopped=partial, tokens_saved_estimate=saved
        )
        cand.decision = self.gate_rule.decide(usable, incumbent, partial=partial)


def decision_items(
    incumbent: Mapping[str, float], screened: Sequence[Example], *, held_out: bool
) -> dict[str, float]:
    """The incumbent's per-item gate scores on the items the gate decides on. With
    `held_out` (``[optimizer] gate_held_out``, the default) these are the gate items the
    screen did not use: a candidate reaches the gate *because* it won its screen, so its
    wins on the screened items are selected, not measured, and counting them again lets
    noise through (winner's curse). A gate set so small that fewer than half of its items
    are left (the screen drew most of it) decides on every item, as without `held_out`."""
    if not held_out:
        return dict(incumbent)
    seen = {ex.id for ex in screened}
    left = {item: score for item, score in incumbent.items() if item not in seen}
    return left if 2 * len(left) >= len(incumbent) else dict(incumbent)


def shown_items(changes: Mapping[str, str], examples: Sequence[Example]) -> list[str]:
    """The ids of `examples` whose inputs a demonstration among `changes` (the changed
    ``<node>.demos`` parameters, in a state dict's text, `DemoParameter.load_text`) shows:
    its inputs hold every one of the example's inputs with the same text. Such a candidate
    shows the model the answer to that very item (a teacher's or a successful trace's
    answer to a training question the screen's minibatch asks again), so ``[optimizer]
    skip_shown`` neither scores it there in the screen nor credits it there in the gate."""
    shown: list[Mapping[str, str]] = []
    for name, text in changes.items():
        if name.endswith(".demos"):
            param = DemoParameter(name=name)
            try:
                param.load_text(text)
            except GraphError:
                continue
            shown += [demo.inputs for demo in param.value]
    return [
        ex.id
        for ex in examples
        if ex.inputs and any(all(seen.get(k) == v for k, v in ex.inputs.items()) for seen in shown)
    ]


async def incumbent_gate_scores(host: SearchHost) -> dict[str, float]:
    """The incumbent's per-item gate scores; scored again (cache hits with deterministic
    scoring) when they are not all known (after an ungated change, or an old checkpoint)."""
    ids = [ex.id for ex in host.splits.gate]
    if not all(i in host.incumbent_scores for i in ids):
        results = await host.score(host.splits.gate, what="incumbent gate")
        host.incumbent_scores = {r.example.id: r.score.value for r in results}
        host.best_gate = sum(host.incumbent_scores.values()) / len(results)
    return {i: host.incumbent_scores[i] for i in ids}


async def _incumbent_scores_on(host: SearchHost, items: Sequence[Example]) -> dict[str, float]:
    """The incumbent's scores on `items` (the "no gate" ablation, whose incumbent is known
    only on the items it was screened on): the ones not known yet are scored."""
    missing = [ex for ex in items if ex.id not in host.incumbent_scores]
    if missing:
        results = await host.score(missing, what="incumbent screen")
        host.incumbent_scores.update({r.example.id: r.score.value for r in results})
    return {ex.id: host.incumbent_scores[ex.id] for ex in items}


async def search_step(host: SearchHost) -> StepRecord:
    """One step of the candidate search; leaves the winner (or the incumbent) in
    `host.graph` and updates `host.best_gate` / `host.incumbent_scores` when it accepts."""
    s = _Step(host)
    cfg, step = s.cfg, s.step
    ungated = cfg.gate == "none"  # the ablation: the screen decides, no full gate
    try:
        incumbent = {} if ungated else await incumbent_gate_scores(host)
        wrong, right = await host.find_examples(s._rng("batch"), cfg.batch_size)
        batch = (wrong + right)[: cfg.batch_size]
        host.optimizer.score = host.best_gate
        backward: list[BackwardResult] = []
        gradients: dict[str, list[str]] = {}
        order: list[str] = []
        why = "demonstrations only"
        if cfg.method != "demos" and batch:
            backward, gradients = await host.backprop(batch)
            order, why = blame(s._text_params(), step)
        taught = await host.teach(wrong + right) if cfg.teacher and cfg.demos else None
        cands = await s.candidates(wrong + right, order, taught)

        # Screen: the minibatch plus a seeded draw of validation items.
        gate_items = list(host.splits.gate)
        drawn = s._rng("screen").sample(gate_items, min(cfg.screen_size, len(gate_items)))
        batch_ids = {r.example.id for r in batch}
        screen_val = [ex for ex in drawn if ex.id not in batch_ids]
        screen_examples = [r.example for r in batch] + screen_val
        if ungated:
            incumbent = await _incumbent_scores_on(host, screen_val)
        parent = {**_usable(batch), **{ex.id: incumbent[ex.id] for ex in screen_val}}
        live = [c for c in cands if c.error is None]
        for cand in live:
            if cfg.skip_shown:
                cand.shown = shown_items(cand.changes, [r.example for r in batch] + gate_items)
            unshown = [ex for ex in screen_examples if ex.id not in cand.shown]
            results = await s._score_as(cand, unshown, f"screen candidate {cand.index}")
            cand.screen = _usable(results)
            cand.screen_decision = PairedGate(rule="margin", margin=1).decide(cand.screen, parent)
        survivors = [live[i] for i in screen([c.screen for c in live], parent)]
        for cand in survivors:
            cand.survived = True

        # Gate: the best `gate_survivors` of the survivors (by their margin on the screen,
        # then the fewest nodes re-run per item), in the screen's order, each paired
        # against the incumbent on the same items (`decision_items`: those the screen did
        # not use); without a gate (the ablation) the best survivor of the screen is
        # accepted as it is.
        best = sorted(survivors, key=lambda c: _screen_rank(c, host.graph))
        chosen = {c.index for c in best[: cfg.gate_survivors]}
        deciding = decision_items(incumbent, screen_val, held_out=cfg.gate_held_out)
        for cand in (c for c in survivors if c.index in chosen):
            if ungated:
                cand.decision = cand.screen_decision
            else:
                await s.gate(cand, {k: v for k, v in deciding.items() if k not in cand.shown})
        passed = [c for c in survivors if c.decision is not None and c.decision.accepted]
        winner = max(
            passed, key=lambda c: (c.decision.net if c.decision else 0, -c.index), default=None
        )
    except BaseException:
        host.graph.load_state_dict(s.incumbent)
        raise

    incumbent_score = host.best_gate
    if winner is not None:
        winner.accepted = True
        host.graph.load_state_dict({**s.incumbent, **winner.changes})
        if winner.gate is not None:
            host.best_gate = winner.gate.mean
            host.incumbent_scores = dict(winner.gate.scores)
        else:  # ungated: the new incumbent is known on its screen's validation items only
            host.incumbent_scores = {ex.id: winner.screen[ex.id] for ex in screen_val}
    for cand in cands:
        if cand.accepted or cand.error is not None:
            continue
        # Shown to the optimizer next time: what was tried and how it scored on validation.
        score = _validation_mean(cand, {ex.id for ex in screen_val})
        if score is not None:
            for name, text in cand.changes.items():
                host.optimizer.reject(name, text, score)
    shown = winner or next((c for c in survivors if c.gate is not None), None)
    return StepRecord(
        step=step,
        batch=[batch_item(r) for r in batch],
        backward=[b.to_dict() for b in backward],
        gradients=gradients,
        # Each optimizer reply once (the one-node candidate shares the full edit's).
        proposals=[p.to_dict() for p in {id(p): p for c in cands for p in c.proposals}.values()],
        changed=_in_order(winner.changes, s.incumbent) if winner else [],
        candidate_score=shown.gate.score if shown and shown.gate else None,
        incumbent_score=incumbent_score,
        accepted=winner is not None,
        gate=shown.gate if shown else None,
        method=cfg.method,
        candidates=[c.record() for c in cands],
        screen_items=[ex.id for ex in screen_examples],
        parent_screen=parent,
        blame={"order": order, "why": why},
        decision=_decision(winner.decision) if winner else None,
    )


def _screen_rank(cand: _Candidate, graph: Graph) -> tuple[int, int, int]:
    """Sort key of a screen survivor, best first: the larger margin over the incumbent on
    the screen, then the cheaper gate (fewer nodes re-run per item), then the earlier."""
    net = cand.screen_decision.net if cand.screen_decision else 0
    return (-net, rescored_nodes(graph, cand.changes), cand.index)


def rescored_nodes(graph: Graph, changes: Mapping[str, str]) -> int:
    """How many nodes a change re-runs on each item: the nodes whose parameters it changes
    and every node after them (the others' requests are repeats, answered by the cache)."""
    succ = graph.successors_map()
    todo = [n for n in (name.rsplit(".", 1)[0] for name in changes) if n in succ]
    seen: set[str] = set()
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(succ[node])
    return len(seen)


def _in_order(changes: Mapping[str, str], state: Mapping[str, str]) -> list[str]:
    """The names changed, in the graph's parameter order (a node's demos that were empty,
    and so absent from the state, last)."""
    return [*(n for n in state if n in changes), *(n for n in changes if n not in state)]


def _validation_mean(cand: _Candidate, screen_val: set[str]) -> float | None:
    """A rejected candidate's score to show the optimizer: its gate mean (full or
    partial), else its mean on the screen's validation items."""
    if cand.gate is not None:
        return cand.gate.mean
    vals = [v for k, v in cand.screen.items() if k in screen_val]
    return sum(vals) / len(vals) if vals else None
