"""Every prompt template semgrad sends to a model, versioned, in one place.

Changing what a model sees changes results and invalidates caches, so each template has a
version that goes into run files, and `tests/test_prompts.py` snapshots the rendered text:
a refactor that changes a prompt shows up as a reviewed diff.

Rendering is pure: text in, messages out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from semgrad.graph.core import FeedbackOn
from semgrad.llm.types import Message

__all__ = [
    "BACKWARD_VERSION",
    "FORWARD_VERSION",
    "JUDGE_VERSION",
    "OPTIMIZER_SEARCH_VERSION",
    "OPTIMIZER_VERSION",
    "DemoTurn",
    "OptimizerExample",
    "OptimizerStyle",
    "last_block",
    "render_backward_independent",
    "render_backward_neighbors",
    "render_forward",
    "render_judge",
    "render_optimizer",
]

FORWARD_VERSION = "forward/1"


def _label(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


class DemoTurn(NamedTuple):
    """One demonstration as `render_forward` takes it: the node's inputs split the way its
    own prompt splits them (graph inputs by name, predecessors' outputs as hints, in the
    node's input order) and the reply it should give."""

    graph_inputs: Mapping[str, str]
    hints: Sequence[tuple[str, str]]
    output: str


def _forward_user(
    instruction: str, graph_inputs: Mapping[str, str], hints: Sequence[tuple[str, str]]
) -> Message:
    parts: list[str] = [f"{_label(name)}:\n{value.strip()}" for name, value in graph_inputs.items()]
    for i, (_node, text) in enumerate(hints, start=1):
        parts.append(f"Hint {i}:\n{text.strip()}")
    parts.append(f"Instruction:\n{instruction.strip()}")
    return Message("user", "\n\n".join(parts))


def render_forward(
    instruction: str,
    graph_inputs: Mapping[str, str],
    hints: Sequence[tuple[str, str]],
    demos: Sequence[DemoTurn] = (),
) -> tuple[Message, ...]:
    """The prompt of an LLM node.

    Graph inputs come first under their own label (``Question: ...``), then the outputs of
    predecessor nodes as numbered hints in the node's input order, then the instruction:
    small models follow an instruction better when it is the last thing they read.

    The node's demonstrations come first as prior chat turns: for each, a user turn that is
    exactly the prompt the node would get for the demo's inputs (instruction included) and
    an assistant turn with the demo's output. Repeating the instruction in every demo turn
    shows the small model the very exchange it is in (same layout, same last line), and
    keeps the prefix a function of (instruction, demos) only: byte-identical for every
    example of a run, so a prompt cache can reuse it. The price: a candidate with an edited
    instruction has a new prefix too (its demos were produced under the old one anyway).
    With no demos the prompt is one user message, exactly as before demos existed.
    """
    messages: list[Message] = []
    for demo in demos:
        messages.append(_forward_user(instruction, demo.graph_inputs, demo.hints))
        messages.append(Message("assistant", demo.output.strip()))
    messages.append(_forward_user(instruction, graph_inputs, hints))
    return tuple(messages)


# -- reading tagged replies ----------------------------------------------------------------

_PLACEHOLDER = re.compile(r"[.\s\u2026]*")


def last_block(reply: str, tag: str, *, unclosed_until: str | None = None) -> str | None:
    """The text of the last complete ``<tag>…</tag>`` block of a reply, stripped, or None.

    One rule for every tagged reply (the backward model's ``<feedback_i>`` blocks, the
    optimizer's ``<improved>`` block), so a reply that first echoes the requested format
    and then answers is read for its answer:

    - a block runs from an opening tag to its own closing tag; a later opening tag of the
      same name before that closing tag starts the block again (the earlier one was a
      mention, never closed);
    - an empty block, or one holding only the template's placeholder ``...``, is no block;
    - with `unclosed_until` (a regular expression), a block whose closing tag was
      forgotten ends where that expression matches or at the end of the reply; such blocks
      count only when the reply has no complete block, and then the *first* one does: a
      small model that forgets its closing tags tends to loop, repeating its blocks until
      it is cut off mid-sentence, so its first block is its answer and its last a
      fragment. Without `unclosed_until`, an unclosed block is no block (a truncated reply
      is never an answer).
    """
    open_tag, close_tag = re.escape(f"<{tag}>"), re.escape(f"</{tag}>")
    closed = re.compile(rf"{open_tag}((?:(?!{open_tag}).)*?){close_tag}", re.DOTALL)
    blocks = _real_blocks(closed.finditer(reply))
    if blocks or unclosed_until is None:
        return blocks[-1] if blocks else None
    end = rf"{close_tag}|(?={unclosed_until})|\Z"
    loose = re.compile(rf"{open_tag}((?:(?!{open_tag}).)*?)(?:{end})", re.DOTALL)
    blocks = _real_blocks(loose.finditer(reply))
    return blocks[0] if blocks else None


def _real_blocks(matches: Iterable[re.Match[str]]) -> list[str]:
    """The stripped texts of `matches`, without empty blocks and template placeholders."""
    texts = [m.group(1).strip() for m in matches]
    return [t for t in texts if not _PLACEHOLDER.fullmatch(t)]


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

OptimizerStyle = Literal["paper", "search"]
"""``paper``: the paper protocol's prompt (its text is unchanged whenever every example is a
mistake); ``search``: the candidate search's, which asks for an answer format only when the
final answer's format was wrong (ALGORITHMS.md §3b)."""

OPTIMIZER_VERSION = "optimizer/5"
OPTIMIZER_SEARCH_VERSION = "optimizer-search/3"


@dataclass(frozen=True)
class OptimizerExample:
    """What the optimizer is shown of one example for one parameter's node.

    `correct` is whether the system's final answer was right (None: not known, shown as a
    mistake, as the paper protocol does); `about` what the feedback judges; `answer_found`
    whether the metric found an answer in the final output (False: the format was wrong);
    `final` the metric's feedback on the final answer, for a node that is not the output
    node (shown by the ``search`` style only).
    """

    inputs: Mapping[str, str]
    output: str
    feedback: Sequence[str]
    correct: bool | None = None
    about: FeedbackOn = "output"
    answer_found: bool | None = None
    final: str | None = None


_FEEDBACK_ON: dict[FeedbackOn, str] = {
    "output": "feedback on the output",
    "final_answer": "feedback on the whole system's final answer",
}


def render_optimizer(
    role: str,
    current: str,
    examples: Sequence[OptimizerExample],
    history: Sequence[tuple[str, float]] = (),
    *,
    style: OptimizerStyle = "paper",
    score: float | None = None,
    rejected: Sequence[tuple[str, float]] = (),
    final_answer: bool = False,
) -> tuple[Message, ...]:
    """Ask for an improved parameter text, returned between <improved> tags (parsed strictly).

    Measured on the 1.5B embedded model: with the current text in tags at the top it mostly
    copied it back unchanged, and asked to "compare first" it rambled. Framed as "an
    assistant followed this and made these mistakes; write a better one", with one
    concrete example of a format rule, it adds specific guidance and carries an expected
    answer format from the feedback into the text.

    Only the examples the system got wrong are called mistakes; examples it got right (a
    batch falls back to them) are marked as such. Feedback that judges the system's final
    answer rather than this component's output is labelled so. The ``paper`` style always
    asks for the answer format the feedback shows; the ``search`` style only when the final
    answer had no recognisable answer in it.

    The ``search`` style also shows the current text's `score` on the validation items and
    the `rejected` texts (recently tried, gated, not better) with theirs, so the optimizer
    neither proposes them again nor mistakes the current text for a failure; the ``paper``
    style ignores both. With `final_answer`, the ``search`` style also shows, for a
    component that is not the output component, the feedback on the system's final answer
    (what it was and should have been) beside the feedback on its own output: a small
    backward model's feedback on an intermediate output is often wrong about the answer.
    """
    wrong = [ex.correct is not True for ex in examples]
    kinds = {ex.about for ex in examples}
    what = _FEEDBACK_ON[next(iter(kinds))] if len(kinds) == 1 else "feedback"
    # A component is told *it* made mistakes only when the feedback judges its own output.
    who = "It" if kinds == {"output"} else "The system"
    if all(wrong):
        intro = f"{who} made mistakes on these examples (its inputs, its output, and {what}):"
    elif any(wrong):
        intro = (
            f"{who} made mistakes on some of these examples (its inputs, its output, and {what}):"
        )
    else:
        intro = (
            f"The system answered these examples correctly (its inputs, its output, and {what}):"
        )
    search = style == "search"
    scored = (
        f", which scores {score:.2f} on validation examples" if search and score is not None else ""
    )
    parts = [
        f'An assistant, one component of a larger system, was given this {role}{scored}:\n"{current.strip()}"',
        intro,
    ]
    mixed = any(wrong) and not all(wrong)
    for i, (ex, mistake) in enumerate(zip(examples, wrong, strict=True), start=1):
        inputs = "\n".join(f"{_label(k)}: {v.strip()}" for k, v in ex.inputs.items())
        mark = ""
        if mixed:
            mark = " (the final answer was wrong)" if mistake else " (the final answer was right)"
        label = _FEEDBACK_ON[ex.about].capitalize()
        final = ""
        if search and final_answer and ex.final and ex.about == "output":
            final = f"\n{_FEEDBACK_ON['final_answer'].capitalize()}: {ex.final.strip()}"
        parts.append(
            f"Example {i}{mark}\n{inputs}\nOutput: {ex.output.strip()}\n"
            f"{label}: {_feedback_block(ex.feedback)}{final}"
        )
    if history:
        lines = "\n".join(f'- score {score:.2f}: "{text.strip()}"' for text, score in history)
        parts.append(f"Earlier versions of the {role} and their scores:\n{lines}")
    shown_rejected = rejected if search else ()
    if shown_rejected:
        lines = "\n".join(f'- score {s:.2f}: "{text.strip()}"' for text, s in shown_rejected)
        better = f" (the current one scores {score:.2f})" if score is not None else ""
        parts.append(
            f"These versions of the {role} were tried recently and did not do better"
            f"{better}:\n{lines}"
        )
    aim = (
        "would have avoided these mistakes"
        if any(wrong)
        else "would keep it answering such questions correctly"
    )
    if style == "paper":
        fmt = (
            f"When the feedback gives an expected output, state in the {role} the exact "
            f'answer format or labels it shows (for example: "Answer with only one of: X, Y."). '
        )
    elif any(ex.answer_found is False for ex in examples):
        fmt = (
            f"No answer could be read from some final outputs: state in the {role} the exact "
            f"answer format or labels the expected output shows (for example: "
            f'"Answer with only one of: X, Y."). '
        )
    else:
        fmt = ""
    parts.append(
        f"Write a better {role} for the assistant. Keep what works and add specific "
        f"guidance that {aim}. {fmt}The new {role} must differ from "
        f"the old one{' and from the rejected ones' if shown_rejected else ''} and must not "
        f"mention these examples. Reply with only the new {role} "
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
