"""Metrics with textual feedback; `resolve_metric` turns a name, a ``module:function`` or a
function of yours into one."""

from semgrad.evaluation.judge import LLMJudge
from semgrad.evaluation.metrics import (
    LIAR_BINARY_LABELS,
    ChoiceMatch,
    ExactMatch,
    LabelMatch,
    Metric,
    NumericMatch,
    Score,
    format_target,
    metric_for,
    note_truncation,
    task_metric,
)
from semgrad.evaluation.overlap import Contains, StrictMatch, TokenF1
from semgrad.evaluation.resolve import METRIC_NAMES, check_metric, resolve_metric

__all__ = [
    "LIAR_BINARY_LABELS",
    "METRIC_NAMES",
    "ChoiceMatch",
    "Contains",
    "ExactMatch",
    "LLMJudge",
    "LabelMatch",
    "Metric",
    "NumericMatch",
    "Score",
    "StrictMatch",
    "TokenF1",
    "check_metric",
    "format_target",
    "metric_for",
    "note_truncation",
    "resolve_metric",
    "task_metric",
]
