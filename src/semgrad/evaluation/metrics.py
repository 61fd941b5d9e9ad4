"""Metrics: score a model's reply against an example's target and say why, in words.

A metric returns a `Score`: a value in [0, 1], the feedback text that seeds semantic
backpropagation (``The expected output is: "18".``), and the answer it extracted from the
reply. Extraction and normalisation are explicit and tested because exact string match on
raw replies (``1,000`` vs ``1000``, ``(A)`` vs ``A``) silently under-counts.

A reply from which no answer can be extracted is a wrong answer (score 0, feedback saying so),
never an exception. A target the metric cannot read (a non-numeric target for `NumericMatch`)
is a data problem and raises `DataError`.

How the final answer is found in a chain-of-thought reply, for every metric:

1. the last explicit marker: ``\\boxed{X}``, ``#### X``, ``answer is X``, ``Answer: X``;
2. else the last non-empty line;
3. for typed answers (numbers, choice letters, labels) a last resort: the last
   answer-shaped token anywhere in the reply.

Only the last `semgrad.text.MAX_PARSE_CHARS` characters of a reply are read, and every
parser is linear in what it reads: a hostile multi-megabyte reply is scored in well under
a second.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, Protocol, runtime_checkable

from semgrad.data.example import Example
from semgrad.data.loaders import LIAR_BINARY_LABELS, LIAR_LABELS
from semgrad.data.tasks import Task
from semgrad.errors import DataError, UserInputError
from semgrad.text import parse_window

__all__ = [
    "LIAR_BINARY_LABELS",
    "ChoiceMatch",
    "ExactMatch",
    "LabelMatch",
    "Metric",
    "NumericMatch",
    "Score",
    "format_target",
    "metric_for",
    "note_truncation",
    "task_metric",
]

CORRECT_FEEDBACK = "The output is correct."
NO_ANSWER_FEEDBACK = "No final answer was found in the output."


@dataclass(frozen=True)
class Score:
    """The verdict on one reply.

    `prediction` is the answer extracted from the reply in normalised form (``"1000"``,
    ``"(B)"``, ``"half-true"``), or ``""`` when no answer could be extracted.
    """

    value: float
    feedback: str
    prediction: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 1.0:
            raise ValueError(f"a score must be in [0, 1], got {self.value!r}")

    @property
    def correct(self) -> bool:
        return self.value >= 1.0


@runtime_checkable
class Metric(Protocol):
    """Scores the text a graph produced for an example. Must not raise on any reply."""

    @property
    def name(self) -> str: ...

    def __call__(self, prediction_text: str, example: Example) -> Score: ...


def note_truncation(score: Score, cut_off: Sequence[tuple[str, int]], output_node: str) -> Score:
    """`score` with feedback saying which replies were cut off at max_tokens.

    `cut_off` holds (node, tokens) per truncated reply. The value stays what the metric
    said: a reply that stated its answer before the cut is still right, and a number read
    from an unfinished reply is usually wrong anyway. But the feedback must not let a
    number from the middle of a calculation pass for the model's answer, so it says the
    reply stopped early and the answer is likely not its last word.
    """
    if not cut_off:
        return score
    notes = []
    for node, tokens in cut_off:
        whose = "The reply" if node == output_node else f"The reply of node {node!r}"
        notes.append(
            f"{whose} was cut off after max_tokens ({tokens} tokens), before it finished; "
            f"what was read from it may be an intermediate step, not a final answer."
        )
    return Score(score.value, " ".join([score.feedback, *notes]), score.prediction)


# --- finding the final answer in a reply -----------------------------------------------------

# "the answer is X", "Final answer: X", "answer = X". A bare "answer" ("the answer depends")
# is not a marker. Markdown bold is removed before matching, so "**Answer:** X" works too.
_ANSWER_MARKER = re.compile(
    r"\banswer\b\s*(?:is\b\s*:?|would\s+be\b|should\s+be\b|:|=)\s*", re.IGNORECASE
)
_HASH_MARKER = re.compile(r"####\s*")
_BOXED = re.compile(r"\\boxed\s*\{")


@dataclass(frozen=True)
class _Fragment:
    text: str
    explicit: bool  # came from a marker (take the first answer in it) or not (take the last)


_BRACE = re.compile(r"[{}]")
_NON_SPACE = re.compile(r"\S")


def _closing_braces(text: str) -> dict[int, int]:
    """For each ``{`` that is closed, the index of its ``}``: one pass with a stack."""
    closing: dict[int, int] = {}
    stack: list[int] = []
    for m in _BRACE.finditer(text):
        if m.group() == "{":
            stack.append(m.start())
        elif stack:
            closing[stack.pop()] = m.start()
    return closing


def _rest_of_line(text: str, start: int, limit: int) -> str:
    """The text from `start` to the end of its line (the next non-empty line if that is
    empty), read no further than `limit`."""
    first = _NON_SPACE.search(text, start, limit)
    if first is None:
        return ""
    end = text.find("\n", first.start(), limit)
    return text[first.start() : limit if end < 0 else end].strip()


def _clean_reply(text: str) -> str:
    """The reply as parsers read it: its last `MAX_PARSE_CHARS` characters (where the answer
    is), with Windows line ends and markdown emphasis removed."""
    text = parse_window(text)
    return text.replace("\r\n", "\n").replace("**", "").replace("__", "").strip()


def _marker_fragments(text: str) -> list[_Fragment]:
    """Every explicitly marked answer in the reply, in order of position (last = preferred).

    A marked answer is the content of ``\\boxed{...}`` (nested braces balanced, to the end
    of the reply if never closed) or the rest of the line after ``####`` or an answer
    phrase, and it ends where the next marker starts: fragments never overlap, so the work
    is linear in the reply's length however many markers it has.
    """
    # (marker start, content start, natural end or None for "rest of the line")
    markers: list[tuple[int, int, int | None]] = []
    boxed = list(_BOXED.finditer(text))
    closing = _closing_braces(text) if boxed else {}
    for m in boxed:
        markers.append((m.start(), m.end(), closing.get(m.end() - 1, len(text))))
    for pattern in (_HASH_MARKER, _ANSWER_MARKER):
        markers.extend((m.start(), m.end(), None) for m in pattern.finditer(text))
    markers.sort()
    fragments: list[_Fragment] = []
    for i, (_, content, natural_end) in enumerate(markers):
        limit = markers[i + 1][0] if i + 1 < len(markers) else len(text)
        if natural_end is None:
            fragment = _rest_of_line(text, content, limit)
        else:
            fragment = text[content : min(natural_end, limit)].strip()
        if fragment:
            fragments.append(_Fragment(fragment, explicit=True))
    return fragments


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    return lines[-1] if lines else ""


def _candidate_fragments(text: str, *, whole_reply: bool) -> list[_Fragment]:
    """Where to look for the answer, most preferred first."""
    markers = _marker_fragments(text)
    candidates = list(reversed(markers))
    last = _last_line(text)
    if last:
        candidates.append(_Fragment(last, explicit=False))
    if whole_reply and text:
        candidates.append(_Fragment(text, explicit=False))
    return candidates


def _feedback_miss(target: str, prediction: str) -> str:
    return f'The expected output is: "{target}". The answer given was "{prediction}".'


def _feedback_none(target: str) -> str:
    return f'{NO_ANSWER_FEEDBACK} The expected output is: "{target}".'


def _verdict(target: str, prediction: str | None, correct: bool) -> Score:
    if prediction is None:
        return Score(0.0, _feedback_none(target), "")
    if correct:
        return Score(1.0, CORRECT_FEEDBACK, prediction)
    return Score(0.0, _feedback_miss(target, prediction), prediction)


# --- numbers ----------------------------------------------------------------------------------

# A number as people write it: optional sign, attached to the number and not after a word,
# digit or bracket (so "5-3" and "27 - 7" are two positive numbers), optional "$", thousands
# separators only in groups of three ("1,000", not "3,4"), optional decimals. Not preceded
# by a digit or by digit+separator, so "3,4" does not yield "4".
_NUMBER = re.compile(
    r"(?:(?<![\w)\]])(?P<sign>[-−–]))?"
    r"(?:\$\s?)?"
    r"(?<!\d)(?<!\d[.,])"
    r"(?P<int>\d{1,3}(?:,\d{3})+|\d+)"
    r"(?P<frac>\.\d+)?"
    r"(?![\d])"
)


def _parse_number(match: re.Match[str]) -> Decimal:
    digits = match.group("int").replace(",", "") + (match.group("frac") or "")
    value = Decimal(digits)
    return -value if match.group("sign") else value


def _format_number(value: Decimal) -> str:
    """Canonical text of a number: ``18.0`` -> ``18``, ``18.50`` -> ``18.5``, ``1E+3`` -> ``1000``."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


_SENTENCE_END = re.compile(r"\.(?!\d)|[;!?]")  # a decimal point is followed by a digit


def _marked_number(fragment: str) -> Decimal | None:
    """The number a marker points at: the first one in the marked sentence, or, when that
    sentence is a computation ("the answer is 12 + 15 - 7 = 20."), the one after its last
    ``=``."""
    sentence = _SENTENCE_END.split(fragment, maxsplit=1)[0]
    if "=" in sentence:
        after = _NUMBER.search(sentence.rsplit("=", 1)[1])
        if after is not None:
            return _parse_number(after)
    first = _NUMBER.search(fragment)
    return _parse_number(first) if first is not None else None


def _parse_target_number(target: str) -> Decimal | None:
    """The target as a number (``"1,000"``, ``"$18"``, ``"18.0"``, ``"-5"``), or None."""
    text = target.strip().rstrip(".")
    matches = list(_NUMBER.finditer(text))
    if len(matches) != 1 or text[: matches[0].start()].strip() not in ("", "$"):
        return None
    if text[matches[0].end() :].strip() not in ("", "%"):
        return None
    return _parse_number(matches[0])


@dataclass(frozen=True)
class NumericMatch:
    """The final number of the reply equals the numeric target (GSM8K, arith).

    The final number is the first number after the last explicit marker (``\\boxed{X}``,
    ``#### X``, ``answer is X``, ``Answer: X``), else the last number in the reply. ``1,000``,
    ``$18``, ``18.0``, ``18.50`` and ``-3`` are read as numbers; two numbers match when they
    are equal within `abs_tol` (or `rel_tol` of the target for large values).
    """

    name: ClassVar[str] = "numeric"
    abs_tol: float = 1e-6
    rel_tol: float = 1e-9

    def extract(self, prediction_text: str) -> Decimal | None:
        text = _clean_reply(prediction_text)
        for fragment in reversed(_marker_fragments(text)):
            found = _marked_number(fragment.text)
            if found is not None:
                return found
        numbers = list(_NUMBER.finditer(text))
        return _parse_number(numbers[-1]) if numbers else None

    def __call__(self, prediction_text: str, example: Example) -> Score:
        target = _parse_target_number(example.target)
        if target is None:
            raise DataError(
                f"example {example.id!r} has target {example.target!r}, which is not a number; "
                f"the 'numeric' metric needs numeric targets. Use the 'exact' metric for text."
            )
        predicted = self.extract(prediction_text)
        if predicted is None:
            return _verdict(example.target, None, False)
        # float() of a huge Decimal is inf, which is simply not close: no exception path.
        close = math.isclose(
            float(predicted), float(target), rel_tol=self.rel_tol, abs_tol=self.abs_tol
        )
        return _verdict(example.target, _format_number(predicted), close)


# --- text, choices and labels -----------------------------------------------------------------

_TRAILING_PUNCTUATION = ".,;:!?"
_QUOTES = "\"'`“”‘’"
_SINGLE_LETTER = re.compile(r"^\(?([a-z])\)?$")


def _normalize_text(text: str) -> str:
    """Case-folded, whitespace-collapsed, without surrounding quotes or trailing punctuation;
    a lone choice letter in any dress (``(A)``, ``A)``, ``a``) becomes ``a``."""
    out = " ".join(text.split()).casefold()
    # Peel the dress off both ends by moving two indices (linear, whatever the nesting).
    lo, hi = 0, len(out)
    while True:
        while lo < hi and out[lo].isspace():
            lo += 1
        while hi > lo and (out[hi - 1].isspace() or out[hi - 1] in _TRAILING_PUNCTUATION):
            hi -= 1
        if hi - lo >= 2 and out[lo] in _QUOTES and out[hi - 1] in _QUOTES:
            lo, hi = lo + 1, hi - 1
        else:
            break
    out = out[lo:hi]
    letter = _SINGLE_LETTER.match(out)
    return letter.group(1) if letter else out


@dataclass(frozen=True)
class ExactMatch:
    """The final answer equals the target after normalisation (BBH free-text tasks).

    The final answer is the text after the last explicit marker, else the last non-empty
    line. Both sides are normalised: case, whitespace, surrounding quotes,
    trailing punctuation, and ``(A)`` / ``A)`` / ``A`` for a lone choice letter.
    """

    name: ClassVar[str] = "exact"

    def extract(self, prediction_text: str) -> str | None:
        text = _clean_reply(prediction_text)
        for fragment in _candidate_fragments(text, whole_reply=False):
            normalized = _normalize_text(fragment.text)
            if normalized:
                return normalized
        return None

    def __call__(self, prediction_text: str, example: Example) -> Score:
        predicted = self.extract(prediction_text)
        if predicted is None:
            return _verdict(example.target, None, False)
        return _verdict(example.target, predicted, predicted == _normalize_text(example.target))


_LETTER_TARGET = re.compile(r"^\s*\(?([A-Za-z])\)?\s*$")
# Ways a choice letter is written inside a longer answer.
_LETTER_WHOLE = re.compile(r"^\(?([A-Za-z])\)?[.:,;!]?$")
_LETTER_LEADING = re.compile(r"^(?:\(([A-Za-z])\)|([A-Za-z])[).:])(?:\s|$)")
_LETTER_OPTION = re.compile(r"\b(?:option|choice)\s+\(?([A-Za-z])\)?(?![\w])", re.IGNORECASE)
_LETTER_PAREN = re.compile(r"\(([A-Za-z])\)")

# Two-valued answer vocabularies used by BBH, keyed by each word (case-folded).
_WORD_PAIRS: tuple[tuple[str, str], ...] = (("true", "false"), ("yes", "no"), ("valid", "invalid"))


def _letter_in(fragment: _Fragment) -> str | None:
    text = fragment.text.strip()
    whole = _LETTER_WHOLE.match(text)
    if whole:
        return whole.group(1).upper()
    hits = [(m.start(), m.group(1)) for m in _LETTER_OPTION.finditer(text)]
    hits += [(m.start(), m.group(1)) for m in _LETTER_PAREN.finditer(text)]
    leading = _LETTER_LEADING.match(text)
    if leading:
        hits.append((0, next(g for g in leading.groups() if g)))
    if not hits:
        return None
    # After a marker the first letter is the answer ("the answer is (B), not (C)"); in a
    # plain line the last one is ("(A) is wrong, so (B)").
    hits.sort()
    _, letter = hits[0] if fragment.explicit else hits[-1]
    return letter.upper()


def _word_pattern(words: Sequence[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])({alternatives})(?![\w-])", re.IGNORECASE)


def _word_in(fragment: _Fragment, pattern: re.Pattern[str]) -> str | None:
    hits = [m.group(1) for m in pattern.finditer(fragment.text)]
    if not hits:
        return None
    return (hits[0] if fragment.explicit else hits[-1]).casefold()


@dataclass(frozen=True)
class ChoiceMatch:
    """The chosen option equals the target (BBH multiple choice and two-valued tasks).

    The kind of answer is read from the target: a letter (``(A)``) is compared as a letter,
    whatever its dress in the reply (``A``, ``(a)``, ``A)``, ``answer: (A)``, ``option A``,
    ``(A) 12/25/1937``); ``True``/``False``, ``Yes``/``No`` and ``valid``/``invalid`` are
    compared as words, case-insensitively; any other target (the three upstream BBH items
    with a text target) as normalised text, like `ExactMatch`.
    """

    name: ClassVar[str] = "choice"

    def __call__(self, prediction_text: str, example: Example) -> Score:
        text = _clean_reply(prediction_text)
        target = example.target.strip()
        letter = _LETTER_TARGET.match(target)
        if letter:
            return self._score_letter(text, example.target, letter.group(1).upper())
        pair = next((p for p in _WORD_PAIRS if target.casefold() in p), None)
        if pair is not None:
            return self._score_word(text, example.target, pair)
        return ExactMatch()(prediction_text, example)

    @staticmethod
    def _score_letter(text: str, target_text: str, target: str) -> Score:
        for fragment in _candidate_fragments(text, whole_reply=True):
            found = _letter_in(fragment)
            if found is not None:
                return _verdict(target_text, f"({found})", found == target)
        return _verdict(target_text, None, False)

    @staticmethod
    def _score_word(text: str, target_text: str, pair: tuple[str, str]) -> Score:
        pattern = _word_pattern(pair)
        for fragment in _candidate_fragments(text, whole_reply=True):
            found = _word_in(fragment, pattern)
            if found is not None:
                return _verdict(target_text, found, found == target_text.strip().casefold())
        return _verdict(target_text, None, False)


def _label_regex(label: str) -> str:
    """A label's words joined by any run of spaces or hyphens; LIAR's ``pants-fire`` also
    matches ``pants on fire``."""
    words = [re.escape(w) for w in re.split(r"[\s\-]+", label.strip()) if w]
    if [w.casefold() for w in words] == ["pants", "fire"]:
        return r"pants[\s\-]+(?:on[\s\-]+)?fire"
    return r"[\s\-]+".join(words)


def _canonical_label(found: str, labels: Sequence[str]) -> str:
    key = re.sub(r"[\s\-]+", "-", found.strip().casefold()).replace("pants-on-fire", "pants-fire")
    for label in labels:
        if re.sub(r"[\s\-]+", "-", label.casefold()) == key:
            return label
    return found


@dataclass(frozen=True)
class LabelMatch:
    """The predicted class label equals the target label (LIAR).

    `labels` is the label vocabulary: `LIAR_BINARY_LABELS` (``Yes`` = it is a lie, ``No``)
    or `LIAR_LABELS` (the six truthfulness labels). With ``labels=None`` the vocabulary is
    chosen per example: Yes/No when the target is one of them, else the six LIAR labels.
    Labels are matched as whole words, case-insensitively, with spaces and hyphens
    interchangeable (``half true`` = ``half-true``; ``pants on fire`` = ``pants-fire``),
    longer labels first so ``barely-true`` is not read as ``true``.
    """

    name: ClassVar[str] = "label"
    labels: tuple[str, ...] | None = None

    def vocabulary(self, example: Example) -> tuple[str, ...]:
        if self.labels is not None:
            return self.labels
        if example.target.strip().casefold() in ("yes", "no"):
            return LIAR_BINARY_LABELS
        return LIAR_LABELS

    def __call__(self, prediction_text: str, example: Example) -> Score:
        labels = self.vocabulary(example)
        ordered = sorted(labels, key=len, reverse=True)
        alternatives = "|".join(_label_regex(label) for label in ordered)
        pattern = re.compile(rf"(?<![\w-])({alternatives})(?![\w-])", re.IGNORECASE)
        target = _canonical_label(example.target, labels)
        text = _clean_reply(prediction_text)
        for fragment in _candidate_fragments(text, whole_reply=True):
            found = _word_in(fragment, pattern)
            if found is not None:
                predicted = _canonical_label(found, labels)
                return _verdict(example.target, predicted, predicted == target)
        # No label at all: say which labels exist, as a judge would; that is the feedback
        # from which a system can learn a labelling convention it was never told.
        return Score(
            0.0,
            f"The output contains none of the labels ({', '.join(labels)}). "
            f'The expected output is: "{example.target}".',
            "",
        )


_METRICS: dict[str, type[NumericMatch] | type[ChoiceMatch] | type[ExactMatch] | type[LabelMatch]]
_METRICS = {
    "numeric": NumericMatch,
    "choice": ChoiceMatch,
    "exact": ExactMatch,
    "label": LabelMatch,
}


def _target_replies(target: str) -> tuple[str, ...]:
    """The replies `format_target` tries, in order: the answer marker every built-in
    metric reads first (``Answer: 18``), then the bare target."""
    text = target.strip()
    return (f"Answer: {text}", text) if text else ()


def format_target(metric: Metric, example: Example) -> str | None:
    """The example's target written as a reply `metric` scores 1, or None.

    For labelled demonstrations (DSPy's LabeledFewShot): the reply must contain the
    answer where the metric looks for it, so each candidate of `_target_replies` is scored
    by the metric itself and the first one scoring 1 is returned. A metric that scores none
    of them 1 (an empty target, a metric that wants more than the answer) gives None: no
    demo rather than a demo the run's own measure calls wrong.
    """
    for reply in _target_replies(example.target):
        if metric(reply, example).correct:
            return reply
    return None


def metric_for(name: str, **options: Any) -> Metric:
    """The metric called `name` ("numeric", "choice", "exact", "label"), for configs.

    `options` go to the metric's constructor, e.g. ``metric_for("label", labels=["Yes", "No"])``.
    """
    key = name.strip().lower()
    if key not in _METRICS:
        raise UserInputError(
            f"unknown metric {name!r}; the metrics are: {', '.join(_METRICS)}. "
            f"Use 'numeric' for GSM8K/arith, 'choice' or 'exact' for BBH, 'label' for LIAR."
        )
    if key == "label" and options.get("labels") is not None:
        options = {**options, "labels": tuple(options["labels"])}
    try:
        metric: Metric = _METRICS[key](**options)
    except TypeError as exc:
        raise UserInputError(f"bad options for metric {name!r}: {exc}") from None
    return metric


def task_metric(task: Task) -> Metric:
    """The metric a task names (`Task.metric_name`, with its labels for "label")."""
    if task.metric_labels:
        return metric_for(task.metric_name, labels=task.metric_labels)
    return metric_for(task.metric_name)
