"""LocalLLM's generation throughput against the same GGUF driven directly through xllamacpp.

Both sides load the same file with the same slots, context and threads, and get the same
prompts with the same sampling. "raw" calls `xllamacpp.Server.handle_chat_completions`
from a plain thread pool; "LocalLLM" goes through `semgrad.llm.local.LocalLLM.complete`
(event loop, worker pool, Request in, Response out). Each repetition runs raw and
LocalLLM back to back, alternating which goes first, so drifts in machine load hit both.
Prompt caching is off on both sides so that every repetition does the same work.

    python benchmarks/local_tokens.py                  # 1 and 4 slots, 3 repetitions
    python benchmarks/local_tokens.py --slots 4 --reps 5 --json out.json

Reported: completion tokens per second of wall time (median over repetitions) and the
ratio LocalLLM / raw. The target is a ratio of at least 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import xllamacpp

from semgrad.llm.local import LocalLLM, request_body
from semgrad.llm.models import resolve_model
from semgrad.llm.types import Request

PROMPTS = [
    "Explain how a hash table works, step by step.",
    "Write a Python function that merges two sorted lists, and explain it.",
    "Describe the water cycle in detail.",
    "List ten uses of a binary search tree, with one sentence each.",
    "Explain the difference between processes and threads.",
    "Write a short story about a robot learning to paint.",
    "Explain what a Git rebase does and when to use it.",
    "Describe how HTTP caching works.",
]


def raw_server(path: Path, slots: int, ctx_per_slot: int, threads: int) -> Any:
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_parallel = slots
    params.n_ctx = slots * ctx_per_slot
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.verbosity = 1  # errors only, as LocalLLM
    return xllamacpp.Server(params)


def run_raw(server: Any, requests: list[Request], slots: int) -> tuple[int, float]:
    bodies = [request_body(r, prompt_cache=False) for r in requests]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=slots) as pool:
        replies = list(pool.map(server.handle_chat_completions, bodies))
    wall = time.perf_counter() - start
    return sum(r["usage"]["completion_tokens"] for r in replies), wall


def run_local(llm: LocalLLM, requests: list[Request]) -> tuple[int, float]:
    async def go() -> tuple[int, float]:
        start = time.perf_counter()
        responses = await asyncio.gather(*(llm.complete(r) for r in requests))
        wall = time.perf_counter() - start
        return sum(r.usage.completion_tokens for r in responses), wall

    return asyncio.run(go())


def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal")
        )
    except (OSError, StopIteration, ValueError):
        mem_kb = 0
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.processor(),
        "ram_gib": round(mem_kb / 2**20, 1),
        "python": platform.python_version(),
        "xllamacpp": getattr(xllamacpp, "__version__", "?"),
    }


def bench(model: str, slots: int, reps: int, max_tokens: int, threads: int) -> dict[str, Any]:
    name, path = resolve_model(model)
    requests = [Request.chat(p, max_tokens=max_tokens) for p in PROMPTS]
    ctx = 1024
    raw = raw_server(path, slots, ctx, threads)
    llm = LocalLLM(
        name, n_parallel=slots, n_ctx_per_slot=ctx, n_threads=threads, prompt_cache=False
    )
    # Warm-up: loads LocalLLM's model and touches every weight page on both sides.
    run_raw(raw, requests[:slots], slots)
    run_local(llm, requests[:slots])
    rates: dict[str, list[float]] = {"raw": [], "local": []}
    tokens: dict[str, list[int]] = {"raw": [], "local": []}
    for rep in range(reps):
        order = ["raw", "local"] if rep % 2 == 0 else ["local", "raw"]
        for side in order:
            n, wall = run_raw(raw, requests, slots) if side == "raw" else run_local(llm, requests)
            rates[side].append(n / wall)
            tokens[side].append(n)
            print(
                f"  slots={slots} rep={rep + 1} {side:5s} {n} tokens in {wall:6.2f} s = {n / wall:6.2f} tok/s"
            )
    llm.close()
    del raw
    raw_median = statistics.median(rates["raw"])
    local_median = statistics.median(rates["local"])
    return {
        "slots": slots,
        "requests": len(requests),
        "max_tokens": max_tokens,
        "raw_tok_s": rates["raw"],
        "local_tok_s": rates["local"],
        "raw_tokens": tokens["raw"],
        "local_tokens": tokens["local"],
        "raw_median": raw_median,
        "local_median": local_median,
        "ratio": local_median / raw_median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    info = machine()
    print(f"machine: {info}")
    results = [bench(args.model, s, args.reps, args.max_tokens, args.threads) for s in args.slots]
    print()
    print(f"| slots | raw tok/s (median of {args.reps}) | LocalLLM tok/s | LocalLLM / raw |")
    print("|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['slots']} | {r['raw_median']:.2f} | {r['local_median']:.2f} | {r['ratio']:.3f} |"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "model": args.model, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
