"""Bootstrap confidence intervals over test items and seeds (pure Python, seeded)."""

from __future__ import annotations

import random
from collections.abc import Sequence

__all__ = ["bootstrap_mean", "ci", "mean", "pct", "verdict"]


def mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs) if xs else float("nan")


def bootstrap_mean(
    scores: Sequence[Sequence[float]],
    *,
    reps: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Mean of a seeds x items score matrix and its percentile bootstrap interval.

    Each replicate resamples the seeds with replacement and, independently, the test
    items with replacement (the same items for every seed, since every seed is scored on
    the same test split), so the interval covers both sources of variation. Pass
    per-item differences (method minus baseline, paired by seed and item) to get an
    interval for a difference.
    """
    rows = [list(r) for r in scores if len(r)]
    if not rows:
        return (float("nan"), float("nan"), float("nan"))
    n_items = len(rows[0])
    if any(len(r) != n_items for r in rows):
        raise ValueError("every seed must be scored on the same test items")
    point = mean([mean(r) for r in rows])
    rng = random.Random(seed)
    stats = []
    for _ in range(reps):
        picked = [rows[rng.randrange(len(rows))] for _ in rows]
        items = [rng.randrange(n_items) for _ in range(n_items)]
        stats.append(mean([mean([r[i] for i in items]) for r in picked]))
    stats.sort()
    lo = stats[int((1 - level) / 2 * reps)]
    hi = stats[min(reps - 1, int((1 + level) / 2 * reps))]
    return (point, lo, hi)


def pct(x: float) -> str:
    """A fraction as a percentage with one decimal; "—" for NaN (no data)."""
    return "—" if x != x else f"{100 * x:.1f}"


def ci(point: float, lo: float, hi: float, *, signed: bool = False) -> str:
    """A point estimate and its interval in points of accuracy: ``+4.0 [1.0, 7.0]``."""
    if point != point:
        return "—"
    sign = "+" if signed and point > 0 else ""
    return f"{sign}{100 * point:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]"


def verdict(lo: float, hi: float) -> str:
    """win / tie / loss by whether the interval lies above, straddles or lies below zero."""
    if lo != lo:
        return "—"
    return "win" if lo > 0 else "loss" if hi < 0 else "tie"

