"""Metrics with textual feedback."""

from semgrad.evaluation.metrics import (
    LIAR_BINARY_LABELS,
    ChoiceMatch,
    ExactMatch,
    LabelMatch,
    Metric,
    NumericMatch,
    Score,
    metric_for,
    note_truncation,
    task_metric,
)

__all__ = [
    "LIAR_BINARY_LABELS",
    "ChoiceMatch",
    "ExactMatch",
    "LabelMatch",
    "Metric",
    "NumericMatch",
    "Score",
    "metric_for",
    "note_truncation",
    "task_metric",
]
