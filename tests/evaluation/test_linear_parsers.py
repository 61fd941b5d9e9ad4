"""Every parser of model replies runs in linear time: hostile 2 MB replies in well under 2 s.

Each hostile reply repeats a fragment that made some parser quadratic (an unclosed
``\\boxed{``, an answer marker per word, nested quotes, a marker followed by a long run of
spaces, an unclosed ``<improved>``...). The bound is generous because the test machine may be
loaded; the quadratic versions took minutes on 50 KB.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from semgrad.autograd.backward import parse_feedback
from semgrad.data.example import Example
from semgrad.evaluation.metrics import ChoiceMatch, ExactMatch, LabelMatch, NumericMatch
from semgrad.graph.functions import BUILTINS
from semgrad.optim.optimizer import parse_improved
from semgrad.text import MAX_PARSE_CHARS

SIZE = 2_000_000
BOUND_S = 2.0


def _fill(unit: str, tail: str = "") -> str:
    return unit * (SIZE // len(unit)) + tail


HOSTILE = {
    "unclosed boxed": _fill("\\boxed{"),
    "nested boxed": _fill("\\boxed{{"),
    "closing braces": _fill("}"),
    "answer markers": _fill("answer: "),
    "answer is": _fill("answer is "),
    "hash markers": _fill("#### "),
    "marker then spaces": "answer" + " " * SIZE + "x",
    "quotes": _fill('"'),
    "parentheses": _fill("("),
    "options": _fill("option "),
    "numbers with commas": _fill("1,"),
    "decimals": _fill("1."),
    "dashes": _fill("-"),
    "labels": _fill("pants "),
    "newlines": _fill("\n", "x"),
    "mixed": _fill("\\boxed{answer: #### (A "),
    "improved": _fill("<improved>"),
    "improved then text": "<improved>" + "x" * SIZE,
    "feedback": _fill("<feedback_1><feedback_"),
}

EXAMPLE = Example("e", {"question": "q"}, "5")


def _parsers() -> dict[str, Callable[[str], object]]:
    parsers: dict[str, Callable[[str], object]] = {
        "numeric": lambda t: NumericMatch()(t, Example("e", {}, "5")),
        "exact": lambda t: ExactMatch()(t, Example("e", {}, "x")),
        "choice letter": lambda t: ChoiceMatch()(t, Example("e", {}, "(A)")),
        "choice word": lambda t: ChoiceMatch()(t, Example("e", {}, "Yes")),
        "label": lambda t: LabelMatch()(t, Example("e", {}, "pants-fire")),
        "parse_improved": parse_improved,
        "parse_feedback": lambda t: parse_feedback(t, 3),
    }
    for name in ("last_number", "last_choice", "majority_choice", "majority_answer"):
        fn = BUILTINS[name]
        parsers[name] = lambda t, fn=fn: _quiet(fn, t)
    return parsers


def _quiet(fn: Callable[[dict[str, str]], str], text: str) -> object:
    try:
        return fn({"a": text, "b": text})
    except ValueError:  # "no number in the input": a node failure, not a hang
        return None


@pytest.mark.parametrize("name", list(_parsers()))
def test_each_parser_reads_every_hostile_reply_in_linear_time(name: str) -> None:
    parse = _parsers()[name]
    slow = {}
    for kind, reply in HOSTILE.items():
        start = time.process_time()
        parse(reply)
        spent = time.process_time() - start
        if spent > BOUND_S:
            slow[kind] = round(spent, 2)
    assert not slow, f"{name} is slow on: {slow}"


def test_only_the_end_of_a_huge_reply_is_read_for_the_answer() -> None:
    reply = "Answer: 1\n" + "filler " * (MAX_PARSE_CHARS // 7 + 10) + "\nthe answer is 5"
    assert NumericMatch()(reply, EXAMPLE).correct
    start_only = "Answer: 5\n" + "x" * (MAX_PARSE_CHARS + 10)
    assert NumericMatch().extract(start_only) is None  # its marker is outside the window


def test_linear_rewrites_keep_the_answers() -> None:
    numeric = NumericMatch()
    assert numeric.extract("so \\boxed{\\frac{1}{2}} no, \\boxed{18}") == 18
    assert numeric.extract("The answer is \\boxed{18}.") == 18
    assert numeric.extract("\\boxed{ 7 ") == 7  # never closed: to the end
    assert numeric.extract("#### \n\n 42\n more") == 42  # the next non-empty line
    assert ExactMatch().extract('Answer: "\'"quoted"\'". ') == "quoted"
    assert BUILTINS["majority_answer"]({"a": "Answer: Answer:  answer is yes."}) == "Answer: yes"
    assert BUILTINS["majority_choice"]({"a": "the answer   is :  (C)"}) == "(C)"
