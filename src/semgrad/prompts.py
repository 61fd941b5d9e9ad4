"""Every prompt template semgrad sends to a model, versioned, in one place.

Changing what a model sees changes results and invalidates caches, so each template has a
version that goes into run files, and `tests/test_prompts.py` snapshots the rendered text:
a refactor that changes a prompt shows up as a reviewed diff.

Rendering is pure: text in, messages out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from semgrad.llm.types import Message

__all__ = [
    "BACKWARD_VERSION",
    "FORWARD_VERSION",
    "JUDGE_VERSION",
    "OPTIMIZER_VERSION",
    "OptimizerExample",
    "render_backward_independent",
    "render_backward_neighbors",
    "render_forward",
    "render_judge",
    "render_optimizer",
]

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


# -- backward ------------------------------------------------------------------------------

BACKWARD_VERSION = "backward/1"

_BACKWARD_INTRO = (
    "You are improving a system of language-model calls by giving feedback. One component "
    "of the system read the inputs below, followed its instruction and wrote an output. "
    "Feedback on that output says how the output should change."
)


def _feedback_block(grad: Sequence[str]) -> str:
    if len(grad) == 1:
        return grad[0].strip()
    return "\n".join(f"{i}. {g.strip()}" for i, g in enumerate(grad, start=1))


def render_backward_neighbors(
    instruction: str,
    graph_inputs: Mapping[str, str],
    node_inputs: Sequence[tuple[str, str]],
    output: str,
    grad: Sequence[str],
) -> tuple[Message, ...]:
    """One call for all inputs of a component: each input is judged next to its siblings.

    The reply must hold one ``<feedback_i>`` block per numbered input; tags carry the full
    index, so input 1 can never be confused with input 10.
    """
    parts = [_BACKWARD_INTRO]
    parts += [f"{_label(name)}:\n{value.strip()}" for name, value in graph_inputs.items()]
    for i, (_node, text) in enumerate(node_inputs, start=1):
        parts.append(f"Input {i}:\n{text.strip()}")
    parts.append(f"Instruction of the component:\n{instruction.strip()}")
    parts.append(f"Output of the component:\n{output.strip()}")
    parts.append(f"Feedback on the output:\n{_feedback_block(grad)}")
    n = len(node_inputs)
    blocks = "\n".join(f"<feedback_{i}>...</feedback_{i}>" for i in range(1, n + 1))
    parts.append(
        f"For each of the {n} numbered inputs, say how that input should change so that the "
        f"output improves. Compare the inputs with each other: say which input helped, which "
        f"misled the component, and what was missing. Be specific and brief. Reply with "
        f"exactly one block per input:\n{blocks}"
    )
    return (Message("user", "\n\n".join(parts)),)


def render_backward_independent(
    instruction: str,
    graph_inputs: Mapping[str, str],
    node_input: str,
    output: str,
    grad: Sequence[str],
) -> tuple[Message, ...]:
    """The TextGrad-style ablation: one call per input, which sees no sibling."""
    parts = [_BACKWARD_INTRO]
    parts += [f"{_label(name)}:\n{value.strip()}" for name, value in graph_inputs.items()]
    parts.append(f"Input:\n{node_input.strip()}")
    parts.append(f"Instruction of the component:\n{instruction.strip()}")
    parts.append(f"Output of the component:\n{output.strip()}")
    parts.append(f"Feedback on the output:\n{_feedback_block(grad)}")
    parts.append(
        "Say how the input should change so that the output improves. Be specific and "
        "brief. Reply with one block:\n<feedback_1>...</feedback_1>"
    )
    return (Message("user", "\n\n".join(parts)),)


# -- optimizer -----------------------------------------------------------------------------

OPTIMIZER_VERSION = "optimizer/4"


@dataclass(frozen=True)
class OptimizerExample:
    """What the optimizer is shown of one example for one parameter's node."""

    inputs: Mapping[str, str]
    output: str
    feedback: Sequence[str]


def render_optimizer(
    role: str,
    current: str,
    examples: Sequence[OptimizerExample],
    history: Sequence[tuple[str, float]] = (),
) -> tuple[Message, ...]:
    """Ask for an improved parameter text, returned between <improved> tags (parsed strictly).

    Measured on the 1.5B embedded model: with the current text in tags at the top it mostly
    copied it back unchanged, and asked to "compare first" it rambled. Framed as "an
    assistant followed this and made these mistakes; write a better one", with one
    concrete example of a format rule, it adds specific guidance and carries an expected
    answer format from the feedback into the text.
    """
    parts = [
        f'An assistant, one component of a larger system, was given this {role}:\n"{current.strip()}"',
        "It made mistakes on these examples (its inputs, its output, and feedback on the output):",
    ]
    for i, ex in enumerate(examples, start=1):
        inputs = "\n".join(f"{_label(k)}: {v.strip()}" for k, v in ex.inputs.items())
        parts.append(
            f"Example {i}\n{inputs}\nOutput: {ex.output.strip()}\n"
            f"Feedback on the output: {_feedback_block(ex.feedback)}"
        )
    if history:
        lines = "\n".join(f'- score {score:.2f}: "{text.strip()}"' for text, score in history)
        parts.append(f"Earlier versions of the {role} and their scores:\n{lines}")
    parts.append(
        f"Write a better {role} for the assistant. Keep what works and add specific "
        f"guidance that would have avoided these mistakes. When the feedback gives an "
        f"expected output, state in the {role} the exact answer format or labels it shows "
        f'(for example: "Answer with only one of: X, Y."). The new {role} must differ from '
        f"the old one and must not mention these examples. Reply with only the new {role} "
        f"between <improved> and </improved>."
    )
    return (Message("user", "\n\n".join(parts)),)


# -- judge (the LLM-judge metric) ------------------------------------------------------------

JUDGE_VERSION = "judge/1"


def render_judge(
    criteria: str,
    inputs: Mapping[str, str],
    output: str,
    reference: str,
) -> tuple[Message, ...]:
    """Ask a judge model to grade an output against a reference: a critique in
    <critique> tags, then a grade from 0 to 10 in <score> tags (parsed strictly)."""
    parts = [f"{_label(name)}:\n{value.strip()}" for name, value in inputs.items()]
    parts.append(f"Reference answer:\n{reference.strip()}")
    parts.append(f"Output to grade:\n{output.strip()}")
    parts.append(
        f"Grade the output. {criteria.strip()} First write a short critique that says what "
        f"is wrong or missing, between <critique> and </critique>; then a grade from 0 "
        f"(wrong) to 10 (fully correct) between <score> and </score>."
    )
    return (Message("user", "\n\n".join(parts)),)
