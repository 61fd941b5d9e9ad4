"""The public surface of semgrad.data: an explicit, complete, importable __all__."""

from __future__ import annotations

import importlib
import types

import pytest

from semgrad.data import arith, example, files, loaders, splits, tasks

data_package = importlib.import_module("semgrad.data")


@pytest.mark.parametrize("module", [data_package, arith, example, files, loaders, splits, tasks])
def test_all_is_sorted_unique_and_importable(module: types.ModuleType) -> None:
    names = list(module.__all__)
    assert len(names) == len(set(names))
    assert names == sorted(names, key=lambda n: (not n.isupper(), n[0].islower(), n))
    for name in names:
        assert hasattr(module, name), name


def test_package_exports_the_public_names_of_its_modules() -> None:
    exported = set(data_package.__all__)
    for module in (example, splits, tasks):
        assert set(module.__all__) <= exported, module.__name__
    assert {"load_gsm8k", "load_bbh", "list_bbh_tasks", "load_liar", "load_hf"} <= exported
    assert {"resolve_data_dir", "generate_arith", "Task", "load_task", "list_tasks"} <= exported
