"""The decide runner end to end with scripted models: a paper cell under request budgets,
its request log, and a replay from the log alone that reproduces the per-item scores."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
from modload import load_module

from semgrad.llm.cache import Cache
from semgrad.llm.types import Request

HERE = Path(__file__).resolve().parent


def _load_runner() -> Any:
    return load_module("decide_run", HERE / "run.py")


def _reply(request: Request) -> str:
    text = request.messages[-1].content
    if request.phase == "backward":
        n = len(re.findall(r"<feedback_(\d+)>", text)) // 2 or 1
        return " ".join(f"<feedback_{i}>give the number</feedback_{i}>" for i in range(1, n + 1))
    if request.phase == "optimizer":
        return "<improved>Answer with the final number only.</improved>"
    numbers = re.findall(r"\d+", text)
    return numbers[0] if "final number only" in text and numbers else "I am not sure."


def test_a_paper_cell_stops_at_its_budget_and_replays_from_its_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _load_runner()

    def scripted_models(cache: Cache) -> Any:
        # Named like the embedded models, whose names the replay's cache keys use.
        return runner.Models.scripted(cache, lambda model: _reply)

    monkeypatch.setattr(runner, "HERE", tmp_path)
    args = runner.parse_args(
        [
            "--task", "arith", "--methods", "initial,paper", "--seeds", "0",
            "--forward-budget", "3000", "--strong-budget", "12",
            "--cache", str(tmp_path / "cache.sqlite"), "--runs", str(tmp_path / "runs"),
        ]
    )  # fmt: skip
    monkeypatch.setattr(runner, "serving_models", scripted_models)
    assert asyncio.run(runner.main_async(args)) == 0
    out = tmp_path / "results" / "arith"
    paper = json.loads((out / "paper__seed0.json").read_text())
    initial = json.loads((out / "initial__seed0.json").read_text())
    assert paper["status"] == "budget"
    assert paper["used"]["forward"] <= 3000 and paper["used"]["strong"] <= 12
    assert paper["steps"] and paper["steps"][0]["gate_scores"]  # at least one step gated
    # The budget counts distinct requests: the cell's repeats of its own requests (cache
    # hits, logged) are free, so it sent more than it counted.
    from semgrad.llm.record import RequestLog

    log = RequestLog.read(out / "paper__seed0.requests.jsonl.gz")
    sent = paper["requests"]["forward"]["requests"]
    forward = [e for e in log if runner.ROLE_OF_PHASE.get(e.phase) == "forward"][:sent]
    assert paper["used"]["forward"] == len({e.key for e in forward}) < sent
    assert len(paper["test_scores"]) == len(initial["test_scores"]) == 200
    assert (out / "paper__seed0.requests.jsonl.gz").exists()
    # Replay from the logs alone: no model behind the cache, the same per-item scores.
    args.replay = True
    assert asyncio.run(runner.main_async(args)) == 0
    # Without the task's data the replay checks the committed replies against the log.
    args.data_dir = tmp_path / "no-data-here"
    assert asyncio.run(runner.main_async(args)) == 0
    assert runner.check_from_log(paper, log) == []
    forged = {**paper, "test_scores": [1.0 - paper["test_scores"][0], *paper["test_scores"][1:]]}
    [problem] = runner.check_from_log(forged, log)
    assert "committed" in problem
    unlogged = {**paper, "test_replies": ["not a reply", *paper["test_replies"][1:]]}
    assert any("not in the request log" in p for p in runner.check_from_log(unlogged, log))
    # A model's reply ending in a newline is kept stripped in the trace, and still found.
    import dataclasses

    padded = RequestLog([dataclasses.replace(e, text=e.text + "\n") for e in log])
    assert runner.check_from_log(paper, padded) == []


def test_every_semgrad_method_is_a_valid_run_config() -> None:
    """The ablations (stage 5) differ from the default in exactly their one switch."""
    from semgrad.optim.config import config_from_dict

    runner = _load_runner()
    opts = {
        m: config_from_dict(
            {"name": m, "graph": {"hints": 2}, "data": {"train": "arith:train", "test": "arith:test"},
             "optimizer": spec["optimizer"]}
        ).optimizer
        for m, spec in runner.METHODS.items()
        if spec is not None
    }  # fmt: skip
    default = opts["search"].model_dump()
    assert {k for k, v in opts["search-independent"].model_dump().items() if default[k] != v} == {
        "backward"
    }
    assert {k for k, v in opts["search-nograd"].model_dump().items() if default[k] != v} == {
        "use_gradients"
    }
    assert {k for k, v in opts["search-nogate"].model_dump().items() if default[k] != v} == {
        "gate"
    }
    assert {k for k, v in opts["search-pareto"].model_dump().items() if default[k] != v} == {
        "parents"
    }
    assert {k for k, v in opts["search-fallback"].model_dump().items() if default[k] != v} == {
        "node_fallback"
    }
    # Demonstrations only, with the teacher the demos method leaves off by default.
    demos = opts["demos-teacher"]
    assert (demos.method, demos.teacher, demos.demos) == ("demos", default["teacher"], default["demos"])


def test_gsm8k_splits_are_cut_to_50_50_200(monkeypatch: pytest.MonkeyPatch) -> None:
    from semgrad.data.example import Example, Task

    runner = _load_runner()

    def fake_load(spec: str, data_dir: Any = None, seed: int = 0) -> Task:
        which = spec.rsplit(":", 1)[1]
        examples = tuple(Example(id=f"{which}{i}", inputs={"question": f"{which} {i}"}, target="1")
                         for i in range(1000))  # fmt: skip
        return Task(name=spec, examples=examples, metric_name="number", description="")

    monkeypatch.setattr(runner, "load_task", fake_load)
    sizes = {w: len(runner.load_part("gsm8k", w, None).examples) for w in ("train", "val", "test")}
    assert sizes == {"train": 50, "val": 50, "test": 200}
    # Other tasks keep the splits their loader carved.
    assert len(runner.load_part("bbh:toy", "test", None).examples) == 1000


def test_counted_requests_survive_a_resume_and_repeats_are_free(tmp_path: Path) -> None:
    runner = _load_runner()
    seen = runner.SeenRequests(tmp_path / "counted_requests.txt")
    seen.add("forward", "a" * 64)
    seen.add("strong", "b" * 64)
    with (tmp_path / "counted_requests.txt").open("a") as f:
        f.write("forward cc")  # a torn last line (killed mid-write) is ignored
    again = runner.SeenRequests(tmp_path / "counted_requests.txt")
    assert again.counts == {"forward": 1, "strong": 1} and "a" * 64 in again
    again.add("forward", "d" * 64)
    assert runner.SeenRequests(tmp_path / "counted_requests.txt").counts["forward"] == 2


class Killed(BaseException):
    """A kill in the middle of a cell."""


def test_a_cell_resumed_after_a_kill_logs_every_request_and_replays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The log of a cell finished by a resumed process holds the earlier processes'
    requests too (kept in the run directory at each checkpoint), so it replays; `--relog`
    writes a whole log again for a cell whose log lacks them."""
    runner = _load_runner()
    calls = {"optimizer": 0}

    def killing(request: Request) -> str:
        if request.phase == "optimizer":
            calls["optimizer"] += 1
            if calls["optimizer"] == 4:  # in the second step
                raise Killed
        return _reply(request)

    replies = {"now": killing}
    monkeypatch.setattr(runner, "HERE", tmp_path)
    monkeypatch.setattr(
        runner,
        "serving_models",
        lambda cache: runner.Models.scripted(cache, lambda model: lambda r: replies["now"](r)),
    )
    args = runner.parse_args(
        [
            "--task", "arith", "--methods", "paper", "--seeds", "0",
            "--forward-budget", "3000", "--strong-budget", "12",
            "--cache", str(tmp_path / "cache.sqlite"), "--runs", str(tmp_path / "runs"),
            "--data-dir", str(tmp_path),  # a data directory: the replay runs the cell again
        ]
    )  # fmt: skip
    with pytest.raises(Killed):
        asyncio.run(runner.main_async(args))
    assert (tmp_path / "runs" / "arith" / "paper__seed0" / runner.OPT_LOG).exists()
    replies["now"] = _reply
    assert asyncio.run(runner.main_async(args)) == 0
    out = tmp_path / "results" / "arith"
    cell = json.loads((out / "paper__seed0.json").read_text())
    assert len(cell["steps"]) >= 2
    args.replay = True
    assert asyncio.run(runner.main_async(args)) == 0

    from semgrad.llm.record import RequestLog

    # A log that lacks the optimization's first requests (an older runner's resumed cell)
    # does not replay; --relog writes a whole one (and the usage read from it, the same).
    path = out / "paper__seed0.requests.jsonl.gz"
    whole = RequestLog.read(path)
    RequestLog(whole.entries[len(whole) // 3 :]).write(path)
    assert asyncio.run(runner.main_async(args)) == 1
    args.replay, args.relog = False, True
    before = json.loads((out / "paper__seed0.json").read_text())
    assert asyncio.run(runner.main_async(args)) == 0
    after = json.loads((out / "paper__seed0.json").read_text())
    assert after.pop("relogged")
    for key in ("requests", "test_requests"):
        for usage in before[key].values():
            del usage["cache_hits"]
    assert after == before
    args.replay, args.relog = True, False
    assert asyncio.run(runner.main_async(args)) == 0


def test_warm_cache_fills_the_response_cache_from_every_committed_log(tmp_path: Path) -> None:
    from semgrad.llm.record import LogEntry, RequestLog

    runner = _load_runner()

    def entry(key: str, text: str) -> LogEntry:
        return LogEntry(key, {"model": "m", "messages": [key]}, text, 3, 1, "stop", False)

    root = tmp_path / "results"
    for task, entries in {
        "bbh-a": [entry("k1", "one"), entry("k2", "two")],
        "bbh-b": [entry("k2", "two"), entry("k3", "three")],  # k2 again: one entry
    }.items():
        (root / task).mkdir(parents=True)
        RequestLog(entries).write(root / task / "search__seed0.requests.jsonl.gz")
    cache = Cache(tmp_path / "cache.sqlite")
    assert runner.warm_cache(cache, root) == 3
    assert runner.warm_cache(cache, root) == 0  # nothing new the second time
    hit = cache.get("k3")
    assert hit is not None and hit.text == "three"
