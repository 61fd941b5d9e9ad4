"""The report shows the demos each node of the final graph uses (escaped, like all model text)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.report.test_report import XSS, finished_run, graph_spec, step_record, text_of, write_run

from semgrad.report import load_run, render_html
from semgrad.report.load import read_run

DEMOS = [
    {"inputs": {"question": "What is 1+1?", "clean": "add"}, "output": "Answer: 2"},
    {"inputs": {"question": XSS, "clean": "add"}, "output": "Answer: 5"},
]


def test_the_final_graphs_demos_are_shown_per_node(tmp_path: Path) -> None:
    root = finished_run(tmp_path)
    best = graph_spec("Answer the question in UPPERCASE.")
    best["nodes"][-1]["demos"] = DEMOS
    (root / "best_graph.json").write_text(json.dumps(best))
    run = read_run(load_run(root))
    assert list(run.best_demos) == ["final"]
    assert run.best_demos["final"][0].inputs == (("question", "What is 1+1?"), ("clean", "add"))
    page = render_html(load_run(root))
    assert "2 demos in use" in text_of(page)
    assert "Answer: 5" in text_of(page)
    assert XSS not in page  # model and data text stay text


def test_demos_from_the_last_state_when_no_graph_file_is_left(tmp_path: Path) -> None:
    state = {
        "hint.instruction": "Give a hint.",
        "final.instruction": "Be brief.",
        "final.demos": json.dumps(DEMOS[:1]),
    }
    root = write_run(tmp_path / "run", [{**step_record(0), "state": state}])
    for name in ("best_graph.json", "initial_graph.json", "checkpoint.json"):
        (root / name).unlink()
    run = read_run(load_run(root))
    assert run.best_instructions == {"hint": "Give a hint.", "final": "Be brief."}
    assert [d.output for d in run.best_demos["final"]] == ["Answer: 2"]


def test_a_run_without_demos_shows_none(tmp_path: Path) -> None:
    root = finished_run(tmp_path)
    assert read_run(load_run(root)).best_demos == {}
    assert "in use" not in text_of(render_html(load_run(root)))
