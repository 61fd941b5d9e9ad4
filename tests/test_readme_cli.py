"""README and CLI agree: every README command's --help works and has the options the README
uses; the "Your own task" walk-through runs as written against a loopback fake server."""

from __future__ import annotations

import json
import re
import shlex
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import typer

import semgrad as sg
from readme_kit import blocks, commands, readme, section, write_walkthrough
from semgrad.cli import main
from semgrad.cli.commands import app
from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.llm.openai import OpenAICompatible

ROOT = typer.main.get_command(app)


def resolve(line: str) -> tuple[list[str], Any, list[str]]:
    """(subcommand path, the click command, the --options used) of a README command line."""
    tokens = shlex.split(line)
    path: list[str] = []
    command: Any = ROOT
    for token in tokens:
        if token in getattr(command, "commands", {}):
            command = command.commands[token]
            path.append(token)
        else:
            break
    options = [t.split("=", 1)[0] for t in tokens if t.startswith("--")]
    return path, command, options


def option_names(command: Any) -> set[str]:
    return {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}


def test_every_readme_command_exists_with_the_options_it_uses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    lines = commands()
    assert len(lines) >= 15
    for line in lines:
        path, command, options = resolve(line)
        assert path, f"README command {line!r} names no semgrad command"
        unknown = [o for o in options if o not in option_names(command)]
        assert not unknown, f"README: `semgrad {line}` uses {unknown}, not in its --help"
        with pytest.raises(SystemExit) as info:
            main([*path, "--help"])
        assert info.value.code in (0, None), line
        capsys.readouterr()


def test_the_model_options_paragraph_matches_run_and_eval() -> None:
    text = " ".join(readme().split())
    paragraph = text[text.index("Model options shared by") :]
    shared, _, eval_only = paragraph.partition("`eval` also takes")
    eval_only = eval_only.split(".", 1)[0]
    run, eval_ = ROOT.commands["run"], ROOT.commands["eval"]  # type: ignore[attr-defined]
    for option in re.findall(r"`(--[a-z-]+)", shared):
        assert option in option_names(run), f"README says run takes {option}"
        assert option in option_names(eval_), f"README says eval takes {option}"
    for option in re.findall(r"`(--[a-z-]+)", eval_only):
        assert option in option_names(eval_), f"README says eval takes {option}"


CAPITALS = {"France": "Paris", "Canada": "Ottawa"}


def capital_reply(body: Mapping[str, Any]) -> str:
    """Knows every capital in the walk-through but Canada's."""
    prompt = body["messages"][-1]["content"]
    if "city name only" not in prompt:
        return "A country with a government and cities."
    answers = {
        line["country"]: line["capital"]
        for line in map(json.loads, Path("capitals.jsonl").read_text().splitlines())
    }
    country = next(c for c in answers if f"Country:\n{c}" in prompt)
    return "Toronto" if country == "Canada" else f"The capital is {answers[country]}."


@pytest.fixture
def walkthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    write_walkthrough(tmp_path)
    yield tmp_path
    sys.modules.pop("capitals_metric", None)


def test_the_walkthrough_eval_runs_as_written(
    walkthrough: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = section("Your own task")
    line = next(c for c in commands() if c.startswith("eval capitals.json"))
    assert f"semgrad {line}" in own
    assert len(Path("capitals.jsonl").read_text().splitlines()) == 10
    with FakeOpenAIServer(reply=capital_reply) as server:
        with pytest.raises(SystemExit) as info:
            main([*shlex.split(line), "--base-url", server.base_url, "--model", "fake-model"])
        assert info.value.code in (0, None), capsys.readouterr().err
    assert "90.0%" in capsys.readouterr().out
    (results,) = (walkthrough / "semgrad-results").glob("*.jsonl")
    rows = [json.loads(r) for r in results.read_text().splitlines()]
    wrong = [r for r in rows if r["score"] == 0]
    assert [(r["id"], r["inputs"]) for r in wrong] == [("capitals/7", {"country": "Canada"})]


def test_the_walkthrough_python_runs_as_written(walkthrough: Path) -> None:
    own = section("Your own task")
    metric_block, python_block = blocks(own, "python")
    with FakeOpenAIServer(reply=capital_reply) as server:
        ctx = sg.RunContext(llms={"forward": OpenAICompatible(server.base_url, "fake-model")})
        namespace: dict[str, Any] = {"sg": sg, "ctx": ctx}
        exec(compile(metric_block, "README.md", "exec"), namespace)
        exec(compile(python_block, "README.md", "exec"), namespace)
    assert namespace["scored"].score == pytest.approx(0.9)
