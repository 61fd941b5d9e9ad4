"""Model text is data on the terminal; failed calls and fatal statuses are loud."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from semgrad.cli import main
from semgrad.graph import hint_graph
from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.llm.types import MAX_REPLY_CHARS
from semgrad.text import visible

HOSTILE = {
    "markup": "NEG [/bold] [bold red]x",
    "link": "[link=http://evil.example]click[/link] https://evil.example",
    "ansi": "\x1b[2J\x1b[H cleared \x1b]0;pwned title\x07 \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "c1-and-bidi": "\x9b31m \x90dcs\x9c \u202eevil\u202c \r overwrite \x08\x00",
    "surrogate": "lone \udcff surrogate",
    "long": "[b]\x1b[31m" * 60_000 + "(" * 100_000,  # ~1 MB of markup, escapes and parentheses
}

# Any escape introducer, C1 control or bare carriage return a terminal would act on.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "120")


@pytest.fixture
def graph_file(tmp_path: Path) -> Path:
    p = tmp_path / "g.json"
    p.write_text(hint_graph(1).to_json())
    return p


def test_visible_escapes_controls_and_keeps_newlines_and_tabs() -> None:
    assert visible("a\x1b[2Jb\tc\nd\x07\x9b\u202e") == "a\\x1b[2Jb\tc\nd\\x07\\x9b\\u202e"
    assert visible("\udcff") == "\\udcff"
    start = time.perf_counter()
    assert len(visible("\x1b" * 2_000_000)) == 8_000_000
    assert time.perf_counter() - start < 2


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_run_prints_hostile_replies_as_inert_text(
    kind: str, graph_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = HOSTILE[kind]
    with FakeOpenAIServer(reply=lambda body: reply) as server:
        start = time.process_time()
        code = cli(
            "run", str(graph_file), "-i", "question=q",
            "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
        )  # fmt: skip
        cpu = time.process_time() - start
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert cpu < 10
    assert not RAW_CONTROL.search(captured.out.replace("\n", "").replace("\t", ""))
    assert not RAW_CONTROL.search(captured.err.replace("\n", "").replace("\t", ""))
    if kind == "markup":
        assert "NEG [/bold] [bold red]x" in captured.out
    if kind == "link":
        assert "[link=http://evil.example]click[/link]" in captured.out
    if kind == "ansi":
        assert "\\x1b[2J" in captured.out and "\\x07" in captured.out


def test_run_exits_3_when_the_graph_produced_no_output(
    graph_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(failures=[(500, {}, "\x1b[2Jboom [/bold]")]) as server:
        code = cli(
            "run", str(graph_file), "-i", "question=q", "--max-attempts", "1",
            "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
        )  # fmt: skip
    captured = capsys.readouterr()
    assert code == 3
    assert "\x1b" not in captured.out and "boom [/bold]" in captured.out


@pytest.mark.parametrize("status", [401, 403, 404])
@pytest.mark.parametrize("command", ["run", "eval"])
def test_fatal_statuses_stop_run_and_eval_with_exit_2(
    status: int, command: str, graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    failures = [(status, {}, '{"error": "no"}')] * 50
    args = ["--base-url", "", "--model", "fake-model", "--cache-mode", "off"]
    if command == "run":
        argv = ["run", str(graph_file), "-i", "question=q"]
    else:
        argv = ["eval", str(graph_file), "-d", "arith:test", "-n", "5", "-c", "1"]
        argv += ["-o", str(tmp_path / "r.jsonl")]
    with FakeOpenAIServer(failures=failures) as server:
        args[1] = server.base_url
        code = cli(*argv, *args)
        assert server.request_count == 1  # stopped at once, not once per example
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2
    assert f"error: the model server at {args[1]}" in err
    assert f"HTTP {status}" in err and "Traceback" not in err


def _eval_args(
    server: FakeOpenAIServer, graph_file: Path, tmp_path: Path, attempts: int = 2
) -> list[str]:
    return [
        "eval", str(graph_file), "-d", "arith:test", "-n", "4", "--max-attempts", str(attempts), "-c", "1",
        "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
        "-o", str(tmp_path / "r.jsonl"),
    ]  # fmt: skip


def test_eval_retries_malformed_replies_and_gets_the_same_result(
    graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = [(200, {}, '{"choices": [{"mess'), (200, {}, "<html>bad gateway</html>")]
    with FakeOpenAIServer(reply=lambda body: "Answer: 7", failures=garbage) as server:
        assert cli(*_eval_args(server, graph_file, tmp_path, attempts=3)) == 0
        assert server.request_count == 8 + 2  # every malformed reply was sent again
    assert "errored" not in capsys.readouterr().err


def test_eval_with_failed_calls_names_the_first_error_and_exits_3(
    graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = [(200, {}, "\x1b]0;garbage")] * 2
    with FakeOpenAIServer(reply=lambda body: "Answer: 7", failures=garbage) as server:
        code = cli(*_eval_args(server, graph_file, tmp_path))
    captured = capsys.readouterr()
    err = " ".join(captured.err.split())
    assert code == 3
    assert "1 of 4 examples errored" in err and "not JSON" in err and "--max-error-rate" in err
    assert "\x1b" not in captured.err
    with FakeOpenAIServer(reply=lambda body: "Answer: 7", failures=garbage) as server:
        args = [*_eval_args(server, graph_file, tmp_path), "--max-error-rate", "0.25"]
        assert cli(*args) == 0
    assert "1 of 4 examples errored" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("name", ["/abs/elsewhere", "../outside", "a/b", "..", "", "x" * 5000])
def test_a_run_name_that_is_a_path_is_refused_with_exit_2(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if name.startswith("/"):
        name = str(tmp_path / "elsewhere")
    config = tmp_path / "run.toml"
    config.write_text(
        f"name = {name!r}\nsteps = 1\n[graph]\nhints = 1\n"
        '[data]\ntrain = "arith:train"\ngate = "arith:val"\ntest = "arith:test"\n'
    )
    monkeypatch.chdir(tmp_path)
    assert cli("optimize", str(config)) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "error: config key 'name'" in err and "--out DIR" in err and len(err) < 2_000
    assert not (tmp_path / "elsewhere").exists() and not (tmp_path / "runs").exists()


def test_errors_echo_huge_input_shortened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    huge = "n" * 4_000_000
    spec = {
        "inputs": ["question"],
        "nodes": [{"type": "llm", "name": "a", "inputs": [huge], "instruction": "x"}],
        "output": "a",
    }
    path = tmp_path / "g.json"
    path.write_text(json.dumps(spec))
    assert cli("run", str(path), "-i", "question=q") == 2
    err = capsys.readouterr().err
    assert "characters omitted" in err and len(err) < 2_000 and "Traceback" not in err


def test_eval_shows_wrong_answers_as_inert_text(
    graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = "\x1b]0;pwned\x07 [/bold] [link=http://evil]x[/link] Answer: 9\x1b[2J"
    with FakeOpenAIServer(reply=lambda body: reply) as server:
        assert cli(*_eval_args(server, graph_file, tmp_path)) == 0
    out = capsys.readouterr().out
    assert "wrong answers (first 4 of 4):" in out
    assert "answer '9'" in out and "The expected output is" in out
    assert not RAW_CONTROL.search(out.replace("\n", ""))


@pytest.mark.parametrize("kind", ["ansi", "long", "surrogate"])
def test_run_json_output_is_plain_escaped_json(
    kind: str, graph_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reply = HOSTILE[kind]
    with FakeOpenAIServer(reply=lambda body: reply) as server:
        start = time.process_time()
        code = cli(
            "run", str(graph_file), "-i", "question=q", "--json",
            "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
        )  # fmt: skip
        cpu = time.process_time() - start
    out = capsys.readouterr().out
    assert code == 0 and cpu < 10
    assert not RAW_CONTROL.search(out.replace("\n", ""))
    trace = json.loads(out)
    # (A reply over MAX_REPLY_CHARS is read cut there: the "long" one is.)
    assert trace["output"] == reply[:MAX_REPLY_CHARS].replace("\udcff", "\ufffd").strip()
