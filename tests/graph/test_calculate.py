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


def test_a_hint_graph_with_the_calculator_answers_from_the_final_reply() -> None:
    from semgrad._sync import run_sync
    from semgrad.execution import RunContext, forward
    from semgrad.graph.builders import hint_graph
    from semgrad.llm.fakes import ScriptedLLM

    graph = hint_graph(1, answer_fn="calculate")
    assert graph.output == "answer" and graph.nodes["answer"].inputs == ("final",)
    # The model adds 2 + 2 + 1 up wrong; the tool's answer line is what the graph outputs.
    llm = ScriptedLLM(lambda r: "2 + 2 + 1 = 6\nAnswer: 6" if r.node == "final" else "hint")
    trace = run_sync(forward(graph, {"question": "How many?"}, RunContext({"forward": llm})))
    assert trace.output == "2 + 2 + 1 = 6\nAnswer: 6\nAnswer: 5"
    assert [r.node for r in llm.requests] == ["hint_1", "final"]  # the tool calls no model


def test_the_config_names_the_tool_after_a_hint_graph_and_refuses_a_wrong_one() -> None:
    from semgrad.errors import ConfigError
    from semgrad.optim.config import config_from_dict
    from semgrad.optim.trainer import load_model

    data = {"train": "a", "test": "b"}
    config = config_from_dict({"graph": {"hints": 2, "answer_fn": "calculate"}, "data": data})
    graph = load_model(config)
    assert graph.output == "answer" and graph.nodes["answer"].fn == "calculate"  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match=r"unknown function 'calc'.*calculate"):
        config_from_dict({"graph": {"hints": 2, "answer_fn": "calc"}, "data": data})
    with pytest.raises(ConfigError, match="add the function node to the spec"):
        config_from_dict({"graph": {"path": "g.json", "answer_fn": "calculate"}, "data": data})
