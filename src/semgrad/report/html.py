"""One self-contained HTML page per optimization run: `render_report(RUN_DIR)`.

The page is a pure function of the run's files (`render_html(load_run(RUN_DIR))`): the same
run directory always gives the same bytes. It holds no script, no stylesheet link, no font
or image fetched from anywhere: the CSS is inline and the drawings are inline SVG, so the
file can be mailed, archived or opened offline.

Every text that came from a model, a dataset or a user (instructions, replies, feedback,
example inputs, even node and run names) is escaped. That is enforced by construction: the
page is built with `el()`, which escapes every plain `str` it is given; only `Html` values,
made by `el()` and `esc()` themselves, pass through as markup.

Sections, top to bottom: the header (status, scores, models), the graph (a drawing and a
table of nodes with their initial and best instructions), the score curve, for a composite
graph the edges (their probabilities over the steps, one line each, and the edge steps),
the step table, one section per step (proposal diffs, gradients, the batch examples,
sampled graphs) and the cost by phase.
"""

from __future__ import annotations

import difflib
import html
import json
import math
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from semgrad.errors import DataError
from semgrad.llm.types import PHASES
from semgrad.optim.runfiles import RunFiles, atomic_write_text

__all__ = ["Html", "RunData", "esc", "load_run", "render_html", "render_report", "word_diff"]


# -- a tiny markup kit: plain strings are always escaped -----------------------------------


class Html(str):
    """Markup that is safe to put in the page as it is. Any other `str` gets escaped."""

    __slots__ = ()


Content: TypeAlias = "Html | str | int | float | Sequence[Content] | None"

_VOID = frozenset({"br", "hr", "meta", "col", "wbr"})


def esc(value: Content) -> Html:
    """`value` as markup: `Html` as it is, text escaped, sequences joined, None as nothing."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    if isinstance(value, list | tuple):
        return Html("".join(esc(v) for v in value))
    return Html(html.escape(str(value), quote=True))


def el(tag: str, *children: Content, **attrs: str | int | float | bool | None) -> Html:
    """An element. Attribute names drop a trailing `_` and use `-` for `_` (`class_`,
    `stroke_width`); True writes a bare attribute, False or None leaves it out."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{esc(_fmt_attr(value))}"')
    start = f"<{' '.join(parts)}>"
    if tag in _VOID:
        return Html(start)
    return Html(f"{start}{esc(list(children))}</{tag}>")


def _fmt_attr(value: str | int | float) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


# -- loading: the only part that touches files ---------------------------------------------


@dataclass(frozen=True)
class RunData:
    """What a report shows, as read from a run directory. The values are the run files'
    JSON as it is (not validated): the renderer tolerates missing and odd fields."""

    root: str
    config: Mapping[str, Any] = field(default_factory=dict)
    checkpoint: Mapping[str, Any] | None = None
    summary: Mapping[str, Any] | None = None
    initial_graph: Mapping[str, Any] | None = None
    best_graph: Mapping[str, Any] | None = None
    history: tuple[Mapping[str, Any], ...] = ()
    problems: tuple[str, ...] = ()  # damaged files, shown in a warning at the top


def load_run(run_dir: str | Path) -> RunData:
    """Read a run directory. Only a directory that is not a run at all is an error; a
    missing or damaged file is noted in `problems` and the page shows what is left."""
    files = RunFiles(run_dir)
    root = files.root
    if not root.exists():
        raise DataError(
            f"{root} does not exist. Pass the directory of a run, as written by "
            f"`semgrad optimize CONFIG` (runs/<name> by default).",
            str(root),
        )
    if not root.is_dir():
        raise DataError(
            f"{root} is a file, not a run directory. Pass the directory that holds the run's "
            f"config.json, checkpoint.json and history.jsonl.",
            str(root),
        )
    if not files.config.exists() and not files.checkpoint.exists():
        found = sorted(p.name for p in root.iterdir())[:8]
        raise DataError(
            f"{root} is not a semgrad run directory: it has neither config.json nor "
            f"checkpoint.json (it holds: {', '.join(found) or 'nothing'}). A run directory "
            f"is made by `semgrad optimize CONFIG`; pass that directory.",
            str(root),
        )
    problems: list[str] = []

    def read(path: Path) -> Mapping[str, Any] | None:
        if not path.exists():
            return None
        try:
            data = files.read_json(path)
        except DataError as err:
            problems.append(str(err))
            return None
        except (OSError, UnicodeDecodeError) as err:
            problems.append(f"{path} cannot be read ({err}); it is left out of the report")
            return None
        if not isinstance(data, dict):
            problems.append(f"{path} is not a JSON object; it is left out of the report")
            return None
        return data

    config = read(files.config)
    if config is None and not files.config.exists():
        problems.append(f"{files.config} is missing; the models and settings are unknown")
    history: list[Mapping[str, Any]] = []
    if files.history.exists():
        try:
            lines = [ln for ln in files.history.read_text(encoding="utf-8").splitlines() if ln]
            rows = files.read_history()
        except (OSError, UnicodeDecodeError) as err:
            lines, rows = [], []
            problems.append(f"{files.history} cannot be read ({err}); no steps are shown")
        history = [r for r in rows if isinstance(r, dict)]
        if len(rows) < len(lines):
            problems.append(
                f"{files.history} line {len(rows) + 1} is not valid JSON (a line cut by a "
                f"crash?); only the {len(rows)} steps before it are shown"
            )
    return RunData(
        root=str(root),
        config=config or {},
        checkpoint=read(files.checkpoint),
        summary=read(files.summary),
        initial_graph=read(files.initial_graph),
        best_graph=read(files.best_graph),
        history=tuple(history),
        problems=tuple(problems),
    )


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


# -- the page ------------------------------------------------------------------------------


def render_html(run: RunData, *, expand: bool = False) -> str:
    """The whole page for `run`, as a string. `expand=True` opens every collapsible part
    (for screenshots and printing)."""
    view = _View(run)
    body = [
        _header(view),
        _graph_section(view),
        _curve_section(view),
        _edges_section(view),
        _steps_section(view),
        _step_details_section(view),
        _cost_section(view),
        el(
            "footer",
            f"semgrad {_version()} · {view.root} · self-contained: no scripts, no external files",
        ),
    ]
    page = el(
        "html",
        el(
            "head",
            el("meta", charset="utf-8"),
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("title", f"semgrad report · {view.name}"),
            el("style", Html(_CSS)),
        ),
        el("body", el("main", *body)),
        lang="en",
    )
    if expand:
        # Safe on the whole page: text from the run is escaped, so every "<details" is ours.
        page = Html(re.sub(r"<details\b", "<details open", page))
    return f"<!DOCTYPE html>\n{page}\n"


@dataclass(frozen=True)
class _Step:
    """One history line, with the fields the page uses pulled out and typed."""

    index: int  # 0-based, as in history.jsonl; the page shows index + 1 like the CLI
    row: Mapping[str, Any]
    candidate: float | None
    incumbent: float | None
    best: float | None
    accepted: bool
    changed: tuple[str, ...]
    gate: Mapping[str, Any]
    kind: str = "nodes"  # "nodes", "edges" or "both" (composite graphs)

    @property
    def label(self) -> str:
        return f"step {self.index + 1}"

    @property
    def anchor(self) -> str:
        return f"step-{self.index + 1}"

    @property
    def decision(self) -> str:
        if self.kind == "edges":  # edge steps are not gated: they move the logits
            return "graph changed" if self.changed else "edges moved"
        if not self.changed:
            return "no change"
        return "accepted" if self.accepted else "rejected"

    @property
    def edges(self) -> dict[str, Any]:
        return _dict(self.row.get("edges"))


class _View:
    """The run's facts the sections share, each looked up once, with fallbacks between
    files (summary, then checkpoint, then history) so a partial run still shows them."""

    def __init__(self, run: RunData) -> None:
        self.run = run
        self.root = run.root
        config = run.config
        summary = run.summary or {}
        checkpoint = run.checkpoint or {}
        self.name = _text(config.get("name")) or Path(run.root).name or "run"
        self.steps = [
            _step(_first_int(row.get("step"), i), row) for i, row in enumerate(run.history)
        ]
        if run.summary is not None:
            self.status = _text(summary.get("status")) or "finished"
        elif run.checkpoint is not None:
            self.status = _text(checkpoint.get("status")) or "running"
        else:
            self.status = "not started"
        self.steps_done = _int(summary.get("steps"))
        if self.steps_done is None:
            self.steps_done = _int(checkpoint.get("step"))
        if self.steps_done is None:
            self.steps_done = len(self.steps)
        self.steps_planned = _int(config.get("steps"))
        self.initial_test = _first_num(summary.get("initial_test"), checkpoint.get("initial_test"))
        self.final_test = _num(summary.get("final_test"))
        self.initial_gate = _first_num(summary.get("initial_gate"), checkpoint.get("initial_gate"))
        last_best = self.steps[-1].best if self.steps else None
        self.best_gate = _first_num(
            summary.get("best_gate"), checkpoint.get("best_gate"), last_best
        )
        walls = [w for s in self.steps if (w := _num(s.row.get("wall_s"))) is not None]
        self.wall_s = sum(walls) if walls else None
        # Graph structure: the initial graph, else whatever graph spec the run left.
        best = run.best_graph or _dict(checkpoint.get("graph")) or None
        self.graph = run.initial_graph or best or {}
        self.initial_instructions = _instructions(run.initial_graph)
        self.best_instructions = _instructions(best)
        # A composite graph: draw the realised graph the run ended with (the checkpoint
        # keeps it); instructions are keyed by the realised names (agent/node).
        self.swarm = _dict(run.initial_graph).get("kind") == "swarm" or (
            _dict(best).get("kind") == "swarm"
        )
        self.edges_config = _dict(config.get("edges"))
        if self.swarm:
            self.initial_swarm = _dict(run.initial_graph)
            self.best_swarm = _dict(best) if _dict(best).get("kind") == "swarm" else {}
            self.graph = _dict(checkpoint.get("graph")) or _realised(
                self.best_swarm or self.initial_swarm, self.edges_config
            )
            self.initial_instructions = _swarm_instructions(self.initial_swarm)
            self.best_instructions = _swarm_instructions(self.best_swarm)
        if not self.best_instructions and self.steps:  # no graph file: the last state
            state = _dict(self.steps[-1].row.get("state"))
            self.best_instructions = {
                k.removesuffix(".instruction"): _text(v) for k, v in state.items()
            }


def _step(index: int, row: Mapping[str, Any]) -> _Step:
    return _Step(
        index=index,
        row=row,
        candidate=_num(row.get("candidate_score")),
        incumbent=_num(row.get("incumbent_score")),
        best=_num(row.get("best_gate")),
        accepted=row.get("accepted") is True,
        changed=tuple(_text(c) for c in _list(row.get("changed"))),
        gate=_dict(row.get("gate")),
        kind=_text(row.get("kind")) or "nodes",
    )


def _swarm_instructions(swarm: Mapping[str, Any]) -> dict[str, str]:
    """Instruction by realised node name (``agent/node``, the decision) of a swarm spec."""
    out: dict[str, str] = {}
    for agent in _list(swarm.get("agents")):
        a = _dict(agent)
        for name, text in _instructions(_dict(a.get("graph"))).items():
            out[f"{_text(a.get('name'))}/{name}"] = text
    decision = _dict(swarm.get("decision"))
    if "instruction" in decision:
        out[_text(decision.get("name")) or "decision"] = _text(decision.get("instruction"))
    return out


def _realised(swarm: Mapping[str, Any], edges_config: Mapping[str, Any]) -> dict[str, Any]:
    """The deterministic realisation of a swarm spec, or {} when it cannot be built."""
    from semgrad.errors import SemgradError
    from semgrad.swarm.spec import swarm_from_dict

    threshold = _num(edges_config.get("threshold")) or 0.5
    temperature = _num(edges_config.get("temperature")) or 1.0
    try:
        built = swarm_from_dict(dict(swarm))
        return built.realise_deterministic(threshold, temperature=temperature).to_dict()
    except (SemgradError, ValueError):
        return {}


def _instructions(graph: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for node in _list((graph or {}).get("nodes")):
        n = _dict(node)
        if "instruction" in n:
            out[_text(n.get("name"))] = _text(n.get("instruction"))
    return out


# -- header --------------------------------------------------------------------------------


def _header(view: _View) -> Html:
    planned = f" of {view.steps_planned}" if view.steps_planned is not None else ""
    cards = [
        _card("status", el("span", view.status, class_=f"badge {_status_class(view.status)}")),
        _card("steps", f"{view.steps_done}{planned}"),
        _card("test score", _arrow(view.initial_test, view.final_test), "initial → final"),
        _card("gate score", _arrow(view.initial_gate, view.best_gate), "initial → best"),
        _card(
            "wall time",
            "—" if view.wall_s is None else _seconds(view.wall_s),
            "sum over the steps",
        ),
    ]
    return el(
        "header",
        el("h1", "semgrad run ", el("span", view.name, class_="name")),
        el("div", view.root, class_="muted mono"),
        _unfinished_note(view),
        _problems_note(view),
        el("div", *cards, class_="cards"),
        _run_details(view),
        id="top",
    )


def _unfinished_note(view: _View) -> Html:
    done = f"{view.steps_done}" + (f" of {view.steps_planned}" if view.steps_planned else "")
    resume = el("code", f"semgrad resume {shlex.quote(view.root)}")
    if view.status == "finished":
        return Html("")
    if view.status == "budget":
        text: list[Content] = [
            el("strong", "Unfinished: stopped at its budget"),
            f" after {done} steps. The scores are those of the best graph so far and there is "
            "no final test score. Continue with ",
            resume,
            " (raise the budget with ",
            el("code", "--budget KEY=N"),
            ").",
        ]
    elif view.status == "not started":
        text = [
            el("strong", "Unfinished: no step yet."),
            " The run has no checkpoint: it is still scoring the initial graph, or it "
            "stopped before that finished. Start it again, or continue with ",
            resume,
            ".",
        ]
    else:
        text = [
            el("strong", f"Unfinished (status {view.status!r})"),
            f": {done} steps completed so far. The run is still going, or it was stopped "
            "or crashed; there is no final test score yet. Continue an interrupted run with ",
            resume,
            ".",
        ]
    return el("div", *text, class_="note warn")


def _problems_note(view: _View) -> Html:
    if not view.run.problems:
        return Html("")
    return el(
        "div",
        el("strong", "Some run files could not be used:"),
        el("ul", [el("li", p) for p in view.run.problems]),
        class_="note bad",
    )


def _run_details(view: _View) -> Html:
    config = view.run.config
    models = _dict(config.get("models"))
    rows: list[tuple[str, Content]] = []
    for role in ("forward", "backward", "optimizer"):
        spec = _dict(models.get(role))
        if spec:
            where = _text(spec.get("base_url")) or "embedded"
            rows.append((f"{role} model", [el("code", _text(spec.get("model"))), f" ({where})"]))
    opt = _dict(config.get("optimizer"))
    if opt:
        keys = ("name", "batch_size", "backward", "use_gradients", "memory", "gate", "partial")
        shown = [f"{k}={_text(opt[k])}" for k in keys if opt.get(k) is not None]
        rows.append(("optimizer", ", ".join(shown)))
    edges = _dict(config.get("edges"))
    if edges:
        edge_keys = ("schedule", "samples", "batch_size", "lr", "baseline_decay", "temperature")
        shown = [f"{k}={_text(edges[k])}" for k in edge_keys if edges.get(k) is not None]
        rows.append(("edges", ", ".join(shown)))
    data = _dict(config.get("data"))
    sizes = view.run.summary or {}
    if data:
        splits = []
        for split in ("train", "gate", "test"):
            size = _int(sizes.get(f"{split}_size"))
            splits.append(f"{split} {_text(data.get(split))}" + (f" ({size})" if size else ""))
        rows.append(("data", " · ".join(splits)))
    if "seed" in config:
        rows.append(("seed", _text(config.get("seed"))))
    budget = _dict(config.get("budget"))
    if budget:
        rows.append(("budget", ", ".join(f"{k}={_text(v)}" for k, v in budget.items())))
    prompts = _list((view.run.checkpoint or {}).get("prompts"))
    if prompts:
        rows.append(("prompt versions", ", ".join(_text(p) for p in prompts)))
    if not rows:
        return Html("")
    return el(
        "table",
        [el("tr", el("th", k, scope="row"), el("td", v)) for k, v in rows],
        class_="details-table",
    )


def _card(label: str, value: Content, hint: str = "") -> Html:
    return el(
        "div",
        el("div", label, class_="label"),
        el("div", value, class_="value"),
        el("div", hint, class_="hint") if hint else None,
        class_="card",
    )


def _arrow(before: float | None, after: float | None) -> Html:
    return el(
        "span",
        _pct(before),
        el("span", " → ", class_="muted"),
        el("span", _pct(after), class_=_trend(before, after)),
    )


def _trend(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == after:
        return ""
    return "up" if after > before else "down"


def _status_class(status: str) -> str:
    return {"finished": "ok", "budget": "warn"}.get(status, "neutral")


# -- the graph -----------------------------------------------------------------------------


def _graph_section(view: _View) -> Html:
    graph = view.graph
    nodes = [_dict(n) for n in _list(graph.get("nodes"))]
    if not nodes:
        return _section("graph", "Graph", el("p", "No graph file in this run.", class_="muted"))
    output = _text(graph.get("output"))
    rows = []
    for node in nodes:
        name = _text(node.get("name"))
        kind = _text(node.get("type")) or "?"
        if kind == "llm":
            what: Content = ["llm · ", el("code", _text(node.get("llm")) or "forward")]
            body = _instruction_cell(
                view.initial_instructions.get(name, _text(node.get("instruction"))),
                view.best_instructions.get(name),
            )
        else:
            what = ["function · ", el("code", _text(node.get("fn")))]
            body = el("span", "(no instruction)", class_="muted")
        inputs = [el("code", _text(i)) for i in _list(node.get("inputs"))]
        rows.append(
            el(
                "tr",
                el(
                    "td",
                    el("code", name, class_="node"),
                    el("div", "output", class_="badge neutral") if name == output else None,
                ),
                el("td", what),
                el("td", _join(inputs, ", ") or el("span", "—", class_="muted")),
                el("td", body),
            )
        )
    inputs_line = el(
        "p",
        "Graph ",
        el("code", _text(graph.get("name")) or "graph"),
        " reads ",
        _join([el("code", _text(i)) for i in _list(graph.get("inputs"))], ", ") or "nothing",
        " and answers with node ",
        el("code", output),
        ".",
    )
    table = el(
        "table",
        el(
            "thead",
            el(
                "tr",
                el("th", "node"),
                el("th", "kind"),
                el("th", "inputs"),
                el("th", "instruction: initial → best"),
            ),
        ),
        el("tbody", rows),
        class_="graph-table",
    )
    swarm_line = None
    if view.swarm:
        swarm = view.best_swarm or view.initial_swarm
        agents = [_text(_dict(a).get("name")) for a in _list(swarm.get("agents"))]
        swarm_line = el(
            "p",
            "Composite graph of ",
            str(len(agents)),
            " agents (",
            _join([el("code", a) for a in agents], ", "),
            "), drawn as the graph its learned edges realise at the end of the run; an "
            "agent's node appears as ",
            el("code", "agent/node"),
            ", and agents connected to nothing are left out.",
            class_="muted",
        )
    return _section("graph", "Graph", swarm_line, inputs_line, _dag_svg(view, nodes), table)


def _instruction_cell(initial: str, best: str | None) -> Html:
    if best is None or best == initial:
        return el(
            "div",
            el("div", initial, class_="text"),
            el("div", "unchanged", class_="muted small"),
        )
    return el(
        "div",
        el("div", word_diff(initial, best), class_="text diff"),
        el("div", "best:", class_="muted small"),
        el("div", best, class_="text best"),
    )


def _dag_svg(view: _View, nodes: list[dict[str, Any]]) -> Html:
    """A left-to-right drawing: each node one column right of its deepest input."""
    graph_inputs = [_text(i) for i in _list(view.graph.get("inputs"))]
    layer: dict[str, int] = {name: 0 for name in graph_inputs}
    kind: dict[str, str] = {name: "input" for name in graph_inputs}
    edges: list[tuple[str, str]] = []
    for node in nodes:  # nodes are stored in topological order
        name = _text(node.get("name"))
        srcs = [_text(i) for i in _list(node.get("inputs"))]
        layer[name] = 1 + max((layer.get(s, 0) for s in srcs), default=0)
        kind[name] = _text(node.get("type")) or "?"
        edges += [(s, name) for s in srcs if s in layer]
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
    output = _text(view.graph.get("output"))
    for name, (x, y) in pos.items():
        changed = name in view.best_instructions and view.best_instructions.get(
            name
        ) != view.initial_instructions.get(name, view.best_instructions.get(name))
        sub = {"input": "graph input", "llm": "llm", "function": "function"}.get(kind[name], "?")
        if name == output:
            sub += " · output"
        if changed:
            sub += " · changed"
        css = (
            f"box {kind[name]}"
            + (" changed" if changed else "")
            + (" out" if name == output else "")
        )
        parts.append(
            el(
                "g",
                el("title", f"{name} ({sub})"),
                el("rect", x=x, y=y, width=box_w, height=box_h, rx=8, class_=css),
                el("text", _clip(name, 22), x=x + 12, y=y + 20, class_="box-name"),
                el("text", _clip(sub, 30), x=x + 12, y=y + 37, class_="box-sub"),
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


# -- the score curve -----------------------------------------------------------------------


def _curve_section(view: _View) -> Html:
    intro = el(
        "p",
        "Gate score of the incumbent (the best graph so far) before the first step and after "
        "each step, and the candidate each step proposed. A candidate is kept only when it "
        "beats the incumbent; an early-stopped candidate's score is over the examples scored "
        "before the gate gave up on it.",
        class_="muted",
    )
    if not view.steps and view.initial_gate is None:
        return _section(
            "curve", "Score curve", el("p", "No scores yet: the run has no step.", class_="muted")
        )
    swarm_note = (
        el(
            "p",
            "Composite graph: an edge step is not gated (REINFORCE follows its own estimate); "
            "when it changes the graph, the new graph's gate score becomes the incumbent, "
            "and it can be lower.",
            class_="muted small",
        )
        if view.swarm
        else None
    )
    legend = el(
        "div",
        _legend("line", "incumbent gate score"),
        _legend("dot accepted", "candidate, accepted"),
        _legend("dot rejected", "candidate, rejected"),
        _legend("dot early", "candidate, rejected early"),
        _legend("dot same", "no change proposed"),
        _legend("dot test", "test score (initial, final)"),
        class_="legend",
    )
    return _section("curve", "Score curve", intro, swarm_note, _curve_svg(view), legend)


def _legend(kind: str, text: str) -> Html:
    return el("span", el("span", "", class_=f"key {kind}"), text)


def _curve_svg(view: _View) -> Html:
    n = len(view.steps)
    width, height = 1000, 300
    left, right, top, bottom = 56, 24, 16, 40
    incumbent: list[tuple[int, float | None]] = [(0, view.initial_gate)]
    for i, s in enumerate(view.steps):
        incumbent.append((i + 1, s.best if s.best is not None else incumbent[-1][1]))
    if view.initial_gate is None and view.steps:
        incumbent[0] = (0, view.steps[0].incumbent)
    values = [v for _, v in incumbent if v is not None]
    values += [s.candidate for s in view.steps if s.candidate is not None]
    values += [v for v in (view.initial_test, view.final_test) if v is not None]
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
        parts.append(el("text", _pct(g), x=left - 8, y=sy(g) + 4, class_="axis", text_anchor="end"))
    every = max(1, math.ceil(n / 20))
    for x in range(n + 1):
        if x % every and x != n:
            continue
        parts.append(
            el(
                "text",
                "start" if x == 0 else str(x),
                x=sx(x),
                y=height - bottom + 18,
                class_="axis",
                text_anchor="middle",
            )
        )
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
                    el("title", f"incumbent after {x} steps: {_pct(v)}"),
                    cx=sx(x),
                    cy=sy(v),
                    r=3,
                    class_="inc-dot",
                )
            )
    for i, s in enumerate(view.steps):
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
        early = s.gate.get("early_stopped") is True
        kind = "accepted" if s.accepted else ("early" if early else "rejected")
        scored = f" on {_text(s.gate.get('evaluated'))}/{_text(s.gate.get('of'))}" if s.gate else ""
        tip = (
            f"{s.label}: candidate {_pct(s.candidate)}{scored} vs {_pct(s.incumbent)}, {s.decision}"
        )
        parts.append(
            el("circle", el("title", tip), cx=px, cy=sy(s.candidate), r=6, class_=f"pt {kind}")
        )
    for tx, tv, what in ((0, view.initial_test, "initial"), (n, view.final_test, "final")):
        if tv is not None:
            parts.append(
                el(
                    "rect",
                    el("title", f"{what} test score: {_pct(tv)}"),
                    x=sx(tx) - 5,
                    y=sy(tv) - 5,
                    width=10,
                    height=10,
                    class_="pt test",
                )
            )
    return el(
        "div",
        el(
            "svg",
            parts,
            xmlns="http://www.w3.org/2000/svg",
            viewBox=f"0 0 {width} {height}",
            role="img",
            aria_label="score curve",
            class_="curve",
        ),
        class_="chart",
    )


# -- the edges of a composite graph ---------------------------------------------------------

_EDGE_COLORS = (
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


def _edge_series(view: _View) -> dict[str, list[tuple[int, float]]]:
    """Edge name -> (step, probability) points: the initial spec at 0, then after each step."""
    temperature = _num(view.edges_config.get("temperature")) or 1.0
    series: dict[str, list[tuple[int, float]]] = {}
    for edge in _list(view.initial_swarm.get("edges")):
        e = _dict(edge)
        name = f"{_text(e.get('from'))}->{_text(e.get('to'))}"
        value = _num(e.get("logit"))
        if value is None:
            p0 = _num(e.get("p0"))
            series[name] = [(0, p0)] if p0 is not None else []
        else:
            z = max(-60.0, min(60.0, value / temperature))
            series[name] = [(0, 1.0 / (1.0 + math.exp(-z)))]
    for i, st in enumerate(view.steps):
        for name, value in _dict(st.row.get("edge_probabilities")).items():
            v = _num(value)
            if v is not None:
                series.setdefault(_text(name), []).append((i + 1, v))
    return series


def _edges_section(view: _View) -> Html:
    if not view.swarm:
        return Html("")
    series = _edge_series(view)
    threshold = _num(view.edges_config.get("threshold")) or 0.5
    intro = el(
        "p",
        "Each potential edge of the composite graph is kept with probability σ(logit / T). "
        "Edge steps move the logits by REINFORCE: sampled graphs that scored above the "
        "baseline make their choices more likely. The graph that is gated, tested and "
        f"exported keeps every edge whose probability is at least the threshold ({threshold:g}).",
        class_="muted",
    )
    if not series:
        return _section("edges", "Edges", intro, el("p", "No edge in this run.", class_="muted"))
    kept = set()
    if view.steps:
        kept = {_text(k) for k in _list(view.steps[-1].row.get("kept_edges"))}
    legend = []
    for i, (name, points) in enumerate(series.items()):
        color = _EDGE_COLORS[i % len(_EDGE_COLORS)]
        first = points[0][1] if points else None
        last = points[-1][1] if points else None
        legend.append(
            el(
                "span",
                el("span", "", class_="key swatch", style=f"background:{color}"),
                el("code", name),
                f" {_prob(first)} → {_prob(last)}",
                el("span", " kept", class_="badge ok") if name in kept else None,
            )
        )
    return _section(
        "edges",
        "Edges",
        intro,
        _edges_svg(view, series, threshold),
        el("div", legend, class_="legend edges-legend"),
        _edge_steps_table(view),
    )


def _edges_svg(
    view: _View, series: Mapping[str, list[tuple[int, float]]], threshold: float
) -> Html:
    n = len(view.steps)
    width, height = 1000, 300
    left, right, top, bottom = 56, 24, 16, 40
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
    every = max(1, math.ceil(n / 20))
    for x in range(n + 1):
        if x % every and x != n:
            continue
        parts.append(
            el(
                "text",
                "start" if x == 0 else str(x),
                x=sx(x),
                y=height - bottom + 18,
                class_="axis",
                text_anchor="middle",
            )
        )
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
        color = _EDGE_COLORS[i % len(_EDGE_COLORS)]
        d = " ".join(
            f"{'M' if j == 0 else 'L'}{sx(x):.1f},{sy(v):.1f}" for j, (x, v) in enumerate(points)
        )
        last_x, last_v = points[-1]
        parts.append(
            el(
                "g",
                el("title", f"{name}: {_prob(points[0][1])} → {_prob(last_v)}"),
                el("path", d=d, class_="edge-line", stroke=color),
                el("circle", cx=sx(last_x), cy=sy(last_v), r=3.5, fill=color),
            )
        )
    return el(
        "div",
        el(
            "svg",
            parts,
            xmlns="http://www.w3.org/2000/svg",
            viewBox=f"0 0 {width} {height}",
            role="img",
            aria_label="edge probabilities over the steps",
            class_="curve",
        ),
        class_="chart",
    )


def _edge_steps_table(view: _View) -> Html:
    rows = []
    for s in view.steps:
        e = s.edges
        if not e:
            continue
        samples = _list(e.get("samples"))
        flipped = [_text(f) for f in _list(e.get("flipped"))]
        gate = _dict(e.get("gate"))
        rows.append(
            el(
                "tr",
                el("td", el("a", s.label, href=f"#{s.anchor}")),
                el("td", f"{len(samples)} ({_text(e.get('distinct_graphs'))} distinct)"),
                el("td", _pct(_num(e.get("mean_utility"))), class_="num"),
                el("td", _pct(_num(e.get("baseline_used"))), class_="num"),
                el(
                    "td",
                    _join([el("code", _text(k)) for k in _list(e.get("kept"))], " ")
                    or el("span", "none", class_="muted"),
                    class_="changed",
                ),
                el("td", _join([el("code", f) for f in flipped], " ") or "—", class_="changed"),
                el("td", _pct(_num(gate.get("score"))) if gate else "—", class_="num"),
            )
        )
    if not rows:
        return Html("")
    head = el(
        "tr",
        el("th", "step"),
        el("th", "sampled graphs"),
        el("th", "mean utility", class_="num"),
        el("th", "baseline", class_="num"),
        el("th", "kept after the step"),
        el("th", "flipped"),
        el("th", "new gate score", class_="num"),
    )
    return el(
        "div",
        el("table", el("thead", head), el("tbody", rows), class_="steps-table"),
        class_="scroll",
    )


def _sampled_graphs(e: Mapping[str, Any]) -> Html:
    rows = []
    for i, sample in enumerate(_list(e.get("samples")), start=1):
        d = _dict(sample)
        decisions = _dict(d.get("decisions"))
        skipped = [_text(k) for k, v in decisions.items() if v is None]
        rows.append(
            el(
                "tr",
                el("td", str(i), class_="num"),
                el(
                    "td",
                    _join([el("code", _text(k)) for k in _list(d.get("included"))], " ")
                    or el("span", "no edge", class_="muted"),
                    el("div", f"skipped (cycle): {', '.join(skipped)}", class_="muted small")
                    if skipped
                    else None,
                ),
                el("td", _num_text(_num(d.get("log_prob"))), class_="num"),
                el("td", _pct(_num(d.get("utility"))), class_="num"),
            )
        )
    gradient = _dict(e.get("gradient"))
    grad_rows = [
        el("tr", el("td", el("code", _text(k))), el("td", _num_text(_num(v)), class_="num"))
        for k, v in gradient.items()
    ]
    return el(
        "div",
        el(
            "p",
            f"Batch of {len(_list(e.get('batch')))} training examples; mean utility "
            f"{_pct(_num(e.get('mean_utility')))} against the baseline "
            f"{_pct(_num(e.get('baseline_used')))} (after the step: "
            f"{_pct(_num(e.get('baseline')))}).",
            class_="muted small",
        ),
        el(
            "table",
            el(
                "thead",
                el(
                    "tr",
                    el("th", "#", class_="num"),
                    el("th", "edges kept"),
                    el("th", "log p(G)", class_="num"),
                    el("th", "utility", class_="num"),
                ),
            ),
            el("tbody", rows),
            class_="inner",
        ),
        el(
            "details",
            el("summary", f"REINFORCE gradient by edge ({len(grad_rows)})"),
            el(
                "table",
                el("thead", el("tr", el("th", "edge"), el("th", "gradient", class_="num"))),
                el("tbody", grad_rows),
                class_="inner",
            ),
        )
        if grad_rows
        else None,
    )


# -- the step table ------------------------------------------------------------------------


def _steps_section(view: _View) -> Html:
    if not view.steps:
        return _section("steps", "Steps", el("p", "No completed step yet.", class_="muted"))
    head = el(
        "tr",
        el("th", "step"),
        el("th", "batch"),
        el("th", "candidate", class_="num"),
        el("th", "incumbent", class_="num"),
        el("th", "decision"),
        el("th", "gate"),
        el("th", "changed"),
        el("th", "calls · tokens by phase"),
        el("th", "wall", class_="num"),
    )
    rows = []
    for s in view.steps:
        ids = [_text(_dict(b).get("id")) for b in _list(s.row.get("batch"))]
        if not ids:  # an edge step: the examples the sampled graphs were scored on
            ids = [_text(i) for i in _list(s.edges.get("batch"))]
        changed = list(s.changed)
        if s.kind == "both":
            changed += [_text(f) for f in _list(s.edges.get("flipped"))]
        rows.append(
            el(
                "tr",
                el("td", el("a", s.label, href=f"#{s.anchor}")),
                el("td", _join([el("code", i) for i in ids], " ") or "—", class_="ids"),
                el("td", _pct(s.candidate), class_="num"),
                el("td", _pct(s.incumbent), class_="num"),
                el("td", _decision_badge(s)),
                el("td", _gate_text(s.gate)),
                el("td", _join([el("code", c) for c in changed], " ") or "—", class_="changed"),
                el("td", _phase_cost(_dict(s.row.get("spend"))), class_="cost"),
                el("td", _seconds(_num(s.row.get("wall_s"))), class_="num"),
                class_=s.decision.replace(" ", "-"),
            )
        )
    note = el(
        "p",
        "Steps are numbered from 1 as the CLI prints them (history.jsonl counts from 0). "
        "Click a step for its proposals, gradients and examples.",
        class_="muted small",
    )
    table = el("table", el("thead", head), el("tbody", rows), class_="steps-table")
    return _section("steps", "Steps", el("div", table, class_="scroll"), note)


def _decision_badge(s: _Step) -> Html:
    css = {"accepted": "ok", "rejected": "bad", "graph changed": "warn"}.get(s.decision, "neutral")
    return el("span", s.decision, class_=f"badge {css}")


def _gate_text(gate: Mapping[str, Any]) -> Content:
    if not gate:
        return el("span", "not run", class_="muted")
    scored = f"{_text(gate.get('evaluated'))}/{_text(gate.get('of'))} examples"
    if gate.get("early_stopped") is not True:
        return scored
    saved = _int(gate.get("tokens_saved_estimate"))
    extra = f", ~{saved:,} tokens saved" if saved is not None else ""
    return [scored, el("br"), el("span", f"early stop{extra}", class_="early")]


def _phase_cost(spend: Mapping[str, Any]) -> Content:
    lines: list[Content] = []
    for phase in _ordered_phases(spend):
        s = _dict(spend.get(phase))
        calls = _int(s.get("calls")) or 0
        hits = _int(s.get("cache_hits")) or 0
        tokens = (_int(s.get("prompt_tokens")) or 0) + (_int(s.get("completion_tokens")) or 0)
        if not (calls or hits or tokens):
            continue
        cached = f" (+{hits:,} cached)" if hits else ""
        lines.append(
            el(
                "div",
                el("span", phase, class_="phase"),
                f" {calls:,} calls{cached} · {tokens:,} tok",
            )
        )
    return lines or el("span", "—", class_="muted")


# -- one section per step ------------------------------------------------------------------


def _step_details_section(view: _View) -> Html:
    if not view.steps:
        return Html("")
    return _section("step-details", "Step by step", *[_step_detail(view, s) for s in view.steps])


def _step_detail(view: _View, s: _Step) -> Html:
    row = s.row
    title = el(
        "h3",
        el("a", s.label, href=f"#{s.anchor}", class_="plain"),
        " ",
        _decision_badge(s),
        el(
            "span",
            f"candidate {_pct(s.candidate)} vs incumbent {_pct(s.incumbent)}"
            f" · best after the step {_pct(s.best)}",
            class_="muted sub",
        ),
    )
    proposals = [_proposal(_dict(p), s) for p in _list(row.get("proposals"))]
    gradients = _dict(row.get("gradients"))
    batch = [_dict(b) for b in _list(row.get("batch"))]
    backward = {_text(_dict(b).get("example_id")): _dict(b) for b in _list(row.get("backward"))}
    edges = s.edges
    parts: list[Content] = [
        title,
        [el("h4", "Sampled graphs (edge step)"), _sampled_graphs(edges)] if edges else None,
        None
        if s.kind == "edges"
        else [
            el("h4", "Proposals"),
            proposals or el("p", "No proposal in this step.", class_="muted"),
        ],
        el(
            "details",
            el("summary", f"Gradients by parameter ({len(gradients)})"),
            _gradients_table(gradients),
        )
        if gradients
        else None,
        el(
            "details",
            el("summary", f"Batch examples and the feedback each node received ({len(batch)})"),
            [_example(b, backward.get(_text(b.get("id")))) for b in batch],
        )
        if batch
        else None,
    ]
    return el("section", parts, id=s.anchor, class_=f"step {s.decision.replace(' ', '-')}")


def _proposal(p: Mapping[str, Any], s: _Step) -> Html:
    name = _text(p.get("parameter"))
    old = _text(p.get("old"))
    new = p.get("new")
    error = p.get("error")
    if error is not None or new is None:
        status, css = "failed", "bad"
    elif _text(new) == old:
        status, css = "same text proposed", "neutral"
    elif name in s.changed:
        status, css = ("kept", "ok") if s.accepted else ("rejected by the gate", "bad")
    else:
        status, css = "not applied", "neutral"
    head: list[Content] = [el("code", name), " ", el("span", status, class_=f"badge {css}")]
    if p.get("cached") is True:
        head += [" ", el("span", "cached", class_="badge neutral")]
    if status == "failed":
        head += [
            " ",
            el("span", el("strong", "error: "), _text(error) or "no new text", class_="error"),
        ]
    # The diff is the point of a proposal; the model call behind it is one click away.
    call: list[Content] = []
    if status in ("failed", "same text proposed"):
        call += [
            el("div", "current text (unchanged)", class_="role"),
            el("div", old, class_="text"),
        ]
    if p.get("raw") is not None:
        call += [el("div", "reply", class_="role"), el("div", _text(p.get("raw")), class_="text")]
    call += _messages(p.get("prompt"))
    return el(
        "div",
        el("div", head, class_="proposal-head"),
        el("div", word_diff(old, _text(new)), class_="text diff")
        if status not in ("failed", "same text proposed")
        else None,
        el("details", el("summary", "optimizer call"), call) if call else None,
        class_=f"proposal {css}",
    )


def _messages(messages: Any) -> list[Content]:
    out: list[Content] = []
    for m in _list(messages):
        msg = _dict(m)
        out.append(el("div", f"prompt · {_text(msg.get('role'))}", class_="role"))
        out.append(el("div", _text(msg.get("content")), class_="text"))
    return out


def _gradients_table(gradients: Mapping[str, Any]) -> Html:
    rows = [
        el("tr", el("td", el("code", name)), el("td", _message_list(msgs)))
        for name, msgs in gradients.items()
    ]
    return el(
        "table",
        el("thead", el("tr", el("th", "parameter"), el("th", "feedback it was given"))),
        el("tbody", rows),
        class_="inner",
    )


def _message_list(messages: Any) -> Html:
    items = [_text(m) for m in _list(messages)]
    if not items:
        return el("span", "none", class_="muted")
    return el("ol", [el("li", el("div", m, class_="text")) for m in items], class_="messages")


def _example(b: Mapping[str, Any], backward: Mapping[str, Any] | None) -> Html:
    score = _num(b.get("score"))
    inputs = _dict(b.get("inputs"))
    facts: list[tuple[str, Content]] = [
        *((f"input {k}", el("div", _text(v), class_="text")) for k, v in inputs.items()),
        ("target", el("div", _text(b.get("target")), class_="text")),
        ("output", el("div", _text(b.get("output")), class_="text")),
        ("feedback", el("div", _text(b.get("feedback")), class_="text")),
    ]
    outputs = _dict(b.get("node_outputs"))
    grads = _dict(b.get("node_gradients"))
    node_rows = [
        el(
            "tr",
            el("td", el("code", name)),
            el("td", el("div", _text(outputs.get(name)), class_="text")),
            el("td", _message_list(grads.get(name))),
        )
        for name in [*outputs, *(g for g in grads if g not in outputs)]
    ]
    calls = [_dict(c) for c in _list((backward or {}).get("calls"))]
    css = "ok" if score is not None and score >= 1.0 else "bad"
    return el(
        "details",
        el(
            "summary",
            el("code", _text(b.get("id"))),
            " ",
            el("span", f"score {_num_text(score)}", class_=f"badge {css}"),
            el(
                "span",
                f" output {_clip(_one_line(b.get('output')), 40)!r}"
                f" · target {_clip(_one_line(b.get('target')), 40)!r}",
                class_="muted sub",
            ),
        ),
        el(
            "table",
            [el("tr", el("th", k, scope="row"), el("td", v)) for k, v in facts],
            class_="facts",
        ),
        el(
            "table",
            el(
                "thead",
                el(
                    "tr", el("th", "node"), el("th", "its output"), el("th", "feedback it received")
                ),
            ),
            el("tbody", node_rows),
            class_="inner nodes",
        )
        if node_rows
        else None,
        el("h5", f"Backward calls ({len(calls)})") if calls else None,
        [_backward_call(c) for c in calls],
        class_="example",
    )


def _backward_call(c: Mapping[str, Any]) -> Html:
    inputs = [_text(i) for i in _list(c.get("inputs"))]
    missing = [_text(m) for m in _list(c.get("missing"))]
    error = c.get("error")
    return el(
        "div",
        el(
            "div",
            "from ",
            el("code", _text(c.get("successor"))),
            " to ",
            _join([el("code", i) for i in inputs], ", ") or "—",
            el("span", f" · no feedback for {', '.join(missing)}", class_="early")
            if missing
            else None,
            el("span", " · cached", class_="muted") if c.get("cached") is True else None,
        ),
        el("div", el("strong", "error: "), _text(error), class_="error") if error else None,
        el(
            "details",
            el("summary", "reply and prompt"),
            el("div", "reply", class_="role"),
            el("div", _text(c.get("raw")), class_="text"),
            _messages(c.get("prompt")),
        ),
        class_="call",
    )


# -- cost by phase -------------------------------------------------------------------------


_COST_COLUMNS = (
    ("calls", "calls"),
    ("cache_hits", "cache hits"),
    ("prompt_tokens", "prompt tokens"),
    ("completion_tokens", "completion tokens"),
    ("tokens", "tokens"),  # prompt + completion
    ("errors", "errors"),
    ("retries", "retries"),
)


def _cost_section(view: _View) -> Html:
    spend, source = _run_spend(view)
    if not spend:
        return _section("cost", "Cost by phase", el("p", "No cost recorded yet.", class_="muted"))
    counts: dict[str, dict[str, int]] = {}
    for phase in _ordered_phases(spend):
        raw = _dict(spend.get(phase))
        row = {key: _int(raw.get(key)) or 0 for key, _ in _COST_COLUMNS}
        row["tokens"] = row["prompt_tokens"] + row["completion_tokens"]
        counts[phase] = row
    total = {key: sum(row[key] for row in counts.values()) for key, _ in _COST_COLUMNS}
    # errors and retries only when something went wrong somewhere: a column of zeros is noise
    columns = [
        (k, label) for k, label in _COST_COLUMNS if k not in ("errors", "retries") or total[k]
    ]
    rows = []
    for phase, row in counts.items():
        share = row["tokens"] / total["tokens"] if total["tokens"] else 0.0
        bar = el(
            "div",
            el("div", class_="bar-fill", style=f"width:{share * 100:.1f}%"),
            class_="bar",
        )
        rows.append(
            el(
                "tr",
                el("td", phase),
                [el("td", f"{row[k]:,}", class_="num") for k, _ in columns],
                el("td", bar, el("span", f"{share:.0%}", class_="small muted")),
            )
        )
    rows.append(
        el(
            "tr",
            el("td", "total"),
            [el("td", f"{total[k]:,}", class_="num") for k, _ in columns],
            el("td", ""),
            class_="total",
        )
    )
    head = el(
        "tr",
        el("th", "phase"),
        [el("th", label, class_="num") for _, label in columns],
        el("th", "share of tokens"),
    )
    table = el("table", el("thead", head), el("tbody", rows), class_="cost-table")
    return _section("cost", "Cost by phase", table, el("p", source, class_="muted small"))


def _run_spend(view: _View) -> tuple[Mapping[str, Any], str]:
    """The most complete record of the run's spend: the summary, the checkpoint, or the
    sum of the steps (which leaves out the initial and final scoring)."""
    summary = _dict((view.run.summary or {}).get("spend"))
    if summary:
        return summary, "The whole run, from summary.json (initial and final scoring included)."
    checkpoint = _dict((view.run.checkpoint or {}).get("spend"))
    if checkpoint:
        return checkpoint, "Up to the last checkpoint, from checkpoint.json."
    total: dict[str, dict[str, int]] = {}
    for s in view.steps:
        for phase, counters in _dict(s.row.get("spend")).items():
            into = total.setdefault(phase, {})
            for key, value in _dict(counters).items():
                into[key] = into.get(key, 0) + (_int(value) or 0)
    return total, "Sum of the completed steps, from history.jsonl (initial scoring not included)."


def _ordered_phases(spend: Mapping[str, Any]) -> list[str]:
    known = [p for p in PHASES if p in spend]
    return known + sorted(p for p in spend if p not in PHASES)


# -- word diff -----------------------------------------------------------------------------

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(old: str, new: str) -> Html:
    """`old` → `new` with deleted words in <del> and inserted words in <ins>.

    Whitespace is diffed as its own token, and a run of whitespace alone between two
    changes is folded into them, so a rewritten sentence reads as one deletion and one
    insertion instead of alternating single words.
    """
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < 0.3:  # a rewrite, not an edit: word-level pieces would be noise
        return el("div", el("del", old), el("br"), el("ins", new), class_="rewrite")
    # (kind, old text, new text) chunks; kind "=" or "~"
    chunks: list[tuple[str, str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        chunks.append(("=" if op == "equal" else "~", "".join(a[i1:i2]), "".join(b[j1:j2])))
    merged: list[tuple[str, str, str]] = []
    for i, (kind, x, y) in enumerate(chunks):
        between_changes = 0 < i < len(chunks) - 1 and chunks[i + 1][0] == "~"
        if kind == "=" and between_changes and merged and merged[-1][0] == "~" and not x.strip():
            kind = "~"
        if kind == "~" and merged and merged[-1][0] == "~":
            _, px, py = merged.pop()
            x, y = px + x, py + y
        merged.append((kind, x, y))
    out: list[Content] = []
    for kind, x, y in merged:
        if kind == "=":
            out.append(x)
            continue
        if x:
            out.append(el("del", x))
        if y:
            out.append(el("ins", y))
    return esc(out)


# -- small helpers -------------------------------------------------------------------------


def _section(id_: str, title: str, *body: Content) -> Html:
    return el("section", el("h2", el("a", title, href=f"#{id_}", class_="plain")), *body, id=id_)


def _join(items: Sequence[Html], sep: str) -> Html:
    return Html(esc(sep).join(items))


def _text(value: Any) -> str:
    """Any JSON value as display text (None as empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _first_num(*values: Any) -> float | None:
    for v in values:
        if (n := _num(v)) is not None:
            return n
    return None


def _first_int(value: Any, default: int) -> int:
    n = _int(value)
    return default if n is None else n


def _int(value: Any) -> int | None:
    n = _num(value)
    return None if n is None else int(n)


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _prob(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _num_text(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    minutes, sec = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def _one_line(value: Any) -> str:
    return " ".join(_text(value).split())


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _version() -> str:
    from semgrad import __version__

    return __version__


_CSS = """
:root {
  --fg: #1f2328; --muted: #59636e; --border: #d1d9e0; --soft: #f6f8fa;
  --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --warn: #9a6700; --warn-bg: #fff8c5; --accent: #0969da; --accent-bg: #ddf4ff;
  --early: #bc4c00; --test: #8250df;
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "Noto Sans", "Liberation Sans",
    "DejaVu Sans", sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 28px 36px 64px; }
h1 { font-size: 28px; margin: 0 0 2px; font-weight: 650; }
h1 .name { color: var(--accent); }
h2 { font-size: 21px; margin: 44px 0 12px; padding-bottom: 6px;
  border-bottom: 1px solid var(--border); }
h3 { font-size: 17px; margin: 0 0 8px; }
h3 .sub { font-size: 14px; font-weight: 400; margin-left: 6px; }
.proposal-head { margin-bottom: 4px; }
.rewrite del, .rewrite ins { display: inline-block; margin: 2px 0; }
h4 { font-size: 14px; margin: 12px 0 6px; text-transform: uppercase; letter-spacing: .05em;
  color: var(--muted); }
h5 { font-size: 13px; margin: 12px 0 4px; color: var(--muted); }
a { color: var(--accent); text-decoration: none; }
a.plain { color: inherit; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas,
  "Liberation Mono", "DejaVu Sans Mono", monospace; font-size: 13px; }
code { background: var(--soft); border: 1px solid var(--border); border-radius: 4px;
  padding: 0 4px; }
.muted { color: var(--muted); }
.small { font-size: 13px; }
.up { color: var(--ok); }
.down { color: var(--bad); }
.note { margin: 14px 0; padding: 10px 14px; border-radius: 6px; border-left: 4px solid; }
.note.warn { background: var(--warn-bg); border-color: #d4a72c; }
.note.bad { background: var(--bad-bg); border-color: var(--bad); }
.note ul { margin: 4px 0 0; padding-left: 20px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(190px, 1fr));
  gap: 12px; margin: 18px 0; }
.card { border: 1px solid var(--border); border-radius: 8px; padding: 10px 14px; }
.card .label { font-size: 12px; color: var(--muted); text-transform: uppercase;
  letter-spacing: .05em; }
.card .value { font-size: 21px; font-weight: 600; white-space: nowrap; }
.card .hint { font-size: 12px; color: var(--muted); }
.badge { display: inline-block; padding: 1px 9px; border-radius: 999px; font-size: 12px;
  font-weight: 600; line-height: 1.6; vertical-align: middle; white-space: nowrap;
  border: 1px solid transparent; }
.card .value .badge { font-size: 16px; }
.badge.ok { background: var(--ok-bg); color: var(--ok); border-color: #aceebb; }
.badge.bad { background: var(--bad-bg); color: var(--bad); border-color: #ffcecb; }
.badge.warn { background: var(--warn-bg); color: var(--warn); border-color: #eac54f; }
.badge.neutral { background: var(--soft); color: var(--muted); border-color: var(--border); }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { border-bottom: 1px solid var(--border); padding: 7px 10px; text-align: left;
  vertical-align: top; }
thead th { background: var(--soft); font-weight: 600; font-size: 13px; white-space: nowrap; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.details-table { width: auto; font-size: 14px; }
.details-table th { color: var(--muted); font-weight: 500; padding-right: 24px;
  white-space: nowrap; }
.details-table th, .details-table td { border: none; padding: 2px 10px 2px 0; }
.text { white-space: pre-wrap; overflow-wrap: anywhere; background: var(--soft);
  border: 1px solid var(--border); border-radius: 6px; padding: 6px 10px; margin: 3px 0;
  font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, "Liberation Mono",
    "DejaVu Sans Mono", monospace; font-size: 13px; line-height: 1.45; }
.text.best { background: var(--accent-bg); border-color: #b6e3ff; }
.diff { background: #fff; }
del + ins { margin-left: 3px; }
ins { background: #aceebb; color: #0a3d1a; text-decoration: none; border-radius: 3px;
  padding: 0 1px; }
del { background: #ffcecb; color: #82071e; text-decoration: line-through;
  text-decoration-color: #cf222e88; border-radius: 3px; padding: 0 1px; }
.graph-table td:nth-child(1), .graph-table td:nth-child(2),
.graph-table td:nth-child(3) { white-space: nowrap; width: 1%; }
.graph-table .badge { margin-top: 4px; }
.dag { overflow-x: auto; margin: 8px 0 16px; }
.dag svg { max-width: 100%; height: auto; }
.box { fill: #fff; stroke: #8c959f; stroke-width: 1.2; }
.box.input { fill: var(--soft); stroke-dasharray: 4 3; }
.box.llm { fill: var(--accent-bg); stroke: #54aeff; }
.box.function { fill: #fbefff; stroke: #c297ff; }
.box.changed { fill: #fff1e5; stroke: #fb8f44; }
.box.out { stroke-width: 2.6; }
.box-name { font: 600 14px ui-monospace, "DejaVu Sans Mono", monospace; fill: var(--fg); }
.box-sub { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: var(--muted); }
.edge { fill: none; stroke: #8c959f; stroke-width: 1.5; }
.chart { border: 1px solid var(--border); border-radius: 8px; padding: 8px; }
.curve { width: 100%; height: auto; display: block; }
.curve .grid { stroke: #eaeef2; stroke-width: 1; }
.curve .axis { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: var(--muted); }
.curve .incumbent { fill: none; stroke: var(--accent); stroke-width: 2.5; }
.curve .inc-dot { fill: var(--accent); }
.pt.accepted { fill: var(--ok); stroke: #fff; stroke-width: 1.5; }
.pt.rejected { fill: #fff; stroke: var(--bad); stroke-width: 2.5; }
.pt.early { fill: #fff; stroke: var(--early); stroke-width: 2.5; stroke-dasharray: 3 2; }
.pt.same { fill: #fff; stroke: #8c959f; stroke-width: 1.5; }
.pt.test { fill: var(--test); }
.legend { display: flex; flex-wrap: wrap; gap: 6px 20px; font-size: 13px; color: var(--muted);
  margin: 8px 4px; }
.legend .key { display: inline-block; width: 12px; height: 12px; margin-right: 6px;
  vertical-align: -1px; border-radius: 50%; }
.key.line { width: 18px; height: 3px; border-radius: 2px; background: var(--accent);
  vertical-align: 3px; }
.key.accepted { background: var(--ok); }
.key.rejected { border: 2.5px solid var(--bad); }
.key.early { border: 2.5px dashed var(--early); }
.key.same { border: 1.5px solid #8c959f; }
.key.test { background: var(--test); border-radius: 2px; }
.scroll { overflow-x: auto; }
.curve .threshold { stroke: #8c959f; stroke-width: 1.5; stroke-dasharray: 6 4; }
.curve .edge-line { fill: none; stroke-width: 2.2; }
.key.swatch { border-radius: 2px; }
.edges-legend code { font-size: 12px; }
.steps-table td.changed code { white-space: nowrap; display: inline-block; margin: 1px 0; }
.steps-table td { font-size: 13px; }
.steps-table tr.accepted td:first-child { box-shadow: inset 4px 0 var(--ok); }
.steps-table tr.rejected td:first-child { box-shadow: inset 4px 0 var(--bad); }
.steps-table tr.no-change td:first-child { box-shadow: inset 4px 0 #d1d9e0; }
.steps-table .ids code { font-size: 12px; }
.steps-table td:first-child, .steps-table td.cost { white-space: nowrap; }
.steps-table td.changed code { font-size: 12px; }
.phase { display: inline-block; min-width: 72px; color: var(--muted); }
.early { color: var(--early); font-weight: 600; }
section.step { border: 1px solid var(--border); border-left: 5px solid #d1d9e0;
  border-radius: 8px; padding: 14px 18px; margin: 16px 0; }
section.step.accepted { border-left-color: var(--ok); }
section.step.rejected { border-left-color: var(--bad); }
.proposal { border: 1px solid var(--border); border-radius: 6px; padding: 8px 12px;
  margin: 8px 0; background: #fff; }
.proposal.ok { border-color: #aceebb; }
.proposal.bad { border-color: #ffcecb; }
.error { color: var(--bad); margin: 4px 0; }
details { border: 1px solid var(--border); border-radius: 6px; padding: 4px 10px;
  margin: 6px 0; background: #fff; }
details > summary { cursor: pointer; font-weight: 600; font-size: 14px; padding: 2px 0; }
details[open] > summary { margin-bottom: 6px; }
details details { background: var(--soft); }
details details .text { background: #fff; }
.facts th { width: 110px; color: var(--muted); font-weight: 500; white-space: nowrap; }
.facts th, .facts td, .inner td, .inner th { border-bottom: 1px solid #eaeef2; padding: 4px 8px; }
table.inner { margin: 8px 0; }
.inner td:first-child { width: 1%; white-space: nowrap; }
.inner.nodes td:nth-child(2) { width: 45%; }
summary .sub { font-weight: 400; font-size: 13px; margin-left: 6px; }
ol.messages { margin: 0; padding-left: 22px; }
.call { border-top: 1px dashed var(--border); padding: 6px 0; }
.role { font-size: 12px; color: var(--muted); text-transform: uppercase; margin-top: 6px;
  letter-spacing: .04em; }
.bar { display: inline-block; width: 160px; height: 10px; background: #eaeef2;
  border-radius: 5px; overflow: hidden; vertical-align: middle; margin-right: 8px; }
.bar-fill { height: 100%; background: var(--accent); }
tr.total td { font-weight: 700; border-top: 2px solid var(--border); }
footer { margin-top: 48px; font-size: 12px; color: var(--muted); }
"""
