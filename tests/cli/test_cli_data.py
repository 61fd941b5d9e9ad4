"""The CLI on your own data: eval --data FILE with columns and a metric, the pre-flight
check, --version, -v and defaults shown in --help."""

from __future__ import annotations

import json
import logging
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from semgrad import __version__
from semgrad.cli import main
from semgrad.llm.fakes import FakeOpenAIServer

CAPITALS = {
    "France": "Paris",
    "Japan": "Tokyo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Egypt": "Cairo",
    "Canada": "Ottawa",
    "Chile": "Santiago",
    "India": "New Delhi",
    "Italy": "Rome",
}


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the CLI may add the current directory
    yield
    sys.modules.pop("capitals_metric", None)
    logging.getLogger("semgrad").handlers.clear()
    logging.getLogger("semgrad").setLevel(logging.NOTSET)


def capital_reply(body: Mapping[str, Any]) -> str:
    """A fake model that knows every capital but Canada's."""
    prompt = body["messages"][-1]["content"]
    country = next((c for c in CAPITALS if c in prompt), "?")
    if "Reply with the city name only" not in prompt:
        return f"{country} is a country with a government."
    return "Toronto" if country == "Canada" else f"The capital is {CAPITALS.get(country, '?')}."


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    data = tmp_path / "capitals.jsonl"
    data.write_text(
        "".join(json.dumps({"country": c, "capital": a}) + "\n" for c, a in CAPITALS.items())
    )
    graph = tmp_path / "capitals.json"
    graph.write_text(
        json.dumps(
            {
                "semgrad": 1,
                "name": "capitals",
                "inputs": ["country"],
                "nodes": [
                    {
                        "type": "llm",
                        "name": "recall",
                        "inputs": ["country"],
                        "instruction": "Say what you know about this country.",
                    },
                    {
                        "type": "llm",
                        "name": "answer",
                        "inputs": ["country", "recall"],
                        "instruction": "Name the capital. Reply with the city name only.",
                    },
                ],
                "output": "answer",
            }
        )
    )
    metric = tmp_path / "capitals_metric.py"
    metric.write_text(
        "def capital(prediction, example):\n"
        "    return example.target.lower() in prediction.lower()\n"
        "def broken(prediction, example):\n"
        "    return None\n"
    )
    return {"data": data, "graph": graph, "metric": metric}


def test_eval_on_your_own_jsonl_with_your_own_metric(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(reply=capital_reply) as server:
        for metric in ("capitals_metric:capital", "capitals_metric.py:capital", "contains"):
            out = tmp_path / f"out-{metric.replace(':', '_')}.jsonl"
            code = cli(
                "eval", str(files["graph"]), "--data", str(files["data"]),
                "--target-col", "capital", "--metric", metric,
                "--base-url", server.base_url, "--model", "fake-model", "--out", str(out),
            )  # fmt: skip
            assert code == 0, capsys.readouterr().err
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            assert len(rows) == 10
            assert sum(r["score"] for r in rows) == 9
            wrong = next(r for r in rows if r["score"] == 0)
            assert wrong["id"] == "capitals/7" and wrong["inputs"] == {"country": "Canada"}
            assert 'expected output is: "Ottawa"' in wrong["feedback"]
    assert "90.0%" in capsys.readouterr().out


def test_eval_file_errors_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    graph, data = str(files["graph"]), str(files["data"])
    assert cli("eval", graph, "--data", data) == 2  # no target/answer/label column
    assert "--target-col" in capsys.readouterr().err
    assert cli("eval", graph, "--data", data, "--target-col", "capital",
               "--metric", "capitals_metric:broken") == 2  # fmt: skip
    err = " ".join(capsys.readouterr().err.split())
    assert "returned NoneType ('None') for example 'capitals/1'" in err
    assert "returns a Score, a bool, a number in [0, 1]" in err
    assert cli("eval", graph, "--data", "arith:test", "--target-col", "x") == 2
    assert "built-in task" in capsys.readouterr().err


def test_eval_preflight_wrong_model_and_closed_port_exit_2(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", str(files["graph"]), "--data", str(files["data"]), "--target-col", "capital"]
    with FakeOpenAIServer(model="served-model") as server:
        assert cli(*args, "--base-url", server.base_url, "--model", "typo-model") == 2
        assert server.request_count == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "does not serve the model 'typo-model'; it offers: served-model" in err
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert cli(*args, "--base-url", f"http://127.0.0.1:{port}/v1", "--model", "m") == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"http://127.0.0.1:{port}/v1" in err and "Is the server running?" in err


def test_version_verbose_and_defaults_in_help(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("--version") == 0
    assert capsys.readouterr().out.strip() == f"semgrad {__version__}"
    assert cli("eval", "--help") == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "[default: ($SEMGRAD_HOME/cache.sqlite)]" in help_text
    assert "[default: ($SEMGRAD_DATA_DIR)]" in help_text
    assert "[default: read-write]" in help_text
    with FakeOpenAIServer(reply=capital_reply) as server:
        url = server.base_url
        code = cli(
            "-v", "eval", str(files["graph"]), "--data", str(files["data"]),
            "--target-col", "capital", "--metric", "contains",
            "--base-url", server.base_url, "--model", "fake-model",
        )  # fmt: skip
    assert code == 0
    assert f"INFO semgrad.llm.preflight: pre-flight: {url} serves fake-model" in (
        capsys.readouterr().err
    )
