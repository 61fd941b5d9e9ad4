"""Trace (OptoPrime) on the 3-node hint graph. Run with the Trace venv's python:

    ~/.cache/semgrad/peers/trace/venv/bin/python trace_adapter.py TASK.json OUT.json

What it expresses: the three instructions are trainable `trace.node`s; the two hint calls
and the final call are `@trace.bundle` functions (their code is not trainable) that send the
forward model semgrad's prompt layout, so a forward pass is the same three calls with the
same messages as semgrad's. Trace records the graph as it runs; `optimizer.backward(output,
feedback)` attaches semgrad's metric feedback to each output of a minibatch, and one
`OptoPrime.step()` (one call to the 1.5B, which sees the whole traced graph: the functions'
descriptions, the instructions, the inputs, the outputs and the feedback) proposes new values
for the instructions.

The training loop is the same as the TextGrad adapter's (minibatches of the shuffled
training set, then validation, revert unless validation accuracy did not drop), so the two
differ in how they turn feedback into new instructions, not in how they spend the budget
around it. Validation and test predictions call the same functions outside Trace's graph.
OptoPrime's own request leaves the temperature unset (the server's default samples).
"""

from __future__ import annotations

import random
import warnings
from functools import partial
from typing import Any

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
    render_prompt,
    score_items,
)
from openai import OpenAI
from opto import trace
from opto.optimizers import OptoPrime
from opto.utils.llm import AbstractModel

UPSTREAM_TIMEOUT_S = 1800.0
DESCRIPTIONS = {
    "hint_1": "Instruction of the first hint step: the hint model reads the question and this.",
    "hint_2": "Instruction of the second hint step: the hint model reads the question and this.",
    "final": (
        "Instruction of the final step: the model reads the question, both hints and this, and "
        "must end with a last line 'Answer: <answer>'."
    ),
}


class ProxyLLM(AbstractModel):
    """Trace's model interface over the OpenAI client, pointed at the proxy."""

    def __init__(self, base_url: str, api_key: str, model: str, max_tokens: int) -> None:
        client = OpenAI(base_url=base_url, api_key=api_key, timeout=UPSTREAM_TIMEOUT_S)

        def create(**config: Any) -> Any:
            config["model"] = model
            config["max_tokens"] = min(int(config.get("max_tokens") or max_tokens), max_tokens)
            return client.chat.completions.create(**config)

        super().__init__(lambda: create)


class Forward:
    """The three forward calls as plain functions of strings (no tracing)."""

    def __init__(self, task: TaskFile, phase: str) -> None:
        self.client = OpenAI(
            base_url=task.base_url(phase), api_key=task.api_key, timeout=UPSTREAM_TIMEOUT_S
        )
        self.model = task.forward_model
        self.max_tokens = {node: task.max_tokens(node) for node in NODES}

    def call(self, node: str, prompt: str) -> str:
        reply = self.client.chat.completions.create(
            model=self.model,
            messages=[{"role": "user", "content": prompt}],
            temperature=0.0,
            max_tokens=self.max_tokens[node],
        )
        return (reply.choices[0].message.content or "").strip()

    def hint(self, node: str, question: str, instruction: str) -> str:
        return self.call(node, render_prompt(instruction, question))

    def final(self, question: str, hint_1: str, hint_2: str, instruction: str) -> str:
        return self.call("final", render_prompt(instruction, question, (hint_1, hint_2)))

    def predict(self, instructions: dict[str, str], item: Item) -> str:
        h1 = self.hint("hint_1", item.question, instructions["hint_1"])
        h2 = self.hint("hint_2", item.question, instructions["hint_2"])
        return self.final(item.question, h1, h2, instructions["final"])


def traced_graph(forward: Forward) -> Any:
    """The graph as Trace sees it: three bundled calls over trainable instruction nodes."""

    @trace.bundle(
        description=(
            "[hint_1] Asks the language model for a first hint: it reads the question and the "
            "instruction, and returns the hint text."
        )
    )
    def hint_1(question: str, instruction: str) -> str:
        return forward.hint("hint_1", question, instruction)

    @trace.bundle(
        description=(
            "[hint_2] Asks the language model for a second hint: it reads the question and the "
            "instruction, and returns the hint text."
        )
    )
    def hint_2(question: str, instruction: str) -> str:
        return forward.hint("hint_2", question, instruction)

    @trace.bundle(
        description=(
            "[final] Asks the language model to solve the question using both hints, following "
            "the instruction; returns the solution, whose last line should be 'Answer: <answer>'."
        )
    )
    def final(question: str, hint_one: str, hint_two: str, instruction: str) -> str:
        return forward.final(question, hint_one, hint_two, instruction)

    @trace.bundle(
        description=(
            "[minibatch] Joins the final solutions of the examples of a minibatch, numbered in "
            "order, so that one feedback can speak about all of them."
        )
    )
    def minibatch(*solutions: str) -> str:
        return "\n\n".join(f"Example {i}:\n{s}" for i, s in enumerate(solutions, start=1))

    def run(params: dict[str, Any], question: str) -> Any:
        q = trace.node(question, trainable=False)
        h1 = hint_1(q, params["hint_1"])
        h2 = hint_2(q, params["hint_2"])
        return final(q, h1, h2, params["final"])

    return run, minibatch


def run(task: TaskFile, result: AdapterResult) -> None:
    options = task.options
    batch_size = int(options.get("batch_size", 3))
    max_steps = int(options.get("max_steps", 100))
    result.optimizer = "OptoPrime"
    result.settings = {
        "batch_size": batch_size,
        "max_steps": max_steps,
        "feedback": "semgrad metric feedback, numbered per example of the minibatch",
        "validation": "revert unless val accuracy >= best so far (as the TextGrad adapter)",
        "optimizer_max_tokens": task.optimizer_max_tokens,
    }
    proxy = task.proxy
    params = {
        node: trace.node(text, name=node, trainable=True, description=DESCRIPTIONS[node])
        for node, text in task.instructions.items()
    }
    llm = ProxyLLM(
        task.base_url("optimize"), task.api_key, task.optimizer_model, task.optimizer_max_tokens
    )
    optimizer = OptoPrime(
        [params[node] for node in NODES], llm=llm, max_tokens=task.optimizer_max_tokens
    )
    forward = Forward(task, "optimize")
    graph, minibatch = traced_graph(forward)
    train, val = task.items("train"), task.items("val")
    rng = random.Random(task.seed)

    def values() -> dict[str, str]:
        return {node: str(params[node].data) for node in NODES}

    clock = Clock()
    best = values()
    try:
        best_val, _ = score_items(task, val, partial(forward.predict, best))
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
            optimizer.zero_feedback()
            outputs, feedback = [], []
            for item in batch:
                output = graph(params, item.question)
                outputs.append(output)
                feedback.append(proxy.score(item.id, str(output.data)).feedback)
            record["feedback"] = feedback
            # Trace sums the graphs of several outputs only when they carry the same
            # feedback, so a minibatch is one output (the joined solutions) with one
            # feedback that numbers the examples.
            joined = minibatch(*outputs) if len(outputs) > 1 else outputs[0]
            optimizer.backward(
                joined,
                "\n".join(f"Example {i}: {f}" for i, f in enumerate(feedback, start=1))
                if len(outputs) > 1
                else feedback[0],
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                optimizer.step(verbose=False)
            record["warnings"] = [str(w.message)[:500] for w in caught]
            record["proposed"] = values()
            if optimizer.log:
                record["optimizer_reply"] = str(optimizer.log[-1].get("response", ""))[:4000]
            if values() == best:
                # Nothing changed: validating would repeat the last evaluation.
                record["unchanged"] = True
                result.history.append(record)
                continue
            val_score, _ = score_items(task, val, partial(forward.predict, values()))
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
            best_val, best = val_score, values()
        else:
            for node in NODES:
                params[node]._set(best[node])
        result.history.append(record)
    result.optimize_seconds = clock.seconds()
    result.optimized = {
        "instructions": dict(best),
        "val": best_val,
        "steps_validated": sum(1 for r in result.history[1:] if "val" in r),
    }

    clock = Clock()
    test = Forward(task, "test")
    result.predictions = predict_all(
        task.items("test"), lambda item: test.predict(best, item), threads=task.concurrency
    )
    result.test_seconds = clock.seconds()
    result.status = "ok"


if __name__ == "__main__":
    raise SystemExit(adapter_main(run, "trace", ["trace-opt", "openai", "litellm"]))
