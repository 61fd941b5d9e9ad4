"""What the reliability tests (README: Reliability, R1-R6) share: a deterministic loopback
model behind a seeded fault injector that counts every request it receives, and a small
optimization run of the reviews task against it."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from semgrad.llm.fakes import DROP, FakeOpenAIServer, ScriptedFailure

GRAPH = Path(__file__).resolve().parents[2] / "examples" / "reviews.json"

# Every fault kind the fake server can serve instead of a completion.
FAULTS: list[ScriptedFailure] = [
    (429, {"Retry-After": "0"}),
    (500, {}),
    (503, {}),
    (200, {}, '{"choices": [{"message": {"content": "Answ'),  # truncated JSON
    (200, {}, "<html><body>502 bad gateway</body></html>"),  # garbage
    (DROP, {}),  # the connection is dropped without a reply
]

POSITIVE = ("wonderful", "excellent", "delightful", "superb", "fantastic", "great value", "lovely")


def reply(body: Mapping[str, Any]) -> str:
    """A deterministic model: right labels only once the instruction has been learned."""
    text = str(body["messages"][-1]["content"])
    if "<improved>" in text:  # optimizer
        return "<improved>Answer with only one of: POS, NEG.</improved>"
    if "<feedback_1>" in text:  # backward
        return "<feedback_1>Say whether the reviewer liked it.</feedback_1>"
    if "Answer with only one of: POS, NEG." in text:  # forward, after learning
        return "POS" if any(w in text for w in POSITIVE) else "NEG"
    return "The reviewer seems to have an opinion."


class FaultyServer(FakeOpenAIServer):
    """The loopback model; each request that arrives gets one of `FAULTS` with probability
    `rate` (seeded), instead of its completion. `request_count` counts every request."""

    def __init__(
        self,
        *,
        rate: float = 0.0,
        seed: int = 0,
        latency: float = 0.0,
        kinds: Sequence[ScriptedFailure] = tuple(FAULTS),
    ) -> None:
        super().__init__(reply=reply, latency=latency)
        self.rate = rate
        self.kinds = list(kinds)
        self.faults = 0
        self._rng = random.Random(seed)

    def _arrived(self, headers: dict[str, str], body: dict[str, Any]) -> ScriptedFailure | None:
        failure = super()._arrived(headers, body)
        with self._lock:
            if failure is None and self.rate and self._rng.random() < self.rate:
                self.faults += 1
                return self._rng.choice(self.kinds)
        return failure


def write_config(
    directory: Path,
    base_url: str,
    name: str,
    *,
    steps: int = 2,
    size: int = 6,
    concurrency: int = 2,
    max_attempts: int = 5,
    budget: Mapping[str, int] | None = None,
) -> Path:
    """A run config of the reviews task on `base_url`, with its own cache file."""
    model = f'{{ model = "fake-model", base_url = "{base_url}" }}'
    budget_lines = "".join(f'"{k}" = {v}\n' for k, v in (budget or {}).items())
    cfg = directory / f"{name}.toml"
    cfg.write_text(
        f"""name = "{name}"
steps = {steps}
[graph]
path = "{GRAPH}"
[models]
forward = {model}
backward = {model}
optimizer = {model}
cache = "{directory / f"{name}.sqlite"}"
concurrency = {concurrency}
max_attempts = {max_attempts}
[data]
train = "reviews:train"
gate = "reviews:val"
test = "reviews:test"
train_size = {size}
gate_size = {size}
test_size = {size}
[budget]
{budget_lines}"""
    )
    return cfg


def semgrad(*args: str) -> subprocess.Popen[bytes]:
    """`semgrad ARGS` in a new process (for kill -9), output collected."""
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.Popen(
        [sys.executable, "-m", "semgrad", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )


VOLATILE = frozenset({"wall_s", "spend", "cached", "latency_s", "duration_s"})


def stable(value: Any) -> Any:
    """`value` without what may differ between equal runs (times, costs, cache flags)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def history(run_dir: Path) -> list[Any]:
    lines = (run_dir / "history.jsonl").read_text(encoding="utf-8").splitlines()
    return [stable(json.loads(line)) for line in lines]


def outcome(run_dir: Path) -> tuple[Any, list[Any], Any]:
    """What two equal runs must share: the best graph, the history, the scores."""
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    scores = {k: summary[k] for k in ("initial_test", "final_test", "initial_gate", "best_gate")}
    best = json.loads((run_dir / "best_graph.json").read_text(encoding="utf-8"))
    return best, history(run_dir), scores
