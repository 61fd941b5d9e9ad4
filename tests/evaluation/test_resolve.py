"""resolve_metric: built-ins by name, your own function (bool, number, Score, DSPy order,
async), the start-up check, and the LLM judge as an async metric."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import semgrad as sg
from semgrad.errors import DataError, UserInputError
from semgrad.evaluation.judge import LLMJudge, parse_judgement
from semgrad.evaluation.metrics import ExactMatch, NumericMatch, Score
from semgrad.evaluation.overlap import Contains, StrictMatch, TokenF1
from semgrad.evaluation.resolve import (
    METRIC_NAMES,
    FunctionMetric,
    check_metric,
    resolve_metric,
)
from semgrad.llm.fakes import ScriptedLLM

EX = sg.Example(id="caps/1", inputs={"country": "France"}, target="Paris")


def test_builtins_by_name() -> None:
    assert set(METRIC_NAMES) >= {"exact", "numeric", "choice", "contains", "f1", "judge"}
    assert isinstance(resolve_metric("exact"), ExactMatch)
    assert isinstance(resolve_metric("Normalized-Exact"), ExactMatch)
    assert isinstance(resolve_metric("numeric"), NumericMatch)
    assert isinstance(resolve_metric("contains"), Contains)
    assert isinstance(resolve_metric("f1"), TokenF1)
    assert isinstance(resolve_metric("strict"), StrictMatch)
    assert resolve_metric("label", labels=["Yes", "No"]).name == "label"
    judge = resolve_metric("judge", criteria="Same city.")
    assert isinstance(judge, LLMJudge) and judge.criteria == "Same city."
    with pytest.raises(UserInputError, match=r"unknown metric 'exactly'.*module:function"):
        resolve_metric("exactly")


def test_contains_strict_and_f1() -> None:
    assert Contains()("The capital of France is Paris.", EX).value == 1.0
    assert Contains()("Parisian food", EX).value == 0.0
    assert StrictMatch()(" Paris ", EX).value == 1.0
    assert StrictMatch()("paris", EX).value == 0.0
    ex = sg.Example(id="x", inputs={"q": "?"}, target="New Delhi")
    assert TokenF1()("Answer: New Delhi", ex).value == 1.0
    half = TokenF1()("Answer: Delhi", ex)
    assert half.value == pytest.approx(2 / 3)
    assert "token F1 0.67" in half.feedback
    assert TokenF1()("", ex).value == 0.0


def test_user_function_returning_bool_number_tuple_or_score() -> None:
    def as_bool(prediction: str, example: sg.Example) -> bool:
        return example.target in prediction

    m = resolve_metric(as_bool)
    right, wrong = m("It is Paris", EX), m("It is Lyon", EX)
    assert (right.value, right.feedback) == (1.0, "The output is correct.")
    assert wrong.value == 0.0 and 'expected output is: "Paris"' in wrong.feedback
    assert resolve_metric(lambda p, e: 0.5)("x", EX).value == 0.5
    scored = resolve_metric(lambda p, e: (False, "Name the city only."))("x", EX)
    assert (scored.value, scored.feedback) == (0.0, "Name the city only.")
    assert resolve_metric(lambda p, e: Score(1.0, "ok"))("x", EX).feedback == "ok"


def test_dspy_argument_order_is_detected_by_parameter_name() -> None:
    seen: list[tuple[Any, ...]] = []

    def dspy_metric(example: sg.Example, pred: str, trace: object = None) -> bool:
        seen.append((example.id, pred, trace))
        return pred == example.target

    m = resolve_metric(dspy_metric)
    assert isinstance(m, FunctionMetric) and m.order == "dspy"
    assert m("Paris", EX).value == 1.0
    assert seen == [("caps/1", "Paris", None)]

    def two(gold: sg.Example, pred: str) -> bool:
        return pred == gold.target

    assert resolve_metric(two)("Paris", EX).value == 1.0


def test_async_user_function_is_awaited_in_evaluate() -> None:
    async def slow(prediction: str, example: sg.Example) -> bool:
        await asyncio.sleep(0)
        return example.target.lower() in prediction.lower()

    graph = sg.Graph(
        ["country"],
        [sg.LLMNode("answer", ("country",), sg.Parameter("Name the capital."))],
        "answer",
    )
    ctx = sg.RunContext(llms={"forward": ScriptedLLM(lambda _r: "paris")})
    result = sg.evaluate(graph, [EX], slow, ctx)
    assert result.score == 1.0
    assert resolve_metric(slow)("Paris", EX).value == 1.0  # the sync form works too


def test_bad_returns_fail_at_the_start_up_check_with_what_was_expected() -> None:
    with pytest.raises(UserInputError, match=r"returned NoneType .*returns a Score, a bool"):
        check_metric(resolve_metric(lambda p, e: None), [EX])
    with pytest.raises(UserInputError, match=r"returned 7 .*between 0 and 1"):
        check_metric(resolve_metric(lambda p, e: 7), [EX])

    def crashes(prediction: str, example: sg.Example) -> bool:
        return example.answer == prediction  # type: ignore[attr-defined,no-any-return]

    with pytest.raises(UserInputError, match=r"raised AttributeError on example 'caps/1'"):
        check_metric(resolve_metric(crashes), [EX])
    with pytest.raises(UserInputError, match="positional argument"):
        resolve_metric(lambda p: True)
    # a built-in that cannot read the targets fails at start-up too
    with pytest.raises(DataError, match="not a number"):
        check_metric(resolve_metric("numeric"), [EX])
    check_metric(resolve_metric("exact"), [EX])


@pytest.fixture
def metric_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    (tmp_path / "my_metrics.py").write_text(
        "def capital(prediction, example):\n    return example.target in prediction\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_metrics"
    sys.modules.pop("my_metrics", None)


def test_module_function_spec(metric_module: str) -> None:
    m = resolve_metric(f"{metric_module}:capital")
    assert m.name == f"{metric_module}:capital"
    assert m("Paris!", EX).value == 1.0
    with pytest.raises(UserInputError, match="cannot import module 'nope_mod'"):
        resolve_metric("nope_mod:fn")
    with pytest.raises(UserInputError, match="does not name a callable"):
        resolve_metric(f"{metric_module}:missing")


def test_parse_judgement() -> None:
    assert parse_judgement("<critique>Wrong city.</critique><score>2</score>") == (
        0.2,
        "Wrong city.",
    )
    assert parse_judgement("<score>10/10</score>") == (1.0, "")
    assert parse_judgement("<score>42</score>") == (1.0, "")
    assert parse_judgement("no grade") is None


def test_judge_scores_with_the_judge_role_and_critique_as_feedback() -> None:
    graph = sg.Graph(
        ["country"],
        [sg.LLMNode("answer", ("country",), sg.Parameter("Name the capital."))],
        "answer",
    )
    judge_llm = ScriptedLLM(
        lambda r: (
            "<critique>Lyon is not the capital; Paris is.</critique><score>0</score>"
            if "Lyon" in r.messages[-1].content
            else "<critique>Correct.</critique><score>10</score>"
        )
    )
    forward = ScriptedLLM(["It is Lyon.", "It is Paris."])
    ctx = sg.RunContext(llms={"forward": forward, "judge": judge_llm}, max_concurrency=1)
    examples = [EX, sg.Example(id="caps/2", inputs={"country": "France"}, target="Paris")]
    result = sg.evaluate(graph, examples, "judge", ctx)
    scores = sorted((r.score.value, r.score.feedback) for r in result.results)
    assert scores == [(0.0, "Lyon is not the capital; Paris is."), (1.0, "Correct.")]
    assert all(req.node == "judge" for req in judge_llm.requests)
    unread = ScriptedLLM(["I think it is fine"])
    score = asyncio.run(LLMJudge(llm=unread).ascore("Paris", EX))
    assert score.value == 0.0 and "no <score>" in score.feedback


def test_judge_without_a_model_says_how_to_give_one() -> None:
    ctx = sg.RunContext(llms={"forward": ScriptedLLM(["x"])})
    with pytest.raises(UserInputError, match="model for role 'judge'"):
        asyncio.run(LLMJudge().ascore("Paris", EX, ctx))
    with pytest.raises(UserInputError, match=r"LLMJudge\(llm=...\)"):
        LLMJudge()("Paris", EX)
