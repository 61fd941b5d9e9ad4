from __future__ import annotations

import json
from pathlib import Path

from semgrad.data.example import Example
from semgrad.errors import LLMHTTPError
from semgrad.evaluation.evaluator import evaluate, is_error, write_jsonl
from semgrad.evaluation.metrics import NumericMatch
from semgrad.execution import RunContext
from semgrad.graph import hint_graph
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.meter import Meter
from semgrad.llm.stack import build_llm
from semgrad.llm.types import Request


def test_evaluate_scores_counts_errors_and_meters() -> None:
    def reply(request: Request) -> str:
        text = request.messages[-1].content
        if request.node != "final":
            return "a hint"
        if "q3" in text:
            return ""  # an empty reply: what the model answered, a wrong answer
        if "q4" in text:
            raise LLMHTTPError(503, "overloaded")  # a failed call: an error
        return "Answer: 4" if "q1" in text or "q2" in text else "Answer: 5"

    meter = Meter()
    llm = build_llm(ScriptedLLM(reply), meter=meter, retry=None)
    ctx = RunContext(llms={"forward": llm}, max_concurrency=3)
    examples = [Example(f"q{i}", {"question": f"q{i}: 2+2?"}, "4") for i in range(5)]
    seen: list[str] = []
    result = evaluate(
        hint_graph(2),
        examples,
        NumericMatch(),
        ctx,
        meter=meter,
        on_result=lambda r: seen.append(r.example.id),
    )
    assert [r.example.id for r in result.results] == [e.id for e in examples]
    assert sorted(seen) == sorted(e.id for e in examples)
    assert [r.score.value for r in result.results] == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert result.errors == 1 and result.score == 0.4 and result.error_rate == 0.2
    empty = result.results[3]
    assert empty.error and "empty reply" in empty.error
    assert not is_error(empty) and empty.to_dict()["errored"] is False
    errored = result.results[4]
    assert is_error(errored) and errored.to_dict()["errored"] is True
    assert result.first_error is errored
    assert errored.failed_call is not None and "HTTP 503" in errored.failed_call
    assert "The system failed" in errored.score.feedback
    assert result.usage is not None and result.usage.total().calls == 14
    summary = result.summary()
    assert summary["n"] == 5 and summary["errors"] == 1 and summary["usage"]["calls"] == 14


def test_write_jsonl_is_atomic_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "out" / "r.jsonl"
    write_jsonl(path, [{"a": 1}, {"b": "é"}])
    assert [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] == [
        {"a": 1},
        {"b": "é"},
    ]
    assert [p.name for p in path.parent.iterdir()] == ["r.jsonl"]  # no temporary file left


def test_a_cut_off_reply_is_counted_and_its_feedback_says_so() -> None:
    # The final reply of q1 is cut off in the middle of its working: the numeric metric
    # reads "4" from "2 + 2 = 4 ..." (the score is what the metric says), but the feedback
    # must say the reply stopped at max_tokens, so "4" is not taken for a finished answer.
    def reply(request: Request) -> str:
        if request.node != "final":
            return "a hint"
        if "q1" in request.messages[-1].content:
            return "2 + 2 = 4 so then " + "and " * 400 + "Answer: 5"
        return "Answer: 4"

    llm = ScriptedLLM(reply, honour_max_tokens=True)
    ctx = RunContext(llms={"forward": llm})
    examples = [Example(f"q{i}", {"question": f"q{i}: 2+2?"}, "4") for i in range(3)]
    result = evaluate(hint_graph(2), examples, NumericMatch(), ctx)
    cut = result.results[1]
    assert cut.trace.nodes["final"].truncated
    assert cut.score.value == 1.0  # documented: the value is the metric's verdict
    assert "The output is correct." in cut.score.feedback
    assert "The reply was cut off after max_tokens (320 tokens)" in cut.score.feedback
    assert "intermediate step" in cut.score.feedback
    for other in (result.results[0], result.results[2]):
        assert "cut off" not in other.score.feedback
        assert not other.trace.truncated
    assert result.truncated == 1 and result.summary()["truncated"] == 1
    assert cut.to_dict()["trace"]["truncated"] == ["final"]
