"""The paper's experiments on 2 CPU cores: semantic gradient descent and its ablations.

One command runs every (task, method, seed) cell it is given, one after another, and writes
one JSON per cell under ``benchmarks/paper/results/``; the run directories (history,
checkpoints, reports) go under ``benchmarks/paper/runs/`` (not committed). A cell whose
results file exists is skipped; a cell with a checkpoint is resumed; every model call goes
through semgrad's cache, so re-running a finished benchmark costs no model time.

    python benchmarks/paper/run.py --tasks bbh:object_counting --seeds 0,1,2

Methods (every one starts from the same 3-node graph, `hint_graph(2)`; all but `search` are
the paper protocol, `method = "paper"`, and its ablations):

    sgd            semantic gradient descent, neighbour-aware backprop, gate on the
                   training split (the reference protocol)
    sgd-val        the same, gate on a held-out validation split
    sgd-early      the reference with the early-stop gate (same decisions, fewer calls)
    independent    TextGrad-style backprop: each input's gradient without its siblings
    no-gate        every candidate is accepted
    no-gradients   the optimizer sees only the failed input/output pairs and their feedback
    search         semgrad's default method, the gradient-guided candidate search (batch 4,
                   paired gate on the validation split); not part of the paper

The splits come from one seeded shuffle (``split_seed`` 0) and are the same for every
method and seed; the seed changes the optimizer's randomness (batches, sampling), and
`load_splits` checks that train, gate and test are disjoint.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from semgrad.evaluation.evaluator import aevaluate
from semgrad.graph.core import Graph
from semgrad.optim.config import RunConfig, config_from_dict
from semgrad.optim.records import (
    BudgetStopped,
    InitialScored,
    ProgressEvent,
    StepFinished,
    read_history,
)
from semgrad.optim.runfiles import atomic_write_json
from semgrad.optim.trainer import Trainer, load_model

HERE = Path(__file__).resolve().parent

PAPER = {"method": "paper"}
METHODS: dict[str, dict[str, Any]] = {
    "sgd": {"gate": "train", "optimizer": {**PAPER}},
    "sgd-val": {"gate": "val", "optimizer": {**PAPER}},
    "sgd-early": {"gate": "train", "optimizer": {**PAPER, "gate": "early-stop"}},
    "independent": {"gate": "train", "optimizer": {**PAPER, "backward": "independent"}},
    "no-gate": {"gate": "train", "optimizer": {**PAPER, "gate": "none"}},
    "no-gradients": {"gate": "train", "optimizer": {**PAPER, "use_gradients": False}},
    # semgrad's default method (its own batch of 4, paired gate on the validation split).
    "search": {"gate": "val", "optimizer": {"method": "search"}, "batch": 4},
}

# Task spec prefix -> the split names of that dataset.
SPLITS = {"gsm8k": ("train", "val", "test"), "liar-binary": ("train", "val", "test")}


def split_specs(task: str) -> tuple[str, str, str]:
    """`bbh:navigate` -> ("bbh:navigate:train", "bbh:navigate:val", "bbh:navigate:test")."""
    train, val, test = SPLITS.get(task, ("train", "val", "test"))
    return f"{task}:{train}", f"{task}:{val}", f"{task}:{test}"


def cell_name(task: str, method: str, seed: int) -> str:
    return f"{task.replace(':', '-')}__{method}__seed{seed}"


def make_config(task: str, method: str, seed: int, args: argparse.Namespace) -> RunConfig:
    spec = METHODS[method]
    train, val, test = split_specs(task)
    data: dict[str, Any] = {
        "train": train,
        "gate": "train" if spec["gate"] == "train" else val,
        "test": test,
        "train_size": args.train,
        "gate_size": args.val,
        "test_size": args.test,
        "split_seed": args.split_seed,
    }
    if args.data_dir:
        data["data_dir"] = str(Path(args.data_dir).resolve())
    models: dict[str, Any] = {
        "forward": args.forward,
        "backward": args.optimizer_model,
        "optimizer": args.optimizer_model,
        "slots": args.slots,
    }
    if args.cache:
        models["cache"] = str(Path(args.cache).resolve())
    return config_from_dict(
        {
            "name": cell_name(task, method, seed),
            "seed": seed,
            "steps": args.steps,
            "graph": {"hints": 2},
            "models": models,
            "data": data,
            "optimizer": {"batch_size": spec.get("batch", args.batch), **spec["optimizer"]},
        }
    )


def _method_cost(spend: dict[str, dict[str, int]]) -> dict[str, int]:
    """What the method consumed, whether or not the cache served it."""
    out = {"requests": 0, "real_calls": 0, "tokens": 0, "real_tokens": 0}
    for s in spend.values():
        out["requests"] += s.get("requests", 0)
        out["real_calls"] += s.get("calls", 0)
        real = s.get("prompt_tokens", 0) + s.get("completion_tokens", 0)
        cached = s.get("cached_prompt_tokens", 0) + s.get("cached_completion_tokens", 0)
        out["tokens"] += real + cached
        out["real_tokens"] += real
    return out


def _efficiency(run_dir: Path) -> dict[str, Any]:
    """Cost (method's requests and tokens) spent until the final graph was reached: the
    initial gate scoring plus every step up to the last accepted one."""
    steps = read_history(run_dir / "history.jsonl")
    last = max((s.step for s in steps if s.accepted), default=-1)
    to_final = {"requests": 0, "tokens": 0}
    total = {"requests": 0, "tokens": 0}
    for s in steps:
        cost = _method_cost(s.spend)
        for k in total:
            total[k] += cost[k]
            if s.step <= last:
                to_final[k] += cost[k]
    return {
        "accepted_steps": [s.step for s in steps if s.accepted],
        "last_accepted_step": last,
        "steps_cost": total,
        "steps_cost_to_final": to_final,
        # None when nothing was gated or the early-stop gate scored only part of the set.
        "gate_scores": [s.candidate_score for s in steps],
    }


def initial_graph(config: RunConfig) -> Graph:
    graph = load_model(config)
    assert isinstance(graph, Graph)  # the paper's protocol optimizes a single graph
    return graph


def _eval_cost(results: Any) -> dict[str, int]:
    """Requests and tokens of one scoring pass, read from its traces (cached or not)."""
    requests = sum(1 for r in results for n in r.trace.nodes.values() if n.prompt)
    tokens = sum(r.trace.usage.total_tokens for r in results)
    return {"requests": requests, "tokens": tokens}


def _minus(a: dict[str, int], *bs: dict[str, int]) -> dict[str, int]:
    return {k: a[k] - sum(b[k] for b in bs) for k in ("requests", "tokens")}


async def run_cell(task: str, method: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    config = make_config(task, method, seed, args)
    run_dir = HERE / "runs" / cell_name(task, method, seed)
    resume = (run_dir / "checkpoint.json").exists()

    def progress(event: ProgressEvent) -> None:
        if isinstance(event, InitialScored):
            print(f"    initial gate {event.gate:.3f} test {event.test}", flush=True)
        elif isinstance(event, StepFinished):
            r = event.record
            print(
                f"    step {r.step}: candidate {r.candidate_score} vs "
                f"{r.incumbent_score} -> {'accepted' if r.accepted else 'rejected'}"
                f" ({r.wall_s:.0f} s)",
                flush=True,
            )
        elif isinstance(event, BudgetStopped):
            print(f"    {event.message}", flush=True)

    trainer = Trainer.from_config(config, run_dir, progress=progress)
    try:
        t0 = time.perf_counter()
        result = await trainer.run(resume=resume)
        wall = time.perf_counter() - t0
        if result.status != "finished":
            raise SystemExit(f"{cell_name(task, method, seed)} stopped: {result.message}")
        # Per-example test scores of the initial and the final graph (cache hits: both
        # were just scored by the run).
        test = trainer.splits.test
        metric = trainer.splits.metric
        ctx = trainer.ctx.with_phase("evaluation")
        initial = await aevaluate(initial_graph(config), test, metric, ctx)
        final = await aevaluate(trainer.graph, test, metric, ctx)
        # The method's cost is everything but scoring the test split (before and after).
        test_cost = [_eval_cost(initial.results), _eval_cost(final.results)]
    finally:
        await trainer.aclose()
    spend = result.spend
    cost = _method_cost(spend)
    return {
        "task": task,
        "method": method,
        "seed": seed,
        "config": config.model_dump(exclude={"base_dir"}),
        "sizes": {
            "train": len(trainer.splits.train),
            "gate": len(trainer.splits.gate),
            "test": len(test),
        },
        "test_ids": [e.id for e in test],
        "initial_test": result.initial_test,
        "final_test": result.final_test,
        "initial_scores": [r.score.value for r in initial.results],
        "final_scores": [r.score.value for r in final.results],
        "initial_gate": result.initial_gate,
        "best_gate": result.best_gate,
        "final_state": trainer.graph.state_dict(),
        "spend": spend,
        "cost": cost,
        "test_cost": test_cost,
        "optimization_cost": _minus(cost, *test_cost),
        "efficiency": _efficiency(run_dir),
        "wall_s": round(wall, 1),
        "run_dir": str(run_dir.relative_to(HERE.parent.parent)),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%d"),
        "commit": _commit(),
    }


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE
        )
        return out.stdout.strip()
    except OSError:
        return ""


async def recost(path: Path, record: dict[str, Any], args: argparse.Namespace) -> None:
    """Recompute a results file's test-scoring cost and optimization cost from the cache
    (files written before the cost split; no model call when the cache has the run)."""
    config = make_config(record["task"], record["method"], record["seed"], args)
    trainer = Trainer.from_config(config, HERE / "runs" / "_recost")
    try:
        ctx = trainer.ctx.with_phase("evaluation")
        test, metric = trainer.splits.test, trainer.splits.metric
        initial = await aevaluate(initial_graph(config), test, metric, ctx)
        final_graph = initial_graph(config)
        final_graph.load_state_dict(record["final_state"])
        final = await aevaluate(final_graph, test, metric, ctx)
    finally:
        await trainer.aclose()
    record["test_cost"] = [_eval_cost(initial.results), _eval_cost(final.results)]
    record["optimization_cost"] = _minus(record["cost"], *record["test_cost"])
    atomic_write_json(path, record)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", default="bbh:object_counting", help="comma-separated task specs")
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated methods")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--train", type=int, default=10, help="training examples (and train gate)")
    p.add_argument("--val", type=int, default=10, help="validation-gate examples (sgd-val)")
    p.add_argument("--test", type=int, default=20)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--forward", default="qwen2.5-coder-0.5b")
    p.add_argument("--optimizer-model", default="qwen2.5-coder-1.5b")
    p.add_argument("--slots", type=int, default=4)
    p.add_argument("--cache", default=None, help="cache file (default: semgrad's)")
    p.add_argument("--data-dir", default=os.environ.get("SEMGRAD_DATA_DIR"))
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--recost", action="store_true", help="recompute costs of existing results")
    args = p.parse_args(argv)
    if args.recost:
        for path in sorted(Path(args.out).glob("*.json")):
            asyncio.run(recost(path, json.loads(path.read_text()), args))
            print(f"recosted {path.name}", flush=True)
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        for seed in seeds:
            for method in methods:
                path = out / f"{cell_name(task, method, seed)}.json"
                if path.exists():
                    print(f"= {path.name} (done)", flush=True)
                    continue
                print(f"> {task} {method} seed {seed} {time.strftime('%H:%M:%S')}", flush=True)
                record = asyncio.run(run_cell(task, method, seed, args))
                atomic_write_json(path, record)
                print(
                    f"  test {record['initial_test']:.3f} -> {record['final_test']:.3f}; "
                    f"{record['cost']['requests']} requests ({record['cost']['real_calls']} "
                    f"real), {record['wall_s']:.0f} s",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
