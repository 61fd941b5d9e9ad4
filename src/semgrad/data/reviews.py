"""`reviews`: a bundled task whose labelling convention is learnable only through feedback.

Short product and restaurant reviews with a clear sentiment, labelled ``POS`` or ``NEG``.
The model knows sentiment; what it cannot know is that the answer must be exactly one of
those two tags, because the initial instruction never says so. The only place the
convention appears is the metric's feedback (`The expected output is: "NEG".`), so a rise
in accuracy measures whether feedback reaches the instruction.

Generated from our own templates with fixed seeds; a review text belongs to exactly one
split, chosen by the sha256 of the text, so splits can never overlap.
"""

from __future__ import annotations

import hashlib
import random
from typing import Literal

from semgrad.data.example import Example

__all__ = ["REVIEWS_SIZES", "REVIEW_LABELS", "generate_reviews", "reviews_split_of"]

ReviewsSplit = Literal["train", "val", "test"]
REVIEWS_SIZES: dict[str, int] = {"train": 60, "val": 40, "test": 60}
REVIEW_LABELS = ("POS", "NEG")
_SEEDS = {"train": 11, "val": 22, "test": 33}

_THINGS = [
    ("the pasta", "it was"),
    ("the hotel room", "it was"),
    ("this blender", "it is"),
    ("the service", "it was"),
    ("these headphones", "they are"),
    ("the coffee", "it was"),
    ("this phone case", "it is"),
    ("the delivery", "it was"),
    ("the concert", "it was"),
    ("this backpack", "it is"),
    ("the pizza", "it was"),
    ("these running shoes", "they are"),
    ("the museum tour", "it was"),
    ("this desk lamp", "it is"),
    ("the ferry ride", "it was"),
    ("the soup", "it was"),
    ("this umbrella", "it is"),
    ("the haircut", "it was"),
]
_GOOD = ["wonderful", "excellent", "delightful", "superb", "fantastic", "great value", "lovely"]
_BAD = ["awful", "terrible", "disappointing", "a waste of money", "horrible", "broken", "dreadful"]
_GOOD_TAIL = [
    "I would happily buy it again.",
    "I recommend it to everyone.",
    "Five stars from me.",
    "It made my day.",
    "Worth every penny.",
]
_BAD_TAIL = [
    "I want my money back.",
    "Never again.",
    "One star is too many.",
    "It ruined my evening.",
    "Avoid it.",
]
_OPENERS = ["Honestly,", "Well,", "To be fair,", "In short,", "After a week,", ""]


def reviews_split_of(text: str) -> ReviewsSplit:
    bucket = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % 10
    return "train" if bucket < 4 else "val" if bucket < 6 else "test"


def _review(rng: random.Random, positive: bool) -> tuple[str, str]:
    thing, verb = rng.choice(_THINGS)
    adjective = rng.choice(_GOOD if positive else _BAD)
    tail = rng.choice(_GOOD_TAIL if positive else _BAD_TAIL)
    opener = rng.choice(_OPENERS)
    subject = f"{opener} {thing}" if opener else thing[0].upper() + thing[1:]
    pronoun, be = verb.split()
    text = f"{subject} - {pronoun} {be} {adjective}. {tail}".strip()
    return text, "POS" if positive else "NEG"


def generate_reviews(split: ReviewsSplit, n: int | None = None) -> tuple[Example, ...]:
    """The first `n` reviews of a split (all `REVIEWS_SIZES[split]` by default)."""
    if split not in _SEEDS:
        raise ValueError(f"unknown split {split!r}; use train, val or test")
    n = REVIEWS_SIZES[split] if n is None else n
    rng = random.Random(_SEEDS[split])
    seen: set[str] = set()
    out: list[Example] = []
    for _ in range(100_000):
        if len(out) == n:
            break
        # Labels alternate, so every prefix of a split is balanced: a gate on the first 20
        # examples cannot reward an instruction that always answers the same label.
        text, label = _review(rng, positive=len(out) % 2 == 0)
        if text in seen or reviews_split_of(text) != split:
            continue
        seen.add(text)
        out.append(Example(f"reviews/{split}/{len(out)}", {"question": text}, label))
    else:  # pragma: no cover - the template space is far larger than the sizes
        raise RuntimeError(f"could not generate {n} distinct {split} reviews")
    return tuple(out)
