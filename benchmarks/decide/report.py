"""The decide section of RESULTS.md: per task, every method's test accuracy with its
interval, paired differences against its own initial program and against semgrad's
default, requests used of the budget, and wall time; all read from the committed cell
files in benchmarks/decide/results/ (nothing here calls a model).

Intervals are the hierarchical paired bootstrap of BENCHMARKS.md §4 (seeds, then items
within seed; 2,000 replicates; seeded): a difference is paired per seed and item.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stats import bootstrap_mean, ci, pct, verdict

HERE = Path(__file__).resolve().parent
DEFAULT_METHOD = "search"
LABELS = {
    "initial": "initial program (no optimization)",
    "search": "semgrad default: gradient-guided search",
    "paper": "the paper's protocol (SGD, strict train gate)",
}


def load_cells(task_dir: Path) -> dict[str, dict[int, dict[str, Any]]]:
    cells: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(task_dir.glob("*__seed*.json")):
        record = json.loads(path.read_text())
        cells.setdefault(record["method"], {})[int(record["seed"])] = record
    return cells


def _diff(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> list[list[float]]:
    """Per seed and item, a minus b; b may be one seed-independent cell (the initial)."""
    rows = []
    for seed, rec in sorted(a.items()):
        other = b.get(seed) or next(iter(b.values()))
        if other["test_ids"] != rec["test_ids"]:
            raise ValueError(f"{rec['method']} and {other['method']} differ in test items")
        rows.append([x - y for x, y in zip(rec["test_scores"], other["test_scores"], strict=True)])
    return rows


def task_section(task: str, cells: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    initial = cells.get("initial")
    if not initial:
        return [f"### {task}", "", "No initial-program cell yet.", ""]
    first = next(iter(initial.values()))
    n = len(first["test_ids"])
    majority = Counter(first.get("test_targets", [])).most_common(1)
    majority_rate = majority[0][1] / n if majority else float("nan")
    lines = [
        f"### {task}",
        "",
        f"{n} test items; splits {first['sizes']['train']} train / {first['sizes']['gate']} "
        f"validation (gate) / {n} test; majority-class rate of the test split "
        f"{pct(majority_rate)} %. Smallest paired effect resolvable at 95 % with a 25 % "
        f"disagreement rate: about ±{200 * (0.25 / n) ** 0.5:.0f} points.",
        "",
        "| method | seeds | test accuracy % [95 % CI] | Δ vs its initial | verdict | "
        f"Δ vs {DEFAULT_METHOD} | verdict | forward requests (budget) | strong requests "
        "(budget) | status | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    first_three = ("initial", DEFAULT_METHOD, "paper")
    order = [*first_three, *sorted(m for m in cells if m not in first_three)]
    for method in order:
        runs = cells.get(method)
        if not runs:
            continue
        acc = bootstrap_mean([r["test_scores"] for _, r in sorted(runs.items())])
        if method == "initial":
            d_init = d_def = (float("nan"),) * 3
        else:
            d_init = bootstrap_mean(_diff(runs, initial))
            default = cells.get(DEFAULT_METHOD)
            d_def = (
                bootstrap_mean(_diff(runs, default))
                if default and method != DEFAULT_METHOD
                else (float("nan"),) * 3
            )
        used = [r.get("used", {}) for r in runs.values()]
        budget = next(iter(runs.values())).get("budget", {})
        fwd = "/".join(str(u.get("forward", 0)) for u in used)
        strong = "/".join(str(u.get("strong", 0)) for u in used)
        status = "/".join(r.get("status", "") for _, r in sorted(runs.items()))
        wall = "/".join(f"{r['wall_s'] / 60:.0f}" for _, r in sorted(runs.items()))
        lines.append(
            f"| {LABELS.get(method, method)} | {len(runs)} | {ci(*acc)} | "
            f"{ci(*d_init, signed=True)} | {verdict(d_init[1], d_init[2])} | "
            f"{ci(*d_def, signed=True)} | {verdict(d_def[1], d_def[2])} | "
            f"{fwd} ({budget.get('forward', '—')}) | {strong} ({budget.get('strong', '—')}) | "
            f"{status} | {wall} |"
        )
    lines.append("")
    return lines


def decide_section() -> list[str]:
    out: list[str] = []
    results = HERE / "results"
    if not results.exists():
        return ["No decide cells have been run yet."]
    for task_dir in sorted(p for p in results.iterdir() if p.is_dir()):
        cells = load_cells(task_dir)
        if cells:  # a task whose first cell has not finished has nothing to show yet
            out += task_section(task_dir.name, cells)
    return out or ["No decide cells have been run yet."]
