"""`semgrad.fit`: optimize a graph built in Python on examples built in Python.

    result = sg.fit(graph, train, metric, gate=val, test=test, models={...}, steps=4)
    result.graph          # the optimized graph (a Swarm for a composite graph)
    result.final_test     # and the run's scores, cost and status (a `RunResult`)

The run directory is the same as `semgrad optimize` writes, so `semgrad resume RUN_DIR`,
`semgrad report RUN_DIR` and `semgrad export RUN_DIR` work on it: config.json records the
settings, the models and the metric (a built-in by name, a function by
``module:qualname``); initial_graph.json the graph; ``data/*.jsonl`` the examples.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from semgrad._sync import run_sync
from semgrad.data.example import Example
from semgrad.errors import ConfigError
from semgrad.evaluation.metrics import Metric
from semgrad.graph.core import Graph
from semgrad.llm.types import LLM
from semgrad.optim.config import EdgesConfig, ModelsConfig, OptimizerConfig, config_from_dict
from semgrad.optim.records import Progress, quiet
from semgrad.optim.runfiles import RunFiles, atomic_write_json
from semgrad.optim.splits import FILE_PREFIX, Splits, metric_ref, write_examples
from semgrad.optim.trainer import RunResult, Trainer, load_run_config
from semgrad.swarm.composite import Swarm
from semgrad.telemetry import Tracer

__all__ = ["afit", "fit"]


def _dump(value: Any) -> Any:
    if isinstance(value, ModelsConfig | OptimizerConfig | EdgesConfig):
        return value.model_dump()
    if isinstance(value, str):  # one model name for every role
        return {"forward": value, "backward": value, "optimizer": value}
    return dict(value)


async def afit(
    graph: Graph | Swarm,
    train: Sequence[Example],
    metric: Metric,
    *,
    test: Sequence[Example],
    gate: Sequence[Example] | None = None,
    models: ModelsConfig | Mapping[str, Any] | str | None = None,
    llms: Mapping[str, LLM] | None = None,
    run_dir: str | Path | None = None,
    steps: int = 4,
    seed: int = 0,
    optimizer: OptimizerConfig | Mapping[str, Any] | None = None,
    edges: EdgesConfig | Mapping[str, Any] | None = None,
    budget: Mapping[str, int] | None = None,
    name: str = "fit",
    resume: bool = False,
    progress: Progress = quiet,
    tracer: Tracer | None = None,
) -> RunResult:
    """Optimize `graph` on `train`, scored by `metric`; see `fit`."""
    root = Path(run_dir) if run_dir is not None else Path("runs") / name
    files = RunFiles(root)
    if resume:
        recorded = load_run_config(root)
        if llms is None:
            await _preflight(recorded.models)
        trainer = Trainer.from_config(
            recorded,
            root,
            llms=llms,
            metric=metric,
            budget_overrides=budget,
            progress=progress,
        )
    else:
        if files.checkpoint.exists():
            raise ConfigError(
                f"{root} already holds a run; continue it with resume=True (or `semgrad "
                f"resume {root}`), or give another run_dir",
                key="run_dir",
            )
        for split, examples in (("train", train), ("test", test), ("gate", gate)):
            if examples is not None and not examples:
                raise ConfigError(f"the {split} split has no examples", key=split)
        if not callable(metric):
            raise ConfigError(
                f"metric must be callable as metric(prediction_text, example) -> Score, got "
                f"{type(metric).__name__}",
                key="metric",
            )
        ref, options = metric_ref(metric)
        data_dir = root / "data"
        write_examples(data_dir / "train.jsonl", train)
        write_examples(data_dir / "test.jsonl", test)
        if gate is not None:
            write_examples(data_dir / "gate.jsonl", gate)
        atomic_write_json(files.initial_graph, graph.to_dict())
        raw: dict[str, Any] = {
            "name": name,
            "seed": seed,
            "steps": steps,
            "graph": {"path": files.initial_graph.name},
            "data": {
                "train": f"{FILE_PREFIX}data/train.jsonl",
                "gate": "train" if gate is None else f"{FILE_PREFIX}data/gate.jsonl",
                "test": f"{FILE_PREFIX}data/test.jsonl",
                "metric": ref,
                "metric_options": options,
            },
            "budget": dict(budget or {}),
        }
        for key, value in (("models", models), ("optimizer", optimizer), ("edges", edges)):
            if value is not None:
                raw[key] = _dump(value)
        if isinstance(graph, Swarm) and edges is None:
            raw["edges"] = {}
        # Paths in config.json (the graph, the data files) are relative to the run directory.
        config = config_from_dict(raw, base_dir=str(root.resolve()))
        splits = Splits(tuple(train), tuple(train if gate is None else gate), tuple(test), metric)
        splits.check_disjoint(gate_is_train=gate is None)
        if llms is None:
            await _preflight(config.models)
        trainer = Trainer(graph, splits, root, config=config, llms=llms, progress=progress)
    if tracer is not None:
        trainer.ctx = dataclasses.replace(trainer.ctx, tracer=tracer)
    try:
        return await trainer.run(resume=resume)
    finally:
        await trainer.aclose()


async def _preflight(models: ModelsConfig) -> None:
    """Check the servers `models` names before any work (a wrong model name, a refused key
    or a dead server fails here, not as every example erroring); off the event loop."""
    from semgrad.llm.preflight import preflight_models

    await asyncio.to_thread(preflight_models, models)


def fit(
    graph: Graph | Swarm,
    train: Sequence[Example],
    metric: Metric,
    *,
    test: Sequence[Example],
    gate: Sequence[Example] | None = None,
    models: ModelsConfig | Mapping[str, Any] | str | None = None,
    llms: Mapping[str, LLM] | None = None,
    run_dir: str | Path | None = None,
    steps: int = 4,
    seed: int = 0,
    optimizer: OptimizerConfig | Mapping[str, Any] | None = None,
    edges: EdgesConfig | Mapping[str, Any] | None = None,
    budget: Mapping[str, int] | None = None,
    name: str = "fit",
    resume: bool = False,
    progress: Progress = quiet,
    tracer: Tracer | None = None,
) -> RunResult:
    """Optimize `graph` (a `Graph`, or a `Swarm` whose edges are learned too) on `train`,
    scored by `metric(prediction_text, example) -> Score`, and return the `RunResult`
    (`result.graph` is the optimized graph; the graph passed in is optimized in place).

    `gate`: the examples a candidate must score strictly better on to be kept (default:
    the training examples, the paper's protocol); `test`: held-out examples scored before
    and after. `models`: the models by role, as in a config's ``[models]`` (a model name
    for every role, a dict, or a `ModelsConfig`); `llms`: model clients by role instead
    (``{"forward": llm, "backward": strong, "optimizer": strong}``), not recorded, so a
    CLI `resume` of such a run uses `models`. `optimizer`, `edges`, `budget`: a config's
    ``[optimizer]``, ``[edges]`` and ``[budget]``. `run_dir` defaults to ``runs/<name>``;
    `resume=True` continues the run there (pass the metric again, and `budget` to raise
    a limit; the rest is recorded). `tracer` (`semgrad.telemetry.enable()`) records
    OpenTelemetry spans of the run.

    The sync door: it works in a script and in a running event loop (a notebook cell,
    where the run goes on a worker thread and the cell waits); in a coroutine of your own,
    ``await semgrad.afit(...)`` with the same arguments.
    """
    return run_sync(
        afit(
            graph,
            train,
            metric,
            test=test,
            gate=gate,
            models=models,
            llms=llms,
            run_dir=run_dir,
            steps=steps,
            seed=seed,
            optimizer=optimizer,
            edges=edges,
            budget=budget,
            name=name,
            resume=resume,
            progress=progress,
            tracer=tracer,
        )
    )
