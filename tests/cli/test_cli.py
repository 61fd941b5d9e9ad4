"""The command line: exit codes, one-paragraph errors, eval end to end against a fake server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from semgrad.cli import main
from semgrad.graph import hint_graph
from semgrad.llm.fakes import FakeOpenAIServer


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    p = tmp_path / "g.json"
    p.write_text(hint_graph(2).to_json())
    return p


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")


def spec(tmp_path: Path, data: object, name: str = "bad.json") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else json.dumps(data))
    return p


def one_paragraph_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error:")
    return " ".join(err.split())


CASES = {
    "cycle": (
        {
            "inputs": ["question"],
            "nodes": [
                {"type": "llm", "name": "a", "inputs": ["question", "b"], "instruction": "x"},
                {"type": "llm", "name": "b", "inputs": ["a"], "instruction": "y"},
            ],
            "output": "b",
        },
        ["cycle", "a -> b -> a"],
    ),
    "missing input": (
        {
            "inputs": ["question"],
            "nodes": [{"type": "llm", "name": "a", "inputs": ["context"], "instruction": "x"}],
            "output": "a",
        },
        ["'a'", "'context'"],
    ),
    "unknown node": (
        {
            "inputs": ["question"],
            "nodes": [{"type": "llm", "name": "a", "inputs": ["question"], "instruction": "x"}],
            "output": "final",
        },
        ["'final'"],
    ),
    "invalid JSON": ('{"inputs": ["question"], "nodes": [', ["invalid JSON", "line 1"]),
    "not a spec": ({"hello": 1}, ["invalid graph spec", "inputs"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_specs_exit_2_naming_the_problem(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, needles = CASES[case]
    path = spec(tmp_path, data)
    assert cli("run", str(path), "--input", "question=hi") == 2
    message = one_paragraph_error(capsys)
    assert str(path) in message
    for needle in needles:
        assert needle in message


def test_missing_graph_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("eval", str(tmp_path / "nope.json"), "--data", "arith:test") == 2
    assert "no such file" in one_paragraph_error(capsys)


def test_unknown_task_and_bad_input_flag(
    graph_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("eval", str(graph_file), "--data", "nonsense:test") == 2
    assert "nonsense" in one_paragraph_error(capsys)
    assert cli("run", str(graph_file), "--input", "question") == 2
    assert "NAME=VALUE" in one_paragraph_error(capsys)


def test_unreachable_server_exits_2(graph_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(
        "run",
        str(graph_file),
        "--input",
        "question=hi",
        "--base-url",
        "http://127.0.0.1:9/v1",
        "--model",
        "m",
        "--cache-mode",
        "off",
        "--max-attempts",
        "2",
    )
    assert code == 2
    message = one_paragraph_error(capsys)
    assert "127.0.0.1:9" in message


def test_missing_model_exits_2(
    graph_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    from semgrad.errors import ModelNotInstalledError

    models = importlib.import_module("semgrad.llm.models")

    def not_installed(name: str) -> object:
        raise ModelNotInstalledError(name)

    # The registry's own logic is tested in tests/llm/test_models.py; here, the CLI's answer
    # (and no model is assembled or loaded, whatever this machine has installed).
    with monkeypatch.context() as patch:
        patch.setattr(models, "resolve_model", not_installed)
        code = cli("run", str(graph_file), "-i", "question=hi", "--model", "qwen2.5-coder-1.5b")
    assert code == 2
    assert "semgrad models install" in one_paragraph_error(capsys)
    assert cli("run", str(graph_file), "--input", "question=hi", "--model", "/nope/x.gguf") == 2
    assert "/nope/x.gguf" in one_paragraph_error(capsys)


def test_bad_cache_mode(graph_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        cli(
            "run",
            str(graph_file),
            "-i",
            "question=hi",
            "--base-url",
            "http://127.0.0.1:9/v1",
            "--cache-mode",
            "sometimes",
        )
        == 2
    )
    assert "--cache-mode" in one_paragraph_error(capsys)


def test_eval_against_a_server_then_from_the_cache(
    graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results.jsonl"
    cache = tmp_path / "cache.sqlite"
    with FakeOpenAIServer(reply=lambda body: "Working... Answer: 7") as server:
        args = (
            "eval",
            str(graph_file),
            "--data",
            "arith:test",
            "--limit",
            "5",
            "--base-url",
            server.base_url,
            "--model",
            "fake-model",
            "--cache",
            str(cache),
            "--out",
            str(out),
        )
        assert cli(*args) == 0
        first = capsys.readouterr().out
        assert server.request_count == 15
        assert cli(*args) == 0
        second = capsys.readouterr().out
        assert server.request_count == 15  # all from the cache
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    assert {"id", "target", "output", "score", "feedback", "trace"} <= set(rows[0])
    assert rows[0]["trace"]["nodes"]["final"]["raw"] == "Working... Answer: 7"
    assert "model calls" in first and "15" in first
    calls_line = next(line for line in second.splitlines() if "model calls" in line)
    assert calls_line.split()[-2] == "0"
    hits_line = next(line for line in second.splitlines() if "cache hits" in line)
    assert hits_line.split()[-2] == "15"
    assert cli("cache", "stats", "--cache", str(cache)) == 0
    assert "entries: 15" in capsys.readouterr().out
    assert cli("cache", "clear", "--cache", str(cache)) == 0
    assert "cleared 15" in capsys.readouterr().out


def test_eval_counts_replies_cut_off_at_max_tokens(
    graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def reply(body: object) -> str:
        # Every final reply (max_tokens 320) runs past its limit; the hints (96) do not.
        assert isinstance(body, dict)
        return "step " * 400 if body["max_tokens"] == 320 else "a hint"

    out = tmp_path / "results.jsonl"
    with FakeOpenAIServer(reply=reply, honour_max_tokens=True) as server:
        code = cli(
            "eval", str(graph_file), "--data", "arith:test", "--limit", "3",
            "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
            "--out", str(out),
        )  # fmt: skip
    assert code == 0
    table = capsys.readouterr().out
    cut_line = next(line for line in table.splitlines() if "cut off at max_tokens" in line)
    assert cut_line.split("│")[-2].strip() == "3 (final 3)"  # how many, and which node
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(row["trace"]["truncated"] == ["final"] for row in rows)
    assert all("cut off after max_tokens" in row["feedback"] for row in rows)


def test_run_prints_trace(
    graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer() as server:
        code = cli(
            "run",
            str(graph_file),
            "-i",
            "question=What is 2+2?",
            "--base-url",
            server.base_url,
            "--model",
            "fake",
            "--cache-mode",
            "off",
            "--json",
        )
    assert code == 0
    trace = json.loads(capsys.readouterr().out)
    assert list(trace["nodes"]) == ["hint_1", "hint_2", "final"]
    assert "What is 2+2?" in trace["nodes"]["final"]["prompt"][0]["content"]


def test_models_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("models", "list") == 0
    out = capsys.readouterr().out
    assert "qwen2.5-coder-0.5b" in out and "Apache-2.0" in out


def test_run_and_eval_build_their_model_with_the_shared_builder(
    graph_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from semgrad.cli import commands
    from semgrad.llm import EchoLLM, LLMStack, Meter, ModelsConfig

    built: list[tuple[ModelsConfig, tuple[str, ...]]] = []

    def fake_build_stack(models: ModelsConfig, *, roles: tuple[str, ...]) -> LLMStack:
        built.append((models, roles))
        return LLMStack(llms={"forward": EchoLLM()}, meter=Meter())

    monkeypatch.setattr(commands, "build_stack", fake_build_stack)
    assert cli("run", str(graph_file), "-i", "question=2+2?") == 0
    assert cli("run", str(graph_file), "-i", "question=2+2?", "--slots", "4", "--prompt-cache") == 0
    (default, roles), (fast, _) = built
    assert roles == ("forward",)
    assert (default.slots, default.prompt_cache) == (1, False)  # deterministic by default
    assert (fast.slots, fast.prompt_cache) == (4, True)
    assert default.forward.model == "qwen2.5-coder-0.5b" and default.max_attempts == 5
