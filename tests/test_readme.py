"""The README's Python examples run as written (with a scripted model instead of the
embedded one, so this stays fast; the real models are exercised in tests/real/)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import semgrad
from readme_kit import write_walkthrough
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request

README = Path(__file__).resolve().parents[1] / "README.md"


def scripted(_name: str = "", **_kw: object) -> ScriptedLLM:
    def reply(request: Request) -> str:
        text = request.messages[-1].content
        if "<improved>" in text:
            return "<improved>Solve it carefully and end with 'Answer: N'.</improved>"
        if "<feedback_1>" in text:
            return (
                "<feedback_1>Be precise.</feedback_1> <feedback_2>Check the numbers.</feedback_2>"
            )
        return "Working... Answer: 7"

    return ScriptedLLM(reply)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert len(blocks) >= 2
    monkeypatch.setattr(semgrad, "LocalLLM", scripted)
    monkeypatch.chdir(tmp_path)
    write_walkthrough(tmp_path)  # the files "Your own task" asks the reader to write
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    graph = namespace["graph"]
    assert isinstance(graph, semgrad.Graph)
    assert "Answer: N" in graph.state_dict()["final.instruction"]
    result = namespace["result"]
    assert isinstance(result, semgrad.RunResult) and result.status == "finished"
    assert (tmp_path / "runs" / "sums" / "data" / "train.jsonl").exists()
