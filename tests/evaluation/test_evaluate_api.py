"""The metric part of semgrad.evaluation's public surface."""

from __future__ import annotations

import importlib
import subprocess
import sys

from semgrad.evaluation import metrics

# By module name: the top-level package may bind the attribute `semgrad.evaluation` to the
# evaluate() function, which shadows the subpackage for attribute access.
evaluate_package = importlib.import_module("semgrad.evaluation")


def test_metrics_all_is_importable_and_exported() -> None:
    exported = list(evaluate_package.__all__)
    assert len(set(exported)) == len(exported)
    for name in metrics.__all__:
        assert hasattr(metrics, name), name
        assert name in exported, name
        assert getattr(evaluate_package, name) is getattr(metrics, name)


def test_importing_data_and_evaluate_in_either_order_does_not_cycle() -> None:
    for first, second in (
        ("semgrad.evaluation", "semgrad.data"),
        ("semgrad.data", "semgrad.evaluation"),
    ):
        code = f"import importlib; importlib.import_module({first!r}); importlib.import_module({second!r})"
        subprocess.run([sys.executable, "-c", code], check=True)
