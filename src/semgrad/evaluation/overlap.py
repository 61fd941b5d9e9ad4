"""Text metrics beyond the final-answer matchers: strict equality, containment, token F1.

Like every metric they never raise on a reply and say in words what was expected.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar

from semgrad.data.example import Example
from semgrad.evaluation.metrics import (
    CORRECT_FEEDBACK,
    ExactMatch,
    Score,
    _clean_reply,
    _verdict,
)

__all__ = ["Contains", "StrictMatch", "TokenF1"]


@dataclass(frozen=True)
class StrictMatch:
    """The whole reply, stripped of surrounding whitespace, equals the target exactly
    (case and punctuation count). For replies that must be exactly one string."""

    name: ClassVar[str] = "strict"

    def __call__(self, prediction_text: str, example: Example) -> Score:
        reply = prediction_text.strip()
        return _verdict(example.target, reply, reply == example.target.strip())


@dataclass(frozen=True)
class Contains:
    """The target appears in the reply as whole words, case- and whitespace-insensitively
    (``Paris`` is in ``The capital is Paris.``, not in ``Parisian``)."""

    name: ClassVar[str] = "contains"

    def __call__(self, prediction_text: str, example: Example) -> Score:
        target = " ".join(example.target.split()).casefold().strip()
        reply = " ".join(_clean_reply(prediction_text).split()).casefold()
        if target and re.search(rf"(?<!\w){re.escape(target)}(?!\w)", reply):
            return Score(1.0, CORRECT_FEEDBACK, example.target.strip())
        return _verdict(example.target, ExactMatch().extract(prediction_text), False)


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation, no articles, split."""
    return _ARTICLES.sub(" ", text.casefold().translate(_PUNCTUATION)).split()


@dataclass(frozen=True)
class TokenF1:
    """Token-overlap F1 between the final answer and the target (SQuAD-style): partial
    credit for a partly right answer. The final answer is found as `ExactMatch` finds it
    (the last explicit marker, else the last line)."""

    name: ClassVar[str] = "f1"

    def __call__(self, prediction_text: str, example: Example) -> Score:
        answer = ExactMatch().extract(prediction_text)
        if answer is None:
            return _verdict(example.target, None, False)
        predicted, gold = _tokens(answer), _tokens(example.target)
        common = sum((Counter(predicted) & Counter(gold)).values())
        if not predicted or not gold:
            f1 = float(predicted == gold)
        elif common == 0:
            f1 = 0.0
        else:
            precision, recall = common / len(predicted), common / len(gold)
            f1 = 2 * precision * recall / (precision + recall)
        if f1 >= 1.0:
            return Score(1.0, CORRECT_FEEDBACK, answer)
        return Score(
            f1,
            f'The expected output is: "{example.target}". The answer given was "{answer}" '
            f"(token F1 {f1:.2f}).",
            answer,
        )
