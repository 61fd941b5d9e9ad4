"""The real datasets: $SEMGRAD_DATA_DIR, else the repository's sibling ``shared/data``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    configured = os.environ.get("SEMGRAD_DATA_DIR", "").strip()
    path = Path(configured) if configured else REPO_ROOT.parent / "shared" / "data"
    if not (path / "gsm8k").is_dir() or not (path / "bbh").is_dir() or not (path / "liar").is_dir():
        pytest.fail(
            f"the datasets are not at {path} (from "
            f"{'SEMGRAD_DATA_DIR' if configured else 'the default ../shared/data'}): expected "
            f"gsm8k/, bbh/ and liar/ folders there. Set SEMGRAD_DATA_DIR to the data directory.",
            pytrace=False,
        )
    return path
