"""The decide section of RESULTS.md: per task, every method's test accuracy with its
interval, paired differences against its own initial program and against semgrad's
default, requests used of the budget, and wall time; all read from the committed cell
files in benchmarks/decide/results/ (nothing here calls a model).

Intervals are the hierarchical paired bootstrap of BENCHMARKS.md §4 (seeds, then items
within seed; 2,000 replicates; seeded): a difference is paired per seed and item.

Per task it also draws test accuracy against the forward requests each cell used
(``accuracy_svg``); ``make_results.py`` writes it next to the cells as
``accuracy_vs_requests.svg``.
"""

from __future__ import annotations

import gzip
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from semgrad.optim.config import LATER_SEARCH_SETTINGS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stats import bootstrap_mean, ci, pct, verdict
from svgplot import COLORS, MARKERS, axes, esc, header, marker, nice_step

from semgrad.llm.budget import REQUEST_KINDS

HERE = Path(__file__).resolve().parent
PLOT_NAME = "accuracy_vs_requests.svg"
DEFAULT_METHOD = "search"
LABELS = {
    "initial": "initial program (no optimization)",
    "search": "semgrad default: gradient-guided search",
    "paper": "the paper's protocol (SGD, strict train gate)",
    "search-independent": "ablation: search with independent backward (no siblings)",
    "search-nograd": "ablation: search without gradients",
    "search-nogate": "ablation: search without the gate (the screen decides)",
    "search-pareto": "search with Pareto parents (GEPA-style pool)",
    "search-fallback": "search with the next blamed node's edit when the first's changes nothing",
    "demos-teacher": "demonstrations only, the teacher's worked answers among them",
    # Peers (benchmarks/peers adapters through the decide runner's serving path).
    "textgrad": "TextGrad (TGD)",
    "copro": "DSPy COPRO",
    "miprov2": "DSPy MIPROv2",
    "gepa": "DSPy GEPA",
    "bootstrap-rs": "DSPy BootstrapFewShotWithRandomSearch",
    "trace": "Trace (OptoPrime)",
    "identity": "initial program through the peers' proxy (serving-path check)",
    "dspy-initial": "initial program through DSPy's prompt layout (the DSPy optimizers' baseline)",
}
# A method whose "own initial program" is not semgrad's: the same instructions sent in its
# library's prompt layout (TextGrad's and Trace's adapters send semgrad's messages).
# Cells of an unoptimized program: no Δ against semgrad's default is meant for them.
INITIAL_METHODS = ("initial", "identity", "dspy-initial")
OWN_INITIAL = {m: "dspy-initial" for m in ("copro", "miprov2", "gepa", "bootstrap-rs")}


def load_cells(task_dir: Path) -> dict[str, dict[int, dict[str, Any]]]:
    """The cells of a task by method and seed. A cell run counting every request (no
    "counting" field) gets "distinct_used": its distinct requests by role, from its log."""
    cells: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(task_dir.glob("*__seed*.json")):
        record = json.loads(path.read_text())
        log = path.with_name(path.name.removesuffix(".json") + ".requests.jsonl.gz")
        if record.get("counting", "every") == "every" and log.exists():
            record["distinct_used"] = distinct_used(record, log)
        cells.setdefault(record["method"], {})[int(record["seed"])] = record
    return cells


def distinct_used(record: dict[str, Any], log: Path) -> dict[str, int]:
    """Distinct requests among the `used` ones of each role (the first in the log: the
    optimization's; the test scoring's follow them)."""
    keys: dict[str, list[str]] = {"forward": [], "strong": []}
    with gzip.open(log, "rt", encoding="utf-8") as f:
        for line in f:
            entry = json.loads(line)
            role = REQUEST_KINDS.get(entry.get("phase", ""), "forward")
            keys[role].append(entry["key"])
    used = record.get("used", {})
    return {role: len(set(k[: int(used.get(role, 0))])) for role, k in keys.items()}


def _diff(a: dict[int, dict[str, Any]], b: dict[int, dict[str, Any]]) -> list[list[float]]:
    """Per seed and item, a minus b; b may be one seed-independent cell (the initial)."""
    rows = []
    for seed, rec in sorted(a.items()):
        other = b.get(seed) or next(iter(b.values()))
        if other["test_ids"] != rec["test_ids"]:
            raise ValueError(f"{rec['method']} and {other['method']} differ in test items")
        rows.append([x - y for x, y in zip(rec["test_scores"], other["test_scores"], strict=True)])
    return rows


def _tokens(record: dict[str, Any]) -> str:
    """The optimization's tokens (prompt and completion, cache hits included) by role, in
    thousands; test scoring is not in them."""
    by_role = record.get("requests", {})
    return "/".join(
        f"{by_role.get(role, {}).get('tokens', 0) / 1000:.0f}" for role in ("forward", "strong")
    )


def provenance_line(cells: dict[str, dict[int, dict[str, Any]]]) -> str:
    """Where and when the task's cells ran: machines, dates and commits."""
    records = [r for runs in cells.values() for r in runs.values()]
    machines = sorted(
        {
            f"{m.get('cpus', '?')} CPUs, Python {m.get('python', '?')}"
            for m in (r.get("machine") or {} for r in records)
        }
    )
    dates = sorted({str(r.get("date", "?")) for r in records})
    span = dates[0] if len(dates) == 1 else f"{dates[0]} to {dates[-1]}"
    return (
        f"Cells run on {'; '.join(machines)} ({len(records)} cells, {span}; the commit each "
        "ran at is in its results file); wall times are on a machine often shared with "
        "another cell."
    )


def _used(record: dict[str, Any], role: str) -> str:
    """Requests used of a role; a cell that counted every request is marked † with its
    distinct count."""
    n = record.get("used", {}).get(role, 0)
    distinct = record.get("distinct_used")
    if distinct is None or not n:
        return str(n)
    return f"{n}† ({distinct[role]} distinct)"


# The marks of a search cell run before a later setting (`LATER_SEARCH_SETTINGS`, oldest
# first; a cell earns the earliest mark its settings lack), each with its footnote.
_LATER_MARKS = {
    "§": "§ the search as it was before `final_answer` (2026-12-03): its optimizer saw only "
    "the backward pass's feedback for an upstream node, not the feedback on the final "
    "answer; to be run again.",
    "¶": "¶ the search as it was before `gate_held_out` (2026-12-03): its gate decided on "
    "every gate item, counting again the ones its screen had used to pick the "
    "candidate; to be run again.",
    "‖": "‖ the search as it was before `skip_shown` (2026-12-03): a demonstrations "
    "candidate was scored, and credited, on minibatch items whose own question and answer "
    "its demonstrations showed; to be run again.",
}
_LATER_SETTINGS = tuple(zip(LATER_SEARCH_SETTINGS, _LATER_MARKS, strict=True))


def _legacy(record: dict[str, Any]) -> str:
    """"‡" for a search cell run before cells recorded their optimizer settings (every
    survivor of the screen gated), "§" for one run before `final_answer` (its optimizer did
    not see the final answer for upstream nodes), "¶" for one run before `gate_held_out`
    (its gate counted the items its screen had used), "‖" for one run before `skip_shown`,
    else ""."""
    if not str(record.get("method", "")).startswith("search"):
        return ""
    settings = record.get("optimizer")
    if settings is None:
        return "‡"
    return next((mark for key, mark in _LATER_SETTINGS if key not in settings), "")


def method_order(cells: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    """The methods in the order of `LABELS` (the initial program, semgrad's default, the
    paper's protocol, the ablations, the peers, the serving-path check), unknown ones after
    it A-Z."""
    known = [m for m in LABELS if cells.get(m)]
    return known + sorted(m for m in cells if m not in LABELS and cells[m])


def plot_caption(task: str) -> list[str]:
    """The Markdown that shows a task's plot (RESULTS.md sits in benchmarks/) and says how
    to read it."""
    return [
        f"![{esc(task)}: test accuracy against forward requests]"
        f"(decide/results/{quote(task)}/{PLOT_NAME})",
        "",
        "Test accuracy against the forward-model requests each cell's optimization counted "
        "against its budget (as in the table; the initial program sits at 0): one point per "
        "method and "
        "seed, its bar the 95 % percentile bootstrap interval over that cell's test items "
        "(2,000 replicates, seed 0); points at the same request count are spread a few "
        "pixels sideways. Dashed: the initial program's accuracy (mean over its cells); "
        "dotted: the forward budget.",
        "",
    ]


def task_section(task: str, cells: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    initial = cells.get("initial")
    if not initial:
        return [f"### {task}", "", "No initial-program cell yet.", "", *plot_caption(task)]
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
        "(budget) | tokens, forward / strong (k) | status | wall (min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for method in method_order(cells):
        runs = cells[method]
        acc = bootstrap_mean([r["test_scores"] for _, r in sorted(runs.items())])
        if method == "initial":
            d_init = d_def = (float("nan"),) * 3
        else:
            d_init = bootstrap_mean(_diff(runs, cells.get(OWN_INITIAL.get(method, "")) or initial))
            default = cells.get(DEFAULT_METHOD)
            d_def = (
                bootstrap_mean(_diff(runs, default))
                if default and method != DEFAULT_METHOD
                else (float("nan"),) * 3
            )
        budget = next(iter(runs.values())).get("budget", {})
        fwd = "/".join(_used(r, "forward") for _, r in sorted(runs.items()))
        strong = "/".join(_used(r, "strong") for _, r in sorted(runs.items()))
        tokens = "; ".join(_tokens(r) for _, r in sorted(runs.items()))
        status = "/".join(r.get("status", "") + _legacy(r) for _, r in sorted(runs.items()))
        wall = "/".join(f"{r['wall_s'] / 60:.0f}" for _, r in sorted(runs.items()))
        lines.append(
            f"| {LABELS.get(method, method)} | {len(runs)} | {ci(*acc)} | "
            f"{ci(*d_init, signed=True)} | {verdict(d_init[1], d_init[2])} | "
            f"{ci(*d_def, signed=True)} | {verdict(d_def[1], d_def[2])} | "
            f"{fwd} ({budget.get('forward', '—')}) | {strong} ({budget.get('strong', '—')}) | "
            f"{tokens} | {status} | {wall} |"
        )
    lines += ["", provenance_line(cells), ""]
    if any("distinct_used" in r for runs in cells.values() for r in runs.values()):
        lines += [
            "† run counting every request, the cell's repeats of its own requests included "
            "(the first cells); in brackets the distinct requests among them, what the "
            "budget counts now.",
            "",
        ]
    marks = {_legacy(r) for runs in cells.values() for r in runs.values()}
    if "‡" in marks:
        lines += [
            "‡ the search as it was before 2026-12-03: every survivor of the screen went to "
            "the gate (now only the best one, `gate_survivors = 1`); to be run again.",
            "",
        ]
    for mark, footnote in _LATER_MARKS.items():
        if mark in marks:
            lines += [footnote, ""]
    default_seeds = set(cells.get(DEFAULT_METHOD, {}))
    fewer = [
        LABELS.get(m, m)
        for m in method_order(cells)
        if m not in INITIAL_METHODS and m != DEFAULT_METHOD and set(cells[m]) < default_seeds
    ]
    if fewer:
        lines += [
            f"Δ vs {DEFAULT_METHOD} of {', '.join(fewer)}: paired with the default's cells of "
            "the same seeds only (seed 0 for a one-seed method), not with its mean over seeds.",
            "",
        ]
    own = sorted(m for m in cells if m in OWN_INITIAL)
    if own:
        lines += [
            f"Δ vs its initial of {', '.join(LABELS[m] for m in own)}: "
            + (
                "against the initial program through DSPy's prompt layout (`dspy-initial`), "
                "whose own Δ is against semgrad's initial program (the effect of the layout)."
                if cells.get("dspy-initial")
                else "against semgrad's initial program; their own baseline (`dspy-initial`, "
                "the initial program through DSPy's prompt layout) is not run yet."
            ),
            "",
        ]
    return [*lines, *plot_caption(task)]


def accuracy_svg(task: str, cells: dict[str, dict[int, dict[str, Any]]]) -> str:
    """Test accuracy (%) against forward requests used, one point per (method, seed) with
    its 95 % bootstrap interval over test items as a bar; the initial program's accuracy
    dashed, the forward budget dotted. The same cells give the same bytes."""
    methods = method_order(cells)
    labels = {m: LABELS.get(m, m) for m in methods}
    style = {m: (COLORS[i % len(COLORS)], MARKERS[i % len(MARKERS)]) for i, m in enumerate(methods)}
    points = []  # (method, seed, requests, accuracy, low, high)
    for m in methods:
        for seed, r in sorted(cells[m].items()):
            acc, lo, hi = bootstrap_mean([r["test_scores"]])
            if acc == acc:  # a cell without test scores has nothing to draw
                points.append((m, seed, int(r.get("used", {}).get("forward", 0)), acc, lo, hi))
    budgets = sorted(
        {int(r["budget"]["forward"]) for runs in cells.values() for r in runs.values()
         if "forward" in r.get("budget", {})}
    )  # fmt: skip
    initial = [p[3] for p in points if p[0] == "initial"]
    base = sum(initial) / len(initial) if initial else None

    legend_w = 40 + math.ceil(6.5 * max([len(lab) for lab in labels.values()] + [30]))
    w, left, top, pw, ph, bottom = 64 + 540 + legend_w, 64, 40, 540, 320, 56
    h = top + ph + bottom
    widest = max([p[2] for p in points] + budgets + [1])
    step = max(1.0, nice_step(widest, 6))
    xmax = step * math.ceil(1.08 * widest / step)  # room right of the budget line

    def sx(x: float) -> float:
        return left + pw * x / xmax

    def sy(y: float) -> float:
        return top + ph * (1 - y)

    parts = [
        *header(w, h, f"{task}: test accuracy against forward requests", left, 24),
    ]
    for i in range(11):  # y grid every 10 points, labelled every 20
        y = i / 10
        parts.append(
            f'<line x1="{left}" y1="{sy(y):.1f}" x2="{left + pw}" y2="{sy(y):.1f}" '
            f'stroke="{"#ddd" if i % 2 == 0 else "#f0f0f0"}"/>'
        )
        if i % 2 == 0:
            parts.append(
                f'<text x="{left - 8}" y="{sy(y) + 4:.1f}" text-anchor="end">{10 * i}</text>'
            )
    ticks = round(xmax / step)
    for i in range(ticks + 1):
        x = step * i
        parts.append(
            f'<line x1="{sx(x):.1f}" y1="{top + ph}" x2="{sx(x):.1f}" y2="{top + ph + 5}" '
            f'stroke="black"/><text x="{sx(x):.1f}" y="{top + ph + 19}" '
            f'text-anchor="middle">{x:,.0f}</text>'
        )
    parts += [
        *axes(left, top, pw, ph),
        f'<text x="{left + pw / 2}" y="{h - 12}" text-anchor="middle">forward-model requests '
        "used by the optimization (cache hits included)</text>",
        f'<text x="18" y="{top + ph / 2}" text-anchor="middle" '
        f'transform="rotate(-90 18 {top + ph / 2})">test accuracy (%)</text>',
    ]
    for b in budgets:
        parts.append(
            f'<line class="budget" x1="{sx(b):.1f}" y1="{top}" x2="{sx(b):.1f}" '
            f'y2="{top + ph}" stroke="#444" stroke-width="1.5" stroke-dasharray="2 3"/>'
            f'<text x="{sx(b) + 4:.1f}" y="{top + 12}" fill="#444">budget {b:,}</text>'
        )
    if base is not None:
        parts.append(
            f'<line class="initial" x1="{left}" y1="{sy(base):.1f}" x2="{left + pw}" '
            f'y2="{sy(base):.1f}" stroke="#444" stroke-width="1.5" stroke-dasharray="7 4"/>'
        )
    # Points at the same request count are spread sideways so that none hides another.
    same: dict[int, list[int]] = {}
    for i, p in enumerate(points):
        same.setdefault(p[2], []).append(i)
    shift = {i: (k - (len(g) - 1) / 2) * 9 for g in same.values() for k, i in enumerate(g)}
    for i, (m, seed, used, acc, lo, hi) in enumerate(points):
        color, kind = style[m]
        x = sx(used) + shift[i]
        tip = (
            f"{labels[m]}, seed {seed}: {100 * acc:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"after {used:,} forward requests"
        )
        parts.append(
            f'<g class="cell" data-method="{esc(m)}" data-seed="{seed}"><title>{esc(tip)}</title>'
            f'<path class="interval" d="M{x - 3:.1f},{sy(lo):.1f}H{x + 3:.1f}'
            f'M{x:.1f},{sy(lo):.1f}V{sy(hi):.1f}M{x - 3:.1f},{sy(hi):.1f}H{x + 3:.1f}" '
            f'stroke="{color}" stroke-width="1.5" fill="none"/>'
            + marker(kind, x, sy(acc), 5, color, 'class="point" stroke="white" stroke-width="0.8"')
            + "</g>"
        )
    lx = left + pw + 24
    for i, m in enumerate(methods):
        color, kind = style[m]
        y = top + 10 + 20 * i
        parts.append(
            f'<g class="legend-method" data-method="{esc(m)}">'
            + marker(kind, lx, y, 5, color)
            + f'<text x="{lx + 12}" y="{y + 4}">{esc(labels[m])}</text></g>'
        )
    y = top + 10 + 20 * len(methods) + 8
    if base is not None:
        parts.append(
            f'<line x1="{lx - 8}" y1="{y}" x2="{lx + 8}" y2="{y}" stroke="#444" '
            f'stroke-width="1.5" stroke-dasharray="7 4"/><text x="{lx + 12}" y="{y + 4}">'
            f"initial program, {100 * base:.1f} %</text>"
        )
        y += 20
    if budgets:
        parts.append(
            f'<line x1="{lx - 8}" y1="{y}" x2="{lx + 8}" y2="{y}" stroke="#444" '
            f'stroke-width="1.5" stroke-dasharray="2 3"/>'
            f'<text x="{lx + 12}" y="{y + 4}">forward budget</text>'
        )
        y += 20
    parts.append(
        f'<text x="{lx - 8}" y="{y + 8}" fill="#555">bars: 95 % bootstrap interval</text>'
        f'<text x="{lx - 8}" y="{y + 24}" fill="#555">over test items, per cell</text>'
    )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def tasks(results: Path) -> Iterator[tuple[Path, dict[str, dict[int, dict[str, Any]]]]]:
    """Each task folder with its cells, A-Z; a task whose first cell has not finished
    has nothing to show yet and is left out."""
    for task_dir in sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []:
        cells = load_cells(task_dir)
        if cells:
            yield task_dir, cells


def decide_section(results: Path = HERE / "results") -> list[str]:
    out: list[str] = []
    for task_dir, cells in tasks(results):
        out += task_section(task_dir.name, cells)
    return out or ["No decide cells have been run yet."]


def decide_plots(results: Path = HERE / "results") -> dict[Path, str]:
    """The plot of every task with cells, by the path it is written to."""
    return {d / PLOT_NAME: accuracy_svg(d.name, cells) for d, cells in tasks(results)}
