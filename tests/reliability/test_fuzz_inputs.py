"""R3: fuzzed user input never gives a traceback nor hangs. Graph and swarm specs, run
configs, data files, cache and output paths, and command lines go through the CLI in-process
(`semgrad.cli.main`, against a loopback fake server); every error is exit 2 with a message
under 2,000 characters; a wrongly typed setting is refused, never coerced. 2,200 cases in all
(`CASES`)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from semgrad.cli import main
from semgrad.errors import ModelNotInstalledError
from semgrad.graph import hint_graph
from semgrad.llm.fakes import FakeOpenAIServer

# Examples per property; their sum is the figure in the README (R3).
SCALE = float(os.environ.get("SEMGRAD_FUZZ_SCALE", "1"))
CASES = {
    "graph": 250,
    "swarm": 120,
    "config": 200,
    "data": 250,
    "cache": 120,
    "output": 110,
    "argv": 1_000,
    "types": 150,
}
assert sum(CASES.values()) >= 2_000
CASES = {k: max(1, int(v * SCALE)) for k, v in CASES.items()}


def _agent(name: str) -> dict[str, Any]:
    node = {"type": "llm", "name": "answer", "inputs": ["question"], "instruction": "Answer."}
    return {"name": name, "graph": {"inputs": ["question"], "nodes": [node], "output": "answer"}}


SWARM = {  # a valid swarm, which the fuzz mutates
    "semgrad": 1,
    "kind": "swarm",
    "inputs": ["question"],
    "agents": [_agent("a"), _agent("b")],
    "decision": {"type": "function", "fn": "majority_choice"},
    "edges": [{"from": "a", "to": "b/answer", "p0": 0.5}, {"from": "b", "to": "decision"}],
}


def fuzz(n: int) -> Any:
    return settings(
        max_examples=n,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(reply=lambda body: "Answer: 4") as fake:
        yield fake


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(autouse=True)
def isolated(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(home / "semgrad-home"))
    monkeypatch.setenv("COLUMNS", "120")
    monkeypatch.chdir(home)

    def not_installed(spec: str, **_: object) -> object:
        # Never assemble or load an embedded model (its parts may be installed here).
        raise ModelNotInstalledError(spec)

    monkeypatch.setattr("semgrad.llm.models.resolve_model", not_installed)


def cli(*argv: str) -> tuple[int, str]:
    """Exit code and stderr of `semgrad ARGV`; a traceback fails the test by itself."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        else:
            code = 0
    return code, err.getvalue()


def check(code: int, err: str, allowed: tuple[int, ...] = (0, 2, 3)) -> None:
    assert code in allowed, err
    assert "Traceback" not in err
    if code == 2:
        assert 0 < len(err) < 2_000, err[:500]


def remote(server: FakeOpenAIServer) -> list[str]:
    return [
        "--base-url", server.base_url, "--model", "fake-model", "--cache-mode", "off",
        "--max-attempts", "1",
    ]  # fmt: skip


# -- strategies ------------------------------------------------------------------------

text = st.text(max_size=40)
scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | text
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)  # fmt: skip


def mutated(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    """`base` with one key (at the top or in its first list item) set to any JSON value,
    or removed."""

    def apply(key: str, value: Any, remove: bool, nested: bool) -> Any:
        doc = json.loads(json.dumps(base))
        target = doc
        if nested:
            lists = [
                v for v in doc.values() if isinstance(v, list) and v and isinstance(v[0], dict)
            ]
            target = lists[0][0] if lists else doc
        keys = [*target, key]
        chosen = keys[zlib.crc32(key.encode("utf-8", "surrogatepass")) % len(keys)]
        if remove:
            target.pop(chosen, None)
        else:
            target[chosen] = value
        return doc

    return st.builds(apply, text, json_values, st.booleans(), st.booleans())


def deep(char: str) -> st.SearchStrategy[str]:
    return st.integers(50, 200_000).map(lambda n: char * n)


def file_bytes(valid: list[bytes]) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=300),
        st.sampled_from(valid),
        st.builds(lambda v, junk: v + junk, st.sampled_from(valid), st.binary(max_size=40)),
        deep("[").map(str.encode),
        st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")),
    )


# -- graph and swarm specs ---------------------------------------------------------------


@fuzz(CASES["graph"])
@given(
    spec=st.one_of(mutated(hint_graph(1).to_dict()), json_values),
    raw=st.none() | file_bytes([hint_graph(1).to_json().encode()]),
)
def test_graph_specs(server: FakeOpenAIServer, home: Path, spec: Any, raw: bytes | None) -> None:
    path = home / "g.json"
    path.write_bytes(raw if raw is not None else json.dumps(spec).encode())
    check(*cli("run", str(path), "-i", "question=q", "--json", *remote(server)))


@fuzz(CASES["swarm"])
@given(spec=mutated(SWARM), raw=st.none() | file_bytes([json.dumps(SWARM).encode()]))
def test_swarm_specs(server: FakeOpenAIServer, home: Path, spec: Any, raw: bytes | None) -> None:
    path = home / "s.json"
    path.write_bytes(raw if raw is not None else json.dumps(spec).encode())
    check(*cli("run", str(path), "-i", "question=q", "--json", *remote(server)))


# -- run configs -------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, dict | type(None)) else '"x"'


CONFIG_LINES = [
    'name = "fz"',
    "steps = 1",
    "[graph]",
    "hints = 1",
    "[data]",
    'train = "arith:train"',
    'gate = "arith:val"',
    'test = "arith:test"',
    "train_size = 2",
    "gate_size = 2",
    "test_size = 2",
    "[models]",
    'cache_mode = "off"',
    "[budget]",
    "calls = 0",
]


@fuzz(CASES["config"])
@given(
    line=st.integers(0, len(CONFIG_LINES)),
    key=st.sampled_from(["name", "steps", "path", "hints", "train", "x", "seed", "cache", "calls"])
    | text,
    value=json_values,
    raw=st.none() | file_bytes(["\n".join(CONFIG_LINES).encode()]) | deep("a = [").map(str.encode),
)
def test_configs(home: Path, line: int, key: str, value: Any, raw: bytes | None) -> None:
    lines = list(CONFIG_LINES)
    lines.insert(line, f"{json.dumps(key)} = {toml_value(value)}")
    path = home / "c.toml"
    path.write_bytes(raw if raw is not None else "\n".join(lines).encode("utf-8", "replace"))
    # [budget] calls = 0: a valid config stops before its first model call.
    check(*cli("optimize", str(path), "--out", str(home / "run"), "--overwrite"))


# -- wrong types: refused, never coerced nor ignored --------------------------------------

# A typed setting of a graph spec or a run config, and what its type is.
TYPED = [
    ("graph", ("nodes", -1, "max_tokens"), "int"),
    ("graph", ("nodes", -1, "temperature"), "float"),
    ("graph", ("nodes", -1, "requires_grad"), "bool"),
    ("graph", ("nodes", -1, "instruction"), "str"),
    ("graph", ("nodes", -1, "role"), "str"),
    ("graph", ("output",), "str"),
    ("config", ("steps",), "int"),
    ("config", ("seed",), "int"),
    ("config", ("data", "train_size"), "int"),
    ("config", ("data", "split_seed"), "int"),
    ("config", ("models", "concurrency"), "int"),
    ("config", ("models", "max_attempts"), "int"),
    ("config", ("models", "prompt_cache"), "bool"),
    ("config", ("optimizer", "batch_size"), "int"),
    ("config", ("optimizer", "use_gradients"), "bool"),
    ("config", ("optimizer", "retry_temperature"), "float"),
]
WRONG = {
    "int": st.booleans() | st.integers(0, 99).map(str) | st.floats(0.5, 9.5) | st.just([1]),
    "float": st.booleans() | st.sampled_from(["0.5", "1", "nan"]) | st.just([0.5]),
    "bool": st.integers(0, 1) | st.sampled_from(["true", "false", "yes"]) | st.just(1.0),
    "str": st.integers() | st.booleans() | st.just(["x"]) | st.just({"x": "y"}),
}
TYPED_CONFIG = {
    "name": "fz",
    "steps": 1,
    "seed": 0,
    "graph": {"hints": 1},
    "data": {"train": "arith:train", "gate": "arith:val", "test": "arith:test",
             "train_size": 2, "gate_size": 2, "test_size": 2, "split_seed": 0},
    "models": {"cache_mode": "off", "concurrency": 2, "max_attempts": 2, "prompt_cache": False},
    "optimizer": {"batch_size": 2, "use_gradients": True, "retry_temperature": 0.5},
    "budget": {"calls": 0},
}  # fmt: skip


def toml_text(doc: dict[str, Any]) -> str:
    """`doc` (scalars, then tables of scalars) as TOML."""

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return toml_value(v)

    lines = [f"{k} = {value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for key, table in doc.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f"{k} = {value(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


@fuzz(CASES["types"])
@given(field=st.sampled_from(TYPED), data=st.data())
def test_wrong_types_are_refused(
    server: FakeOpenAIServer, home: Path, field: tuple[str, tuple[Any, ...], str], data: Any
) -> None:
    kind, where, type_name = field
    value = data.draw(WRONG[type_name])
    doc: Any = hint_graph(1).to_dict() if kind == "graph" else json.loads(json.dumps(TYPED_CONFIG))
    if kind == "config":  # the loopback model: the config is valid but for the one value
        model = {"model": "fake-model", "base_url": server.base_url}
        doc["models"].update(forward=model, backward=model, optimizer=model)
    target = doc
    for part in where[:-1]:
        target = target[part]
    target[where[-1]] = value
    if kind == "graph":
        path = home / "typed.json"
        path.write_text(json.dumps(doc))
        argv = ["run", str(path), "-i", "question=q", "--json", *remote(server)]
    else:
        path = home / "typed.toml"
        path.write_text(toml_text(doc))
        argv = ["optimize", str(path), "--out", str(home / "typed-run"), "--overwrite"]
    code, err = cli(*argv)
    check(code, err, allowed=(2,))
    assert str(where[-1]) in err


# -- data files --------------------------------------------------------------------------

VALID_DATA = [
    b'{"question": "What is 2+2?", "answer": "4"}\n{"question": "1+1?", "answer": "2"}\n',
    b"question,answer\nWhat is 2+2?,4\n",
]


@fuzz(CASES["data"])
@given(
    raw=file_bytes(VALID_DATA) | st.integers(131_000, 140_000).map(lambda n: b'q,a\n"' + b"x" * n),
    suffix=st.sampled_from([".jsonl", ".csv"]),
)
def test_data_files(server: FakeOpenAIServer, home: Path, raw: bytes, suffix: str) -> None:
    graph = home / "data-graph.json"
    graph.write_text(hint_graph(1).to_json())
    path = home / f"d{suffix}"
    path.write_bytes(raw)
    check(
        *cli(
            "eval", str(graph), "-d", str(path), "-n", "2", "-o", str(home / "r.jsonl"),
            *remote(server),
        )
    )  # fmt: skip


# -- cache and output paths --------------------------------------------------------------

paths = st.one_of(
    st.sampled_from(["/dev/null", ".", "/", "g.json/x", "nested/dir/file", "/proc/self"]),
    st.text(st.characters(blacklist_characters="\x00"), min_size=1, max_size=60),
    st.integers(256, 6_000).map(lambda n: "p" * n),
)


def inside(path: str) -> str:
    """`path`, made relative (to the test's folder) unless it is one of the special paths
    whose refusal is tested: the fuzz never writes anywhere else."""
    if path.startswith("/") and path not in ("/dev/null", "/", "/proc/self"):
        return path.lstrip("/") or "x"
    return path


@fuzz(CASES["cache"])
@given(path=paths, command=st.sampled_from(["stats", "clear", "eval"]))
def test_cache_paths(server: FakeOpenAIServer, home: Path, path: str, command: str) -> None:
    path = inside(path)
    (home / "g.json").write_text(hint_graph(1).to_json())
    if command == "eval":
        argv = ["eval", "g.json", "-d", "arith:test", "-n", "1", "-o", str(home / "r.jsonl")]
        argv += ["--base-url", server.base_url, "--model", "fake-model", "--cache", path]
    else:
        argv = ["cache", command, "--cache", path]
    check(*cli(*argv))


@pytest.fixture(scope="module")
def finished_run(server: FakeOpenAIServer, home: Path) -> Path:
    config = home / "small.toml"
    model = f'{{ model = "fake-model", base_url = "{server.base_url}" }}'
    config.write_text(
        "\n".join(CONFIG_LINES[:12])
        + f'\nforward = {model}\nbackward = {model}\noptimizer = {model}\ncache_mode = "off"\n'
    )
    run_dir = home / "small-run"
    code, err = cli("optimize", str(config), "--out", str(run_dir))
    assert code == 0, err
    return run_dir


@fuzz(CASES["output"])
@given(path=paths, command=st.sampled_from(["export", "report", "eval"]))
def test_output_paths(
    server: FakeOpenAIServer, home: Path, finished_run: Path, path: str, command: str
) -> None:
    path = inside(path)
    (home / "g.json").write_text(hint_graph(1).to_json())
    if command == "eval":
        argv = ["eval", "g.json", "-d", "arith:test", "-n", "1", "-o", path, *remote(server)]
    else:
        argv = [command, str(finished_run), "-o", path]
    check(*cli(*argv))


# -- command lines -----------------------------------------------------------------------

COMMANDS = [
    ["run"],
    ["eval"],
    ["optimize"],
    ["resume"],
    ["export"],
    ["report"],
    ["cache", "stats"],
    ["cache", "clear"],
    ["models", "list"],
    ["models", "verify"],
    [],
]  # fmt: skip  (never `serve` nor `models install`: they would start a server or download)
OPTIONS = [
    "-i", "--input", "-d", "--data", "-n", "--limit", "--base-url", "--model", "-m", "--cache",
    "--cache-mode", "--max-attempts", "--seed", "--slots", "-c", "--concurrency", "-o", "--out",
    "--budget", "--max-error-rate", "--metric", "--input-cols", "--target-col", "--json",
    "--realise", "--overwrite", "-v", "--version", "--api-key-env", "--help",
]  # fmt: skip
tokens = st.one_of(
    st.sampled_from(OPTIONS),
    st.sampled_from(["g.json", "arith:test", "question=q", "calls=1", "http://[::1", "-1",
                     "http://127.0.0.1:99999/v1", "1e9", "nan", "file:x.jsonl", "gsm8k:test"]),
    text.filter(lambda t: "\x00" not in t),
)  # fmt: skip


@fuzz(CASES["argv"])
@given(command=st.sampled_from(COMMANDS), args=st.lists(tokens, max_size=8))
def test_command_lines(
    server: FakeOpenAIServer, home: Path, command: list[str], args: list[str]
) -> None:
    (home / "g.json").write_text(hint_graph(1).to_json())
    argv = [*command, *args]
    if command == ["optimize"]:
        argv += ["--out", str(home / "argv-run"), "--budget", "calls=0"]
    if command in (["run"], ["eval"]):
        argv += ["--max-attempts", "1", "-c", "1"] if command == ["eval"] else []
        argv += ["-n", "2"] if command == ["eval"] else []
        if "--base-url" not in argv:
            argv += ["--base-url", server.base_url, "--model", "fake-model"]
    # An ESC in an argument never reaches the terminal raw.
    code, err = cli(*argv)
    check(code, err, allowed=(0, 2, 3))
    assert not re.search("\x1b\\[[0-9;]*[A-Za-z]", err)
