"""Demos render as a prefix that is byte-identical for every example of a run; without demos
the messages are exactly the single prompt of before."""

from __future__ import annotations

from semgrad._sync import run_sync
from semgrad.data.example import Example
from semgrad.execution import RunContext, forward_many
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo
from semgrad.llm.fakes import ScriptedLLM
from semgrad.prompts import render_forward

EXAMPLES = [Example(f"e{i}", {"question": f"What is {i} plus {i}?"}, str(2 * i)) for i in range(5)]


def _requests(graph: object) -> list[object]:
    llm = ScriptedLLM(lambda r: f"reply to {r.node}")
    run_sync(forward_many(graph, EXAMPLES, RunContext({"forward": llm})))  # type: ignore[arg-type]
    return list(llm.requests)


def test_demo_turns_are_a_stable_prefix_and_the_prompt_is_last() -> None:
    graph = hint_graph(2)
    demos = [
        Demo({"question": f"q{i}", "hint_1": f"a{i}", "hint_2": f"b{i}"}, f"Answer: {i}")
        for i in range(3)
    ]
    graph.set_demos("final", demos)
    finals = [r for r in _requests(graph) if r.node == "final"]  # type: ignore[attr-defined]
    assert len(finals) == len(EXAMPLES)
    prefixes = {r.messages[:-1] for r in finals}
    assert len(prefixes) == 1  # the same bytes for every example
    (prefix,) = prefixes
    assert [m.role for m in prefix] == ["user", "assistant"] * 3
    assert [m.content for m in prefix[1::2]] == ["Answer: 0", "Answer: 1", "Answer: 2"]
    for r in finals:
        last = r.messages[-1]
        assert last.role == "user" and last.content.endswith(graph.nodes["final"].instruction.value)  # type: ignore[union-attr]
        assert "What is" in last.content
    # The nodes without demos send one message, as before.
    hints = [r for r in _requests(graph) if r.node != "final"]  # type: ignore[attr-defined]
    assert all(len(r.messages) == 1 for r in hints)


def test_without_demos_the_messages_are_exactly_the_single_prompt() -> None:
    graph = hint_graph(1)
    for r in _requests(graph):
        assert len(r.messages) == 1  # type: ignore[attr-defined]
    question = EXAMPLES[0].inputs["question"]
    (first,) = [
        r
        for r in _requests(graph)
        if r.node == "final" and question in r.messages[-1].content  # type: ignore[attr-defined]
    ]
    expected = render_forward(
        graph.nodes["final"].instruction.value,  # type: ignore[union-attr]
        {"question": question},
        [("hint_1", "reply to hint_1")],
    )
    assert first.messages == expected  # type: ignore[attr-defined]


def test_demos_that_do_not_fit_the_nodes_inputs_stop_the_run_with_a_clear_error() -> None:
    import dataclasses

    import pytest

    from semgrad.errors import GraphError
    from semgrad.graph.core import Graph

    graph = hint_graph(1)
    graph.set_demos("hint_1", [Demo({"question": "q"}, "a hint")])
    widened = dataclasses.replace(graph.nodes["hint_1"], inputs=("question", "extra"))
    other = Graph(["question", "extra"], [widened], "hint_1")
    examples = [Example("x", {"question": "q", "extra": "e"}, "1")]
    llm = ScriptedLLM(lambda r: "x")
    with pytest.raises(GraphError, match=r"a demo lacks the node's input\(s\)"):
        run_sync(forward_many(other, examples, RunContext({"forward": llm})))
    assert not llm.requests
