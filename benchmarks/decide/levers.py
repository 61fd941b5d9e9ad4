"""What one change of the initial graph does on the training split: the evidence for a
design choice, taken where BENCHMARKS.md §2 allows it (training items only, never the gate
or the test split).

    python benchmarks/decide/levers.py --task bbh:object_counting \\
        --variants benchmarks/decide/levers/object_counting.variants.json
    python benchmarks/decide/levers.py --task bbh:object_counting \\
        --variants benchmarks/decide/levers/object_counting.variants.json --replay

The variants file maps a name to changes of the decide runner's initial graph
(`hint_graph(2)`): ``{"name": {"final.instruction": "...", "final.demos": [{"inputs":
{...}, "output": "..."}]}}``, or ``"graph.output_fn": "calculate"``, a function node (a
built-in of `semgrad.graph.functions` or an import path) that answers from the output
node's reply; the unchanged graph (``base``) is always scored. Every variant
is scored on the task's training split through the runner's one serving path
(`run.Models`: deterministic scoring, the shared response cache) and paired per item with
``base``: the items it wins and loses, leaving out the items its demonstrations show (their
answers are shown, not found). Written next to the variants file: ``<stem>.json`` (per item
scores, the summary) and ``<stem>.requests.jsonl.gz`` (every request and reply);
``--replay`` scores every variant again from that log alone and checks the per-item scores.
``--forward-role strong`` answers every node with the runner's strong model (the 1.5B)
instead of its forward one, recorded in the results file as ``forward_role``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from modload import load_module

from semgrad.data.example import Example
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo, Graph
from semgrad.graph.spec import graph_from_dict
from semgrad.llm.cache import Cache
from semgrad.llm.record import RequestLog
from semgrad.optim.search import encode_demos, shown_items

HERE = Path(__file__).resolve().parent
run = load_module("decide_run", HERE / "run.py")

BASE = "base"
FIELDS = ("instruction", "demos")
OUTPUT_FN = "graph.output_fn"  # a function (by name) applied to the output node's reply


def variant_graph(changes: dict[str, Any]) -> Graph:
    """The initial graph with `changes` ({"node.instruction" | "node.demos": value})."""
    # A function after the output node is hint_graph's own `answer_fn`.
    spec = hint_graph(2, answer_fn=changes.get(OUTPUT_FN)).to_dict()
    nodes = {node["name"]: node for node in spec["nodes"] if node["type"] == "llm"}
    for key, value in changes.items():
        if key == OUTPUT_FN:
            continue
        name, _, field = key.rpartition(".")
        if name not in nodes or field not in FIELDS:
            raise SystemExit(
                f"variant change {key!r}: expected <node>.instruction or <node>.demos with a "
                f"node of the graph ({', '.join(nodes)}), or {OUTPUT_FN}"
            )
        nodes[name][field] = value
    return graph_from_dict(spec, source="variants")


def shown(changes: dict[str, Any], train: list[Example]) -> set[str]:
    """The training items whose inputs a demonstration among `changes` shows
    (`semgrad.optim.search.shown_items`, the search's own rule)."""
    encoded = {
        key: encode_demos([Demo.from_dict(d) for d in value])
        for key, value in changes.items()
        if key.endswith(".demos")
    }
    return set(shown_items(encoded, train))


def summarize(
    scores: dict[str, dict[str, float]],
    train: list[Example],
    variants: dict[str, dict[str, Any]],
) -> dict[str, dict[str, Any]]:
    """Per variant: correct of scored, and wins / losses against base on the items its
    demonstrations do not show."""
    base = scores[BASE]
    out = {}
    for name, per_item in scores.items():
        skip = shown(variants.get(name, {}), train)
        kept = [i for i in per_item if i not in skip]
        out[name] = {
            "correct": sum(per_item.values()),
            "items": len(per_item),
            "compared": len(kept),
            "wins": sum(1 for i in kept if per_item[i] > base[i]),
            "losses": sum(1 for i in kept if per_item[i] < base[i]),
        }
    return out


async def score_all(
    task: str,
    variants: dict[str, dict[str, Any]],
    models: Any,
    data_dir: Path | None,
    role: str = "forward",
) -> tuple[dict[str, dict[str, float]], list[Example], RequestLog]:
    """Every variant on the training split, its nodes answered by the model of `role`."""
    splits, metric = run.load_splits(task, data_dir)
    train = list(splits.train)
    log = RequestLog()
    llm = models.llm(role, log)
    scores: dict[str, dict[str, float]] = {}
    for name, changes in {BASE: {}, **variants}.items():
        results = await run.score(variant_graph(changes), train, metric, llm)
        scores[name] = {r.example.id: r.score.value for r in results}
        print(f"{name}: {sum(scores[name].values()):.0f} of {len(results)}", flush=True)
    return scores, train, log


async def main_async(args: argparse.Namespace) -> int:
    variants = json.loads(args.variants.read_text())
    for name, changes in variants.items():
        variant_graph(changes)  # a bad change fails before any model call
        if name == BASE:
            raise SystemExit(f"{args.variants}: {BASE!r} is the unchanged graph; rename it")
    out = args.variants.with_name(args.variants.name.replace(".variants", ""))
    result_path, log_path = out.with_suffix(".json"), out.with_suffix(".requests.jsonl.gz")
    if args.replay:
        record = json.loads(result_path.read_text())
        with tempfile.TemporaryDirectory() as tmp:
            replay_cache = RequestLog.read(log_path).replay_cache(Path(tmp) / "replay.sqlite")
            try:
                scores, _, _ = await score_all(
                    args.task,
                    variants,
                    run.replay_models(replay_cache),
                    args.data_dir,
                    record.get("forward_role", "forward"),
                )
            finally:
                replay_cache.close()
        differs = [n for n in scores if scores[n] != record["scores"].get(n)]
        print("replay " + (f"DIFFERS in {differs}" if differs else "matches"))
        return 1 if differs else 0
    cache = Cache(args.cache)
    models = run.serving_models(cache)
    try:
        scores, train, log = await score_all(
            args.task, variants, models, args.data_dir, args.forward_role
        )
    finally:
        await models.aclose()
        cache.close()
    summary = summarize(scores, train, variants)
    for name, row in summary.items():
        print(
            f"{name}: {row['correct']:.0f}/{row['items']}; against base on {row['compared']} "
            f"items: {row['wins']} won, {row['losses']} lost"
        )
    record = {"task": args.task, "split": "train", "summary": summary, "scores": scores}
    record.update(run.provenance(models))
    record["forward_role"] = args.forward_role
    record["models"]["nodes"] = record["models"][args.forward_role]
    log.write(log_path)
    result_path.write_text(json.dumps(record, indent=1) + "\n")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="bbh:object_counting")
    ap.add_argument("--variants", type=Path, required=True, help="<stem>.variants.json")
    ap.add_argument("--data-dir", type=Path, default=os.environ.get("SEMGRAD_DATA_DIR"))
    work = Path(os.environ.get("SEMGRAD_BENCH_HOME", Path.home() / ".cache" / "semgrad" / "decide"))
    ap.add_argument("--cache", type=Path, default=work / "cache.sqlite")
    ap.add_argument("--replay", action="store_true", help="score again from the log alone")
    ap.add_argument(
        "--forward-role",
        choices=("forward", "strong"),
        default="forward",
        help="whose model answers every node: the runner's forward model (the 0.5B) or its "
        "strong one (the 1.5B), to ask what the levers do with a larger forward model "
        "(a replay reads it from the results file)",
    )
    args = ap.parse_args(argv)
    if not args.variants.name.endswith(".variants.json"):
        ap.error(f"--variants must be named <stem>.variants.json, got {args.variants.name}")
    if not args.variants.exists():
        ap.error(f"--variants: no file {args.variants}")
    return args


if __name__ == "__main__":
    sys.exit(asyncio.run(main_async(parse_args())))
