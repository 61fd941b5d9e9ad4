"""R3, the classes of input that gave a traceback (issue 13): each one is now exit 2 with one
paragraph naming the file (or value) and the fix."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from semgrad.cli import main
from semgrad.graph import hint_graph

DEEP = "[" * 100_000 + "]" * 100_000
CONFIG = (
    'name = "x"\nsteps = 1\n[graph]\n{graph}\n'
    '[data]\ntrain = "arith:train"\ngate = "arith:val"\ntest = "arith:test"\n'
)


def cli(*argv: str) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            return (exc.code if isinstance(exc.code, int) else 0), err.getvalue()
    return 0, err.getvalue()


def function_node(fn: str) -> str:
    node = {"type": "function", "name": "f", "inputs": ["question"], "fn": fn}
    return json.dumps({"inputs": ["question"], "nodes": [node], "output": "f"})


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def run_graph(tmp: Path, content: str | bytes) -> list[str]:
    return ["run", str(write(tmp / "g.json", content)), "-i", "question=q"]


def optimize(tmp: Path, content: str | bytes) -> list[str]:
    return ["optimize", str(write(tmp / "c.toml", content)), "--out", str(tmp / "run")]


def dataset(tmp: Path, relative: str, content: str | bytes, spec: str) -> list[str]:
    write(tmp / "data" / relative, content)
    graph = write(tmp / "g.json", hint_graph(1).to_json())
    return ["eval", str(graph), "-d", spec, "--data-dir", str(tmp / "data"), "-n", "1"]


LIAR_ROW = "\t".join(["1.json", "true", "x" * 140_000, *["s"] * 11]) + "\n"
CASES: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    "deep graph spec": (lambda t: run_graph(t, DEEP), "too deeply"),
    "non-UTF-8 graph spec": (lambda t: run_graph(t, b'{"a": "\xff"}'), "not UTF-8"),
    "function ':x'": (lambda t: run_graph(t, function_node(":x")), "import path"),
    "function '.x:y'": (lambda t: run_graph(t, function_node(".x:y")), "import path"),
    "deep TOML": (lambda t: optimize(t, "a = " + DEEP), "too deeply"),
    "non-UTF-8 config": (lambda t: optimize(t, b'name = "\xff"\n'), "not UTF-8"),
    "5,000-character graph.path": (
        lambda t: optimize(t, CONFIG.format(graph=f'path = "{"a" * 5000}.json"')),
        "File name too long",
    ),
    "deep GSM8K line": (lambda t: dataset(t, "gsm8k/test.jsonl", DEEP, "gsm8k:test"), "GSM8K"),
    "non-UTF-8 GSM8K file": (
        lambda t: dataset(t, "gsm8k/test.jsonl", b"\xff\n", "gsm8k:test"),
        "not UTF-8",
    ),
    "deep BBH file": (
        lambda t: dataset(t, "bbh/navigate.json", DEEP, "bbh:navigate:test"),
        "deeply",
    ),
    "LIAR field over 131,072 characters": (
        lambda t: dataset(t, "liar/test.tsv", LIAR_ROW, "liar:test"),
        "cannot be read",
    ),
    "export -o DIR": (lambda t: ["export", str(t / "run"), "-o", str(t)], "is a directory"),
    "export FILE": (lambda t: ["export", str(write(t / "f", "x"))], "not a run directory"),
    "export -o /dev/null": (
        lambda t: ["export", str(t / "run"), "-o", "/dev/null"],
        "not a regular file",
    ),
    "cache stats /dev/null": (lambda t: ["cache", "stats", "--cache", "/dev/null"], "not a cache"),
    "cache stats DIR": (lambda t: ["cache", "stats", "--cache", str(t)], "not a cache"),
    "base URL http://[::1": (
        lambda t: [*run_graph(t, hint_graph(1).to_json()), "--base-url", "http://[::1"],
        "not a valid URL",
    ),
    "port 99999": (
        lambda t: [
            *run_graph(t, hint_graph(1).to_json()),
            *("--base-url", "http://127.0.0.1:99999/v1", "--model", "m"),
        ],
        "65535",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_known_class_is_exit_2_with_one_paragraph(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "100")
    argv, needle = CASES[case]
    if case.startswith("export -o"):  # a finished run to export from
        write(tmp_path / "run" / "best_graph.json", hint_graph(1).to_json())
    code, err = cli(*argv(tmp_path))
    message = " ".join(err.split())
    assert code == 2, err[-1_000:]
    assert message.startswith("error: ") and needle in message, message
    assert len(message) < 2_000 and "Traceback" not in message
    assert Path("/dev/null").is_char_device()  # never replaced by a file
