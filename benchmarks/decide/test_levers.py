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


def _scripted_levers(monkeypatch: pytest.MonkeyPatch, reply: Any) -> Any:
    """levers.py with both roles answered by `reply(model)`, live and in replays."""
    levers = load_module("decide_levers", HERE / "levers.py")
    run = levers.run

    def scripted(cache: Cache) -> Any:
        return run.Models.scripted(cache, reply)

    monkeypatch.setattr(run, "serving_models", scripted)
    monkeypatch.setattr(run, "replay_models", scripted)
    return levers


def test_variants_are_paired_with_base_and_replay_from_their_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    levers = _scripted_levers(monkeypatch, lambda model: _reply)
    run = levers.run
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


def test_the_strong_role_can_answer_every_node_and_its_replay_reads_the_role(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only the strong model follows instructions: a result shows which one answered. (The
    # lambda runs when the models are made, after `levers` is bound.)
    levers = _scripted_levers(
        monkeypatch, lambda model: _reply if model == levers.run.STRONG_MODEL else lambda r: "?"
    )
    run = levers.run
    path = tmp_path / "arith.variants.json"
    path.write_text(
        json.dumps({"number-only": {"final.instruction": "Answer with the final number only."}})
    )
    argv = ["--task", "arith", "--variants", str(path), "--cache", str(tmp_path / "c.sqlite")]

    assert (
        asyncio.run(levers.main_async(levers.parse_args([*argv, "--forward-role", "strong"]))) == 0
    )
    record = json.loads((tmp_path / "arith.json").read_text())
    assert record["forward_role"] == "strong"
    assert record["models"]["nodes"] == run.STRONG_MODEL
    assert record["summary"]["number-only"]["wins"] > 0
    log = levers.RequestLog.read(tmp_path / "arith.requests.jsonl.gz")
    models = {e.fields["model"] for e in log}
    assert models == {run.STRONG_MODEL}
    # The replay takes the role from the results file, not from its own arguments.
    assert asyncio.run(levers.main_async(levers.parse_args([*argv, "--replay"]))) == 0


def test_an_output_function_answers_from_the_output_nodes_reply() -> None:
    levers = load_module("decide_levers", HERE / "levers.py")
    graph = levers.variant_graph({"graph.output_fn": "calculate"})
    assert graph.output == "answer"
    assert graph.nodes["answer"].inputs == ("final",)
    assert graph.nodes["answer"].fn == "calculate"
