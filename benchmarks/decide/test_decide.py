"""The decide runner end to end with scripted models: a paper cell under request budgets,
its request log, and a replay from the log alone that reproduces the per-item scores."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from semgrad.llm.cache import Cache
from semgrad.llm.types import Request

HERE = Path(__file__).resolve().parent


def _load_runner() -> Any:
    spec = importlib.util.spec_from_file_location("decide_run", HERE / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["decide_run"] = module
    spec.loader.exec_module(module)
    return module


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
    assert paper["requests"]["forward"]["requests"] == paper["used"]["forward"]
    assert len(paper["test_scores"]) == len(initial["test_scores"]) == 200
    assert (out / "paper__seed0.requests.jsonl.gz").exists()
    # Replay from the logs alone: no model behind the cache, the same per-item scores.
    args.replay = True
    assert asyncio.run(runner.main_async(args)) == 0
    # Without the task's data the replay checks the committed replies against the log.
    args.data_dir = tmp_path / "no-data-here"
    assert asyncio.run(runner.main_async(args)) == 0
    from semgrad.llm.record import RequestLog

    log = RequestLog.read(out / "paper__seed0.requests.jsonl.gz")
    assert runner.check_from_log(paper, log) == []
    forged = {**paper, "test_scores": [1.0 - paper["test_scores"][0], *paper["test_scores"][1:]]}
    [problem] = runner.check_from_log(forged, log)
    assert "committed" in problem
    unlogged = {**paper, "test_replies": ["not a reply", *paper["test_replies"][1:]]}
    assert any("not in the request log" in p for p in runner.check_from_log(unlogged, log))
