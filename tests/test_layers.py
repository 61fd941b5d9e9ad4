"""The layer order of `src/semgrad` (pyproject's [tool.importlinter] contracts) holds.

A package imports only the layers below it and no modules import each other in a cycle,
not even through an import inside a function (grimp, which import-linter uses, reads every
import statement in a module). The second test shows the contracts bite: it breaks them
in a copy of the package.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("importlinter")

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
LINT = (
    "import sys; from importlinter.cli import lint_imports; "
    "sys.exit(lint_imports(config_filename=sys.argv[1], no_cache=True, no_logo=True))"
)


def lint_imports(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run import-linter with the project's contracts on the `semgrad` package under `src`."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [sys.executable, "-c", LINT, str(PYPROJECT)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_package_keeps_its_layers_and_has_no_cycles(tmp_path: Path) -> None:
    result = lint_imports(ROOT / "src", tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_function_local_cycle_or_an_upward_import_breaks_the_build(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "semgrad", src / "semgrad", ignore=shutil.ignore_patterns("__pycache__")
    )
    # The core importing its spec module inside a method: the cycle this contract removed.
    with (src / "semgrad" / "graph" / "core.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _load(path: str) -> object:\n")
        f.write("    from semgrad.graph.spec import load_graph\n\n    return load_graph(path)\n")
    # data reaching up into evaluation (a task building its metric).
    with (src / "semgrad" / "data" / "tasks.py").open("a", encoding="utf-8") as f:
        f.write("\n\ndef _metric() -> object:\n")
        f.write("    from semgrad.evaluation.metrics import NumericMatch\n\n")
        f.write("    return NumericMatch()\n")
    result = lint_imports(src, tmp_path)
    out = result.stdout
    assert result.returncode != 0, out
    assert "0 kept, 2 broken" in out, out
    assert "No cycles are allowed in semgrad.graph." in out
    assert "semgrad.data.tasks -> semgrad.evaluation.metrics" in out
