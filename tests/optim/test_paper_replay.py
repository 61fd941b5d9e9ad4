"""The paper protocol is unchanged: a real run recorded before the core was reshaped
(tests/fixtures/paper_replay, made by tests/fixtures/make_paper_replay.py at commit
c00584e with the embedded 0.5B/1.5B models) replays from its cached calls alone, in
replay-only mode (a request the recording did not make is an error), to the same history.

So a change to the paper protocol's prompts, the order or content of its model calls, or
its decisions fails here.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from semgrad.llm.cache import Cache, CachedLLM
from semgrad.llm.types import Request, Response, Usage, canonical_json
from semgrad.optim.config import config_from_dict
from semgrad.optim.trainer import optimize

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "paper_replay"


class NoModel:
    """Named like the embedded model whose replies the cache holds; never answers."""

    def __init__(self, model: str) -> None:
        self.model = model

    async def complete(self, request: Request) -> Response:
        raise AssertionError("the replay asked for a call the recording did not make")


def _load_cache(path: Path) -> Cache:
    cache = Cache(path)
    with gzip.open(FIXTURE / "cache.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            response = Response(
                text=row["text"],
                usage=Usage(row["prompt_tokens"], row["completion_tokens"]),
                model=row["model"],
                finish_reason=row["finish_reason"],
            )
            cache.put(row["key"], canonical_json(row["request"]), response)
    cache.close()
    return Cache(path, mode="replay-only")


# What a step decided and learned; spend, wall time and cache flags may differ in a replay.
DECISION_FIELDS = (
    "step",
    "changed",
    "accepted",
    "candidate_score",
    "incumbent_score",
    "state",
    "best_gate",
    "gradients",
)


def _decisions(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in DECISION_FIELDS}
    out["batch"] = [(b["id"], b["output"], b["score"]) for b in row["batch"]]
    out["proposals"] = [(p["parameter"], p["new"], p["error"]) for p in row["proposals"]]
    out["prompts"] = [p["prompt"] for p in row["proposals"]]
    return out


@pytest.mark.skipif(
    not (FIXTURE / "cache.jsonl.gz").exists(), reason="the replay fixture is not recorded"
)
def test_the_paper_protocol_replays_a_recorded_run(tmp_path: Path) -> None:
    recorded_config = json.loads((FIXTURE / "config.json").read_text())
    recorded = [json.loads(line) for line in (FIXTURE / "history.jsonl").read_text().splitlines()]
    summary = json.loads((FIXTURE / "summary.json").read_text())
    cfg_dict = {k: v for k, v in recorded_config.items() if k != "base_dir"}
    cfg_dict["models"] = {**cfg_dict["models"], "cache_mode": "off"}
    cfg_dict["models"].pop("cache", None)
    # Recorded before methods existed: the paper protocol was the only one.
    cfg_dict["optimizer"] = {"method": "paper", **cfg_dict.get("optimizer", {})}
    cfg = config_from_dict(cfg_dict)
    cache = _load_cache(tmp_path / "replay.sqlite")
    try:
        forward = CachedLLM(NoModel("qwen2.5-coder-0.5b"), cache)
        strong = CachedLLM(NoModel("qwen2.5-coder-1.5b"), cache)
        result = optimize(
            cfg,
            tmp_path / "run",
            llms={"forward": forward, "backward": strong, "optimizer": strong},
        )
    finally:
        cache.close()
    assert result.status == "finished"
    replayed = [
        json.loads(line) for line in (tmp_path / "run" / "history.jsonl").read_text().splitlines()
    ]
    assert len(replayed) == len(recorded) == cfg.steps
    for old, new in zip(recorded, replayed, strict=True):
        assert _decisions(new) == _decisions(old)
    assert result.initial_test == summary["initial_test"]
    assert result.final_test == summary["final_test"]
    assert result.best_gate == summary["best_gate"]
