from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semgrad.errors import (
    CycleError,
    DuplicateNameError,
    GraphError,
    SpecError,
    UnknownReferenceError,
)
from semgrad.graph import FunctionNode, Graph, LLMNode, Parameter, hint_graph
from semgrad.graph.spec import graph_from_dict, load_graph


def llm(name: str, *inputs: str, text: str = "do it") -> LLMNode:
    return LLMNode(name=name, inputs=inputs, instruction=Parameter(text))


# -- validation --------------------------------------------------------------------------


def test_duplicate_node_name_is_named() -> None:
    with pytest.raises(DuplicateNameError, match="'a'"):
        Graph(["q"], [llm("a", "q"), llm("a", "q")], "a")


def test_input_and_node_share_a_name() -> None:
    with pytest.raises(DuplicateNameError, match="graph input and node"):
        Graph(["q"], [llm("q", "q")], "q")


def test_unknown_input_names_node_and_reference() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        Graph(["question"], [llm("a", "question"), llm("b", "a", "hint_9")], "b")
    assert info.value.node == "b" and info.value.reference == "hint_9"
    assert "hint_9" in str(info.value) and "'b'" in str(info.value)


def test_unknown_output() -> None:
    with pytest.raises(UnknownReferenceError, match="nope"):
        Graph(["q"], [llm("a", "q")], "nope")


def test_cycle_names_the_nodes_on_it() -> None:
    nodes = [llm("a", "q", "c"), llm("b", "a"), llm("c", "b"), llm("d", "q")]
    with pytest.raises(CycleError) as info:
        Graph(["q"], nodes, "d")
    assert sorted(info.value.cycle) == ["a", "b", "c"]
    assert "->" in str(info.value)


def test_self_loop_is_a_cycle() -> None:
    with pytest.raises(CycleError) as info:
        Graph(["q"], [llm("a", "q", "a")], "a")
    assert info.value.cycle == ["a"]


def test_dotted_or_empty_names_refused() -> None:
    with pytest.raises(GraphError, match="'\\.'"):
        Graph(["q"], [llm("a.b", "q")], "a.b")


def test_string_inputs_refused_with_fix() -> None:
    with pytest.raises(GraphError, match=r"inputs=\['question'\]"):
        Graph("question", [llm("a", "question")], "a")  # type: ignore[arg-type]


# -- order -------------------------------------------------------------------------------


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[tuple[str, list[str]]], int]:
    """Random DAGs: node i may only take earlier nodes or the input as predecessors."""
    n = draw(st.integers(1, 12))
    nodes = []
    for i in range(n):
        preds = draw(st.lists(st.integers(0, i - 1), unique=True, max_size=3)) if i else []
        names = [f"n{j}" for j in preds] or ["q"]
        nodes.append((f"n{i}", names))
    perm = draw(st.permutations(range(n)))
    return [nodes[i] for i in perm], n


@given(dags())
@settings(max_examples=200, deadline=None)
def test_topological_order_is_valid_and_deterministic(
    spec: tuple[list[tuple[str, list[str]]], int],
) -> None:
    nodes, _n = spec
    g = Graph(["q"], [llm(name, *preds) for name, preds in nodes], nodes[0][0])
    pos = {name: i for i, name in enumerate(g.order)}
    assert sorted(g.order) == sorted(name for name, _ in nodes)
    for name, preds in nodes:
        for p in preds:
            if p != "q":
                assert pos[p] < pos[name]
    again = Graph(["q"], [llm(name, *preds) for name, preds in nodes], nodes[0][0])
    assert again.order == g.order


@given(dags(), st.data())
@settings(max_examples=100, deadline=None)
def test_back_edge_always_reported_as_a_real_cycle(
    spec: tuple[list[tuple[str, list[str]]], int], data: st.DataObject
) -> None:
    nodes, _n = spec
    by_name = dict(nodes)
    # Add an edge from a node to one of its ancestors (or itself): that closes a cycle.
    target = data.draw(st.sampled_from(sorted(by_name)))
    ancestors = {target}
    frontier = [target]
    while frontier:
        cur = frontier.pop()
        for p in by_name[cur]:
            if p != "q" and p not in ancestors:
                ancestors.add(p)
                frontier.append(p)
    source = data.draw(st.sampled_from(sorted(ancestors)))
    by_name[source] = (
        [*by_name[source], target] if target not in by_name[source] else by_name[source]
    )
    if target in dict(nodes)[source]:
        return  # already an edge; nothing new
    with pytest.raises(CycleError) as info:
        Graph(["q"], [llm(name, *preds) for name, preds in by_name.items()], nodes[0][0])
    cycle = info.value.cycle
    # Every consecutive pair on the reported cycle is a real edge pred -> succ.
    for i, node in enumerate(cycle):
        succ = cycle[(i + 1) % len(cycle)]
        assert node in by_name[succ]


# -- parameters and state ------------------------------------------------------------------


def test_hint_graph_shape_and_names() -> None:
    g = hint_graph(2)
    assert g.order == ("hint_1", "hint_2", "final")
    assert g.nodes["final"].inputs == ("question", "hint_1", "hint_2")
    assert [n for n, _ in g.named_parameters()] == [
        "hint_1.instruction",
        "hint_2.instruction",
        "final.instruction",
    ]
    assert all(p.name == n for n, p in g.named_parameters())
    assert g.successors("hint_1") == ("final",)
    # Distinct hint instructions: identical ones would make identical prompts.
    assert g.state_dict()["hint_1.instruction"] != g.state_dict()["hint_2.instruction"]


def test_state_dict_round_trip_and_copy_independence() -> None:
    g = hint_graph(3)
    state = g.state_dict()
    h = g.copy()
    h.nodes["final"].instruction.value = "changed"  # type: ignore[union-attr]
    assert g.state_dict() == state
    g.load_state_dict(h.state_dict())
    assert g.state_dict()["final.instruction"] == "changed"


def test_load_state_dict_strict_names_mismatch() -> None:
    g = hint_graph(2)
    with pytest.raises(GraphError, match=r"missing.*unexpected"):
        g.load_state_dict({"hint_1.instruction": "x", "bogus.instruction": "y"})
    g.load_state_dict({"hint_1.instruction": "x", "bogus.instruction": "y"}, strict=False)
    assert g.state_dict()["hint_1.instruction"] == "x"


def test_zero_grad() -> None:
    g = hint_graph(2)
    for p in g.parameters():
        p.grad.append("improve")
    g.zero_grad()
    assert all(p.grad == [] for p in g.parameters())


# -- JSON spec -----------------------------------------------------------------------------


def test_json_round_trip() -> None:
    g = Graph(
        ["question"],
        [
            llm("solve", "question", text="Solve it."),
            FunctionNode("answer", ("solve",), "last_number"),
        ],
        "answer",
        name="two",
    )
    h = graph_from_dict(json.loads(g.to_json()))
    assert h.to_dict() == g.to_dict()
    assert json.loads(h.to_json())["nodes"][1]["fn"] == "last_number"


def test_spec_errors_name_the_key() -> None:
    with pytest.raises(SpecError, match=r"nodes\.0\.llm\.instruction"):
        graph_from_dict(
            {
                "inputs": ["q"],
                "nodes": [{"type": "llm", "name": "a", "inputs": ["q"]}],
                "output": "a",
            }
        )
    with pytest.raises(
        SpecError, match=r"colour: unknown key 'colour'; the keys here are type, name"
    ):
        graph_from_dict(
            {
                "inputs": ["q"],
                "nodes": [
                    {
                        "type": "function",
                        "name": "a",
                        "inputs": ["q"],
                        "fn": "identity",
                        "colour": 1,
                    }
                ],
                "output": "a",
            }
        )
    with pytest.raises(SpecError, match="JSON object"):
        graph_from_dict([1, 2])


def test_load_graph_file_errors(tmp_path: Path) -> None:
    base = tmp_path
    with pytest.raises(SpecError, match="no such file"):
        load_graph(base / "missing.json")
    bad = base / "bad.json"
    bad.write_text('{"inputs": ["q"],\n "nodes": [}')
    with pytest.raises(SpecError, match="line 2"):
        load_graph(bad)
    cyc = base / "cyc.json"
    cyc.write_text(
        json.dumps(
            {
                "inputs": ["q"],
                "nodes": [
                    {"type": "function", "name": "a", "inputs": ["b"], "fn": "identity"},
                    {"type": "function", "name": "b", "inputs": ["a"], "fn": "identity"},
                ],
                "output": "b",
            }
        )
    )
    with pytest.raises(CycleError):
        load_graph(cyc)
