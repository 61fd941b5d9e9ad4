"""R3, the classes of input that gave a traceback (issue 13), and those that were accepted
silently (exit 0) where an error was due: each one is now exit 2 with one paragraph naming
the file (or value), the problem and the fix."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


# -- accepted silently before (exit 0 where an error was due) --------------------------------

RUN_CONFIG = (
    'name = "x"\nsteps = 1\n[graph]\nhints = 1\n[models]\ncache_mode = "off"\n'
    '[data]\ntrain = "arith:train"\ngate = "arith:val"\ntest = "arith:test"\n'
    "train_size = 2\ngate_size = 2\ntest_size = 2\n[budget]\ncalls = 0\n"
)


def config_with(old: str, new: str) -> Callable[[Path], list[str]]:
    assert old in RUN_CONFIG
    return lambda t: [*optimize(t, RUN_CONFIG.replace(old, new, 1)), "--overwrite"]


def graph_with(change: Callable[[dict[str, Any]], object]) -> Callable[[Path], list[str]]:
    def argv(t: Path) -> list[str]:
        spec = hint_graph(1).to_dict()
        change(spec)
        return run_graph(t, json.dumps(spec))

    return argv


def data_file(content: str, *options: str) -> Callable[[Path], list[str]]:
    def argv(t: Path) -> list[str]:
        graph = write(t / "g.json", hint_graph(1).to_json())
        data = write(t / "d.csv", content)
        return ["eval", str(graph), "-d", str(data), "-n", "1", *options]

    return argv


def node(spec: dict[str, Any]) -> dict[str, Any]:
    node: dict[str, Any] = spec["nodes"][-1]
    return node


SILENT: dict[str, tuple[Callable[[Path], list[str]], str]] = {
    # Unknown keys were refused before, but without the keys allowed there.
    "config: a misspelt key": (
        config_with('cache_mode = "off"', 'cache_mode = "off"\nconcurency = 2'),
        "unknown key 'concurency'; the keys here are forward, backward, optimizer, teacher, slots",
    ),
    "config: an unknown section": (
        config_with("[budget]", "[bogus]\nx = 1\n[budget]"),
        "unknown key 'bogus'; the keys here are name, seed, steps, graph, models, data",
    ),
    "graph spec: an unknown node key": (
        graph_with(lambda s: node(s).update(colour="red")),
        "unknown key 'colour'; the keys here are type, name, inputs, instruction, role",
    ),
    # Types were coerced: true was 1 step, "3" was 3.
    "config: steps = true": (config_with("steps = 1", "steps = true"), "steps: Input should be a valid integer, got True"),
    "config: steps = \"3\"": (config_with("steps = 1", 'steps = "3"'), "Input should be a valid integer, got '3'"),
    "config: a quoted size": (config_with("test_size = 2", 'test_size = "2"'), "data.test_size: Input should be a valid integer"),
    "config: prompt_cache = 1": (
        config_with('cache_mode = "off"', 'cache_mode = "off"\nprompt_cache = 1'),
        "models.prompt_cache: Input should be a valid boolean, got 1",
    ),
    "graph spec: a quoted max_tokens": (
        graph_with(lambda s: node(s).update(max_tokens="96")),
        "max_tokens: Input should be a valid integer, got '96'",
    ),
    "graph spec: requires_grad = 1": (
        graph_with(lambda s: node(s).update(requires_grad=1)),
        "requires_grad: Input should be a valid boolean",
    ),
    # Settings without effect were dropped.
    "config: metric_options without a metric": (
        config_with("test_size = 2", "test_size = 2\nmetric_options = { tolerance = 0.1 }"),
        "metric_options are options of data.metric, which is not set",
    ),
    "config: gate_size with the training split as gate": (
        config_with('gate = "arith:val"', 'gate = "train"'),
        'gate_size sizes a gate split of its own, but gate = "train"',
    ),
    "run: an --input the graph does not have": (
        lambda t: [*run_graph(t, hint_graph(1).to_json()), "-i", "qestion=typo"],
        "--input 'qestion': the graph has no input of that name; its inputs are question",
    ),
    "run: an --input given twice": (
        lambda t: [*run_graph(t, hint_graph(1).to_json()), "-i", "question=r"],
        "--input 'question' is given twice",
    ),
    "eval: --input-cols ''": (data_file("question,answer\nq,4\n", "--input-cols", ""), "names no column"),
    "eval: --input-cols naming a column twice": (
        data_file("question,answer\nq,4\n", "--input-cols", "question,question"),
        "name 'question' more than once",
    ),
    # A role that names no parameter, or the demos' one.
    "graph spec: an empty role": (graph_with(lambda s: node(s).update(role="")), "role '' is not allowed"),
    "graph spec: role 'demos'": (graph_with(lambda s: node(s).update(role="demos")), "role 'demos' is not allowed"),
    "graph spec: a dotted role": (graph_with(lambda s: node(s).update(role="a.b")), "without '.'"),
    # Refused already (kept as explicit cases): references, duplicates, sizes, budgets, data.
    "graph spec: a duplicate node": (
        graph_with(lambda s: s["nodes"].append(dict(node(s)))),
        "is used twice (node)",
    ),
    "graph spec: an output that is no node": (graph_with(lambda s: s.update(output="nope")), "refers to 'nope'"),
    "config: train_size = 0": (config_with("train_size = 2", "train_size = 0"), "greater than or equal to 1"),
    "config: steps = -1": (config_with("steps = 1", "steps = -1"), "greater than or equal to 0"),
    "config: a negative budget": (config_with("calls = 0", "calls = -1"), "a budget must be >= 0"),
    "config: an unknown budget": (config_with("calls = 0", "dollars = 3"), "unknown budget 'dollars'"),
    "config: an unknown metric": (config_with("test_size = 2", 'test_size = 2\nmetric = "bogus"'), "unknown metric 'bogus'"),
    "eval: a data file with no rows": (data_file("question,answer\n"), "has no rows"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(SILENT))
def test_each_silently_accepted_class_is_exit_2_naming_the_problem(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "100")
    argv, needle = SILENT[case]
    code, err = cli(*argv(tmp_path))
    message = " ".join(err.split())
    assert code == 2, err[-1_000:]
    assert message.startswith("error: ") and needle in message, message
    assert len(message) < 2_000 and "Traceback" not in message
