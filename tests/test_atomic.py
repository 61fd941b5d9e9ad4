"""semgrad.atomic: the one atomic-write helper (run files, eval results, model files)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from semgrad.atomic import atomic_open, atomic_write_json, atomic_write_text


def test_a_write_replaces_the_file_whole_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "run.json"
    atomic_write_json(target, {"step": 1, "name": "é"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"step": 1, "name": "é"}
    assert target.read_text(encoding="utf-8").endswith("\n")
    assert stat.S_IMODE(target.stat().st_mode) == 0o644  # shared, not mkstemp's 0600
    atomic_write_text(target, "two")
    assert target.read_text(encoding="utf-8") == "two"
    assert [p.name for p in target.parent.iterdir()] == ["run.json"]


def test_a_failure_inside_the_block_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "model.gguf"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="checksum"), atomic_open(target, "wb") as f:
        f.write(b"half of the new")
        raise ValueError("checksum mismatch")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["model.gguf"]


def test_a_device_is_never_replaced() -> None:
    with pytest.raises(OSError, match="not a regular file"):
        atomic_write_text("/dev/null", "x")
    assert Path("/dev/null").is_char_device()
