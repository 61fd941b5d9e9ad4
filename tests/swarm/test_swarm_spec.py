"""The swarm JSON spec: round trips, errors naming the key / agent / edge, both kinds."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from swarmkit import REPO, chain_swarm, toy_spec

from semgrad.errors import GraphError, SpecError, UnknownReferenceError
from semgrad.graph import Graph, hint_graph, load_graph
from semgrad.graph.spec import graph_from_dict
from semgrad.swarm import (
    Swarm,
    is_swarm_file,
    load_spec,
    load_swarm,
    spec_from_dict,
    swarm_from_dict,
)


def base_spec() -> dict[str, Any]:
    return json.loads(chain_swarm().to_json())


def test_round_trip_is_exact() -> None:
    swarm = chain_swarm()
    data = swarm.to_dict()
    again = swarm_from_dict(data)
    assert again.to_dict() == data
    assert swarm_from_dict(json.loads(swarm.to_json())).to_dict() == data
    assert again.edge_state_dict() == swarm.edge_state_dict()
    assert data["edges"][0] == {
        "from": "a1",
        "to": "a2/draft",
        "p0": 0.9,
        "logit": pytest.approx(2.1972245773),
    }


def test_defaults_p0_and_a_learned_logit() -> None:
    data = base_spec()
    for e in data["edges"]:
        e.pop("logit")
        e.pop("p0")
    data["edges"][2]["logit"] = 1.5
    swarm = swarm_from_dict(data)
    assert swarm.probabilities()["a1->a2/draft"] == 0.5
    assert swarm.edge_state_dict()["a1->decision"] == 1.5
    data.pop("edges")
    assert swarm_from_dict(data).edges == ()


def test_decision_defaults_to_a_function_named_decision_with_no_inputs() -> None:
    data = base_spec()
    data["decision"] = {"type": "function", "fn": "majority_choice"}
    swarm = swarm_from_dict(data)
    assert swarm.decision.name == "decision" and swarm.decision.inputs == ()


def test_an_llm_decision_round_trips() -> None:
    data = base_spec()
    data["decision"] = {
        "type": "llm",
        "name": "judge",
        "inputs": ["question"],
        "instruction": "Pick the best answer.",
        "max_tokens": 32,
    }
    for e in data["edges"]:
        if e["to"] == "decision":
            e["to"] = "judge"
    swarm = swarm_from_dict(data)
    assert swarm_from_dict(swarm.to_dict()).to_dict() == swarm.to_dict()
    assert swarm.state_dict()["judge.instruction"] == "Pick the best answer."


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base_spec())
    target: Any = data
    for key in path[:-1]:
        target = target[key]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "error", "words"),
    [
        (["agents"], KeyError, SpecError, ["agents", "Field required"]),
        (["edges", 1, "p0"], 1.5, SpecError, ["edges.1.p0"]),
        (["edges", 0, "color"], "red", SpecError, ["edges.0.color", "unknown key", "from, to, p0"]),
        (["edges", 0, "from"], "ghost", UnknownReferenceError, ["ghost->a2/draft", "ghost"]),
        (["edges", 0, "to"], "a2/nope", UnknownReferenceError, ["a2/nope", "a2/final"]),
        (["decision", "type"], "vote", SpecError, ["decision"]),
        (["semgrad"], 2, SpecError, ["version 2"]),
        (["agents", 1, "graph", "output"], "nope", GraphError, ["agent 'a2'", "nope"]),
        (["agents", 0, "graph", "nodes"], "x", SpecError, ["agents[0]", "agent 'a1'", "nodes"]),
        (["agents", 0, "name"], "a.1", GraphError, ["'a.1'", "not allowed"]),
    ],
)
def test_errors_name_the_key_agent_or_edge(
    path: list[Any], value: Any, error: type[Exception], words: list[str]
) -> None:
    with pytest.raises(error) as info:
        swarm_from_dict(mutate(path, value))
    for word in words:
        assert word in str(info.value)


def test_not_an_object() -> None:
    with pytest.raises(SpecError, match="JSON object"):
        swarm_from_dict([1, 2])


def test_files_of_either_kind(tmp_path: Path) -> None:
    swarm_file = tmp_path / "s.json"
    swarm_file.write_text(chain_swarm().to_json())
    graph_file = tmp_path / "g.json"
    graph_file.write_text(hint_graph(1).to_json())
    assert isinstance(load_spec(swarm_file), Swarm)
    assert isinstance(load_spec(graph_file), Graph)
    assert is_swarm_file(swarm_file) and not is_swarm_file(graph_file)
    assert not is_swarm_file(tmp_path / "missing.json")
    assert load_swarm(swarm_file).to_dict() == chain_swarm().to_dict()
    with pytest.raises(SpecError, match=r"composite graph.*load_swarm"):
        load_graph(swarm_file)
    with pytest.raises(SpecError, match="single graph spec"):
        load_swarm(graph_file)
    with pytest.raises(SpecError, match="no such file"):
        load_swarm(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SpecError, match="invalid JSON"):
        load_spec(tmp_path / "bad.json")


def test_single_graph_specs_keep_working_and_may_say_their_kind() -> None:
    data = hint_graph(2).to_dict()
    assert "kind" not in data
    assert graph_from_dict({**data, "kind": "graph"}).to_dict() == data
    assert isinstance(spec_from_dict(data), Graph)
    with pytest.raises(SpecError, match="unknown spec kind 'tree'"):
        graph_from_dict({**data, "kind": "tree"})
    assert chain_swarm().to_dict()["kind"] == "swarm"


def test_the_bundled_example_and_a_toy_spec_load(tmp_path: Path) -> None:
    swarm = load_swarm(REPO / "examples" / "swarm-adversarial.json")
    assert list(swarm.agents) == [
        "truthful_1",
        "truthful_2",
        "adversary_1",
        "adversary_2",
        "adversary_3",
    ]
    assert [e.name for e in swarm.edges] == [f"{a}->decision" for a in swarm.agents]
    assert all(e.p0 == 0.5 for e in swarm.edges)
    graph = swarm.realise_deterministic()
    assert graph.nodes["decision"].inputs == tuple(f"{a}/answer" for a in swarm.agents)
    for _, node in graph.nodes.items():
        if node.kind == "llm":
            assert node.max_tokens <= 24
    texts = swarm.state_dict()
    assert all("'Answer: <answer>'" in t for t in texts.values())
    adversarial = ("wrong", "incorrect", "opposite")
    assert sum(any(w in t.lower() for w in adversarial) for t in texts.values()) == 3
    assert isinstance(load_spec(toy_spec(tmp_path / "toy.json")), Swarm)
