"""Property tests on random swarms (the "done when" of edge optimization):

- every sampled graph is acyclic, and an edge is skipped exactly when it would close a cycle;
- log p(G) is the log of the product of the probabilities of the decisions taken, and over
  every graph the sequential process can produce these probabilities sum to 1;
- the deterministic realisation is a pure function of the logits.

The oracle (cycle checks, enumeration) is written here independently of `Swarm`.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from semgrad.graph import FunctionNode, Graph, LLMNode, Node, Parameter
from semgrad.swarm import EdgeParameter, Swarm, swarm_from_dict


@dataclass(frozen=True)
class Case:
    swarm: Swarm
    # Fixed node-level wiring of the swarm, and each potential edge's (source, target) node.
    fixed: dict[str, list[str]]
    ends: dict[str, tuple[str, str]]


@st.composite
def swarms(draw: st.DrawFn, max_edges: int = 10) -> Case:
    n_agents = draw(st.integers(1, 4))
    agents: dict[str, Graph] = {}
    fixed: dict[str, list[str]] = {"decision": []}
    for a in range(n_agents):
        name = f"a{a}"
        k = draw(st.integers(1, 3))
        nodes: list[Node] = []
        for i in range(k):
            preds = draw(st.lists(st.sampled_from([f"n{j}" for j in range(i)] or ["question"])))
            inputs = tuple(dict.fromkeys(["question", *preds]))
            if draw(st.booleans()):
                nodes.append(LLMNode(f"n{i}", inputs, Parameter(f"{name} {i}")))
            else:
                nodes.append(FunctionNode(f"n{i}", inputs, "concat"))
        output = f"n{draw(st.integers(0, k - 1))}"
        agents[name] = Graph(["question"], nodes, output)
        for node in nodes:
            fixed[f"{name}/{node.name}"] = []
        for node in nodes:
            for ref in node.inputs:
                if ref != "question":
                    fixed[f"{name}/{ref}"].append(f"{name}/{node.name}")
    targets = ["decision", *(n for n in fixed if n != "decision")]
    pairs = [
        (src, dst)
        for src in agents
        for dst in targets
        if dst == "decision" or dst.split("/")[0] != src
    ]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True, max_size=max_edges))
    logits = draw(
        st.lists(st.floats(-4, 4, allow_nan=False), min_size=len(chosen), max_size=len(chosen))
    )
    edges = [EdgeParameter(s, t, lg) for (s, t), lg in zip(chosen, logits, strict=True)]
    swarm = Swarm(["question"], agents, FunctionNode("decision", (), "concat"), edges)
    ends = {e.name: (f"{e.source}/{agents[e.source].output}", e.target) for e in edges}
    return Case(swarm, fixed, ends)


def closes_cycle(
    fixed: Mapping[str, list[str]], kept: list[tuple[str, str]], edge: tuple[str, str]
) -> bool:
    """Would adding `edge` to the fixed wiring plus `kept` make a cycle? (plain DFS)"""
    succ: dict[str, list[str]] = {n: list(s) for n, s in fixed.items()}
    for a, b in [*kept, edge]:
        succ[a].append(b)
    state: dict[str, int] = {}

    def visit(n: str) -> bool:
        state[n] = 1
        for m in succ[n]:
            if state.get(m) == 1 or (m not in state and visit(m)):
                return True
        state[n] = 2
        return False

    return any(n not in state and visit(n) for n in succ)


def check_decisions(case: Case, decisions: Mapping[str, bool | None]) -> None:
    """Every skipped edge would have closed a cycle, every decided one would not."""
    assert list(decisions) == [e.name for e in case.swarm.edges]
    kept: list[tuple[str, str]] = []
    for name, keep in decisions.items():
        cycle = closes_cycle(case.fixed, kept, case.ends[name])
        assert (keep is None) == cycle, name
        if keep:
            kept.append(case.ends[name])


@given(swarms(), st.integers(0, 2**32 - 1), st.floats(0.2, 5.0))
@settings(max_examples=150, deadline=None)
def test_every_sampled_graph_is_acyclic(case: Case, seed: int, temperature: float) -> None:
    rng = random.Random(seed)
    for _ in range(3):
        sample = case.swarm.sample(rng, temperature)
        check_decisions(case, sample.decisions)
        # The Graph constructor refuses cycles; unpruned, the graph has every node.
        full = case.swarm.realise(sample.decisions, prune=False)
        assert len(full.nodes) == len(case.fixed)
        assert list(sample.graph.order) == [n for n in full.order if n in sample.graph.nodes]
        assert sample.graph.output == "decision"


@given(swarms(), st.integers(0, 2**32 - 1), st.floats(0.2, 5.0))
@settings(max_examples=150, deadline=None)
def test_log_prob_is_the_product_of_the_decision_probabilities(
    case: Case, seed: int, temperature: float
) -> None:
    sample = case.swarm.sample(random.Random(seed), temperature)
    product = 1.0
    for name, keep in sample.decisions.items():
        edge = next(e for e in case.swarm.edges if e.name == name)
        p = 1.0 / (1.0 + math.exp(-edge.logit / temperature))
        assert sample.probabilities[name] == p or math.isclose(sample.probabilities[name], p)
        if keep is not None:
            product *= p if keep else 1.0 - p
    assert math.isclose(math.exp(sample.log_prob), product, rel_tol=1e-9, abs_tol=1e-300)
    assert math.isclose(
        case.swarm.log_prob(sample.decisions, temperature=temperature),
        sample.log_prob,
        rel_tol=1e-12,
        abs_tol=1e-12,
    )


@given(swarms(max_edges=7), st.floats(0.3, 3.0))
@settings(max_examples=80, deadline=None)
def test_the_probabilities_of_all_reachable_graphs_sum_to_one(
    case: Case, temperature: float
) -> None:
    edges = list(case.swarm.edges)
    total = 0.0

    def walk(i: int, kept: list[tuple[str, str]], decisions: dict[str, bool | None]) -> None:
        nonlocal total
        if i == len(edges):
            total += math.exp(case.swarm.log_prob(decisions, temperature=temperature))
            return
        edge = edges[i]
        if closes_cycle(case.fixed, kept, case.ends[edge.name]):
            walk(i + 1, kept, {**decisions, edge.name: None})
            return
        walk(i + 1, [*kept, case.ends[edge.name]], {**decisions, edge.name: True})
        walk(i + 1, kept, {**decisions, edge.name: False})

    walk(0, [], {})
    assert math.isclose(total, 1.0, rel_tol=1e-9)


@given(swarms(), st.floats(0.05, 0.95), st.floats(0.2, 5.0))
@settings(max_examples=150, deadline=None)
def test_the_realised_graph_is_deterministic(
    case: Case, threshold: float, temperature: float
) -> None:
    swarm = case.swarm
    decisions = swarm.threshold_decisions(threshold, temperature=temperature)
    check_decisions(case, decisions)
    probabilities = swarm.probabilities(temperature)
    for name, keep in decisions.items():
        if keep is not None:
            assert keep == (probabilities[name] >= threshold)
    first = swarm.realise_deterministic(threshold, temperature=temperature).to_dict()
    again = swarm.realise_deterministic(threshold, temperature=temperature).to_dict()
    rebuilt = swarm_from_dict(swarm.to_dict())  # another process, same spec
    other = rebuilt.realise_deterministic(threshold, temperature=temperature).to_dict()
    assert first == again == other
    seeded = [swarm.sample(random.Random(5), temperature).decisions for _ in range(2)]
    assert seeded[0] == seeded[1] == rebuilt.sample(random.Random(5), temperature).decisions
