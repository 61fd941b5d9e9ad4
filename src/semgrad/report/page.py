"""One self-contained HTML page per optimization run: `render_report(RUN_DIR)`.

The page is a pure function of the run's files (`render_html(load_run(RUN_DIR))`): the same
run directory always gives the same bytes. It holds no script, no stylesheet link, no font
or image fetched from anywhere: the CSS (style.css, shipped with the package) is inline
and the drawings are inline SVG, so the file can be mailed, archived or opened offline.

Every text that came from a model, a dataset or a user (instructions, replies, feedback,
example inputs, even node and run names) is escaped, by construction: see
semgrad.report.markup. The parts: load (the run files, typed), sections (the HTML
sections), svg (the drawings), markup (the escaping kit).
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from pathlib import Path

from semgrad import __version__
from semgrad.optim.runfiles import RunFiles, atomic_write_text
from semgrad.report.load import RunData, load_run, read_run
from semgrad.report.markup import Html, el
from semgrad.report.sections import (
    cost_section,
    curve_section,
    edges_section,
    graph_section,
    header,
    step_details_section,
    steps_section,
)

__all__ = ["render_html", "render_report", "stylesheet"]


def render_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run (default `RUN_DIR/report.html`) and return its path.

    The file is replaced atomically, so a report open in a browser is never half-written.
    """
    run = load_run(run_dir)
    path = RunFiles(run_dir).report if out is None else Path(out)
    if path.is_dir():
        path = path / "report.html"
    atomic_write_text(path, render_html(run))
    return path


def render_html(data: RunData, *, expand: bool = False) -> str:
    """The whole page for `data`, as a string. `expand=True` opens every collapsible part
    (for screenshots and printing)."""
    run = read_run(data)
    body = [
        header(run),
        graph_section(run),
        curve_section(run),
        edges_section(run),
        steps_section(run),
        step_details_section(run),
        cost_section(run),
        el(
            "footer",
            f"semgrad {__version__} · {run.root} · self-contained: no scripts, no external files",
        ),
    ]
    page = el(
        "html",
        el(
            "head",
            el("meta", charset="utf-8"),
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("title", f"semgrad report · {run.name}"),
            el("style", Html("\n" + stylesheet())),
        ),
        el("body", el("main", *body)),
        lang="en",
    )
    if expand:
        # Safe on the whole page: text from the run is escaped, so every "<details" is ours.
        page = Html(re.sub(r"<details\b", "<details open", page))
    return f"<!DOCTYPE html>\n{page}\n"


@cache
def stylesheet() -> str:
    """The page's CSS, shipped as package data (semgrad/report/style.css)."""
    return resources.files("semgrad.report").joinpath("style.css").read_text(encoding="utf-8")
