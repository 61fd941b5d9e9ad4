"""TextGrad (TGD) on the 3-node hint graph. Run with the TextGrad venv's python:

    ~/.cache/semgrad/peers/textgrad/venv/bin/python textgrad_adapter.py TASK.json OUT.json

What it expresses: the graph as TextGrad computes it, three `FormattedLLMCall`s (hint_1 and
hint_2 see the question, final sees the question and both hints), whose three instructions
are trainable `Variable`s. The prompt text of each call is semgrad's forward layout, so the
forward pass sends the model the same messages semgrad would. The loss is a
`StringBasedFunction` returning semgrad's metric feedback (``The expected output is: "18".
The answer given was "17".``), as in TextGrad's own prompt-optimization recipe for BBH.
`loss.backward()` sends textual gradients through final into both hints and into the
three instructions (backward engine: the 1.5B); `TGD.step()` rewrites each instruction.

Training loop, TextGrad's recipe: minibatches from the shuffled training set, the losses
of a batch summed (`tg.sum`), one backward and one step per batch, then the validation set
is scored and the step is reverted unless validation accuracy did not drop. It stops when
the proxy refuses a call for the budget; the best validated instructions are then used on
the test set (the step in flight when the budget ran out is discarded).

Engines: a small `EngineLM` over the OpenAI client pointed at the proxy (no system message
for the forward calls, so they match semgrad's; TextGrad's own engines always add one and
cache on disk outside our control). Temperature 0 throughout, as in TextGrad's defaults.
"""

from __future__ import annotations

import random
from typing import Any

import textgrad as tg
from common import (
    NODES,
    AdapterResult,
    BudgetExhausted,
    Clock,
    Item,
    TaskFile,
    adapter_main,
    is_budget_error,
    predict_all,
    score_items,
)
from openai import OpenAI
from textgrad.autograd import FormattedLLMCall, StringBasedFunction
from textgrad.engine import EngineLM

ROLES = {
    "hint_1": (
        "instruction for the first hint step of a question-answering system: a small model "
        "reads the question and this instruction and writes a short hint (without solving the "
        "question) for the final step"
    ),
    "hint_2": (
        "instruction for the second hint step of a question-answering system: a small model "
        "reads the question and this instruction and writes a short hint (without solving the "
        "question) for the final step"
    ),
    "final": (
        "instruction for the final step of a question-answering system: a small model reads "
        "the question, two hints and this instruction, solves the question, and must end with "
        "a last line of the form 'Answer: <answer>'"
    ),
}
HINT_FORMAT = "Question:\n{question}\n\nInstruction:\n{instruction}"
FINAL_FORMAT = (
    "Question:\n{question}\n\nHint 1:\n{hint_1}\n\nHint 2:\n{hint_2}\n\nInstruction:\n{instruction}"
)
UPSTREAM_TIMEOUT_S = 1800.0


class ProxyEngine(EngineLM):
    """A TextGrad engine over an OpenAI-compatible endpoint: one chat call, no disk cache."""

    def __init__(
        self, base_url: str, api_key: str, model: str, max_tokens: int, temperature: float = 0.0
    ) -> None:
        self.client = OpenAI(base_url=base_url, api_key=api_key, timeout=UPSTREAM_TIMEOUT_S)
        self.model_string = model
        self.max_tokens = max_tokens
        self.temperature = temperature

    def generate(self, prompt: Any, system_prompt: str | None = None, **kwargs: Any) -> str:
        messages: list[dict[str, str]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": str(prompt)})
        reply = self.client.chat.completions.create(
            model=self.model_string,
            messages=messages,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
        )
        return reply.choices[0].message.content or ""

    def __call__(self, prompt: Any, **kwargs: Any) -> str:
        return self.generate(prompt, **kwargs)


class HintGraph:
    """The three LLM calls, wired as TextGrad functions over trainable instruction Variables."""

    def __init__(self, task: TaskFile, phase: str, params: dict[str, tg.Variable]) -> None:
        url, key = task.base_url(phase), task.api_key
        hint = ProxyEngine(url, key, task.forward_model, task.max_tokens("hint_1"))
        final = ProxyEngine(url, key, task.forward_model, task.max_tokens("final"))
        self.params = params
        self.hints = [
            FormattedLLMCall(hint, HINT_FORMAT, {"question": None, "instruction": None})
            for _ in range(2)
        ]
        fields = {"question": None, "hint_1": None, "hint_2": None, "instruction": None}
        self.final = FormattedLLMCall(final, FINAL_FORMAT, fields)

    def __call__(self, item: Item) -> tg.Variable:
        question = tg.Variable(
            item.question.strip(), requires_grad=False, role_description="question to answer"
        )
        hints = []
        for i, call in enumerate(self.hints, start=1):
            out = call(
                {"question": question, "instruction": self.params[f"hint_{i}"]},
                response_role_description=f"hint {i} for the question",
            )
            out.set_value(out.value.strip())  # semgrad strips a hint before passing it on
            hints.append(out)
        return self.final(
            {
                "question": question,
                "hint_1": hints[0],
                "hint_2": hints[1],
                "instruction": self.params["final"],
            },
            response_role_description="solution to the question, ending with 'Answer: <answer>'",
        )


def run(task: TaskFile, result: AdapterResult) -> None:
    options = task.options
    batch_size = int(options.get("batch_size", 3))
    max_steps = int(options.get("max_steps", 100))
    result.optimizer = "TextualGradientDescent"
    result.settings = {
        "batch_size": batch_size,
        "max_steps": max_steps,
        "loss": "StringBasedFunction(semgrad metric feedback)",
        "validation": "revert unless val accuracy >= best so far (TextGrad's recipe)",
        "backward_max_tokens": task.optimizer_max_tokens,
    }
    proxy = task.proxy
    params = {
        node: tg.Variable(text, requires_grad=True, role_description=ROLES[node])
        for node, text in task.instructions.items()
    }
    backward = ProxyEngine(
        task.base_url("optimize"), task.api_key, task.optimizer_model, task.optimizer_max_tokens
    )
    tg.set_backward_engine(backward, override=True)
    optimizer = tg.TGD(parameters=[params[node] for node in NODES], engine=backward)
    graph = HintGraph(task, "optimize", params)
    train, val = task.items("train"), task.items("val")
    rng = random.Random(task.seed)

    clock = Clock()
    best: dict[str, str] = {node: params[node].value for node in NODES}
    try:
        best_val, _ = score_items(task, val, lambda item: graph(item).value)
    except BudgetExhausted:
        result.budget_exhausted = True
        best_val = float("nan")
    result.history.append({"step": 0, "val": best_val, "accepted": True})
    order: list[Item] = []
    step = 0
    while not result.budget_exhausted and step < max_steps:
        step += 1
        if len(order) < batch_size:
            order = list(train)
            rng.shuffle(order)
        batch, order = order[:batch_size], order[batch_size:]
        record: dict[str, Any] = {"step": step, "batch": [item.id for item in batch]}
        try:
            optimizer.zero_grad()
            outputs = [graph(item) for item in batch]
            losses = []
            for item, output in zip(batch, outputs, strict=True):
                loss_fn = StringBasedFunction(
                    _feedback_fn(proxy, item.id),
                    function_purpose=(
                        "compares the final answer in the solution with the correct answer "
                        "and says whether it is correct"
                    ),
                )
                target = tg.Variable(
                    item.target, requires_grad=False, role_description="correct answer"
                )
                losses.append(loss_fn({"prediction": output, "target": target}))
            record["feedback"] = [loss.value for loss in losses]
            total = tg.sum(losses) if len(losses) > 1 else losses[0]
            total.backward()
            try:
                optimizer.step()
            except IndexError as exc:
                # The optimizer model did not wrap its answer in the tags TGD parses; TGD
                # raises at that parameter and leaves the rest of the step undone.
                record["step_error"] = str(exc)[:1000]
            record["proposed"] = {node: params[node].value for node in NODES}
            if {node: params[node].value for node in NODES} == best:
                # Nothing changed: validating would repeat the last evaluation.
                record["unchanged"] = True
                result.history.append(record)
                continue
            val_score, _ = score_items(task, val, lambda item: graph(item).value)
        except Exception as exc:
            if not (isinstance(exc, BudgetExhausted) or is_budget_error(exc)):
                raise
            result.budget_exhausted = True
            record["stopped"] = "budget exhausted during the step; step discarded"
            result.history.append(record)
            break
        record["val"] = val_score
        record["accepted"] = not (val_score < best_val)
        if record["accepted"]:
            best_val = val_score
            best = {node: params[node].value for node in NODES}
        else:
            for node in NODES:
                params[node].set_value(best[node])
        result.history.append(record)
    for node in NODES:
        params[node].set_value(best[node])
    result.optimize_seconds = clock.seconds()
    result.optimized = {
        "instructions": dict(best),
        "val": best_val,
        "steps_validated": sum(1 for r in result.history[1:] if "val" in r),
    }

    clock = Clock()
    test_graph = HintGraph(task, "test", params)
    result.predictions = predict_all(
        task.items("test"), lambda item: test_graph(item).value, threads=task.concurrency
    )
    result.test_seconds = clock.seconds()
    result.status = "ok"


def _feedback_fn(proxy: Any, example_id: str) -> Any:
    def feedback(prediction: tg.Variable, target: tg.Variable) -> str:
        return str(proxy.score(example_id, prediction.value).feedback)

    return feedback


if __name__ == "__main__":
    raise SystemExit(adapter_main(run, "textgrad", ["textgrad", "openai"]))
