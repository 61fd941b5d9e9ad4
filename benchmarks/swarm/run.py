"""GPTSwarm's adversarial-agents demonstration on the embedded models, over several seeds.

    python benchmarks/swarm/run.py                       # configs/swarm-adversarial.toml, seeds 0,1,2

For each seed it runs (or resumes) `semgrad optimize` on the config with that seed into
``benchmarks/swarm/runs/`` and writes ``benchmarks/swarm/results/<name>__seed<k>.json``:
initial and final held-out accuracy, the edge probabilities after every step, the kept
edges, and the spend. It also scores every agent alone on the test split
(``<name>__agents.json``), which says which channels are worth keeping. The splits are the
config's (fixed split seed), the same for every seed; the seed changes the sampled graphs.
The agents' prompts do not depend on the edges, so each (agent, example) pair is one model
call for all seeds: after the first seed the runs are answered from the cache.

Each results file has a compressed log of the requests and replies of its run beside it
(``<name>__seed<k>.requests.jsonl.gz``, cache hits included). ``--replay`` re-runs every
committed seed and the agents probe from their logs alone (no model; the task's data
directory is needed) and fails if a per-item test score or an edge probability differs.
``--relog`` writes the log of a results file committed without one by running it again,
in a scratch directory, through the cache that answered it (every request a hit); the log
is kept only if that run gives the committed results.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from semgrad.errors import DataError
from semgrad.evaluation.evaluator import aevaluate
from semgrad.llm.cache import CachedLLM
from semgrad.llm.record import NoModel, RequestLog
from semgrad.llm.types import LLM
from semgrad.optim.config import RunConfig, load_config
from semgrad.optim.records import InitialScored, ProgressEvent, StepFinished, read_history
from semgrad.optim.runfiles import atomic_write_json
from semgrad.optim.trainer import Trainer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def seeded(config: RunConfig, seed: int) -> RunConfig:
    data = config.data.model_copy(
        update={
            "split_seed": config.seed if config.data.split_seed is None else config.data.split_seed
        }
    )
    return config.model_copy(
        update={"seed": seed, "name": f"{config.name}-seed{seed}", "data": data}
    )


async def run_seed(
    config: RunConfig,
    run_dir: Path,
    log: RequestLog | None = None,
    llms: Mapping[str, LLM] | None = None,
    *,
    verbose: bool = True,
) -> dict[str, Any]:
    def progress(event: ProgressEvent) -> None:
        if not verbose:
            return
        if isinstance(event, InitialScored):
            print(f"    initial gate {event.gate:.3f} test {event.test}", flush=True)
        elif isinstance(event, StepFinished) and event.record.kind == "edges":
            r = event.record
            probs = " ".join(f"{k.split('->')[0]}={v:.2f}" for k, v in r.edge_probabilities.items())
            print(f"    step {r.step}: {probs}", flush=True)

    trainer = Trainer.from_config(config, run_dir, progress=progress, request_log=log, llms=llms)
    try:
        t0 = time.perf_counter()
        result = await trainer.run(resume=(run_dir / "checkpoint.json").exists())
        wall = time.perf_counter() - t0
        if result.status != "finished":
            raise SystemExit(f"{run_dir.name} stopped: {result.message}")
        paired = await paired_test_scores(trainer)
    finally:
        await trainer.aclose()
    summary = json.loads((run_dir / "summary.json").read_text())
    steps = read_history(run_dir / "history.jsonl")
    return {
        "seed": config.seed,
        "config": config.model_dump(exclude={"base_dir"}),
        "initial_test": result.initial_test,
        "final_test": result.final_test,
        "initial_gate": result.initial_gate,
        "final_gate": result.best_gate,
        "edges": summary["edges"],
        "probabilities_by_step": [s.edge_probabilities for s in steps],
        "mean_sampled_utility_by_step": [s.edges.mean_utility if s.edges else None for s in steps],
        # Per test item, paired: the initial swarm (every edge kept: edge optimization off)
        # and the final graph, so the difference gets an interval (make_results.py).
        "test_ids": [e.id for e in trainer.splits.test],
        **paired,
        "spend": result.spend,
        "wall_s": round(wall, 1),
        "run_dir": _shown(run_dir),
        "date": time.strftime("%Y-%m-%d"),
    }


async def paired_test_scores(trainer: Trainer) -> dict[str, list[float]]:
    """Per-item test scores of the initial swarm (every edge kept, which is what the same
    swarm with edge optimization off runs: p0 = 0.5 keeps every edge at threshold 0.5) and of
    the final graph. The agents' replies are cache hits of the run's own scoring."""
    assert trainer.edge_step is not None
    swarm = trainer.edge_step.swarm
    ctx = trainer.ctx.with_phase("evaluation")
    out = {}
    for key, graph in (
        ("initial_test_scores", swarm.realise({e.name: True for e in swarm.edges})),
        ("final_test_scores", trainer.edge_step.realise()),
    ):
        res = await aevaluate(graph, trainer.splits.test, trainer.splits.metric, ctx)
        out[key] = [r.score.value for r in res.results]
    return out


async def score_agents(
    config: RunConfig,
    run_dir: Path,
    log: RequestLog | None = None,
    llms: Mapping[str, LLM] | None = None,
) -> dict[str, Any]:
    """Each agent alone (only its edge to the decision kept) on the test split."""
    trainer = Trainer.from_config(config, run_dir, request_log=log, llms=llms)
    assert trainer.edge_step is not None
    try:
        swarm = trainer.edge_step.swarm
        ctx = trainer.ctx.with_phase("evaluation")
        out: dict[str, Any] = {}
        for edge in swarm.edges:
            graph = swarm.realise({e.name: e is edge for e in swarm.edges})
            res = await aevaluate(graph, trainer.splits.test, trainer.splits.metric, ctx)
            scores = [r.score.value for r in res.results]
            out[edge.name] = {"accuracy": sum(scores) / len(scores), "scores": scores}
        every = await aevaluate(
            swarm.realise({e.name: True for e in swarm.edges}),
            trainer.splits.test,
            trainer.splits.metric,
            ctx,
        )
        all_scores = [r.score.value for r in every.results]
    finally:
        await trainer.aclose()
    return {
        "test_size": len(all_scores),
        "agents": out,
        "all_edges_accuracy": sum(all_scores) / len(all_scores),
    }


# What a replay (or a relog) must reproduce: per item, per step and per agent.
SEED_KEYS = ("test_ids", "initial_test_scores", "final_test_scores", "probabilities_by_step")
AGENT_KEYS = ("test_size", "agents", "all_edges_accuracy")


def log_path(results: Path) -> Path:
    return results.with_name(results.name.removesuffix(".json") + ".requests.jsonl.gz")


def differences(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [k for k in keys if k in b and json.dumps(a.get(k)) != json.dumps(b[k])]


def again(config: RunConfig, probe: bool, log: RequestLog | None, llms: Any) -> dict[str, Any]:
    """The seed's run (or the agents probe) once more in a scratch run directory."""
    with tempfile.TemporaryDirectory() as tmp:
        if probe:
            return asyncio.run(score_agents(config, Path(tmp) / "run", log, llms))
        return asyncio.run(run_seed(config, Path(tmp) / "run", log, llms, verbose=False))


def replay_file(config: RunConfig, path: Path, probe: bool) -> list[str]:
    """Re-run one results file from its log alone; what differs (empty: it matches)."""
    committed = json.loads(path.read_text())
    with tempfile.TemporaryDirectory() as tmp:
        replay = RequestLog.read(log_path(path)).replay_cache(Path(tmp) / "replay.sqlite")
        try:
            models = {r: config.models.role(r).model for r in ("forward", "backward", "optimizer")}
            llms = {role: CachedLLM(NoModel(m), replay) for role, m in models.items()}
            record = again(config, probe, None, llms)
        finally:
            replay.close()
    return differences(record, committed, AGENT_KEYS if probe else SEED_KEYS)


def relog_file(config: RunConfig, path: Path, probe: bool) -> list[str]:
    """Write the log of a results file committed without one (see the module docstring)."""
    committed = json.loads(path.read_text())
    log = RequestLog()
    record = again(config, probe, log, None)
    differs = differences(record, committed, AGENT_KEYS if probe else SEED_KEYS)
    if not differs:
        log.write(log_path(path))
    return differs


def _shown(path: Path) -> str:
    """The config's path as a command in RESULTS.md shows it: relative to the repository."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "swarm-adversarial.toml"))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default=str(HERE / "results"))
    p.add_argument("--replay", action="store_true", help="re-run the results from their logs")
    p.add_argument("--relog", action="store_true", help="write the logs of results without one")
    args = p.parse_args(argv)
    base = load_config(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    files = [(seeded(base, s), out / f"{base.name}__seed{s}.json", False) for s in seeds]
    files.append((seeded(base, 0), out / f"{base.name}__agents.json", True))
    if args.replay or args.relog:
        bad = 0
        for config, path, probe in files:
            if not path.exists() or (args.replay and not log_path(path).exists()):
                continue
            if args.relog and log_path(path).exists():
                continue
            try:
                differs = (replay_file if args.replay else relog_file)(config, path, probe)
            except DataError as exc:
                # The task's data is needed (the vote's answers are scored against targets
                # the results do not store); users and CI may not have it.
                print(f"{path.name}: skipped, no task data: {exc}", flush=True)
                continue
            bad += bool(differs)
            verdict = "matches" if not differs else f"DIFFERS in {', '.join(differs)}"
            print(f"{path.name}: {'replay' if args.replay else 'relog'} {verdict}", flush=True)
        return 1 if bad else 0
    for config, path, _ in files[:-1]:
        if path.exists():
            print(f"= {path.name} (done)", flush=True)
            continue
        print(f"> {base.name} seed {config.seed} {time.strftime('%H:%M:%S')}", flush=True)
        log = RequestLog()
        record = asyncio.run(run_seed(config, HERE / "runs" / config.name, log))
        record["config_path"] = _shown(Path(args.config))
        log.write(log_path(path))
        atomic_write_json(path, record)
        kept = ", ".join(record["edges"]["kept"]) or "none"
        print(
            f"  test {record['initial_test']:.3f} -> {record['final_test']:.3f}; kept {kept}",
            flush=True,
        )
    config, agents, _ = files[-1]
    if not agents.exists():
        log = RequestLog()
        scored = asyncio.run(score_agents(config, HERE / "runs" / f"{base.name}-agents", log))
        log.write(log_path(agents))
        atomic_write_json(agents, {"name": base.name, **scored})
    print(
        json.dumps(
            {
                k: round(v["accuracy"], 3)
                for k, v in json.loads(agents.read_text())["agents"].items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
