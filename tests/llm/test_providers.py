"""The README's provider setups, each tried against a loopback stand-in configured as that
server is (its model list and names, its key, whether it checks the model name)."""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from readme_kit import blocks, section, write_walkthrough
from semgrad.cli import main
from semgrad.llm.config import ModelsConfig
from semgrad.llm.fakes import FakeOpenAIServer

KEY = "sk-test-0123456789abcdef"

# How each server behaves, as far as a client can tell.
STAND_INS: dict[str, dict[str, Any]] = {
    "OpenAI": {"models": ["gpt-4o", "gpt-4o-mini"], "strict_model": True, "api_key": KEY},
    "Ollama": {"models": ["llama3.2:latest", "qwen2.5:0.5b"], "strict_model": True},
    "vLLM": {"models": ["Qwen/Qwen2.5-1.5B-Instruct"], "strict_model": True},
    "llama.cpp": {"models": ["models/qwen2.5-1.5b-instruct-q4_k_m.gguf"]},
    "semgrad": {"models": ["qwen2.5-coder-1.5b"]},
}


def providers() -> list[dict[str, str]]:
    """The README table's rows: server, base URL, model, key variable (or "")."""
    rows = []
    for line in section("Providers").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("server", "---"):
            continue
        code = [re.findall(r"`([^`]*)`", c) for c in cells]
        key = re.search(r"--api-key-env (\w+)", cells[4]) if cells[4].startswith("`") else None
        rows.append(
            {
                "server": cells[0],
                "base_url": code[2][0],
                "model": code[3][0],
                "key": key.group(1) if key else "",
            }
        )
    return rows


def capital_reply(body: Mapping[str, Any]) -> str:
    return "Paris" if "France" in body["messages"][-1]["content"] else "Somewhere"


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_the_table_names_every_stand_in() -> None:
    assert [row["server"] for row in providers()] == list(STAND_INS)


@pytest.mark.parametrize("row", providers(), ids=lambda row: row["server"])
def test_each_setup_works_against_its_stand_in(
    row: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    write_walkthrough(tmp_path)
    if row["key"]:
        monkeypatch.setenv(row["key"], KEY)
    path = urlsplit(row["base_url"]).path
    with FakeOpenAIServer(reply=capital_reply, prefix=path, **STAND_INS[row["server"]]) as server:
        # The README's URL with the stand-in's host and port; the path as documented.
        base_url = f"http://127.0.0.1:{server.port}{path}"

        def args(model: str) -> list[str]:
            line = ["eval", "capitals.json", "--data", "capitals.jsonl", "--target-col",
                    "capital", "--metric", "contains", "--base-url", base_url, "--model", model]  # fmt: skip
            return line + (["--api-key-env", row["key"]] if row["key"] else [])

        assert cli(*args(row["model"])) == 0, capsys.readouterr().err
        assert server.request_count == 20  # 10 rows, 2 nodes
        assert {body["model"] for body in server.requests} == {row["model"]}
        if STAND_INS[row["server"]].get("strict_model"):
            assert cli(*args("no-such-model")) == 2
            assert "does not serve the model 'no-such-model'" in " ".join(
                capsys.readouterr().err.split()
            )
        if row["key"]:
            assert {h["authorization"] for h in server.headers} == {f"Bearer {KEY}"}
            monkeypatch.setenv(row["key"], "sk-wrong-0123456789")
            assert cli(*args(row["model"]), "--out", "again.jsonl") == 2
            assert "refused the API key" in " ".join(capsys.readouterr().err.split())


def test_the_models_snippet_is_a_valid_config() -> None:
    [snippet] = blocks(section("Providers"), "toml")
    models = ModelsConfig.model_validate(tomllib.loads(snippet)["models"])
    assert models.forward.base_url == "http://127.0.0.1:11434/v1"
    assert models.backward.api_key_env == "OPENAI_API_KEY"
    [command] = blocks(section("Providers"), "bash")
    assert "--base-url http://127.0.0.1:11434/v1 --model llama3.2" in command
    assert json.dumps(STAND_INS)  # the stand-ins are plain data
