"""R2: kill -9 at random moments (before the first checkpoint, during a step, during a
resume), each followed by `semgrad resume`: the same final graph, history and scores as the
uninterrupted run, no damaged file and no file left over."""

from __future__ import annotations

import json
import random
import signal
import time
from pathlib import Path

from faultkit import FaultyServer, outcome, semgrad, write_config

from semgrad.optim.config import load_config
from semgrad.optim.trainer import load_run_config, optimize

KILLS = 20
RUN_FILES = {
    "config.json",
    "initial_graph.json",
    "checkpoint.json",
    "history.jsonl",
    "best_graph.json",
    "budget.json",
    "summary.json",
    "report.html",
}


def check_files(run_dir: Path) -> None:
    """Whatever a kill left is whole: every JSON file parses, no temporary file is read."""
    for path in run_dir.glob("*.json"):
        json.loads(path.read_text(encoding="utf-8"))


def test_twenty_kills_at_random_moments_then_resume(tmp_path: Path) -> None:
    rng = random.Random(2026)
    with FaultyServer(latency=0.01) as server:
        cfg = write_config(tmp_path, server.base_url, "ref")
        t0 = time.monotonic()
        optimize(load_config(cfg), tmp_path / "ref")
        run_seconds = time.monotonic() - t0
        expected = outcome(tmp_path / "ref")

        kills = chains = 0
        while kills < KILLS:
            # A fresh run directory and cache: the killed runs really call the model.
            name = f"chain{chains}"
            run_dir = tmp_path / name
            cfg = write_config(tmp_path, server.base_url, name)
            chains += 1
            while True:
                started = (run_dir / "config.json").exists()
                proc = semgrad(
                    *(("resume", str(run_dir)) if started else ("optimize", str(cfg))),
                    *(() if started else ("--out", str(run_dir))),
                )
                # From the start of the process (imports take most of a second) to past
                # the end of an uninterrupted run.
                time.sleep(rng.uniform(0.0, 0.8 + 1.2 * run_seconds))
                if proc.poll() is None and kills < KILLS:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                proc.wait(timeout=120)
                check_files(run_dir)
                if proc.returncode == 0:
                    break
                assert proc.returncode == -signal.SIGKILL, proc.stdout.read().decode()  # type: ignore[union-attr]
            assert outcome(run_dir) == expected
            assert {p.name for p in run_dir.iterdir()} == RUN_FILES  # no .tmp left over
        assert kills == KILLS


def test_leftover_temporary_files_are_removed_on_resume(tmp_path: Path) -> None:
    with FaultyServer() as server:
        cfg = write_config(tmp_path, server.base_url, "run", steps=1)
        run_dir = tmp_path / "run"
        optimize(load_config(cfg), run_dir)
        # What a kill between writing a temporary file and renaming it leaves.
        stale = run_dir / ".checkpoint.json.abc123.tmp"
        stale.write_text("{half")
        optimize(load_run_config(run_dir), run_dir, resume=True)
        assert not stale.exists() and not list(run_dir.glob(".*"))


def test_a_budget_stop_during_the_initial_test_scores_it_on_resume(tmp_path: Path) -> None:
    with FaultyServer() as server:
        cfg = write_config(tmp_path, server.base_url, "run", steps=1)
        run_dir = tmp_path / "run"
        # 6 gate examples x 2 nodes, then the budget runs out in the test scoring.
        stopped = optimize(load_config(cfg), run_dir, budget_overrides={"calls": 15})
        assert stopped.status == "budget" and stopped.initial_gate is not None
        assert stopped.initial_test is None
        done = optimize(load_run_config(run_dir), run_dir, resume=True)
        assert done.status == "finished" and done.initial_test is not None
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["initial_test"] == done.initial_test


def test_resume_after_a_kill_before_the_first_checkpoint_starts_again(tmp_path: Path) -> None:
    with FaultyServer() as server:
        cfg = write_config(tmp_path, server.base_url, "run", steps=1)
        ref = optimize(load_config(cfg), tmp_path / "ref")
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        (run_dir / "config.json").write_text(json.dumps(load_config(cfg).model_dump()))
        result = optimize(load_run_config(run_dir), run_dir, resume=True)
        assert result.status == "finished"
        assert (result.initial_test, result.final_test) == (ref.initial_test, ref.final_test)
