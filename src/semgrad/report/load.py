"""Reading a run directory for the report: the only part of the report that touches files
or reads the run files' JSON.

`load_run(RUN_DIR)` reads the files as they are (`RunData`: config, checkpoint, summary,
graphs, history lines) and notes damaged ones; `read_run(data)` turns that into the typed
`Run` the sections draw, with fallbacks between files (summary, then checkpoint, then
history) so a partial run still shows what it has. Every tolerance for missing or odd
fields lives here: the sections see only typed values.

History lines are read field by field into `Step` (and `Gate`, `BatchItem`, `Proposal`,
`BackwardCall`, `EdgeStep`): the field names follow the trainer's run records. Gate
results may carry per-item `scores` and a `partial` flag (version 1); an older line's
early-stopped gate is read as partial, its `score` being the mean over the items scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from semgrad.errors import DataError, SemgradError
from semgrad.llm.types import PHASES
from semgrad.optim.runfiles import RunFiles
from semgrad.swarm.spec import swarm_from_dict

__all__ = [
    "BackwardCall",
    "BatchItem",
    "EdgeStep",
    "Gate",
    "GraphNode",
    "GraphView",
    "Message",
    "PhaseSpend",
    "Proposal",
    "Run",
    "RunData",
    "RunDetails",
    "SampledGraph",
    "Spend",
    "SpendSource",
    "Step",
    "SwarmEdge",
    "load_run",
    "read_run",
]


# -- the files as they are -----------------------------------------------------------------


@dataclass(frozen=True)
class RunData:
    """What a report shows, as read from a run directory. The values are the run files'
    JSON as it is (not validated): `read_run` tolerates missing and odd fields."""

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


# -- the typed view ------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass(frozen=True)
class PhaseSpend:
    """The cost counters of one phase."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0
    retries: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: PhaseSpend) -> PhaseSpend:
        return PhaseSpend(
            self.calls + other.calls,
            self.cache_hits + other.cache_hits,
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.errors + other.errors,
            self.retries + other.retries,
        )


Spend = dict[str, PhaseSpend]  # phase -> counters, the known phases first, in PHASES order


@dataclass(frozen=True)
class Gate:
    """A candidate scored on the gate set. `partial`: only `evaluated` of `of` items were
    scored (an early stop), so `mean` is over those items, not the gate score. `scores`:
    per-item scores (example id, score), when the run recorded them."""

    evaluated: int | None
    of: int | None
    mean: float | None
    partial: bool = False
    early_stopped: bool = False
    tokens_saved_estimate: int | None = None
    scores: tuple[tuple[str, float | None], ...] = ()

    @property
    def score(self) -> float | None:
        """The gate score, or None when only part of the gate was scored."""
        return None if self.partial else self.mean


@dataclass(frozen=True)
class BatchItem:
    """One training example of a step's batch, as the current graph handled it."""

    id: str
    inputs: dict[str, str]
    target: str
    output: str
    score: float | None
    feedback: str
    node_outputs: dict[str, str]
    node_gradients: dict[str, tuple[str, ...]]
    truncated: tuple[str, ...] = ()  # nodes whose reply was cut at max_tokens


@dataclass(frozen=True)
class BackwardCall:
    successor: str
    inputs: tuple[str, ...]
    missing: tuple[str, ...]
    error: str
    cached: bool
    raw: str
    prompt: tuple[Message, ...]
    truncated: bool = False


@dataclass(frozen=True)
class Proposal:
    parameter: str
    old: str
    new: str | None
    error: str | None
    cached: bool
    raw: str | None
    prompt: tuple[Message, ...]
    truncated: bool = False


@dataclass(frozen=True)
class SampledGraph:
    included: tuple[str, ...]
    skipped: tuple[str, ...]  # edges left out because they would close a cycle
    log_prob: float | None
    utility: float | None


@dataclass(frozen=True)
class EdgeStep:
    """The edge step of a composite graph's step (REINFORCE on the edge logits)."""

    batch: tuple[str, ...]
    samples: tuple[SampledGraph, ...]
    distinct_graphs: str
    mean_utility: float | None
    baseline_used: float | None
    baseline: float | None
    kept: tuple[str, ...]
    flipped: tuple[str, ...]
    gate: Gate | None
    gradient: tuple[tuple[str, float | None], ...]


@dataclass(frozen=True)
class Decision:
    """A paired comparison with the incumbent on the same items."""

    accepted: bool
    wins: int
    losses: int
    ties: int
    evaluated: int | None
    of: int | None
    partial: bool
    rule: str

    @property
    def text(self) -> str:
        if self.partial:
            scored = f" on {self.evaluated} of {self.of} items"
        else:  # the items it decided on (the gate's: those the screen did not use)
            scored = f" on {self.of} items" if self.of else ""
        return f"+{self.wins} −{self.losses} ={self.ties}{scored} ({self.rule})"


@dataclass(frozen=True)
class Candidate:
    """One candidate of a search step (history version 2)."""

    index: int
    kind: str  # "node", "full", "demos", "teacher", "sample"
    changes: Mapping[str, str]
    error: str
    sample_index: int
    screen: tuple[tuple[str, float | None], ...]
    screen_decision: Decision | None
    survived: bool
    gate: Gate | None
    decision: Decision | None
    accepted: bool
    shown: tuple[str, ...] = ()  # items its demonstrations show (`skip_shown`)


@dataclass(frozen=True)
class Step:
    """One history line, typed."""

    index: int  # 0-based, as in history.jsonl; the page shows index + 1 like the CLI
    candidate: float | None
    incumbent: float | None
    best: float | None
    accepted: bool
    changed: tuple[str, ...]
    gate: Gate | None
    kind: str = "nodes"  # "nodes", "edges" or "both" (composite graphs)
    batch: tuple[BatchItem, ...] = ()
    backward: Mapping[str, tuple[BackwardCall, ...]] = field(default_factory=dict)
    gradients: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    proposals: tuple[Proposal, ...] = ()
    spend: Spend = field(default_factory=dict)
    wall_s: float | None = None
    state: Mapping[str, str] = field(default_factory=dict)
    edges: EdgeStep | None = None
    edge_probabilities: tuple[tuple[str, float], ...] = ()
    kept_edges: tuple[str, ...] = ()
    # A search step (method "search" / "demos"): its candidates and why the winner won.
    method: str = ""
    candidates: tuple[Candidate, ...] = ()
    screen_items: tuple[str, ...] = ()
    blame: str = ""
    winner: Decision | None = None
    # Pareto parents: the pool index of the program the step edited, and the pool's size
    # after the step (None without them).
    parent: int | None = None
    pool: int | None = None

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
            if any(c.gate is not None or c.screen for c in self.candidates):
                return "rejected"  # a search step whose candidates were all turned down
            return "no change"
        return "accepted" if self.accepted else "rejected"

    @property
    def batch_ids(self) -> tuple[str, ...]:
        """The examples of the step: the batch, or for an edge step the examples the
        sampled graphs were scored on."""
        if self.batch:
            return tuple(b.id for b in self.batch)
        return self.edges.batch if self.edges else ()

    @property
    def truncated(self) -> int:
        """Replies of this step cut at their token limit (forward, backward, optimizer)."""
        return (
            sum(len(b.truncated) for b in self.batch)
            + sum(c.truncated for calls in self.backward.values() for c in calls)
            + sum(p.truncated for p in self.proposals)
        )


@dataclass(frozen=True)
class GraphNode:
    name: str
    type: str  # "llm", "function" or "?"
    llm: str
    fn: str
    inputs: tuple[str, ...]
    instruction: str | None  # None: the node has no instruction


@dataclass(frozen=True)
class DemoView:
    """One demonstration of a node: its inputs by name and the output it shows."""

    inputs: tuple[tuple[str, str], ...]
    output: str


@dataclass(frozen=True)
class GraphView:
    name: str
    inputs: tuple[str, ...] = ()
    output: str = ""
    nodes: tuple[GraphNode, ...] = ()

    def instructions(self) -> dict[str, str]:
        return {n.name: n.instruction for n in self.nodes if n.instruction is not None}


@dataclass(frozen=True)
class SwarmEdge:
    name: str  # "from->to"
    p0: float | None  # the initial probability: σ(logit / T), or the spec's p0


@dataclass(frozen=True)
class RunDetails:
    """The settings the header lists. Each value is display text; a group that the config
    does not have is None (or empty)."""

    models: tuple[tuple[str, str, str], ...] = ()  # role, model, base URL or "embedded"
    optimizer: tuple[tuple[str, str], ...] | None = None
    edges: tuple[tuple[str, str], ...] | None = None
    data: tuple[tuple[str, str, int | None], ...] = ()  # split, spec, size
    seed: str | None = None
    budget: tuple[tuple[str, str], ...] = ()
    prompts: tuple[str, ...] = ()


SpendSource = Literal["summary", "checkpoint", "steps"]


@dataclass(frozen=True)
class Run:
    """The run's facts the sections show, each looked up once."""

    root: str
    name: str
    status: str
    steps: tuple[Step, ...]
    steps_done: int
    steps_planned: int | None
    initial_test: float | None
    final_test: float | None
    initial_gate: float | None
    best_gate: float | None
    wall_s: float | None
    graph: GraphView | None  # None: no graph file in the run
    initial_instructions: Mapping[str, str]
    best_instructions: Mapping[str, str]
    details: RunDetails
    problems: tuple[str, ...]
    spend: Spend
    spend_source: SpendSource
    # composite graphs
    swarm: bool = False
    agents: tuple[str, ...] = ()
    swarm_edges: tuple[SwarmEdge, ...] = ()
    threshold: float = 0.5
    # the demonstrations each LLM node of the final graph uses (nodes without none left out)
    best_demos: Mapping[str, tuple[DemoView, ...]] = field(default_factory=dict)

    @property
    def truncated(self) -> int:
        return sum(s.truncated for s in self.steps)


def read_run(data: RunData) -> Run:
    """The typed view of `data`; never raises on odd values (they read as missing)."""
    config = data.config
    summary = data.summary or {}
    checkpoint = data.checkpoint or {}
    steps = tuple(_step(_first_int(row.get("step"), i), row) for i, row in enumerate(data.history))
    if data.summary is not None:
        status = _text(summary.get("status")) or "finished"
    elif data.checkpoint is not None:
        status = _text(checkpoint.get("status")) or "running"
    else:
        status = "not started"
    steps_done = _int(summary.get("steps"))
    if steps_done is None:
        steps_done = _int(checkpoint.get("step"))
    if steps_done is None:
        steps_done = len(steps)
    last_best = steps[-1].best if steps else None
    walls = [s.wall_s for s in steps if s.wall_s is not None]
    # Graph structure: the initial graph, else whatever graph spec the run left.
    best = data.best_graph or _dict(checkpoint.get("graph")) or None
    graph = data.initial_graph or best or {}
    initial_instructions = _graph(data.initial_graph or {}).instructions()
    best_instructions = _graph(best or {}).instructions()
    best_demos = _spec_demos(best or {})
    edges_config = _dict(config.get("edges"))
    threshold = _num(edges_config.get("threshold")) or 0.5
    temperature = _num(edges_config.get("temperature")) or 1.0
    # A composite graph: draw the realised graph the run ended with (the checkpoint
    # keeps it); instructions are keyed by the realised names (agent/node).
    swarm = _dict(data.initial_graph).get("kind") == "swarm" or _dict(best).get("kind") == "swarm"
    agents: tuple[str, ...] = ()
    swarm_edges: tuple[SwarmEdge, ...] = ()
    if swarm:
        initial_swarm = _dict(data.initial_graph)
        best_swarm = _dict(best) if _dict(best).get("kind") == "swarm" else {}
        graph = _dict(checkpoint.get("graph")) or _realised(
            best_swarm or initial_swarm, threshold, temperature
        )
        initial_instructions = _swarm_instructions(initial_swarm)
        best_instructions = _swarm_instructions(best_swarm)
        agents = tuple(
            _text(_dict(a).get("name")) for a in _list((best_swarm or initial_swarm).get("agents"))
        )
        swarm_edges = tuple(
            _swarm_edge(_dict(e), temperature) for e in _list(initial_swarm.get("edges"))
        )
    if not best_instructions and steps:  # no graph file: the last state
        last = steps[-1].state
        best_instructions = {
            k.removesuffix(".instruction"): v for k, v in last.items() if not k.endswith(".demos")
        }
        best_demos = _state_demos(last)
    spend, source = _run_spend(summary, checkpoint, steps)
    return Run(
        root=data.root,
        name=_text(config.get("name")) or Path(data.root).name or "run",
        status=status,
        steps=steps,
        steps_done=steps_done,
        steps_planned=_int(config.get("steps")),
        initial_test=_first_num(summary.get("initial_test"), checkpoint.get("initial_test")),
        final_test=_num(summary.get("final_test")),
        initial_gate=_first_num(summary.get("initial_gate"), checkpoint.get("initial_gate")),
        best_gate=_first_num(summary.get("best_gate"), checkpoint.get("best_gate"), last_best),
        wall_s=sum(walls) if walls else None,
        graph=_graph(graph) if _list(graph.get("nodes")) else None,
        initial_instructions=initial_instructions,
        best_instructions=best_instructions,
        details=_details(config, summary, checkpoint),
        problems=data.problems,
        spend=spend,
        spend_source=source,
        swarm=swarm,
        agents=agents,
        swarm_edges=swarm_edges,
        threshold=threshold,
        best_demos=best_demos,
    )


# -- the pieces ----------------------------------------------------------------------------


def _step(index: int, row: Mapping[str, Any]) -> Step:
    gate = _gate(row.get("gate"))
    candidate = _num(row.get("candidate_score"))
    if candidate is None and gate is not None and gate.partial:
        candidate = gate.mean  # version 1 leaves a partial gate's score out of the step
    backward: dict[str, tuple[BackwardCall, ...]] = {}
    for b in _list(row.get("backward")):
        d = _dict(b)
        backward[_text(d.get("example_id"))] = tuple(
            _backward_call(_dict(c)) for c in _list(d.get("calls"))
        )
    edges = _dict(row.get("edges"))
    return Step(
        index=index,
        candidate=candidate,
        incumbent=_num(row.get("incumbent_score")),
        best=_num(row.get("best_gate")),
        accepted=row.get("accepted") is True,
        changed=tuple(_text(c) for c in _list(row.get("changed"))),
        gate=gate,
        kind=_text(row.get("kind")) or "nodes",
        batch=tuple(_batch_item(_dict(b)) for b in _list(row.get("batch"))),
        backward=backward,
        gradients={k: _texts(v) for k, v in _dict(row.get("gradients")).items()},
        proposals=tuple(_proposal(_dict(p)) for p in _list(row.get("proposals"))),
        spend=_spend(row.get("spend")),
        wall_s=_num(row.get("wall_s")),
        state={k: _text(v) for k, v in _dict(row.get("state")).items()},
        edges=_edge_step(edges) if edges else None,
        edge_probabilities=tuple(
            (_text(k), p)
            for k, v in _dict(row.get("edge_probabilities")).items()
            if (p := _num(v)) is not None
        ),
        kept_edges=_texts(row.get("kept_edges")),
        method=_text(row.get("method")),
        candidates=tuple(_candidate(_dict(c)) for c in _list(row.get("candidates"))),
        screen_items=_texts(row.get("screen_items")),
        blame=_text(_dict(row.get("blame")).get("why")),
        winner=_decision(row.get("decision")),
        parent=_int(row.get("parent")),
        pool=_int(row.get("pool")),
    )


def _decision(value: Any) -> Decision | None:
    d = _dict(value)
    if not d:
        return None
    return Decision(
        accepted=d.get("accepted") is True,
        wins=_int(d.get("wins")) or 0,
        losses=_int(d.get("losses")) or 0,
        ties=_int(d.get("ties")) or 0,
        evaluated=_int(d.get("evaluated")),
        of=_int(d.get("of")),
        partial=d.get("partial") is True,
        rule=_text(d.get("rule")),
    )


def _candidate(c: Mapping[str, Any]) -> Candidate:
    return Candidate(
        index=_int(c.get("index")) or 0,
        kind=_text(c.get("kind")),
        changes={_text(k): _text(v) for k, v in _dict(c.get("changes")).items()},
        error=_text(c.get("error")),
        sample_index=_int(c.get("sample_index")) or 0,
        screen=tuple((_text(k), _num(v)) for k, v in _dict(c.get("screen")).items()),
        screen_decision=_decision(c.get("screen_decision")),
        survived=c.get("survived") is True,
        gate=_gate(c.get("gate")),
        decision=_decision(c.get("decision")),
        accepted=c.get("accepted") is True,
        shown=tuple(_text(i) for i in _list(c.get("shown"))),
    )


def _gate(value: Any) -> Gate | None:
    d = _dict(value)
    if not d:
        return None
    early = d.get("early_stopped") is True
    evaluated, of = _int(d.get("evaluated")), _int(d.get("of"))
    if "partial" in d:  # version 1: "score" is the full gate score or None
        partial = d.get("partial") is True
        mean = _num(d.get("partial_score")) if partial else _num(d.get("score"))
    else:  # version 0: "score" is the mean over the items scored, early stop or not
        partial = early and (evaluated is None or of is None or evaluated < of)
        mean = _num(d.get("score"))
    scores = _dict(d.get("scores"))
    saved = _int(d.get("tokens_saved_estimate"))
    return Gate(
        evaluated=evaluated,
        of=of,
        mean=mean,
        partial=partial,
        early_stopped=early,
        tokens_saved_estimate=saved,
        scores=tuple((_text(k), _num(v)) for k, v in scores.items()),
    )


def _batch_item(d: Mapping[str, Any]) -> BatchItem:
    reasons = _dict(d.get("finish_reasons"))
    return BatchItem(
        id=_text(d.get("id")),
        inputs={k: _text(v) for k, v in _dict(d.get("inputs")).items()},
        target=_text(d.get("target")),
        output=_text(d.get("output")),
        score=_num(d.get("score")),
        feedback=_text(d.get("feedback")),
        node_outputs={k: _text(v) for k, v in _dict(d.get("node_outputs")).items()},
        node_gradients={k: _texts(v) for k, v in _dict(d.get("node_gradients")).items()},
        truncated=tuple(k for k, v in reasons.items() if v == "length"),
    )


def _backward_call(c: Mapping[str, Any]) -> BackwardCall:
    error = c.get("error")
    return BackwardCall(
        successor=_text(c.get("successor")),
        inputs=_texts(c.get("inputs")),
        missing=_texts(c.get("missing")),
        error=_text(error) if error else "",
        cached=c.get("cached") is True,
        raw=_text(c.get("raw")),
        prompt=_messages(c.get("prompt")),
        truncated=c.get("finish_reason") == "length",
    )


def _proposal(p: Mapping[str, Any]) -> Proposal:
    new, error, raw = p.get("new"), p.get("error"), p.get("raw")
    return Proposal(
        parameter=_text(p.get("parameter")),
        old=_text(p.get("old")),
        new=None if new is None else _text(new),
        error=None if error is None else _text(error),
        cached=p.get("cached") is True,
        raw=None if raw is None else _text(raw),
        prompt=_messages(p.get("prompt")),
        truncated=p.get("finish_reason") == "length",
    )


def _messages(value: Any) -> tuple[Message, ...]:
    return tuple(
        Message(_text(_dict(m).get("role")), _text(_dict(m).get("content"))) for m in _list(value)
    )


def _edge_step(e: Mapping[str, Any]) -> EdgeStep:
    samples = []
    for sample in _list(e.get("samples")):
        d = _dict(sample)
        samples.append(
            SampledGraph(
                included=_texts(d.get("included")),
                skipped=tuple(_text(k) for k, v in _dict(d.get("decisions")).items() if v is None),
                log_prob=_num(d.get("log_prob")),
                utility=_num(d.get("utility")),
            )
        )
    return EdgeStep(
        batch=_texts(e.get("batch")),
        samples=tuple(samples),
        distinct_graphs=_text(e.get("distinct_graphs")),
        mean_utility=_num(e.get("mean_utility")),
        baseline_used=_num(e.get("baseline_used")),
        baseline=_num(e.get("baseline")),
        kept=_texts(e.get("kept")),
        flipped=_texts(e.get("flipped")),
        gate=_gate(e.get("gate")),
        gradient=tuple((_text(k), _num(v)) for k, v in _dict(e.get("gradient")).items()),
    )


def _spend(value: Any) -> Spend:
    raw = _dict(value)
    return {phase: _phase_spend(raw.get(phase)) for phase in _ordered_phases(raw)}


def _phase_spend(value: Any) -> PhaseSpend:
    d = _dict(value)
    return PhaseSpend(
        calls=_int(d.get("calls")) or 0,
        cache_hits=_int(d.get("cache_hits")) or 0,
        prompt_tokens=_int(d.get("prompt_tokens")) or 0,
        completion_tokens=_int(d.get("completion_tokens")) or 0,
        errors=_int(d.get("errors")) or 0,
        retries=_int(d.get("retries")) or 0,
    )


def _ordered_phases(spend: Mapping[str, Any]) -> list[str]:
    known = [p for p in PHASES if p in spend]
    return known + sorted(p for p in spend if p not in PHASES)


def _run_spend(
    summary: Mapping[str, Any], checkpoint: Mapping[str, Any], steps: tuple[Step, ...]
) -> tuple[Spend, SpendSource]:
    """The most complete record of the run's spend: the summary, the checkpoint, or the
    sum of the steps (which leaves out the initial and final scoring)."""
    if _dict(summary.get("spend")):
        return _spend(summary.get("spend")), "summary"
    if _dict(checkpoint.get("spend")):
        return _spend(checkpoint.get("spend")), "checkpoint"
    total: dict[str, PhaseSpend] = {}
    for s in steps:
        for phase, counters in s.spend.items():
            total[phase] = total.get(phase, PhaseSpend()) + counters
    return {p: total[p] for p in _ordered_phases(total)}, "steps"


def _graph(spec: Mapping[str, Any]) -> GraphView:
    nodes = []
    for node in _list(spec.get("nodes")):
        n = _dict(node)
        nodes.append(
            GraphNode(
                name=_text(n.get("name")),
                type=_text(n.get("type")) or "?",
                llm=_text(n.get("llm")),
                fn=_text(n.get("fn")),
                inputs=_texts(n.get("inputs")),
                instruction=_text(n.get("instruction")) if "instruction" in n else None,
            )
        )
    return GraphView(
        name=_text(spec.get("name")),
        inputs=_texts(spec.get("inputs")),
        output=_text(spec.get("output")),
        nodes=tuple(nodes),
    )


def _demo_views(value: Any) -> tuple[DemoView, ...]:
    out = []
    for demo in _list(value):
        d = _dict(demo)
        inputs = tuple((_text(k), _text(v)) for k, v in _dict(d.get("inputs")).items())
        out.append(DemoView(inputs, _text(d.get("output"))))
    return tuple(out)


def _spec_demos(spec: Mapping[str, Any]) -> dict[str, tuple[DemoView, ...]]:
    """Node → its demos, for the nodes of a graph spec that have some."""
    out: dict[str, tuple[DemoView, ...]] = {}
    for node in _list(spec.get("nodes")):
        n = _dict(node)
        demos = _demo_views(n.get("demos"))
        if demos:
            out[_text(n.get("name"))] = demos
    return out


def _state_demos(state: Mapping[str, str]) -> dict[str, tuple[DemoView, ...]]:
    """Node → its demos from a state dict's ``<node>.demos`` entries (JSON text)."""
    out: dict[str, tuple[DemoView, ...]] = {}
    for key, value in state.items():
        if not key.endswith(".demos"):
            continue
        try:
            demos = _demo_views(json.loads(value))
        except (TypeError, ValueError):
            continue
        if demos:
            out[key.removesuffix(".demos")] = demos
    return out


def _swarm_instructions(swarm: Mapping[str, Any]) -> dict[str, str]:
    """Instruction by realised node name (``agent/node``, the decision) of a swarm spec."""
    out: dict[str, str] = {}
    for agent in _list(swarm.get("agents")):
        a = _dict(agent)
        for name, text in _graph(_dict(a.get("graph"))).instructions().items():
            out[f"{_text(a.get('name'))}/{name}"] = text
    decision = _dict(swarm.get("decision"))
    if "instruction" in decision:
        out[_text(decision.get("name")) or "decision"] = _text(decision.get("instruction"))
    return out


def _swarm_edge(e: Mapping[str, Any], temperature: float) -> SwarmEdge:
    name = f"{_text(e.get('from'))}->{_text(e.get('to'))}"
    logit = _num(e.get("logit"))
    if logit is None:
        return SwarmEdge(name, _num(e.get("p0")))
    z = max(-60.0, min(60.0, logit / temperature))
    return SwarmEdge(name, 1.0 / (1.0 + math.exp(-z)))


def _realised(swarm: Mapping[str, Any], threshold: float, temperature: float) -> dict[str, Any]:
    """The deterministic realisation of a swarm spec, or {} when it cannot be built."""
    try:
        built = swarm_from_dict(dict(swarm))
        return built.realise_deterministic(threshold, temperature=temperature).to_dict()
    except (SemgradError, ValueError):
        return {}


def _details(
    config: Mapping[str, Any], summary: Mapping[str, Any], checkpoint: Mapping[str, Any]
) -> RunDetails:
    models = _dict(config.get("models"))
    model_rows = []
    for role in ("forward", "backward", "optimizer", "teacher"):  # teacher: when set
        spec = _dict(models.get(role))
        if spec:
            where = _text(spec.get("base_url")) or "embedded"
            model_rows.append((role, _text(spec.get("model")), where))
    opt = _dict(config.get("optimizer"))
    opt_keys = (
        "method",
        "name",
        "batch_size",
        "backward",
        "use_gradients",
        "memory",
        "gate",
        "partial",
        "candidates",
        "screen_size",
        "gate_survivors",
        "parents",
        "gate_rule",
        "gate_margin",
    )
    edges = _dict(config.get("edges"))
    edge_keys = ("schedule", "samples", "batch_size", "lr", "baseline_decay", "temperature")
    data = _dict(config.get("data"))
    budget = _dict(config.get("budget"))
    return RunDetails(
        models=tuple(model_rows),
        optimizer=_settings(opt, opt_keys) if opt else None,
        edges=_settings(edges, edge_keys) if edges else None,
        data=tuple(
            (split, _text(data.get(split)), _int(summary.get(f"{split}_size")))
            for split in ("train", "gate", "test")
        )
        if data
        else (),
        seed=_text(config.get("seed")) if "seed" in config else None,
        budget=tuple((k, _text(v)) for k, v in budget.items()),
        prompts=_texts(checkpoint.get("prompts")),
    )


def _settings(values: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((k, _text(values[k])) for k in keys if values.get(k) is not None)


# -- JSON values, read defensively (only here) ---------------------------------------------


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


def _texts(value: Any) -> tuple[str, ...]:
    return tuple(_text(v) for v in _list(value))


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
