"""The HTML report of an optimization run: `render_report(RUN_DIR)` → RUN_DIR/report.html.

load (read a run directory into typed values) → sections (HTML) + svg (drawings), built
with markup's escape-by-construction kit; page assembles them with style.css.
"""

from semgrad.report.load import RunData, load_run
from semgrad.report.page import render_html, render_report

__all__ = ["RunData", "load_run", "render_html", "render_report"]
