"""`semgrad.fit`: a graph, examples and a metric made in Python; the run directory it writes
is one `semgrad resume` and `semgrad report` work on."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import semgrad as sg
from semgrad.cli import main
from semgrad.data.example import Example
from semgrad.errors import ConfigError
from semgrad.evaluation.metrics import LabelMatch, NumericMatch, Score, metric_for
from semgrad.llm.fakes import FakeOpenAIServer, ScriptedLLM
from semgrad.optim.records import read_history
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.splits import metric_ref, resolve_metric

# Sums: the forward model adds only when its instruction says ADD, which the optimizer
# learns from the backward pass's feedback.
EXAMPLES = [
    Example(f"sum/{a}-{b}", {"question": f"add: {a} {b}"}, str(a + b))
    for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4), (6, 1), (8, 3), (9, 9), (5, 2)]
]


def forward_text(text: str) -> str:
    numbers = re.search(r"add: (\d+) (\d+)", text)
    if numbers is None:
        return "no question"
    if "ADD" in text:
        return f"Answer: {int(numbers.group(1)) + int(numbers.group(2))}"
    return "Answer: 0"


def reply_body(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "<improved>" in text:  # optimizer
        return "<improved>ADD the two numbers and end with 'Answer: N'.</improved>"
    if "<feedback_1>" in text:  # backward
        return "<feedback_1>Add them.</feedback_1>"
    return forward_text(text)


def scripted() -> dict[str, ScriptedLLM]:
    def reply(request: Any) -> str:
        return reply_body({"messages": [{"content": request.messages[-1].content}]})

    llm = ScriptedLLM(reply)
    return {"forward": llm, "backward": llm, "optimizer": llm}


def graph() -> sg.Graph:
    return sg.graph_from_dict(
        {
            "name": "adder",
            "inputs": ["question"],
            "nodes": [
                {
                    "type": "llm",
                    "name": "final",
                    "inputs": ["question"],
                    "instruction": "Answer the question.",
                },
            ],
            "output": "final",
        }
    )


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_fit_trains_a_python_graph_on_python_examples(tmp_path: Path) -> None:
    g = graph()
    run_dir = tmp_path / "run"
    result = sg.fit(
        g,
        EXAMPLES[:4],
        NumericMatch(),
        gate=EXAMPLES[4:7],
        test=EXAMPLES[7:],
        llms=scripted(),
        run_dir=run_dir,
        steps=1,
    )
    assert result.status == "finished"
    assert result.initial_test == 0.0 and result.final_test == 1.0
    assert result.graph is g and "ADD" in g.state_dict()["final.instruction"]
    [step] = read_history(run_dir / "history.jsonl")
    assert step.accepted and step.gate is not None and step.candidate_score == 1.0
    assert step.gate.scores == {e.id: 1.0 for e in EXAMPLES[4:7]}
    # The incumbent's per-item gate scores travel in the checkpoint (for paired gates).
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    assert checkpoint["incumbent_gate_scores"] == step.gate.scores
    # The run directory records the data and names the metric.
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["metric"] == "numeric"
    assert config["data"]["train"] == "file:data/train.jsonl"
    ids = [json.loads(x)["id"] for x in (run_dir / "data" / "gate.jsonl").read_text().splitlines()]
    assert ids == [e.id for e in EXAMPLES[4:7]]
    assert sg.RunResult is type(result)


def test_overlapping_splits_and_an_existing_run_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="share 1 examples"):
        sg.fit(
            graph(),
            EXAMPLES[:4],
            NumericMatch(),
            test=EXAMPLES[3:6],
            llms=scripted(),
            run_dir=tmp_path / "a",
        )
    sg.fit(
        graph(),
        EXAMPLES[:4],
        NumericMatch(),
        test=EXAMPLES[6:],
        llms=scripted(),
        run_dir=tmp_path / "b",
        steps=0,
    )
    with pytest.raises(ConfigError, match="resume=True"):
        sg.fit(
            graph(),
            EXAMPLES[:4],
            NumericMatch(),
            test=EXAMPLES[6:],
            llms=scripted(),
            run_dir=tmp_path / "b",
        )


def test_cli_resume_and_report_work_on_a_python_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(reply=reply_body) as server:
        model = {"model": "fake-model", "base_url": server.base_url}
        models = {
            "forward": model,
            "backward": model,
            "optimizer": model,
            "cache": str(tmp_path / "cache.sqlite"),
        }
        # A budget stops the run after the initial scoring; the CLI resumes it.
        stopped = sg.fit(
            graph(),
            EXAMPLES[:4],
            metric_for("numeric"),
            gate=EXAMPLES[4:7],
            test=EXAMPLES[7:],
            models=models,
            run_dir=run_dir,
            steps=2,
            budget={"calls": 8},
        )
        assert stopped.status == "budget"
        assert cli("resume", str(run_dir), "--budget", "calls=1000") == 0
    out = capsys.readouterr().out
    assert re.search(r"final test score\s+│\s+100\.0%", out), out
    assert [s.step for s in read_history(run_dir / "history.jsonl")] == [0, 1]
    assert cli("report", str(run_dir)) == 0
    page = (run_dir / "report.html").read_text()
    assert "ADD the two numbers" in page
    assert cli("export", str(run_dir), "-o", str(tmp_path / "best.json")) == 0
    assert "ADD" in (tmp_path / "best.json").read_text()


def test_a_metric_that_cannot_be_imported_must_be_passed_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def strict(prediction: str, example: Example) -> Score:  # local: not importable
        ok = prediction.strip() == f"Answer: {example.target}"
        return Score(1.0 if ok else 0.0, "ok" if ok else f"Expected 'Answer: {example.target}'.")

    run_dir = tmp_path / "run"
    sg.fit(
        graph(),
        EXAMPLES[:4],
        strict,
        test=EXAMPLES[7:],
        llms=scripted(),
        run_dir=run_dir,
        steps=0,
        budget={"calls": 3},
    )
    config = json.loads((run_dir / "config.json").read_text())
    assert config["data"]["metric"].startswith("<") and "strict" in config["data"]["metric"]
    assert cli("resume", str(run_dir)) == 2
    assert "cannot be imported" in capsys.readouterr().err
    result = sg.fit(
        graph(),
        EXAMPLES[:4],
        strict,
        test=EXAMPLES[7:],
        llms=scripted(),
        run_dir=run_dir,
        resume=True,
        budget={"calls": 100},
    )
    assert result.status == "finished"
    assert RunFiles(run_dir).summary.exists()


def module_metric(prediction: str, example: Example) -> Score:
    return NumericMatch()(prediction, example)


def test_metric_refs_round_trip() -> None:
    assert metric_ref(NumericMatch()) == ("numeric", {"abs_tol": 1e-6, "rel_tol": 1e-9})
    ref, options = metric_ref(LabelMatch(labels=("Yes", "No")))
    assert (ref, options) == ("label", {"labels": ["Yes", "No"]})
    assert resolve_metric(ref, options) == LabelMatch(labels=("Yes", "No"))
    ref, options = metric_ref(module_metric)
    assert ref.endswith(":module_metric") and resolve_metric(ref, options).fn is module_metric  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="cannot import"):
        resolve_metric("no_such_module_xyz:f")


def test_a_config_names_file_splits_and_a_metric(tmp_path: Path) -> None:
    from semgrad.optim.config import config_from_dict
    from semgrad.optim.splits import load_splits, write_examples

    write_examples(tmp_path / "train.jsonl", EXAMPLES[:5])
    write_examples(tmp_path / "test.jsonl", EXAMPLES[5:])
    data = {"train": "file:train.jsonl", "test": "file:test.jsonl"}
    cfg = config_from_dict(
        {"graph": {"hints": 1}, "data": {**data, "metric": "numeric"}}, base_dir=str(tmp_path)
    )
    splits = load_splits(cfg)
    assert [e.id for e in splits.train] == [e.id for e in EXAMPLES[:5]]
    assert splits.gate == splits.train and splits.metric == NumericMatch()
    no_metric = config_from_dict({"graph": {"hints": 1}, "data": data}, base_dir=str(tmp_path))
    with pytest.raises(ConfigError, match=r"set data\.metric"):
        load_splits(no_metric)
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n')
    bad = config_from_dict(
        {"graph": {"hints": 1}, "data": {**data, "train": "file:bad.jsonl", "metric": "exact"}},
        base_dir=str(tmp_path),
    )
    with pytest.raises(sg.SemgradError, match=r"bad.jsonl"):
        load_splits(bad)


def test_fit_and_afit_work_inside_a_running_loop(tmp_path: Path) -> None:
    import asyncio

    async def notebook_cell() -> tuple[sg.RunResult, sg.RunResult]:
        # A notebook cell runs in the kernel's event loop: the sync door must still work.
        synced = sg.fit(
            graph(),
            EXAMPLES[:4],
            NumericMatch(),
            test=EXAMPLES[7:],
            llms=scripted(),
            run_dir=tmp_path / "sync",
            steps=1,
        )
        awaited = await sg.afit(
            graph(),
            EXAMPLES[:4],
            NumericMatch(),
            test=EXAMPLES[7:],
            llms=scripted(),
            run_dir=tmp_path / "async",
            steps=1,
        )
        return synced, awaited

    synced, awaited = asyncio.run(notebook_cell())
    assert synced.final_test == awaited.final_test == 1.0
    assert synced.status == awaited.status == "finished"
