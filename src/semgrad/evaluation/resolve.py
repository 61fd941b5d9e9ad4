"""One door from what a user names to a `Metric`: `resolve_metric(spec_or_callable)`.

A metric is named by:

- a built-in name (`METRIC_NAMES`): ``exact`` (normalised final answer; also
  ``normalized-exact``), ``strict`` (the whole reply, exactly), ``numeric``, ``choice``,
  ``label``, ``contains``, ``f1`` (token F1), ``judge`` (an LLM judge, see `LLMJudge`);
- ``module:function``, a function of yours on the import path, or
  ``path/to/file.py:function``;
- a callable, or any object with ``name`` and ``__call__``.

**Signature.** semgrad calls ``metric(prediction, example)``: `prediction` is the text the
graph produced, `example` a `semgrad.Example` (``example.target``, ``example.inputs``,
``example.id``). DSPy's order, ``metric(example, pred, trace=None)``, is accepted too: when
the first parameter is called ``example`` (or ``gold``), the arguments are passed in DSPy's
order and ``trace`` is None. (`pred` is then the output *text*, not a ``dspy.Prediction``.)

**Return value.** A `Score`; or ``bool`` (1 / 0); or a number in [0, 1]; or a pair
``(bool or number, feedback text)``. Without feedback text a wrong answer gets
``The expected output is: "<target>".``, which is what semantic backpropagation learns from.
An ``async def`` function is awaited.

`check_metric` calls a metric once on the first example (its target as the prediction)
before anything expensive starts, so a metric that returns ``None`` or raises fails at
once, with a message that says what a metric must return.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from semgrad.data.example import Example
from semgrad.errors import GraphError, UserInputError
from semgrad.evaluation.judge import LLMJudge
from semgrad.evaluation.metrics import (
    CORRECT_FEEDBACK,
    ChoiceMatch,
    ExactMatch,
    LabelMatch,
    Metric,
    NumericMatch,
    Score,
    metric_for,
)
from semgrad.evaluation.overlap import Contains, StrictMatch, TokenF1

if TYPE_CHECKING:
    from semgrad.execution.context import RunContext

__all__ = [
    "METRIC_NAMES",
    "AsyncMetric",
    "FunctionMetric",
    "MetricLike",
    "check_metric",
    "resolve_metric",
    "score_output",
]

_BUILTINS: dict[str, Callable[[], Metric]] = {
    "exact": ExactMatch,
    "normalized-exact": ExactMatch,
    "strict": StrictMatch,
    "numeric": NumericMatch,
    "choice": ChoiceMatch,
    "label": LabelMatch,
    "contains": Contains,
    "f1": TokenF1,
    "judge": LLMJudge,
}
METRIC_NAMES: tuple[str, ...] = tuple(_BUILTINS)
# What `resolve_metric` (and so `evaluate`) accepts as a metric.
MetricLike = Metric | str | Callable[..., Any]
_OURS = (ExactMatch, StrictMatch, NumericMatch, ChoiceMatch, LabelMatch, Contains, TokenF1)

_EXPECTED = (
    "a metric is called as metric(prediction, example) (or DSPy's metric(example, pred, "
    "trace=None)) and returns a Score, a bool, a number in [0, 1], or (bool or number, "
    "feedback text)"
)


@runtime_checkable
class AsyncMetric(Protocol):
    """A metric that awaits something (a model): the evaluator awaits `ascore`."""

    @property
    def name(self) -> str: ...

    async def ascore(
        self, prediction_text: str, example: Example, ctx: RunContext | None = None
    ) -> Score: ...


def _value_feedback(value: float, example: Example) -> str:
    if value >= 1.0:
        return CORRECT_FEEDBACK
    if value <= 0.0:
        return f'The expected output is: "{example.target}".'
    return f'The output scored {value:.2f} of 1. The expected output is: "{example.target}".'


def _adapt(name: str, result: Any, example: Example) -> Score:
    """A user metric's return value as a `Score`, or a `UserInputError` saying what is wrong."""
    if isinstance(result, Score):
        return result
    feedback: str | None = None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, feedback = result
    if isinstance(result, bool):
        value = 1.0 if result else 0.0
    elif isinstance(result, int | float) and math.isfinite(result) and 0.0 <= result <= 1.0:
        value = float(result)
    elif isinstance(result, int | float):
        raise UserInputError(
            f"metric {name!r} returned {result!r} for example {example.id!r}; a number must "
            f"be between 0 and 1 ({_EXPECTED})."
        )
    else:
        raise UserInputError(
            f"metric {name!r} returned {type(result).__name__} ({str(result)[:60]!r}) for "
            f"example {example.id!r}; {_EXPECTED}."
        )
    return Score(value, feedback if feedback is not None else _value_feedback(value, example))


def _positional(fn: Callable[..., Any]) -> list[inspect.Parameter] | None:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return None  # a builtin without a signature: called as ours
    return [
        p
        for p in parameters
        if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        or p.kind is inspect.Parameter.VAR_POSITIONAL
    ]


@dataclass(frozen=True)
class FunctionMetric:
    """A user's metric function, adapted: argument order, return value, sync or async."""

    fn: Callable[..., Any]
    name: str
    order: Literal["prediction-first", "dspy"] = "prediction-first"

    @classmethod
    def of(cls, fn: Callable[..., Any], name: str | None = None) -> FunctionMetric:
        label = name or getattr(fn, "name", None) or getattr(fn, "__name__", None)
        label = str(label or type(fn).__name__)
        params = _positional(fn)
        order: Literal["prediction-first", "dspy"] = "prediction-first"
        if params is not None:
            varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
            if len(params) < 2 and not varargs:
                raise UserInputError(
                    f"metric {label!r} takes {len(params)} positional argument(s); {_EXPECTED}."
                )
            if params[0].name in ("example", "gold", "ex"):
                order = "dspy"
        return cls(fn, label, order)

    def _invoke(self, prediction_text: str, example: Example) -> Any:
        try:
            return self._call(prediction_text, example)
        except UserInputError:
            raise
        except Exception as exc:  # a bug in the user's metric: loud, named, no traceback
            raise UserInputError(
                f"metric {self.name!r} raised {type(exc).__name__} on example {example.id!r}: {exc}"
            ) from None

    def _call(self, prediction_text: str, example: Example) -> Any:
        if self.order == "dspy":
            params = _positional(self.fn) or []
            if len(params) >= 3 or any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params):
                return self.fn(example, prediction_text, None)
            return self.fn(example, prediction_text)
        return self.fn(prediction_text, example)

    async def ascore(
        self, prediction_text: str, example: Example, ctx: RunContext | None = None
    ) -> Score:
        result = self._invoke(prediction_text, example)
        if inspect.isawaitable(result):
            result = await result
        return _adapt(self.name, result, example)

    def __call__(self, prediction_text: str, example: Example) -> Score:
        result = self._invoke(prediction_text, example)
        if inspect.isawaitable(result):
            from semgrad._sync import run_sync

            async def wait() -> Any:
                return await result

            result = run_sync(wait())
        return _adapt(self.name, result, example)


def resolve_metric(spec: MetricLike, **options: Any) -> Metric:
    """The metric a name, a ``module:function`` path or a callable stands for.

    `options` go to a built-in's constructor (``resolve_metric("label", labels=["Yes",
    "No"])``, ``resolve_metric("judge", criteria="...")``). See the module docstring for
    the signature and return values a function of yours may have.
    """
    if isinstance(spec, str):
        key = spec.strip()
        if key.lower() in _BUILTINS:
            name = key.lower()
            if name in ("exact", "normalized-exact", "numeric", "choice", "label"):
                return metric_for("exact" if name == "normalized-exact" else name, **options)
            try:
                return _BUILTINS[name](**options)
            except TypeError as exc:
                raise UserInputError(f"bad options for metric {name!r}: {exc}") from None
        if ":" in key:
            from semgrad.graph.functions import resolve_function

            if key.rpartition(":")[0].endswith(".py"):
                return FunctionMetric.of(_from_file(key), key)
            try:
                fn = resolve_function(key)
            except GraphError as exc:
                raise UserInputError(f"metric {key!r}: {exc}") from None
            return FunctionMetric.of(fn, key)
        raise UserInputError(
            f"unknown metric {spec!r}; the metrics are {', '.join(METRIC_NAMES)}, or "
            f"'package.module:function' for a function of yours ({_EXPECTED})."
        )
    if options:
        raise UserInputError("metric options are only for a metric named by a string.")
    if isinstance(spec, (*_OURS, LLMJudge, FunctionMetric)):
        return spec
    if not callable(spec):
        raise UserInputError(f"{spec!r} is not a metric; {_EXPECTED}.")
    return FunctionMetric.of(spec)


def _from_file(key: str) -> Callable[..., Any]:
    """``path/to/file.py:function``: a function from a Python file that is not a module on
    the import path."""
    import importlib.util
    from pathlib import Path

    path, _, attr = key.rpartition(":")
    file = Path(path)
    if not file.is_file():
        raise UserInputError(f"metric {key!r}: there is no file {file}.")
    spec = importlib.util.spec_from_file_location(f"_semgrad_metric_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise UserInputError(f"metric {key!r}: cannot load {file} as Python.")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserInputError(
            f"metric {key!r}: running {file} raised {type(exc).__name__}: {exc}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise UserInputError(f"metric {key!r}: {file} has no function {attr!r}.")
    return fn  # type: ignore[no-any-return]


async def score_output(
    metric: Metric, prediction_text: str, example: Example, ctx: RunContext | None
) -> Score:
    """Score one output, awaiting an async metric (`AsyncMetric`) with the run context."""
    if isinstance(metric, AsyncMetric):
        return await metric.ascore(prediction_text, example, ctx)
    return metric(prediction_text, example)


def check_metric(metric: Metric, examples: Sequence[Example]) -> None:
    """Call `metric` on the first example, its target as the prediction, and raise a
    `UserInputError` naming the problem if it raises or returns something that is not a
    score. A judge is not called (it would cost a model call); a `DataError` (a target
    the metric cannot read) is raised as it is."""
    if not examples or isinstance(metric, LLMJudge):
        return
    example = examples[0]
    try:
        score = metric(example.target, example)
    except UserInputError:
        raise
    except Exception as exc:
        raise UserInputError(
            f"metric {metric.name!r} failed on the first example {example.id!r} (called with "
            f"its target {example.target!r} as the prediction): {type(exc).__name__}: {exc}. "
            f"{_EXPECTED[0].upper()}{_EXPECTED[1:]}."
        ) from None
    if not isinstance(score, Score):
        _adapt(metric.name, score, example)  # raises, saying what was expected
