"""A node's demos are a parameter: in the spec (round trip; absent when empty), in the state
dict (round trip; absent means none), never among the text parameters."""

from __future__ import annotations

import json

import pytest

from semgrad.errors import GraphError, SpecError
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo, DemoParameter, LLMNode, Parameter
from semgrad.graph.spec import graph_from_dict

DEMO = Demo({"question": "n: 1", "hint_1": "one"}, "Answer: 2")


def _with_demos() -> object:
    graph = hint_graph(1)
    graph.set_demos("final", [DEMO, Demo({"question": "n: 3", "hint_1": "three"}, "Answer: 6")])
    graph.set_demos("hint_1", [Demo({"question": "n: 1"}, "one")])
    return graph


def test_every_llm_node_has_a_named_demos_parameter_outside_the_text_parameters() -> None:
    graph = hint_graph(2)
    assert [n for n, _ in graph.named_demos()] == ["hint_1.demos", "hint_2.demos", "final.demos"]
    assert all(p.role == "demos" and p.value == () for _, p in graph.named_demos())
    assert [n for n, _ in graph.named_parameters()] == [
        "hint_1.instruction",
        "hint_2.instruction",
        "final.instruction",
    ]


def test_a_graph_without_demos_serializes_as_before() -> None:
    data = hint_graph(2).to_dict()
    assert all("demos" not in node for node in data["nodes"])
    assert "demos" not in hint_graph(2).to_json()
    assert list(hint_graph(2).state_dict()) == [
        "hint_1.instruction",
        "hint_2.instruction",
        "final.instruction",
    ]


def test_spec_round_trips_demos() -> None:
    graph = _with_demos()
    data = graph.to_dict()  # type: ignore[attr-defined]
    final = data["nodes"][-1]
    assert final["demos"][0] == {
        "inputs": {"question": "n: 1", "hint_1": "one"},
        "output": "Answer: 2",
    }
    again = graph_from_dict(json.loads(json.dumps(data)))
    assert again.demos("final") == graph.demos("final")  # type: ignore[attr-defined]
    assert again.to_dict() == data


def test_spec_demos_errors_teach() -> None:
    data = hint_graph(1).to_dict()
    data["nodes"][-1]["demos"] = [{"inputs": {"question": "q"}, "output": "x"}]
    with pytest.raises(GraphError, match=r"final\.demos.*exactly the node's inputs"):
        graph_from_dict(data)
    data["nodes"][-1]["demos"] = [{"inputs": {"question": "q", "hint_1": "h"}}]
    with pytest.raises(SpecError, match="output"):
        graph_from_dict(data)


def test_state_dict_round_trips_demos_and_absent_means_none() -> None:
    graph = _with_demos()
    state = graph.state_dict()  # type: ignore[attr-defined]
    assert list(state) == ["hint_1.instruction", "hint_1.demos", "final.instruction", "final.demos"]
    assert json.loads(state["final.demos"])[1]["output"] == "Answer: 6"
    fresh = hint_graph(1)
    fresh.load_state_dict(state)
    assert fresh.demos("final") == graph.demos("final")  # type: ignore[attr-defined]
    assert fresh.state_dict() == state
    # An incumbent state without demos restores "no demos" (strict).
    fresh.load_state_dict(hint_graph(1).state_dict())
    assert fresh.demos("final") == () and fresh.demos("hint_1") == ()
    # Non-strict loads leave demos alone when their entry is absent.
    fresh.load_state_dict(state)
    fresh.load_state_dict({"final.instruction": "x"}, strict=False)
    assert len(fresh.demos("final")) == 2


def test_state_dict_demos_errors_teach() -> None:
    graph = hint_graph(1)
    state = graph.state_dict()
    with pytest.raises(GraphError, match="does not parse"):
        graph.load_state_dict({**state, "final.demos": "not json"})
    with pytest.raises(GraphError, match="unexpected"):
        graph.load_state_dict({**state, "hint_9.demos": "[]"})


def test_copy_has_its_own_demos() -> None:
    graph = _with_demos()
    other = graph.copy()  # type: ignore[attr-defined]
    other.set_demos("final", [])
    assert len(graph.demos("final")) == 2  # type: ignore[attr-defined]


def test_demos_are_checked_on_construction_and_on_assignment() -> None:
    node = LLMNode(
        "n", ("question",), Parameter("Do."), demos=DemoParameter([Demo({"question": "q"}, "a")])
    )
    assert node.demos.name == "n.demos" and len(node.demos) == 1
    with pytest.raises(GraphError, match="exactly the node's inputs"):
        node.demos.value = (Demo({"other": "q"}, "a"),)
    with pytest.raises(GraphError, match="must be a semgrad Demo"):
        node.demos.value = ("just text",)  # type: ignore[assignment]
    with pytest.raises(GraphError, match="function node"):
        graph = hint_graph(1)
        from semgrad.graph.core import FunctionNode, Graph

        graph = Graph(["q"], [FunctionNode("f", ("q",), "identity")], "f")
        graph.set_demos("f", [])


def test_a_node_made_from_another_shares_its_demos_and_leaves_their_name() -> None:
    import dataclasses

    graph = _with_demos()
    final = graph.nodes["final"]  # type: ignore[attr-defined]
    flat = dataclasses.replace(final, name="agent_final", inputs=("question", "agent_hint"))
    assert flat.demos is final.demos
    assert final.demos.name == "final.demos" and len(final.demos) == 2
