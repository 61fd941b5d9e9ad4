"""DSPy (COPRO, MIPROv2, GEPA) on the 3-node hint graph. Run with the DSPy venv's python:

    ~/.cache/semgrad/peers/dspy/venv/bin/python dspy_adapter.py TASK.json OUT.json \\
        --optimizer copro|miprov2|gepa|bootstrap-rs|none

What it expresses: a `dspy.Module` with three `dspy.Predict` predictors, hint_1 and hint_2
(``question -> hint``, max_tokens 96) and final (``question, hint_1, hint_2 -> solution``,
max_tokens 320), whose signature instructions start as semgrad's. The prompt layout is
DSPy's own (its ChatAdapter: field markers, a system message), so only the instructions are
shared with semgrad, not the exact text the model sees. The metric is semgrad's, served by
the proxy: COPRO and MIPROv2 get its score, GEPA its score and its feedback text.

Budget sizing (the proxy refuses calls past the budget anyway):

* COPRO: depth 1 and the largest breadth whose estimated cost fits the budget (more depth
  when breadth 10 fits). COPRO scores candidates on the training set.
* MIPROv2: ``auto=None`` with 3 candidates (instructions + up to 2 bootstrapped and 2
  labelled demos per predictor: MIPROv2's own method), the number of trials that fits the
  budget, minibatches of min(5, val) examples.
* GEPA: ``max_metric_calls = budget // 3`` (one metric call = one run of the 3 calls), the
  reflection LM is the 1.5B.
* BootstrapFewShotWithRandomSearch (``bootstrap-rs``): up to 2 bootstrapped and 2 labelled
  demos per predictor; the zero-shot and labelled-only programs plus as many bootstrapped
  candidates as the budget should cover (each scored on the validation set).

``none`` runs no optimizer: the initial program is predicted on the test set through DSPy's
prompt layout, the baseline each DSPy optimizer is paired against (the same instructions
through semgrad's layout answer some items differently).

DSPy's in-memory response cache stays on (it is part of how DSPy spends calls: unchanged
predictors are not called again); its disk cache is off, so every call of a run reaches the
proxy. A call refused for the budget fails one example (score 0) and the optimizer goes on;
if the optimizer itself raises, the best fully evaluated program so far (recorded by an
`Evaluate` callback) is used, else the initial one.
"""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

import dspy
from common import (
    NODES,
    AdapterResult,
    Clock,
    Item,
    Proxy,
    TaskFile,
    adapter_main,
    error_text,
    is_budget_error,
    predict_all,
)
from dspy.utils.callback import BaseCallback

OPTIMIZERS = ("copro", "miprov2", "gepa", "bootstrap-rs", "none")
UPSTREAM_TIMEOUT_S = 1800


class HintGraph(dspy.Module):
    """hint_1, hint_2 -> final: three predictors, each with its own max_tokens."""

    def __init__(self, instructions: dict[str, str], max_tokens: dict[str, int]) -> None:
        super().__init__()
        hint_fields = {"question": (str, dspy.InputField()), "hint": (str, dspy.OutputField())}
        final_fields = {
            "question": (str, dspy.InputField()),
            "hint_1": (str, dspy.InputField()),
            "hint_2": (str, dspy.InputField()),
            "solution": (str, dspy.OutputField()),
        }
        self.hint_1 = dspy.Predict(
            dspy.Signature(hint_fields, instructions["hint_1"]), max_tokens=max_tokens["hint_1"]
        )
        self.hint_2 = dspy.Predict(
            dspy.Signature(hint_fields, instructions["hint_2"]), max_tokens=max_tokens["hint_2"]
        )
        self.final = dspy.Predict(
            dspy.Signature(final_fields, instructions["final"]), max_tokens=max_tokens["final"]
        )

    def forward(self, question: str) -> Any:
        hint_1 = self.hint_1(question=question).hint
        hint_2 = self.hint_2(question=question).hint
        return self.final(question=question, hint_1=hint_1, hint_2=hint_2)


def describe(program: HintGraph) -> dict[str, Any]:
    """The optimized prompt: per predictor its instruction, output prefix and demos."""
    out: dict[str, Any] = {}
    for name in NODES:
        predictor = getattr(program, name)
        signature = predictor.signature
        last = list(signature.output_fields)[-1]
        out[name] = {
            "instructions": signature.instructions,
            "output_prefix": (signature.output_fields[last].json_schema_extra or {}).get("prefix"),
            "demos": [dict(d) if hasattr(d, "items") else str(d) for d in predictor.demos],
        }
    return out


class EvalRecorder(BaseCallback):
    """Remembers every `Evaluate` call: the program, its size, score and budget refusals."""

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy
        self.started: dict[str, tuple[Any, int, int]] = {}
        self.records: list[dict[str, Any]] = []

    def _refused(self) -> int:
        stats = self.proxy._request(f"/_admin/runs/{self.proxy.run}")
        return int(stats["phases"].get("optimize", {}).get("refused", 0))

    def on_evaluate_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
        program = inputs.get("program")
        devset = inputs.get("devset") or getattr(instance, "devset", None) or []
        if program is not None:
            self.started[call_id] = (program.deepcopy(), len(devset), self._refused())

    def on_evaluate_end(
        self, call_id: str, outputs: Any | None, exception: BaseException | None = None
    ) -> None:
        if call_id not in self.started:
            return
        program, size, refused_before = self.started.pop(call_id)
        score = getattr(outputs, "score", None)
        self.records.append(
            {
                "program": program,
                "size": size,
                "score": None if score is None else float(score),
                "refused": self._refused() - refused_before,
                "error": "" if exception is None else repr(exception)[:500],
            }
        )

    def best(self) -> Any | None:
        """The best program among complete, unrefused evaluations of the largest size."""
        valid = [r for r in self.records if r["score"] is not None and not r["refused"]]
        if not valid:
            return None
        largest = max(r["size"] for r in valid)
        full = [r for r in valid if r["size"] == largest]
        return max(full, key=lambda r: r["score"])["program"]  # first of the best on ties

    def history(self) -> list[dict[str, Any]]:
        return [{k: v for k, v in r.items() if k != "program"} for r in self.records]


def _copro_size(budget: int, n_train: int) -> tuple[int, int]:
    """(breadth, depth): the largest COPRO that the budget should cover.

    Estimated calls, with DSPy's memory cache sparing unchanged predictors: the initial
    program on the train set (3N), per predictor breadth-1 proposals (one n=breadth-1
    request), and per candidate of a hint predictor 2N calls (that hint and final), of the
    final predictor N calls; each further depth proposes `breadth` more per predictor.
    """

    def cost(breadth: int, depth: int) -> int:
        first = 3 * n_train + 3 * (breadth - 1) + (breadth - 1) * 5 * n_train
        return first + (depth - 1) * (3 * breadth + breadth * 5 * n_train)

    breadth = 2
    while breadth < 10 and cost(breadth + 1, 1) <= budget:
        breadth += 1
    depth = 1
    while breadth == 10 and depth < 3 and cost(breadth, depth + 1) <= budget:
        depth += 1
    return breadth, depth


def _mipro_size(
    budget: int, n_train: int, n_val: int, candidates: int, minibatch: int, demos: bool
) -> int:
    """Trials that fit the budget after MIPROv2's fixed costs (estimates, upper bounds)."""
    fixed = 3 * n_val  # the initial program on the full val set
    fixed += 3 * n_train if demos else 0  # bootstrapping demos (repeats are memory-cached)
    # Proposals: per predictor and candidate a program description, a module description
    # and the instruction (measured: 3 calls of the 1.5B each); the data summary.
    fixed += 3 * 3 * candidates + math.ceil(n_train / 10) + 1
    per_trial = 3 * minibatch + (3 * n_val) / 5  # a minibatch; a full eval every 5 trials
    return max(1, int((budget - fixed) // per_trial))


def _bootstrap_rs_size(budget: int, n_train: int, n_val: int) -> int:
    """`num_candidate_programs` that the budget should cover (estimates). The zero-shot
    and labelled-only programs are scored on val (3 calls per item each); every
    bootstrapped candidate (the unshuffled one and `num_candidate_programs` shuffled ones)
    runs the teacher over part of the training set until it has its demos (about half of
    it, measured nowhere yet: an estimate) and is scored on val."""
    fixed = 2 * 3 * n_val
    per_candidate = 3 * n_val + 3 * n_train // 2
    return max(0, (budget - fixed) // per_candidate - 1)


def run(task: TaskFile, result: AdapterResult, optimizer: str) -> None:
    options = task.options
    proxy = task.proxy
    result.optimizer = {
        "copro": "COPRO",
        "miprov2": "MIPROv2",
        "gepa": "GEPA",
        "bootstrap-rs": "BootstrapFewShotWithRandomSearch",
        "none": "none (the initial program)",
    }[optimizer]
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=True)

    def lm(phase: str, model: str, **kwargs: Any) -> Any:
        return dspy.LM(
            f"openai/{model}",
            api_base=task.base_url(phase),
            api_key=task.api_key,
            timeout=UPSTREAM_TIMEOUT_S,
            num_retries=2,
            **kwargs,
        )

    forward_lm = lm(
        "optimize", task.forward_model, temperature=0.0, max_tokens=task.max_tokens("final")
    )
    prompt_lm = lm("optimize", task.optimizer_model, max_tokens=task.optimizer_max_tokens)
    recorder = EvalRecorder(proxy)
    # A budget refusal or a reply DSPy cannot parse fails one example (score 0); DSPy's
    # default of 10 errors per evaluation would abort the whole optimizer instead.
    dspy.configure(lm=forward_lm, callbacks=[recorder], max_errors=1_000_000)

    max_tokens = {node: task.max_tokens(node) for node in NODES}
    student = HintGraph(task.instructions, max_tokens)
    train = [
        dspy.Example(question=i.question, answer=i.target, id=i.id).with_inputs("question")
        for i in task.items("train")
    ]
    val = [
        dspy.Example(question=i.question, answer=i.target, id=i.id).with_inputs("question")
        for i in task.items("val")
    ]

    def metric(gold: Any, pred: Any, trace: Any = None, *rest: Any) -> float:
        return proxy.score(gold.id, str(getattr(pred, "solution", "") or "")).value

    def feedback_metric(
        gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None
    ) -> Any:
        verdict = proxy.score(gold.id, str(getattr(pred, "solution", "") or ""))
        return dspy.Prediction(score=verdict.value, feedback=verdict.feedback)

    clock = Clock()
    threads = task.concurrency
    program: Any = None
    failure = ""
    try:
        if optimizer == "none":
            program = student
            result.settings = {}
        elif optimizer == "copro":
            breadth, depth = _copro_size(task.budget, len(train))
            breadth = int(options.get("breadth", breadth))
            depth = int(options.get("depth", depth))
            result.settings = {
                "breadth": breadth,
                "depth": depth,
                "init_temperature": 1.4,
                "trainset": "train",
            }
            teleprompter = dspy.COPRO(
                prompt_model=prompt_lm, metric=metric, breadth=breadth, depth=depth
            )
            program = teleprompter.compile(
                student,
                trainset=train,
                eval_kwargs={"num_threads": threads, "display_progress": False},
            )
        elif optimizer == "miprov2":
            candidates = int(options.get("num_candidates", 3))
            demos = int(options.get("demos", 2))
            minibatch = min(int(options.get("minibatch_size", 5)), len(val))
            trials = int(
                options.get(
                    "num_trials",
                    _mipro_size(
                        task.budget, len(train), len(val), candidates, minibatch, demos > 0
                    ),
                )
            )
            result.settings = {
                "auto": None,
                "num_candidates": candidates,
                "num_trials": trials,
                "max_bootstrapped_demos": demos,
                "max_labeled_demos": demos,
                "minibatch_size": minibatch,
            }
            teleprompter = dspy.MIPROv2(
                metric=metric,
                prompt_model=prompt_lm,
                task_model=forward_lm,
                auto=None,
                num_candidates=candidates,
                max_bootstrapped_demos=demos,
                max_labeled_demos=demos,
                num_threads=threads,
                seed=task.seed,
                max_errors=1_000_000,
                verbose=False,
            )
            program = teleprompter.compile(
                student,
                trainset=train,
                valset=val,
                num_trials=trials,
                minibatch=minibatch < len(val),
                minibatch_size=minibatch,
            )
        elif optimizer == "bootstrap-rs":
            demos = int(options.get("demos", 2))
            candidates = int(
                options.get(
                    "num_candidate_programs", _bootstrap_rs_size(task.budget, len(train), len(val))
                )
            )
            result.settings = {
                "max_bootstrapped_demos": demos,
                "max_labeled_demos": demos,
                "num_candidate_programs": candidates,
                "valset": "val",
            }
            teleprompter = dspy.BootstrapFewShotWithRandomSearch(
                metric=metric,
                max_bootstrapped_demos=demos,
                max_labeled_demos=demos,
                num_candidate_programs=candidates,
                num_threads=threads,
                max_errors=1_000_000,
            )
            program = teleprompter.compile(student, trainset=train, valset=val)
        else:
            max_metric_calls = int(options.get("max_metric_calls", task.budget // 3))
            result.settings = {"max_metric_calls": max_metric_calls, "reflection_minibatch_size": 3}
            teleprompter = dspy.GEPA(
                metric=feedback_metric,
                max_metric_calls=max_metric_calls,
                reflection_lm=prompt_lm,
                num_threads=threads,
                seed=task.seed,
                track_stats=False,
            )
            program = teleprompter.compile(student, trainset=train, valset=val)
    except Exception as exc:
        # The test set is still predicted, with the best program the optimizer had fully
        # evaluated (else the initial one), so a failure has an accuracy beside its error.
        if proxy.remaining("optimize") == 0 or is_budget_error(exc):
            result.notes.append(f"stopped by the budget: {error_text(exc, 600)}")
        else:
            failure = error_text(exc)
        program = recorder.best()
        result.notes.append(
            "the optimizer raised; the test set is predicted with "
            + ("the best program it had evaluated" if program else "the initial program")
        )
        program = program or student
    result.budget_exhausted = proxy.remaining("optimize") == 0
    result.optimize_seconds = clock.seconds()
    result.optimized = describe(program)
    result.history = recorder.history()

    clock = Clock()
    test_lm = lm("test", task.forward_model, temperature=0.0, max_tokens=task.max_tokens("final"))
    dspy.configure(lm=test_lm, callbacks=[])
    for name in NODES:
        getattr(program, name).lm = None  # every predictor on the test endpoint

    def predict(item: Item) -> str:
        return str(program(question=item.question).solution or "")

    result.predictions = predict_all(task.items("test"), predict, threads=threads)
    result.test_seconds = clock.seconds()
    result.status = "failed" if failure else "ok"
    result.error = failure


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("out")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, required=True)
    args = parser.parse_args()
    sys.argv = [sys.argv[0], args.task, args.out]
    return adapter_main(
        lambda task, result: run(task, result, args.optimizer),
        "dspy",
        ["dspy", "litellm", "openai", "gepa", "optuna"],
    )


if __name__ == "__main__":
    raise SystemExit(main())
