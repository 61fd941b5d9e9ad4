"""The voting built-ins a composite graph's decision node uses."""

from __future__ import annotations

import pytest

from semgrad.graph.functions import (
    BUILTINS,
    majority_answer,
    majority_choice,
    majority_vote,
    no_answer,
)


@pytest.mark.parametrize(
    ("reply", "choice"),
    [
        ("Answer: (B)", "(B)"),
        ("The answer is (C) because the falcon is last.", "(C)"),
        ("answer is b... no: answer: A", "(A)"),
        ("(A) is wrong, so (B)", "(B)"),
        ("Answer: (B). Option (C) is wrong.", "(B)"),
        ("B", "(B)"),
        ("(d).", "(D)"),
    ],
)
def test_majority_choice_reads_each_reply_as_a_choice(reply: str, choice: str) -> None:
    assert majority_choice({"a": reply}) == choice


def test_differently_worded_replies_vote_together() -> None:
    votes = {"a": "Answer: (A)", "b": "the answer is (B)", "c": "(B)", "d": "I cannot tell"}
    assert majority_choice(votes) == "(B)"
    assert majority_vote(votes) == "Answer: (A)"  # exact text: every reply differs


def test_ties_go_to_the_input_listed_first_and_abstentions_are_ignored() -> None:
    assert majority_choice({"x": "Answer: (C)", "y": "Answer: (A)"}) == "(C)"
    assert majority_choice({"x": "no idea", "y": "Answer: (A)"}) == "(A)"
    assert majority_choice({"x": "the answer is a falcon"}) == ""  # a word, not a choice
    assert majority_choice({}) == ""


def test_no_answer_is_empty_whatever_it_is_given() -> None:
    assert no_answer({"question": "anything"}) == ""
    assert BUILTINS["no_answer"] is no_answer and BUILTINS["majority_choice"] is majority_choice


def test_majority_answer_votes_on_the_marked_answer_of_any_type() -> None:
    votes = {
        "a": "Answer: Yes",
        "b": "Thinking... The answer is yes.",
        "c": "Answer: No",
        "d": "no marker here",
    }
    assert majority_answer(votes) == "Answer: Yes"
    assert majority_answer({"a": "Answer: False", "b": "answer: True\nmore", "c": "Answer: True"}) == (
        "Answer: True"
    )
    assert majority_answer({"a": "Answer: 12", "b": "Answer: 7"}) == "Answer: 12"  # tie: first
    assert majority_answer({"a": "nothing", "b": ""}) == ""
    assert majority_answer({"a": "Answer: Answer: False"}) == "Answer: False"
    assert "majority_answer" in BUILTINS
