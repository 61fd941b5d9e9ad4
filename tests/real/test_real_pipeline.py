"""The real embedded models end to end (slow tier; `-m "not real"` skips it).

These run the bundled tasks with the installed GGUF models through the whole stack: CLI,
executor, cache, backward and optimizer. They fail, not skip, when a model is missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]


def semgrad(
    *args: str, home: Path | None = None, timeout: float = 2700
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


def own_cache_config(config: Path, tmp_path: Path) -> Path:
    """A copy of `config` whose response cache is a fresh file in `tmp_path`.

    The shared cache ($SEMGRAD_HOME/cache.sqlite) would let a machine that ran the test
    before pass it from stored replies without running the model. The models themselves
    are still found under the models home. Paths in the copy are made absolute.
    """
    cfg = tomllib.loads(config.read_text(encoding="utf-8"))
    assert "cache" not in cfg.get("models", {}), "the test sets its own cache"
    text = config.read_text(encoding="utf-8")
    graph = cfg["graph"]["path"]
    text = text.replace(
        f'path = "{graph}"', f"path = {json.dumps(str((config.parent / graph).resolve()))}", 1
    )
    cache = tmp_path / "cache.sqlite"
    text = text.replace("[models]\n", f"[models]\ncache = {json.dumps(str(cache))}\n", 1)
    copy = tmp_path / config.name
    copy.write_text(text, encoding="utf-8")
    parsed = tomllib.loads(text)
    assert parsed["models"]["cache"] == str(cache), "the cache line was not written"
    assert Path(parsed["graph"]["path"]).is_file()
    return copy


def test_optimize_learns_a_convention_only_feedback_teaches(tmp_path: Path) -> None:
    """Reviews must be labelled POS/NEG, which no instruction says: held-out accuracy must
    rise from at most 20 % by at least 30 points.

    configs/reviews.toml uses the 1.5B model for every role: measured 0 % -> 100 % held out.
    With the 0.5B forward model, runs gave 0 % -> 53-97 % (its own POS/NEG judgement, not
    the format, limits the top); the bar sits below the worst of those.
    """
    run_dir = tmp_path / "run"
    config = own_cache_config(REPO / "configs" / "reviews.toml", tmp_path)
    # One step, to keep the real tier within CI's time: the paper method's first step was
    # the one accepted in every measured run (gate 0 % -> 100 %).
    text = config.read_text(encoding="utf-8")
    assert "\nsteps = 3\n" in text
    config.write_text(text.replace("\nsteps = 3\n", "\nsteps = 1\n", 1), encoding="utf-8")
    result = semgrad("optimize", str(config), "--out", str(run_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["initial_test"] <= 0.2, summary
    assert summary["final_test"] >= summary["initial_test"] + 0.3, summary
    history = [json.loads(x) for x in (run_dir / "history.jsonl").read_text().splitlines()]
    assert any(h["accepted"] for h in history)
    # The model really ran (a fresh cache): not replies served from an earlier run.
    assert (tmp_path / "cache.sqlite").is_file()
    for phase in ("forward", "backward", "optimizer"):
        assert sum(h["spend"][phase]["calls"] for h in history) > 0, phase
    assert summary["spend"]["forward"]["calls"] > 0
    assert (run_dir / "report.html").exists()
