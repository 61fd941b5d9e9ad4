"""A training or test example: named inputs and a target."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Example", "Task"]


@dataclass(frozen=True)
class Example:
    """One example. `inputs` maps graph input names (e.g. ``question``) to text.

    `id` is stable across runs (e.g. ``gsm8k/test/17``); it names the example in traces,
    history files and cache reports.
    """

    id: str
    inputs: Mapping[str, str]
    target: str
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze the mappings so an Example really is immutable.
        object.__setattr__(self, "inputs", MappingProxyType(dict(self.inputs)))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "inputs": dict(self.inputs),
            "target": self.target,
            "meta": dict(self.meta),
        }


@dataclass(frozen=True)
class Task:
    """Examples of one split of one dataset, and the name of the metric that scores them.

    The metric is named, not built: metrics live in `semgrad.evaluation`, which depends on
    this package; `semgrad.evaluation.task_metric(task)` resolves the name (with
    `metric_labels` for the "label" metric).
    """

    name: str
    examples: tuple[Example, ...]
    metric_name: str
    description: str
    metric_labels: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.examples)
