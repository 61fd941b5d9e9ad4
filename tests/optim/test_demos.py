"""Demonstrations: harvested only from successful traces, labelled demos the metric scores 1,
seeded selection, set on a copy."""

from __future__ import annotations

import random
import re

import pytest

from semgrad._sync import run_sync
from semgrad.data.example import Example
from semgrad.errors import GraphError, LLMHTTPError
from semgrad.evaluation.evaluator import evaluate
from semgrad.evaluation.metrics import (
    ChoiceMatch,
    ExactMatch,
    LabelMatch,
    NumericMatch,
    format_target,
)
from semgrad.execution.context import RunContext
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo, FunctionNode, Graph, LLMNode, Parameter
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.demos import (
    DemoPool,
    ateach,
    ateacher_results,
    demo_rng,
    harvest,
    labelled,
    select,
    teacher_context,
    with_demos,
)

# "n: 7" → the right answer is 2*n; the forward model gets odd n right, even n wrong,
# and fails the call for n = 5.
EXAMPLES = [Example(f"e{n}", {"question": f"n: {n}"}, str(2 * n)) for n in range(1, 8)]


def _n(request: Request) -> int:
    return int(re.findall(r"n: (\d+)", request.messages[-1].content)[-1])


def forward(request: Request) -> str:
    n = _n(request)
    if request.node != "final":
        return f"{request.node} says n is {n}"
    if n == 5:
        raise LLMHTTPError(400, "the server failed this request")
    return f"Answer: {2 * n if n % 2 else 0}"


def _results(llm: ScriptedLLM | None = None) -> tuple[object, ...]:
    ctx = RunContext({"forward": llm or ScriptedLLM(forward)})
    return evaluate(hint_graph(2), EXAMPLES, NumericMatch(), ctx).results


def test_harvest_takes_only_successful_traces_for_every_llm_node() -> None:
    graph = hint_graph(2)
    results = _results()
    pool = harvest(results, graph)  # type: ignore[arg-type]
    # Right: n = 1, 3, 7 (5 errored, even n wrong); every LLM node gets one demo each.
    assert pool.nodes == ("hint_1", "hint_2", "final")
    assert [d.output for d in pool.get("final")] == ["Answer: 2", "Answer: 6", "Answer: 14"]
    assert [d.inputs["question"] for d in pool.get("hint_1")] == ["n: 1", "n: 3", "n: 7"]
    first = pool.get("final")[0]
    assert list(first.inputs) == ["question", "hint_1", "hint_2"]
    assert first.inputs["hint_2"] == "hint_2 says n is 1"


def test_harvest_never_uses_an_errored_example_even_if_scored_1() -> None:
    graph = hint_graph(1)
    results = list(_results())  # type: ignore[arg-type]
    errored = next(r for r in results if r.example.id == "e5")  # type: ignore[attr-defined]
    from dataclasses import replace

    from semgrad.evaluation.metrics import Score

    results.append(replace(errored, score=Score(1.0, "claims correct")))
    pool = harvest(results, graph)  # type: ignore[arg-type]
    assert all(d.inputs["question"] != "n: 5" for d in pool.get("hint_1"))


def test_harvest_of_nothing_right_is_empty() -> None:
    pool = harvest(_results(ScriptedLLM(lambda r: "Answer: 0")), hint_graph(2))  # type: ignore[arg-type]
    assert len(pool) == 0 and pool.nodes == ()


def test_sample_is_seeded_bounded_and_in_pool_order() -> None:
    demos = tuple(Demo({"question": f"q{i}"}, f"a{i}") for i in range(10))
    pool = DemoPool({"final": demos})
    a = pool.sample("final", 3, demo_rng(0, 1, "final"))
    b = pool.sample("final", 3, demo_rng(0, 1, "final"))
    assert a == b and len(a) == 3
    assert list(a) == sorted(a, key=demos.index)  # pool order, not draw order
    draws = {pool.sample("final", 3, demo_rng(0, s, "final")) for s in range(8)}
    assert len(draws) > 1  # the step changes the draw
    assert pool.sample("final", 20, random.Random(0)) == demos
    assert pool.sample("other", 3, random.Random(0)) == ()
    assert select(pool, seed=0, step=1) == {"final": a}


def test_with_demos_sets_demos_on_a_copy_only() -> None:
    graph = hint_graph(1)
    demo = Demo({"hint_1": "h", "question": "q"}, "Answer: 1")
    out = with_demos(graph, {"final": [demo]})
    assert graph.demos("final") == ()
    assert out.demos("final") == (Demo({"question": "q", "hint_1": "h"}, "Answer: 1"),)
    assert list(out.demos("final")[0].inputs) == ["question", "hint_1"]  # node order
    with pytest.raises(GraphError, match="exactly the node's inputs"):
        with_demos(graph, {"final": [Demo({"question": "q"}, "x")]})
    with pytest.raises(GraphError, match="no node"):
        with_demos(graph, {"nope": [demo]})


@pytest.mark.parametrize(
    ("metric", "target", "reply"),
    [
        (NumericMatch(), "18", "Answer: 18"),
        (NumericMatch(), "1,000", "Answer: 1,000"),
        (ExactMatch(), "Paris", "Answer: Paris"),
        (ChoiceMatch(), "(B)", "Answer: (B)"),
        (LabelMatch(labels=("true", "false")), "false", "Answer: false"),
    ],
)
def test_format_target_is_a_reply_its_metric_scores_1(
    metric: object, target: str, reply: str
) -> None:
    example = Example("x", {"question": "q"}, target)
    assert format_target(metric, example) == reply  # type: ignore[arg-type]
    assert metric(reply, example).value == 1.0  # type: ignore[operator]


def test_format_target_gives_none_when_the_metric_scores_no_form_1() -> None:
    def never(prediction: str, example: Example) -> object:
        from semgrad.evaluation.metrics import Score

        return Score(0.0, "never")

    class Never:
        name = "never"
        __call__ = staticmethod(never)

    assert format_target(Never(), Example("x", {"q": "q"}, "1")) is None  # type: ignore[arg-type]
    assert format_target(NumericMatch(), Example("x", {"q": "q"}, "  ")) is None


def test_labelled_demos_score_1_and_use_real_hints() -> None:
    graph = hint_graph(2)
    results = _results(ScriptedLLM(lambda r: "Answer: 0" if r.node == "final" else "a hint"))
    metric = NumericMatch()
    pool = labelled(EXAMPLES[:3], graph, metric, results)  # type: ignore[arg-type]
    assert pool.nodes == ("final",)
    demos = pool.get("final")
    assert [d.output for d in demos] == ["Answer: 2", "Answer: 4", "Answer: 6"]
    for demo, example in zip(demos, EXAMPLES, strict=False):
        assert metric(demo.output, example).value == 1.0
        assert demo.inputs == {
            "question": example.inputs["question"],
            "hint_1": "a hint",
            "hint_2": "a hint",
        }
    # Without traces, a node with predecessor inputs gets no invented hints: no demos.
    assert labelled(EXAMPLES[:3], graph, metric).get("final") == ()
    # A one-node graph needs no trace.
    single = Graph(["question"], [LLMNode("final", ("question",), Parameter("Solve."))], "final")
    assert len(labelled(EXAMPLES[:3], single, metric).get("final")) == 3


def test_labelled_drops_a_target_its_metric_cannot_score_1() -> None:
    single = Graph(["question"], [LLMNode("final", ("question",), Parameter("Solve."))], "final")
    examples = [Example("a", {"question": "q"}, "yes"), Example("b", {"question": "q2"}, "")]
    assert [d.output for d in labelled(examples, single, ExactMatch()).get("final")] == [
        "Answer: yes"
    ]


def _function_output_graph() -> Graph:
    """An LLM node whose output a function node returns (the output node is no LLM)."""
    return Graph(
        ["question"],
        [
            LLMNode("solve", ("question",), Parameter("Solve.")),
            FunctionNode("answer", ("solve",), "identity"),
        ],
        "answer",
    )


def test_labelled_for_a_function_output_node_is_empty() -> None:
    graph = _function_output_graph()
    assert len(labelled(EXAMPLES, graph, NumericMatch())) == 0


def test_teacher_traces_come_from_the_teacher_model() -> None:
    student = ScriptedLLM(lambda r: "Answer: 0")
    teacher = ScriptedLLM(forward)
    ctx = RunContext({"forward": student, "teacher": teacher})
    assert teacher_context(ctx).llm("forward") is teacher
    graph = hint_graph(1)
    results = run_sync(ateacher_results(graph, EXAMPLES[:3], NumericMatch(), ctx))
    assert not student.requests and teacher.requests
    assert [d.output for d in harvest(results, graph).get("final")] == ["Answer: 2", "Answer: 6"]


def test_the_teacher_answers_the_output_node_with_what_it_read_in_the_trace() -> None:
    """`ateach`: one teacher call per example, for the output node only, with the hints of
    the student's own trace and no demos; only answers the metric scores 1 and that were
    not cut off become demos; an errored example is not asked."""
    graph = hint_graph(2)
    results = _results()  # the student: odd n right, even n wrong, n = 5 errored

    def teacher_reply(request: Request) -> str:
        n = _n(request)
        if n == 4:
            return "Answer: 1"  # wrong: no demo
        if n == 6:
            return "Answer: 12 " + "and more " * 40  # right, but cut off at max_tokens
        return f"I count {n} twice. Answer: {2 * n}"

    teacher = ScriptedLLM(teacher_reply, honour_max_tokens=True)
    student = ScriptedLLM(forward)
    ctx = RunContext({"forward": student, "teacher": teacher})
    slim = graph.copy()
    slim.nodes["final"].max_tokens = 12  # type: ignore[union-attr]
    slim.set_demos("final", [Demo({"question": "n: 9", "hint_1": "a", "hint_2": "b"}, "x")])
    demos = run_sync(ateach(slim, results, NumericMatch(), ctx))  # type: ignore[arg-type]
    assert not student.requests
    asked = sorted(_n(r) for r in teacher.requests)
    assert asked == [1, 2, 3, 4, 6, 7]  # not 5 (errored)
    for r in teacher.requests:
        assert r.node == "final" and r.phase == "teacher"
        assert len(r.messages) == 1  # no demo turns: the answer does not depend on them
        assert f"hint_1 says n is {_n(r)}" in r.messages[0].content  # the trace's hint
    assert [d.output for d in demos] == [f"I count {n} twice. Answer: {2 * n}" for n in (1, 2, 3, 7)]
    assert demos[1].inputs == {
        "question": "n: 2",
        "hint_1": "hint_1 says n is 2",
        "hint_2": "hint_2 says n is 2",
    }


def test_the_teacher_gives_no_demos_for_a_function_output_node() -> None:
    graph = _function_output_graph()
    teacher = ScriptedLLM(lambda r: "never")
    ctx = RunContext({"forward": ScriptedLLM(forward), "teacher": teacher})
    results = evaluate(graph, EXAMPLES[:2], NumericMatch(), ctx).results
    assert run_sync(ateach(graph, results, NumericMatch(), ctx)) == ()
    assert teacher.requests == []


def test_the_teacher_is_scored_as_the_evaluator_scores_a_plain_function_metric() -> None:
    """`sg.fit` accepts a metric that returns a bool (or a number): the teacher's answers
    are scored through the same resolution as the evaluator's, not called for `.value`."""

    def right(prediction: str, example: Example) -> bool:
        return prediction.strip().endswith(example.target)

    graph = hint_graph(1)
    ctx = RunContext(
        {"forward": ScriptedLLM(forward), "teacher": ScriptedLLM(lambda r: str(2 * _n(r)))}
    )
    results = evaluate(graph, EXAMPLES[:3], right, ctx).results
    demos = run_sync(ateach(graph, results, right, ctx))
    assert [d.output for d in demos] == ["2", "4", "6"]
