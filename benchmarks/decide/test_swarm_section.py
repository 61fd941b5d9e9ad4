"""RESULTS.md's swarm section from synthetic results files (no model): runs grouped by
config (the decisive size first), and a paired interval only for runs that recorded per-item
test scores of the initial swarm and of the final graph."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modload import load_module

ROOT = Path(__file__).resolve().parent.parent


make_results = load_module("make_results_for_swarm", ROOT / "make_results.py")
EDGES = ["truthful_1->decision", "adversary_1->decision"]


def _run(name: str, seed: int, test_size: int, *, paired: bool) -> dict[str, Any]:
    probs = {"truthful_1->decision": 0.9, "adversary_1->decision": 0.2}
    run: dict[str, Any] = {
        "seed": seed,
        "config": {
            "name": f"{name}-seed{seed}",
            "steps": 3,
            "data": {
                "test": "bbh:toy:test",
                "train_size": 4,
                "gate_size": 4,
                "test_size": test_size,
            },
            "edges": {"samples": 2, "batch_size": 2, "lr": 0.2, "threshold": 0.5},
            "models": {"forward": {"model": "m"}},
        },
        "initial_test": 0.5,
        "final_test": 0.75,
        "edges": {"probabilities": probs, "kept": ["truthful_1->decision"]},
        "probabilities_by_step": [probs] * 3,
        "wall_s": 60.0,
    }
    if paired:
        # The final graph wins 3 of every 4 items where the initial swarm lost, never loses.
        run["initial_test_scores"] = [1.0, 0.0, 0.0, 0.0] * (test_size // 4)
        run["final_test_scores"] = [1.0, 1.0, 1.0, 0.0] * (test_size // 4)
        run["config_path"] = "benchmarks/swarm/big.toml"
    return run


def test_runs_with_per_item_scores_go_to_the_decide_section_with_a_paired_interval() -> None:
    results = [
        *(_run("small", s, 8, paired=False) for s in range(2)),
        *(_run("big", s, 100, paired=True) for s in range(3)),
        {"name": "big", "test_size": 100, "agents": {e: {"accuracy": 0.5} for e in EDGES},
         "all_edges_accuracy": 0.5},
    ]  # fmt: skip
    decisive = "\n".join(make_results.swarm_section(results, decisive=True))
    assert "#### big" in decisive and "small" not in decisive
    assert "--config benchmarks/swarm/big.toml --seeds 0,1,2" in decisive
    assert "(100 items, 3 seeds" in decisive and "**win**" in decisive
    assert "big__agents.json" in decisive and "swarm_edges_big.svg" in decisive
    # The earlier runs have no per-item scores: said plainly, no interval, their own plot.
    earlier = "\n".join(make_results.swarm_section(results, decisive=False))
    assert "### small" in earlier and "big" not in earlier
    assert "no paired interval" in earlier and "**" not in earlier
    assert "swarm_edges_small.svg" in earlier


def test_no_runs_no_section() -> None:
    assert make_results.swarm_section([], decisive=True) == []
    assert make_results.swarm_section([], decisive=False) == []
