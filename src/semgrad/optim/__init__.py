"""Optimizers over text parameters and the training loop."""

from semgrad.optim.config import RunConfig, config_from_dict, load_config
from semgrad.optim.optimizer import (
    NodeOptimizer,
    Optimizer,
    Proposal,
    SemanticGradientDescent,
    parse_improved,
)
from semgrad.optim.trainer import RunResult, Splits, Trainer, afit, fit, load_run_config

__all__ = [
    "NodeOptimizer",
    "Optimizer",
    "Proposal",
    "RunConfig",
    "RunResult",
    "SemanticGradientDescent",
    "Splits",
    "Trainer",
    "afit",
    "config_from_dict",
    "fit",
    "load_config",
    "load_run_config",
    "parse_improved",
]
