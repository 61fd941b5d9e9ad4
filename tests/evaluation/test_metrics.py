from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semgrad.data import LIAR_LABELS, Example
from semgrad.errors import DataError, UserInputError
from semgrad.evaluation import (
    LIAR_BINARY_LABELS,
    ChoiceMatch,
    ExactMatch,
    LabelMatch,
    Metric,
    NumericMatch,
    Score,
    metric_for,
)


def ex(target: str) -> Example:
    return Example(id="t/0", inputs={"question": "?"}, target=target)


# --- NumericMatch -----------------------------------------------------------------------------

NUMERIC_CASES = [
    # (reply, target, correct, extracted)
    ("18", "18", True, "18"),
    ("1,000", "1000", True, "1000"),
    ("1000", "1,000", True, "1000"),
    ("$18", "18", True, "18"),
    ("18.0", "18", True, "18"),
    ("18.00 dollars", "18", True, "18"),
    ("18.50", "18.5", True, "18.5"),
    ("The answer is 18.", "18", True, "18"),
    ("The answer is $1,234.", "1234", True, "1234"),
    ("-5", "-5", True, "-5"),
    ("The temperature drops to -5 degrees.", "-5", True, "-5"),
    ("5 - 3 = 2", "2", True, "2"),
    ("10-3", "3", True, "3"),
    ("It costs 3 + 4 = 7 dollars, so she pays $7.", "7", True, "7"),
    # multi-number chain of thought: the marker wins over later numbers
    ("16 - 3 - 4 = 9 eggs. 9 * 2 = 18.\nThe answer is 18. (I used 2 steps.)", "18", True, "18"),
    ("Answer: 42\nCheck: 6 * 7 = 42, 40 + 2 = 42", "42", True, "42"),
    ("She has 12, buys 15, gives 7.\n#### 20", "20", True, "20"),
    (
        "So the total is \\boxed{20} stickers. Double check: 12 + 15 - 7 = 20. Then 3",
        "20",
        True,
        "20",
    ),
    ("\\boxed{\\$1,000}", "1000", True, "1000"),
    ("**Answer:** 36", "36", True, "36"),
    ("The final answer is:\n\n 36", "36", True, "36"),
    ("The answer is 17.", "18", False, "17"),
    ("12 + 15 = 27, 27 - 7 = 20", "20", True, "20"),
    ("12 + 15 = 27, 27 - 7 = 21", "20", False, "21"),
    ("It's 18%", "18", True, "18"),
    ("She has 27 stickers and gives away 7, so 27 - 7", "20", False, "7"),
    ("The answer is 12 + 15 - 7 = 20.", "20", True, "20"),
    ("The answer is 20 (12 + 15 - 7 = 20). Check: 3 * 4 = 12", "20", True, "20"),
    ("The answer is 20. Indeed 12 + 8 = 20 and 2 + 2 = 4.", "20", True, "20"),
    ("\\boxed{12 + 8 = 20}", "20", True, "20"),
    ("- 3 apples\n- 4 pears\nTotal: 7", "7", True, "7"),
    ("The change is 2.50 dollars", "2.5", True, "2.5"),
    ("0.1 + 0.2 = 0.3", "0.3", True, "0.3"),
    ("3,4", "3", True, "3"),
    ("the answer is twenty", "20", False, None),
    ("", "18", False, None),
    ("   \n  ", "18", False, None),
    ("I don't know.", "18", False, None),
]


@pytest.mark.parametrize(("reply", "target", "correct", "extracted"), NUMERIC_CASES)
def test_numeric_match(reply: str, target: str, correct: bool, extracted: str | None) -> None:
    score = NumericMatch()(reply, ex(target))
    assert score.value == (1.0 if correct else 0.0)
    assert score.prediction == (extracted or "")
    if correct:
        assert score.feedback == "The output is correct."
    elif extracted is None:
        assert (
            score.feedback
            == f'No final answer was found in the output. The expected output is: "{target}".'
        )
    else:
        assert (
            score.feedback
            == f'The expected output is: "{target}". The answer given was "{extracted}".'
        )


def test_numeric_feedback_quotes_the_target_as_written() -> None:
    score = NumericMatch()("17", ex("18"))
    assert score.feedback.startswith('The expected output is: "18".')
    assert not score.correct


def test_numeric_non_numeric_target_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"example 't/0' has target 'eighteen'.*'exact' metric"):
        NumericMatch()("18", ex("eighteen"))


def test_numeric_huge_numbers_do_not_raise() -> None:
    assert NumericMatch()("9" * 400, ex("18")).value == 0.0


@settings(max_examples=200, deadline=None)
@given(value=st.integers(min_value=-(10**9), max_value=10**9))
def test_numeric_reads_any_integer_in_any_dress(value: int) -> None:
    written = f"{value:,}"
    for reply in (str(value), written, f"{value}.0", f"The answer is {written}."):
        assert NumericMatch()(reply, ex(str(value))).correct, reply
    money = f"-${abs(value):,}" if value < 0 else f"${value:,}"
    assert NumericMatch()(f"She has {money} left.", ex(str(value))).correct


@settings(max_examples=200, deadline=None)
@given(reply=st.text(max_size=200), target=st.sampled_from(["18", "-3", "1000", "2.5"]))
def test_metrics_never_raise_on_any_reply(reply: str, target: str) -> None:
    for metric in (NumericMatch(), ExactMatch(), ChoiceMatch(), LabelMatch()):
        score = metric(reply, ex(target))
        assert 0.0 <= score.value <= 1.0
        assert score.feedback


@settings(max_examples=100, deadline=None)
@given(
    reply=st.text(max_size=200),
    target=st.sampled_from(["(A)", "True", "valid", "No", "half-true", "] )"]),
)
def test_text_metrics_never_raise_on_any_reply(reply: str, target: str) -> None:
    for metric in (ExactMatch(), ChoiceMatch(), LabelMatch()):
        score = metric(reply, ex(target))
        assert 0.0 <= score.value <= 1.0


# --- ChoiceMatch (BBH) ------------------------------------------------------------------------

CHOICE_CASES = [
    ("(A)", "(A)", True, "(A)"),
    ("A", "(A)", True, "(A)"),
    ("a", "(A)", True, "(A)"),
    ("A)", "(A)", True, "(A)"),
    ("(A).", "(A)", True, "(A)"),
    ("answer: (A)", "(A)", True, "(A)"),
    ("Answer: A", "(A)", True, "(A)"),
    ("(B)", "(A)", False, "(B)"),
    ("So the answer is (D).", "(D)", True, "(D)"),
    ("So the answer is (B) 12/25/1937.", "(B)", True, "(B)"),
    ("The answer is (B), not (C).", "(B)", True, "(B)"),
    ("Let's think.\n(A) is wrong because...\n(C) fits. So the answer is (C).", "(C)", True, "(C)"),
    ("(A) is wrong, so (B)", "(B)", True, "(B)"),
    ("I would pick option C", "(C)", True, "(C)"),
    ("**Answer:** (E)", "(E)", True, "(E)"),
    ("The answer is A movie about cats.", "(A)", False, None),
    ("I am not sure.", "(A)", False, None),
    ("", "(A)", False, None),
    # two-valued tasks
    ("True", "True", True, "true"),
    ("true.", "True", True, "true"),
    ("not ( True ) is False. So the answer is False.", "False", True, "false"),
    ("So the answer is Yes.", "Yes", True, "yes"),
    ("no", "No", True, "no"),
    ("So the answer is no.", "yes", False, "no"),
    ("The argument is deductively valid. So the answer is invalid.", "invalid", True, "invalid"),
    ("So the answer is valid.", "invalid", False, "valid"),
    ("The argument is invalid.\n\nHope this helps!", "invalid", True, "invalid"),
    # the three upstream BBH items with a text target
    ("So the answer is Monsters, Inc.", "Monsters, Inc", True, "monsters, inc"),
    ("So the answer is (A).", "Monsters, Inc", False, "a"),
    ("The answer is 'dearth, wind, & fire'", "dearth, wind, & fire", True, "dearth, wind, & fire"),
]


@pytest.mark.parametrize(("reply", "target", "correct", "extracted"), CHOICE_CASES)
def test_choice_match(reply: str, target: str, correct: bool, extracted: str | None) -> None:
    score = ChoiceMatch()(reply, ex(target))
    assert score.value == (1.0 if correct else 0.0), score
    assert score.prediction == (extracted or "")
    if not correct and extracted is None:
        assert score.feedback.startswith("No final answer was found")


# --- ExactMatch (BBH free text) ---------------------------------------------------------------

EXACT_CASES = [
    ("So the answer is arson aspect census.", "arson aspect census", True),
    ("So the answer is Arson  Aspect\tcensus", "arson aspect census", True),
    ("So the answer is } ] >.", "} ] >", True),
    ("Let me think.\n] )", "] )", True),
    ("(A)", "A", True),
    ("A", "(A)", True),
    ('"hello"', "hello", True),
    ("So the answer is aspect arson census.", "arson aspect census", False),
    ("", "x", False),
]


@pytest.mark.parametrize(("reply", "target", "correct"), EXACT_CASES)
def test_exact_match(reply: str, target: str, correct: bool) -> None:
    assert ExactMatch()(reply, ex(target)).value == (1.0 if correct else 0.0)


def test_exact_empty_reply_says_no_answer() -> None:
    score = ExactMatch()("", ex("x"))
    assert score == Score(
        0.0, 'No final answer was found in the output. The expected output is: "x".', ""
    )


# --- LabelMatch (LIAR) ------------------------------------------------------------------------

LABEL_CASES = [
    # binary
    ("Yes", "Yes", True, "Yes"),
    ("yes.", "Yes", True, "Yes"),
    ("The statement is misleading. Answer: No", "No", True, "No"),
    ("Answer: Yes, it is a lie.", "Yes", True, "Yes"),
    ("The claim is not supported by the data, so no.", "No", True, "No"),
    ("No. It is a lie? Yes.", "No", False, "Yes"),
    ("I cannot tell.", "Yes", False, None),
    # six-way
    ("half-true", "half-true", True, "half-true"),
    ("Half True", "half-true", True, "half-true"),
    ("The answer is: mostly true.", "mostly-true", True, "mostly-true"),
    ("This is barely-true", "barely-true", True, "barely-true"),
    ("This is barely-true", "true", False, "barely-true"),
    ("Pants on fire!", "pants-fire", True, "pants-fire"),
    ("The answer is pants-on-fire", "pants-fire", True, "pants-fire"),
    ("The answer is FALSE", "false", True, "false"),
    ("The answer is true", "half-true", False, "true"),
]


@pytest.mark.parametrize(("reply", "target", "correct", "extracted"), LABEL_CASES)
def test_label_match(reply: str, target: str, correct: bool, extracted: str | None) -> None:
    score = LabelMatch()(reply, ex(target))
    assert score.value == (1.0 if correct else 0.0), score
    assert score.prediction == (extracted or "")


def test_label_match_with_a_fixed_vocabulary() -> None:
    binary = LabelMatch(labels=LIAR_BINARY_LABELS)
    six = LabelMatch(labels=LIAR_LABELS)
    assert binary("It is false, so yes.", ex("Yes")).correct
    assert six("It is false, so yes.", ex("false")).correct
    assert binary.vocabulary(ex("half-true")) == ("Yes", "No")
    assert LabelMatch().vocabulary(ex("No")) == ("Yes", "No")
    assert LabelMatch().vocabulary(ex("true")) == LIAR_LABELS


# --- Score, protocol, lookup ------------------------------------------------------------------


def test_score_is_bounded_and_frozen() -> None:
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        Score(1.5, "x")
    score = Score(1.0, "ok", "18")
    with pytest.raises(AttributeError):
        score.value = 0.0  # type: ignore[misc]
    assert score.correct


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("numeric", NumericMatch),
        ("choice", ChoiceMatch),
        ("exact", ExactMatch),
        ("label", LabelMatch),
        ("Numeric ", NumericMatch),
    ],
)
def test_metric_for(name: str, cls: type) -> None:
    metric = metric_for(name)
    assert isinstance(metric, cls)
    assert isinstance(metric, Metric)
    assert metric.name == name.strip().lower()


def test_metric_for_options_and_errors() -> None:
    metric = metric_for("label", labels=["Yes", "No"])
    assert metric == LabelMatch(labels=("Yes", "No"))
    assert metric_for("numeric", abs_tol=0.5)("18.4", ex("18")).correct
    with pytest.raises(
        UserInputError, match="unknown metric 'f1'; the metrics are: numeric, choice, exact, label"
    ):
        metric_for("f1")
    with pytest.raises(UserInputError, match="bad options for metric 'exact'"):
        metric_for("exact", labels=["x"])


def test_note_truncation_names_each_cut_off_reply_and_keeps_the_value() -> None:
    from semgrad.evaluation.metrics import Score, note_truncation

    score = Score(0.0, 'The expected output is: "4".', "7")
    assert note_truncation(score, [], "final") is score
    noted = note_truncation(score, [("hint_1", 96), ("final", 320)], "final")
    assert (noted.value, noted.prediction) == (0.0, "7")
    assert noted.feedback.startswith(score.feedback)
    assert "The reply of node 'hint_1' was cut off after max_tokens (96 tokens)" in noted.feedback
    assert "The reply was cut off after max_tokens (320 tokens)" in noted.feedback
