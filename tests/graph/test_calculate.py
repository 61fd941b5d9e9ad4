"""The `calculate` built-in: a reply's last arithmetic expression, evaluated exactly."""

from __future__ import annotations

import pytest

from semgrad.graph.functions import BUILTINS, calculate


def calc(text: str) -> str:
    return calculate({"final": text})


@pytest.mark.parametrize(
    ("reply", "answer"),
    [
        # The model wrote the right sum and added it up wrong.
        ("Step 2: add them.\n1 + 3 + 1 + 1 + 3 + 1 + 1 + 2 + 1 + 1 = 14\nAnswer: 14", "15"),
        ("Answer: 2 * (4 - 1) / 3", "2"),
        ("1.5 + 1.25", "2.75"),
        ("10 / 4", "2.5"),
        ("1 / 3", "0.333333"),
        ("-3 + 1", "-2"),
        ("1,000 + 2", "1002"),  # a thousands separator
        ("I have 1, 2 + 3", "5"),  # a list comma ends the expression before it
        ("first 1 + 1, then 2 * 5 apples", "10"),  # the last expression wins
    ],
)
def test_the_last_expression_becomes_the_last_answer_line(reply: str, answer: str) -> None:
    assert calc(reply) == f"{reply}\nAnswer: {answer}"


@pytest.mark.parametrize(
    "reply",
    [
        "Answer: 7",  # a number is not an expression
        "no numbers at all",
        "Answer: 10 / 0",  # division by zero is no value
        "2 ** 3 and 4 +",  # neither is a complete expression of + - * /
        "",
    ],
)
def test_a_reply_without_an_expression_is_returned_unchanged(reply: str) -> None:
    assert calc(reply) == reply


def test_it_is_a_builtin_a_spec_can_name() -> None:
    assert BUILTINS["calculate"] is calculate
    with pytest.raises(ValueError, match="exactly one input"):
        calculate({"a": "1 + 1", "b": "2"})
