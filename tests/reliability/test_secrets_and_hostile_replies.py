"""R4: an API key never reaches a file or the terminal (raw or base64), and a one-character
key does not corrupt replies. R5: hostile model replies (markup, ESC/OSC sequences, lone
surrogates, 2 MB) through `eval`, `optimize`, `resume` and `report`: no crash, no raw
control sequence on the terminal; with a 2 MB reply, `run`, `eval`, `optimize`, `resume`
and `report` each take under 10 s of CPU, the model (a server in this process) aside.
(`run` with the other kinds is covered in tests/cli/test_cli_safety.py.)"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import re
import resource
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from faultkit import reply as reviews_reply
from faultkit import write_config

from semgrad.cli import main
from semgrad.graph import hint_graph
from semgrad.llm.fakes import FakeOpenAIServer

KEY = "sk-test-R4-0123456789abcdefXYZ"

HOSTILE = {
    "markup": "NEG [/bold] [bold red]x [link=http://evil.example]click[/link]",
    "ansi": "\x1b[2J\x1b[H cleared \x1b]0;pwned title\x07 \x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\",
    "c1-and-bidi": "\x9b31m \x90dcs\x9c \u202eevil\u202c \r overwrite \x08\x00",
    "surrogate": "lone \udcff surrogate <improved>\udcff</improved>",
    "huge": "<feedback_1>" + "[b]\x1b[31m(" * 200_000 + "</feedback_1>",  # 2.2 MB
}
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "120")


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        else:
            code = 0
    return code, out.getvalue(), err.getvalue()


def encodings(secret: str) -> list[bytes]:
    """The secret raw and as base64 at each of the three alignments (inside a longer
    base64 text, as in an Authorization header)."""
    raw = secret.encode()
    found = [raw]
    for pad in range(3):
        coded = base64.b64encode(b"x" * pad + raw)
        found.append(coded[4 if pad else 0 : -4])  # the stable middle of the encoding
    return found


def with_key(cfg: Path) -> None:
    text = cfg.read_text().replace('base_url = "', 'api_key_env = "SEMGRAD_TEST_KEY", base_url = "')
    cfg.write_text(text)


def test_the_api_key_reaches_no_file_and_no_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_TEST_KEY", KEY)
    with FakeOpenAIServer(reply=reviews_reply) as server:
        cfg = write_config(tmp_path, server.base_url, "keyed", steps=1, size=4)
        with_key(cfg)
        code, out, err = cli("-vv", "optimize", str(cfg), "--out", str(tmp_path / "run"))
        assert code == 0, err
        code2, out2, err2 = cli("report", str(tmp_path / "run"))
        assert code2 == 0, err2
        assert all(h.get("authorization") == f"Bearer {KEY}" for h in server.headers)
    terminal = (out + err + out2 + err2).encode()
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".sqlite" for p in files) and any(p.name == "report.html" for p in files)
    for needle in encodings(KEY):
        assert needle not in terminal
        for path in files:
            assert needle not in path.read_bytes(), path


def test_a_one_character_key_does_not_corrupt_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_TEST_KEY", "e")
    graph = tmp_path / "g.json"
    graph.write_text(hint_graph(1).to_json())
    with FakeOpenAIServer(reply=lambda body: "the reply keeps every letter e: Answer: 4") as server:
        code, out, err = cli(
            "run", str(graph), "-i", "question=q", "--json", "--api-key-env", "SEMGRAD_TEST_KEY",
            "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
        )  # fmt: skip
    assert code == 0, err
    assert '"output": "the reply keeps every letter e: Answer: 4"' in out


def hostile_reply(kind: str) -> Any:
    text = HOSTILE[kind]

    def answer(body: Mapping[str, Any]) -> str:
        prompt = str(body["messages"][-1]["content"])
        if "<improved>" in prompt:
            return f"<improved>{text}</improved>"
        if "<feedback_1>" in prompt:
            return f"<feedback_1>{text}</feedback_1>"
        return reviews_reply(body) + " " + text

    return answer


def inert(*streams: str) -> bool:
    return not any(RAW_CONTROL.search(s.replace("\n", "").replace("\t", "")) for s in streams)


@pytest.mark.parametrize("kind", [k for k in HOSTILE if k != "huge"])
def test_hostile_replies_through_eval_optimize_resume_and_report(kind: str, tmp_path: Path) -> None:
    graph = tmp_path / "g.json"
    graph.write_text(hint_graph(1).to_json())
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(reply=hostile_reply(kind)) as server:
        cfg = write_config(tmp_path, server.base_url, "hostile", steps=1, size=2)
        outputs = [
            cli(
                "eval", str(graph), "-d", "arith:test", "-n", "2", "-o", str(tmp_path / "r.jsonl"),
                "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
            ),
            cli("optimize", str(cfg), "--out", str(run_dir)),
            cli("resume", str(run_dir)),
            cli("report", str(run_dir)),
        ]  # fmt: skip
    for code, out, err in outputs:
        assert code == 0, err[-2_000:]
        assert inert(out, err)
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower().replace("<script>/*", "")  # inert


CPU_LIMIT_S = 10.0  # per command (issue 13, R5)


def timed(*argv: str) -> tuple[int, str, float]:
    """`semgrad ARGV` in a new process: exit code, terminal output, and the CPU seconds
    (user + system) that process used. The fake model's server stays in this process, so
    serving the replies is not counted."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-m", "semgrad", *argv],
        capture_output=True,
        env={**os.environ, "COLUMNS": "120"},
        timeout=300,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    terminal = (done.stdout + done.stderr).decode("utf-8", "surrogateescape")
    return done.returncode, terminal, cpu


def test_a_2mb_hostile_reply_costs_each_command_under_10_s_of_cpu(tmp_path: Path) -> None:
    graph = tmp_path / "g.json"
    graph.write_text(hint_graph(1).to_json())
    run_dir = tmp_path / "run"
    with FakeOpenAIServer(reply=hostile_reply("huge")) as server:
        model = ["--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off"]
        cfg = write_config(tmp_path, server.base_url, "hostile", steps=1, size=2)
        commands = {
            "run": ["run", str(graph), "-i", "question=q", *model],
            "eval": ["eval", str(graph), "-d", "arith:test", "-n", "2", "-o", str(tmp_path / "r.jsonl"), *model],
            "optimize": ["optimize", str(cfg), "--out", str(run_dir)],
            "resume": ["resume", str(run_dir)],
            "report": ["report", str(run_dir)],
        }  # fmt: skip
        results = {name: timed(*argv) for name, argv in commands.items()}
    for name, (code, terminal, _) in results.items():
        assert code == 0, f"{name}: {terminal[-2_000:]}"
        assert inert(terminal), name
    figures = ", ".join(f"{name} {cpu:.1f} s" for name, (_, _, cpu) in results.items())
    slow = [name for name, (_, _, cpu) in results.items() if cpu >= CPU_LIMIT_S]
    assert not slow, f"over {CPU_LIMIT_S:.0f} s of CPU with a 2 MB reply: {slow} ({figures})"
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html.lower().replace("<script>/*", "")  # inert
