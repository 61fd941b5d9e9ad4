"""The HTML report of an optimization run: `render_report(RUN_DIR)` → RUN_DIR/report.html."""

from semgrad.report.html import RunData, load_run, render_html, render_report

__all__ = ["RunData", "load_run", "render_html", "render_report"]
