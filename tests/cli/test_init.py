"""`semgrad init`: the starter task shipped in the package (data, graph, run config), so the
walk-through works outside a clone; the files are the README's."""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from readme_kit import walkthrough_files
from semgrad.cli import main
from semgrad.cli.commands import STARTER_FILES
from semgrad.llm.fakes import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[2]
PACKAGED = ROOT / "src" / "semgrad" / "examples"


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def capital_reply(body: Mapping[str, Any]) -> str:
    prompt = body["messages"][-1]["content"]
    if "city name only" not in prompt:
        return "A country."
    return "Paris" if "France" in prompt else "Somewhere"


def test_init_writes_the_starter_task_and_eval_runs_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    assert cli("init", "starter") == 0
    for name in STARTER_FILES:
        assert (tmp_path / "starter" / name).read_text() == (PACKAGED / name).read_text()
    assert "semgrad optimize capitals.toml" in capsys.readouterr().out
    assert cli("init", "starter") == 2  # never overwrites without --force
    assert "--force" in capsys.readouterr().err
    assert cli("init", "starter", "--force") == 0

    monkeypatch.chdir(tmp_path / "starter")
    with FakeOpenAIServer(reply=capital_reply) as server:
        code = cli(
            "eval", "capitals.json", "--data", "capitals.jsonl", "--target-col", "capital",
            "--metric", "contains", "--base-url", server.base_url, "--model", "fake-model",
        )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert "10.0%" in capsys.readouterr().out  # France only

    from semgrad.optim.config import load_config
    from semgrad.optim.splits import load_splits

    config = load_config(tmp_path / "starter" / "capitals.toml")
    splits = load_splits(config)
    assert (len(splits.train), len(splits.test)) == (6, 2)


def test_the_starter_files_are_the_readmes_walk_through() -> None:
    shown = walkthrough_files()
    for name in ("capitals.jsonl", "capitals.json"):
        assert shown[name] == (PACKAGED / name).read_text(), name


def test_every_packaged_example_is_declared_as_package_data() -> None:
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "package-data"
    ]["semgrad"]
    shipped = sorted(p.name for p in PACKAGED.iterdir())
    assert set(STARTER_FILES) <= set(shipped)
    for name in shipped:
        assert any(fnmatch.fnmatch(f"examples/{name}", g) for g in globs), name
