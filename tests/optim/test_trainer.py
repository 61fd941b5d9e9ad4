"""The training loop with scripted models: learning, gating, checkpoints, resume, budgets."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from semgrad.data.example import Example
from semgrad.errors import ConfigError
from semgrad.evaluation.metrics import Score
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.config import config_from_dict
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.trainer import Splits, optimize

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "piano",
    "lemon",
    "candle",
    "forest",
    "mirror",
    "rocket",
    "garden",
    "button",
    "planet",
    "silver",
    "window",
    "pepper",
    "castle",
    "dragon",
    "feather",
]


class CaseSensitive:
    """Exact, case-sensitive match: the format is what has to be learned."""

    name = "case-sensitive"

    def __call__(self, prediction: str, example: Example) -> Score:
        if prediction.strip() == example.target:
            return Score(1.0, "The output is correct.", prediction.strip())
        return Score(0.0, f'The expected output is: "{example.target}".', prediction.strip())


def splits() -> Splits:
    ex = [Example(f"w/{i}", {"question": f"word: {w}"}, w.upper()) for i, w in enumerate(WORDS)]
    return Splits(
        train=tuple(ex[:8]), gate=tuple(ex[8:14]), test=tuple(ex[14:]), metric=CaseSensitive()
    )


def forward_reply(request: Request) -> str:
    text = request.messages[-1].content
    if request.node != "final":
        return f"a hint from {request.node}"
    word = re.search(r"word: (\w+)", text).group(1)  # type: ignore[union-attr]
    return word.upper() if "UPPERCASE" in text else word


def backward_reply(request: Request) -> str:
    n = len(re.findall(r"<feedback_(\d+)>\.\.\.", request.messages[-1].content))
    return " ".join(f"<feedback_{i}>say it louder</feedback_{i}>" for i in range(1, n + 1))


def optimizer_reply(request: Request) -> str:
    if request.node == "final":
        return "Thinking... <improved>Reply with the word in UPPERCASE only.</improved>"
    return "no tags here"  # a failed proposal: never becomes a prompt


def models() -> dict[str, ScriptedLLM]:
    return {
        "forward": ScriptedLLM(forward_reply),
        "backward": ScriptedLLM(backward_reply),
        "optimizer": ScriptedLLM(optimizer_reply),
    }


def config(**overrides: object) -> object:
    """A run of the paper method (these tests pin its protocol; tests/optim/test_search*.py
    cover the default method)."""
    base: dict[str, object] = {
        "name": "t",
        "steps": 2,
        "graph": {"hints": 2},
        "data": {"train": "arith:train", "gate": "arith:val", "test": "arith:test"},
        "models": {"cache_mode": "off"},
    }
    base.update(overrides)
    base["optimizer"] = {"method": "paper", **dict(overrides.get("optimizer") or {})}  # type: ignore[call-overload]
    return config_from_dict(base)


def test_learns_the_format_through_feedback(tmp_path: Path) -> None:
    result = optimize(config(), tmp_path / "run", llms=models(), splits=splits())  # type: ignore[arg-type]
    assert result.status == "finished"
    assert result.initial_test == 0.0 and result.final_test == 1.0
    files = RunFiles(tmp_path / "run")
    history = files.read_history()
    assert [h["step"] for h in history] == [0, 1]
    first = history[0]
    assert first["accepted"] is True and first["candidate_score"] == 1.0
    assert first["incumbent_score"] == 0.0
    assert first["changed"] == ["final.instruction"]
    failed = [p for p in first["proposals"] if p["new"] is None]
    assert failed and all("no <improved>" in p["error"] for p in failed)
    assert first["backward"][0]["calls"][0]["successor"] == "final"
    assert first["gradients"]["hint_1.instruction"] == ["say it louder"]
    assert len(first["batch"]) == 2 and all(b["score"] == 0.0 for b in first["batch"])
    assert set(first["spend"]) == {"forward", "backward", "optimizer", "evaluation"}
    assert first["spend"]["backward"]["calls"] == 2  # one neighbour-aware call per example
    best = json.loads(files.best_graph.read_text())
    final_node = next(n for n in best["nodes"] if n["name"] == "final")
    assert "UPPERCASE" in final_node["instruction"]
    summary = json.loads(files.summary.read_text())
    assert summary["final_test"] == 1.0
    # Step 2: nothing left to learn from; the batch falls back to right answers, gate rejects.
    assert history[1]["accepted"] is False


def test_independent_mode_makes_one_call_per_input(tmp_path: Path) -> None:
    cfg = config(optimizer={"backward": "independent"}, steps=1)
    optimize(cfg, tmp_path / "run", llms=models(), splits=splits())  # type: ignore[arg-type]
    step = RunFiles(tmp_path / "run").read_history()[0]
    assert step["spend"]["backward"]["calls"] == 4  # 2 examples x 2 inputs


def test_no_gradient_ablation_shows_only_final_feedback(tmp_path: Path) -> None:
    cfg = config(optimizer={"use_gradients": False}, steps=1)
    optimize(cfg, tmp_path / "run", llms=models(), splits=splits())  # type: ignore[arg-type]
    step = RunFiles(tmp_path / "run").read_history()[0]
    assert step["spend"]["backward"]["calls"] == 0
    assert step["gradients"]["hint_1.instruction"] == []


def test_gate_rejects_a_worse_candidate(tmp_path: Path) -> None:
    m = models()
    m["optimizer"] = ScriptedLLM(lambda r: "<improved>Reply in lowercase.</improved>")
    result = optimize(config(steps=1), tmp_path / "run", llms=m, splits=splits())  # type: ignore[arg-type]
    step = RunFiles(tmp_path / "run").read_history()[0]
    assert step["accepted"] is False and step["candidate_score"] == 0.0
    assert "UPPERCASE" not in json.dumps(step["state"])
    assert result.final_test == 0.0


def test_early_stop_gate_saves_calls(tmp_path: Path) -> None:
    m = models()
    seen: list[str] = []

    def good_then_bad(request: Request) -> str:
        seen.append(request.node)
        if request.node != "final":
            return "no tags"
        first = seen.count("final") == 1
        return (
            "<improved>Reply in UPPERCASE.</improved>"
            if first
            else "<improved>Reply in lowercase.</improved>"
        )

    m["optimizer"] = ScriptedLLM(good_then_bad)
    cfg = config(
        steps=2, optimizer={"gate": "early-stop"}, models={"cache_mode": "off", "concurrency": 4}
    )
    ex = splits()
    full = [
        Example(f"g/{i}", {"question": f"word: {w}"}, w.upper()) for i, w in enumerate(WORDS * 2)
    ]
    sp = Splits(ex.train, tuple(full[:20]), ex.test, ex.metric)
    optimize(cfg, tmp_path / "run", llms=m, splits=sp)  # type: ignore[arg-type]
    history = RunFiles(tmp_path / "run").read_history()
    assert history[0]["accepted"] and history[0]["gate"]["early_stopped"] is False
    gate = history[1]["gate"]
    assert history[1]["accepted"] is False
    # concurrency 4 over 3 model nodes per example: chunks of 2 examples
    assert gate["early_stopped"] is True and gate["evaluated"] == 2 and gate["of"] == 20
    assert gate["tokens_saved_estimate"] > 0
    # A score over 2 of 20 items is not the gate score (it was reported as one: 33.3 %,
    # 22.2 % in RESULTS.md): partial, per item, and no candidate score.
    assert gate["partial"] is True and gate["score"] is None and gate["partial_score"] == 0.0
    assert gate["scores"] == {"g/0": 0.0, "g/1": 0.0}
    assert history[1]["candidate_score"] is None
    assert history[0]["gate"]["partial"] is False and len(history[0]["gate"]["scores"]) == 20
    assert history[0]["gate"]["score"] == history[0]["candidate_score"] == 1.0


class Killed(BaseException):
    """Stands for kill -9: a BaseException no handler in semgrad catches."""


def _run_to_completion(tmp_path: Path, name: str) -> dict[str, str]:
    optimize(config(steps=3), tmp_path / name, llms=models(), splits=splits())  # type: ignore[arg-type]
    return json.loads((tmp_path / name / "best_graph.json").read_text())


def test_crash_then_resume_reaches_the_same_graph(tmp_path: Path) -> None:
    reference = _run_to_completion(tmp_path, "ref")
    crashing = models()
    calls = {"n": 0}

    def flaky_optimizer(request: Request) -> str:
        calls["n"] += 1
        if calls["n"] == 4:  # during the second step
            raise Killed  # like a kill: nothing is caught or cleaned up
        return optimizer_reply(request)

    crashing["optimizer"] = ScriptedLLM(flaky_optimizer)
    run_dir = tmp_path / "crash"
    with pytest.raises(Killed):
        optimize(config(steps=3), run_dir, llms=crashing, splits=splits())  # type: ignore[arg-type]
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["step"] == 1 and state["status"] == "running"
    result = optimize(config(steps=3), run_dir, resume=True, llms=models(), splits=splits())  # type: ignore[arg-type]
    assert result.steps_done == 3
    assert json.loads((run_dir / "best_graph.json").read_text()) == reference
    assert [h["step"] for h in RunFiles(run_dir).read_history()] == [0, 1, 2]


def test_budget_stop_is_clean_and_resumable(tmp_path: Path) -> None:
    cfg = config(steps=2, budget={"calls": 60})
    run_dir = tmp_path / "run"
    result = optimize(cfg, run_dir, llms=models(), splits=splits())  # type: ignore[arg-type]
    assert result.status == "budget" and "calls" in result.message
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["status"] == "budget"
    assert state["budget_spent"]["calls"] <= 60
    total_calls = sum(p["calls"] for p in state["spend"].values())
    assert total_calls <= 60
    more = optimize(
        cfg, run_dir, resume=True, llms=models(), splits=splits(), budget_overrides={"calls": 1000}
    )  # type: ignore[arg-type]
    assert more.status == "finished" and more.final_test == 1.0


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"optimizer\.gate"):
        config(optimizer={"gate": "sometimes"})
    with pytest.raises(ConfigError, match="budget"):
        from semgrad.llm.budget import Budget

        Budget({"cals": 3})


def test_a_proposal_that_parrots_the_request_is_a_failed_proposal(tmp_path: Path) -> None:
    m = models()
    m["optimizer"] = ScriptedLLM(
        lambda r: (
            "<improved>Keep what works, and add specific guidance that would have "
            "avoided these mistakes.</improved>"
        )
    )
    optimize(config(steps=1), tmp_path / "run", llms=m, splits=splits())  # type: ignore[arg-type]
    step = RunFiles(tmp_path / "run").read_history()[0]
    assert step["changed"] == []
    assert all("repeats the optimizer's own instructions" in p["error"] for p in step["proposals"])


def test_echo_guard_keeps_a_proposal_that_borrows_one_phrase() -> None:
    from semgrad.optim.optimizer import _echoes
    from semgrad.prompts import OptimizerExample, render_optimizer

    prompt = render_optimizer("instruction", "x", [OptimizerExample({"q": "a"}, "b", ["c"])])
    task = prompt[0].content.rsplit("\n\n", 1)[-1]
    good = (
        "Classify the review based on the given labels (POS, NEG). Ensure the output contains "
        "only one of the labels. If the feedback shows an expected output, require exactly "
        "that form of answer."
    )
    parrot = (
        "Keep what works, and add specific guidance that would have avoided these mistakes "
        "(what to check, what to do differently)."
    )
    assert not _echoes(good, task)
    assert _echoes(parrot, task)


def test_a_step_that_changed_nothing_asks_once_more_at_a_higher_temperature(tmp_path: Path) -> None:
    m = models()

    def echo_then_fix(request: Request) -> str:
        if request.node != "final":
            return "no tags"
        if request.temperature == 0:
            return "<improved>Solve the question step by step, using the hints if they help. End with a last line of the form 'Answer: <answer>'.</improved>"
        assert request.sample_index == 1 and request.sampling_seed == request.seed + 1
        return "<improved>Reply with the word in UPPERCASE only.</improved>"

    m["optimizer"] = ScriptedLLM(echo_then_fix)
    result = optimize(config(steps=1), tmp_path / "run", llms=m, splits=splits())  # type: ignore[arg-type]
    step = RunFiles(tmp_path / "run").read_history()[0]
    assert step["changed"] == ["final.instruction"] and step["accepted"] is True
    assert len(step["proposals"]) == 6  # three first proposals, three retried
    assert result.final_test == 1.0


def test_split_seed_fixes_the_splits_across_run_seeds(data_dir: Path) -> None:
    from semgrad.optim.trainer import load_splits

    def splits(seed: int, split_seed: int | None) -> tuple[list[str], list[str]]:
        config = config_from_dict(
            {
                "seed": seed,
                "graph": {"hints": 1},
                "data": {
                    "train": "bbh:navigate:train",
                    "test": "bbh:navigate:test",
                    "train_size": 5,
                    "test_size": 5,
                    "data_dir": str(data_dir),
                    **({} if split_seed is None else {"split_seed": split_seed}),
                },
            }
        )
        s = load_splits(config)
        return [e.id for e in s.train], [e.id for e in s.test]

    assert splits(1, 0) == splits(2, 0)
    assert splits(1, None) != splits(2, None)  # without it, the run's seed shuffles
    assert config_from_dict(
        {"graph": {"hints": 1}, "data": {"train": "a", "test": "b", "split_seed": 3}}
    ).data.split_seed == 3


def test_a_proposal_that_pastes_a_training_question_is_a_failed_proposal(tmp_path: Path) -> None:
    story = "the farmer counted seven cows two goats and one very old horse in the barn"
    base = splits()
    long = Splits(
        train=tuple(
            Example(e.id, {"question": f"{e.inputs['question']}. {story}"}, e.target)
            for e in base.train
        ),
        gate=base.gate,
        test=base.test,
        metric=base.metric,
    )
    m = models()
    m["optimizer"] = ScriptedLLM(
        lambda r: f"<improved>Reply in UPPERCASE. Example: {story}, so ten.</improved>"
    )
    optimize(config(steps=1), tmp_path / "run", llms=m, splits=long)  # type: ignore[arg-type]
    step = RunFiles(tmp_path / "run").read_history()[0]
    assert step["changed"] == []
    assert all("copies a training example's input" in p["error"] for p in step["proposals"])


def test_the_copy_guard_allows_a_few_words_of_a_question() -> None:
    from semgrad.optim.optimizer import _copies_an_input
    from semgrad.prompts import OptimizerExample

    ex = [OptimizerExample({"question": "How many apples are left if Ann eats two of five?"}, "", [])]
    assert not _copies_an_input("Work out how many apples are left, step by step.", ex)
    assert _copies_an_input(
        "Like: how many apples are left if Ann eats two of five? Three.", ex
    )


def test_a_budget_stop_during_the_gate_keeps_the_incumbent(tmp_path: Path) -> None:
    # 36 calls score the initial graph, 24 find the batch's errors, 5 backward and optimizer
    # calls propose; the budget runs out while the candidate is being gated. The checkpoint
    # (and best_graph.json) must hold the incumbent, not the half-gated candidate.
    cfg = config(steps=2, budget={"calls": 70})
    run_dir = tmp_path / "run"
    result = optimize(cfg, run_dir, llms=models(), splits=splits())  # type: ignore[arg-type]
    assert result.status == "budget" and result.steps_done == 0
    state = json.loads((run_dir / "checkpoint.json").read_text())
    final_node = next(n for n in state["graph"]["nodes"] if n["name"] == "final")
    assert "UPPERCASE" not in final_node["instruction"]
    best = json.loads((run_dir / "best_graph.json").read_text())
    assert best == state["graph"]
    assert result.graph is not None and "UPPERCASE" not in result.graph.state_dict()[
        "final.instruction"
    ]


def test_a_request_log_holds_every_request_of_the_run_and_replays_it(tmp_path: Path) -> None:
    import asyncio

    from semgrad.llm.cache import Cache, CachedLLM
    from semgrad.llm.record import RequestLog
    from semgrad.optim.trainer import Trainer

    async def run(llms: dict[str, object], run_dir: Path, log: RequestLog | None) -> object:
        trainer = Trainer(
            *_model_and_splits(), run_dir, config=config(), llms=llms, request_log=log  # type: ignore[arg-type]
        )
        try:
            return await trainer.run()
        finally:
            await trainer.aclose()

    scripted = models()
    log = RequestLog()
    first = asyncio.run(run(scripted, tmp_path / "a", log))  # type: ignore[arg-type]
    assert len(log) == sum(len(m.requests) for m in scripted.values()) > 0
    # The run again from its log alone: a replay-only cache, no model behind it.
    log.fill_cache(Cache(tmp_path / "log.sqlite"))
    replay = Cache(tmp_path / "log.sqlite", mode="replay-only")
    nomodel = {role: CachedLLM(ScriptedLLM(_never, model=m.model), replay) for role, m in scripted.items()}
    again = asyncio.run(run(nomodel, tmp_path / "b", None))  # type: ignore[arg-type]
    assert (again.initial_test, again.final_test) == (first.initial_test, first.final_test)  # type: ignore[attr-defined]


def _never(request: Request) -> str:
    raise AssertionError("a replay must never reach a model")


def _model_and_splits() -> tuple[object, Splits]:
    from semgrad.graph.builders import hint_graph

    return hint_graph(2), splits()
