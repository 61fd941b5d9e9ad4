"""`LLMJudge`: a metric that asks a model to grade the output against the reference.

It returns the grade as the score (0-10 mapped to [0, 1]) and the judge's critique as the
feedback, so semantic backpropagation learns from the judge's words. It calls a model, so
it is an *async* metric (`ascore(prediction, example, ctx)`, awaited by the evaluator); the
model is `llm` when given, else the run context's model for `role` (``judge``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from semgrad.data.example import Example
from semgrad.errors import ConfigError, UserInputError
from semgrad.evaluation.metrics import Score
from semgrad.llm.types import LLM, Request
from semgrad.prompts import render_judge

if TYPE_CHECKING:
    from semgrad.execution.context import RunContext

__all__ = ["DEFAULT_JUDGE_CRITERIA", "LLMJudge", "parse_judgement"]

DEFAULT_JUDGE_CRITERIA = (
    "The output is correct when its final answer means the same as the reference answer; "
    "wording and extra explanation do not matter."
)

_CRITIQUE = re.compile(r"<critique>(.*?)</critique>", re.DOTALL | re.IGNORECASE)
_SCORE = re.compile(r"<score>\s*(\d+(?:\.\d+)?)\s*(?:/\s*10\s*)?</score>", re.IGNORECASE)


def parse_judgement(reply: str) -> tuple[float, str] | None:
    """(score in [0, 1], critique) from a judge's reply, or None if it has no <score>."""
    found = _SCORE.findall(reply)
    if not found:
        return None
    grade = min(max(float(found[-1]), 0.0), 10.0)
    critiques = _CRITIQUE.findall(reply)
    critique = critiques[-1].strip() if critiques else ""
    return grade / 10.0, critique


@dataclass(frozen=True)
class LLMJudge:
    """Grades an output with a model; the critique is the feedback.

    `criteria` says what counts as correct (one or two sentences, task specific). A reply
    without a ``<score>`` grades 0 with feedback saying the judge could not be read (the
    judge's raw reply is kept in the feedback, so a bad judge prompt is visible in reports).
    """

    name: ClassVar[str] = "judge"
    criteria: str = DEFAULT_JUDGE_CRITERIA
    role: str = "judge"
    llm: LLM | None = field(default=None, compare=False)
    max_tokens: int = 256

    def _model(self, ctx: RunContext | None) -> LLM:
        if self.llm is not None:
            return self.llm
        if ctx is None:
            raise UserInputError(
                f"the judge metric needs a model: pass LLMJudge(llm=...), or evaluate with a "
                f"run context that has a model for role {self.role!r}."
            )
        try:
            return ctx.llm(self.role)
        except ConfigError:
            raise UserInputError(
                f"the judge metric needs a model for role {self.role!r}; the run context has "
                f"{', '.join(ctx.llms)}. Add one (RunContext(llms={{..., {self.role!r}: llm}})) "
                f"or pass LLMJudge(llm=...)."
            ) from None

    async def ascore(
        self, prediction_text: str, example: Example, ctx: RunContext | None = None
    ) -> Score:
        llm = self._model(ctx)
        messages = render_judge(self.criteria, example.inputs, prediction_text, example.target)
        request = Request(
            messages=messages,
            max_tokens=self.max_tokens,
            seed=ctx.seed if ctx is not None else 0,
            node="judge",
            phase=ctx.phase if ctx is not None else "evaluation",
        )
        reply = (await llm.complete(request)).text
        verdict = parse_judgement(reply)
        if verdict is None:
            return Score(
                0.0,
                f"The judge's reply has no <score> grade, so the output was not graded. "
                f'The expected output is: "{example.target}". Judge reply: {reply.strip()[:300]}',
                "",
            )
        value, critique = verdict
        feedback = critique or (
            "The judge found the output correct."
            if value >= 1.0
            else f"The judge graded the output {value * 10:g}/10. The expected output is: "
            f'"{example.target}".'
        )
        return Score(value, feedback, prediction_text.strip())

    def __call__(self, prediction_text: str, example: Example) -> Score:
        """The sync form, for a judge given its own `llm` (runs the model call to the end)."""
        from semgrad._sync import run_sync

        return run_sync(self.ascore(prediction_text, example, None))
