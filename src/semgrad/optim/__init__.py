"""Optimizers over text parameters and the training loop."""

from semgrad.optim.config import EdgesConfig, RunConfig, config_from_dict, load_config
from semgrad.optim.optimizer import (
    NodeOptimizer,
    Optimizer,
    Proposal,
    SemanticGradientDescent,
    parse_improved,
)
from semgrad.optim.swarm_trainer import SwarmTrainer
from semgrad.optim.trainer import (
    RunResult,
    Splits,
    Trainer,
    afit,
    fit,
    load_run_config,
    make_trainer,
)

__all__ = [
    "EdgesConfig",
    "NodeOptimizer",
    "Optimizer",
    "Proposal",
    "RunConfig",
    "RunResult",
    "SemanticGradientDescent",
    "Splits",
    "SwarmTrainer",
    "Trainer",
    "afit",
    "config_from_dict",
    "fit",
    "load_config",
    "load_run_config",
    "make_trainer",
    "parse_improved",
]
