"""Semantic backpropagation: textual gradients through a recorded forward trace."""

from semgrad.autograd.backward import (
    BackwardCall,
    BackwardMode,
    BackwardResult,
    Verdict,
    aggregate,
    backward,
    backward_many,
    final_feedback,
    gradient_messages,
    parse_feedback,
)

__all__ = [
    "BackwardCall",
    "BackwardMode",
    "BackwardResult",
    "Verdict",
    "aggregate",
    "backward",
    "backward_many",
    "final_feedback",
    "gradient_messages",
    "parse_feedback",
]
