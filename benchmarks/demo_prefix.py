"""Demonstrations as a reusable prompt prefix: prompt tokens the embedded model actually
processes per call, with llama.cpp's prompt cache off and on, and whether the replies stay
byte-identical when the prefix is reused.

A one-node graph (question → answer, the hint graph's final instruction) gets `--demos`
labelled demonstrations (DSPy's LabeledFewShot: training targets written as replies the
task's metric scores 1, `semgrad.optim.demos.labelled`). Its prompt is then those demo turns
— byte-identical for every example — followed by the example's own prompt. The same
`--limit` examples are scored twice with the embedded 0.5B, one request at a time (one
slot), no response cache (every call is a real model call), each setting on a freshly
loaded model:

- `off`: prompt cache off, every prompt computed from its first token (semgrad's default,
  deterministic scoring);
- `on`: prompt cache on: llama.cpp may keep the slot's last prompt and compute only what
  differs, here everything after the shared demo prefix.

Per call it records the prompt tokens, the tokens the server reused from its cache
(`Usage.cached_prompt_tokens`, from llama.cpp's `timings.cache_n` or
`usage.prompt_tokens_details.cached_tokens`) and so the tokens processed, the latency and
the reply; it reports their sums and medians, and which replies differ between the two
settings.

    python benchmarks/demo_prefix.py                         # writes benchmarks/demo_prefix.json
    python benchmarks/demo_prefix.py --task arith --limit 10 --demos 3

`--task bbh:object_counting` (default) takes the demos from its train split and the scored
examples from its val split; `--task arith` needs no data directory.
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = "qwen2.5-coder-0.5b"


@dataclass(frozen=True)
class Call:
    """One scored example's model call."""

    example_id: str
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int
    latency_s: float
    reply: str

    @property
    def processed(self) -> int:
        return self.prompt_tokens - self.cached_prompt_tokens


def demo_graph(train: Sequence[Any], metric: Any, k: int) -> Any:
    """The one-node graph with `k` labelled demos from `train` (the first ones the metric
    scores 1 as written), and the demos' count."""
    from semgrad.graph.builders import DEFAULT_FINAL_INSTRUCTION
    from semgrad.graph.core import Graph, LLMNode, Parameter
    from semgrad.optim.demos import labelled

    graph = Graph(
        ["question"],
        [LLMNode("answer", ("question",), Parameter(DEFAULT_FINAL_INSTRUCTION), max_tokens=256)],
        "answer",
        name="answer-with-demos",
    )
    demos = labelled(train, graph, metric).get("answer")[:k]
    if len(demos) < k:
        raise SystemExit(f"only {len(demos)} labelled demos could be built; asked for {k}")
    graph.set_demos("answer", demos)
    return graph


def summarize(calls: Sequence[Call]) -> dict[str, Any]:
    """Sums and medians of one setting's calls."""
    if not calls:
        return {"calls": 0}
    return {
        "calls": len(calls),
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "cached_prompt_tokens": sum(c.cached_prompt_tokens for c in calls),
        "processed_prompt_tokens": sum(c.processed for c in calls),
        "median_processed_per_call": statistics.median(c.processed for c in calls),
        "median_prompt_per_call": statistics.median(c.prompt_tokens for c in calls),
        "completion_tokens": sum(c.completion_tokens for c in calls),
        "median_latency_s": round(statistics.median(c.latency_s for c in calls), 3),
        "total_latency_s": round(sum(c.latency_s for c in calls), 2),
    }


def compare(off: Sequence[Call], on: Sequence[Call]) -> dict[str, Any]:
    """Which examples' replies differ between the two settings (by example id)."""
    on_by_id = {c.example_id: c.reply for c in on}
    differing = [c.example_id for c in off if on_by_id.get(c.example_id) != c.reply]
    return {
        "replies_compared": len(off),
        "differing_replies": len(differing),
        "differing_examples": differing,
        "byte_identical": not differing and len(off) == len(on),
    }


async def score(graph: Any, examples: Sequence[Any], metric: Any, prompt_cache: bool) -> list[Call]:
    """Score `examples` one at a time on a freshly loaded model; one `Call` per example."""
    from semgrad.evaluation.evaluator import aevaluate
    from semgrad.execution import RunContext
    from semgrad.llm.local import LocalLLM
    from semgrad.llm.stack import build_llm

    client = LocalLLM(MODEL, n_parallel=1, prompt_cache=prompt_cache)
    await asyncio.to_thread(client._load)  # the load is not scoring
    ctx = RunContext(llms={"forward": build_llm(client, max_concurrency=1)}, max_concurrency=1)
    calls: list[Call] = []
    try:
        for example in examples:  # one by one: each call follows the previous in the slot
            t0 = time.perf_counter()
            result = await aevaluate(graph, [example], metric, ctx)
            rec = result.results[0].trace.nodes["answer"]
            calls.append(
                Call(
                    example_id=example.id,
                    prompt_tokens=rec.usage.prompt_tokens,
                    cached_prompt_tokens=rec.usage.cached_prompt_tokens,
                    completion_tokens=rec.usage.completion_tokens,
                    latency_s=time.perf_counter() - t0,
                    reply=rec.raw or "",
                )
            )
    finally:
        await client.aclose()
    return calls


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _splits(task: str) -> tuple[str, str]:
    """The demo split and the scored split of a task name."""
    if task.startswith("bbh:"):
        return f"{task}:train", f"{task}:val"
    return f"{task}:train", f"{task}:test"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="bbh:object_counting", help="bbh:<task>, arith, gsm8k")
    ap.add_argument("--limit", type=int, default=10, help="examples scored per setting")
    ap.add_argument("--demos", type=int, default=3, help="labelled demos of the node")
    ap.add_argument("--data-dir", default=os.environ.get("SEMGRAD_DATA_DIR"))
    ap.add_argument("--out", default=str(HERE / "demo_prefix.json"))
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from semgrad.data.tasks import load_task
    from semgrad.evaluation.metrics import task_metric

    data_dir = Path(args.data_dir) if args.data_dir else None
    demo_split, scored_split = _splits(args.task)
    train = load_task(demo_split, data_dir=data_dir)
    test = load_task(scored_split, data_dir=data_dir)
    metric = task_metric(test)
    graph = demo_graph(train.examples, metric, args.demos)
    examples = list(test.examples[: args.limit])

    runs: dict[str, list[Call]] = {}
    for name, cache in (("off", False), ("on", True)):
        runs[name] = asyncio.run(score(graph, examples, metric, cache))
        s = summarize(runs[name])
        print(
            f"prompt cache {name}: {s['processed_prompt_tokens']} of {s['prompt_tokens']} prompt "
            f"tokens processed, median {s['median_processed_per_call']} per call, "
            f"median latency {s['median_latency_s']} s",
            flush=True,
        )
    same = compare(runs["off"], runs["on"])
    print(
        f"replies with reuse byte-identical to those without: {same['byte_identical']} "
        f"({same['differing_replies']} of {same['replies_compared']} differ)"
    )
    out = {
        "task": args.task,
        "demo_split": demo_split,
        "scored_split": scored_split,
        "items": len(examples),
        "demos": args.demos,
        "model": MODEL,
        "slots": 1,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d"),
        "settings": {name: summarize(calls) for name, calls in runs.items()},
        "replies": same,
        "calls": {
            name: [{**c.__dict__, "processed": c.processed} for c in calls]
            for name, calls in runs.items()
        },
    }
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
