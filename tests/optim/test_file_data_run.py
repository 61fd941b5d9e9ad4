"""A run config on your own data file: optimize, resume and report on `file:` specs,
against a loopback fake server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from semgrad.cli import main
from semgrad.llm.fakes import FakeOpenAIServer

CAPITALS = {
    "France": "Paris", "Japan": "Tokyo", "Kenya": "Nairobi", "Peru": "Lima",
    "Norway": "Oslo", "Egypt": "Cairo", "Canada": "Ottawa", "Chile": "Santiago",
    "India": "New Delhi", "Italy": "Rome",
}  # fmt: skip
LEARNED = "Reply with the city name only."


def reply(body: dict[str, Any]) -> str:
    text = body["messages"][-1]["content"]
    if "<improved>" in text:  # optimizer
        return f"<improved>{LEARNED}</improved>"
    if "<feedback_1>" in text:  # backward
        return "<feedback_1>Give only the city.</feedback_1>"
    country = next(c for c in CAPITALS if f"Country:\n{c}" in text)
    if LEARNED in text:
        return CAPITALS[country]
    return f"The capital of {country} is {CAPITALS[country]}."


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_optimize_resume_report_on_a_jsonl_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    data = tmp_path / "capitals.jsonl"
    data.write_text(
        "".join(json.dumps({"country": c, "capital": a}) + "\n" for c, a in CAPITALS.items())
    )
    (tmp_path / "capitals.json").write_text(
        json.dumps(
            {
                "semgrad": 1, "name": "capitals", "inputs": ["country"],
                "nodes": [
                    {"type": "llm", "name": "answer", "inputs": ["country"],
                     "instruction": "Name the capital of the country."},
                ],
                "output": "answer",
            }
        )
    )  # fmt: skip
    with FakeOpenAIServer(reply=reply) as server:
        model = f'{{ model = "fake-model", base_url = "{server.base_url}" }}'
        spec = f"file:{data}:{{}}?target=capital"
        (tmp_path / "capitals.toml").write_text(
            f"""
name = "capitals"
steps = 1
[graph]
path = "capitals.json"
[models]
forward = {model}
backward = {model}
optimizer = {model}
cache = "{tmp_path / "cache.sqlite"}"
[data]
train = "{spec.format("train")}"
gate = "{spec.format("val")}"
test = "{spec.format("test")}"
metric = "exact"
[optimizer]
batch_size = 2
"""
        )
        assert cli("optimize", "capitals.toml") == 0, capsys.readouterr().err
        summary = json.loads((tmp_path / "runs/capitals/summary.json").read_text())
        assert cli("resume", "runs/capitals") == 0, capsys.readouterr().err
        assert cli("report", "runs/capitals") == 0
    assert summary["initial_test"] == 0.0
    assert summary["final_test"] == 1.0
    assert (tmp_path / "runs/capitals/report.html").is_file()
    best = json.loads((tmp_path / "runs/capitals/best_graph.json").read_text())
    assert best["nodes"][0]["instruction"] == LEARNED
