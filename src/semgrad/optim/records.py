"""The typed records of an optimization run: the one contract between the training loop,
``history.jsonl``, ``summary.json``, the CLI's progress and the report.

Every record is a frozen dataclass with ``to_dict()`` (plain JSON types, what the file
holds) and ``from_dict(d)`` (the inverse; tolerant of files written before a field
existed). One history line is ``StepRecord.to_dict()``; it carries ``"version":
HISTORY_VERSION`` (2: a search step's line adds its candidates; see `StepRecord`). Lines
of version 1, and lines without a version (written before this module: version 0), are
read through the same ``from_dict``; for version 0 the one meaning that changed is fixed
on reading: an
early-stopped gate's mean over the items it scored was written as the candidate's score,
and is read as a partial score (``GateResult.partial_mean``) with no candidate score.

    history.jsonl   one StepRecord per line       read_history / append_history
                                                   (RunFiles(run_dir).read_steps())
    summary.json    RunSummary                     RunSummary.from_dict(json)

Reading a run: ``RunFiles(run_dir).read_steps()`` gives the typed steps of any version;
``RunSummary.from_dict(files.read_json(files.summary))`` the summary. Every ``from_dict``
accepts missing keys (defaults: empty containers, None scores), so a partial or old file
never needs defensive reads; ``to_dict`` writes JSON types only (tuples become lists).

Progress events (`ProgressEvent`) are what the loop tells a progress callback as it goes;
`StepFinished` carries the step's `StepRecord`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

__all__ = [
    "HISTORY_VERSION",
    "BatchItem",
    "BudgetStopped",
    "CallsFailed",
    "CandidateRecord",
    "Decision",
    "EdgeStepRecord",
    "ExamplesScored",
    "FinalTestStarted",
    "GateResult",
    "InitialScored",
    "InitialStarted",
    "Progress",
    "ProgressEvent",
    "Resumed",
    "RunSummary",
    "StepFinished",
    "StepKind",
    "StepRecord",
    "StepStarted",
    "append_history",
    "quiet",
    "read_history",
    "read_history_rows",
]

# 2: a step of the candidate search (method "search" / "demos") also records `method`,
# `candidates`, `screen_items`, `blame` and the winner's paired `decision`; version 1 and
# version-less lines read as before (no candidates).
HISTORY_VERSION = 2

StepKind = Literal["edges", "nodes", "both"]
Spend = dict[str, dict[str, int]]  # phase -> {"calls": n, "prompt_tokens": n, ...}


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def _spend(value: Any) -> Spend:
    return {
        str(phase): {str(k): int(v) for k, v in dict(counts).items()}
        for phase, counts in dict(value or {}).items()
    }


@dataclass(frozen=True)
class GateResult:
    """A candidate scored on the gate set, per item.

    `scores` maps example id -> score for the items scored, in gate order. An early-stop
    gate scores only `evaluated` of the `of` items: then `partial` is true and `score` is
    None (a mean over a prefix is not the gate score); `partial_mean` is that mean.
    Files written before per-item scores have empty `scores`.
    """

    evaluated: int
    of: int
    mean: float  # over the `evaluated` items
    scores: dict[str, float] = field(default_factory=dict)
    early_stopped: bool = False
    tokens_saved_estimate: int | None = None

    @classmethod
    def from_scores(
        cls,
        scores: Mapping[str, float],
        of: int,
        *,
        early_stopped: bool = False,
        tokens_saved_estimate: int | None = None,
    ) -> GateResult:
        n = len(scores)
        return cls(
            evaluated=n,
            of=of,
            mean=sum(scores.values()) / n if n else 0.0,
            scores=dict(scores),
            early_stopped=early_stopped,
            tokens_saved_estimate=tokens_saved_estimate,
        )

    @property
    def partial(self) -> bool:
        return self.evaluated < self.of

    @property
    def score(self) -> float | None:
        """The gate score, or None when only part of the gate was scored."""
        return None if self.partial else self.mean

    @property
    def partial_mean(self) -> float | None:
        return self.mean if self.partial else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "score": self.score,
            "partial": self.partial,
            "partial_score": self.partial_mean,
            "evaluated": self.evaluated,
            "of": self.of,
            "early_stopped": self.early_stopped,
            "scores": dict(self.scores),
        }
        if self.tokens_saved_estimate is not None:
            out["tokens_saved_estimate"] = self.tokens_saved_estimate
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> GateResult:
        of = int(d.get("of", 0))
        evaluated = int(d.get("evaluated", of))
        if "partial_score" in d:
            value = d.get("partial_score") if d.get("partial") else d.get("score")
        else:  # version 0: "score" was the mean over the evaluated items
            value = d.get("score")
        saved = d.get("tokens_saved_estimate")
        return cls(
            evaluated=evaluated,
            of=of,
            mean=float(value or 0.0),
            scores={str(k): float(v) for k, v in dict(d.get("scores") or {}).items()},
            early_stopped=bool(d.get("early_stopped", False)),
            tokens_saved_estimate=None if saved is None else int(saved),
        )


def _gate_or_none(value: Any) -> GateResult | None:
    return GateResult.from_dict(value) if value else None


@dataclass(frozen=True)
class Decision:
    """A paired comparison with the incumbent on the same items (`semgrad.optim.gate.
    PairedDecision`, as the history holds it): why a candidate was accepted or not."""

    accepted: bool
    wins: int
    losses: int
    ties: int
    evaluated: int
    of: int
    partial: bool
    rule: str
    p_value: float | None = None

    @property
    def net(self) -> int:
        return self.wins - self.losses

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "wins": self.wins,
            "losses": self.losses,
            "ties": self.ties,
            "evaluated": self.evaluated,
            "of": self.of,
            "partial": self.partial,
            "rule": self.rule,
            "p_value": self.p_value,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Decision:
        return cls(
            accepted=bool(d.get("accepted", False)),
            wins=int(d.get("wins", 0)),
            losses=int(d.get("losses", 0)),
            ties=int(d.get("ties", 0)),
            evaluated=int(d.get("evaluated", 0)),
            of=int(d.get("of", 0)),
            partial=bool(d.get("partial", False)),
            rule=str(d.get("rule", "")),
            p_value=_float_or_none(d.get("p_value")),
        )


def _decision_or_none(value: Any) -> Decision | None:
    return Decision.from_dict(value) if isinstance(value, Mapping) and value else None


def _floats(value: Any) -> dict[str, float]:
    return {str(k): float(v) for k, v in dict(value or {}).items()}


CandidateKind = Literal["node", "full", "demos", "teacher", "sample"]


@dataclass(frozen=True)
class CandidateRecord:
    """One candidate of a search step (ALGORITHMS.md §3b).

    `kind`: ``node`` (one node's instruction, the one the gradients blame), ``full`` (every
    instruction: the paper's update), ``demos`` (one node's demonstrations), ``teacher`` (the
    output node's demonstrations, drawn from the teacher model's correct answers), ``sample``
    (a seeded temperature sample of the one-node edit). `changes` maps each parameter changed
    to its new text; `error` says why a candidate could not be made (a failed proposal), in
    which case it was not scored. `screen` holds its per-item scores on the screen items
    (an item whose model call failed is left out: no verdict on the graph) and
    `screen_decision` the comparison with the parent on them; `shown` lists the screen and
    gate items its changed demonstrations show the inputs of, which it was not scored on in
    the screen nor credited for by the gate (``skip_shown``); `survived` whether it went on
    to the gate. `gate` / `decision` are its gate scores and the paired decision against
    the incumbent (None when it did not reach the gate); `accepted` whether it
    became the incumbent.
    """

    index: int
    kind: CandidateKind
    changes: dict[str, str] = field(default_factory=dict)
    error: str | None = None
    temperature: float = 0.0
    sample_index: int = 0
    proposals: list[dict[str, Any]] = field(default_factory=list)
    screen: dict[str, float] = field(default_factory=dict)
    screen_decision: Decision | None = None
    shown: list[str] = field(default_factory=list)
    survived: bool = False
    gate: GateResult | None = None
    decision: Decision | None = None
    accepted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "kind": self.kind,
            "changes": dict(self.changes),
            "error": self.error,
            "temperature": self.temperature,
            "sample_index": self.sample_index,
            "proposals": list(self.proposals),
            "screen": dict(self.screen),
            "screen_decision": self.screen_decision.to_dict() if self.screen_decision else None,
            "shown": list(self.shown),
            "survived": self.survived,
            "gate": self.gate.to_dict() if self.gate else None,
            "decision": self.decision.to_dict() if self.decision else None,
            "accepted": self.accepted,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CandidateRecord:
        kind = d.get("kind")
        error = d.get("error")
        return cls(
            index=int(d.get("index", 0)),
            kind=cast(CandidateKind, kind) if kind in get_args(CandidateKind) else "node",
            changes={str(k): str(v) for k, v in dict(d.get("changes") or {}).items()},
            error=None if error is None else str(error),
            temperature=float(d.get("temperature") or 0.0),
            sample_index=int(d.get("sample_index") or 0),
            proposals=[dict(p) for p in d.get("proposals") or []],
            screen=_floats(d.get("screen")),
            screen_decision=_decision_or_none(d.get("screen_decision")),
            shown=[str(i) for i in d.get("shown") or []],
            survived=bool(d.get("survived", False)),
            gate=_gate_or_none(d.get("gate")),
            decision=_decision_or_none(d.get("decision")),
            accepted=bool(d.get("accepted", False)),
        )


@dataclass(frozen=True)
class BatchItem:
    """One training example of a step's batch, as the current graph handled it."""

    id: str
    inputs: dict[str, str]
    target: str
    output: str | None
    score: float
    feedback: str
    node_outputs: dict[str, str | None] = field(default_factory=dict)
    node_gradients: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "inputs": dict(self.inputs),
            "target": self.target,
            "output": self.output,
            "score": self.score,
            "feedback": self.feedback,
            "node_outputs": dict(self.node_outputs),
            "node_gradients": {k: list(v) for k, v in self.node_gradients.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> BatchItem:
        return cls(
            id=str(d.get("id", "")),
            inputs={str(k): str(v) for k, v in dict(d.get("inputs") or {}).items()},
            target=str(d.get("target", "")),
            output=None if d.get("output") is None else str(d.get("output")),
            score=float(d.get("score") or 0.0),
            feedback=str(d.get("feedback") or ""),
            node_outputs={
                str(k): None if v is None else str(v)
                for k, v in dict(d.get("node_outputs") or {}).items()
            },
            node_gradients={
                str(k): [str(m) for m in v] for k, v in dict(d.get("node_gradients") or {}).items()
            },
        )


@dataclass(frozen=True)
class EdgeStepRecord:
    """An edge step of a swarm run (REINFORCE on the potential edges' logits).

    `samples` are the sampled graphs with their decisions, log-probability, utility and
    per-item scores (`semgrad.swarm.ScoredGraph.to_dict()`); `utilities` … `gradient` are
    the `EdgeUpdate`; `gate` is set when the deterministic graph changed and was re-scored
    (`regated`), which makes it the new incumbent.
    """

    batch: list[str]
    samples: list[dict[str, Any]]
    distinct_graphs: int
    utilities: list[float]
    mean_utility: float
    baseline_used: float
    baseline: float
    gradient: dict[str, float]
    probabilities_before: dict[str, float]
    probabilities: dict[str, float]
    logits: dict[str, float]
    kept_before: list[str]
    kept: list[str]
    flipped: list[str]
    regated: bool
    gate: GateResult | None
    incumbent_score: float | None
    temperature: float
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch": list(self.batch),
            "samples": list(self.samples),
            "distinct_graphs": self.distinct_graphs,
            "utilities": list(self.utilities),
            "mean_utility": self.mean_utility,
            "baseline_used": self.baseline_used,
            "baseline": self.baseline,
            "gradient": dict(self.gradient),
            "probabilities_before": dict(self.probabilities_before),
            "probabilities": dict(self.probabilities),
            "logits": dict(self.logits),
            "kept_before": list(self.kept_before),
            "kept": list(self.kept),
            "flipped": list(self.flipped),
            "regated": self.regated,
            "gate": self.gate.to_dict() if self.gate else {},
            "incumbent_score": self.incumbent_score,
            "temperature": self.temperature,
            "threshold": self.threshold,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EdgeStepRecord:
        def floats(key: str) -> dict[str, float]:
            return {str(k): float(v) for k, v in dict(d.get(key) or {}).items()}

        def strs(key: str) -> list[str]:
            return [str(x) for x in d.get(key) or []]

        return cls(
            batch=strs("batch"),
            samples=[dict(s) for s in d.get("samples") or []],
            distinct_graphs=int(d.get("distinct_graphs", 0)),
            utilities=[float(u) for u in d.get("utilities") or []],
            mean_utility=float(d.get("mean_utility") or 0.0),
            baseline_used=float(d.get("baseline_used") or 0.0),
            baseline=float(d.get("baseline") or 0.0),
            gradient=floats("gradient"),
            probabilities_before=floats("probabilities_before"),
            probabilities=floats("probabilities"),
            logits=floats("logits"),
            kept_before=strs("kept_before"),
            kept=strs("kept"),
            flipped=strs("flipped"),
            regated=bool(d.get("regated", False)),
            gate=_gate_or_none(d.get("gate")),
            incumbent_score=_float_or_none(d.get("incumbent_score")),
            temperature=float(d.get("temperature", 1.0)),
            threshold=float(d.get("threshold", 0.5)),
        )


@dataclass(frozen=True)
class StepRecord:
    """One completed step: one line of history.jsonl.

    Node (text) step fields: the `batch`, the `backward` calls (each
    `semgrad.autograd.BackwardResult.to_dict()`), the `gradients` each parameter received
    ({dotted name: [messages]}), the `proposals` (each `semgrad.optim.Proposal.to_dict()`),
    the parameters `changed`, and the decision: `candidate_score` (the full gate score, or
    None when nothing was gated or the gate stopped early), `incumbent_score`, `accepted`,
    `gate`. `state` is the texts after the step, `best_gate` the incumbent's score after it,
    `spend` the step's cost by phase.

    Swarm runs add `kind` ("edges", "nodes" or "both"), `edges` (the edge step, or None),
    `edge_probabilities` and `kept_edges` after the step; single-graph runs leave `kind`
    None and those fields out of the file.

    A step of the candidate search (version 2) adds `method` ("search" or "demos"; None for
    the paper method, whose lines are unchanged), its `candidates`, the `screen_items`
    (minibatch then validation ids) with the `parent_screen` scores on them, `blame` (the
    node whose instruction the one-node candidates edit, and why), and the winner's paired
    `decision` (None when nothing was accepted). `changed`, `candidate_score` and `gate`
    are then the winner's (or, with no winner, the best-gated candidate's).

    With Pareto parents (``[optimizer] parents = "pareto"``, `semgrad.optim.pool`) a step
    also records its `parent` (the pool index of the program it edited, whose gate score
    is `incumbent_score`) and `pool` (the number of programs in the pool after it); both
    are left out of the file otherwise. `state` and `best_gate` are the pool's best.
    """

    step: int
    batch: list[BatchItem] = field(default_factory=list)
    backward: list[dict[str, Any]] = field(default_factory=list)
    gradients: dict[str, list[str]] = field(default_factory=dict)
    proposals: list[dict[str, Any]] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    candidate_score: float | None = None
    incumbent_score: float | None = None
    accepted: bool = False
    gate: GateResult | None = None
    state: dict[str, str] = field(default_factory=dict)
    best_gate: float | None = None
    spend: Spend = field(default_factory=dict)
    wall_s: float = 0.0
    kind: StepKind | None = None
    edges: EdgeStepRecord | None = None
    edge_probabilities: dict[str, float] = field(default_factory=dict)
    kept_edges: list[str] = field(default_factory=list)
    method: str | None = None
    candidates: list[CandidateRecord] = field(default_factory=list)
    screen_items: list[str] = field(default_factory=list)
    parent_screen: dict[str, float] = field(default_factory=dict)
    blame: dict[str, Any] = field(default_factory=dict)
    decision: Decision | None = None
    parent: int | None = None
    pool: int | None = None
    version: int = HISTORY_VERSION

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "step": self.step,
            "batch": [b.to_dict() for b in self.batch],
            "backward": list(self.backward),
            "gradients": {k: list(v) for k, v in self.gradients.items()},
            "proposals": list(self.proposals),
            "changed": list(self.changed),
            "candidate_score": self.candidate_score,
            "incumbent_score": self.incumbent_score,
            "accepted": self.accepted,
            "gate": self.gate.to_dict() if self.gate else {},
            "state": dict(self.state),
            "best_gate": self.best_gate,
            "spend": _spend(self.spend),
            "wall_s": self.wall_s,
        }
        if self.kind is not None:
            out["kind"] = self.kind
            out["edges"] = self.edges.to_dict() if self.edges else None
            out["edge_probabilities"] = dict(self.edge_probabilities)
            out["kept_edges"] = list(self.kept_edges)
        if self.method is not None:
            out["method"] = self.method
            out["candidates"] = [c.to_dict() for c in self.candidates]
            out["screen_items"] = list(self.screen_items)
            out["parent_screen"] = dict(self.parent_screen)
            out["blame"] = dict(self.blame)
            out["decision"] = self.decision.to_dict() if self.decision else None
        if self.parent is not None:
            out["parent"] = self.parent
            out["pool"] = self.pool
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StepRecord:
        version = int(d.get("version", 0))
        gate = _gate_or_none(d.get("gate"))
        candidate = _float_or_none(d.get("candidate_score"))
        if version == 0 and gate is not None and gate.partial:
            candidate = None  # version 0 wrote the early-stop prefix mean here
        kind = d.get("kind")
        edges = d.get("edges")
        return cls(
            step=int(d.get("step", 0)),
            batch=[BatchItem.from_dict(b) for b in d.get("batch") or []],
            backward=[dict(b) for b in d.get("backward") or []],
            gradients={
                str(k): [str(m) for m in v] for k, v in dict(d.get("gradients") or {}).items()
            },
            proposals=[dict(p) for p in d.get("proposals") or []],
            changed=[str(c) for c in d.get("changed") or []],
            candidate_score=candidate,
            incumbent_score=_float_or_none(d.get("incumbent_score")),
            accepted=bool(d.get("accepted", False)),
            gate=gate,
            state={str(k): str(v) for k, v in dict(d.get("state") or {}).items()},
            best_gate=_float_or_none(d.get("best_gate")),
            spend=_spend(d.get("spend")),
            wall_s=float(d.get("wall_s") or 0.0),
            kind=kind if kind in ("edges", "nodes", "both") else None,
            edges=EdgeStepRecord.from_dict(edges) if isinstance(edges, Mapping) else None,
            edge_probabilities={
                str(k): float(v) for k, v in dict(d.get("edge_probabilities") or {}).items()
            },
            kept_edges=[str(k) for k in d.get("kept_edges") or []],
            method=None if d.get("method") is None else str(d.get("method")),
            candidates=[CandidateRecord.from_dict(c) for c in d.get("candidates") or []],
            screen_items=[str(i) for i in d.get("screen_items") or []],
            parent_screen=_floats(d.get("parent_screen")),
            blame=dict(d.get("blame") or {}),
            decision=_decision_or_none(d.get("decision")),
            parent=_int_or_none(d.get("parent")),
            pool=_int_or_none(d.get("pool")),
            version=version,
        )


@dataclass(frozen=True)
class RunSummary:
    """summary.json: how a finished run ended. `edges` only for a swarm run
    ({"probabilities", "logits", "kept", "threshold"})."""

    status: str  # "finished"
    steps: int
    initial_test: float | None
    final_test: float | None
    initial_gate: float | None
    best_gate: float | None
    spend: Spend
    test_size: int
    gate_size: int
    train_size: int
    edges: dict[str, Any] | None = None
    version: int = HISTORY_VERSION
    # Every request sent to a model over the run's life: each HTTP attempt (retries and
    # failures included), across stops, kills and resumes (budget.json's count of calls).
    requests_sent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": self.version,
            "status": self.status,
            "steps": self.steps,
            "initial_test": self.initial_test,
            "final_test": self.final_test,
            "initial_gate": self.initial_gate,
            "best_gate": self.best_gate,
            "spend": _spend(self.spend),
            "test_size": self.test_size,
            "gate_size": self.gate_size,
            "train_size": self.train_size,
        }
        if self.edges is not None:
            out["edges"] = dict(self.edges)
        if self.requests_sent is not None:
            out["requests_sent"] = self.requests_sent
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RunSummary:
        edges = d.get("edges")
        return cls(
            status=str(d.get("status", "")),
            steps=int(d.get("steps", 0)),
            initial_test=_float_or_none(d.get("initial_test")),
            final_test=_float_or_none(d.get("final_test")),
            initial_gate=_float_or_none(d.get("initial_gate")),
            best_gate=_float_or_none(d.get("best_gate")),
            spend=_spend(d.get("spend")),
            test_size=int(d.get("test_size", 0)),
            gate_size=int(d.get("gate_size", 0)),
            train_size=int(d.get("train_size", 0)),
            edges=dict(edges) if isinstance(edges, Mapping) else None,
            version=int(d.get("version", 0)),
            requests_sent=int(d["requests_sent"]) if "requests_sent" in d else None,
        )


# -- history.jsonl -------------------------------------------------------------------------


def append_history(path: Path, record: StepRecord) -> None:
    """Append one line and fsync it: a crash leaves at most a cut last line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_history_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON objects of history.jsonl, up to a line cut by a crash (not included)."""
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by a crash: everything before it is intact
        if isinstance(row, dict):
            rows.append(row)
    return rows


def read_history(path: Path) -> list[StepRecord]:
    """Every step of history.jsonl (any version), typed."""
    return [StepRecord.from_dict(row) for row in read_history_rows(path)]


# -- progress events -----------------------------------------------------------------------


@dataclass(frozen=True)
class Resumed:
    step: int  # steps completed before this process started


@dataclass(frozen=True)
class InitialStarted:
    gate_size: int
    test_size: int


@dataclass(frozen=True)
class InitialScored:
    gate: float
    test: float | None  # None when the run has no test split


@dataclass(frozen=True)
class StepStarted:
    step: int  # from 0
    steps: int  # of the run


@dataclass(frozen=True)
class ExamplesScored:
    """`done` of `total` examples scored for `what` ("gate", "finding errors", …)."""

    what: str
    done: int
    total: int


@dataclass(frozen=True)
class StepFinished:
    record: StepRecord


@dataclass(frozen=True)
class FinalTestStarted:
    test_size: int


@dataclass(frozen=True)
class BudgetStopped:
    message: str


@dataclass(frozen=True)
class CallsFailed:
    """The run stopped because model calls failed after their retries (status "errors")."""

    message: str


ProgressEvent = (
    Resumed
    | InitialStarted
    | InitialScored
    | StepStarted
    | ExamplesScored
    | StepFinished
    | FinalTestStarted
    | BudgetStopped
    | CallsFailed
)
Progress = Callable[[ProgressEvent], None]


def quiet(_event: ProgressEvent) -> None:
    """A progress callback that ignores everything."""
    return None
