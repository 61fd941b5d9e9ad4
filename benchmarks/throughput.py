"""Engine throughput against its bound, on a loopback OpenAI-compatible fake server.

The 3-node hint graph (two hints in parallel, then the final node) over N examples, every
model call answered after a fixed latency L by `FakeOpenAIServer`, through the real HTTP
client, retry layer and concurrency limiter. With C calls in flight the best possible wall
time is N·3·L/C; the executor should reach at least 90 % of that bound.

    python benchmarks/throughput.py                # N=200, L=50 ms, C in 8 16 32, 3 repeats
    python benchmarks/throughput.py --json out.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import platform
import statistics
import time
from multiprocessing.connection import Connection
from typing import Any

from semgrad.data.example import Example
from semgrad.execution import RunContext, forward_many
from semgrad.graph import hint_graph
from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.llm.openai import OpenAICompatible
from semgrad.llm.stack import build_llm


async def one_run(base_url: str, n: int, concurrency: int) -> float:
    client = OpenAICompatible(base_url, "fake-model")
    llm = build_llm(client, max_concurrency=concurrency)
    ctx = RunContext(llms={"forward": llm}, max_concurrency=concurrency)
    graph = hint_graph(2)
    examples = [Example(f"ex{i}", {"question": f"question {i}"}, "") for i in range(n)]
    t0 = time.perf_counter()
    traces = await forward_many(graph, examples, ctx)
    wall = time.perf_counter() - t0
    await client.aclose()
    assert all(t.ok for t in traces), "every example must succeed"
    return wall


def _serve(latency: float, conn: Connection) -> None:
    # The fake server runs in its own process so its threads do not compete with the
    # engine for the GIL: the benchmark measures the engine, not the fake.
    with FakeOpenAIServer(latency=latency) as server:
        conn.send(server.base_url)
        conn.recv()  # block until the parent says stop


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--latency", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[8, 16, 32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()

    rows: list[dict[str, Any]] = []
    parent, child = mp.Pipe()
    proc = mp.Process(target=_serve, args=(args.latency, child), daemon=True)
    proc.start()
    base_url = parent.recv()
    try:
        asyncio.run(one_run(base_url, 10, 4))  # warm-up
        for c in args.concurrency:
            walls = [asyncio.run(one_run(base_url, args.n, c)) for _ in range(args.repeats)]
            bound = args.n * 3 * args.latency / c
            med = statistics.median(walls)
            rows.append(
                {
                    "n": args.n,
                    "latency_s": args.latency,
                    "concurrency": c,
                    "bound_s": round(bound, 3),
                    "median_s": round(med, 3),
                    "walls_s": [round(w, 3) for w in walls],
                    "efficiency": round(bound / med, 3),
                }
            )
    finally:
        parent.send("stop")
        proc.join(timeout=10)
    print(
        f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}"
    )
    print(f"{'C':>4} {'bound s':>8} {'median s':>9} {'efficiency':>10}")
    for r in rows:
        print(
            f"{r['concurrency']:>4} {r['bound_s']:>8.2f} {r['median_s']:>9.2f} {r['efficiency']:>10.1%}"
        )
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
