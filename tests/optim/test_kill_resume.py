"""kill -9 of a real `semgrad optimize` process at random moments, then `semgrad resume`:
the final graph equals the uninterrupted run's. Models are a loopback fake server whose
replies depend on the prompt, so the run is deterministic and fast."""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from semgrad.llm.fakes import FakeOpenAIServer


def reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "<improved>" in text:  # optimizer
        return "<improved>Answer with only one of: POS, NEG.</improved>"
    if "<feedback_1>" in text:  # backward
        return "<feedback_1>Say whether the reviewer liked it.</feedback_1>"
    if "Answer with only one of: POS, NEG." in text:  # forward, after learning
        positive = any(
            w in text
            for w in (
                "wonderful",
                "excellent",
                "delightful",
                "superb",
                "fantastic",
                "great value",
                "lovely",
            )
        )
        return "POS" if positive else "NEG"
    return "The reviewer seems to have an opinion."


def write_config(tmp: Path, base_url: str, name: str) -> Path:
    model = f'{{ model = "fake-model", base_url = "{base_url}" }}'
    cfg = tmp / f"{name}.toml"
    graph = Path(__file__).resolve().parents[2] / "examples" / "reviews.json"
    cfg.write_text(
        f"""
name = "kill"
steps = 3
[graph]
path = "{graph}"
[models]
forward = {model}
backward = {model}
optimizer = {model}
cache = "{tmp / f"{name}.sqlite"}"
concurrency = 2
[data]
train = "reviews:train"
gate = "reviews:val"
test = "reviews:test"
train_size = 12
gate_size = 12
test_size = 12
"""
    )
    return cfg


def semgrad(*args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "semgrad", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_then_resume_matches_uninterrupted(tmp_path: Path, seed: int) -> None:
    with FakeOpenAIServer(reply=reply, latency=0.04) as server:
        # Separate caches: the killed run must really call the models, not replay the first.
        cfg = write_config(tmp_path, server.base_url, "ref")
        t0 = time.time()
        ref = semgrad("optimize", str(cfg), "--out", str(tmp_path / "ref"))
        assert ref.wait(timeout=120) == 0, ref.stdout.read().decode() if ref.stdout else ""
        ref_seconds = time.time() - t0
        reference = json.loads((tmp_path / "ref" / "best_graph.json").read_text())
        assert "POS, NEG" in json.dumps(reference)

        rng = random.Random(seed)
        fraction = 0.7
        for attempt in range(4):
            run_dir = tmp_path / f"killed{attempt}"
            cfg = write_config(tmp_path, server.base_url, f"killed{attempt}")
            proc = semgrad("optimize", str(cfg), "--out", str(run_dir))
            started = time.time()
            while not (run_dir / "checkpoint.json").exists() and time.time() < started + 60:
                time.sleep(0.01)
            remaining = ref_seconds - (time.time() - started)
            time.sleep(rng.uniform(0.0, fraction * max(remaining, 0.1)))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            if not (run_dir / "summary.json").exists():
                break  # killed mid-run, as intended
            fraction /= 3  # a loaded machine ran it faster than the reference: kill sooner
        else:
            pytest.fail("could not kill the run before it finished")
        resumed = semgrad("resume", str(run_dir))
        output = resumed.stdout.read().decode() if resumed.stdout else ""
        assert resumed.wait(timeout=120) == 0, output
        assert json.loads((run_dir / "best_graph.json").read_text()) == reference
        steps = [
            json.loads(line)["step"]
            for line in (run_dir / "history.jsonl").read_text().splitlines()
        ]
        assert steps == [0, 1, 2]
        assert re.search(r"final test score\s+│\s+100\.0%", output)
