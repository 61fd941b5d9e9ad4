"""The real datasets: $SEMGRAD_DATA_DIR, else the repository's sibling ``shared/data``.

Tests that need them take the `data_dir` fixture. Where neither is there (a fresh clone),
they are skipped with a one-line reason; the loaders' parsing is still tested on small
files the tests write themselves (tests/data/conftest.py). A SEMGRAD_DATA_DIR that is set
but does not hold the datasets is a failure, not a skip: a path given on purpose is a
promise (`.ci/run` sets it, so CI runs every dataset test or fails).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("gsm8k", "bbh", "liar")


def _has_datasets(path: Path) -> bool:
    return all((path / name).is_dir() for name in DATASETS)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    configured = os.environ.get("SEMGRAD_DATA_DIR", "").strip()
    if configured:
        path = Path(configured).expanduser()
        if not _has_datasets(path):
            pytest.fail(
                f"SEMGRAD_DATA_DIR={configured} does not hold the datasets: expected "
                f"gsm8k/, bbh/ and liar/ folders there. Point it at the data directory, "
                f"or unset it to skip the dataset tests.",
                pytrace=False,
            )
        return path
    default = REPO_ROOT.parent / "shared" / "data"
    if not _has_datasets(default):
        pytest.skip(
            f"no data directory (SEMGRAD_DATA_DIR unset, {default} absent); set "
            f"SEMGRAD_DATA_DIR to the folder with gsm8k/, bbh/, liar/ to run this test"
        )
    return default
