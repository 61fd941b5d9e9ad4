"""Deterministic scoring on the embedded model: which llama.cpp setting repeats itself, and
what it costs in throughput.

Scores the initial 3-node graph (`hint_graph(2)`) on the 50 BBH object_counting validation
items with the embedded 0.5B, with **no response cache** (every call is a real model call),
twice per setting, the settings interleaved (A B C A B C) so that the machine's load falls
on all of them alike. A setting is deterministic when its two scorings agree on every
reply of every node (and so on every item's score).

    python benchmarks/determinism.py                       # writes benchmarks/determinism.json
    python benchmarks/determinism.py --limit 10 --settings 4:on,1:off

A setting is `SLOTS:PROMPT_CACHE[:rN]`, e.g. `4:on` (the old default: four slots batched,
the prompt cache on), `1:off` (one request at a time, every prompt computed from scratch)
or `1:off:r2` (two independent copies of the model, one slot and one thread each, side by
side). Replies are also compared across settings: a setting that agrees with `1:off` on
every reply serves the same results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from semgrad.data.tasks import load_task
from semgrad.evaluation.evaluator import aevaluate
from semgrad.evaluation.metrics import task_metric
from semgrad.execution import RunContext
from semgrad.graph import hint_graph
from semgrad.llm.local import LocalLLM
from semgrad.llm.meter import Meter
from semgrad.llm.stack import build_llm

HERE = Path(__file__).resolve().parent


async def score_once(
    slots: int,
    prompt_cache: bool,
    examples: list[Any],
    metric: Any,
    concurrency: int,
    replicas: int = 1,
) -> dict[str, Any]:
    client = LocalLLM(
        "qwen2.5-coder-0.5b", n_parallel=slots, prompt_cache=prompt_cache, replicas=replicas
    )
    meter = Meter()
    llm = build_llm(client, meter=meter, max_concurrency=slots * replicas)
    ctx = RunContext(llms={"forward": llm}, max_concurrency=concurrency)
    graph = hint_graph(2)
    # Load the model before the clock starts: the load is not scoring.
    await asyncio.to_thread(client._load)
    t0 = time.perf_counter()
    result = await aevaluate(graph, examples, metric, ctx)
    wall = time.perf_counter() - t0
    await client.aclose()
    spend = meter.snapshot().total()
    return {
        "wall_s": round(wall, 2),
        "calls": spend.calls,
        "completion_tokens": spend.completion_tokens,
        "score": result.score,
        "items": {r.example.id: r.score.value for r in result.results},
        "replies": {
            r.example.id: {n: t.raw for n, t in r.trace.nodes.items() if t.raw is not None}
            for r in result.results
        },
    }


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="bbh:object_counting:val")
    ap.add_argument("--limit", type=int, default=50)
    ap.add_argument("--settings", default="4:on,1:off,1:on")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--data-dir", default=os.environ.get("SEMGRAD_DATA_DIR"))
    ap.add_argument("--out", default=str(HERE / "determinism.json"))
    args = ap.parse_args()

    task = load_task(args.task, data_dir=Path(args.data_dir) if args.data_dir else None)
    examples = list(task.examples[: args.limit])
    settings = []
    for item in args.settings.split(","):
        slots, cache, *rest = item.split(":")
        replicas = int(rest[0].lstrip("r")) if rest else 1
        settings.append((item, int(slots), cache == "on", replicas))

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, *_ in settings}
    for rep in range(args.repeats):
        for name, slots, cache, replicas in settings:
            r = asyncio.run(
                score_once(
                    slots, cache, examples, task_metric(task), args.concurrency, replicas
                )
            )
            runs[name].append(r)
            print(f"repeat {rep} setting {name}: {r['score']:.1%} in {r['wall_s']} s", flush=True)

    summary: dict[str, Any] = {}
    for name, reps in runs.items():
        first = reps[0]
        differing_items = sorted(
            {i for r in reps[1:] for i, v in r["items"].items() if v != first["items"][i]}
        )
        differing_replies = sum(
            1
            for r in reps[1:]
            for i, nodes in r["replies"].items()
            for n, raw in nodes.items()
            if raw != first["replies"][i].get(n)
        )
        n_replies = sum(len(nodes) for nodes in first["replies"].values())
        summary[name] = {
            "scores": [r["score"] for r in reps],
            "wall_s": [r["wall_s"] for r in reps],
            "median_wall_s": statistics.median(r["wall_s"] for r in reps),
            "completion_tokens": [r["completion_tokens"] for r in reps],
            "differing_items": differing_items,
            "differing_replies": differing_replies,
            "replies_compared": n_replies * (len(reps) - 1),
        }
    reference = next(iter(runs.values()))[0]["replies"]
    for name, reps in runs.items():
        summary[name]["replies_differing_from_first_setting"] = sum(
            1
            for i, nodes in reps[0]["replies"].items()
            for n, raw in nodes.items()
            if raw != reference[i].get(n)
        )
    base = next(iter(summary.values()))["median_wall_s"]
    for s in summary.values():
        s["wall_ratio_vs_first"] = round(s["median_wall_s"] / base, 3)
    out = {
        "task": args.task,
        "items": len(examples),
        "graph": "hint_graph(2)",
        "model": "qwen2.5-coder-0.5b",
        "concurrency": args.concurrency,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d"),
        "settings": summary,
    }
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    for name, s in summary.items():
        print(
            f"{name}: scores {s['scores']}, median wall {s['median_wall_s']} s "
            f"(x{s['wall_ratio_vs_first']}), differing items {len(s['differing_items'])}, "
            f"differing replies {s['differing_replies']}/{s['replies_compared']}, "
            f"replies differing from the first setting {s['replies_differing_from_first_setting']}"
        )


if __name__ == "__main__":
    main()
