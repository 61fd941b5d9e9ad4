"""Node and edge optimization of a composite graph in one loop.

`SwarmTrainer` is the `Trainer` for a swarm spec. What it optimizes is the swarm: the agents'
and the decision's texts (semantic gradient descent, or the node optimizer, as for a single
graph) and the potential edges' logits (REINFORCE, `EdgeOptimizer`). What it runs, gates and
tests is always the swarm's deterministic realisation, a flat graph that shares the swarm's
`Parameter` objects, so a text step on that graph is a step on the swarm.

The schedule (``[edges] schedule``) says what a step does:

    alternate    even steps update the edges, odd steps the texts (edges first)
    interleave   every step updates the edges, then the texts
    edges-only   / nodes-only

An edge step: draw `batch_size` training examples, sample `samples` graphs at the sampling
temperature, score each on the batch (phase ``edges``; identical graphs once; repeated calls
from the cache), REINFORCE with the moving-average baseline, one Adam step. Edge steps are
not gated: REINFORCE follows its own estimate, and undoing a step would bias it. When the
step changes the deterministic graph, the new graph is scored on the gate set so that the
incumbent score the next text step must beat is the current graph's (it can fall). Text
steps are gated exactly as for a single graph.

One budget covers every call; one history line per step (kind ``edges``, ``nodes`` or
``both``, the edge probabilities after it, the samples, utilities and baseline); the
checkpoint after every step holds the logits and the edge optimizer's state, so a resumed
run continues exactly. best_graph.json is the swarm spec with the learned logits;
realised_graph.json is its deterministic realisation as a plain graph spec.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from typing import Any

from semgrad.errors import ConfigError, DataError
from semgrad.graph.core import Graph, Parameter
from semgrad.optim.config import EdgesConfig
from semgrad.optim.runfiles import atomic_write_json
from semgrad.optim.trainer import Trainer, _spend_dict
from semgrad.swarm.composite import Swarm
from semgrad.swarm.optimizer import (
    EdgeOptimizer,
    ScoredGraph,
    distinct_samples,
    score_samples,
)
from semgrad.swarm.spec import load_swarm, swarm_from_dict

__all__ = ["SwarmTrainer", "step_kind"]


def step_kind(schedule: str, step: int) -> str:
    """What step `step` (from 0) does under `schedule`: "edges", "nodes" or "both"."""
    if schedule == "edges-only":
        return "edges"
    if schedule == "nodes-only":
        return "nodes"
    if schedule == "interleave":
        return "both"
    return "edges" if step % 2 == 0 else "nodes"


def _structure(graph: Graph) -> list[tuple[str, tuple[str, ...]]]:
    """The wiring of a realised graph: what changes when the deterministic edges change."""
    return [(name, graph.nodes[name].inputs) for name in graph.order]


class SwarmTrainer(Trainer):
    """The training loop for a composite graph: edge steps, node steps, or both."""

    swarm: Swarm

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Same arguments as `Trainer`."""
        super().__init__(*args, **kwargs)
        cfg = self.edges_config
        self.edge_optimizer = EdgeOptimizer(
            self.swarm.named_edges(),
            lr=cfg.lr,
            betas=cfg.betas,
            eps=cfg.eps,
            baseline_decay=cfg.baseline_decay,
        )

    @property
    def edges_config(self) -> EdgesConfig:
        return self.config.edges or EdgesConfig()

    # -- the model: a swarm, run as its deterministic realisation -------------------------

    def _load_graph(self) -> Graph:
        path = self.config.graph.path
        if path is None:
            raise ConfigError(
                "a composite graph is read from a swarm spec: set graph.path", key="graph.path"
            )
        self.swarm = load_swarm(self.config.resolve(path))
        return self._realise()

    def _realise(self) -> Graph:
        cfg = self.edges_config
        return self.swarm.realise_deterministic(cfg.threshold, temperature=cfg.temperature)

    def _text_parameters(self) -> list[tuple[str, Parameter]]:
        # Every text of the swarm, also those of agents the current graph leaves out: an
        # edge step may bring them back, and the optimizer's state is keyed by name.
        return list(self.swarm.named_parameters())

    def _probabilities(self) -> dict[str, float]:
        return self.swarm.probabilities(self.edges_config.temperature)

    def _kept_edges(self) -> list[str]:
        cfg = self.edges_config
        decisions = self.swarm.threshold_decisions(cfg.threshold, temperature=cfg.temperature)
        return [name for name, keep in decisions.items() if keep]

    # -- run files -------------------------------------------------------------------------

    def _checkpoint_state(self, status: str) -> dict[str, Any]:
        return {
            **super()._checkpoint_state(status),
            "swarm": self.swarm.to_dict(),
            "edge_optimizer": self.edge_optimizer.state_dict(),
        }

    def _best_graph_dict(self) -> dict[str, Any]:
        return self.swarm.to_dict()

    def _checkpoint(self, status: str = "running") -> None:
        super()._checkpoint(status)
        atomic_write_json(self.files.realised_graph, self.graph.to_dict())

    def _restore_model(self, state: Mapping[str, Any]) -> None:
        if "swarm" not in state:
            raise DataError(
                f"{self.files.checkpoint} holds no swarm: it was written by a single-graph "
                f"run, which cannot be resumed as a composite graph",
                str(self.files.checkpoint),
            )
        saved = swarm_from_dict(state["swarm"])
        self.swarm.load_state_dict(saved.state_dict())
        self.swarm.load_edge_state_dict(saved.edge_state_dict())
        if "edge_optimizer" in state:
            self.edge_optimizer.load_state_dict(state["edge_optimizer"])
        self.graph = self._realise()

    def _summary_extra(self) -> dict[str, Any]:
        return {
            "edges": {
                "probabilities": self._probabilities(),
                "logits": self.swarm.edge_state_dict(),
                "kept": self._kept_edges(),
                "threshold": self.edges_config.threshold,
            }
        }

    # -- one step --------------------------------------------------------------------------

    async def _step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        before = self.meter.snapshot()
        kind = step_kind(self.edges_config.schedule, self.step)
        edges: dict[str, Any] | None = None
        if kind in ("edges", "both"):
            edges = await self._edge_step()
        if kind in ("nodes", "both"):
            record = await super()._step()
        elif edges is not None:
            record = {
                "step": self.step,
                "batch": [],
                "backward": [],
                "gradients": {},
                "proposals": [],
                "changed": edges["flipped"] if edges["regated"] else [],
                "candidate_score": edges["gate"].get("score"),
                "incumbent_score": edges["incumbent_score"],
                "accepted": edges["regated"],
                "gate": edges["gate"],
            }
        else:  # unreachable: step_kind returns "edges", "nodes" or "both"
            raise ValueError(f"unknown step kind {kind!r}")
        spent = self.meter.snapshot() - before
        record.update(
            {
                "kind": kind,
                "edges": edges,
                "edge_probabilities": self._probabilities(),
                "kept_edges": self._kept_edges(),
                "state": self.swarm.state_dict(),
                "best_gate": self.best_gate,
                "spend": _spend_dict(spent.by_phase()),
                "wall_s": round(time.perf_counter() - t0, 3),
            }
        )
        return record

    async def _edge_step(self) -> dict[str, Any]:
        cfg = self.edges_config
        seed, step = self.config.seed, self.step
        train = list(self.splits.train)
        batch = random.Random(f"{seed}/{step}/edges-batch").sample(
            train, min(cfg.batch_size, len(train))
        )
        rng = random.Random(f"{seed}/{step}/edges")
        before = self._probabilities()
        kept_before = self._kept_edges()
        samples = [self.swarm.sample(rng, cfg.temperature) for _ in range(cfg.samples)]
        total = len(distinct_samples(samples)) * len(batch)
        self.progress("examples", {"what": "sampled graphs", "done": 0, "total": total})
        done = 0

        def tick(_result: object) -> None:
            nonlocal done
            done += 1
            self.progress("examples", {"what": "sampled graphs", "done": done, "total": total})

        scored: list[ScoredGraph] = await score_samples(
            samples, batch, self.splits.metric, self.ctx, on_result=tick
        )
        self.edge_optimizer.zero_grad()
        update = self.edge_optimizer.accumulate(
            [s.sample for s in scored], [s.utility for s in scored]
        )
        self.edge_optimizer.step()
        kept_after = self._kept_edges()
        flipped = [n for n in self._probabilities() if (n in kept_before) != (n in kept_after)]
        incumbent = self.best_gate
        gate: dict[str, Any] = {}
        regated = False
        if flipped:
            realised = self._realise()
            if _structure(realised) != _structure(self.graph):
                # The graph the next text step starts from changed: score it, it is the
                # new incumbent (edge steps are not gated; see the module docstring).
                self.graph = realised
                gate = await self._gate(None)
                self.best_gate = gate["score"]
                regated = True
            else:
                self.graph = realised
        return {
            "batch": [e.id for e in batch],
            "samples": [s.to_dict() for s in scored],
            "distinct_graphs": len(distinct_samples(samples)),
            **update.to_dict(),
            "probabilities_before": before,
            "probabilities": self._probabilities(),
            "logits": self.swarm.edge_state_dict(),
            "kept_before": kept_before,
            "kept": kept_after,
            "flipped": flipped,
            "regated": regated,
            "gate": gate,
            "incumbent_score": incumbent,
            "temperature": cfg.temperature,
            "threshold": cfg.threshold,
        }
