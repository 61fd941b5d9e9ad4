"""The real embedded models end to end (slow tier; `-m "not real"` skips it).

These run the bundled tasks with the installed GGUF models through the whole stack: CLI,
executor, cache, backward and optimizer. They fail, not skip, when a model is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]


def semgrad(
    *args: str, home: Path | None = None, timeout: float = 1500
) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "semgrad", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env=env,
        check=False,
    )


def row(output: str, name: str) -> str:
    line = next(line for line in output.splitlines() if name in line)
    return line.split("│")[-2].strip()


def test_eval_real_model_then_served_from_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache.sqlite"
    args = [
        "eval",
        "examples/hints3.json",
        "--data",
        "arith:test",
        "--limit",
        "3",
        "--cache",
        str(cache),
        "--out",
        str(tmp_path / "r.jsonl"),
    ]
    t0 = time.perf_counter()
    first = semgrad(*args)
    t_first = time.perf_counter() - t0
    assert first.returncode == 0, first.stderr
    assert row(first.stdout, "model calls") == "9"
    assert int(row(first.stdout, "completion tokens")) > 0
    rows = [json.loads(x) for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["error"] is None for r in rows)
    assert all(r["trace"]["nodes"]["final"]["raw"] for r in rows)
    t0 = time.perf_counter()
    second = semgrad(*args)
    t_second = time.perf_counter() - t0
    assert second.returncode == 0, second.stderr
    assert row(second.stdout, "model calls") == "0"
    assert row(second.stdout, "cache hits") == "9"
    assert row(second.stdout, "score (numeric)") == row(first.stdout, "score (numeric)")
    # The timing itself is a benchmark figure (README); here only that no model was loaded.
    assert t_second < t_first


def test_optimize_learns_a_convention_only_feedback_teaches(tmp_path: Path) -> None:
    """Reviews must be labelled POS/NEG, which no instruction says: held-out accuracy must
    rise from at most 20 % by at least 30 points.

    configs/reviews.toml uses the 1.5B model for every role: measured 0 % -> 100 % held out.
    With the 0.5B forward model, runs gave 0 % -> 53-97 % (its own POS/NEG judgement, not
    the format, limits the top); the bar sits below the worst of those.
    """
    run_dir = tmp_path / "run"
    result = semgrad("optimize", "configs/reviews.toml", "--out", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["initial_test"] <= 0.2, summary
    assert summary["final_test"] >= summary["initial_test"] + 0.3, summary
    history = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    assert any(h["accepted"] for h in history)
    assert (
        sum(h["spend"]["backward"]["calls"] + h["spend"]["backward"]["cache_hits"] for h in history)
        > 0
    )
    assert (run_dir / "report.html").exists()
