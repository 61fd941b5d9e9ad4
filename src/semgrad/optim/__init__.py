"""Optimizers over text parameters and the training loop."""

from semgrad.optim import records
from semgrad.optim.config import EdgesConfig, RunConfig, config_from_dict, load_config
from semgrad.optim.edge_step import EdgeStep, step_kind
from semgrad.optim.fit import afit, fit
from semgrad.optim.optimizer import (
    NodeOptimizer,
    Optimizer,
    Proposal,
    SemanticGradientDescent,
    parse_improved,
)
from semgrad.optim.records import GateResult, RunSummary, StepRecord
from semgrad.optim.splits import Splits, load_splits
from semgrad.optim.trainer import (
    RunResult,
    Trainer,
    aoptimize,
    load_model,
    load_run_config,
    optimize,
)

__all__ = [
    "EdgeStep",
    "EdgesConfig",
    "GateResult",
    "NodeOptimizer",
    "Optimizer",
    "Proposal",
    "RunConfig",
    "RunResult",
    "RunSummary",
    "SemanticGradientDescent",
    "Splits",
    "StepRecord",
    "Trainer",
    "afit",
    "aoptimize",
    "config_from_dict",
    "fit",
    "load_config",
    "load_model",
    "load_run_config",
    "load_splits",
    "optimize",
    "parse_improved",
    "records",
    "step_kind",
]
