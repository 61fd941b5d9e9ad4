"""Hand-written SVG pieces shared by the benchmark plots (standard library only).

Every coordinate is written with a fixed precision and every text is escaped, so the same
inputs give a byte-identical file (``make_results.py --check`` compares them).
"""

from __future__ import annotations

import html
import math

__all__ = ["COLORS", "MARKERS", "axes", "esc", "header", "marker", "nice_step"]

COLORS = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939",
]  # fmt: skip
MARKERS = ["circle", "square", "triangle", "diamond", "triangle-down", "cross"]


def esc(text: object) -> str:
    """Text or an attribute value with ``& < > " '`` escaped."""
    return html.escape(str(text), quote=True)


def header(w: int, h: int, title: str, left: float, title_y: float) -> list[str]:
    """The opening tag, a white background and the title."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        'font-family="sans-serif" font-size="12">',
        f'<rect width="{w}" height="{h}" fill="white"/>',
        f'<text x="{left}" y="{title_y}" font-size="14">{esc(title)}</text>',
    ]


def axes(left: float, top: float, pw: float, ph: float) -> list[str]:
    """The x axis along the bottom of the plot area and the y axis along its left."""
    return [
        f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="black"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + ph}" stroke="black"/>',
    ]


def nice_step(span: float, ticks: int = 5) -> float:
    """The smallest 1, 2 or 5 times a power of ten that cuts ``span`` into at most
    ``ticks`` intervals."""
    raw = max(span, 1e-9) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw * (1 - 1e-9))


def marker(kind: str, x: float, y: float, r: float, color: str, attrs: str = "") -> str:
    """One filled marker centred on (x, y); ``attrs`` is added to the element as is."""
    extra = f" {attrs}" if attrs else ""
    fill = f'fill="{color}"'
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" {fill}{extra}/>'
    if kind == "square":
        s = 0.9 * r
        return f'<rect x="{x - s:.1f}" y="{y - s:.1f}" width="{2 * s:.1f}" height="{2 * s:.1f}" {fill}{extra}/>'
    shapes = {
        "triangle": [(0.0, -1.2), (1.1, 0.8), (-1.1, 0.8)],
        "triangle-down": [(0.0, 1.2), (1.1, -0.8), (-1.1, -0.8)],
        "diamond": [(0.0, -1.3), (1.1, 0.0), (0.0, 1.3), (-1.1, 0.0)],
        "cross": [
            (-0.4, -1.2), (0.4, -1.2), (0.4, -0.4), (1.2, -0.4), (1.2, 0.4), (0.4, 0.4),
            (0.4, 1.2), (-0.4, 1.2), (-0.4, 0.4), (-1.2, 0.4), (-1.2, -0.4), (-0.4, -0.4),
        ],
    }  # fmt: skip
    points = " ".join(f"{x + r * dx:.1f},{y + r * dy:.1f}" for dx, dy in shapes[kind])
    return f'<polygon points="{points}" {fill}{extra}/>'
