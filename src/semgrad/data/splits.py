"""Deterministic, disjoint splits made from one seeded shuffle.

Drawing train and test from two shuffles lets them overlap (the reference code's BBH split
shares 18 of its 20 training questions with its test set). Here every split of a call is a
consecutive block of *one* permutation, so disjointness holds by construction, and
`assert_disjoint` checks it anyway where splits come from elsewhere.

The permutation is `random.Random(seed).shuffle` over the examples in the order given: it
depends only on the seed and that order (no `hash()`, so it is the same in every process),
and it is the shuffle the common GSM8K split recipes use.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from semgrad.data.example import Example
from semgrad.errors import DataError, UserInputError

__all__ = ["assert_disjoint", "split", "split_sizes"]


def split_sizes(total: int, sizes: Mapping[str, int | float]) -> dict[str, int]:
    """How many examples each named split gets out of `total`.

    An ``int`` is a count; a ``float`` in [0, 1] is a fraction of `total`. Fractions are
    rounded cumulatively (in the order given), so fractions summing to 1 use every example
    and each split is within one example of its exact share. Raises `UserInputError` when
    the sizes ask for more than `total` examples, naming the numbers.
    """
    if not sizes:
        raise UserInputError("no split sizes given; pass e.g. sizes={'train': 0.8, 'test': 0.2}.")
    counts: dict[str, int] = {}
    fraction_sum = 0.0
    placed = 0
    for name, size in sizes.items():
        if isinstance(size, bool) or not isinstance(size, int | float):
            raise UserInputError(
                f"split {name!r} has size {size!r}; a size is an int (a count) or a float "
                f"between 0 and 1 (a fraction)."
            )
        if isinstance(size, int):
            if size < 0:
                raise UserInputError(f"split {name!r} has negative size {size}.")
            counts[name] = size
            continue
        if not 0.0 <= size <= 1.0:
            raise UserInputError(
                f"split {name!r} has fraction {size!r}; a fraction must be between 0 and 1 "
                f"(pass an int for a count)."
            )
        fraction_sum += size
        boundary = _round_half_up(total * fraction_sum)
        counts[name] = boundary - placed
        placed = boundary
    if fraction_sum > 1.0 + 1e-9:
        shares = ", ".join(f"{k}={v!r}" for k, v in sizes.items() if isinstance(v, float))
        raise UserInputError(
            f"the split fractions add up to {fraction_sum:g} ({shares}), more than 1; "
            f"make them sum to at most 1."
        )
    requested = sum(counts.values())
    if requested > total:
        asked = ", ".join(f"{k}={counts[k]}" for k in counts)
        raise UserInputError(
            f"the splits ask for {requested} examples ({asked}) but only {total} are "
            f"available; shrink the splits to at most {total} examples in all."
        )
    return counts


def _round_half_up(x: float) -> int:
    # Not round(): banker's rounding would make 2.5 -> 2 but 3.5 -> 4.
    return int(x + 0.5 + 1e-9)


def split(
    examples: Sequence[Example], *, seed: int, sizes: Mapping[str, int | float]
) -> dict[str, tuple[Example, ...]]:
    """Named, disjoint splits of `examples` from one ``random.Random(seed)`` shuffle.

    The splits are consecutive blocks of that one permutation, in the order of `sizes`;
    each keeps the shuffled order. Examples not asked for are left out. The result depends
    only on `seed`, `sizes` and the order of `examples`, so pass a sequence (a `set` has no
    stable order and is refused). Example ids must be unique.

    For example ``split(examples, seed=0, sizes={"train": 50, "val": 50, "test": 0.5})``
    gives 50 + 50 examples and half of all examples, from one permutation.
    """
    if isinstance(examples, set | frozenset):
        raise UserInputError(
            "split() needs the examples as a list or tuple: a set has no stable order, "
            "so the split would change between runs."
        )
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise UserInputError(f"the split seed must be an int, got {seed!r}.")
    pool = list(examples)
    _check_unique_ids(pool)
    counts = split_sizes(len(pool), sizes)
    random.Random(seed).shuffle(pool)
    out: dict[str, tuple[Example, ...]] = {}
    start = 0
    for name, count in counts.items():
        out[name] = tuple(pool[start : start + count])
        start += count
    return out


def _check_unique_ids(examples: Sequence[Example]) -> None:
    seen: set[str] = set()
    duplicates: list[str] = []
    for example in examples:
        if example.id in seen and example.id not in duplicates:
            duplicates.append(example.id)
        seen.add(example.id)
    if duplicates:
        raise DataError(
            f"{len(duplicates)} example ids occur more than once ({_preview(duplicates)}); "
            f"every example needs a unique id so that splits can be checked for overlap."
        )


def assert_disjoint(
    splits: Mapping[str, Sequence[Example]],
    *,
    key: Callable[[Example], Any] = lambda example: example.id,
) -> None:
    """Raise `DataError` if any two splits share an example, naming the splits and ids.

    `key` says what "the same example" means: the id by default; pass e.g.
    ``key=lambda e: e.inputs["question"]`` to check that no question text is shared.
    """
    owner: dict[Any, str] = {}
    overlaps: dict[tuple[str, str], list[Any]] = {}
    for name, examples in splits.items():
        for example in examples:
            k = key(example)
            first = owner.setdefault(k, name)
            if first != name:
                overlaps.setdefault((first, name), []).append(k)
    if overlaps:
        parts = [
            f"{a!r} and {b!r} share {len(keys)} ({_preview(keys)})"
            for (a, b), keys in overlaps.items()
        ]
        raise DataError(
            f"the splits overlap: {'; '.join(parts)}. Make all splits from one shuffle "
            f"with semgrad.data.split()."
        )


def _preview(items: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", … {len(items) - limit} more" if len(items) > limit else "")
