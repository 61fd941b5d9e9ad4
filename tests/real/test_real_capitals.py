"""The README's "Your own task" walk-through on the real embedded model (slow tier).

A user's own JSONL, a 2-node graph and a metric function in a module of their own:
`semgrad eval`, `semgrad optimize`, `resume`, `report` and the Python entry point `sg.fit`
all work on it with the installed 0.5B model, through a fresh response cache (so the model
really runs). Sized to take a few minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from readme_kit import write_walkthrough

pytestmark = pytest.mark.real

CONFIG = """
name = "capitals"
steps = 1

[graph]
path = "capitals.json"

[models]
forward = "qwen2.5-coder-0.5b"
backward = "qwen2.5-coder-0.5b"
optimizer = "qwen2.5-coder-0.5b"
cache = "cache.sqlite"

[data]
train = "file:capitals.jsonl:train?target=capital"
gate = "file:capitals.jsonl:val?target=capital"
test = "file:capitals.jsonl:test?target=capital"
metric = "capitals_metric:capital"

[optimizer]
candidates = 2
screen_size = 2
"""

FIT = """
import json, semgrad as sg
from semgrad.data import load_file_task
from capitals_metric import capital

graph = sg.load_graph("capitals.json")
data = load_file_task("capitals.jsonl", target_col="capital").examples
result = sg.fit(graph, data[:6], capital, gate=data[6:8], test=data[8:], steps=1,
                models={"forward": "qwen2.5-coder-0.5b", "backward": "qwen2.5-coder-0.5b",
                        "optimizer": "qwen2.5-coder-0.5b", "cache": "fit-cache.sqlite"},
                run_dir="runs/fit",
                optimizer={"candidates": 2, "screen_size": 2})
print(json.dumps({"status": result.status, "spend": result.spend}))
"""


def semgrad(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "semgrad", *args],
        capture_output=True, text=True, timeout=1500, cwd=cwd, env=env, check=False,
    )  # fmt: skip


def test_the_capitals_walkthrough_on_the_embedded_model(tmp_path: Path) -> None:
    write_walkthrough(tmp_path)
    (tmp_path / "capitals.toml").write_text(CONFIG)
    evaluated = semgrad(
        tmp_path, "eval", "capitals.json", "--data", "capitals.jsonl", "--target-col",
        "capital", "--metric", "capitals_metric:capital", "--cache", "cache.sqlite",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stdout + evaluated.stderr
    calls = next(line for line in evaluated.stdout.splitlines() if "model calls" in line)
    assert int(calls.split("│")[-2].strip()) > 0  # a fresh cache: the model really ran

    optimized = semgrad(tmp_path, "optimize", "capitals.toml")
    assert optimized.returncode == 0, optimized.stdout + optimized.stderr
    summary = json.loads((tmp_path / "runs" / "capitals" / "summary.json").read_text())
    assert summary["status"] == "finished"
    assert sum(s["calls"] for s in summary["spend"].values()) > 0
    resumed = semgrad(tmp_path, "resume", "runs/capitals")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    reported = semgrad(tmp_path, "report", "runs/capitals")
    assert reported.returncode == 0, reported.stdout + reported.stderr
    assert (tmp_path / "runs" / "capitals" / "report.html").stat().st_size > 1000

    fitted = subprocess.run(
        [sys.executable, "-c", FIT], capture_output=True, text=True, timeout=1500,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert fitted.returncode == 0, fitted.stdout + fitted.stderr
    out = json.loads(fitted.stdout.strip().splitlines()[-1])
    assert out["status"] == "finished"
    assert sum(s["requests"] for s in out["spend"].values()) > 0
