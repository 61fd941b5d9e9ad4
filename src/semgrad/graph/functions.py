"""Functions that function nodes can name in a JSON spec.

A function node calls ``fn(inputs)`` with its inputs as an ordered mapping from input name
to text and returns text; an ``async def`` function is awaited (a tool that calls a service). Built-ins are registered here by name; anything else is named by
an import path ``package.module:attribute`` and resolved when the graph runs.

The built-ins that read an answer out of a reply read its last
`semgrad.text.MAX_PARSE_CHARS` characters, in time linear in that length.
"""

from __future__ import annotations

import ast
import importlib
import operator
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from fractions import Fraction

from semgrad.errors import GraphError
from semgrad.text import parse_window

__all__ = ["BUILTINS", "NodeFunction", "resolve_function"]

# A node function returns text, or (``async def``) an awaitable of text, which the executor awaits.
NodeFunction = Callable[[Mapping[str, str]], str | Awaitable[str]]

_NUMBER = re.compile(r"-?\$?\d[\d,]*(?:\.\d+)?")
_CHOICE = re.compile(r"\(([A-R])\)")


def _only(inputs: Mapping[str, str]) -> str:
    if len(inputs) != 1:
        raise ValueError(f"expects exactly one input, got {list(inputs)}")
    return next(iter(inputs.values()))


def identity(inputs: Mapping[str, str]) -> str:
    return _only(inputs)


def concat(inputs: Mapping[str, str]) -> str:
    return "\n\n".join(f"{name}: {text}" for name, text in inputs.items())


def last_number(inputs: Mapping[str, str]) -> str:
    found = _NUMBER.findall(parse_window(_only(inputs)))
    if not found:
        raise ValueError("no number in the input")
    last: str = found[-1]
    return last.replace("$", "").replace(",", "")


def last_choice(inputs: Mapping[str, str]) -> str:
    found = _CHOICE.findall(parse_window(_only(inputs)))
    if not found:
        raise ValueError("no multiple-choice letter like (A) in the input")
    return f"({found[-1]})"


def majority_vote(inputs: Mapping[str, str]) -> str:
    """The most common answer (stripped); ties go to the input listed first."""
    answers = [text.strip() for text in inputs.values()]
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)


# "Answer: (B)", "the answer is (B)", "answer is B": the choice after the last marker wins.
# The marker words are case-insensitive, the letter is not ("the answer is a falcon").
# Possessive spaces (`\s*+`), and no two space runs side by side: linear time on any reply.
_CHOICE_MARKER = re.compile(
    r"\b(?i:answer)\b\s*+(?:(?:(?i:is)\b\s*+:?|:|=)\s*+)?\(?([A-R])\)?(?![A-Za-z])"
)
_LONE_CHOICE = re.compile(r"^\(?([A-R])\)?[.:]?$", re.IGNORECASE)  # "B", "(b)."


def _choice_in(text: str) -> str | None:
    """The option letter a reply chose: after its last answer marker, else its last ``(X)``,
    else the whole reply when it is a lone letter. Upper case, or None."""
    text = parse_window(text)
    marked = _CHOICE_MARKER.findall(text)
    if marked:
        return str(marked[-1]).upper()
    found = _CHOICE.findall(text)
    if found:
        return str(found[-1])
    lone = _LONE_CHOICE.match(text.strip())
    return lone.group(1).upper() if lone else None


def majority_choice(inputs: Mapping[str, str]) -> str:
    """The option chosen by most inputs, as ``(X)``; ties go to the input listed first.

    Each input is read as a multiple-choice reply (``Answer: (B)``, ``the answer is (B)``,
    ``(B)``), so differently worded replies that pick the same option count together, which
    `majority_vote` (exact text) would not do. Inputs without a choice abstain; when all
    abstain the answer is empty, which a metric scores as no answer.
    """
    choices = [c for text in inputs.values() if (c := _choice_in(text)) is not None]
    if not choices:
        return ""
    counts = Counter(choices)
    best = max(counts.values())
    return "(" + next(c for c in choices if counts[c] == best) + ")"


_ANSWER_PREFIX = r"\b(?i:answer)\b\s*+(?:(?i:is)\b\s*+:?|:)\s*+"
_ANSWER_LINE = re.compile(_ANSWER_PREFIX + r"([^\n]*)")
_ANSWER_MARK = re.compile(_ANSWER_PREFIX)
_NON_SPACE = re.compile(r"\S")


def _answer_in(text: str) -> str | None:
    """The answer a reply gave: what follows its last ``Answer:`` (or ``answer is``) on that
    line, without surrounding spaces, quotes or a final full stop; None when there is none."""
    text = parse_window(text)
    matches = list(_ANSWER_LINE.finditer(text))
    if not matches:
        return None
    start, end = matches[-1].start(1), matches[-1].end(1)
    # "Answer: Answer: x": step over repeated markers by index (no copies: linear time).
    while (first := _NON_SPACE.search(text, start, end)) is not None and (
        again := _ANSWER_MARK.match(text, first.start(), end)
    ) is not None:
        start = again.end()
    answer = text[start:end].strip().strip("\"'*`").rstrip(".").strip()
    return answer or None


def majority_answer(inputs: Mapping[str, str]) -> str:
    """The answer given by most inputs, as ``Answer: <answer>``; ties go to the input listed
    first.

    For any answer type (Yes/No, True/False, a number, an option): each input's answer is
    read after its last ``Answer:`` marker and compared without regard to case, so
    ``Answer: yes`` and ``The answer is Yes.`` vote together. Inputs without a marked
    answer abstain; when all abstain the answer is empty.
    """
    answers = [a for text in inputs.values() if (a := _answer_in(text)) is not None]
    if not answers:
        return ""
    counts = Counter(a.casefold() for a in answers)
    best = max(counts.values())
    return "Answer: " + next(a for a in answers if counts[a.casefold()] == best)


def no_answer(inputs: Mapping[str, str]) -> str:
    """Always the empty answer: the decision of a composite graph to which no agent is
    connected (a metric scores it as a failure; nothing is raised)."""
    return ""


# A run of arithmetic on one line: digits, thousands commas, decimal points, parentheses,
# + - * / and spaces, starting and ending with a digit or a parenthesis (a leading minus
# allowed). Which runs are expressions is decided by parsing them, not by this pattern.
_ARITHMETIC_RUN = re.compile(r"-?[\d(][\d.,()+\-*/ \t]*[\d)]|\d")
_LIST_COMMA = re.compile(r",(?!\d{3}(?!\d))")
_OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _evaluate(node: ast.expr) -> Fraction:
    """The exact value of an expression of numbers, + - * / and parentheses; ValueError
    on anything else (names, calls, powers); ZeroDivisionError on a division by zero."""
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and (op := _OPERATORS.get(type(node.op))) is not None:
        return Fraction(op(_evaluate(node.left), _evaluate(node.right)))
    raise ValueError("not plain arithmetic")


def _format_number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


def calculate(inputs: Mapping[str, str]) -> str:
    """The reply, with the value of its last arithmetic expression as a last line
    ``Answer: <value>`` (a calculator for a model that writes the sum right and adds it up
    wrong: ``1 + 3 + 2 = 5`` gets ``Answer: 6``).

    An expression is a run of numbers joined by ``+ - * /`` (parentheses allowed) on one
    line, such as ``2 + 3 * (4 - 1)``; ``1,000`` is one thousand, ``1, 2 + 3`` is ``2 + 3``.
    It is an opt-in tool: ``2020-2021`` reads as a subtraction. A reply with no
    expression is returned unchanged, so the metric reads the model's own answer.
    """
    text = _only(inputs)
    window = parse_window(text)
    for match in reversed(list(_ARITHMETIC_RUN.finditer(window))):
        # A comma that is not a thousands separator ends a list: "1, 2 + 3" is "2 + 3".
        run = _LIST_COMMA.split(match.group())[-1].strip()
        if not any(op in run.lstrip("-") for op in "+-*/"):
            continue
        try:
            tree = ast.parse(run.replace(",", ""), mode="eval")
            value = _evaluate(tree.body)
        except (SyntaxError, ValueError, ZeroDivisionError):
            continue
        return f"{text}\nAnswer: {_format_number(value)}"
    return text


BUILTINS: dict[str, NodeFunction] = {
    "calculate": calculate,
    "identity": identity,
    "concat": concat,
    "last_number": last_number,
    "last_choice": last_choice,
    "majority_vote": majority_vote,
    "majority_choice": majority_choice,
    "majority_answer": majority_answer,
    "no_answer": no_answer,
}


def resolve_function(name: str) -> NodeFunction:
    if name in BUILTINS:
        return BUILTINS[name]
    if ":" not in name:
        raise GraphError(
            f"unknown function {name!r}: use a built-in ({', '.join(BUILTINS)}) "
            f"or an import path like 'mypackage.module:function'"
        )
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise GraphError(
            f"cannot import module {module_name!r} for function {name!r}: {err}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise GraphError(f"{name!r} does not name a callable in module {module_name!r}")
    return fn  # type: ignore[no-any-return]
