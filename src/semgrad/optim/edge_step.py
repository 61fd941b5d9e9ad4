"""Edge optimization of a composite graph, as a part the `Trainer` composes.

What a swarm run optimizes is the swarm: the agents' and the decision's texts (the text
optimizer, as for a single graph) and the potential edges' logits (REINFORCE,
`EdgeOptimizer`, here). What it runs, gates and tests is always the swarm's deterministic
realisation, a flat graph that shares the swarm's `Parameter` objects, so a text step on
that graph is a step on the swarm.

The schedule (``[edges] schedule``) says what a step does:

    alternate    even steps update the edges, odd steps the texts (edges first)
    interleave   every step updates the edges, then the texts
    edges-only   / nodes-only

An edge step (`EdgeStep.update`): draw `batch_size` training examples, sample `samples`
graphs at the sampling temperature, score each on the batch (phase ``edges``; identical
graphs once; repeated calls from the cache), REINFORCE with the moving-average baseline,
one Adam step. Edge steps are not gated: REINFORCE follows its own estimate, and undoing a
step would bias it. When the step changes the deterministic graph's wiring, the trainer
scores the new graph on the gate set, so that the incumbent score the next text step must
beat is the current graph's (it can fall).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semgrad.data.example import Example
from semgrad.errors import DataError
from semgrad.evaluation.metrics import Metric
from semgrad.execution.context import RunContext
from semgrad.graph.core import Graph, Parameter
from semgrad.optim.config import EdgesConfig
from semgrad.optim.records import StepKind
from semgrad.swarm.composite import Swarm
from semgrad.swarm.optimizer import EdgeOptimizer, distinct_samples, score_samples
from semgrad.swarm.spec import swarm_from_dict

__all__ = ["EdgeStep", "EdgeUpdateResult", "same_wiring", "step_kind"]


def step_kind(schedule: str, step: int) -> StepKind:
    """What step `step` (from 0) does under `schedule`: "edges", "nodes" or "both"."""
    if schedule == "edges-only":
        return "edges"
    if schedule == "nodes-only":
        return "nodes"
    if schedule == "interleave":
        return "both"
    return "edges" if step % 2 == 0 else "nodes"


def same_wiring(a: Graph, b: Graph) -> bool:
    """True when two realised graphs have the same nodes fed by the same inputs."""

    def wiring(graph: Graph) -> list[tuple[str, tuple[str, ...]]]:
        return [(name, graph.nodes[name].inputs) for name in graph.order]

    return wiring(a) == wiring(b)


@dataclass(frozen=True)
class EdgeUpdateResult:
    """What one REINFORCE update did (the trainer adds the re-gating to make the record)."""

    batch: list[str]
    samples: list[dict[str, Any]]
    distinct_graphs: int
    update: dict[str, Any]  # EdgeUpdate.to_dict(): utilities, mean_utility, baseline…
    probabilities_before: dict[str, float]
    kept_before: list[str]
    flipped: list[str]


class EdgeStep:
    """The swarm, its edge optimizer and its schedule; the trainer's model for a swarm."""

    def __init__(self, swarm: Swarm, config: EdgesConfig | None = None) -> None:
        self.swarm = swarm
        self.config = config or EdgesConfig()
        self.optimizer = EdgeOptimizer(
            swarm.named_edges(),
            lr=self.config.lr,
            betas=self.config.betas,
            eps=self.config.eps,
            baseline_decay=self.config.baseline_decay,
        )

    def kind(self, step: int) -> StepKind:
        return step_kind(self.config.schedule, step)

    def realise(self) -> Graph:
        """The deterministic graph: every edge with probability >= the threshold."""
        return self.swarm.realise_deterministic(
            self.config.threshold, temperature=self.config.temperature
        )

    def text_parameters(self) -> list[tuple[str, Parameter]]:
        # Every text of the swarm, also those of agents the current graph leaves out: an
        # edge step may bring them back, and the optimizer's state is keyed by name.
        return list(self.swarm.named_parameters())

    def probabilities(self) -> dict[str, float]:
        return self.swarm.probabilities(self.config.temperature)

    def kept_edges(self) -> list[str]:
        decisions = self.swarm.threshold_decisions(
            self.config.threshold, temperature=self.config.temperature
        )
        return [name for name, keep in decisions.items() if keep]

    async def update(
        self,
        train: Sequence[Example],
        metric: Metric,
        ctx: RunContext,
        *,
        seed: int,
        step: int,
        on_result: Callable[[int, int], None] | None = None,
    ) -> EdgeUpdateResult:
        """One REINFORCE step on graphs sampled from the swarm (randomness seeded by
        (seed, step)); `on_result(done, total)` after each sampled graph's example."""
        cfg = self.config
        examples = list(train)
        batch = random.Random(f"{seed}/{step}/edges-batch").sample(
            examples, min(cfg.batch_size, len(examples))
        )
        rng = random.Random(f"{seed}/{step}/edges")
        before = self.probabilities()
        kept_before = self.kept_edges()
        samples = [self.swarm.sample(rng, cfg.temperature) for _ in range(cfg.samples)]
        total = len(distinct_samples(samples)) * len(batch)
        done = 0
        if on_result is not None:
            on_result(0, total)

        def tick(_result: object) -> None:
            nonlocal done
            done += 1
            if on_result is not None:
                on_result(done, total)

        scored = await score_samples(samples, batch, metric, ctx, on_result=tick)
        self.optimizer.zero_grad()
        update = self.optimizer.accumulate([s.sample for s in scored], [s.utility for s in scored])
        self.optimizer.step()
        kept_after = self.kept_edges()
        flipped = [n for n in self.probabilities() if (n in kept_before) != (n in kept_after)]
        return EdgeUpdateResult(
            batch=[e.id for e in batch],
            samples=[s.to_dict() for s in scored],
            distinct_graphs=len(distinct_samples(samples)),
            update=update.to_dict(),
            probabilities_before=before,
            kept_before=kept_before,
            flipped=flipped,
        )

    # -- state -----------------------------------------------------------------------------

    def spec_dict(self) -> dict[str, Any]:
        """The swarm spec with the current logits (what best_graph.json holds)."""
        return self.swarm.to_dict()

    def state_dict(self) -> dict[str, Any]:
        """What the checkpoint adds for a swarm."""
        return {"swarm": self.swarm.to_dict(), "edge_optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: Mapping[str, Any], *, source: str) -> None:
        if "swarm" not in state:
            raise DataError(
                f"{source} holds no swarm: it was written by a single-graph run, which "
                f"cannot be resumed as a composite graph",
                source,
            )
        saved = swarm_from_dict(state["swarm"])
        self.swarm.load_state_dict(saved.state_dict())
        self.swarm.load_edge_state_dict(saved.edge_state_dict())
        if "edge_optimizer" in state:
            self.optimizer.load_state_dict(state["edge_optimizer"])

    def summary(self) -> dict[str, Any]:
        return {
            "probabilities": self.probabilities(),
            "logits": self.swarm.edge_state_dict(),
            "kept": self.kept_edges(),
            "threshold": self.config.threshold,
        }
