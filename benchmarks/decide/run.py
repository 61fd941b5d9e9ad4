"""Benchmarks that decide (BENCHMARKS.md): equal request budgets, one serving path,
deterministic scoring, a request log per cell, every figure replayable without a model.

    python benchmarks/decide/run.py --task bbh:object_counting --methods initial,paper --seeds 0,1,2
    python benchmarks/decide/run.py --task bbh:object_counting --methods paper --replay

A cell is (task, method, seed). Every method starts from the same 3-node graph
(`hint_graph(2)`) and the same splits (BBH: 50 train / 50 validation = the gate / every
remaining item as test, carved once with split seed 0). The embedded models answer through
one path, `LocalLLM` with one slot and the prompt cache off (deterministic: the same
request gets the same reply), behind one response cache shared by all cells.

Budgets count **distinct requests, cache hits included**, by role (a cell's repeat of a
request it already made is sent and logged but not counted again; `RequestBudget`,
``--counting``): `forward` (the 0.5B: the
method's forward passes, its gate and screen scoring, its initial scoring) and `strong`
(the 1.5B: backward, optimizer and teacher calls). A method stops when either is spent; its last
incumbent is its final program. Test scoring is outside the budget and the same for every
method: the final program scored on every test item through the same path.

What a finished cell writes, under ``benchmarks/decide/results/<task>/``:

- ``<method>__seed<k>.json``: per-item test scores, the gate scores per step, requests and
  tokens by role (used of the budget), wall time, commit, machine, date;
- ``<method>__seed<k>.requests.jsonl.gz``: every request the cell made (optimization and
  test scoring) and its reply (`semgrad.llm.record`), so ``--replay`` re-runs the cell
  from the log alone (``replay-only`` cache: a request not in the log is an error) and
  checks it reproduces the committed per-item scores.

Peer methods (``textgrad``, ``copro``, ``miprov2``, ``gepa``, ``bootstrap-rs``, ``trace``)
and the ``identity`` check are cells too (`run_peer_cell`): the peer's adapter runs in its
venv against the peers' proxy in upstream mode, which answers through the same `Models`
path and the same budgets; ``--replay`` checks a peer cell from its log alone, never
re-running the peer library. ``--fake`` checks the wiring with scripted replies.

A cell whose results file exists is skipped; a started cell resumes from its run
directory's checkpoint. Run directories and the shared response cache live outside the
work tree (``$SEMGRAD_BENCH_HOME``, default ``~/.cache/semgrad/decide``), so a later
session on the same machine resumes them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from semgrad.data.example import Example, Task
from semgrad.data.tasks import load_task
from semgrad.errors import BudgetExceededError, CacheMissError
from semgrad.evaluation.evaluator import ExampleResult, aevaluate
from semgrad.evaluation.metrics import Metric, metric_for, task_metric
from semgrad.execution.context import RunContext
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Graph
from semgrad.llm.budget import REQUEST_KINDS
from semgrad.llm.cache import Cache, CachedLLM
from semgrad.llm.factory import close_client
from semgrad.llm.local import LocalLLM
from semgrad.llm.record import LogEntry, NoModel, RecordingLLM, RequestLog
from semgrad.llm.retry import RetryingLLM, RetryPolicy
from semgrad.llm.types import LLM, Request, Response, Wrapper
from semgrad.optim.config import DEFAULT_TEACHER, LATER_SEARCH_SETTINGS, config_from_dict
from semgrad.optim.records import BudgetStopped, InitialScored, ProgressEvent, StepFinished
from semgrad.optim.splits import Splits
from semgrad.optim.trainer import Trainer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
PEERS_DIR = ROOT / "benchmarks" / "peers"
FORWARD_MODEL = "qwen2.5-coder-0.5b"
STRONG_MODEL = "qwen2.5-coder-1.5b"

# Method -> the [optimizer] section of its run config (None: no optimization).
METHODS: dict[str, dict[str, Any] | None] = {
    "initial": None,
    # The reference protocol: batch of 2 failures, one proposal per parameter, full update,
    # strict gate on the training split.
    "paper": {"gate": "train", "optimizer": {"method": "paper"}},
    # semgrad's default: gradient-guided candidate search with a paired gate on validation.
    "search": {"gate": "val", "optimizer": {"method": "search"}},
    # Ablations of the default (stage 5): TextGrad-style independent backward (no siblings),
    # no gradients (the optimizer sees the failed examples' inputs and outputs only) ...
    "search-independent": {
        "gate": "val",
        "optimizer": {"method": "search", "backward": "independent"},
    },
    "search-nograd": {"gate": "val", "optimizer": {"method": "search", "use_gradients": False}},
    # ... and no gate: the best survivor of the screen is accepted as it is.
    "search-nogate": {"gate": "val", "optimizer": {"method": "search", "gate": "none"}},
    # A variant of the default: each step edits a parent drawn from the Pareto front of the
    # accepted programs (GEPA's way) instead of the incumbent.
    "search-pareto": {"gate": "val", "optimizer": {"method": "search", "parents": "pareto"}},
    # A variant of the default: a one-node candidate whose blamed node's proposal changes
    # nothing takes the next blamed node's proposal instead (`node_fallback`).
    "search-fallback": {
        "gate": "val",
        "optimizer": {"method": "search", "node_fallback": True},
    },
    # The search with demonstration candidates only (no backward or optimizer call), the
    # teacher's worked answers among them: is the default's gain its demonstrations?
    "demos-teacher": {"gate": "val", "optimizer": {"method": "demos", "teacher": DEFAULT_TEACHER}},
}
# Peer methods (benchmarks/peers): each runs its adapter in its own venv, through the proxy
# in upstream mode, i.e. through `Models` like the methods above (`run_peer_cell`).
PEER_METHODS = ("textgrad", "copro", "miprov2", "gepa", "bootstrap-rs", "trace", "dspy-initial")
# Not a method: the initial program sent through the proxy by a standard-library adapter,
# to show that the peers' path gives semgrad's per-item results (`compare_with_initial`).
IDENTITY = "identity"
# Cells of an unoptimized program (one seed; status "initial"): semgrad's, the identity
# check, and the initial program through DSPy's prompt layout (the DSPy optimizers' own
# baseline: the same instructions in DSPy's layout answer some items differently).
INITIAL_CELLS = ("initial", IDENTITY, "dspy-initial")
# Which budget a request counts against, by the phase that made it.
ROLE_OF_PHASE = REQUEST_KINDS  # phase -> "forward" or "strong"


class MissIsBudget(Wrapper):
    """In a replay of a cell that stopped at its budget: which requests of the last,
    interrupted step were sent before the stop depends on timing, so a request the log
    lacks ends the run there, as the budget did. The completed steps (and so the final
    program and its test scores) do not depend on timing, and are what a replay checks."""

    async def complete(self, request: Request) -> Response:
        try:
            return await self._inner.complete(request)
        except CacheMissError:
            raise BudgetExceededError("requests (replayed budget stop)", 0, 0) from None


class SeenRequests:
    """The requests a cell has counted (their cache keys), by role. With a `path` each key
    is appended to that file as it is counted, so a resumed cell goes on counting where it
    stopped (a torn last line is ignored)."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.keys: set[str] = set()
        self.counts = {"forward": 0, "strong": 0}
        if path is not None and path.exists():
            text = path.read_text()
            for line in text.splitlines():
                role, _, key = line.partition(" ")
                if role in self.counts and len(key) == 64 and key not in self.keys:
                    self.keys.add(key)
                    self.counts[role] += 1
            if text and not text.endswith("\n"):  # drop the torn line before appending
                path.write_text(text[: text.rfind("\n") + 1])

    def __contains__(self, key: str) -> bool:
        return key in self.keys

    def add(self, role: str, key: str) -> None:
        self.keys.add(key)
        self.counts[role] += 1
        if self.path is not None:
            with self.path.open("a") as f:
                f.write(f"{role} {key}\n")


class RequestBudget(Wrapper):
    """Counts the requests of one role, cache hits included, and refuses the request that
    would pass the limit (`BudgetExceededError`: the trainer stops cleanly).

    With `seen` (distinct counting, the default since 2026-12-02), an exact repeat of a
    request the cell has already made is passed on without counting: any in-memory cache
    answers it (DSPy's answers it before the proxy sees it, so the peers' counts were of
    distinct requests already), while a hit of a request made by another cell or seed
    still counts. Without `seen`, every request counts (how the first cells were run)."""

    def __init__(
        self,
        inner: LLM,
        role: str,
        limit: int,
        used: dict[str, int],
        seen: SeenRequests | None = None,
    ) -> None:
        super().__init__(inner)
        self.role, self.limit, self.used, self.seen = role, limit, used, seen

    async def complete(self, request: Request) -> Response:
        if self.seen is None:
            self._count()
        else:
            key = request.cache_key(self.model)
            if key not in self.seen:
                self._count()
                self.seen.add(self.role, key)
        return await self._inner.complete(request)

    def _count(self) -> None:
        if self.used[self.role] >= self.limit:
            raise BudgetExceededError(f"{self.role} requests", self.limit, self.used[self.role])
        self.used[self.role] += 1


def _maybe_miss_is_budget(llm: LLM, args: argparse.Namespace) -> LLM:
    return MissIsBudget(llm) if getattr(args, "replay_budget_stop", False) else llm


OPT_LOG = "requests.partial.jsonl.gz"
"""In a cell's run directory: its optimization requests so far (`run_cell`)."""


def cell_dir(task: str) -> Path:
    return HERE / "results" / task.replace(":", "-")


def cell_name(method: str, seed: int) -> str:
    return f"{method}__seed{seed}"


# Split sizes (BENCHMARKS.md §2), the first N of each split (split seed 0): BBH's splits are
# carved 50 / 50 / every remaining item by `load_task` itself; GSM8K is 50 train and 50
# validation (carved from its train file) and 200 test (from its test file).
SPLIT_SIZES: dict[str, dict[str, int]] = {"gsm8k": {"train": 50, "val": 50, "test": 200}}


def load_part(task: str, which: str, data_dir: Path | None) -> Task:
    """One split of `task` at the benchmark's size."""
    loaded = load_task(f"{task}:{which}", data_dir=data_dir, seed=0)
    n = SPLIT_SIZES.get(task.split(":")[0], {}).get(which)
    if n is None:
        return loaded
    if len(loaded.examples) < n:
        raise SystemExit(f"{task}:{which} has {len(loaded.examples)} examples, fewer than {n}")
    return dataclasses.replace(loaded, examples=loaded.examples[:n])


def load_splits(task: str, data_dir: Path | None) -> tuple[Splits, Metric]:
    parts = {which: load_part(task, which, data_dir) for which in ("train", "val", "test")}
    metric = task_metric(parts["train"])
    splits = Splits(tuple(parts["train"].examples), tuple(parts["val"].examples), (), metric)
    splits.check_disjoint(gate_is_train=False)
    return splits, metric


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    return out.stdout.strip()


def cell_fields(
    task: str,
    method: str,
    seed: int,
    status: str,
    splits: Splits,
    args: argparse.Namespace,
    used: dict[str, int],
    logs: tuple[Iterable[LogEntry], Iterable[LogEntry]],
    test_task: Task,
    scores: list[float],
    replies: list[str | None],
    errors: int,
) -> dict[str, Any]:
    """What every cell records, semgrad's and the peers': the cell, its budget and use
    (requests of the optimization and of the test scoring, from `logs`), and per test item
    its id, target, score and reply."""
    test = test_task.examples
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "status": status,
        "sizes": {"train": len(splits.train), "gate": len(splits.gate), "test": len(test)},
        "budget": {"forward": args.forward_budget, "strong": args.strong_budget},
        # "distinct": a repeat of a request the cell already made is not counted again;
        # "every": every request counted (the first cells; `RequestBudget`).
        "counting": args.counting,
        "used": used,
        "requests": _usage_by_role(RequestLog(logs[0])),
        "test_requests": _usage_by_role(RequestLog(logs[1])),
        "metric": {"name": test_task.metric_name, "labels": list(test_task.metric_labels or ())},
        "test_ids": [e.id for e in test],
        "test_targets": [e.target for e in test],
        "test_scores": scores,
        "test_replies": replies,
        "test_errors": errors,
        "test_accuracy": sum(scores) / len(scores),
    }


def provenance(models: Models) -> dict[str, Any]:
    """Where and how a cell ran: machine, serving settings, date, commit."""
    return {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "models": {
            "forward": FORWARD_MODEL,
            "strong": STRONG_MODEL,
            "slots": 1,
            "prompt_cache": False,
            "replicas": getattr(models.clients["forward"], "replicas", None),
        },
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
    }


def _usage_by_role(log: RequestLog) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for e in log:
        role = ROLE_OF_PHASE.get(e.phase, e.phase)
        d = out.setdefault(role, {"requests": 0, "cache_hits": 0, "tokens": 0})
        d["requests"] += 1
        d["cache_hits"] += int(e.cached)
        d["tokens"] += e.prompt_tokens + e.completion_tokens
    return out


def _peers() -> Any:
    """benchmarks/peers/run.py (its adapters' table, task file and subprocess), loaded on
    first use: the semgrad cells and the replays need none of it."""
    module = sys.modules.get("peers_run")
    if module is None:
        import importlib.util

        sys.path.insert(0, str(PEERS_DIR))
        spec = importlib.util.spec_from_file_location("peers_run", PEERS_DIR / "run.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["peers_run"] = module
        spec.loader.exec_module(module)
    return module


def peer_method(method: str) -> Any:
    peers = _peers()
    return peers.IDENTITY if method == IDENTITY else peers.METHODS[method]


def check_peer_venvs(methods: list[str]) -> None:
    """A clear error, before any cell runs, for a peer whose venv was never set up."""
    for method in methods:
        if method not in PEER_METHODS:
            continue
        m = peer_method(method)
        if not m.python().exists():
            raise SystemExit(
                f"{method}: the {m.peer} venv is missing ({m.python()}); create it with "
                f"`python benchmarks/peers/setup_peers.py {m.peer}` (network, ~4 min for all)"
            )


class Models:
    """The one serving path: both embedded models behind retries and one shared cache,
    each request logged (outside the cache, so hits are logged too)."""

    def __init__(self, cache: Cache, clients: dict[str, Any] | None = None) -> None:
        # Other clients (scripted, or none in a replay) stand in only for checks and tests.
        self.clients: dict[str, Any] = clients or {
            "forward": LocalLLM(FORWARD_MODEL, n_parallel=1, prompt_cache=False),
            "strong": LocalLLM(STRONG_MODEL, n_parallel=1, prompt_cache=False),
        }
        self.cache = cache

    @classmethod
    def scripted(cls, cache: Cache, reply: Callable[[str], Callable[[Request], str]]) -> Models:
        """Both roles answered by `reply(model)` (a `ScriptedLLM` named like the embedded
        model, whose name the cache keys use): no model is loaded."""
        from semgrad.llm.fakes import ScriptedLLM

        models = (("forward", FORWARD_MODEL), ("strong", STRONG_MODEL))
        return cls(cache, {role: ScriptedLLM(reply(m), model=m) for role, m in models})

    def llm(self, role: str, log: RequestLog) -> LLM:
        client = self.clients[role]
        retried = RetryingLLM(client, RetryPolicy(max_attempts=3))
        return RecordingLLM(CachedLLM(retried, self.cache), log)

    async def aclose(self) -> None:
        for c in self.clients.values():
            await close_client(c)


async def score(graph: Graph, examples: Any, metric: Metric, llm: LLM) -> list[ExampleResult]:
    ctx = RunContext(llms={"forward": llm}, max_concurrency=4, phase="evaluation")
    return list((await aevaluate(graph, examples, metric, ctx)).results)


async def run_cell(
    task: str, method: str, seed: int, args: argparse.Namespace, models: Models
) -> tuple[dict[str, Any], RequestLog]:
    splits, metric = load_splits(task, args.data_dir)
    test_task = load_part(task, "test", args.data_dir)
    test = test_task.examples
    log = RequestLog()
    t0 = time.perf_counter()
    steps: list[dict[str, Any]] = []
    status = "initial"
    used = {"forward": 0, "strong": 0}
    graph = hint_graph(2)
    spec = METHODS[method]
    if spec is not None:
        run_dir = args.runs / task.replace(":", "-") / cell_name(method, seed)
        resume = (run_dir / "checkpoint.json").exists()
        # The requests of the cell's earlier processes, kept at each checkpoint: a resumed
        # cell's log is then every request of the cell, as a replay needs (requests after
        # the last checkpoint are asked again on the resume, the cache answering them).
        kept = run_dir / OPT_LOG
        if resume and kept.exists():
            log.entries.extend(RequestLog.read(kept))
        elif resume:
            print(
                f"    {run_dir} kept no request log (started by an older runner): the cell's "
                "log will lack its earlier requests; `--relog` writes a whole one afterwards",
                flush=True,
            )
        seen = None
        if args.counting == "distinct":
            # Requests already counted stay counted (and their repeats free) on a resume.
            run_dir.mkdir(parents=True, exist_ok=True)
            seen_file = run_dir / "counted_requests.txt"
            if resume and not seen_file.exists():
                raise SystemExit(
                    f"{run_dir} was started by an older runner that counted every request; "
                    "delete it to start the cell again (its requests are cached), or pass "
                    "--counting every"
                )
            seen = SeenRequests(seen_file)
            used.update(seen.counts)
        elif resume:  # requests already made count against the budget (from the checkpoint)
            state = json.loads((run_dir / "checkpoint.json").read_text())
            for phase, s in state.get("spend", {}).items():
                used[ROLE_OF_PHASE.get(phase, phase)] += int(s.get("requests", 0))
        limits = {"forward": args.forward_budget, "strong": args.strong_budget}
        llms = {
            role: RequestBudget(
                _maybe_miss_is_budget(models.llm(r, log), args), r, limits[r], used, seen
            )
            for role, r in (
                ("forward", "forward"),
                ("backward", "strong"),
                ("optimizer", "strong"),
                ("teacher", "strong"),
            )
        }
        config = config_from_dict(
            {
                "name": cell_name(method, seed),
                "seed": seed,
                "steps": args.max_steps,
                "graph": {"hints": 2},
                "data": {"train": f"{task}:train", "gate": f"{task}:val", "test": f"{task}:test"},
                "optimizer": getattr(args, "optimizer", None) or spec["optimizer"],
                "models": {"concurrency": 4, "cache_mode": "off"},
            }
        )
        gate_split = splits.train if spec["gate"] == "train" else splits.gate
        run_splits = Splits(splits.train, gate_split, (), metric)

        def progress(event: ProgressEvent) -> None:
            if isinstance(event, (InitialScored, StepFinished, BudgetStopped)):
                run_dir.mkdir(parents=True, exist_ok=True)
                log.write(kept)
            if isinstance(event, InitialScored):
                print(f"    initial gate {event.gate:.3f}", flush=True)
            elif isinstance(event, StepFinished):
                r = event.record
                print(
                    f"    step {r.step}: {r.candidate_score} vs {r.incumbent_score} -> "
                    f"{'accepted' if r.accepted else 'rejected'} ({r.wall_s:.0f} s; "
                    f"requests {used})",
                    flush=True,
                )
            elif isinstance(event, BudgetStopped):
                print(f"    {event.message}", flush=True)

        trainer = Trainer(graph, run_splits, run_dir, config=config, llms=llms, progress=progress)
        result = await trainer.run(resume=resume)
        status = result.status
        graph = trainer.graph
        history = run_dir / "history.jsonl"
        step_walls: list[float] = []
        if history.exists():
            for line in history.read_text().splitlines():
                row = json.loads(line)
                step_walls.append(float(row.get("wall_s") or 0.0))
                gate = row.get("gate") or {}
                steps.append(
                    {
                        "step": row.get("step"),
                        "accepted": row.get("accepted"),
                        "candidate_score": row.get("candidate_score"),
                        "incumbent_score": row.get("incumbent_score"),
                        "gate_scores": gate.get("scores"),
                        "changed": row.get("changed"),
                    }
                )
        initial_gate, best_gate = result.initial_gate, result.best_gate
        settings: dict[str, Any] | None = config.optimizer.model_dump(mode="json")
        # Over every process of a resumed cell (a run dir from before the trainer kept its
        # wall time: at least the time its recorded steps took).
        earlier = result.total_wall_s - result.wall_s
        if earlier <= 0:
            earlier = max(0.0, sum(step_walls) - result.wall_s)
    else:
        initial_gate = best_gate = settings = None
        earlier = 0.0
    opt_wall = time.perf_counter() - t0 + earlier
    test_log_start = len(log)
    results = await score(graph, test, metric, models.llm("forward", log))
    wall = time.perf_counter() - t0 + earlier
    return {
        **cell_fields(
            task,
            method,
            seed,
            status,
            splits,
            args,
            used,
            logs=(log.entries[:test_log_start], log.entries[test_log_start:]),
            test_task=test_task,
            scores=[r.score.value for r in results],
            # The output node's reply per test item: what the log-only replay check scores.
            replies=[r.trace.output for r in results],
            errors=sum(1 for r in results if r.error),
        ),
        "initial_gate": initial_gate,
        "best_gate": best_gate,
        # Every setting of the optimizer, so a replay runs the method as it ran (a default
        # may change later).
        "optimizer": settings,
        "steps": steps,
        "final_state": graph.state_dict(),
        "optimization_wall_s": round(opt_wall, 1),
        "wall_s": round(wall, 1),
        **provenance(models),
    }, log


ADAPTER_STATUS = {"ok": "finished"}  # a peer's own word for a run that ended by itself


async def run_peer_cell(
    task: str, method: str, seed: int, args: argparse.Namespace, models: Models
) -> tuple[dict[str, Any], RequestLog]:
    """A peer method (or the identity check) as a decide cell. The proxy runs in this
    process in upstream mode: the adapter's optimize requests go to ``Models.llm(role)``
    in this cell's `RequestBudget` (the model name picks the role: the forward model is
    ``forward``, the strong one ``strong``), its test requests to ``Models.llm("forward")``
    without a budget; all are logged. The adapter gets the decide splits (train; the gate
    split as its validation set; every test item) and predicts the test set with its best
    program once the budget refuses it; semgrad's task metric scores the predictions."""
    peers = _peers()  # first: it puts the peers' folder (the proxy's) on the import path
    from proxy import PeerProxy, Route

    m = peer_method(method)
    splits, metric = load_splits(task, args.data_dir)
    test_task = load_part(task, "test", args.data_dir)
    test = test_task.examples
    peer_splits = peers.Splits(task, splits.train, splits.gate, test, metric)
    opt_log, test_log = RequestLog(), RequestLog()
    used = {"forward": 0, "strong": 0}
    limits = {"forward": args.forward_budget, "strong": args.strong_budget}

    seen = SeenRequests() if args.counting == "distinct" else None

    def budgeted(role: str) -> LLM:
        return RequestBudget(models.llm(role, opt_log), role, limits[role], used, seen)

    routes = {
        "optimize": {
            FORWARD_MODEL: Route(budgeted("forward"), "forward"),
            STRONG_MODEL: Route(budgeted("strong"), "optimizer"),
        },
        "test": {FORWARD_MODEL: Route(models.llm("forward", test_log), "evaluation")},
    }

    def remaining(phase: str) -> int | None:
        return min(limits[r] - used[r] for r in limits) if phase == "optimize" else None

    run_name = f"{task.replace(':', '-')}.{cell_name(method, seed)}"
    t0 = time.perf_counter()
    with PeerProxy.semgrad(asyncio.get_running_loop()) as proxy:
        proxy.register(
            run_name, scorer=peers.scorer_for(peer_splits), routes=routes, remaining=remaining
        )
        data = peers.task_data(
            peer_splits,
            method,
            seed,
            args.forward_budget,
            {"forward": FORWARD_MODEL, "optimizer": STRONG_MODEL},
            proxy,
            run_name,
            optimizer_max_tokens=args.optimizer_max_tokens,
            concurrency=4,
            options=peers._options(args),
            budgets=limits,
        )
        setup = peers.setup_record(m.peer) if m.peer else {"status": "ok"}
        work = args.runs / task.replace(":", "-") / cell_name(method, seed)
        adapter, adapter_status, error = await asyncio.to_thread(
            peers.run_adapter, m, data, work, args.timeout, setup
        )
        stats = proxy.stats(run_name)
    wall = time.perf_counter() - t0
    refused = int(stats["phases"].get("optimize", {}).get("refused", 0))
    if refused:
        status = "budget"
    elif method in INITIAL_CELLS and adapter_status == "ok":
        status = "initial"
    else:
        status = ADAPTER_STATUS.get(adapter_status, adapter_status)
    by_id = {str(p["id"]): p for p in adapter.get("predictions") or []}
    replies: list[str | None] = []
    scores: list[float] = []
    for e in test:
        p = by_id.get(e.id) or {}
        reply = None if p.get("error") or "text" not in p else str(p["text"])
        replies.append(reply)
        scores.append(0.0 if reply is None else metric(reply, e).value)
    record = {
        # The adapter's final answer text per test item (None: no prediction). A peer
        # may parse it out of the model's reply (DSPy's fields), so the log-only check
        # finds it inside a logged reply rather than equal to one.
        **cell_fields(
            task,
            method,
            seed,
            status,
            splits,
            args,
            used,
            logs=(opt_log, test_log),
            test_task=test_task,
            scores=scores,
            replies=replies,
            errors=sum(1 for r in replies if r is None),
        ),
        "refused": refused,
        "test_replies_parsed": True,
        "initial_gate": None,
        "best_gate": None,
        "steps": adapter.get("history", []),
        "final_program": adapter.get("optimized", {}),
        "peer": {
            "library": adapter.get("library") or m.peer,
            "versions": adapter.get("versions") or setup.get("versions") or {},
            "optimizer": adapter.get("optimizer", ""),
            "settings": adapter.get("settings", {}),
            "adapter_status": adapter_status,
            "error": error,
            "notes": adapter.get("notes", []),
            "budget_exhausted": bool(adapter.get("budget_exhausted")),
            "proxy": stats["phases"],
        },
        "optimization_wall_s": adapter.get("optimize_seconds"),
        "wall_s": round(wall, 1),
        **provenance(models),
    }
    return record, RequestLog([*opt_log, *test_log])


def compare_with_initial(record: dict[str, Any], initial: dict[str, Any]) -> list[str]:
    """The one-serving-path check: the items on which `record` (the identity cell) and the
    initial cell differ in reply or score (empty: identical per-item results)."""
    if record["test_ids"] != initial["test_ids"]:
        return ["the two cells have different test items"]
    rows = zip(
        record["test_ids"],
        record["test_replies"],
        initial["test_replies"],
        record["test_scores"],
        initial["test_scores"],
        strict=True,
    )
    return [
        f"{item}: score {s} vs {t}" + ("" if a == b else ", reply differs")
        for item, a, b, s, t in rows
        if a != b or s != t
    ]


def serving_models(cache: Cache) -> Models:
    """The embedded models of a real run (tests put scripted ones here)."""
    return Models(cache)


def fake_models(cache: Cache) -> Models:
    """``--fake``: scripted replies shaped for every adapter's parsing (the peers' fake
    servers' replies), no model; checks the wiring only."""
    from semgrad.llm.openai import request_body

    def reply(model: str) -> Callable[[Request], str]:
        return lambda request: str(_peers()._fake_reply(request_body(request, model)))

    return Models.scripted(cache, reply)


def results_dir(args: argparse.Namespace) -> Path:
    """Where the cells go: benchmarks/decide/results, or for --fake the runs folder."""
    if getattr(args, "fake", False):
        return args.runs / "fake-results" / args.task.replace(":", "-")
    return cell_dir(args.task)


def warm_cache(cache: Cache, root: Path | None = None) -> int:
    """Put every committed cell's logged replies into the response cache (first reply per
    request wins) and return how many entries were new: on a new machine, requests that
    committed cells already made (the initial gate, shared screens) are answered as they
    were instead of being computed again. Deterministic scoring makes a logged reply the
    one the model would give; a cell's own requests still count against its budget."""
    root = root or HERE / "results"
    return sum(
        RequestLog.read(path).fill_cache(cache)
        for path in sorted(root.glob("*/*.requests.jsonl.gz"))
    )


async def main_async(args: argparse.Namespace) -> int:
    out = results_dir(args)
    out.mkdir(parents=True, exist_ok=True)
    cells = [(m, s) for m in args.methods for s in args.seeds]
    if args.replay:
        return await replay(args, cells)
    if args.relog:
        return await relog(args, cells)
    check_peer_venvs(args.methods)
    if getattr(args, "fake", False):
        cache = Cache(args.runs / "fake-cache.sqlite")
        models = fake_models(cache)
    else:
        cache = Cache(args.cache)
        if args.warm_cache:
            print(f"response cache: {warm_cache(cache)} replies added from committed logs")
        models = serving_models(cache)
    failed = 0
    try:
        for method, seed in cells:
            name = cell_name(method, seed)
            path = out / f"{name}.json"
            if path.exists():
                print(f"{name}: done", flush=True)
                continue
            if method in INITIAL_CELLS and seed != args.seeds[0]:
                continue  # the initial program does not depend on the seed
            print(f"{name}: running", flush=True)
            if method in METHODS:
                record, log = await run_cell(args.task, method, seed, args, models)
            else:
                record, log = await run_peer_cell(args.task, method, seed, args, models)
                if all(r is None for r in record["test_replies"]):
                    # The adapter never predicted (a crash, a missing venv): nothing to
                    # keep; the next run tries again, the cache answering what it asked.
                    print(f"{name}: NOT WRITTEN, no test prediction: {record['peer']['error']}")
                    failed += 1
                    continue
            log.write(out / f"{name}.requests.jsonl.gz")
            path.write_text(json.dumps(record, indent=1) + "\n")
            print(
                f"{name}: {record['status']}, test {record['test_accuracy']:.3f} "
                f"({len(record['test_ids'])} items), requests {record['used']}, "
                f"{record['wall_s']:.0f} s",
                flush=True,
            )
            if record.get("peer", {}).get("error"):
                print(f"    adapter error: {record['peer']['error'][-800:]}", flush=True)
            initial_path = out / f"{cell_name('initial', args.seeds[0])}.json"
            if method == IDENTITY and initial_path.exists():
                diff = compare_with_initial(record, json.loads(initial_path.read_text()))
                print(
                    f"{name}: one serving path: {len(diff)} of {len(record['test_ids'])} "
                    f"items differ from the initial cell" + (f": {diff[:5]}" if diff else ""),
                    flush=True,
                )
    finally:
        await models.aclose()
        cache.close()
    return 1 if failed else 0


def check_from_log(record: dict[str, Any], log: RequestLog) -> list[str]:
    """The replay check for a machine without the task's data: every committed test reply
    is a reply of the cell's request log, and the task's metric gives it the committed
    score against the committed target. Returns what does not hold (empty: it matches)."""
    replies, named = record.get("test_replies"), record.get("metric")
    if replies is None or named is None:
        return ["the cell has no test_replies or metric (written by an older run.py)"]
    metric = metric_for(named["name"], **({"labels": named["labels"]} if named["labels"] else {}))
    # The trace keeps a reply without its surrounding whitespace (the executor's value).
    logged = {e.text for e in log} | {e.text.strip() for e in log}
    if record.get("test_replies_parsed"):  # a peer's parsed answer: inside a logged reply
        logged |= _json_strings(logged)
    problems = []
    rows = zip(
        record["test_ids"], record["test_targets"], replies, record["test_scores"], strict=True
    )
    for item, target, reply, score in rows:
        found = reply is None or reply in logged
        if not found and record.get("test_replies_parsed"):
            found = any(reply.strip() in text for text in logged)
        if not found:
            problems.append(f"{item}: its reply is not in the request log")
        again = 0.0 if reply is None else metric(reply, Example(item, {}, target)).value
        if again != score:
            problems.append(f"{item}: scored {again}, committed {score}")
    return problems


def _json_strings(texts: set[str]) -> set[str]:
    """The string values of replies that are JSON objects (DSPy's JSON adapter)."""
    out: set[str] = set()
    for text in texts:
        try:
            data = json.loads(text)
        except ValueError:
            continue
        if isinstance(data, dict):
            out |= {v for v in data.values() if isinstance(v, str)}
    return out


def check_peer_from_log(record: dict[str, Any], log: RequestLog) -> list[str]:
    """The replay of a peer cell (the peer library is not re-run): `check_from_log`, and
    the requests by role the cell reports are the log's."""
    problems = check_from_log(record, log)
    n_opt = sum(d["requests"] for d in record["requests"].values())
    usage = _usage_by_role(RequestLog(log.entries[:n_opt]))
    if usage != record["requests"]:
        problems.append(
            f"the log's optimize requests {usage} are not the cell's {record['requests']}"
        )
    tests = _usage_by_role(RequestLog(log.entries[n_opt:]))
    if tests != record["test_requests"]:
        problems.append(f"the log's test requests {tests} are not the cell's")
    return problems


def _comparable(value: Any) -> Any:
    """`value` as its JSON reads back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value))


def _have_data(args: argparse.Namespace) -> bool:
    return args.data_dir is not None and Path(args.data_dir).is_dir()


async def replay(args: argparse.Namespace, cells: list[tuple[str, int]]) -> int:
    """Re-run finished cells from their request logs alone; compare per-item test scores.
    Without the task's data directory (users and CI may not have it), check instead that
    the committed test replies are in the log and score as committed (`check_from_log`)."""
    out = results_dir(args)
    bad = 0
    for method, seed in cells:
        name = cell_name(method, seed)
        path = out / f"{name}.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        log = RequestLog.read(out / f"{name}.requests.jsonl.gz")
        if method not in METHODS:  # a peer cell: checked from its log, never re-run
            problems = check_peer_from_log(record, log)
            bad += bool(problems)
            verdict = "matches" if not problems else "DIFFERS: " + "; ".join(problems[:5])
            print(f"{name}: log-only check (peer cell) {verdict}", flush=True)
            continue
        if not _have_data(args):
            problems = check_from_log(record, log)
            bad += bool(problems)
            verdict = "matches" if not problems else "DIFFERS: " + "; ".join(problems[:5])
            print(f"{name}: log-only check (no data directory) {verdict}", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            replay_cache = log.replay_cache(Path(tmp) / "replay.sqlite")
            models = replay_models(replay_cache)
            fresh = rerun_args(args, record, Path(tmp), record["status"] == "budget")
            try:
                again, _ = await run_cell(args.task, method, seed, fresh, models)
            except CacheMissError:
                bad += 1
                print(f"{name}: replay DIFFERS: the log lacks a request the cell makes")
                continue
            finally:
                replay_cache.close()
        differs = rerun_differs(again, record)
        bad += bool(differs)
        verdict = "matches" if not differs else f"DIFFERS in {', '.join(differs)}"
        print(f"{name}: replay {verdict}", flush=True)
    return 1 if bad else 0


async def relog(args: argparse.Namespace, cells: list[tuple[str, int]]) -> int:
    """Write again the request log of finished cells, by running each again from the
    start through the response cache (which answers every request the cell made): for a
    cell finished by a resumed process of an older runner, whose log lacked the earlier
    processes' requests. The log is kept only when the run again gives the committed test
    scores, requests used and steps; of the results file only the requests and tokens read
    from the log (``requests``, ``test_requests``; without ``cache_hits``, which a run
    through the cache cannot tell) are written again, and ``relogged`` says when."""
    out = results_dir(args)
    cache = Cache(args.cache)
    models = serving_models(cache)
    bad = 0
    try:
        for method, seed in cells:
            name = cell_name(method, seed)
            path = out / f"{name}.json"
            if not path.exists() or method not in METHODS:
                continue
            record = json.loads(path.read_text())
            with tempfile.TemporaryDirectory() as tmp:
                fresh = rerun_args(args, record, Path(tmp))
                again, log = await run_cell(args.task, method, seed, fresh, models)
            differs = rerun_differs(again, record)
            if differs:
                bad += 1
                print(f"{name}: relog DIFFERS in {', '.join(differs)}; log not written")
                continue
            log.write(out / f"{name}.requests.jsonl.gz")
            for key in ("requests", "test_requests"):
                record[key] = {
                    role: {k: v for k, v in usage.items() if k != "cache_hits"}
                    for role, usage in again[key].items()
                }
            record["relogged"] = time.strftime("%Y-%m-%d")
            path.write_text(json.dumps(record, indent=1) + "\n")
            print(f"{name}: relogged, {len(log)} requests", flush=True)
    finally:
        await models.aclose()
        cache.close()
    return 1 if bad else 0


def rerun_args(
    args: argparse.Namespace, record: dict[str, Any], tmp: Path, budget_stop: bool = False
) -> argparse.Namespace:
    """`args` for running a committed cell again as it ran (a replay, a relog): its own
    counting and optimizer settings, run directories under `tmp`; with `budget_stop`, a
    request the replay's log lacks is the budget stop the cell ended with."""
    return argparse.Namespace(
        **{
            **vars(args),
            "runs": tmp / "runs",
            "replay_budget_stop": budget_stop,
            "counting": record.get("counting", "every"),
            "optimizer": replay_settings(record),
        }
    )


def rerun_differs(again: dict[str, Any], record: dict[str, Any]) -> list[str]:
    """What a cell run again changed of the committed one: the test scores, and the way
    there (the requests by role and each step's outcome; a replay whose code took another
    path stops at its first request the log lacks, which a budget-stopped cell would
    otherwise hide)."""
    return [
        key
        for key in ("test_scores", "used", "steps")
        if key in record and _comparable(again.get(key)) != _comparable(record[key])
    ]


def replay_settings(record: dict[str, Any]) -> dict[str, Any] | None:
    """The optimizer settings a cell ran with: recorded since 2026-12-03; a search cell
    from before gated every survivor of its screen (`gate_survivors` did not exist), and
    one recorded before a later setting (`LATER_SEARCH_SETTINGS`: `final_answer`,
    `gate_held_out`, `skip_shown`) did not have it."""
    older = dict.fromkeys(LATER_SEARCH_SETTINGS, False)
    if record.get("optimizer") is not None:
        settings = dict(record["optimizer"])
        if settings.get("method", "search") != "paper":
            settings = {**older, **settings}
        return settings
    spec = METHODS.get(record["method"])
    if spec is None or spec["optimizer"].get("method", "search") == "paper":
        return None
    return {**spec["optimizer"], "gate_survivors": 32, **older}


def replay_models(cache: Cache) -> Models:
    """The same path with no model behind the cache: nothing is ever loaded."""
    return Models(cache, {"forward": NoModel(FORWARD_MODEL), "strong": NoModel(STRONG_MODEL)})


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="bbh:object_counting")
    ap.add_argument("--methods", default="initial", type=lambda s: s.split(","))
    ap.add_argument("--seeds", default="0", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--forward-budget", type=int, default=600)
    ap.add_argument("--strong-budget", type=int, default=60)
    ap.add_argument("--max-steps", type=int, default=100)
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("SEMGRAD_DATA_DIR"))
    # Outside the work tree, so a later session on the same machine finds them.
    work = Path(os.environ.get("SEMGRAD_BENCH_HOME", Path.home() / ".cache" / "semgrad" / "decide"))
    ap.add_argument("--cache", type=Path, default=work / "cache.sqlite")
    ap.add_argument("--runs", type=Path, default=work / "runs", help="run directories")
    ap.add_argument("--replay", action="store_true")
    ap.add_argument(
        "--relog",
        action="store_true",
        help="write finished cells' request logs again, running them through the cache",
    )
    ap.add_argument(
        "--warm-cache",
        action="store_true",
        help="first fill the response cache from every committed cell's request log (a new "
        "machine: requests committed cells made are answered as they were, not recomputed)",
    )
    ap.add_argument("--optimizer-max-tokens", type=int, default=512, help="peers' strong calls")
    ap.add_argument("--timeout", type=float, default=8 * 3600, help="wall seconds per peer cell")
    ap.add_argument("--option", action="append", default=[], help="KEY=VALUE for peer adapters")
    ap.add_argument(
        "--counting",
        choices=("distinct", "every"),
        default="distinct",
        help="how the budgets count a cell's requests (cache hits always count): 'distinct' "
        "does not count a repeat of a request the cell already made (the default), 'every' "
        "counts every request (how the first cells were run)",
    )
    ap.add_argument(
        "--fake",
        action="store_true",
        help="scripted replies, no model (wiring check); cells go under --runs/fake-results",
    )
    args = ap.parse_args(argv)
    known = [*METHODS, *PEER_METHODS, IDENTITY]
    unknown = [m for m in args.methods if m not in known]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; known: {known}")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
