"""R6: a budget holds across stops, resumes, kills and retries. The fault injector counts
every request it receives; that count never exceeds the budget's `calls`."""

from __future__ import annotations

import functools
import json
import random
import signal
import time
from pathlib import Path

import pytest
from faultkit import FaultyServer, outcome, semgrad, write_config

from semgrad.llm.budget import Budget
from semgrad.llm.retry import RetryPolicy
from semgrad.optim.config import load_config
from semgrad.optim.trainer import RunResult, load_run_config, optimize


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # Retries without waiting: the tests count requests, not seconds.
    fast = functools.partial(RetryPolicy, base_delay=0.0, jitter=0.0)
    monkeypatch.setattr("semgrad.llm.stack.RetryPolicy", fast)


def run(cfg: Path, run_dir: Path, calls: int | None = None, *, resume: bool = False) -> RunResult:
    config = load_run_config(run_dir) if resume else load_config(cfg)
    budget = {"calls": calls} if calls is not None else None
    return optimize(config, run_dir, resume=resume, budget_overrides=budget)


def reference(tmp_path: Path) -> tuple[int, tuple[object, ...]]:
    """Requests an uninterrupted run sends, and its outcome."""
    with FaultyServer(latency=0.005) as server:
        cfg = write_config(tmp_path, server.base_url, "ref", concurrency=4)
        result = run(cfg, tmp_path / "ref")
        sent = server.request_count
    assert result.status == "finished"
    summary = json.loads((tmp_path / "ref" / "summary.json").read_text())
    assert summary["requests_sent"] == sent  # summary.json counts every real call
    return sent, outcome(tmp_path / "ref")


def test_stop_then_resume_three_times_never_exceeds_the_budget(tmp_path: Path) -> None:
    total, expected = reference(tmp_path)
    with FaultyServer(latency=0.005) as server:
        cfg = write_config(tmp_path, server.base_url, "stopped", concurrency=4)
        run_dir = tmp_path / "stopped"
        budget = total // 3
        assert run(cfg, run_dir, budget).status == "budget"
        assert server.request_count <= budget
        for _ in range(3):  # the same budget again: nothing more may be sent
            assert run(cfg, run_dir, budget, resume=True).status == "budget"
            assert server.request_count <= budget
        for more in (total // 3, total // 3):  # raised budgets: each one holds
            budget += more
            run(cfg, run_dir, budget, resume=True)
            assert server.request_count <= budget
        assert run(cfg, run_dir, resume=True).status == "finished"
        ledger = Budget.read_ledger(run_dir / "budget.json")
        assert ledger["calls"] >= server.request_count
    # Stopping mid-step recorded the last completed step, never a half-done one.
    assert outcome(run_dir) == expected


@pytest.mark.parametrize("seed", [0, 1])
def test_retries_are_charged_at_fifty_percent_faults(tmp_path: Path, seed: int) -> None:
    with FaultyServer(rate=0.5, seed=seed) as server:
        cfg = write_config(tmp_path, server.base_url, "faulty", max_attempts=6, concurrency=4)
        run_dir = tmp_path / "faulty"
        budget = 40
        run(cfg, run_dir, budget)
        for _ in range(3):
            run(cfg, run_dir, budget, resume=True)
        assert server.faults > 0
        assert server.request_count <= budget


def test_kill_then_resume_never_exceeds_the_budget(tmp_path: Path) -> None:
    rng = random.Random(13)
    with FaultyServer(latency=0.02) as server:
        budget = 60
        cfg = write_config(
            tmp_path, server.base_url, "killed", concurrency=4, budget={"calls": budget}
        )
        run_dir = tmp_path / "killed"
        kills = 0
        proc = semgrad("optimize", str(cfg), "--out", str(run_dir))
        while kills < 3:
            deadline = time.monotonic() + 30
            while not (run_dir / "budget.json").exists() and time.monotonic() < deadline:
                time.sleep(0.005)  # kill once requests are being sent
            time.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=60)
            assert server.request_count <= budget
            if proc.returncode == 0:
                break
            proc = semgrad("resume", str(run_dir))
        else:
            proc.wait(timeout=60)
        assert server.request_count <= budget
        ledger = Budget.read_ledger(run_dir / "budget.json")
        assert server.request_count <= ledger["calls"] <= budget


def test_a_request_is_charged_in_the_ledger_before_it_is_sent(tmp_path: Path) -> None:
    import asyncio

    from semgrad.llm.budget import BudgetedLLM
    from semgrad.llm.fakes import ScriptedLLM
    from semgrad.llm.types import Request

    ledger = tmp_path / "budget.json"
    seen: list[int] = []

    def inner(request: Request) -> str:
        seen.append(Budget.read_ledger(ledger)["calls"])  # what a kill now would leave
        return "ok"

    llm = BudgetedLLM(ScriptedLLM(inner), Budget({"calls": 3}, ledger=ledger))
    for _ in range(3):
        asyncio.run(llm.complete(Request.chat("hi")))
    assert seen == [1, 2, 3]
    assert Budget.read_ledger(ledger)["calls"] == 3
