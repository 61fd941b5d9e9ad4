"""The curated top-level API: every name exported exists, nothing is exported by accident."""

from __future__ import annotations

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
        "text",
    }
    assert public - submodules == set(semgrad.__all__) - {"__version__"}


def test_import_does_no_work() -> None:
    # No model loaded, no environment read, no file written at import: importing is cheap.
    code = "import time; t=time.perf_counter(); import semgrad; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) < 5.0
    assert out.stderr == ""
