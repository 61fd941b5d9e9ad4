"""The run records: one schema for history.jsonl, old (version-less) files included."""

from __future__ import annotations

import json
from pathlib import Path

from semgrad.optim.records import (
    HISTORY_VERSION,
    BatchItem,
    GateResult,
    RunSummary,
    StepRecord,
    append_history,
    read_history,
)

# A line as semgrad wrote it before records were versioned: an early-stopped gate whose
# mean over 2 scored items was written as the candidate's score.
LEGACY = {
    "step": 1,
    "batch": [
        {
            "id": "w/1",
            "inputs": {"question": "word: river"},
            "target": "RIVER",
            "output": "river",
            "score": 0.0,
            "feedback": "no",
            "node_outputs": {"final": "river"},
            "node_gradients": {"final": ["louder"]},
        }
    ],
    "backward": [],
    "gradients": {"final.instruction": ["louder"]},
    "proposals": [],
    "changed": ["final.instruction"],
    "candidate_score": 0.5,
    "incumbent_score": 1.0,
    "accepted": False,
    "gate": {
        "score": 0.5,
        "evaluated": 2,
        "of": 20,
        "early_stopped": True,
        "tokens_saved_estimate": 90,
    },
    "state": {"final.instruction": "x"},
    "best_gate": 1.0,
    "spend": {"forward": {"calls": 3}},
    "wall_s": 0.1,
}


def test_a_partial_gate_has_no_score() -> None:
    gate = GateResult.from_scores({"a": 1.0, "b": 0.0}, of=10, early_stopped=True)
    assert gate.partial and gate.score is None and gate.partial_mean == 0.5
    full = GateResult.from_scores({"a": 1.0, "b": 0.0}, of=2)
    assert not full.partial and full.score == 0.5 and full.partial_mean is None
    assert GateResult.from_dict(gate.to_dict()) == gate
    assert gate.to_dict()["score"] is None and gate.to_dict()["partial_score"] == 0.5


def test_a_legacy_line_is_read_and_its_partial_gate_is_not_a_candidate_score() -> None:
    record = StepRecord.from_dict(LEGACY)
    assert record.version == 0 and record.kind is None
    assert record.gate is not None and record.gate.partial and record.gate.score is None
    assert record.gate.partial_mean == 0.5 and record.gate.tokens_saved_estimate == 90
    assert record.candidate_score is None  # it was the early-stop prefix mean
    assert record.batch[0] == BatchItem.from_dict(LEGACY["batch"][0])  # type: ignore[arg-type]
    assert record.gradients == {"final.instruction": ["louder"]}
    # A legacy full-gate line keeps its candidate score.
    full = {**LEGACY, "gate": {"score": 0.5, "evaluated": 20, "of": 20, "early_stopped": False}}
    assert StepRecord.from_dict(full).candidate_score == 0.5


def test_round_trip_through_the_file(tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    record = StepRecord.from_dict({**LEGACY, "version": HISTORY_VERSION, "candidate_score": None})
    append_history(path, record)
    with path.open("a") as f:
        f.write('{"step": 2, "cut by a cra')  # a crash mid-line
    [back] = read_history(path)
    assert back == record
    line = json.loads(path.read_text().splitlines()[0])
    assert line["version"] == HISTORY_VERSION and "kind" not in line


def test_summary_round_trip() -> None:
    s = RunSummary("finished", 2, 0.0, 1.0, 0.0, 1.0, {"forward": {"calls": 1}}, 6, 6, 8)
    assert RunSummary.from_dict(s.to_dict()) == s
    assert "edges" not in s.to_dict()


def test_the_cli_says_a_partial_gate_stopped_early() -> None:
    from semgrad.cli.commands import _step_lines

    [line] = _step_lines(StepRecord.from_dict(LEGACY))
    assert "stopped early (2/20 scored" in line and "50.0%" not in line
