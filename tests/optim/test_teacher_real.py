"""The teacher with the real embedded models (slow tier: `-m real`). Fails, not skips, when
a model is missing; uses its own response cache, so the models really run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semgrad.data.tasks import load_task
from semgrad.evaluation.evaluator import ExampleResult, aevaluate
from semgrad.evaluation.metrics import task_metric
from semgrad.execution import RunContext
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo
from semgrad.llm.cache import Cache
from semgrad.llm.local import LocalLLM
from semgrad.llm.meter import Meter
from semgrad.llm.record import RecordingLLM, RequestLog
from semgrad.llm.stack import build_llm
from semgrad.optim.demos import ateach

pytestmark = pytest.mark.real


def test_the_1_5b_teacher_answers_the_0_5b_s_output_node_and_its_right_answers_are_demos(
    tmp_path: Path,
) -> None:
    """The 0.5B runs the 2-node hint graph on 4 bundled arithmetic problems; the 1.5B, as
    teacher, answers the output node of each with the 0.5B's own hint. Every demo is a
    teacher reply the metric scores 1, carrying the hint the 0.5B wrote, and the teacher's
    requests are real calls of phase ``teacher`` to the 1.5B only."""
    task = load_task("arith:train")
    examples = task.examples[:4]
    metric = task_metric(task)
    cache = Cache(tmp_path / "cache.sqlite")
    meter = Meter()
    log = RequestLog()
    student = LocalLLM("qwen2.5-coder-0.5b")
    teacher = LocalLLM("qwen2.5-coder-1.5b")
    ctx = RunContext(
        llms={
            "forward": RecordingLLM(build_llm(student, cache=cache, meter=meter), log),
            "teacher": RecordingLLM(build_llm(teacher, cache=cache, meter=meter), log),
        }
    )
    graph = hint_graph(1)

    async def go() -> tuple[tuple[ExampleResult, ...], tuple[Demo, ...]]:
        try:
            results = (await aevaluate(graph, examples, metric, ctx)).results
            return (results, await ateach(graph, results, metric, ctx))
        finally:
            await student.aclose()
            await teacher.aclose()

    results, demos = asyncio.run(go())
    cache.close()
    spend = meter.snapshot().by_phase()
    # Real calls (a fresh cache): 2 per example for the 0.5B, one per example for the teacher.
    assert spend["forward"].calls == 8
    assert spend["teacher"].calls == 4
    taught = [e for e in log if e.phase == "teacher"]
    assert len(taught) == 4 and not any(e.cached for e in taught)
    assert {e.node for e in taught} == {"final"}
    assert {e.fields["model"] for e in taught} == {"qwen2.5-coder-1.5b"}
    assert {e.fields["model"] for e in log if e.phase != "teacher"} == {"qwen2.5-coder-0.5b"}
    assert demos, "the 1.5B got none of 4 easy arithmetic problems right"
    by_question = {r.example.inputs["question"]: r for r in results}
    for demo in demos:
        result = by_question[demo.inputs["question"]]
        assert demo.inputs["hint_1"] == result.trace.nodes["hint_1"].value
        assert metric(demo.output, result.example).value == 1.0
