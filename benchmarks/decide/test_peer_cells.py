"""Peer methods as decide cells, offline: the proxy in upstream mode answers a stand-in
adapter (a standard-library script, no peer library) through the same `Models` path as
semgrad's cells, with scripted models: budgets by role with cache hits counted, the
refusal reaching the adapter, the cell's fields, one reply per request whichever path sent
it, and the replay from the log alone."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from test_decide import _load_runner, _reply

from semgrad.llm.cache import Cache
from semgrad.llm.record import RequestLog

HERE = Path(__file__).resolve().parent
# What report.py and the plot read of a cell, and what the replay check reads.
REPORT_FIELDS = (
    "task", "method", "seed", "status", "sizes", "budget", "used", "requests",
    "test_requests", "metric", "test_ids", "test_targets", "test_scores", "test_replies",
    "test_accuracy", "wall_s", "models", "date", "commit",
)  # fmt: skip


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    runner = _load_runner()

    def scripted_models(cache: Cache) -> Any:
        # Named like the embedded models, whose names the replay's cache keys use.
        return runner.Models.scripted(cache, lambda model: _reply)

    monkeypatch.setattr(runner, "HERE", tmp_path)
    monkeypatch.setattr(runner, "serving_models", scripted_models)
    peers = runner._peers()
    fake = peers.Method("fake", None, str(HERE / "fake_peer_adapter.py"))
    monkeypatch.setitem(peers.METHODS, "fake", fake)
    monkeypatch.setattr(runner, "PEER_METHODS", (*runner.PEER_METHODS, "fake"))
    return runner


def _args(runner: Any, tmp_path: Path, methods: str, forward: int, strong: int) -> Any:
    return runner.parse_args(
        [
            "--task", "arith", "--methods", methods, "--seeds", "0",
            "--forward-budget", str(forward), "--strong-budget", str(strong),
            "--cache", str(tmp_path / "cache.sqlite"), "--runs", str(tmp_path / "runs"),
        ]
    )  # fmt: skip


def test_a_peer_cell_is_budgeted_by_role_refused_scored_and_replayed(
    runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = _args(runner, tmp_path, "fake", forward=10, strong=3)
    assert asyncio.run(runner.main_async(args)) == 0
    out = tmp_path / "results" / "arith"
    cell = json.loads((out / "fake__seed0.json").read_text())
    assert all(name in cell for name in REPORT_FIELDS)
    # 4 prompts, 2 of them again (cache hits of the cell's own requests: sent, logged, not
    # counted again), 3 strong requests, then refused.
    assert cell["used"] == {"forward": 4, "strong": 3} and cell["counting"] == "distinct"
    assert cell["requests"]["forward"]["requests"] == 6
    assert cell["requests"]["forward"]["cache_hits"] == 2
    assert cell["requests"]["strong"]["requests"] == 3
    assert cell["status"] == "budget" and cell["refused"] == 2
    notes = cell["peer"]["notes"]
    assert notes[0] == "remaining before: 3"  # the smaller of the two budgets left
    assert any("strong refused after 3" in n and "budget exhausted" in n for n in notes)
    assert any(n.startswith("forward refused after the refusal") for n in notes)
    assert notes[-1] == "remaining after: 0"
    assert cell["peer"]["proxy"]["optimize"]["ignored_fields"] == {"response_format": 4}
    # The test set is still predicted (outside the budget) and scored by semgrad's metric:
    # the instruction the strong model proposed makes the scripted model answer numbers.
    assert len(cell["test_scores"]) == 200 and cell["test_requests"]["forward"]["requests"] == 200
    assert cell["final_program"] == {"final": "Answer with the final number only."}
    assert 0 < cell["test_accuracy"] < 1 and cell["test_errors"] == 0
    # Replay: from the log alone, never running the adapter.
    log = RequestLog.read(out / "fake__seed0.requests.jsonl.gz")
    assert len(log) == 6 + 3 + 200
    assert runner.check_peer_from_log(cell, log) == []
    peers = runner._peers()

    def no_adapter(*_: Any) -> None:
        raise AssertionError("a replay must not run the adapter")

    monkeypatch.setattr(peers, "run_adapter", no_adapter)
    args.replay = True
    assert asyncio.run(runner.main_async(args)) == 0
    forged = {**cell, "test_scores": [1.0 - cell["test_scores"][0], *cell["test_scores"][1:]]}
    assert runner.check_peer_from_log(forged, log)
    fewer = {**cell, "requests": {**cell["requests"], "strong": {**cell["requests"]["strong"]}}}
    fewer["requests"]["strong"]["requests"] = 2
    assert runner.check_peer_from_log(fewer, log)
    # The report reads the cell beside the others.
    sys.path.insert(0, str(HERE))
    import report

    cells = report.load_cells(out)
    assert "fake" in cells


def test_the_identity_check_gets_the_initial_cells_replies_from_the_shared_cache(
    runner: Any, tmp_path: Path
) -> None:
    args = _args(runner, tmp_path, "initial,identity", forward=600, strong=60)
    assert asyncio.run(runner.main_async(args)) == 0
    out = tmp_path / "results" / "arith"
    initial = json.loads((out / "initial__seed0.json").read_text())
    identity = json.loads((out / "identity__seed0.json").read_text())
    assert all(name in identity for name in REPORT_FIELDS)
    assert runner.compare_with_initial(identity, initial) == []
    # Identical requests: every one of the identity cell's 600 is a hit of the initial's.
    assert identity["test_requests"]["forward"]["requests"] == 3 * 200
    assert identity["test_requests"]["forward"]["cache_hits"] == 3 * 200
    assert identity["status"] == "initial" and identity["used"] == {"forward": 0, "strong": 0}
    a = {e.key for e in RequestLog.read(out / "initial__seed0.requests.jsonl.gz")}
    b = {e.key for e in RequestLog.read(out / "identity__seed0.requests.jsonl.gz")}
    assert a == b
    changed = {
        **identity,
        "test_scores": [1.0 - identity["test_scores"][0], *identity["test_scores"][1:]],
    }
    assert len(runner.compare_with_initial(changed, initial)) == 1


def test_a_peer_without_its_venv_names_the_setup_command(
    runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_PEERS_DIR", str(tmp_path / "no-peers"))
    with pytest.raises(SystemExit, match=r"benchmarks/peers/setup_peers\.py dspy"):
        runner.check_peer_venvs(["initial", "miprov2"])


def test_a_peer_that_never_predicts_leaves_no_cell_and_fails_the_run(
    runner: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    peers = runner._peers()
    monkeypatch.setitem(peers.METHODS, "fake", peers.Method("fake", None, str(tmp_path / "no.py")))
    args = _args(runner, tmp_path, "fake", forward=10, strong=3)
    assert asyncio.run(runner.main_async(args)) == 1
    assert not (tmp_path / "results" / "arith" / "fake__seed0.json").exists()
