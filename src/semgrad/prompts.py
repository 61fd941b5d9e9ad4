"""Every prompt template semgrad sends to a model, versioned, in one place.

Changing what a model sees changes results and invalidates caches, so each template has a
version that goes into run files, and `tests/test_prompts.py` snapshots the rendered text:
a refactor that changes a prompt shows up as a reviewed diff.

Rendering is pure: text in, messages out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from semgrad.llm.types import Message

__all__ = ["FORWARD_VERSION", "render_forward"]

FORWARD_VERSION = "forward/1"


def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def render_forward(
    instruction: str,
    graph_inputs: Mapping[str, str],
    hints: Sequence[tuple[str, str]],
) -> tuple[Message, ...]:
    """The prompt of an LLM node.

    Graph inputs come first under their own label (``Question: ...``), then the outputs of
    predecessor nodes as numbered hints in the node's input order, then the instruction:
    small models follow an instruction better when it is the last thing they read.
    """
    parts: list[str] = [f"{_label(name)}:\n{value.strip()}" for name, value in graph_inputs.items()]
    for i, (_node, text) in enumerate(hints, start=1):
        parts.append(f"Hint {i}:\n{text.strip()}")
    parts.append(f"Instruction:\n{instruction.strip()}")
    return (Message("user", "\n\n".join(parts)),)
