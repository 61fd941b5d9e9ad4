"""The report's drawings, as inline SVG built with the markup kit: the graph, the score
curve and, for a composite graph, the edge probabilities over the steps."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from semgrad.report.load import GraphView, Run
from semgrad.report.markup import Content, Html, clip, el, pct, prob

__all__ = ["EDGE_COLORS", "curve_svg", "dag_svg", "edge_series", "edges_svg"]

EDGE_COLORS = (
    "#0969da",
    "#cf222e",
    "#1a7f37",
    "#8250df",
    "#bc4c00",
    "#1b7c83",
    "#bf3989",
    "#6e7781",
    "#9a6700",
    "#116329",
)

_WIDTH, _HEIGHT = 1000, 300
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 24, 16, 40


def dag_svg(graph: GraphView, initial: Mapping[str, str], best: Mapping[str, str]) -> Html:
    """A left-to-right drawing: each node one column right of its deepest input."""
    layer: dict[str, int] = {name: 0 for name in graph.inputs}
    kind: dict[str, str] = {name: "input" for name in graph.inputs}
    edges: list[tuple[str, str]] = []
    for node in graph.nodes:  # nodes are stored in topological order
        layer[node.name] = 1 + max((layer.get(s, 0) for s in node.inputs), default=0)
        kind[node.name] = node.type
        edges += [(s, node.name) for s in node.inputs if s in layer]
    columns: dict[int, list[str]] = {}
    for name, col in layer.items():
        columns.setdefault(col, []).append(name)
    box_w, box_h, gap_x, gap_y, pad = 176, 48, 72, 18, 12
    tallest = max(len(c) for c in columns.values())
    height = pad * 2 + tallest * box_h + (tallest - 1) * gap_y
    width = pad * 2 + len(columns) * box_w + (len(columns) - 1) * gap_x
    pos: dict[str, tuple[float, float]] = {}
    for col, names in sorted(columns.items()):
        used = len(names) * box_h + (len(names) - 1) * gap_y
        top = (height - used) / 2
        for row, name in enumerate(names):
            pos[name] = (pad + col * (box_w + gap_x), top + row * (box_h + gap_y))
    parts: list[Content] = [
        el(
            "defs",
            el(
                "marker",
                el("path", d="M0,0 L10,5 L0,10 z", fill="#8c959f"),
                id="arrow",
                viewBox="0 0 10 10",
                refX=10,
                refY=5,
                markerWidth=7,
                markerHeight=7,
                orient="auto",
            ),
        )
    ]
    for src, dst in edges:
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        a, b = (x1 + box_w, y1 + box_h / 2), (x2, y2 + box_h / 2)
        mid = (a[0] + b[0]) / 2
        parts.append(
            el(
                "path",
                d=f"M{a[0]:.1f},{a[1]:.1f} C{mid:.1f},{a[1]:.1f} {mid:.1f},{b[1]:.1f} "
                f"{b[0] - 2:.1f},{b[1]:.1f}",
                class_="edge",
                marker_end="url(#arrow)",
            )
        )
    for name, (x, y) in pos.items():
        changed = name in best and best.get(name) != initial.get(name, best.get(name))
        sub = {"input": "graph input", "llm": "llm", "function": "function"}.get(kind[name], "?")
        if name == graph.output:
            sub += " · output"
        if changed:
            sub += " · changed"
        css = (
            f"box {kind[name]}"
            + (" changed" if changed else "")
            + (" out" if name == graph.output else "")
        )
        parts.append(
            el(
                "g",
                el("title", f"{name} ({sub})"),
                el("rect", x=x, y=y, width=box_w, height=box_h, rx=8, class_=css),
                el("text", clip(name, 22), x=x + 12, y=y + 20, class_="box-name"),
                el("text", clip(sub, 30), x=x + 12, y=y + 37, class_="box-sub"),
            )
        )
    return el(
        "div",
        el(
            "svg",
            parts,
            xmlns="http://www.w3.org/2000/svg",
            viewBox=f"0 0 {width} {height}",
            width=width,
            height=height,
            role="img",
            aria_label="the graph",
        ),
        class_="dag",
    )


def _x_axis(n: int, sx: Callable[[float], float]) -> list[Content]:
    """Step labels under a chart of `n` steps (at most about 20 of them)."""
    parts: list[Content] = []
    every = max(1, math.ceil(n / 20))
    for x in range(n + 1):
        if x % every and x != n:
            continue
        parts.append(
            el(
                "text",
                "start" if x == 0 else str(x),
                x=sx(x),
                y=_HEIGHT - _BOTTOM + 18,
                class_="axis",
                text_anchor="middle",
            )
        )
    return parts


def _chart(parts: Sequence[Content], label: str) -> Html:
    return el(
        "div",
        el(
            "svg",
            list(parts),
            xmlns="http://www.w3.org/2000/svg",
            viewBox=f"0 0 {_WIDTH} {_HEIGHT}",
            role="img",
            aria_label=label,
            class_="curve",
        ),
        class_="chart",
    )


def curve_svg(run: Run) -> Html:
    """The incumbent's gate score as a step line, each step's candidate as a dot, and the
    initial and final test scores as squares."""
    n = len(run.steps)
    width, height = _WIDTH, _HEIGHT
    left, right, top, bottom = _LEFT, _RIGHT, _TOP, _BOTTOM
    incumbent: list[tuple[int, float | None]] = [(0, run.initial_gate)]
    for i, s in enumerate(run.steps):
        incumbent.append((i + 1, s.best if s.best is not None else incumbent[-1][1]))
    if run.initial_gate is None and run.steps:
        incumbent[0] = (0, run.steps[0].incumbent)
    values = [v for _, v in incumbent if v is not None]
    values += [s.candidate for s in run.steps if s.candidate is not None]
    values += [v for v in (run.initial_test, run.final_test) if v is not None]
    lo, hi = min([0.0, *values]), max([1.0, *values])
    span_x = max(n, 1)

    def sx(x: float) -> float:
        return left + x * (width - left - right) / span_x

    def sy(v: float) -> float:
        return top + (hi - v) * (height - top - bottom) / (hi - lo)

    parts: list[Content] = []
    for k in range(5):  # horizontal grid, labelled in percent
        g = lo + (hi - lo) * k / 4
        parts.append(el("line", x1=left, x2=width - right, y1=sy(g), y2=sy(g), class_="grid"))
        parts.append(el("text", pct(g), x=left - 8, y=sy(g) + 4, class_="axis", text_anchor="end"))
    parts += _x_axis(n, sx)
    parts.append(
        el(
            "text",
            "step",
            x=(left + width - right) / 2,
            y=height - 4,
            class_="axis",
            text_anchor="middle",
        )
    )
    # The incumbent as a step line: it holds its value until a step replaces it.
    path: list[str] = []
    prev: float | None = None
    for x, v in incumbent:
        if v is None:
            prev = None
            continue
        if prev is None:
            path.append(f"M{sx(x):.1f},{sy(v):.1f}")
        else:
            path.append(f"H{sx(x):.1f} V{sy(v):.1f}")
        prev = v
    if path:
        parts.append(el("path", d=" ".join(path), class_="incumbent"))
    for x, v in incumbent:
        if v is not None:
            parts.append(
                el(
                    "circle",
                    el("title", f"incumbent after {x} steps: {pct(v)}"),
                    cx=sx(x),
                    cy=sy(v),
                    r=3,
                    class_="inc-dot",
                )
            )
    for i, s in enumerate(run.steps):
        px = sx(i + 1)
        if s.candidate is None:
            level = incumbent[i + 1][1]
            if level is not None:
                tip = f"{s.label}: {s.decision}"
                parts.append(
                    el(
                        "circle",
                        el("title", tip),
                        cx=px,
                        cy=sy(level) - 12,
                        r=4,
                        class_="pt same",
                    )
                )
            continue
        gate = s.gate
        early = gate is not None and gate.early_stopped
        kind = "accepted" if s.accepted else ("early" if early else "rejected")
        scored = ""
        if gate is not None:
            scored = f" on {_count(gate.evaluated)}/{_count(gate.of)}"
            scored += " (partial)" if gate.partial else ""
        tip = f"{s.label}: candidate {pct(s.candidate)}{scored} vs {pct(s.incumbent)}, {s.decision}"
        parts.append(
            el("circle", el("title", tip), cx=px, cy=sy(s.candidate), r=6, class_=f"pt {kind}")
        )
    for tx, tv, what in ((0, run.initial_test, "initial"), (n, run.final_test, "final")):
        if tv is not None:
            parts.append(
                el(
                    "rect",
                    el("title", f"{what} test score: {pct(tv)}"),
                    x=sx(tx) - 5,
                    y=sy(tv) - 5,
                    width=10,
                    height=10,
                    class_="pt test",
                )
            )
    return _chart(parts, "score curve")


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def edge_series(run: Run) -> dict[str, list[tuple[int, float]]]:
    """Edge name -> (step, probability) points: the initial spec at 0, then after each step."""
    series: dict[str, list[tuple[int, float]]] = {}
    for edge in run.swarm_edges:
        series[edge.name] = [(0, edge.p0)] if edge.p0 is not None else []
    for i, st in enumerate(run.steps):
        for name, value in st.edge_probabilities:
            series.setdefault(name, []).append((i + 1, value))
    return series


def edges_svg(run: Run, series: Mapping[str, list[tuple[int, float]]]) -> Html:
    """One line per potential edge: its probability after each step, and the threshold."""
    n = len(run.steps)
    threshold = run.threshold
    width, height = _WIDTH, _HEIGHT
    left, right, top, bottom = _LEFT, _RIGHT, _TOP, _BOTTOM
    span_x = max(n, 1)

    def sx(x: float) -> float:
        return left + x * (width - left - right) / span_x

    def sy(v: float) -> float:
        return top + (1.0 - v) * (height - top - bottom)

    parts: list[Content] = []
    for k in range(5):
        g = k / 4
        parts.append(el("line", x1=left, x2=width - right, y1=sy(g), y2=sy(g), class_="grid"))
        parts.append(
            el("text", f"{g:.2f}", x=left - 8, y=sy(g) + 4, class_="axis", text_anchor="end")
        )
    parts += _x_axis(n, sx)
    parts.append(
        el(
            "line",
            x1=left,
            x2=width - right,
            y1=sy(threshold),
            y2=sy(threshold),
            class_="threshold",
        )
    )
    parts.append(
        el(
            "text",
            f"threshold {threshold:g}",
            x=width - right,
            y=sy(threshold) - 5,
            class_="axis",
            text_anchor="end",
        )
    )
    for i, (name, points) in enumerate(series.items()):
        if not points:
            continue
        color = EDGE_COLORS[i % len(EDGE_COLORS)]
        d = " ".join(
            f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(v):.1f}" for j, (x, v) in enumerate(points)
        )
        last_x, last_v = points[-1]
        parts.append(
            el(
                "g",
                el("title", f"{name}: {prob(points[0][1])} → {prob(last_v)}"),
                el("path", d=d, class_="edge-line", stroke=color),
                el("circle", cx=sx(last_x), cy=sy(last_v), r=3.5, fill=color),
            )
        )
    return _chart(parts, "edge probabilities over the steps")
