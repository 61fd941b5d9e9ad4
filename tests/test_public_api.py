"""The curated top-level API: every name exported exists, nothing is exported by accident."""

from __future__ import annotations

import inspect
import subprocess
import sys

import semgrad


def test_all_names_exist_and_are_sorted() -> None:
    for name in semgrad.__all__:
        assert hasattr(semgrad, name), name
    assert len(set(semgrad.__all__)) == len(semgrad.__all__)


def test_public_names_are_exactly_all() -> None:
    public = {n for n in vars(semgrad) if not n.startswith("_")}
    submodules = {
        "atomic",
        "cli",
        "data",
        "errors",
        "evaluation",
        "execution",
        "graph",
        "llm",
        "prompts",
        "autograd",
        "optim",
        "report",
        "swarm",
        "telemetry",
        "text",
        "userfiles",
    }
    assert public - submodules == set(semgrad.__all__) - {"__version__"}


def test_import_does_no_work() -> None:
    # No model loaded, no environment read, no file written at import: importing is cheap.
    # Checked by what gets imported, not by a wall-clock bound (the machine may be busy).
    code = (
        "import sys, semgrad; "
        "print(','.join(m for m in ('xllamacpp', 'sqlite3', 'datasets', 'opentelemetry') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() in ("", "sqlite3"), out.stdout
    assert out.stderr == ""


def test_return_types_are_exported_with_their_functions() -> None:
    # What a public function returns can be named (annotated, isinstance-checked) from
    # the top level, without reaching into submodules.
    for name in (
        "BackwardCall",
        "BackwardResult",
        "EvalResult",
        "ExampleResult",
        "GradientEntry",
        "NodeTrace",
        "Proposal",
        "Response",
        "Score",
        "Trace",
    ):
        assert name in semgrad.__all__, name


def test_nothing_private_is_exported() -> None:
    for name in semgrad.__all__:
        assert not name.startswith("_") or name == "__version__", name
        obj = getattr(semgrad, name)
        module = getattr(obj, "__module__", None) or ""
        assert not any(part.startswith("_") for part in module.split(".")), (name, module)
    assert "parameter_gradients" not in vars(semgrad)


def test_sync_and_async_names_are_consistent() -> None:
    # A coroutine without the "a" prefix is an engine primitive; "aname" is the coroutine
    # whose sync door is "name", and the door is not a coroutine.
    primitives = {"forward", "forward_many", "backward", "backward_many"}
    coroutines = {
        n for n in semgrad.__all__ if inspect.iscoroutinefunction(getattr(semgrad, n, None))
    }
    for name in coroutines - primitives:
        assert name.startswith("a") and name[1:] in semgrad.__all__, name
        assert not inspect.iscoroutinefunction(getattr(semgrad, name[1:])), name
    for name in primitives:
        assert name in coroutines, name
    for name in semgrad.__all__:
        if name.startswith("a") and name[1:] in semgrad.__all__:
            assert name in coroutines, name
