"""A GEPA-style pool of accepted programs, and parents drawn from its Pareto front
(ALGORITHMS.md §3b, step 1: ``[optimizer] parents = "pareto"``).

With the default ``parents = "incumbent"`` every search step edits the one incumbent, and
a candidate that wins on some validation items but loses on as many is thrown away. With
``"pareto"`` the run keeps every program it accepted, each with its per-item gate scores,
and each step edits a *parent* drawn from the pool:

- an item's **front** is the set of programs with the highest score on it (items no
  program gets right say nothing and are left out);
- a program that another one scores at least as well as on every item, and better on one,
  is **dominated** and is never drawn (a tie on every item keeps the earlier program);
- each remaining program is drawn with probability proportional to the number of items
  whose front it is in (GEPA's frequency weighting), by a generator seeded by
  (seed, step), so a resumed run draws the same parent again.

A step's winner must beat *its parent* in the paired gate (§7) to join the pool. The
incumbent — what the run returns, checkpoints and reports as its best graph — is always
the pool's program with the highest mean gate score (the earlier on a tie). With one
program in the pool the parent is the incumbent, so the first step is the same as with
``"incumbent"``.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PoolEntry", "ProgramPool"]


@dataclass(frozen=True)
class PoolEntry:
    """One accepted program: its parameter texts (a graph state dict), its gate score per
    item, the pool index of the program it was derived from (None: the initial program)
    and the step that produced it (None: the initial program)."""

    state: dict[str, str]
    scores: dict[str, float]
    parent: int | None = None
    step: int | None = None

    @property
    def mean(self) -> float | None:
        return sum(self.scores.values()) / len(self.scores) if self.scores else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": dict(self.state),
            "scores": dict(self.scores),
            "parent": self.parent,
            "step": self.step,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PoolEntry:
        parent, step = d.get("parent"), d.get("step")
        return cls(
            state={str(k): str(v) for k, v in dict(d.get("state") or {}).items()},
            scores={str(k): float(v) for k, v in dict(d.get("scores") or {}).items()},
            parent=None if parent is None else int(parent),
            step=None if step is None else int(step),
        )


@dataclass
class ProgramPool:
    """The accepted programs of a run, in the order they were accepted (index 0 is the
    program the run started from)."""

    entries: list[PoolEntry] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> PoolEntry:
        return self.entries[index]

    def add(self, entry: PoolEntry) -> int:
        """Add `entry`; its index."""
        self.entries.append(entry)
        return len(self.entries) - 1

    def best(self) -> int:
        """The index of the program with the highest mean gate score (the earlier on a
        tie); the incumbent."""
        if not self.entries:
            raise ValueError("the pool is empty")
        return max(range(len(self.entries)), key=lambda i: (self.entries[i].mean or 0.0, -i))

    def front(self) -> dict[int, int]:
        """{index: number of items whose front it is in} for the programs that may be
        drawn as parents: on the front of some item and not dominated. Empty when no
        program gets any item right."""
        items = _items(self.entries)
        counts: dict[int, int] = {}
        for item in items:
            top = max(e.scores.get(item, 0.0) for e in self.entries)
            if top <= 0.0:
                continue
            for i, e in enumerate(self.entries):
                if e.scores.get(item, 0.0) == top:
                    counts[i] = counts.get(i, 0) + 1
        return {
            i: n
            for i, n in counts.items()
            if not any(_dominates(self.entries[j], self.entries[i], items, j < i) for j in counts)
        }

    def choose(self, rng: random.Random) -> int:
        """A parent: a draw from the front weighted by its counts; the incumbent when the
        front is empty."""
        front = self.front()
        if not front:
            return self.best()
        indices = sorted(front)
        return rng.choices(indices, weights=[front[i] for i in indices], k=1)[0]

    def to_dict(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.entries]

    @classmethod
    def from_dict(cls, rows: Sequence[Mapping[str, Any]]) -> ProgramPool:
        return cls([PoolEntry.from_dict(r) for r in rows])


def _items(entries: Sequence[PoolEntry]) -> list[str]:
    """Every item any program was scored on, in first-seen order."""
    seen: dict[str, None] = {}
    for e in entries:
        seen.update(dict.fromkeys(e.scores))
    return list(seen)


def _dominates(a: PoolEntry, b: PoolEntry, items: Sequence[str], earlier: bool) -> bool:
    """Whether `a` makes `b` redundant as a parent: at least as good on every item and
    better on one, or, when `a` is the `earlier` program, equal on every item."""
    if a is b:
        return False
    better = False
    for item in items:
        x, y = a.scores.get(item, 0.0), b.scores.get(item, 0.0)
        if x < y:
            return False
        better = better or x > y
    return better or earlier
