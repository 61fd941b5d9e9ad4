"""The lever probe (levers.py) with scripted models: variants paired with the unchanged
graph on the training split, the items a variant's demonstrations show left out of its
comparison, and a replay from the request log alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from modload import load_module
from test_decide import _reply

from semgrad.llm.cache import Cache

HERE = Path(__file__).resolve().parent


def test_variants_are_paired_with_base_and_replay_from_their_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    levers = load_module("decide_levers", HERE / "levers.py")
    run = levers.run

    def scripted(cache: Cache) -> Any:
        return run.Models.scripted(cache, lambda model: _reply)

    monkeypatch.setattr(run, "serving_models", scripted)
    monkeypatch.setattr(run, "replay_models", scripted)
    splits, _ = run.load_splits("arith", None)
    first = splits.train[0]
    demo = {"inputs": {**first.inputs, "hint_1": "-", "hint_2": "-"}, "output": "Answer: 1"}
    variants = {
        # The scripted forward model answers a number only when told to.
        "number-only": {"final.instruction": "Answer with the final number only."},
        "one-demo": {"final.demos": [demo]},
    }
    path = tmp_path / "arith.variants.json"
    path.write_text(json.dumps(variants))
    argv = ["--task", "arith", "--variants", str(path), "--cache", str(tmp_path / "c.sqlite")]

    assert asyncio.run(levers.main_async(levers.parse_args(argv))) == 0
    record = json.loads((tmp_path / "arith.json").read_text())
    summary = record["summary"]
    n = len(splits.train)
    assert summary["base"] == {"correct": 0, "items": n, "compared": n, "wins": 0, "losses": 0}
    number_only = summary["number-only"]
    assert number_only["compared"] == n and number_only["losses"] == 0
    assert number_only["wins"] == number_only["correct"]  # every item it got right, base missed
    assert summary["one-demo"]["compared"] == n - 1  # the item its demonstration shows
    assert (tmp_path / "arith.requests.jsonl.gz").exists()

    assert asyncio.run(levers.main_async(levers.parse_args([*argv, "--replay"]))) == 0
    record["scores"]["number-only"][first.id] = 1 - record["scores"]["number-only"][first.id]
    (tmp_path / "arith.json").write_text(json.dumps(record))
    assert asyncio.run(levers.main_async(levers.parse_args([*argv, "--replay"]))) == 1


def test_a_change_of_an_unknown_node_is_refused_before_any_model_call(tmp_path: Path) -> None:
    levers = load_module("decide_levers", HERE / "levers.py")
    path = tmp_path / "bad.variants.json"
    path.write_text(json.dumps({"x": {"answer.instruction": "Be brief."}}))
    args = levers.parse_args(["--task", "arith", "--variants", str(path)])
    with pytest.raises(SystemExit, match=r"answer\.instruction"):
        asyncio.run(levers.main_async(args))
