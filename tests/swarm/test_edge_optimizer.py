"""Edge probability math, REINFORCE, the baseline, Adam, state dicts, scoring sampled graphs."""

from __future__ import annotations

import asyncio
import json
import math
import random

import pytest
from swarmkit import LIARS, TRUTHFUL, toy_forward, toy_splits, vote_swarm

from semgrad.errors import BudgetExceededError, ConfigError, GraphError
from semgrad.execution import RunContext
from semgrad.llm.budget import Budget
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.meter import Meter
from semgrad.llm.stack import build_llm
from semgrad.swarm import (
    EdgeOptimizer,
    EdgeParameter,
    SampledGraph,
    Swarm,
    reinforce_gradient,
    sample_utilities,
)
from semgrad.swarm.edges import decision_grad, decision_log_prob, logit, sigmoid

# -- the probability math -----------------------------------------------------------------


@pytest.mark.parametrize("z", [-800.0, -30.0, -1.0, 0.0, 0.3, 30.0, 800.0])
def test_sigmoid_and_log_probs_stay_finite(z: float) -> None:
    p = sigmoid(z)
    assert 0.0 <= p <= 1.0
    assert math.isfinite(decision_log_prob(z, True)) and math.isfinite(decision_log_prob(z, False))
    if abs(z) < 30:
        assert decision_log_prob(z, True) == pytest.approx(math.log(p))
        assert decision_log_prob(z, False) == pytest.approx(math.log(1 - p))
        assert logit(p) == pytest.approx(z)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("keep", [True, False])
def test_decision_grad_is_the_derivative_of_the_log_prob(keep: bool, temperature: float) -> None:
    theta, h = 0.7, 1e-6
    numeric = (
        decision_log_prob(theta + h, keep, temperature)
        - decision_log_prob(theta - h, keep, temperature)
    ) / (2 * h)
    assert decision_grad(theta, keep, temperature) == pytest.approx(numeric, rel=1e-6)


def test_logit_refuses_certainties() -> None:
    for p in (0.0, 1.0, -0.1):
        with pytest.raises(GraphError, match="infinite logit"):
            logit(p)


# -- REINFORCE -----------------------------------------------------------------------------


def sample(
    decisions: dict[str, bool | None], logits: dict[str, float], t: float = 1.0
) -> SampledGraph:
    swarm = vote_swarm(list({k.split("->")[0] for k in logits}))
    return SampledGraph(
        decisions=decisions,
        probabilities={k: sigmoid(v / t) for k, v in logits.items()},
        log_prob=0.0,
        temperature=t,
        graph=swarm.realise({}),
    )


def test_reinforce_gradient_by_hand() -> None:
    logits = {"a->decision": 0.0, "b->decision": math.log(3)}  # p = 0.5, 0.75
    s1 = sample({"a->decision": True, "b->decision": False}, logits)
    s2 = sample({"a->decision": False, "b->decision": None}, logits)
    grad = reinforce_gradient([s1, s2], [1.0, 0.0], 0.25, logits)
    # a: ((1-.25)(1-.5) + (0-.25)(0-.5)) / 2 = (.375 + .125) / 2
    assert grad["a->decision"] == pytest.approx(0.25)
    # b: ((1-.25)(0-.75) + skipped) / 2
    assert grad["b->decision"] == pytest.approx(-0.28125)
    hot = sample({"a->decision": True, "b->decision": False}, logits, t=2.0)
    # temperature: p = σ(0/2) = .5, derivative (x - p) / T
    assert reinforce_gradient([hot], [1.0], 0.0, logits)["a->decision"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="utilities"):
        reinforce_gradient([s1], [1.0, 2.0], 0.0, logits)


def test_baseline_starts_at_the_first_mean_then_moves_slowly() -> None:
    swarm = vote_swarm(["a", "b"])
    opt = EdgeOptimizer(swarm.named_edges(), baseline_decay=0.75)
    logits = swarm.edge_state_dict()
    s = sample({"a->decision": True, "b->decision": True}, logits)
    first = opt.accumulate([s, s], [0.2, 0.6])
    assert first.baseline_used == pytest.approx(0.4) and first.baseline == pytest.approx(0.4)
    assert first.mean_utility == pytest.approx(0.4)
    second = opt.accumulate([s], [1.0])
    assert second.baseline_used == pytest.approx(0.4)
    assert second.baseline == pytest.approx(0.75 * 0.4 + 0.25 * 1.0)
    assert json.loads(json.dumps(second.to_dict()))["baseline"] == pytest.approx(0.55)


def test_adam_step_by_hand() -> None:
    edge = EdgeParameter("a", "decision", 0.0)
    opt = EdgeOptimizer([edge], lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    edge.grad = 0.2
    opt.step()
    # t=1: m̂ = g, v̂ = g², so the step is lr * g / (|g| + eps): lr in the gradient's direction
    assert edge.logit == pytest.approx(0.1, rel=1e-6)
    edge.grad = -0.2
    opt.step()
    m = 0.9 * 0.02 + 0.1 * -0.2
    v = 0.999 * 0.001 * 0.04 + 0.001 * 0.04
    expected = 0.1 + 0.1 * (m / (1 - 0.9**2)) / (math.sqrt(v / (1 - 0.999**2)) + 1e-8)
    assert edge.logit == pytest.approx(expected)
    opt.zero_grad()
    assert edge.grad == 0.0


def test_a_helpful_edge_rises_and_a_harmful_one_falls() -> None:
    """Toy utility: +1 for keeping `good`, -1 for keeping `bad`; no model needed."""
    swarm = vote_swarm(["good", "bad", "idle"])
    opt = EdgeOptimizer(swarm.named_edges(), lr=0.2)
    rng = random.Random(0)
    for _ in range(60):
        samples = [swarm.sample(rng) for _ in range(6)]
        utilities = [
            float(s.decisions["good->decision"] is True)
            - float(s.decisions["bad->decision"] is True)
            for s in samples
        ]
        opt.zero_grad()
        opt.accumulate(samples, utilities)
        opt.step()
    p = opt.probabilities()
    assert p["good->decision"] > 0.9 and p["bad->decision"] < 0.1
    # No signal: it drifts with the noise of the estimate, less than the others are pushed.
    logits = swarm.edge_state_dict()
    assert abs(logits["idle->decision"]) < min(
        abs(logits["good->decision"]), abs(logits["bad->decision"])
    )
    assert swarm.threshold_decisions() == {
        "good->decision": True,
        "bad->decision": False,
        "idle->decision": swarm.probabilities()["idle->decision"] >= 0.5,
    }


def test_state_dict_is_json_and_continues_exactly() -> None:
    def run(steps: int, opt: EdgeOptimizer, swarm: Swarm, start: int = 0) -> None:
        for k in range(start, start + steps):
            rng = random.Random(k)
            samples = [swarm.sample(rng) for _ in range(4)]
            utilities = [float(bool(s.decisions["x->decision"])) for s in samples]
            opt.zero_grad()
            opt.accumulate(samples, utilities)
            opt.step()

    ref_swarm = vote_swarm(["x", "y"])
    ref = EdgeOptimizer(ref_swarm.named_edges())
    run(6, ref, ref_swarm)

    first_swarm = vote_swarm(["x", "y"])
    first = EdgeOptimizer(first_swarm.named_edges())
    run(3, first, first_swarm)
    state = json.loads(json.dumps(first.state_dict()))  # through JSON, like a checkpoint
    assert state["t"] == 3 and set(state["logits"]) == {"x->decision", "y->decision"}

    resumed_swarm = vote_swarm(["x", "y"])
    resumed = EdgeOptimizer(resumed_swarm.named_edges())
    resumed.load_state_dict(state)
    assert resumed_swarm.edge_state_dict() == first_swarm.edge_state_dict()
    run(3, resumed, resumed_swarm, start=3)
    assert resumed_swarm.edge_state_dict() == ref_swarm.edge_state_dict()  # exactly
    assert resumed.state_dict() == ref.state_dict()


def test_state_dict_of_other_edges_is_refused() -> None:
    opt = EdgeOptimizer(vote_swarm(["x"]).named_edges())
    other = EdgeOptimizer(vote_swarm(["y"]).named_edges())
    with pytest.raises(GraphError, match=r"missing \['x->decision'\]"):
        opt.load_state_dict(other.state_dict())


def test_bad_options_name_the_key() -> None:
    edges = vote_swarm(["x"]).named_edges
    with pytest.raises(ConfigError, match="'lr'"):
        EdgeOptimizer(edges(), lr=0)
    with pytest.raises(ConfigError, match="'betas'"):
        EdgeOptimizer(edges(), betas=(0.9, 1.0))
    with pytest.raises(ConfigError, match="'baseline_decay'"):
        EdgeOptimizer(edges(), baseline_decay=1.5)
    with pytest.raises(ConfigError, match="set"):
        EdgeOptimizer(set(vote_swarm(["x"]).edges))
    with pytest.raises(ConfigError, match="no edges"):
        EdgeOptimizer([])


# -- scoring sampled graphs through the ordinary evaluator ----------------------------------


def test_sample_utilities_scores_graphs_concurrently_and_once_each() -> None:
    swarm = vote_swarm([*TRUTHFUL, *LIARS], p0=0.9)  # likely repeats: scored once each
    llm = ScriptedLLM(toy_forward, delay=0.001)
    meter = Meter()
    ctx = RunContext(llms={"forward": build_llm(llm, meter=meter, retry=None)})
    splits = toy_splits()
    batch = splits.train[:3]
    scored = asyncio.run(
        sample_utilities(swarm, batch, splits.metric, ctx, n=12, rng=random.Random(3))
    )
    assert len(scored) == 12
    for s in scored:
        agents = [k.split("->")[0] for k in s.sample.included]
        truthful = sum(1 for a in agents if a in TRUTHFUL)
        # The vote's ties go to the input listed first, and truthful agents come first.
        right = truthful > 0 and truthful >= len(agents) - truthful
        assert s.utility == (1.0 if right else 0.0)
        assert set(s.to_dict()["scores"]) == {e.id for e in batch}
    graphs = {s.sample.included: s.sample.graph for s in scored}
    assert len(graphs) < len(scored)
    expected = sum(len(g.nodes) - 1 for g in graphs.values()) * len(batch)
    assert len(llm.requests) == expected  # one evaluation per distinct graph
    phases = meter.snapshot().by_phase()
    assert phases["edges"].requests == expected and phases["forward"].requests == 0


def test_a_fatal_error_while_scoring_stops_every_sampled_graph() -> None:
    swarm = vote_swarm(["x", "y"], p0=0.9)
    llm = ScriptedLLM(lambda r: "Answer: (A)", delay=0.001)
    budget = Budget({"edges.calls": 3})
    ctx = RunContext(llms={"forward": build_llm(llm, budget=budget, retry=None)})
    with pytest.raises(BudgetExceededError, match=r"edges\.calls"):
        asyncio.run(
            sample_utilities(
                swarm, toy_splits().train, toy_splits().metric, ctx, n=4, rng=random.Random(0)
            )
        )
    assert budget.spent["edges.calls"] <= 3
