"""The decide plot from synthetic cells (no model): test accuracy against forward requests,
a point and an interval bar per cell, a legend entry per method, the same bytes every
time, and RESULTS.md's decide section pointing at it."""

from __future__ import annotations

import json
import random
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from modload import load_module

HERE = Path(__file__).resolve().parent
SVG = "{http://www.w3.org/2000/svg}"


report = load_module("decide_report", HERE / "report.py")


def _cell(method: str, seed: int, used: int, rate: float) -> dict[str, Any]:
    rng = random.Random(f"{method}/{seed}")
    ids = [f"item{i}" for i in range(60)]
    return {
        "task": "bbh:toy",
        "method": method,
        "seed": seed,
        "status": "initial" if method == "initial" else "budget",
        "sizes": {"train": 50, "gate": 50, "test": len(ids)},
        "budget": {"forward": 600, "strong": 60},
        "used": {"forward": used, "strong": 0 if method == "initial" else 60},
        "test_ids": ids,
        "test_targets": ["3"] * len(ids),
        "test_scores": [float(rng.random() < rate) for _ in ids],
        "wall_s": 60.0,
    }


def _write(results: Path, task: str, cells: list[dict[str, Any]]) -> Path:
    folder = results / task
    folder.mkdir(parents=True)
    for c in cells:
        (folder / f"{c['method']}__seed{c['seed']}.json").write_text(json.dumps(c))
    return folder


ODD = "<peer & co>"
CELLS = [
    _cell("initial", 0, 0, 0.4),
    *(_cell("search", s, 600, 0.6) for s in range(3)),
    *(_cell("paper", s, u, 0.5) for s, u in enumerate([420, 600, 600])),
    _cell(ODD, 0, 537, 0.45),
]


def _parse(text: str) -> ET.Element:
    return ET.fromstring(text)


def _centre(marker: ET.Element) -> tuple[float, float]:
    """Where a marker sits: a circle's centre, or the mean of a polygon's corners."""
    if marker.tag == f"{SVG}circle":
        return float(marker.get("cx") or 0), float(marker.get("cy") or 0)
    if marker.tag == f"{SVG}rect":
        w, h = float(marker.get("width") or 0), float(marker.get("height") or 0)
        return float(marker.get("x") or 0) + w / 2, float(marker.get("y") or 0) + h / 2
    corners = [tuple(map(float, c.split(","))) for c in (marker.get("points") or "").split()]
    return sum(c[0] for c in corners) / len(corners), sum(c[1] for c in corners) / len(corners)


def test_a_point_and_a_bar_per_cell_a_legend_entry_per_method_and_the_same_bytes(
    tmp_path: Path,
) -> None:
    folder = _write(tmp_path, "bbh-toy", CELLS)
    plots = report.decide_plots(tmp_path)
    assert list(plots) == [folder / "accuracy_vs_requests.svg"]
    text = plots[folder / "accuracy_vs_requests.svg"]
    root = _parse(text)
    cells = [g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"]
    assert sorted((g.get("data-method"), g.get("data-seed")) for g in cells) == sorted(
        (c["method"], str(c["seed"])) for c in CELLS
    )
    for g in cells:
        classes = [e.get("class") for e in g]
        assert classes.count("point") == 1 and classes.count("interval") == 1
    legend = [
        g.get("data-method") for g in root.iter(f"{SVG}g") if g.get("class") == "legend-method"
    ]
    assert legend == ["initial", "search", "paper", ODD]
    legend_text = [
        t.text
        for g in root.iter(f"{SVG}g")
        if g.get("class") == "legend-method"
        for t in g.iter(f"{SVG}text")
    ]
    assert legend_text == [
        report.LABELS["initial"],
        report.LABELS["search"],
        report.LABELS["paper"],
        ODD,
    ]
    lines = {e.get("class") for e in root.iter(f"{SVG}line")}
    assert {"budget", "initial"} <= lines  # the forward budget dotted, the initial dashed
    assert ODD not in text  # escaped everywhere it appears
    # The same cells read again give the same bytes.
    assert report.decide_plots(tmp_path) == plots


def test_the_bar_is_the_cells_bootstrap_interval_and_x_is_its_forward_requests(
    tmp_path: Path,
) -> None:
    _write(tmp_path, "bbh-toy", [CELLS[0], CELLS[4]])  # initial at 0, paper seed 0 at 420
    root = _parse(next(iter(report.decide_plots(tmp_path).values())))
    by_method = {g.get("data-method"): g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"}
    for method, g in by_method.items():
        title = next(g.iter(f"{SVG}title")).text or ""
        scores = next(c for c in CELLS if c["method"] == method)["test_scores"]
        acc, lo, hi = report.bootstrap_mean([scores])
        assert f"{100 * acc:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]" in title
        bar = next(e for e in g if e.get("class") == "interval").get("d") or ""
        ys = sorted(float(y) for y in re.findall(r"[,V](-?[\d.]+)", bar))
        _, cy = _centre(next(e for e in g if e.get("class") == "point"))
        assert ys[0] < cy < ys[-1]  # the bar spans the point, below and above
    xs = {
        m: _centre(next(e for e in g if e.get("class") == "point"))[0] for m, g in by_method.items()
    }
    assert xs["initial"] == 64.0 < xs["paper"]  # the initial program on the y axis (x = 0)


def test_a_task_with_only_an_initial_cell_still_renders(tmp_path: Path) -> None:
    _write(tmp_path, "bbh-toy", [CELLS[0]])
    (text,) = report.decide_plots(tmp_path).values()
    root = _parse(text)
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "cell"]) == 1
    assert len([g for g in root.iter(f"{SVG}g") if g.get("class") == "legend-method"]) == 1
    section = "\n".join(report.decide_section(tmp_path))
    assert "](decide/results/bbh-toy/accuracy_vs_requests.svg)" in section


def test_results_md_links_each_task_plot_and_make_results_writes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path, "bbh-toy", CELLS)
    _write(tmp_path, "bbh-other", [CELLS[0], CELLS[1]])
    section = "\n".join(report.decide_section(tmp_path))
    for task in ("bbh-toy", "bbh-other"):
        assert f"](decide/results/{task}/accuracy_vs_requests.svg)" in section
    assert "bootstrap interval over that cell's test items" in section

    make_results = load_module("make_results_under_test", HERE.parent / "make_results.py")
    monkeypatch.setattr(make_results, "decide_section", lambda: report.decide_section(tmp_path))
    monkeypatch.setattr(make_results, "decide_plots", lambda: report.decide_plots(tmp_path))
    files = make_results.generate()  # builds every file in memory; writes nothing
    for task in ("bbh-toy", "bbh-other"):
        path = tmp_path / task / "accuracy_vs_requests.svg"
        assert files[path] == report.decide_plots(tmp_path)[path]
    results_md = files[HERE.parent / "RESULTS.md"]
    assert "](decide/results/bbh-toy/accuracy_vs_requests.svg)" in results_md


def test_a_dspy_optimizer_is_paired_against_the_initial_program_in_dspys_layout() -> None:
    initial, dspy_initial = _cell("initial", 0, 0, 0.4), _cell("dspy-initial", 0, 0, 0.3)
    copro = {**dspy_initial, "method": "copro", "used": {"forward": 300, "strong": 3}}
    cells = {m["method"]: {0: m} for m in (copro, initial, dspy_initial)}
    lines = report.task_section("bbh:toy", cells)
    rows = {line.split(" | ")[0][2:]: line.split(" | ") for line in lines if line.startswith("| ")}
    # The same per-item scores as its own baseline: Δ exactly 0, though semgrad's initial
    # scores differently; the baseline's own Δ is against semgrad's initial.
    assert rows["DSPy COPRO"][3] == "0.0 [0.0, 0.0]"
    assert rows[report.LABELS["dspy-initial"]][3] != "0.0 [0.0, 0.0]"
    assert any("(`dspy-initial`)" in line for line in lines)
    # Listed in LABELS order: the peers after semgrad's methods, the baselines last.
    assert report.method_order(cells) == ["initial", "copro", "dspy-initial"]
    del cells["dspy-initial"]
    assert any("is not run yet" in line for line in report.task_section("bbh:toy", cells))


def test_a_search_cell_from_before_gate_survivors_is_marked() -> None:
    """A search cell that records no optimizer settings ran with every survivor gated:
    its status carries ‡ and a footnote says so; a cell with settings does not."""
    initial = _cell("initial", 0, 0, 0.4)
    old, new = _cell("search", 0, 600, 0.5), _cell("search", 1, 600, 0.5)
    new["optimizer"] = {
        "method": "search",
        "gate_survivors": 1,
        "final_answer": True,
        "gate_held_out": True,
        "skip_shown": True,
    }
    lines = report.task_section("bbh:toy", {"initial": {0: initial}, "search": {0: old, 1: new}})
    row = next(line for line in lines if line.startswith(f"| {report.LABELS['search']} "))
    assert "| budget‡/budget |" in row
    assert sum(line.startswith("‡ ") for line in lines) == 1
    new_only = report.task_section("bbh:toy", {"initial": {0: initial}, "search": {1: new}})
    assert not any("‡" in line or "§" in line for line in new_only)
    # Settings recorded before `final_answer`: marked §, with its footnote.
    mid = {**new, "optimizer": {"method": "search", "gate_survivors": 1}}
    lines = report.task_section("bbh:toy", {"initial": {0: initial}, "search": {0: mid, 1: new}})
    row = next(line for line in lines if line.startswith(f"| {report.LABELS['search']} "))
    assert "| budget§/budget |" in row
    assert sum(line.startswith("§ ") for line in lines) == 1
    # Settings recorded before `gate_held_out`: marked ¶, with its footnote.
    held = {**new, "optimizer": {"method": "search", "gate_survivors": 1, "final_answer": True}}
    lines = report.task_section("bbh:toy", {"initial": {0: initial}, "search": {0: held, 1: new}})
    row = next(line for line in lines if line.startswith(f"| {report.LABELS['search']} "))
    assert "| budget¶/budget |" in row
    assert sum(line.startswith("¶ ") for line in lines) == 1 and not any(
        line.startswith("§ ") for line in lines
    )
    # Settings recorded before `skip_shown`: marked ‖, with its footnote.
    shown = {**new, "optimizer": {k: v for k, v in new["optimizer"].items() if k != "skip_shown"}}
    lines = report.task_section("bbh:toy", {"initial": {0: initial}, "search": {0: shown, 1: new}})
    row = next(line for line in lines if line.startswith(f"| {report.LABELS['search']} "))
    assert "| budget‖/budget |" in row
    assert sum(line.startswith("‖ ") for line in lines) == 1
