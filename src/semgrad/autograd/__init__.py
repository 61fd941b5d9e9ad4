"""Semantic backpropagation: textual gradients through a recorded forward trace."""

from semgrad.autograd.backward import (
    BackwardCall,
    BackwardMode,
    BackwardResult,
    aggregate,
    backward,
    parameter_gradients,
    parse_feedback,
)

__all__ = [
    "BackwardCall",
    "BackwardMode",
    "BackwardResult",
    "aggregate",
    "backward",
    "parameter_gradients",
    "parse_feedback",
]
