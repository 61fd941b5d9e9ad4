"""The data of a run: train / gate / test examples and the metric, and how a run directory
records them so that `resume` and the report never depend on where they came from.

A split is named in the config (``[data]``) by a task spec (``bbh:navigate:train``, see
`semgrad.data.load_task`) or by ``file:PATH``, a JSONL file of examples
(``{"id", "inputs", "target", "meta"}``, one per line, as `Example.to_dict` writes them;
the path is relative to the config). `semgrad.fit` writes the examples it is given into
``RUN_DIR/data/{train,gate,test}.jsonl`` and names them so.

The metric is the task's, unless ``data.metric`` names one: a built-in by name
(``numeric``, ``exact``, ``choice``, ``label``; options in ``data.metric_options``) or an
importable callable or class as ``module:qualname``. A metric object that cannot be
imported (defined in ``__main__`` or inside a function) is recorded by its name in angle
brackets; resuming such a run needs the metric passed again.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semgrad.data.example import Example
from semgrad.data.files import load_file, resolve_spec_path
from semgrad.data.tasks import load_task
from semgrad.errors import ConfigError
from semgrad.evaluation import metrics as builtin_metrics
from semgrad.evaluation.metrics import Metric, task_metric
from semgrad.evaluation.resolve import check_metric
from semgrad.evaluation.resolve import resolve_metric as resolve_any_metric
from semgrad.optim.config import RunConfig
from semgrad.optim.runfiles import atomic_write_text

__all__ = [
    "FILE_PREFIX",
    "Splits",
    "load_splits",
    "metric_ref",
    "read_examples",
    "resolve_metric",
    "write_examples",
]

FILE_PREFIX = "file:"


@dataclass(frozen=True)
class Splits:
    """What a run learns from (train), decides on (gate) and reports (test), and the metric."""

    train: tuple[Example, ...]
    gate: tuple[Example, ...]
    test: tuple[Example, ...]
    metric: Metric

    def check_disjoint(self, *, gate_is_train: bool = False) -> None:
        """Raise `ConfigError` when two splits share an example id (a held-out score needs
        disjoint splits); the gate may be the training split itself (the paper's protocol)."""
        ids = {"train": {e.id for e in self.train}, "test": {e.id for e in self.test}}
        if not gate_is_train:
            ids["gate"] = {e.id for e in self.gate}
        names = list(ids)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                shared = ids[a] & ids[b]
                if shared:
                    raise ConfigError(
                        f"the {a} and {b} splits share {len(shared)} examples (e.g. "
                        f"{sorted(shared)[0]}); a held-out score needs disjoint splits",
                        key="data",
                    )


# -- examples on disk ----------------------------------------------------------------------


def write_examples(path: Path, examples: Sequence[Example]) -> None:
    atomic_write_text(
        path, "".join(json.dumps(e.to_dict(), ensure_ascii=False) + "\n" for e in examples)
    )


def read_examples(path: Path) -> list[Example]:
    """The examples of a ``.jsonl`` file (semgrad's own format, or flat columns)."""
    return list(load_file(path))


# -- metrics by name -----------------------------------------------------------------------


def _importable(module: str, qualname: str, obj: object) -> bool:
    if module == "__main__" or "<" in qualname:
        return False
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return False
    return found is obj


def metric_ref(metric: Metric) -> tuple[str, dict[str, Any]]:
    """How a config records `metric`: (name or ``module:qualname``, constructor options).

    A built-in metric is its name and its fields; a function is ``module:qualname``; an
    instance of an importable class is the class's ``module:qualname`` (and its fields when
    it is a dataclass). Anything else is ``<name>``, which `resolve_metric` refuses.
    """
    options: dict[str, Any] = {}
    if dataclasses.is_dataclass(metric) and not isinstance(metric, type):
        options = {
            f.name: list(v) if isinstance(v := getattr(metric, f.name), tuple) else v
            for f in dataclasses.fields(metric)
        }
    kind = type(metric)
    if kind.__module__ == builtin_metrics.__name__ and hasattr(kind, "name"):
        return str(metric.name), options
    if callable(metric) and hasattr(metric, "__qualname__") and hasattr(metric, "__module__"):
        module, qualname = str(metric.__module__), str(metric.__qualname__)
        if _importable(module, qualname, metric):
            return f"{module}:{qualname}", {}
        return f"<{qualname}>", {}
    if _importable(kind.__module__, kind.__qualname__, kind):
        return f"{kind.__module__}:{kind.__qualname__}", options
    return f"<{getattr(metric, 'name', kind.__qualname__)}>", {}


def resolve_metric(ref: str, options: dict[str, Any] | None = None) -> Metric:
    """The metric a config names (see `metric_ref`)."""
    options = dict(options or {})
    if ref.startswith("<"):
        raise ConfigError(
            f"this run's metric {ref} was a Python object that cannot be imported (defined "
            f"in __main__ or inside a function), so the run directory cannot rebuild it; "
            f"pass it again (semgrad.fit(..., metric=...) or Trainer.from_config(..., "
            f"metric=...)), or define it at the top level of an importable module",
            key="data.metric",
        )
    if ":" in ref and not ref.rpartition(":")[0].endswith(".py"):
        module, _, qualname = ref.partition(":")
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(
                f"cannot import the metric {ref!r} ({exc}); it must be importable as "
                f"module:qualname from the Python path the run uses",
                key="data.metric",
            ) from None
        if isinstance(found, type):  # a metric class: built with the recorded options
            try:
                built: Metric = found(**options)
            except TypeError as exc:
                raise ConfigError(f"cannot build the metric {ref!r}: {exc}", "data.metric") from None
            return built
    # A built-in by name, or a function of the user's (returning a bool, a number or a
    # Score): the same resolution as `semgrad eval --metric`.
    return resolve_any_metric(ref, **options)


# -- splits from a config ------------------------------------------------------------------


def load_splits(config: RunConfig, *, metric: Metric | None = None) -> Splits:
    """The splits a config names, capped to the configured sizes, checked disjoint.

    `metric` replaces the configured one (needed when the config could not record it).
    """
    data = config.data
    data_dir = config.resolve(data.data_dir) if data.data_dir else None
    seed = config.seed if data.split_seed is None else data.split_seed

    def take(spec: str, size: int | None) -> tuple[tuple[Example, ...], Metric | None]:
        if spec.startswith(FILE_PREFIX):
            # A user's file: its metric is the config's data.metric, never a guess.
            task = load_task(resolve_spec_path(spec, config.base_dir), seed=seed)
            examples, found = list(task.examples), None
        else:
            task = load_task(spec, data_dir=data_dir, seed=seed)
            examples, found = list(task.examples), task_metric(task)
        return tuple(examples[:size] if size else examples), found

    train, named_metric = take(data.train, data.train_size)
    test, _ = take(data.test, data.test_size)
    gate = train if data.gate == "train" else take(data.gate, data.gate_size)[0]
    if metric is None:
        if data.metric is not None:
            metric = resolve_metric(data.metric, data.metric_options)
        elif named_metric is not None:
            metric = named_metric
        else:
            raise ConfigError(
                f"data.train is a file ({data.train}), which names no metric: set data.metric "
                f'(e.g. "exact", "numeric", or "package.module:function")',
                key="data.metric",
            )
    check_metric(metric, train)  # a metric that cannot score is said now, not steps later
    splits = Splits(train, gate, test, metric)
    splits.check_disjoint(gate_is_train=data.gate == "train")
    return splits
