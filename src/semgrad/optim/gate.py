"""A gate that can tell (ALGORITHMS.md §7): paired decisions on per-item scores.

A candidate is compared with the incumbent **on the same items**: an item is a win when
the candidate scores higher on it, a loss when lower, a tie otherwise. With deterministic
scoring the incumbent's per-item scores are what it would score again, so only the items
on which the two disagree carry information, and a paired rule looks only at those.

Two rules, both pure functions of (wins, losses):

- ``margin`` (default): accept when wins − losses ≥ margin (default 1). Ties are rejections.
- ``sign``: a one-sided sign test at ``level``: accept when wins > losses and
  P(X ≥ wins | X ~ Binomial(wins + losses, ½)) ≤ level. For larger gates.

Early stop stays exact: `PairedGate.hopeless` says when even winning every remaining item
could not pass the rule, so scoring can stop; the decision is then a rejection marked
``partial`` and its scores are never reported as the candidate's gate score.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from semgrad.errors import ConfigError

__all__ = ["GateRule", "PairedDecision", "PairedGate", "compare", "screen"]

GateRule = Literal["margin", "sign"]


@dataclass(frozen=True)
class PairedDecision:
    """The outcome of one paired comparison of a candidate with the incumbent."""

    accepted: bool
    wins: int
    losses: int
    ties: int
    evaluated: int  # items both were scored on
    of: int  # items in the gate
    partial: bool  # scoring stopped early: a rejection decided before the last item
    rule: str  # e.g. "margin>=1" or "sign<=0.05"
    p_value: float | None = None

    @property
    def net(self) -> int:
        return self.wins - self.losses


def compare(
    candidate: Mapping[str, float], incumbent: Mapping[str, float]
) -> tuple[int, int, int]:
    """(wins, losses, ties) of `candidate` against `incumbent` on the items both have,
    in the incumbent's item order."""
    wins = losses = ties = 0
    for item, p in incumbent.items():
        c = candidate.get(item)
        if c is None:
            continue
        if c > p:
            wins += 1
        elif c < p:
            losses += 1
        else:
            ties += 1
    return wins, losses, ties


def sign_test_p(wins: int, losses: int) -> float:
    """One-sided sign test: P(X ≥ wins) for X ~ Binomial(wins + losses, ½); 1.0 with no
    disagreeing items."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail: int = sum(math.comb(n, k) for k in range(wins, n + 1))
    return tail / float(2**n)


@dataclass(frozen=True)
class PairedGate:
    """The acceptance rule. `margin` for the default rule, `level` for the sign test."""

    rule: GateRule = "margin"
    margin: int = 1
    level: float = 0.05

    def __post_init__(self) -> None:
        if self.rule not in ("margin", "sign"):
            raise ConfigError(f'must be "margin" or "sign", got {self.rule!r}', key="gate_rule")
        if self.margin < 1:
            raise ConfigError(
                f"must be at least 1 (a tie is never an improvement), got {self.margin}",
                key="gate_margin",
            )
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"must be in (0, 1), got {self.level}", key="gate_level")

    @property
    def name(self) -> str:
        return f"margin>={self.margin}" if self.rule == "margin" else f"sign<={self.level}"

    def passes(self, wins: int, losses: int) -> bool:
        if self.rule == "margin":
            return wins - losses >= self.margin
        return wins > losses and sign_test_p(wins, losses) <= self.level

    def hopeless(self, wins: int, losses: int, remaining: int) -> bool:
        """True when even winning every one of the `remaining` items could not pass."""
        return not self.passes(wins + remaining, losses)

    def decide(
        self,
        candidate: Mapping[str, float],
        incumbent: Mapping[str, float],
        *,
        partial: bool = False,
    ) -> PairedDecision:
        """The decision on the items scored so far (`partial` when scoring stopped early:
        then the decision is a rejection)."""
        wins, losses, ties = compare(candidate, incumbent)
        evaluated = wins + losses + ties
        accepted = not partial and self.passes(wins, losses)
        p = sign_test_p(wins, losses) if self.rule == "sign" else None
        return PairedDecision(
            accepted, wins, losses, ties, evaluated, len(incumbent), partial, self.name, p
        )


def screen(
    candidates: Sequence[Mapping[str, float]], parent: Mapping[str, float]
) -> list[int]:
    """Successive halving's cut: the indices of the candidates that beat the parent on
    the same screening items (more wins than losses), best first (by net wins, then by
    the order given, so the result is deterministic). A candidate that lost or tied the
    screen never reaches the gate."""
    scored = []
    for i, cand in enumerate(candidates):
        wins, losses, _ = compare(cand, parent)
        if wins > losses:
            scored.append((-(wins - losses), i))
    return [i for _, i in sorted(scored)]
