"""Choose the next decide task by the rule of BENCHMARKS.md §2, on validation items only.

    python benchmarks/decide/select_task.py --tasks bbh:boolean_expressions,bbh:navigate,...

The rule, fixed before any candidate is scored: the initial 3-node graph (`hint_graph(2)`,
the 0.5B, the decide serving path) is scored on every validation item of each candidate
task (the 50 items that are the gate of that task's cells; only the *initial* program's
scores are read, which every cell's initial gate scoring computes anyway, never a method's).
A task qualifies when its validation accuracy is 20-80 % and its answers are not a constant
(the most common extracted answer is under 80 % of the replies). The chosen task is the
qualifying one whose accuracy is closest to 50 % (ties: the first in the order given).
Test items are never read. Writes `decide/selection.json` (per task: accuracy, the answer
distribution, the majority-class rate of the validation targets, the verdict) and the
request log `decide/selection.requests.jsonl.gz`; the replies go into the decide cache, so
the chosen task's cells find their initial gate there.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from semgrad.graph.builders import hint_graph
from semgrad.llm.cache import Cache
from semgrad.llm.record import RequestLog


def _decide_run() -> Any:
    """decide/run.py, as the module ``decide_run`` (the name its tests use: a plain
    ``import run`` could find benchmarks/peers/run.py in a test session)."""
    if "decide_run" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "decide_run", Path(__file__).resolve().parent / "run.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["decide_run"] = module
        spec.loader.exec_module(module)
    return sys.modules["decide_run"]

LOW, HIGH = 0.2, 0.8  # the qualifying band of validation accuracy
CONSTANT = 0.8  # answers are "a constant" when the most common one is at least this share


def verdict(accuracy: float, answers: Counter[str], n: int) -> str:
    """Why a task qualifies or not, by the rule above."""
    if not LOW <= accuracy <= HIGH:
        return f"out: accuracy {accuracy:.0%} outside {LOW:.0%}-{HIGH:.0%}"
    top, count = answers.most_common(1)[0] if answers else ("", n)
    if count / n >= CONSTANT:
        return f"out: answers a constant ({top!r} in {count} of {n})"
    return "qualifies"


def choose(rows: dict[str, dict[str, Any]]) -> str | None:
    """The qualifying task closest to 50 % (the first given on a tie)."""
    qualifying = [t for t, r in rows.items() if r["verdict"] == "qualifies"]
    return min(qualifying, key=lambda t: round(abs(rows[t]["accuracy"] - 0.5), 6), default=None)


async def main_async(args: argparse.Namespace) -> int:
    run = _decide_run()
    cache = Cache(args.cache)
    models = run.serving_models(cache)
    log = RequestLog()
    rows: dict[str, dict[str, Any]] = {}
    t0 = time.perf_counter()
    try:
        for task in args.tasks.split(","):
            splits, metric = run.load_splits(task, args.data_dir)
            start = time.perf_counter()
            llm = models.llm("forward", log)
            results = await run.score(hint_graph(2), splits.gate, metric, llm)
            n = len(results)
            accuracy = sum(r.score.value for r in results) / n
            answers = Counter(r.score.prediction for r in results)
            targets = Counter(ex.target for ex in splits.gate)
            rows[task] = {
                "n": n,
                "accuracy": round(accuracy, 4),
                "answers": dict(answers.most_common()),
                "majority_rate": round(targets.most_common(1)[0][1] / n, 4),
                "verdict": verdict(accuracy, answers, n),
                "wall_s": round(time.perf_counter() - start, 1),
            }
            print(f"{task}: {accuracy:.0%} of {n} ({rows[task]['verdict']})", flush=True)
    finally:
        await models.aclose()
        cache.close()
    chosen = choose(rows)
    out = {
        "rule": __doc__.split("\n\n")[2].replace("\n", " ") if __doc__ else "",
        "tasks": rows,
        "chosen": chosen,
        "wall_s": round(time.perf_counter() - t0, 1),
        **run.provenance(models),
    }
    (run.HERE / "selection.json").write_text(json.dumps(out, indent=1) + "\n")
    log.write(run.HERE / "selection.requests.jsonl.gz")
    print(f"chosen: {chosen}")
    return 0 if chosen else 1


def main(argv: list[str] | None = None) -> int:
    work = Path(os.environ.get("SEMGRAD_BENCH_HOME", Path.home() / ".cache" / "semgrad" / "decide"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--tasks", required=True, help="comma-separated task specs, in order")
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--cache", type=Path, default=work / "cache.sqlite")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
