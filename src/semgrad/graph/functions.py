"""Functions that function nodes can name in a JSON spec.

A function node calls ``fn(inputs)`` with its inputs as an ordered mapping from input name
to text and returns text. Built-ins are registered here by name; anything else is named by
an import path ``package.module:attribute`` and resolved when the graph runs.
"""

from __future__ import annotations

import importlib
import re
from collections import Counter
from collections.abc import Callable, Mapping

from semgrad.errors import GraphError

__all__ = ["BUILTINS", "NodeFunction", "resolve_function"]

NodeFunction = Callable[[Mapping[str, str]], str]

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
    found = _NUMBER.findall(_only(inputs))
    if not found:
        raise ValueError("no number in the input")
    last: str = found[-1]
    return last.replace("$", "").replace(",", "")


def last_choice(inputs: Mapping[str, str]) -> str:
    found = _CHOICE.findall(_only(inputs))
    if not found:
        raise ValueError("no multiple-choice letter like (A) in the input")
    return f"({found[-1]})"


def majority_vote(inputs: Mapping[str, str]) -> str:
    """The most common answer (stripped); ties go to the input listed first."""
    answers = [text.strip() for text in inputs.values()]
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)


BUILTINS: dict[str, NodeFunction] = {
    "identity": identity,
    "concat": concat,
    "last_number": last_number,
    "last_choice": last_choice,
    "majority_vote": majority_vote,
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
