"""The candidate search (the default method) with scripted models: it learns, successive
halving never gates a screen loser, the paired gate's margin, demonstration candidates,
records, and resuming."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from semgrad.data.example import Example
from semgrad.evaluation.metrics import Score
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import GradientEntry, Graph, Parameter
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.config import RunConfig, config_from_dict
from semgrad.optim.records import StepRecord, read_history
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.search import blame, decision_items, rescored_nodes, shown_items
from semgrad.optim.trainer import Splits, Trainer, optimize

WORDS = [
    *("apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle"),  # train
    *("forest", "mirror", "rocket", "garden", "button", "planet"),  # gate
    *("silver", "window", "pepper", "castle", "dragon", "feather"),  # test
]


class CaseSensitive:
    """Exact, case-sensitive match: the format is what has to be learned."""

    name = "case-sensitive"

    def __call__(self, prediction: str, example: Example) -> Score:
        if prediction.strip() == example.target:
            return Score(1.0, "The output is correct.", prediction.strip())
        return Score(0.0, f'The expected output is: "{example.target}".', prediction.strip())


def splits() -> Splits:
    ex = [Example(w, {"question": f"word: {w}"}, w.upper()) for w in WORDS]
    return Splits(
        train=tuple(ex[:8]), gate=tuple(ex[8:14]), test=tuple(ex[14:]), metric=CaseSensitive()
    )


def backward_reply(request: Request) -> str:
    n = len(re.findall(r"<feedback_(\d+)>\.\.\.", request.messages[-1].content))
    return " ".join(f"<feedback_{i}>say it louder</feedback_{i}>" for i in range(1, n + 1))


def forward_reply(request: Request) -> str:
    """The final node uppercases a word when its instruction says UPPERCASE, or lists the
    word after ``UP=``; hints say nothing useful."""
    text = request.messages[-1].content
    if request.node != "final":
        return f"a hint from {request.node}"
    word = re.search(r"word: (\w+)", text).group(1)  # type: ignore[union-attr]
    listed = re.search(r"UP=([\w,]+)", text)
    if "UPPERCASE" in text or (listed and word in listed.group(1).split(",")):
        return word.upper()
    # Demonstrations (prior turns, or a demos parameter's JSON) answered in uppercase.
    if any("APPLE" in m.content for m in request.messages):
        return word.upper()
    return word


def models(optimizer: Any) -> dict[str, ScriptedLLM]:
    return {
        "forward": ScriptedLLM(forward_reply),
        "backward": ScriptedLLM(backward_reply),
        "optimizer": ScriptedLLM(optimizer),
    }


def upper_for_final(request: Request) -> str:
    if request.node == "final":
        return "<improved>Reply with the word in UPPERCASE only.</improved>"
    return "no tags here"


def config(**overrides: Any) -> RunConfig:
    """A run of the default method; without demonstration candidates (`demos = 0`) unless
    a test asks for them, so the text candidates are what is tested."""
    overrides["optimizer"] = {"demos": 0, **dict(overrides.get("optimizer") or {})}
    base: dict[str, Any] = {
        "name": "t",
        "steps": 1,
        "graph": {"hints": 2},
        "data": {"train": "arith:train", "gate": "arith:val", "test": "arith:test"},
        "models": {"cache_mode": "off"},
    }
    base.update(overrides)
    return config_from_dict(base)


def history(run_dir: Path) -> list[StepRecord]:
    return read_history(RunFiles(run_dir).history)


def upper_only_when_sampled(request: Request) -> str:
    """An optimizer whose temperature-0 reply fails and whose sampled reply is good."""
    if request.node == "final" and request.temperature > 0:
        return "<improved>Reply with the word in UPPERCASE only.</improved>"
    return "no tags here"


def test_a_failed_proposal_is_sampled_again_and_the_retry_can_win(tmp_path: Path) -> None:
    cfg = config(optimizer={"candidates": 2})
    seen: list[Request] = []

    def optimizer(request: Request) -> str:
        seen.append(request)
        return upper_only_when_sampled(request)

    result = optimize(cfg, tmp_path / "run", llms=models(optimizer), splits=splits())
    assert result.final_test == 1.0
    [first] = history(tmp_path / "run")
    # Three parameters asked at temperature 0, all failed; each asked once more, sampled.
    assert sorted(r.temperature for r in seen) == [0.0] * 3 + [cfg.optimizer.retry_temperature] * 3
    assert {r.sample_index for r in seen if r.temperature > 0} == {1}
    full = next(c for c in first.candidates if c.kind == "full")
    assert full.accepted and full.changes == {
        "final.instruction": "Reply with the word in UPPERCASE only."
    }
    # Both attempts are on record: the failed one and its retry.
    finals = [p for p in full.proposals if p["parameter"] == "final.instruction"]
    assert [p["new"] is None for p in finals] == [True, False]


@pytest.mark.parametrize("fallback", [False, True])
def test_node_fallback_gives_the_one_node_candidate_the_next_blamed_nodes_edit(
    tmp_path: Path, fallback: bool
) -> None:
    # Round-robin blames hint_1 first; its proposal (and its retry) has no tags, while the
    # same optimizer reply set has a real edit of the output node.
    cfg = config(optimizer={"node_fallback": fallback})
    asked: list[Request] = []

    def optimizer(request: Request) -> str:
        asked.append(request)
        return upper_for_final(request)

    optimize(cfg, tmp_path / "run", llms=models(optimizer), splits=splits())
    [first] = history(tmp_path / "run")
    assert first.blame["order"][0] == "hint_1.instruction"
    node, full = first.candidates[:2]
    assert (node.kind, full.kind) == ("node", "full")
    assert len(asked) == 3 + 2 + 2  # the same optimizer requests either way
    if not fallback:
        assert node.error is not None and not node.changes
        assert full.error is None and full.accepted
        return
    assert node.error is None and node.accepted
    assert node.changes == {"final.instruction": "Reply with the word in UPPERCASE only."}
    # On record: hint_1's failed proposal and its retry, then the edit taken.
    assert [p["parameter"] for p in node.proposals] == [
        "hint_1.instruction", "hint_1.instruction", "final.instruction"
    ]  # fmt: skip
    assert full.error == "the same edit as candidate 0"


def test_the_search_is_the_default_and_learns_the_format(tmp_path: Path) -> None:
    cfg = config(steps=2)
    assert cfg.optimizer.method == "search"
    assert cfg.optimizer.batch_size == 4 and cfg.optimizer.gate == "early-stop"
    assert config_from_dict({**cfg.model_dump(), "optimizer": {}}).optimizer.demos == 3
    result = optimize(cfg, tmp_path / "run", llms=models(upper_for_final), splits=splits())
    assert result.status == "finished"
    assert result.initial_test == 0.0 and result.final_test == 1.0
    first = history(tmp_path / "run")[0]
    assert first.version == 2 and first.method == "search"
    assert len(first.batch) == 4 and all(b.score == 0.0 for b in first.batch)
    # 4 minibatch items, then the validation items of the screen (the gate has 6).
    assert first.screen_items[:4] == [b.id for b in first.batch]
    assert len(first.screen_items) == 4 + 6
    assert [c.kind for c in first.candidates] == ["node", "full", "sample", "sample"]
    # One optimizer call per parameter at temperature 0 (the one-node edit is the blamed
    # parameter's), one per sample, and one more for each failed temperature-0 proposal
    # (the two hints reply without tags: sampled again once, ALGORITHMS.md §3c): each
    # recorded once.
    assert len(first.proposals) == 3 + 2 + 2
    # The blamed node's proposal and its retry first, then the full edit's others.
    params = [p["parameter"] for p in first.proposals]
    assert params[:2] == ["hint_1.instruction"] * 2
    assert set(params) == {"hint_1.instruction", "hint_2.instruction", "final.instruction"}
    assert first.blame["order"] and "round-robin" in first.blame["why"]
    assert first.accepted and first.changed == ["final.instruction"]
    assert first.decision is not None and first.decision.accepted
    assert (first.decision.wins, first.decision.losses) == (6, 0)
    winner = next(c for c in first.candidates if c.accepted)
    assert winner.survived and winner.gate is not None and winner.gate.score == 1.0
    assert "UPPERCASE" in winner.changes["final.instruction"]
    assert first.candidate_score == 1.0 and first.incumbent_score == 0.0
    # Candidates whose proposals failed were never scored.
    for c in first.candidates:
        if c.error is not None:
            assert not c.screen and c.gate is None and not c.survived


def test_a_candidate_that_lost_the_screen_never_reaches_the_gate(tmp_path: Path) -> None:
    """Only the full edit (which changes the final node) wins its screen; the one-node edit
    and its samples change a hint, which the final node ignores: they tie, and a tie loses
    the screen. The gate items outside the screen are never asked for with a loser's text."""

    def texts(request: Request) -> str:
        if request.node != "final":
            return f"<improved>Give a hint, variant {request.sample_index}.</improved>"
        return "<improved>Reply with the word in UPPERCASE only.</improved>"

    forward = ScriptedLLM(forward_reply)
    m = models(texts)
    m["forward"] = forward
    cfg = config(optimizer={"screen_size": 2, "batch_size": 2})
    optimize(cfg, tmp_path / "run", llms=m, splits=splits())
    step = history(tmp_path / "run")[0]
    assert step.blame["order"][0] == "hint_1.instruction"
    losers = [c for c in step.candidates if c.error is None and not c.survived]
    assert [c.kind for c in losers] == ["node", "sample", "sample"]
    for c in step.candidates:
        if c.gate is not None:
            assert c.survived and c.screen_decision is not None
            assert c.screen_decision.wins > c.screen_decision.losses
        else:
            assert c.decision is None
        if c in losers:
            assert c.screen_decision is not None and c.screen_decision.wins == 0
    assert step.accepted and [c.kind for c in step.candidates if c.accepted] == ["full"]
    outside = {ex.id for ex in splits().gate} - set(step.screen_items)
    assert len(outside) == 4
    survivors_texts = {t for c in step.candidates if c.survived for t in c.changes.values()}
    only_losers = {t for c in losers for t in c.changes.values()} - survivors_texts
    assert len(only_losers) == 2  # the two samples' texts
    for text in only_losers:
        asked = [r.messages[-1].content for r in forward.requests]
        asked = [content for content in asked if text in content]
        assert asked  # it was screened
        assert not any(f"word: {i}" in content for i in outside for content in asked)


def test_without_a_gate_the_best_survivor_of_the_screen_is_accepted(tmp_path: Path) -> None:
    """The "no gate" ablation: the screen decides. The full edit wins its screen and is
    accepted without being scored on the gate items outside the screen; the incumbent is
    scored only on the screen's validation items (never the whole gate)."""
    forward = ScriptedLLM(forward_reply)
    m = models(upper_for_final)
    m["forward"] = forward
    cfg = config(steps=2, optimizer={"gate": "none", "screen_size": 2})
    result = optimize(cfg, tmp_path / "run", llms=m, splits=splits())
    assert result.status == "finished" and result.final_test == 1.0
    first = history(tmp_path / "run")[0]
    assert first.accepted and first.gate is None
    winner = next(c for c in first.candidates if c.accepted)
    assert winner.survived and winner.gate is None
    assert winner.decision is not None and winner.decision == winner.screen_decision
    # The gate items outside both steps' screens were scored only by the initial scoring.
    screened = {i for rec in history(tmp_path / "run") for i in rec.screen_items}
    outside = {ex.id for ex in splits().gate} - screened
    assert outside
    text = winner.changes["final.instruction"]
    asked = [r.messages[-1].content for r in forward.requests if text in r.messages[-1].content]
    assert asked and not any(f"word: {i}" in c for i in outside for c in asked)


def _trainer(tmp_path: Path, instruction: str, proposal: str, **options: Any) -> Trainer:
    graph = hint_graph(1)
    graph.nodes["final"].instruction.value = instruction  # type: ignore[union-attr]

    def optimizer(request: Request) -> str:
        return f"<improved>{proposal}</improved>" if request.node == "final" else "no tags"

    cfg = config(optimizer={"screen_size": 0, "candidates": 2, **options})
    return Trainer(graph, splits(), tmp_path / "run", config=cfg, llms=models(optimizer))


TRAIN = ",".join(WORDS[:8])  # every training word: the candidate wins its screen


@pytest.mark.parametrize(
    ("listed", "margin", "accepted"),
    [
        ("forest,mirror", 1, True),  # wins mirror, ties forest: +1 >= 1
        ("mirror", 1, False),  # wins mirror, loses forest: a tie (net 0) is a rejection
        ("forest,mirror", 2, False),  # +1 < margin 2
        ("mirror,rocket,garden", 2, True),  # 3 wins, 1 loss: +2 >= 2
    ],
)
def test_the_paired_gate_counts_wins_minus_losses_on_the_same_items(
    tmp_path: Path, listed: str, margin: int, accepted: bool
) -> None:
    # The incumbent gets one gate item (forest) right.
    trainer = _trainer(
        tmp_path, "Answer. UP=forest", f"Answer. UP={TRAIN},{listed}", gate_margin=margin
    )
    result = trainer_run(trainer)
    assert result.initial_gate == pytest.approx(1 / 6)
    step = history(tmp_path / "run")[0]
    gated = [c for c in step.candidates if c.gate is not None]
    assert gated and gated[0].survived
    assert step.accepted is accepted
    if accepted:
        assert step.decision is not None and step.decision.net >= margin
        assert step.decision.rule == f"margin>={margin}"
        assert trainer.incumbent_scores == gated[0].gate.scores  # type: ignore[union-attr]
    else:
        assert step.decision is None and gated[0].decision is not None
        assert gated[0].decision.net < margin
        assert trainer.graph.nodes["final"].instruction.value == "Answer. UP=forest"  # type: ignore[union-attr]


@pytest.mark.parametrize("held_out", [True, False])
def test_the_gate_decides_on_the_items_the_screen_did_not_use(
    tmp_path: Path, held_out: bool
) -> None:
    """A candidate reaches the gate because it won its screen: a win on a screened
    validation item is what selected it, so by default (`gate_held_out`) the gate leaves
    the screened items out of its decision, and a candidate whose only win is there is
    rejected; with ``gate_held_out = false`` that win counts and passes margin 1."""
    # Which gate items the step's screen draws depends on (seed, step) only: find them.
    first = _trainer(
        tmp_path / "probe", "Answer. UP=forest", f"Answer. UP={TRAIN},forest", screen_size=2
    )
    trainer_run(first)
    gate_words = {ex.id for ex in splits().gate}
    screened = [i for i in history(tmp_path / "probe" / "run")[0].screen_items if i in gate_words]
    assert len(screened) == 2
    won = next(i for i in screened if i != "forest")
    trainer = _trainer(
        tmp_path,
        "Answer. UP=forest",
        f"Answer. UP={TRAIN},forest,{won}",
        screen_size=2,
        gate_held_out=held_out,
    )
    trainer_run(trainer)
    step = history(tmp_path / "run")[0]
    gated = next(c for c in step.candidates if c.decision is not None)
    assert gated.screen_decision is not None and gated.screen_decision.wins >= 1
    assert gated.gate is not None and gated.gate.scores[won] == 1.0  # scored on all 6
    decision = gated.decision
    assert decision is not None
    if held_out:
        assert (decision.wins, decision.losses, decision.of) == (0, 0, 4)
        assert not step.accepted
    else:
        assert (decision.wins, decision.losses, decision.of) == (1, 0, 6)
        assert step.accepted


def test_a_gate_set_the_screen_drew_mostly_decides_on_every_item() -> None:
    gate = splits().gate
    incumbent = {ex.id: 0.0 for ex in gate}
    assert set(decision_items(incumbent, gate[:3], held_out=True)) == {ex.id for ex in gate[3:]}
    assert decision_items(incumbent, gate[:4], held_out=True) == incumbent  # 2 of 6 left
    assert decision_items(incumbent, gate[:3], held_out=False) == incumbent


def trainer_run(trainer: Trainer) -> Any:
    import asyncio

    async def go() -> Any:
        try:
            return await trainer.run()
        finally:
            await trainer.aclose()

    return asyncio.run(go())


# -- budgets in requests ---------------------------------------------------------------------


def test_request_budgets_count_cache_hits_but_not_a_runs_repeats(tmp_path: Path) -> None:
    import asyncio

    from semgrad.errors import BudgetExceededError
    from semgrad.llm.budget import Budget
    from semgrad.llm.cache import Cache
    from semgrad.llm.meter import Meter
    from semgrad.llm.stack import build_llm

    budget = Budget({"requests.forward": 2, "requests.strong": 1})
    client = ScriptedLLM(lambda r: "ok")
    cache = Cache(tmp_path / "cache.sqlite")
    llm = build_llm(client, cache=cache, meter=Meter(), budget=budget, retry=None)
    forward = Request.chat("same question", phase="forward")

    async def go() -> None:
        for _ in range(3):
            await llm.complete(forward)  # one call, then two repeats of it: counted once
        await llm.complete(Request.chat("another question", phase="forward"))
        with pytest.raises(BudgetExceededError, match=r"requests\.forward"):
            await llm.complete(Request.chat("a third question", phase="forward"))
        await llm.complete(forward)  # a repeat is never refused: it costs nothing new
        await llm.complete(Request.chat("improve", phase="optimizer"))
        with pytest.raises(BudgetExceededError, match=r"requests\.strong"):
            await llm.complete(Request.chat("improve more", phase="optimizer"))

    asyncio.run(go())
    assert len(client.requests) == 3  # the model was called once per distinct request
    assert budget.spent["requests.forward"] == 2 and budget.spent["requests.strong"] == 1
    assert budget.spent["requests"] == 3
    # Another run over the same (now warm) cache: a hit of a request it never made counts.
    other = Budget({"requests.forward": 1})
    again = build_llm(client, cache=cache, meter=Meter(), budget=other, retry=None)

    async def go_again() -> None:
        await again.complete(forward)
        with pytest.raises(BudgetExceededError, match=r"requests\.forward"):
            await again.complete(Request.chat("another question", phase="forward"))

    asyncio.run(go_again())
    cache.close()
    assert len(client.requests) == 3 and other.spent["requests.forward"] == 1


def test_a_request_budget_stops_the_run_and_resume_continues(tmp_path: Path) -> None:
    cfg = config(steps=2, budget={"requests.forward": 60})
    run_dir = tmp_path / "run"
    m = models(upper_for_final)
    result = optimize(cfg, run_dir, llms=m, splits=splits())
    assert result.status == "budget" and "requests.forward" in result.message
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["status"] == "budget"
    assert 0 < state["budget_spent"]["requests.forward"] <= 60
    # The counted requests are checkpointed: their repeats stay free after the resume.
    assert len(state["counted_requests"]) == state["budget_spent"]["requests"]
    # What it used is reported: requests by phase, cache hits included.
    assert result.spend["evaluation"]["requests"] > 0
    more = optimize(
        cfg,
        run_dir,
        resume=True,
        llms=models(upper_for_final),
        splits=splits(),
        budget_overrides={"requests.forward": 1000},
    )
    assert more.status == "finished" and more.final_test == 1.0
    assert [h.step for h in history(run_dir)] == [0, 1]


class Killed(BaseException):
    """A kill -9 in the middle of a model call."""


def killed_at(n: int) -> Callable[[Request], str]:
    """`upper_for_final`, except that its `n`-th call kills the run."""
    calls = {"n": 0}

    def flaky(request: Request) -> str:
        calls["n"] += 1
        if calls["n"] == n:
            raise Killed
        return upper_for_final(request)

    return flaky


def test_a_killed_search_run_resumes_to_the_same_graph(tmp_path: Path) -> None:
    reference = optimize(
        config(steps=2), tmp_path / "ref", llms=models(upper_for_final), splits=splits()
    )
    run_dir = tmp_path / "crash"
    with pytest.raises(Killed):  # killed during the first step's proposals
        optimize(config(steps=2), run_dir, llms=models(killed_at(5)), splits=splits())
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["step"] == 0
    result = optimize(
        config(steps=2), run_dir, resume=True, llms=models(upper_for_final), splits=splits()
    )
    assert result.final_test == reference.final_test == 1.0
    assert (run_dir / "best_graph.json").read_text() == (
        tmp_path / "ref" / "best_graph.json"
    ).read_text()


# -- demonstrations --------------------------------------------------------------------------


class FakeDemo:
    def __init__(self, inputs: dict[str, str], output: str) -> None:
        self.inputs, self.output = inputs, output

    def to_dict(self) -> dict[str, object]:
        return {"inputs": dict(self.inputs), "output": self.output}


class FakePool:
    """Stands for `semgrad.optim.demos.DemoPool`: demos with exactly each node's inputs,
    answered in uppercase."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.asked: list[tuple[str, int]] = []

    def sample(self, node: str, k: int, rng: random.Random) -> list[FakeDemo]:
        self.asked.append((node, k))
        inputs = self.graph.nodes[node].inputs
        pool = [
            FakeDemo({i: f"word: {w}" if i == "question" else "a hint" for i in inputs}, w.upper())
            for w in WORDS[:5]
        ]
        return rng.sample(pool, k)


def with_demos(graph: Graph, node: str) -> Graph:
    """`graph` with a demonstrations parameter on `node`: every LLM node has one once
    semgrad.optim.demos is there (``graph.named_demos()``); before, a parameter whose role
    is "demos" stands for it."""
    if not hasattr(graph, "named_demos"):
        graph.nodes[node].instruction = Parameter("[]", role="demos", name=f"{node}.demos")  # type: ignore[union-attr]
    return graph


def test_a_demos_run_changes_only_the_demonstrations(tmp_path: Path) -> None:
    graph = with_demos(hint_graph(1), "final")
    pool = FakePool(graph)
    optimizer = ScriptedLLM(lambda r: "never called")
    llms = {"forward": ScriptedLLM(forward_reply), "backward": optimizer, "optimizer": optimizer}
    cfg = config(optimizer={"method": "demos", "demos": 2})
    trainer = Trainer(graph, splits(), tmp_path / "run", config=cfg, llms=llms)
    trainer.demo_source = lambda results, g, s: pool
    result = trainer_run(trainer)
    assert result.final_test == 1.0
    step = history(tmp_path / "run")[0]
    assert step.method == "demos" and {c.kind for c in step.candidates} == {"demos"}
    assert step.accepted and step.changed == ["final.demos"]
    assert len(json.loads(step.state["final.demos"])) == 2
    assert pool.asked[0] == ("final", 2)  # the output node first
    assert optimizer.requests == []  # no backward or optimizer call


def test_the_search_offers_a_demos_candidate_beside_the_text_edits(tmp_path: Path) -> None:
    graph = with_demos(hint_graph(1), "hint_1")
    cfg = config(optimizer={"candidates": 4, "demos": 3})
    trainer = Trainer(graph, splits(), tmp_path / "run", config=cfg, llms=models(upper_for_final))
    trainer.demo_source = lambda results, g, s: FakePool(g)
    trainer_run(trainer)
    step = history(tmp_path / "run")[0]
    kinds = [c.kind for c in step.candidates]
    assert len(kinds) == 4 and kinds.count("demos") == 1 and kinds[0] == "node"
    demo = step.candidates[kinds.index("demos")]
    assert demo.error is None and len(demo.changes) == 1
    [(name, text)] = demo.changes.items()
    assert name.endswith(".demos") and len(json.loads(text)) == 3
    # Demonstrations are never rewritten as text by the optimizer.
    assert all(not p["parameter"].endswith(".demos") for p in step.proposals)


def _teacher_models() -> dict[str, ScriptedLLM]:
    """The forward model answers the final node in uppercase only when it was shown
    demonstrations (prior turns); the teacher answers every word in uppercase; every
    optimizer proposal fails, so only demonstrations can win."""

    def forward(request: Request) -> str:
        if request.node != "final":
            return f"a hint from {request.node}"
        word = re.search(r"word: (\w+)", request.messages[-1].content).group(1)  # type: ignore[union-attr]
        return word.upper() if len(request.messages) > 1 else word

    def teacher(request: Request) -> str:
        return re.search(r"word: (\w+)", request.messages[-1].content).group(1).upper()  # type: ignore[union-attr]

    return {
        "forward": ScriptedLLM(forward),
        "backward": ScriptedLLM(backward_reply),
        "optimizer": ScriptedLLM(lambda r: "no tags here"),
        "teacher": ScriptedLLM(teacher),
    }


def test_the_teacher_s_right_answers_become_a_candidate_that_can_win(tmp_path: Path) -> None:
    """No proposal works and the student succeeds nowhere (no bootstrapped demos; the
    metric has no labelled form): the teacher's answers for the output node are the only
    lever, and the step's ``teacher`` candidate wins. The teacher answers each training
    example once over the run (8 = `teacher`, every training word), and is restored on
    resume. (With `skip_shown`, the default, the teacher's draw here shows one minibatch
    item, is not scored there, and the labelled demonstrations candidate wins by that one
    item: `test_a_demonstrations_candidate_is_not_scored_on_the_items_it_shows`.)"""
    m = _teacher_models()
    cfg = config(steps=2, optimizer={"demos": 2, "skip_shown": False})
    assert cfg.optimizer.teacher == 8
    result = optimize(cfg, tmp_path / "run", llms=m, splits=splits())
    assert result.initial_test == 0.0 and result.final_test == 1.0
    first = history(tmp_path / "run")[0]
    kinds = [c.kind for c in first.candidates]
    assert "teacher" in kinds and kinds[:2] == ["node", "full"]
    winner = next(c for c in first.candidates if c.accepted)
    assert winner.kind == "teacher" and first.changed == ["final.demos"]
    demos = json.loads(winner.changes["final.demos"])
    assert len(demos) == 2 and all(d["output"].isupper() for d in demos)
    assert set(demos[0]["inputs"]) == {"question", "hint_1", "hint_2"}
    teacher = m["teacher"]
    assert len(teacher.requests) == 8 and {r.phase for r in teacher.requests} == {"teacher"}
    assert {r.node for r in teacher.requests} == {"final"}
    assert result.spend["teacher"]["calls"] == 8  # reported as a phase of its own
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    assert sorted(state["teacher"]["taught"]) == sorted(WORDS[:8])
    assert len(state["teacher"]["demos"]) == 8
    again = Trainer(hint_graph(2), splits(), tmp_path / "run", config=cfg, llms=_teacher_models())
    again.restore()
    assert again.taught == set(WORDS[:8]) and len(again.teacher_demos) == 8
    # The report names the candidate's kind and the teacher's phase in the spend.
    from semgrad.report.load import load_run
    from semgrad.report.page import render_html

    html = render_html(load_run(tmp_path / "run"))
    assert "<td>teacher</td>" in html and html.count("teacher") >= 3


@pytest.mark.parametrize("skip", [True, False])
def test_a_demonstrations_candidate_is_not_scored_on_the_items_it_shows(
    tmp_path: Path, skip: bool
) -> None:
    """The teacher answers the minibatch's own questions, so its demonstrations can show
    the answer to an item the screen then asks: by default (`skip_shown`) the candidate is
    not scored on such an item (nor credited for it by the gate); with ``skip_shown =
    false`` it is, and wins it by being shown the answer."""
    cfg = config(optimizer={"demos": 3, "skip_shown": skip})
    optimize(cfg, tmp_path / "run", llms=_teacher_models(), splits=splits())
    step = history(tmp_path / "run")[0]
    teacher = next(c for c in step.candidates if c.kind == "teacher")
    questions = {d["inputs"]["question"] for d in json.loads(teacher.changes["final.demos"])}
    shown = sorted(b.id for b in step.batch if f"word: {b.id}" in questions)
    assert shown  # the seeded draw shows at least one minibatch item
    if skip:
        assert sorted(teacher.shown) == shown and not set(shown) & set(teacher.screen)
        from semgrad.report.load import load_run
        from semgrad.report.page import render_html

        html = render_html(load_run(tmp_path / "run"))
        assert f"left out: {len(shown)} item(s) its demonstrations show" in html
    else:
        assert teacher.shown == [] and all(teacher.screen[i] == 1.0 for i in shown)


def test_shown_items_match_a_demonstration_holding_every_input_of_the_item() -> None:
    ex = [
        Example("a", {"question": "q1"}, "A"),
        Example("b", {"question": "q2"}, "B"),
        Example("c", {"question": "q1", "context": "x"}, "C"),
    ]
    demos = json.dumps([{"inputs": {"question": "q1", "hint_1": "h"}, "output": "A"}])
    assert shown_items({"final.demos": demos}, ex) == ["a"]  # c's context is not shown
    assert shown_items({"final.instruction": demos}, ex) == []  # not a demos parameter
    assert shown_items({"final.demos": "not json"}, ex) == []
    assert shown_items({"final.demos": "[]", "hint_1.demos": demos}, ex) == ["a"]


@pytest.mark.parametrize("gate_survivors", [1, 4])
def test_only_the_best_survivors_of_the_screen_are_gated(
    tmp_path: Path, gate_survivors: int
) -> None:
    """The full edit (every node re-run) and two demonstration candidates for the output
    node (one node re-run) all win every screen item. By default only the best survivor is
    gated: on a tied margin the cheaper, then the earlier; the others survived but never
    cost a gate request. With ``gate_survivors = 4`` all are gated and the first of the
    equals wins."""
    m = _teacher_models()

    def forward(request: Request) -> str:
        if request.node != "final":
            return f"a hint from {request.node}"
        word = re.search(r"word: (\w+)", request.messages[-1].content).group(1)  # type: ignore[union-attr]
        shown = len(request.messages) > 1 or "UPPERCASE" in request.messages[-1].content
        return word.upper() if shown else word

    def optimizer(request: Request) -> str:
        if request.node == "final":
            return "<improved>Reply with the word in UPPERCASE only.</improved>"
        return f"<improved>Give a short hint for {request.node}.</improved>"

    m["forward"], m["optimizer"] = ScriptedLLM(forward), ScriptedLLM(optimizer)
    # skip_shown off: the teacher's draw shows a minibatch item, and the three are to tie.
    cfg = config(optimizer={"demos": 2, "gate_survivors": gate_survivors, "skip_shown": False})
    assert config(optimizer={}).optimizer.gate_survivors == 1
    optimize(cfg, tmp_path / "run", llms=m, splits=splits())
    step = history(tmp_path / "run")[0]
    survivors = {c.kind: c for c in step.candidates if c.survived}
    # The labelled demonstrations for the output node win every item too.
    assert set(survivors) == {"full", "teacher", "demos"}
    full, teacher = survivors["full"], survivors["teacher"]
    assert full.screen_decision == teacher.screen_decision == survivors["demos"].screen_decision
    gated = [c.kind for c in step.candidates if c.gate is not None]
    if gate_survivors == 1:  # teacher and demos re-run one node, the full edit three
        assert gated == ["teacher"] and full.decision is None
        assert step.changed == ["final.demos"]
        from semgrad.report.load import load_run
        from semgrad.report.page import render_html

        assert render_html(load_run(tmp_path / "run")).count("survived, not gated") == 2
    else:
        assert gated == ["full", "teacher", "demos"] and teacher.decision is not None
        assert teacher.decision.accepted and step.changed[-1] == "final.instruction"


def test_rescored_nodes_counts_a_changed_node_and_every_node_after_it() -> None:
    graph = hint_graph(2)  # hint_1 and hint_2 both feed final
    assert rescored_nodes(graph, {"final.demos": "[]"}) == 1
    assert rescored_nodes(graph, {"hint_2.instruction": "x"}) == 2
    assert rescored_nodes(graph, {"hint_1.instruction": "x", "final.instruction": "y"}) == 2
    assert rescored_nodes(graph, {f"{n}.instruction": "x" for n in graph.nodes}) == 3
    assert rescored_nodes(graph, {}) == 0


def test_the_teacher_is_off_for_the_paper_and_demos_methods_and_refused_for_paper() -> None:
    from semgrad.errors import ConfigError

    base = {"graph": {"hints": 2}, "data": {"train": "arith:train", "test": "arith:test"}}
    assert config_from_dict({**base, "optimizer": {"method": "paper"}}).optimizer.teacher == 0
    assert config_from_dict({**base, "optimizer": {"method": "demos"}}).optimizer.teacher == 0
    assert config_from_dict({**base, "optimizer": {"teacher": 0}}).optimizer.teacher == 0
    with pytest.raises(ConfigError, match="teacher is a setting of the search"):
        config_from_dict({**base, "optimizer": {"method": "paper", "teacher": 4}})
    # The final answer shown to upstream nodes' optimizer: the search's, never the paper's.
    assert config_from_dict(base).optimizer.final_answer is True
    assert (
        config_from_dict({**base, "optimizer": {"method": "paper"}}).optimizer.final_answer is False
    )
    with pytest.raises(ConfigError, match="final_answer is a setting of the search"):
        config_from_dict({**base, "optimizer": {"method": "paper", "final_answer": True}})
    with pytest.raises(ConfigError, match="node_fallback is a setting of the search"):
        config_from_dict({**base, "optimizer": {"method": "paper", "node_fallback": True}})
    # The gate on the items the screen did not use: the search's default; the paper has
    # no screen.
    assert config_from_dict(base).optimizer.gate_held_out is True
    paper = config_from_dict({**base, "optimizer": {"method": "paper"}}).optimizer
    assert paper.gate_held_out is False
    with pytest.raises(ConfigError, match="gate_held_out is a setting of the search"):
        config_from_dict({**base, "optimizer": {"method": "paper", "gate_held_out": True}})
    # Not crediting a candidate for the items its demonstrations show: the search's.
    assert config_from_dict(base).optimizer.skip_shown is True
    assert paper.skip_shown is False
    with pytest.raises(ConfigError, match="skip_shown is a setting of the search"):
        config_from_dict({**base, "optimizer": {"method": "paper", "skip_shown": True}})
    models_ = config_from_dict({**base, "models": {"teacher": "my-teacher"}}).models
    assert models_.role("teacher").model == "my-teacher"
    assert config_from_dict(base).models.role("teacher") == config_from_dict(base).models.backward


# -- records -----------------------------------------------------------------------------------


def test_blame_prefers_the_node_blamed_on_most_examples_else_round_robin() -> None:
    def param(examples: int) -> Parameter:
        p = Parameter("text")
        p.grad = [GradientEntry(f"e{i}", "n", {}, "out", ("fix it",)) for i in range(examples)]
        return p

    order, why = blame({"a": param(1), "b": param(3), "c": param(0)}, step=5)
    assert order == ["b", "a"] and "most examples" in why
    params = {"a": param(2), "b": param(2)}
    assert blame(params, step=0)[0][0] == "a" and blame(params, step=1)[0][0] == "b"
    assert "round-robin" in blame(params, step=1)[1]
    assert blame({"a": param(0)}, step=0) == ([], "no node received a gradient")


def test_search_records_round_trip_and_old_lines_still_read(tmp_path: Path) -> None:
    optimize(config(), tmp_path / "run", llms=models(upper_for_final), splits=splits())
    rows = RunFiles(tmp_path / "run").read_history()
    assert rows[0]["version"] == 2 and rows[0]["method"] == "search"
    typed = StepRecord.from_dict(rows[0])
    assert typed.to_dict() == rows[0]
    old = {k: v for k, v in rows[0].items() if k not in ("version", "method", "candidates")}
    for version in (None, 1):
        line = {**old, "version": version} if version else old
        read = StepRecord.from_dict(line)
        assert read.candidates == [] and read.method is None and read.accepted


def test_the_paper_method_writes_no_search_fields(tmp_path: Path) -> None:
    optimize(
        config(optimizer={"method": "paper"}),
        tmp_path / "run",
        llms=models(upper_for_final),
        splits=splits(),
    )
    row = RunFiles(tmp_path / "run").read_history()[0]
    assert not {"method", "candidates", "screen_items", "decision"} & set(row)
    assert len(row["batch"]) == 2  # the paper's batch of 2


def test_the_report_shows_each_search_step_s_candidates(tmp_path: Path) -> None:
    from semgrad.report.load import load_run
    from semgrad.report.page import render_html

    optimize(config(), tmp_path / "run", llms=models(upper_for_final), splits=splits())
    html = render_html(load_run(tmp_path / "run"))
    assert "Candidates (4; screen on 10 items)" in html
    assert "Why the winner won" in html and "margin&gt;=1" in html
    assert "Blamed node" in html and "round-robin" in html
    assert "screened out" in html or "not scored" in html
    assert "accepted" in html


def test_a_run_recorded_before_methods_existed_resumes_as_the_paper_method(
    tmp_path: Path,
) -> None:
    from semgrad.optim.trainer import load_run_config

    run_dir = tmp_path / "old"
    optimize(
        config(optimizer={"method": "paper"}, steps=0),
        run_dir,
        llms=models(upper_for_final),
        splits=splits(),
    )
    recorded = json.loads((run_dir / "config.json").read_text())
    assert recorded["optimizer"]["method"] == "paper"
    del recorded["optimizer"]["method"]
    (run_dir / "config.json").write_text(json.dumps(recorded))
    assert load_run_config(run_dir).optimizer.method == "paper"


def test_the_optimizer_sees_the_incumbent_score_and_the_rejected_texts(tmp_path: Path) -> None:
    optimizer = ScriptedLLM(
        lambda r: (
            f"<improved>Reply in lowercase, take {r.sample_index}.</improved>"
            if r.node == "final"
            else "no tags"
        )
    )
    m = models(upper_for_final)
    m["optimizer"] = optimizer
    optimize(config(steps=2), tmp_path / "run", llms=m, splits=splits())
    steps = history(tmp_path / "run")
    assert not any(s.accepted for s in steps)
    first = next(r.messages[-1].content for r in optimizer.requests if r.node == "final")
    assert "which scores 0.00 on validation examples" in first
    assert "tried recently" not in first
    later = [r.messages[-1].content for r in optimizer.requests if r.node == "final"][-1]
    assert "were tried recently and did not do better" in later
    assert '- score 0.00: "Reply in lowercase, take 0."' in later


def test_the_demos_method_on_a_graph_without_demonstrations_is_a_config_error(
    tmp_path: Path,
) -> None:
    from semgrad.errors import ConfigError
    from semgrad.graph.core import FunctionNode

    graph = Graph(["question"], [FunctionNode("out", ("question",), "identity")], "out")
    cfg = config(optimizer={"method": "demos", "demos": 3})
    with pytest.raises(ConfigError, match="no demonstrations parameter"):
        Trainer(graph, splits(), tmp_path / "run", config=cfg, llms=models(upper_for_final))


def test_method_settings_have_their_defaults_and_errors_name_the_key() -> None:
    from semgrad.errors import ConfigError

    base = {"graph": {"hints": 2}, "data": {"train": "arith:train", "test": "arith:test"}}
    paper = config_from_dict({**base, "optimizer": {"method": "paper"}}).optimizer
    assert (paper.batch_size, paper.gate) == (2, "full")
    search = config_from_dict(base).optimizer
    assert (search.method, search.batch_size, search.gate) == ("search", 4, "early-stop")
    assert (search.candidates, search.screen_size, search.gate_margin) == (4, 8, 1)
    assert config_from_dict({**base, "optimizer": {"gate": "none"}}).optimizer.gate == "none"
    with pytest.raises(ConfigError, match="demos method always gates"):
        config_from_dict({**base, "optimizer": {"method": "demos", "gate": "none"}})
    with pytest.raises(ConfigError, match="demos >= 1"):
        config_from_dict({**base, "optimizer": {"method": "demos", "demos": 0}})
    with pytest.raises(ConfigError, match=r"optimizer\.method"):
        config_from_dict({**base, "optimizer": {"method": "gepa"}})


def test_the_sign_rule_accepts_a_significant_win(tmp_path: Path) -> None:
    cfg = config(optimizer={"gate_rule": "sign", "gate_level": 0.05})
    optimize(cfg, tmp_path / "run", llms=models(upper_for_final), splits=splits())
    step = history(tmp_path / "run")[0]
    assert step.accepted and step.decision is not None
    assert step.decision.rule == "sign<=0.05" and step.decision.wins == 6
    assert step.decision.p_value == pytest.approx(1 / 64)


def test_a_resumed_run_s_wall_time_covers_every_process(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(Killed):  # killed in the second step
        optimize(config(steps=3), run_dir, llms=models(killed_at(9)), splits=splits())
    before = json.loads((run_dir / "checkpoint.json").read_text())
    assert before["step"] >= 1 and before["wall_s"] > 0
    result = optimize(
        config(steps=3), run_dir, resume=True, llms=models(upper_for_final), splits=splits()
    )
    assert result.total_wall_s == pytest.approx(before["wall_s"] + result.wall_s, abs=0.2)
    assert (
        json.loads((run_dir / "checkpoint.json").read_text())["wall_s"] >= result.total_wall_s - 0.1
    )
