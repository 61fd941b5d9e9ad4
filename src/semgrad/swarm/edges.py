"""Learnable potential edges: a logit each, and the probability math of sampling them.

A potential edge e of a composite graph is kept with probability p_e = σ(θ_e / T), where θ_e
is its logit and T the sampling temperature (ALGORITHMS.md §5). Everything here is pure
arithmetic on floats: the log-probability of a decision, and its derivative with respect to
the logit, which is what REINFORCE needs:

    log p(x_e = 1) = log σ(z)       log p(x_e = 0) = log σ(-z)       z = θ_e / T
    ∂/∂θ_e log p(x_e) = (x_e − p_e) / T

The logs are computed as −softplus(∓z), which stays finite for any logit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from semgrad.errors import GraphError

__all__ = [
    "EdgeParameter",
    "decision_grad",
    "decision_log_prob",
    "logit",
    "sigmoid",
]


def sigmoid(z: float) -> float:
    """σ(z), without overflow for large |z|."""
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _softplus(z: float) -> float:
    """log(1 + e^z), without overflow."""
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def logit(p: float) -> float:
    """The logit of a probability in (0, 1): log(p / (1 − p))."""
    if not 0.0 < p < 1.0:
        raise GraphError(
            f"an edge probability must be strictly between 0 and 1, got {p!r}; "
            f"p = 0 or 1 would be an infinite logit (remove the edge, or make it fixed)"
        )
    return math.log(p / (1.0 - p))


def _check_temperature(temperature: float) -> None:
    if not temperature > 0.0 or math.isinf(temperature):
        raise GraphError(f"the sampling temperature must be a positive number, got {temperature!r}")


def decision_log_prob(edge_logit: float, included: bool, temperature: float = 1.0) -> float:
    """log p of one decision: log σ(θ/T) when the edge is included, log σ(−θ/T) when not."""
    _check_temperature(temperature)
    z = edge_logit / temperature
    return -_softplus(-z) if included else -_softplus(z)


def decision_grad(edge_logit: float, included: bool, temperature: float = 1.0) -> float:
    """∂ log p(decision) / ∂θ = (x − σ(θ/T)) / T."""
    _check_temperature(temperature)
    return ((1.0 if included else 0.0) - sigmoid(edge_logit / temperature)) / temperature


@dataclass(eq=False)
class EdgeParameter:
    """A learnable potential edge from agent `source`'s output to `target`.

    `target` is the decision node's name, or ``agent/node`` for a node of another agent.
    `logit` is the learnable value (θ); `p0` is the probability it started from, kept for
    reference. `grad` holds the REINFORCE gradient of the expected utility with respect to
    the logit (an ascent direction), filled by `EdgeOptimizer.accumulate`.
    """

    source: str
    target: str
    logit: float = 0.0
    p0: float = 0.5
    grad: float = field(default=0.0, repr=False)

    @classmethod
    def from_p0(cls, source: str, target: str, p0: float = 0.5) -> EdgeParameter:
        """An edge whose logit starts at logit(p0)."""
        return cls(source, target, logit(p0), p0)

    def __post_init__(self) -> None:
        if not math.isfinite(self.logit):
            raise GraphError(f"edge {self.name!r}: the logit must be finite, got {self.logit!r}")
        if not 0.0 < self.p0 < 1.0:
            raise GraphError(
                f"edge {self.name!r}: p0 must be strictly between 0 and 1, got {self.p0!r}"
            )

    @property
    def name(self) -> str:
        """The stable name that keys state dicts, history and reports: ``a1->decision``."""
        return f"{self.source}->{self.target}"

    def probability(self, temperature: float = 1.0) -> float:
        """p = σ(logit / T): the chance this edge is kept when a graph is sampled."""
        _check_temperature(temperature)
        return sigmoid(self.logit / temperature)

    def zero_grad(self) -> None:
        self.grad = 0.0
