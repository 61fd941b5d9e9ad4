"""`semgrad run` says how many demos each node used."""

from __future__ import annotations

from pathlib import Path

import pytest

from semgrad.cli import main
from semgrad.graph import hint_graph
from semgrad.graph.core import Demo
from semgrad.llm.fakes import FakeOpenAIServer


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")


def test_run_shows_the_demos_a_node_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph = hint_graph(1)
    graph.set_demos(
        "final",
        [
            Demo({"question": "What is 1+1?", "hint_1": "add"}, "Answer: 2"),
            Demo({"question": "What is 2+3?", "hint_1": "add"}, "Answer: 5"),
        ],
    )
    path = tmp_path / "g.json"
    path.write_text(graph.to_json())
    with FakeOpenAIServer() as server, pytest.raises(SystemExit) as info:
        main(
            [
                "run",
                str(path),
                "-i",
                "question=What is 2+2?",
                "--base-url",
                server.base_url,
                "--model",
                "fake",
                "--cache-mode",
                "off",
            ]
        )
    assert info.value.code in (0, None)
    out = capsys.readouterr().out
    assert out.count("demos: 2 used") == 1  # the final node only
    assert "Answer: 5" in out and "· assistant" in out
