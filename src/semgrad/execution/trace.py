"""The record of one forward run on one example."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from semgrad.llm.types import Message, Usage

__all__ = ["NodeTrace", "Trace"]


@dataclass
class NodeTrace:
    """What one node saw and did. `error` is set when the node failed or was skipped.

    `finish_reason` is why the model stopped (``"stop"``, or ``"length"`` when the reply was
    cut off at the node's max_tokens); None for a function node or a node that never got
    a reply.
    """

    node: str
    kind: str
    inputs: dict[str, str]
    prompt: tuple[Message, ...] = ()
    raw: str | None = None
    value: str | None = None
    usage: Usage = field(default_factory=Usage)
    cached: bool = False
    finish_reason: str | None = None
    start_s: float = 0.0
    duration_s: float = 0.0
    error: str | None = None
    # Semantic gradient of this node's output, filled by backward (ordered messages).
    grad: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None and self.value is not None

    @property
    def truncated(self) -> bool:
        """The reply was cut off at max_tokens: what was read from it may be unfinished."""
        return self.finish_reason == "length"

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "kind": self.kind,
            "inputs": self.inputs,
            "prompt": [{"role": m.role, "content": m.content} for m in self.prompt],
            "raw": self.raw,
            "value": self.value,
            "usage": {
                "prompt_tokens": self.usage.prompt_tokens,
                "completion_tokens": self.usage.completion_tokens,
            },
            "cached": self.cached,
            "finish_reason": self.finish_reason,
            "truncated": self.truncated,
            "start_s": round(self.start_s, 4),
            "duration_s": round(self.duration_s, 4),
            "error": self.error,
            "grad": list(self.grad),
        }


@dataclass
class Trace:
    """One example through the graph: per-node records in topological order."""

    example_id: str
    inputs: dict[str, str]
    nodes: dict[str, NodeTrace] = field(default_factory=dict)
    output_node: str = ""
    output: str | None = None
    error: str | None = None
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.output is not None

    @property
    def truncated(self) -> list[NodeTrace]:
        """The nodes whose reply was cut off at max_tokens, in topological order."""
        return [n for n in self.nodes.values() if n.truncated]

    @property
    def usage(self) -> Usage:
        total = Usage()
        for n in self.nodes.values():
            total = total + n.usage
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "inputs": self.inputs,
            "output_node": self.output_node,
            "output": self.output,
            "error": self.error,
            "duration_s": round(self.duration_s, 4),
            "truncated": [n.node for n in self.truncated],
            "nodes": {name: n.to_dict() for name, n in self.nodes.items()},
        }
