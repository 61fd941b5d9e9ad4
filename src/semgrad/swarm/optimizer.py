"""Edge optimization: REINFORCE with a moving-average baseline and Adam on the edge logits.

The objective is the expected utility of a sampled graph, J(θ) = E_{G~p_θ}[u(G)]
(ALGORITHMS.md §5). With graphs G_1..G_n sampled from p_θ and their utilities u_j (the mean
metric score of G_j on a batch of training examples), the REINFORCE estimate of ∇J is

    ĝ_e = (1/n) Σ_j (u_j − b) · ∂ log p(G_j) / ∂θ_e,    ∂ log p(G_j) / ∂θ_e = (x_je − p_je) / T

where x_je is 1 if G_j kept edge e and 0 if it left it out; an edge G_j skipped (it would
have closed a cycle) contributes 0. Subtracting the baseline b, an exponential moving
average of past utilities, leaves the estimate unbiased and lowers its variance.

`EdgeOptimizer` keeps b and Adam's moments; `accumulate` computes ĝ into each edge's `grad`,
`step` moves the logits uphill. Plain floats: a swarm has tens of edges, not millions, and
the state stays exact in JSON. `sample_utilities` draws the graphs and scores them
concurrently through the ordinary evaluator, so every model call goes through the run's
cache, meter and budget (phase ``edges``).
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semgrad.data.example import Example
from semgrad.errors import ConfigError, GraphError
from semgrad.evaluation.evaluator import EvalResult, ExampleResult, aevaluate
from semgrad.evaluation.metrics import Metric
from semgrad.execution.context import RunContext
from semgrad.swarm.composite import SampledGraph, Swarm
from semgrad.swarm.edges import EdgeParameter, decision_grad

__all__ = [
    "EdgeOptimizer",
    "EdgeUpdate",
    "ScoredGraph",
    "distinct_samples",
    "reinforce_gradient",
    "sample_utilities",
    "score_samples",
]


def reinforce_gradient(
    samples: Sequence[SampledGraph],
    utilities: Sequence[float],
    baseline: float,
    edge_logits: Mapping[str, float],
) -> dict[str, float]:
    """ĝ_e = (1/n) Σ_j (u_j − b) · (x_je − σ(θ_e/T_j)) / T_j over the decided edges.

    Pure: `edge_logits` are the logits the samples were drawn with (name -> θ).
    """
    if len(samples) != len(utilities):
        raise ValueError(f"{len(samples)} samples but {len(utilities)} utilities")
    if not samples:
        raise ValueError("REINFORCE needs at least one sampled graph")
    grad = dict.fromkeys(edge_logits, 0.0)
    for sample, utility in zip(samples, utilities, strict=True):
        advantage = utility - baseline
        for name, keep in sample.decisions.items():
            if keep is None or name not in grad:
                continue
            grad[name] += advantage * decision_grad(edge_logits[name], keep, sample.temperature)
    n = len(samples)
    return {name: g / n for name, g in grad.items()}


@dataclass(frozen=True)
class EdgeUpdate:
    """What one `accumulate` saw and computed, for the run history."""

    utilities: tuple[float, ...]
    baseline_used: float
    baseline: float  # after this batch
    gradient: dict[str, float]

    @property
    def mean_utility(self) -> float:
        return sum(self.utilities) / len(self.utilities)

    def to_dict(self) -> dict[str, Any]:
        return {
            "utilities": list(self.utilities),
            "mean_utility": self.mean_utility,
            "baseline_used": self.baseline_used,
            "baseline": self.baseline,
            "gradient": dict(self.gradient),
        }


def _named_edges(
    edges: Iterable[tuple[str, EdgeParameter]] | Iterable[EdgeParameter],
) -> dict[str, EdgeParameter]:
    if isinstance(edges, set | frozenset):
        raise ConfigError(
            "edges must be an ordered collection (a list, or swarm.named_edges()), not a set: "
            "a set's order changes between runs, and so would the optimizer's state",
            key="edges",
        )
    named: dict[str, EdgeParameter] = {}
    for item in edges:
        name, edge = item if isinstance(item, tuple) else (item.name, item)
        named[name] = edge
    if not named:
        raise ConfigError("the edge optimizer got no edges to optimize", key="edges")
    return named


class EdgeOptimizer:
    """REINFORCE + Adam on edge logits (gradient *ascent* on the expected utility).

    opt = EdgeOptimizer(swarm.named_edges(), lr=0.1)
    scored = await sample_utilities(swarm, batch, metric, ctx, n=4, rng=rng)
    opt.zero_grad()
    opt.accumulate([s.sample for s in scored], [s.utility for s in scored])
    opt.step()
    """

    def __init__(
        self,
        edges: Iterable[tuple[str, EdgeParameter]] | Iterable[EdgeParameter],
        *,
        lr: float = 0.1,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        baseline_decay: float = 0.9,
    ) -> None:
        self.edges = _named_edges(edges)
        if not lr > 0:
            raise ConfigError(f"must be > 0, got {lr}", key="lr")
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ConfigError(f"must be two numbers in [0, 1), got {betas}", key="betas")
        if not eps > 0:
            raise ConfigError(f"must be > 0, got {eps}", key="eps")
        if not 0.0 <= baseline_decay <= 1.0:
            raise ConfigError(f"must be in [0, 1], got {baseline_decay}", key="baseline_decay")
        self.lr = lr
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = eps
        self.baseline_decay = baseline_decay
        self.t = 0
        self.baseline: float | None = None
        self._m = dict.fromkeys(self.edges, 0.0)
        self._v = dict.fromkeys(self.edges, 0.0)

    def zero_grad(self) -> None:
        for edge in self.edges.values():
            edge.zero_grad()

    def probabilities(self, temperature: float = 1.0) -> dict[str, float]:
        return {name: e.probability(temperature) for name, e in self.edges.items()}

    def accumulate(self, samples: Sequence[SampledGraph], utilities: Sequence[float]) -> EdgeUpdate:
        """Add the REINFORCE gradient of these samples to each edge's `grad`, then fold
        their mean utility into the baseline (the first batch's mean starts it)."""
        utilities = [float(u) for u in utilities]
        if not samples or len(samples) != len(utilities):
            raise ValueError(
                f"accumulate needs one utility per sampled graph and at least one graph, got "
                f"{len(samples)} graphs and {len(utilities)} utilities"
            )
        if any(not math.isfinite(u) for u in utilities):
            raise ValueError(f"utilities must be finite numbers, got {utilities}")
        mean = sum(utilities) / len(utilities)
        if self.baseline is None:
            self.baseline = mean
        used = self.baseline
        logits = {name: e.logit for name, e in self.edges.items()}
        gradient = reinforce_gradient(samples, utilities, used, logits)
        for name, g in gradient.items():
            self.edges[name].grad += g
        self.baseline = self.baseline_decay * used + (1.0 - self.baseline_decay) * mean
        return EdgeUpdate(tuple(utilities), used, self.baseline, gradient)

    def step(self) -> dict[str, float]:
        """One Adam step uphill on every logit from its `grad`; returns the new logits."""
        self.t += 1
        b1, b2 = self.betas
        for name, edge in self.edges.items():
            g = edge.grad
            self._m[name] = b1 * self._m[name] + (1.0 - b1) * g
            self._v[name] = b2 * self._v[name] + (1.0 - b2) * g * g
            m_hat = self._m[name] / (1.0 - b1**self.t)
            v_hat = self._v[name] / (1.0 - b2**self.t)
            edge.logit += self.lr * m_hat / (math.sqrt(v_hat) + self.eps)
        return {name: e.logit for name, e in self.edges.items()}

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: logits, Adam moments, t, baseline."""
        return {
            "lr": self.lr,
            "betas": list(self.betas),
            "eps": self.eps,
            "baseline_decay": self.baseline_decay,
            "t": self.t,
            "baseline": self.baseline,
            "logits": {name: e.logit for name, e in self.edges.items()},
            "m": dict(self._m),
            "v": dict(self._v),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore `state_dict()`; the edges must be the same ones (names checked). The
        hyperparameters stay those given to the constructor (a resumed run may change them)."""
        logits = dict(state.get("logits", {}))
        names = list(self.edges)
        for key in ("logits", "m", "v"):
            got = list(dict(state.get(key, {})))
            if sorted(got) != sorted(names):
                missing = [n for n in names if n not in got]
                unexpected = [n for n in got if n not in names]
                raise GraphError(
                    f"edge optimizer state {key!r} does not match the edges: missing "
                    f"{missing or 'nothing'}, unexpected {unexpected or 'nothing'}"
                )
        self.t = int(state.get("t", 0))
        baseline = state.get("baseline")
        self.baseline = None if baseline is None else float(baseline)
        self._m = {n: float(state["m"][n]) for n in names}
        self._v = {n: float(state["v"][n]) for n in names}
        for name, edge in self.edges.items():
            edge.logit = float(logits[name])


@dataclass(frozen=True)
class ScoredGraph:
    """A sampled graph and its utility: its mean score on the batch."""

    sample: SampledGraph
    utility: float
    results: tuple[ExampleResult, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.sample.to_dict(),
            "utility": self.utility,
            "scores": {r.example.id: r.score.value for r in self.results},
            "errors": sum(1 for r in self.results if r.error is not None),
        }


async def score_samples(
    samples: Sequence[SampledGraph],
    examples: Sequence[Example],
    metric: Metric,
    ctx: RunContext,
    *,
    on_result: Callable[[ExampleResult], None] | None = None,
) -> list[ScoredGraph]:
    """Score each sampled graph on `examples`, all concurrently (phase ``edges``).

    Samples that realise the same graph are scored once and share the result; calls that
    recur across graphs (an agent whose inputs did not change) are answered by the run's
    cache. The utility of a graph is its mean score; a failed example scores 0.
    """
    if not examples:
        raise ValueError("scoring sampled graphs needs at least one example")
    unique = distinct_samples(samples)
    ctx = ctx.with_phase("edges")
    tasks = [
        asyncio.create_task(aevaluate(s.graph, examples, metric, ctx, on_result=on_result))
        for s in unique.values()
    ]
    try:
        evaluations: list[EvalResult] = await asyncio.gather(*tasks)
    finally:
        # A fatal error in one (budget, unreachable server) stops the others too.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    by_key = dict(zip(unique, evaluations, strict=True))
    return [ScoredGraph(s, by_key[s.included].score, by_key[s.included].results) for s in samples]


def distinct_samples(samples: Sequence[SampledGraph]) -> dict[tuple[str, ...], SampledGraph]:
    """The first sample of each distinct realised graph, keyed by its kept edges."""
    unique: dict[tuple[str, ...], SampledGraph] = {}
    for s in samples:
        unique.setdefault(s.included, s)
    return unique


async def sample_utilities(
    swarm: Swarm,
    examples: Sequence[Example],
    metric: Metric,
    ctx: RunContext,
    *,
    n: int,
    rng: random.Random,
    temperature: float = 1.0,
    on_result: Callable[[ExampleResult], None] | None = None,
) -> list[ScoredGraph]:
    """Sample `n` graphs from `swarm` with `rng` and score them (see `score_samples`)."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    samples = [swarm.sample(rng, temperature) for _ in range(n)]
    return await score_samples(samples, examples, metric, ctx, on_result=on_result)
