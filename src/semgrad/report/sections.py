"""The report's sections, top to bottom: the header (status, scores, models), the graph
(a drawing and a table of nodes with their initial and best instructions), the score
curve, for a composite graph the edges, the step table, one section per step (proposal
diffs, gradients, the batch examples, gate scores by item, sampled graphs) and the cost
by phase. Each is a function of the typed `Run` (semgrad.report.load) to `Html`."""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from semgrad.report.load import (
    BackwardCall,
    BatchItem,
    DemoView,
    EdgeStep,
    Gate,
    Message,
    PhaseSpend,
    Proposal,
    Run,
    Spend,
    Step,
)
from semgrad.report.markup import (
    Content,
    Html,
    clip,
    el,
    join,
    num_text,
    pct,
    prob,
    seconds,
    section,
    word_diff,
)
from semgrad.report.svg import EDGE_COLORS, curve_svg, dag_svg, edge_series, edges_svg

__all__ = [
    "cost_section",
    "curve_section",
    "edges_section",
    "graph_section",
    "header",
    "step_details_section",
    "steps_section",
]


# -- header --------------------------------------------------------------------------------


def header(run: Run) -> Html:
    planned = f" of {run.steps_planned}" if run.steps_planned is not None else ""
    cards = [
        _card("status", el("span", run.status, class_=f"badge {_status_class(run.status)}")),
        _card("steps", f"{run.steps_done}{planned}"),
        _card("test score", _arrow(run.initial_test, run.final_test), "initial → final"),
        _card("gate score", _arrow(run.initial_gate, run.best_gate), "initial → best"),
        _card(
            "wall time",
            "—" if run.wall_s is None else seconds(run.wall_s),
            "sum over the steps",
        ),
    ]
    if run.truncated:
        cards.append(_card("truncated replies", f"{run.truncated:,}", "cut at max_tokens"))
    return el(
        "header",
        el("h1", "semgrad run ", el("span", run.name, class_="name")),
        el("div", run.root, class_="muted mono"),
        _unfinished_note(run),
        _problems_note(run),
        el("div", *cards, class_="cards"),
        _run_details(run),
        id="top",
    )


def _unfinished_note(run: Run) -> Html:
    done = f"{run.steps_done}" + (f" of {run.steps_planned}" if run.steps_planned else "")
    resume = el("code", f"semgrad resume {shlex.quote(run.root)}")
    if run.status == "finished":
        return Html("")
    if run.status == "budget":
        text: list[Content] = [
            el("strong", "Unfinished: stopped at its budget"),
            f" after {done} steps. The scores are those of the best graph so far and there is "
            "no final test score. Continue with ",
            resume,
            " (raise the budget with ",
            el("code", "--budget KEY=N"),
            ").",
        ]
    elif run.status == "not started":
        text = [
            el("strong", "Unfinished: no step yet."),
            " The run has no checkpoint: it is still scoring the initial graph, or it "
            "stopped before that finished. Start it again, or continue with ",
            resume,
            ".",
        ]
    else:
        text = [
            el("strong", f"Unfinished (status {run.status!r})"),
            f": {done} steps completed so far. The run is still going, or it was stopped "
            "or crashed; there is no final test score yet. Continue an interrupted run with ",
            resume,
            ".",
        ]
    return el("div", *text, class_="note warn")


def _problems_note(run: Run) -> Html:
    if not run.problems:
        return Html("")
    return el(
        "div",
        el("strong", "Some run files could not be used:"),
        el("ul", [el("li", p) for p in run.problems]),
        class_="note bad",
    )


def _run_details(run: Run) -> Html:
    details = run.details
    rows: list[tuple[str, Content]] = []
    for role, model, where in details.models:
        rows.append((f"{role} model", [el("code", model), f" ({where})"]))
    if details.optimizer is not None:
        rows.append(("optimizer", ", ".join(f"{k}={v}" for k, v in details.optimizer)))
    if details.edges is not None:
        rows.append(("edges", ", ".join(f"{k}={v}" for k, v in details.edges)))
    if details.data:
        splits = [f"{s} {spec}" + (f" ({size})" if size else "") for s, spec, size in details.data]
        rows.append(("data", " · ".join(splits)))
    if details.seed is not None:
        rows.append(("seed", details.seed))
    if details.budget:
        rows.append(("budget", ", ".join(f"{k}={v}" for k, v in details.budget)))
    if details.prompts:
        rows.append(("prompt versions", ", ".join(details.prompts)))
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
        pct(before),
        el("span", " → ", class_="muted"),
        el("span", pct(after), class_=_trend(before, after)),
    )


def _trend(before: float | None, after: float | None) -> str:
    if before is None or after is None or before == after:
        return ""
    return "up" if after > before else "down"


def _status_class(status: str) -> str:
    return {"finished": "ok", "budget": "warn"}.get(status, "neutral")


# -- the graph -----------------------------------------------------------------------------


def graph_section(run: Run) -> Html:
    graph = run.graph
    if graph is None:
        return section("graph", "Graph", el("p", "No graph file in this run.", class_="muted"))
    rows = []
    for node in graph.nodes:
        if node.type == "llm":
            what: Content = ["llm · ", el("code", node.llm or "forward")]
            body = _instruction_cell(
                run.initial_instructions.get(node.name, node.instruction or ""),
                run.best_instructions.get(node.name),
            )
            demos = run.best_demos.get(node.name)
            if demos:
                body = el("div", body, _demos_cell(demos))
        else:
            what = ["function · ", el("code", node.fn)]
            body = el("span", "(no instruction)", class_="muted")
        inputs = [el("code", i) for i in node.inputs]
        rows.append(
            el(
                "tr",
                el(
                    "td",
                    el("code", node.name, class_="node"),
                    el("div", "output", class_="badge neutral")
                    if node.name == graph.output
                    else None,
                ),
                el("td", what),
                el("td", join(inputs, ", ") or el("span", "—", class_="muted")),
                el("td", body),
            )
        )
    inputs_line = el(
        "p",
        "Graph ",
        el("code", graph.name or "graph"),
        " reads ",
        join([el("code", i) for i in graph.inputs], ", ") or "nothing",
        " and answers with node ",
        el("code", graph.output),
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
    if run.swarm:
        swarm_line = el(
            "p",
            "Composite graph of ",
            str(len(run.agents)),
            " agents (",
            join([el("code", a) for a in run.agents], ", "),
            "), drawn as the graph its learned edges realise at the end of the run; an "
            "agent's node appears as ",
            el("code", "agent/node"),
            ", and agents connected to nothing are left out.",
            class_="muted",
        )
    drawing = dag_svg(graph, run.initial_instructions, run.best_instructions)
    return section("graph", "Graph", swarm_line, inputs_line, drawing, table)


def _demos_cell(demos: Sequence[DemoView]) -> Html:
    """The demonstrations a node uses in the final graph, as the prompt shows them: its
    inputs, then the output it demonstrates."""
    items = [
        el(
            "li",
            [el("div", [el("span", f"{k}: ", class_="muted"), clip(v, 300)]) for k, v in d.inputs],
            el(
                "div",
                el("span", "→ ", class_="muted"),
                el("span", clip(d.output, 300), class_="text"),
            ),
        )
        for d in demos
    ]
    noun = "demo" if len(demos) == 1 else "demos"
    return el(
        "details",
        el("summary", f"{len(demos)} {noun} in use (prior turns of the prompt)"),
        el("ol", items),
        class_="demos",
    )


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


# -- the score curve -----------------------------------------------------------------------


def curve_section(run: Run) -> Html:
    intro = el(
        "p",
        "Gate score of the incumbent (the best graph so far) before the first step and after "
        "each step, and the candidate each step proposed. A candidate is kept only when it "
        "beats the incumbent; an early-stopped candidate's score is over the examples scored "
        "before the gate gave up on it.",
        class_="muted",
    )
    if not run.steps and run.initial_gate is None:
        return section(
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
        if run.swarm
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
    return section("curve", "Score curve", intro, swarm_note, curve_svg(run), legend)


def _legend(kind: str, text: str) -> Html:
    return el("span", el("span", "", class_=f"key {kind}"), text)


# -- the edges of a composite graph ---------------------------------------------------------


def edges_section(run: Run) -> Html:
    if not run.swarm:
        return Html("")
    series = edge_series(run)
    intro = el(
        "p",
        "Each potential edge of the composite graph is kept with probability σ(logit / T). "
        "Edge steps move the logits by REINFORCE: sampled graphs that scored above the "
        "baseline make their choices more likely. The graph that is gated, tested and "
        f"exported keeps every edge whose probability is at least the threshold "
        f"({run.threshold:g}).",
        class_="muted",
    )
    if not series:
        return section("edges", "Edges", intro, el("p", "No edge in this run.", class_="muted"))
    kept = set(run.steps[-1].kept_edges) if run.steps else set()
    legend = []
    for i, (name, points) in enumerate(series.items()):
        color = EDGE_COLORS[i % len(EDGE_COLORS)]
        first = points[0][1] if points else None
        last = points[-1][1] if points else None
        legend.append(
            el(
                "span",
                el("span", "", class_="key swatch", style=f"background:{color}"),
                el("code", name),
                f" {prob(first)} → {prob(last)}",
                el("span", " kept", class_="badge ok") if name in kept else None,
            )
        )
    return section(
        "edges",
        "Edges",
        intro,
        edges_svg(run, series),
        el("div", legend, class_="legend edges-legend"),
        _edge_steps_table(run),
    )


def _edge_steps_table(run: Run) -> Html:
    rows = []
    for s in run.steps:
        e = s.edges
        if e is None:
            continue
        rows.append(
            el(
                "tr",
                el("td", el("a", s.label, href=f"#{s.anchor}")),
                el("td", f"{len(e.samples)} ({e.distinct_graphs} distinct)"),
                el("td", pct(e.mean_utility), class_="num"),
                el("td", pct(e.baseline_used), class_="num"),
                el(
                    "td",
                    join([el("code", k) for k in e.kept], " ")
                    or el("span", "none", class_="muted"),
                    class_="changed",
                ),
                el("td", join([el("code", f) for f in e.flipped], " ") or "—", class_="changed"),
                el("td", pct(e.gate.score) if e.gate else "—", class_="num"),
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


def _sampled_graphs(e: EdgeStep) -> Html:
    rows = []
    for i, sample in enumerate(e.samples, start=1):
        rows.append(
            el(
                "tr",
                el("td", str(i), class_="num"),
                el(
                    "td",
                    join([el("code", k) for k in sample.included], " ")
                    or el("span", "no edge", class_="muted"),
                    el(
                        "div",
                        f"skipped (cycle): {', '.join(sample.skipped)}",
                        class_="muted small",
                    )
                    if sample.skipped
                    else None,
                ),
                el("td", num_text(sample.log_prob), class_="num"),
                el("td", pct(sample.utility), class_="num"),
            )
        )
    grad_rows = [
        el("tr", el("td", el("code", k)), el("td", num_text(v), class_="num"))
        for k, v in e.gradient
    ]
    return el(
        "div",
        el(
            "p",
            f"Batch of {len(e.batch)} training examples; mean utility "
            f"{pct(e.mean_utility)} against the baseline "
            f"{pct(e.baseline_used)} (after the step: "
            f"{pct(e.baseline)}).",
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


def steps_section(run: Run) -> Html:
    if not run.steps:
        return section("steps", "Steps", el("p", "No completed step yet.", class_="muted"))
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
    for s in run.steps:
        changed = list(s.changed)
        if s.kind == "both" and s.edges is not None:
            changed += s.edges.flipped
        rows.append(
            el(
                "tr",
                el("td", el("a", s.label, href=f"#{s.anchor}")),
                el("td", join([el("code", i) for i in s.batch_ids], " ") or "—", class_="ids"),
                el("td", _candidate(s), class_="num"),
                el("td", pct(s.incumbent), class_="num"),
                el("td", _decision_badge(s)),
                el("td", _gate_text(s.gate)),
                el("td", join([el("code", c) for c in changed], " ") or "—", class_="changed"),
                el("td", _phase_cost(s.spend), class_="cost"),
                el("td", seconds(s.wall_s), class_="num"),
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
    return section("steps", "Steps", el("div", table, class_="scroll"), note)


def _candidate(s: Step) -> Content:
    """The candidate's score; a partial one (early stop) says so: it is the mean over the
    items scored, not a gate score."""
    if s.candidate is None or s.gate is None or not s.gate.partial:
        return pct(s.candidate)
    return [pct(s.candidate), el("br"), el("span", "partial", class_="early")]


def _decision_badge(s: Step) -> Html:
    css = {"accepted": "ok", "rejected": "bad", "graph changed": "warn"}.get(s.decision, "neutral")
    return el("span", s.decision, class_=f"badge {css}")


def _gate_text(gate: Gate | None) -> Content:
    if gate is None:
        return el("span", "not run", class_="muted")
    scored = f"{_count(gate.evaluated)}/{_count(gate.of)} examples"
    if not gate.early_stopped:
        return scored
    saved = gate.tokens_saved_estimate
    extra = f", ~{saved:,} tokens saved" if saved is not None else ""
    return [scored, el("br"), el("span", f"early stop{extra}", class_="early")]


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _phase_cost(spend: Spend) -> Content:
    lines: list[Content] = []
    for phase, s in spend.items():
        if not (s.calls or s.cache_hits or s.tokens):
            continue
        cached = f" (+{s.cache_hits:,} cached)" if s.cache_hits else ""
        lines.append(
            el(
                "div",
                el("span", phase, class_="phase"),
                f" {s.calls:,} calls{cached} · {s.tokens:,} tok",
            )
        )
    return lines or el("span", "—", class_="muted")


# -- one section per step ------------------------------------------------------------------


def step_details_section(run: Run) -> Html:
    if not run.steps:
        return Html("")
    return section("step-details", "Step by step", *[_step_detail(s) for s in run.steps])


def _step_detail(s: Step) -> Html:
    truncated = f" · {s.truncated} replies cut off at max_tokens" if s.truncated else ""
    title = el(
        "h3",
        el("a", s.label, href=f"#{s.anchor}", class_="plain"),
        " ",
        _decision_badge(s),
        el(
            "span",
            f"candidate {pct(s.candidate)} vs incumbent {pct(s.incumbent)}"
            f" · best after the step {pct(s.best)}{truncated}",
            class_="muted sub",
        ),
    )
    proposals = [_proposal(p, s) for p in s.proposals]
    parts: list[Content] = [
        title,
        [el("h4", "Sampled graphs (edge step)"), _sampled_graphs(s.edges)] if s.edges else None,
        _candidates_table(s) if s.candidates else None,
        None
        if s.kind == "edges"
        else [
            el("h4", "Proposals"),
            proposals or el("p", "No proposal in this step.", class_="muted"),
        ],
        _gate_scores(s.gate),
        el(
            "details",
            el("summary", f"Gradients by parameter ({len(s.gradients)})"),
            _gradients_table(s.gradients),
        )
        if s.gradients
        else None,
        el(
            "details",
            el("summary", f"Batch examples and the feedback each node received ({len(s.batch)})"),
            [_example(b, s.backward.get(b.id)) for b in s.batch],
        )
        if s.batch
        else None,
    ]
    return el("section", parts, id=s.anchor, class_=f"step {s.decision.replace(' ', '-')}")


def _candidates_table(s: Step) -> Html:
    """A search step's candidates: what each changed, its screen against the incumbent on
    the same items, whether it survived and was gated (the best `gate_survivors` of the
    survivors are), its gate score and paired decision."""
    rows = []
    for c in s.candidates:
        changes: list[Content] = [
            el("div", el("code", name), " ", _one_line(text)) for name, text in c.changes.items()
        ]
        if c.error:
            changes.append(el("div", el("strong", "not made: "), c.error, class_="error"))
        screen: Content = c.screen_decision.text if c.screen_decision else "—"
        if c.shown:  # items its demonstrations show: neither scored nor credited there
            screen = [
                screen,
                el("br"),
                el(
                    "span",
                    f"left out: {len(c.shown)} item(s) its demonstrations show",
                    class_="muted",
                    title=", ".join(c.shown),
                ),
            ]
        if c.gate is None:
            gate: Content = "—"
        elif c.gate.partial:
            gate = [
                f"{pct(c.gate.mean)} on {_count(c.gate.evaluated)}/{_count(c.gate.of)}",
                el("br"),
                el("span", "partial: stopped early", class_="early"),
            ]
        else:
            gate = pct(c.gate.score)
        decision = c.decision.text if c.decision else "—"
        if c.accepted or c.gate:
            outcome = "accepted" if c.accepted else "gated"
        elif c.survived:  # beat the incumbent on the screen, ranked below the gated ones
            outcome = "survived, not gated"
        else:
            outcome = "screened out" if c.screen else "not scored"
        css = "ok" if c.accepted else ("neutral" if c.error else "bad")
        rows.append(
            el(
                "tr",
                el("td", str(c.index), class_="num"),
                el("td", c.kind + (f" #{c.sample_index}" if c.kind == "sample" else "")),
                el("td", changes),
                el("td", screen),
                el("td", gate),
                el("td", decision),
                el("td", el("span", outcome, class_=f"badge {css}")),
            )
        )
    why: list[Content] = []
    if s.parent is not None:
        parent = "the initial program" if s.parent == 0 else f"program {s.parent} of the pool"
        why.append(
            el(
                "p",
                el("strong", "Parent: "),
                f"{parent}, drawn from the Pareto front (gate {pct(s.incumbent)}); "
                f"{s.pool} programs in the pool after the step",
                class_="muted",
            )
        )
    if s.blame:
        why.append(el("p", el("strong", "Blamed node: "), s.blame, class_="muted"))
    if s.winner is not None:
        why.append(
            el(
                "p",
                el("strong", "Why the winner won: "),
                f"paired with the incumbent {s.winner.text}",
            )
        )
    versus = "parent" if s.parent is not None else "incumbent"
    head = ("#", "kind", "changes", f"screen vs {versus}", "gate", "paired decision", "outcome")
    return el(
        "div",
        el("h4", f"Candidates ({len(s.candidates)}; screen on {len(s.screen_items)} items)"),
        why,
        el(
            "table",
            el("thead", el("tr", [el("th", h) for h in head])),
            el("tbody", rows),
            class_="inner candidates",
        ),
    )


def _gate_scores(gate: Gate | None) -> Html | None:
    """The candidate's score on each gate item, when the run recorded them."""
    if gate is None or not gate.scores:
        return None
    scored = f"{len(gate.scores)} of {_count(gate.of)}" if gate.partial else str(len(gate.scores))
    rows = [
        el("tr", el("td", el("code", item)), el("td", num_text(score), class_="num"))
        for item, score in gate.scores
    ]
    return el(
        "details",
        el(
            "summary",
            f"Gate scores by item ({scored})",
            el("span", " partial: the gate stopped early", class_="early")
            if gate.partial
            else None,
        ),
        el(
            "table",
            el("thead", el("tr", el("th", "example"), el("th", "score", class_="num"))),
            el("tbody", rows),
            class_="inner",
        ),
    )


def _proposal(p: Proposal, s: Step) -> Html:
    if p.error is not None or p.new is None:
        status, css = "failed", "bad"
    elif p.new == p.old:
        status, css = "same text proposed", "neutral"
    elif p.parameter in s.changed and (not s.candidates or s.state.get(p.parameter) == p.new):
        status, css = ("kept", "ok") if s.accepted else ("rejected by the gate", "bad")
    elif s.candidates:  # a search step: the candidates table says what became of it
        status, css = "not kept", "neutral"
    else:
        status, css = "not applied", "neutral"
    head: list[Content] = [el("code", p.parameter), " ", el("span", status, class_=f"badge {css}")]
    if p.cached:
        head += [" ", el("span", "cached", class_="badge neutral")]
    if p.truncated:
        head += [" ", el("span", "cut off at max_tokens", class_="badge warn")]
    if status == "failed":
        head += [
            " ",
            el("span", el("strong", "error: "), p.error or "no new text", class_="error"),
        ]
    # The diff is the point of a proposal; the model call behind it is one click away.
    call: list[Content] = []
    if status in ("failed", "same text proposed"):
        call += [
            el("div", "current text (unchanged)", class_="role"),
            el("div", p.old, class_="text"),
        ]
    if p.raw is not None:
        call += [el("div", "reply", class_="role"), el("div", p.raw, class_="text")]
    call += _messages(p.prompt)
    return el(
        "div",
        el("div", head, class_="proposal-head"),
        el("div", word_diff(p.old, p.new or ""), class_="text diff")
        if status not in ("failed", "same text proposed")
        else None,
        el("details", el("summary", "optimizer call"), call) if call else None,
        class_=f"proposal {css}",
    )


def _messages(messages: tuple[Message, ...]) -> list[Content]:
    out: list[Content] = []
    for m in messages:
        out.append(el("div", f"prompt · {m.role}", class_="role"))
        out.append(el("div", m.content, class_="text"))
    return out


def _gradients_table(gradients: Mapping[str, tuple[str, ...]]) -> Html:
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


def _message_list(messages: tuple[str, ...]) -> Html:
    if not messages:
        return el("span", "none", class_="muted")
    return el("ol", [el("li", el("div", m, class_="text")) for m in messages], class_="messages")


def _example(b: BatchItem, calls: tuple[BackwardCall, ...] | None) -> Html:
    facts: list[tuple[str, Content]] = [
        *((f"input {k}", el("div", v, class_="text")) for k, v in b.inputs.items()),
        ("target", el("div", b.target, class_="text")),
        ("output", el("div", b.output, class_="text")),
        ("feedback", el("div", b.feedback, class_="text")),
    ]
    outputs, grads = b.node_outputs, b.node_gradients
    node_rows = [
        el(
            "tr",
            el("td", el("code", name)),
            el(
                "td",
                el("div", outputs.get(name, ""), class_="text"),
                el("div", "cut off at max_tokens", class_="early small")
                if name in b.truncated
                else None,
            ),
            el("td", _message_list(grads.get(name, ()))),
        )
        for name in [*outputs, *(g for g in grads if g not in outputs)]
    ]
    calls = calls or ()
    css = "ok" if b.score is not None and b.score >= 1.0 else "bad"
    return el(
        "details",
        el(
            "summary",
            el("code", b.id),
            " ",
            el("span", f"score {num_text(b.score)}", class_=f"badge {css}"),
            el(
                "span",
                f" output {clip(_one_line(b.output), 40)!r}"
                f" · target {clip(_one_line(b.target), 40)!r}",
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


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _backward_call(c: BackwardCall) -> Html:
    return el(
        "div",
        el(
            "div",
            "from ",
            el("code", c.successor),
            " to ",
            join([el("code", i) for i in c.inputs], ", ") or "—",
            el("span", f" · no feedback for {', '.join(c.missing)}", class_="early")
            if c.missing
            else None,
            el("span", " · cached", class_="muted") if c.cached else None,
            el("span", " · cut off at max_tokens", class_="early") if c.truncated else None,
        ),
        el("div", el("strong", "error: "), c.error, class_="error") if c.error else None,
        el(
            "details",
            el("summary", "reply and prompt"),
            el("div", "reply", class_="role"),
            el("div", c.raw, class_="text"),
            _messages(c.prompt),
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

_SPEND_SOURCES = {
    "summary": "The whole run, from summary.json (initial and final scoring included).",
    "checkpoint": "Up to the last checkpoint, from checkpoint.json.",
    "steps": "Sum of the completed steps, from history.jsonl (initial scoring not included).",
}


def _counters(s: PhaseSpend) -> dict[str, int]:
    return {
        "calls": s.calls,
        "cache_hits": s.cache_hits,
        "prompt_tokens": s.prompt_tokens,
        "completion_tokens": s.completion_tokens,
        "tokens": s.tokens,
        "errors": s.errors,
        "retries": s.retries,
    }


def cost_section(run: Run) -> Html:
    if not run.spend:
        return section("cost", "Cost by phase", el("p", "No cost recorded yet.", class_="muted"))
    counts = {phase: _counters(s) for phase, s in run.spend.items()}
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
    source = _SPEND_SOURCES[run.spend_source]
    return section("cost", "Cost by phase", table, el("p", source, class_="muted small"))
