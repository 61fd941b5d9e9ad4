"""Benchmarks that decide (BENCHMARKS.md): equal request budgets, one serving path,
deterministic scoring, a request log per cell, every figure replayable without a model.

    python benchmarks/decide/run.py --task bbh:object_counting --methods initial,paper --seeds 0,1,2
    python benchmarks/decide/run.py --task bbh:object_counting --methods paper --replay

A cell is (task, method, seed). Every method starts from the same 3-node graph
(`hint_graph(2)`) and the same splits (BBH: 50 train / 50 validation = the gate / every
remaining item as test, carved once with split seed 0). The embedded models answer through
one path, `LocalLLM` with one slot and the prompt cache off (deterministic: the same
request gets the same reply), behind one response cache shared by all cells.

Budgets count **requests, cache hits included**, by role: `forward` (the 0.5B: the
method's forward passes, its gate and screen scoring, its initial scoring) and `strong`
(the 1.5B: backward and optimizer calls). A method stops when either is spent; its last
incumbent is its final program. Test scoring is outside the budget and the same for every
method: the final program scored on every test item through the same path.

What a finished cell writes, under ``benchmarks/decide/results/<task>/``:

- ``<method>__seed<k>.json``: per-item test scores, the gate scores per step, requests and
  tokens by role (used of the budget), wall time, commit, machine, date;
- ``<method>__seed<k>.requests.jsonl.gz``: every request the cell made (optimization and
  test scoring) and its reply (`semgrad.llm.record`), so ``--replay`` re-runs the cell
  from the log alone (``replay-only`` cache: a request not in the log is an error) and
  checks it reproduces the committed per-item scores.

A cell whose results file exists is skipped; a started cell resumes from its run
directory's checkpoint. Run directories and the shared response cache live outside the
work tree (``$SEMGRAD_BENCH_HOME``, default ``~/.cache/semgrad/decide``), so a later
session on the same machine resumes them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from semgrad.data.example import Example
from semgrad.data.tasks import load_task
from semgrad.errors import BudgetExceededError, CacheMissError
from semgrad.evaluation.evaluator import ExampleResult, aevaluate
from semgrad.evaluation.metrics import Metric, metric_for, task_metric
from semgrad.execution.context import RunContext
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Graph
from semgrad.llm.cache import Cache, CachedLLM
from semgrad.llm.factory import close_client
from semgrad.llm.local import LocalLLM
from semgrad.llm.record import RecordingLLM, RequestLog
from semgrad.llm.retry import RetryingLLM, RetryPolicy
from semgrad.llm.types import LLM, Request, Response, Wrapper
from semgrad.optim.config import config_from_dict
from semgrad.optim.records import BudgetStopped, InitialScored, ProgressEvent, StepFinished
from semgrad.optim.splits import Splits
from semgrad.optim.trainer import Trainer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
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
}
# Which budget a request counts against, by the phase that made it.
ROLE_OF_PHASE = {
    "forward": "forward",
    "evaluation": "forward",
    "backward": "strong",
    "optimizer": "strong",
}


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


class RequestBudget(Wrapper):
    """Counts every request of one role, cache hits included, and refuses the request
    that would pass the limit (`BudgetExceededError`: the trainer stops cleanly)."""

    def __init__(self, inner: LLM, role: str, limit: int, used: dict[str, int]) -> None:
        super().__init__(inner)
        self.role, self.limit, self.used = role, limit, used

    async def complete(self, request: Request) -> Response:
        if self.used[self.role] >= self.limit:
            raise BudgetExceededError(f"{self.role} requests", self.limit, self.used[self.role])
        self.used[self.role] += 1
        return await self._inner.complete(request)


def _maybe_miss_is_budget(llm: LLM, args: argparse.Namespace) -> LLM:
    return MissIsBudget(llm) if getattr(args, "replay_budget_stop", False) else llm


def cell_dir(task: str) -> Path:
    return HERE / "results" / task.replace(":", "-")


def cell_name(method: str, seed: int) -> str:
    return f"{method}__seed{seed}"


def load_splits(task: str, data_dir: Path | None) -> tuple[Splits, Metric]:
    parts = {
        which: load_task(f"{task}:{which}", data_dir=data_dir, seed=0)
        for which in ("train", "val", "test")
    }
    metric = task_metric(parts["train"])
    splits = Splits(tuple(parts["train"].examples), tuple(parts["val"].examples), (), metric)
    splits.check_disjoint(gate_is_train=False)
    return splits, metric


def _commit() -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
    )
    return out.stdout.strip()


def _usage_by_role(log: RequestLog) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for e in log:
        role = ROLE_OF_PHASE.get(e.phase, e.phase)
        d = out.setdefault(role, {"requests": 0, "cache_hits": 0, "tokens": 0})
        d["requests"] += 1
        d["cache_hits"] += int(e.cached)
        d["tokens"] += e.prompt_tokens + e.completion_tokens
    return out


class Models:
    """The one serving path: both embedded models behind retries and one shared cache,
    each request logged (outside the cache, so hits are logged too)."""

    def __init__(self, cache: Cache) -> None:
        self.clients: dict[str, Any] = {
            "forward": LocalLLM(FORWARD_MODEL, n_parallel=1, prompt_cache=False),
            "strong": LocalLLM(STRONG_MODEL, n_parallel=1, prompt_cache=False),
        }
        self.cache = cache

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
    test_task = load_task(f"{task}:test", data_dir=args.data_dir, seed=0)
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
        if resume:  # requests already made count against the budget (from the checkpoint)
            state = json.loads((run_dir / "checkpoint.json").read_text())
            for phase, s in state.get("spend", {}).items():
                used[ROLE_OF_PHASE.get(phase, phase)] += int(s.get("requests", 0))
        limits = {"forward": args.forward_budget, "strong": args.strong_budget}
        llms = {
            role: RequestBudget(_maybe_miss_is_budget(models.llm(r, log), args), r, limits[r], used)
            for role, r in (("forward", "forward"), ("backward", "strong"), ("optimizer", "strong"))
        }
        config = config_from_dict(
            {
                "name": cell_name(method, seed),
                "seed": seed,
                "steps": args.max_steps,
                "graph": {"hints": 2},
                "data": {"train": f"{task}:train", "gate": f"{task}:val", "test": f"{task}:test"},
                "optimizer": spec["optimizer"],
                "models": {"concurrency": 4, "cache_mode": "off"},
            }
        )
        gate_split = splits.train if spec["gate"] == "train" else splits.gate
        run_splits = Splits(splits.train, gate_split, (), metric)

        def progress(event: ProgressEvent) -> None:
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
        if history.exists():
            for line in history.read_text().splitlines():
                row = json.loads(line)
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
    else:
        initial_gate = best_gate = None
    opt_wall = time.perf_counter() - t0
    test_log_start = len(log)
    results = await score(graph, test, metric, models.llm("forward", log))
    wall = time.perf_counter() - t0
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "status": status,
        "sizes": {"train": len(splits.train), "gate": len(splits.gate), "test": len(test)},
        "budget": {"forward": args.forward_budget, "strong": args.strong_budget},
        "used": used,
        "requests": _usage_by_role(RequestLog(log.entries[:test_log_start])),
        "test_requests": _usage_by_role(RequestLog(log.entries[test_log_start:])),
        "metric": {"name": test_task.metric_name, "labels": list(test_task.metric_labels or ())},
        "test_ids": [e.id for e in test],
        "test_targets": [e.target for e in test],
        "test_scores": [r.score.value for r in results],
        # The output node's reply per test item: what the log-only replay check scores.
        "test_replies": [r.trace.output for r in results],
        "test_errors": sum(1 for r in results if r.error),
        "test_accuracy": sum(r.score.value for r in results) / len(results),
        "initial_gate": initial_gate,
        "best_gate": best_gate,
        "steps": steps,
        "final_state": graph.state_dict(),
        "optimization_wall_s": round(opt_wall, 1),
        "wall_s": round(wall, 1),
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
    }, log


async def main_async(args: argparse.Namespace) -> int:
    out = cell_dir(args.task)
    out.mkdir(parents=True, exist_ok=True)
    cells = [(m, s) for m in args.methods for s in args.seeds]
    if args.replay:
        return await replay(args, cells)
    cache = Cache(args.cache)
    models = Models(cache)
    try:
        for method, seed in cells:
            name = cell_name(method, seed)
            path = out / f"{name}.json"
            if path.exists():
                print(f"{name}: done", flush=True)
                continue
            if METHODS[method] is None and seed != args.seeds[0]:
                continue  # the initial program does not depend on the seed
            print(f"{name}: running", flush=True)
            record, log = await run_cell(args.task, method, seed, args, models)
            log.write(out / f"{name}.requests.jsonl.gz")
            path.write_text(json.dumps(record, indent=1) + "\n")
            print(
                f"{name}: test {record['test_accuracy']:.3f} ({len(record['test_ids'])} items), "
                f"requests {record['used']}, {record['wall_s']:.0f} s",
                flush=True,
            )
    finally:
        await models.aclose()
        cache.close()
    return 0


def check_from_log(record: dict[str, Any], log: RequestLog) -> list[str]:
    """The replay check for a machine without the task's data: every committed test reply
    is a reply of the cell's request log, and the task's metric gives it the committed
    score against the committed target. Returns what does not hold (empty: it matches)."""
    replies, named = record.get("test_replies"), record.get("metric")
    if replies is None or named is None:
        return ["the cell has no test_replies or metric (written by an older run.py)"]
    metric = metric_for(named["name"], **({"labels": named["labels"]} if named["labels"] else {}))
    logged = {e.text for e in log}
    problems = []
    rows = zip(
        record["test_ids"], record["test_targets"], replies, record["test_scores"], strict=True
    )
    for item, target, reply, score in rows:
        if reply is not None and reply not in logged:
            problems.append(f"{item}: its reply is not in the request log")
        again = 0.0 if reply is None else metric(reply, Example(item, {}, target)).value
        if again != score:
            problems.append(f"{item}: scored {again}, committed {score}")
    return problems


def _have_data(args: argparse.Namespace) -> bool:
    return args.data_dir is not None and Path(args.data_dir).is_dir()


async def replay(args: argparse.Namespace, cells: list[tuple[str, int]]) -> int:
    """Re-run finished cells from their request logs alone; compare per-item test scores.
    Without the task's data directory (users and CI may not have it), check instead that
    the committed test replies are in the log and score as committed (`check_from_log`)."""
    out = cell_dir(args.task)
    bad = 0
    for method, seed in cells:
        name = cell_name(method, seed)
        path = out / f"{name}.json"
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        log = RequestLog.read(out / f"{name}.requests.jsonl.gz")
        if not _have_data(args):
            problems = check_from_log(record, log)
            bad += bool(problems)
            verdict = "matches" if not problems else "DIFFERS: " + "; ".join(problems[:5])
            print(f"{name}: log-only check (no data directory) {verdict}", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            cache = Cache(Path(tmp) / "replay.sqlite")
            log.fill_cache(cache)
            cache.close()
            replay_cache = Cache(Path(tmp) / "replay.sqlite", mode="replay-only")
            models = ReplayModels(replay_cache)
            fresh = argparse.Namespace(
                **{
                    **vars(args),
                    "runs": Path(tmp) / "runs",
                    "replay_budget_stop": record["status"] == "budget",
                }
            )
            try:
                again, _ = await run_cell(args.task, method, seed, fresh, models)
            finally:
                replay_cache.close()
        same = again["test_scores"] == record["test_scores"]
        bad += not same
        print(f"{name}: replay {'matches' if same else 'DIFFERS'}", flush=True)
    return 1 if bad else 0


class _NoModel:
    """Stands in for a model in a replay: the replay-only cache answers, or fails."""

    def __init__(self, model: str) -> None:
        self.model = model

    async def complete(self, request: Request) -> Response:
        raise RuntimeError("a replay must never call a model")

    async def aclose(self) -> None:
        return None


class ReplayModels(Models):
    """The same path with no model behind the cache: nothing is ever loaded."""

    def __init__(self, cache: Cache) -> None:
        self.clients = {"forward": _NoModel(FORWARD_MODEL), "strong": _NoModel(STRONG_MODEL)}
        self.cache = cache


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
    args = ap.parse_args(argv)
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        ap.error(f"unknown method(s) {unknown}; known: {list(METHODS)}")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
