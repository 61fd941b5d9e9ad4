"""Swarms: validation with errors that name the culprit, realisation, sampling, state."""

from __future__ import annotations

import asyncio
import math
import random

import pytest
from swarmkit import chain_swarm, one_node_agent, two_node_agent, vote_swarm

from semgrad.data.example import Example
from semgrad.errors import DuplicateNameError, GraphError, UnknownReferenceError
from semgrad.evaluation.evaluator import aevaluate
from semgrad.evaluation.metrics import ChoiceMatch
from semgrad.execution import RunContext
from semgrad.graph import FunctionNode, Graph, LLMNode, Parameter
from semgrad.llm.fakes import EchoLLM, ScriptedLLM
from semgrad.optim.optimizer import Proposal, SemanticGradientDescent
from semgrad.swarm import EdgeParameter, Swarm


def swarm_with(edges: list[EdgeParameter], **agents: Graph) -> Swarm:
    return Swarm(["question"], agents, FunctionNode("decision", (), "concat"), edges)


# -- validation --------------------------------------------------------------------------


def test_unknown_edge_source_names_the_edge_and_the_agents() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        swarm_with([EdgeParameter("ghost", "decision")], a1=one_node_agent("x"))
    assert info.value.node == "ghost->decision" and info.value.reference == "ghost"
    assert "a1" in str(info.value)


def test_unknown_target_node_lists_the_agents_nodes() -> None:
    with pytest.raises(UnknownReferenceError) as info:
        swarm_with([EdgeParameter("a1", "a2/nope")], a1=one_node_agent("x"), a2=two_node_agent("y"))
    assert "a2/draft" in str(info.value) and "a2/final" in str(info.value)


def test_a_dotted_target_is_refused_with_the_right_spelling() -> None:
    with pytest.raises(GraphError, match="Write 'a2/final'"):
        swarm_with(
            [EdgeParameter("a1", "a2.final")], a1=one_node_agent("x"), a2=two_node_agent("y")
        )


def test_an_edge_to_a_whole_agent_lists_its_nodes() -> None:
    with pytest.raises(GraphError, match="a2/draft, a2/final"):
        swarm_with([EdgeParameter("a1", "a2")], a1=one_node_agent("x"), a2=two_node_agent("y"))


def test_intra_agent_edges_are_fixed() -> None:
    with pytest.raises(GraphError, match="inside an agent is fixed"):
        swarm_with([EdgeParameter("a2", "a2/draft")], a2=two_node_agent("y"))


def test_duplicate_edges_and_agents() -> None:
    with pytest.raises(DuplicateNameError, match="a1->decision"):
        swarm_with(
            [EdgeParameter("a1", "decision"), EdgeParameter("a1", "decision")],
            a1=one_node_agent("x"),
        )
    with pytest.raises(DuplicateNameError, match="'a1'"):
        Swarm(
            ["question"],
            [("a1", one_node_agent("x")), ("a1", one_node_agent("y"))],
            FunctionNode("decision", (), "concat"),
            [],
        )


@pytest.mark.parametrize("bad", ["a.1", "a/1", "", "a 1", "a->b"])
def test_agent_names_that_would_be_ambiguous_are_refused(bad: str) -> None:
    with pytest.raises(GraphError, match="not allowed"):
        Swarm(["question"], {bad: one_node_agent("x")}, FunctionNode("decision", (), "concat"), [])


def test_agents_must_not_share_parameters() -> None:
    shared = one_node_agent("x")
    with pytest.raises(GraphError, match=r"graph\.copy\(\)"):
        Swarm(["question"], {"a": shared, "b": shared}, FunctionNode("d", (), "concat"), [])
    Swarm(["question"], {"a": shared, "b": shared.copy()}, FunctionNode("d", (), "concat"), [])


def test_agent_inputs_and_decision_inputs_must_be_swarm_inputs() -> None:
    agent = Graph(["context"], [LLMNode("a", ("context",), Parameter("x"))], "a")
    with pytest.raises(GraphError, match=r"agent 'a1' reads input\(s\) \['context'\]"):
        Swarm(["question"], {"a1": agent}, FunctionNode("decision", (), "concat"), [])
    with pytest.raises(UnknownReferenceError, match="'context'"):
        Swarm(
            ["question"],
            {"a1": one_node_agent("x")},
            FunctionNode("decision", ("context",), "concat"),
            [],
        )


def test_edges_must_be_ordered() -> None:
    with pytest.raises(GraphError, match="ordered"):
        swarm_with({EdgeParameter("a1", "decision")}, a1=one_node_agent("x"))  # type: ignore[arg-type]


def test_p0_must_be_a_probability() -> None:
    with pytest.raises(GraphError, match="strictly between 0 and 1"):
        EdgeParameter.from_p0("a", "decision", 1.0)
    with pytest.raises(GraphError, match="finite"):
        EdgeParameter("a", "decision", math.inf)


# -- realisation -----------------------------------------------------------------------------


def test_realise_prefixes_names_and_shares_the_parameter_objects() -> None:
    swarm = chain_swarm()
    graph = swarm.realise(
        {"a1->a2/draft": True, "a2->a1/final": False, "a1->decision": True, "a2->decision": True}
    )
    assert list(graph.order) == ["a1/draft", "a1/final", "a2/draft", "a2/final", "decision"]
    # The source's output arrives after the target's own inputs.
    assert graph.nodes["a2/draft"].inputs == ("question", "a1/final")
    assert graph.nodes["a1/final"].inputs == ("question", "a1/draft")
    assert graph.nodes["decision"].inputs == ("a1/final", "a2/final")
    swarm_params = dict(swarm.named_parameters())
    for name, param in graph.named_parameters():
        assert param is swarm_params[name]  # the same object, not a copy
        assert param.name == name
    assert swarm.agents["a1"].nodes["draft"].instruction is swarm_params["a1/draft.instruction"]


def test_a_text_step_on_a_realised_graph_changes_the_swarm() -> None:
    swarm = vote_swarm(["x", "y"])
    graph = swarm.realise_deterministic()
    opt = SemanticGradientDescent(graph.named_parameters())
    opt.apply([Proposal("x/answer.instruction", "x: answer", "Be CAREFUL.")])
    assert swarm.state_dict()["x/answer.instruction"] == "Be CAREFUL."
    assert swarm.agents["x"].nodes["answer"].instruction.value == "Be CAREFUL."  # type: ignore[union-attr]
    assert swarm.realise({}).to_dict() == swarm.copy().realise({}).to_dict()


def test_realise_prunes_what_the_answer_does_not_depend_on() -> None:
    swarm = chain_swarm()
    graph = swarm.realise({"a2->a1/final": True, "a1->decision": True})
    assert list(graph.order) == ["a1/draft", "a2/draft", "a2/final", "a1/final", "decision"]
    graph = swarm.realise({"a1->decision": True})
    assert list(graph.order) == ["a1/draft", "a1/final", "decision"]
    full = swarm.realise({"a1->decision": True}, prune=False)
    assert len(full.nodes) == 5


def test_no_agent_connected_is_an_empty_answer_scored_as_a_failure() -> None:
    swarm = vote_swarm(["x", "y"])
    graph = swarm.realise({})
    assert list(graph.order) == ["decision"]
    llm = EchoLLM()
    ex = [Example("e", {"question": "which? (A) or (B)"}, "(A)")]
    result = asyncio.run(aevaluate(graph, ex, ChoiceMatch(), RunContext(llms={"forward": llm})))
    assert result.results[0].trace.output == "" and result.score == 0.0
    assert result.errors == 0 and not llm.requests  # nothing ran, nothing failed


def test_unknown_decision_keys_are_refused() -> None:
    with pytest.raises(GraphError, match="ghost"):
        vote_swarm(["x"]).realise({"ghost->decision": True})


def test_an_llm_decision_sees_its_inputs_then_the_agents() -> None:
    decision = LLMNode("judge", ("question",), Parameter("Combine the answers."))
    swarm = Swarm(
        ["question"],
        {"a": one_node_agent("x"), "b": one_node_agent("y")},
        decision,
        [EdgeParameter("a", "judge"), EdgeParameter("b", "judge")],
    )
    graph = swarm.realise_deterministic()
    assert graph.output == "judge"
    assert graph.nodes["judge"].inputs == ("question", "a/answer", "b/answer")
    assert dict(graph.named_parameters())["judge.instruction"] is decision.instruction
    assert [n for n, _ in swarm.named_parameters()] == [
        "a/answer.instruction",
        "b/answer.instruction",
        "judge.instruction",
    ]


# -- sampling and the deterministic graph -------------------------------------------------


def test_an_edge_that_would_close_a_cycle_is_skipped_not_decided() -> None:
    swarm = chain_swarm()
    # a1->a2/draft kept (p 0.9 >= 0.5): a2->a1/final would close a1->a2->a1.
    decisions = swarm.threshold_decisions(0.5)
    assert decisions == {
        "a1->a2/draft": True,
        "a2->a1/final": None,
        "a1->decision": True,
        "a2->decision": True,
    }
    logp = swarm.log_prob(decisions)
    assert logp == pytest.approx(math.log(0.9) + 2 * math.log(0.5))


def test_threshold_is_inclusive_and_deterministic() -> None:
    swarm = vote_swarm(["x", "y"], p0=0.5)
    assert swarm.threshold_decisions(0.5) == {"x->decision": True, "y->decision": True}
    swarm.load_edge_state_dict({"x->decision": -0.01, "y->decision": 0.0})
    assert swarm.threshold_decisions(0.5) == {"x->decision": False, "y->decision": True}
    with pytest.raises(GraphError, match="threshold"):
        swarm.threshold_decisions(1.0)


def test_sampling_is_reproducible_from_the_seed() -> None:
    swarm = chain_swarm()
    a = [swarm.sample(random.Random(7)).decisions for _ in range(3)]
    b = [swarm.sample(random.Random(7)).decisions for _ in range(3)]
    assert a == b
    rng = random.Random(1)
    seen = {tuple(swarm.sample(rng).decisions.values()) for _ in range(200)}
    assert len(seen) > 4


def test_temperature_flattens_the_probabilities() -> None:
    edge = EdgeParameter("a", "decision", 2.0)
    assert edge.probability(1.0) > edge.probability(4.0) > 0.5
    with pytest.raises(GraphError, match="temperature"):
        edge.probability(0.0)


def test_state_dicts_round_trip_and_are_strict() -> None:
    swarm = chain_swarm()
    texts, logits = swarm.state_dict(), swarm.edge_state_dict()
    other = chain_swarm()
    other.load_state_dict({k: v + "!" for k, v in texts.items()})
    other.load_edge_state_dict({k: v + 1 for k, v in logits.items()})
    assert other.state_dict()["a1/draft.instruction"] == "a1: draft!"
    assert other.edge_state_dict()["a1->decision"] == pytest.approx(1.0)
    with pytest.raises(GraphError, match="missing"):
        other.load_edge_state_dict({"a1->decision": 0.0})
    with pytest.raises(GraphError, match="must be a number"):
        other.load_edge_state_dict({"a1->decision": "high"}, strict=False)  # type: ignore[dict-item]
    other.load_edge_state_dict({"a1->decision": 0.5}, strict=False)


def test_zero_grad_clears_texts_and_edges() -> None:
    swarm = vote_swarm(["x"])
    swarm.edges[0].grad = 1.5
    swarm.parameters()[0].grad = ["g"]
    swarm.zero_grad()
    assert swarm.edges[0].grad == 0.0 and swarm.parameters()[0].grad == []


def test_a_sampled_graph_runs_through_the_ordinary_executor() -> None:
    swarm = vote_swarm(["x", "y", "z"], p0=0.99)
    sample = swarm.sample(random.Random(0))
    llm = ScriptedLLM(lambda r: "Answer: (B)" if r.node != "z/answer" else "(C)")
    ctx = RunContext(llms={"forward": llm})
    ex = [Example("e", {"question": "q"}, "(B)")]
    result = asyncio.run(aevaluate(sample.graph, ex, ChoiceMatch(), ctx))
    assert sample.included == ("x->decision", "y->decision", "z->decision")
    assert result.score == 1.0
    assert sorted(r.node for r in llm.requests) == ["x/answer", "y/answer", "z/answer"]
