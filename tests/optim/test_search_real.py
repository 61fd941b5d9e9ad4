"""The default method (the candidate search) on a bundled task with the real embedded
models (slow tier: `-m real`; `-m "not real"` skips it). Fails, not skips, when a model is
missing. It uses its own response cache, so the models really run."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from semgrad.optim.config import config_from_dict
from semgrad.optim.records import read_history
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.trainer import optimize

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]


def test_the_default_method_improves_held_out_accuracy_on_reviews(tmp_path: Path) -> None:
    """Reviews must be labelled POS/NEG, which no instruction says (configs/reviews.toml,
    whose paper-method run goes 0 % -> 100 % held out). The default method, from the same
    graph and models with a fresh cache, must raise held-out accuracy from at most 20 % by
    at least 30 points.

    Measured 2026-12-02 (one step, three candidates): the blamed node's edit and the full
    edit scored 0 of 6 on the screen; the labelled POS/NEG demonstrations for `label`
    scored 6 of 6, then 20 of 20 on the gate, and held-out accuracy went 0 % -> 100 %
    (17 min on 2 shared cores). With two candidates (no demonstrations) it stayed at 0 %."""
    source = REPO / "configs" / "reviews.toml"
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    data["graph"]["path"] = str((source.parent / data["graph"]["path"]).resolve())
    data["models"]["cache"] = str(tmp_path / "cache.sqlite")
    # The default method, said explicitly, sized for CI (one step, three candidates: the edit
    # of the node the gradients blame, the full edit and a demonstrations change; a 4-item
    # screen).
    data["optimizer"] = {"method": "search", "batch_size": 2, "candidates": 3, "screen_size": 4}
    data["steps"] = 1
    config = config_from_dict(data, base_dir=str(source.parent))
    assert config.optimizer.method == "search"

    result = optimize(config, tmp_path / "run")
    assert result.status == "finished", result.message
    assert result.initial_test is not None and result.final_test is not None
    assert result.initial_test <= 0.2, result
    assert result.final_test >= result.initial_test + 0.3, result
    steps = read_history(RunFiles(tmp_path / "run").history)
    assert any(s.accepted for s in steps)
    winner = next(s for s in steps if s.accepted)
    assert winner.method == "search" and winner.decision is not None
    assert winner.decision.wins - winner.decision.losses >= 1
    # The models really ran (a fresh cache), not replies stored by an earlier run.
    assert (tmp_path / "cache.sqlite").is_file()
    for phase in ("forward", "backward", "optimizer", "evaluation"):
        assert result.spend[phase]["calls"] > 0, phase
