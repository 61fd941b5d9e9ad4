from __future__ import annotations

import asyncio
import re

from hypothesis import given
from hypothesis import strategies as st

from semgrad.autograd.backward import (
    BackwardResult,
    aggregate,
    backward,
    backward_many,
    final_feedback,
    gradient_messages,
    parse_feedback,
)
from semgrad.evaluation.metrics import Score
from semgrad.execution import RunContext, forward
from semgrad.graph import FunctionNode, Graph, LLMNode, Parameter, hint_graph
from semgrad.graph.core import GradientEntry
from semgrad.llm.fakes import EchoLLM, ScriptedLLM
from semgrad.llm.types import Request, Response


def reply_per_input(request: Request) -> str:
    """A backward model that names each input it was shown, by its index."""
    text = request.messages[-1].content
    indices = sorted({int(i) for i in re.findall(r"<feedback_(\d+)>\.\.\.", text)})
    return " ".join(
        f"<feedback_{i}>fix input {i} of {request.node}</feedback_{i}>" for i in indices
    )


def run_forward(graph: Graph) -> tuple[RunContext, object]:
    back = ScriptedLLM(reply_per_input)
    ctx = RunContext(llms={"forward": EchoLLM(), "backward": back})
    trace = asyncio.run(forward(graph, {"question": "What is 2+2?"}, ctx))
    return ctx, trace


def test_neighbors_one_call_sees_all_siblings() -> None:
    g = hint_graph(2)
    ctx, trace = run_forward(g)
    result = asyncio.run(backward(g, trace, 'The expected output is: "4".', ctx))  # type: ignore[arg-type]
    assert len(result.calls) == 1
    call = result.calls[0]
    assert call.successor == "final" and call.inputs == ("hint_1", "hint_2")
    prompt = call.prompt[0].content
    assert "Input 1:" in prompt and "Input 2:" in prompt and "What is 2+2?" in prompt
    assert 'The expected output is: "4".' in prompt
    nodes = trace.nodes  # type: ignore[attr-defined]
    assert nodes["final"].grad == ['The expected output is: "4".']
    assert nodes["hint_1"].grad == ["fix input 1 of final"]
    assert nodes["hint_2"].grad == ["fix input 2 of final"]
    back = ctx.llm("backward")
    assert all(r.phase == "backward" for r in back.requests)  # type: ignore[attr-defined]


def test_independent_one_call_per_input_without_siblings() -> None:
    g = hint_graph(2)
    ctx, trace = run_forward(g)
    hint_texts = {n: trace.nodes[n].value for n in ("hint_1", "hint_2")}  # type: ignore[attr-defined]
    result = asyncio.run(backward(g, trace, "wrong", ctx, mode="independent"))  # type: ignore[arg-type]
    assert [c.inputs for c in result.calls] == [("hint_1",), ("hint_2",)]
    for call in result.calls:
        (own,) = call.inputs
        other = "hint_2" if own == "hint_1" else "hint_1"
        content = call.prompt[0].content
        assert hint_texts[own].split("Instruction:")[-1].strip()[:40] in content
        assert "Input 1:" not in content and "Input:" in content
        assert other not in content or hint_texts[other] not in content
    assert trace.nodes["hint_1"].grad == ["fix input 1 of final"]  # type: ignore[attr-defined]


def test_missing_block_is_an_empty_recorded_gradient() -> None:
    g = hint_graph(2)
    trace = asyncio.run(forward(g, {"question": "q"}, RunContext(llms={"forward": EchoLLM()})))
    back = ScriptedLLM(["<feedback_2>only the second</feedback_2> and some chatter"])
    ctx = RunContext(llms={"forward": EchoLLM(), "backward": back})
    result = asyncio.run(backward(g, trace, "wrong", ctx))
    assert result.calls[0].missing == ("hint_1",)
    assert trace.nodes["hint_1"].grad == []
    assert trace.nodes["hint_2"].grad == ["only the second"]


def test_function_nodes_pass_gradients_through_and_chains_propagate() -> None:
    g = Graph(
        ["question"],
        [
            LLMNode("plan", ("question",), Parameter("plan")),
            LLMNode("solve", ("question", "plan"), Parameter("solve")),
            FunctionNode("answer", ("solve",), "identity"),
        ],
        "answer",
    )
    ctx, trace = run_forward(g)
    result = asyncio.run(backward(g, trace, "expected 4", ctx))  # type: ignore[arg-type]
    nodes = trace.nodes  # type: ignore[attr-defined]
    assert nodes["solve"].grad == ["expected 4"]
    assert nodes["plan"].grad == ["fix input 1 of solve"]
    assert [c.successor for c in result.calls] == ["solve"]  # plan has no node inputs


def test_diamond_aggregates_in_successor_order_without_duplicates() -> None:
    g = Graph(
        ["question"],
        [
            LLMNode("root", ("question",), Parameter("r")),
            LLMNode("left", ("root",), Parameter("l")),
            LLMNode("right", ("root",), Parameter("r2")),
            LLMNode("top", ("left", "right"), Parameter("t")),
        ],
        "top",
    )

    def reply(request: Request) -> str:
        text = request.messages[-1].content
        n = len(re.findall(r"<feedback_(\d+)>\.\.\.", text))
        same = "be shorter" if request.node in ("left", "right") else None
        return " ".join(
            f"<feedback_{i}>{same or f'{request.node} {i}'}</feedback_{i}>" for i in range(1, n + 1)
        )

    ctx = RunContext(llms={"forward": EchoLLM(), "backward": ScriptedLLM(reply)})
    trace = asyncio.run(forward(g, {"question": "q"}, ctx))
    asyncio.run(backward(g, trace, "wrong", ctx))
    assert trace.nodes["left"].grad == ["top 1"]
    assert trace.nodes["right"].grad == ["top 2"]
    assert trace.nodes["root"].grad == ["be shorter"]  # same message from both: kept once


def test_independent_calls_run_concurrently() -> None:
    g = hint_graph(4)
    back = ScriptedLLM(reply_per_input, delay=0.05)
    ctx = RunContext(llms={"forward": EchoLLM(), "backward": back})
    trace = asyncio.run(forward(g, {"question": "q"}, ctx))
    import time

    t0 = time.perf_counter()
    asyncio.run(backward(g, trace, "wrong", ctx, mode="independent"))
    assert time.perf_counter() - t0 < 0.15  # four 50 ms calls at once, not 200 ms


def test_failed_nodes_get_no_backward_call() -> None:
    g = hint_graph(2)
    fwd = ScriptedLLM(lambda r: "" if r.node == "final" else "hint")
    ctx = RunContext(llms={"forward": fwd, "backward": ScriptedLLM(reply_per_input)})
    trace = asyncio.run(forward(g, {"question": "q"}, ctx))
    result = asyncio.run(backward(g, trace, "failed", ctx))
    assert result.calls == []
    assert trace.nodes["hint_1"].grad == []


def test_backward_accumulates_entries_on_the_parameters() -> None:
    g = hint_graph(2)
    ctx, t1 = run_forward(g)
    _, t2 = run_forward(g)
    t2.example_id = "second"  # type: ignore[attr-defined]
    asyncio.run(backward(g, t1, Score(0.0, "a", "3"), ctx))  # type: ignore[arg-type]
    asyncio.run(backward(g, t2, "b", ctx))  # type: ignore[arg-type]
    final = g.nodes["final"].instruction  # type: ignore[union-attr]
    assert [e.messages for e in final.grad] == [("a",), ("b",)]
    first = final.grad[0]
    assert isinstance(first, GradientEntry)
    assert first.example_id == "input" and first.node == "final" and first.about == "output"
    assert first.output == t1.nodes["final"].value  # type: ignore[attr-defined]
    assert set(first.inputs) == {"question", "hint_1", "hint_2"}
    assert first.score == 0.0 and first.correct is False and first.answer_found is True
    assert final.grad[1].score is None and final.grad[1].correct is None  # text feedback only
    hint = g.nodes["hint_1"].instruction  # type: ignore[union-attr]
    assert [e.messages for e in hint.grad] == [("fix input 1 of final",)] * 2
    assert gradient_messages(final) == ["a", "b"]
    assert gradient_messages(hint) == ["fix input 1 of final"]  # de-duplicated
    # An upstream node's entry keeps the metric's word on the final answer beside its own
    # gradient (the search's optimizer shows both); the output node's gradient is that word.
    assert [e.final for e in hint.grad] == ["a", "b"]
    assert [e.final for e in final.grad] == [None, None]
    assert hint.grad[0].to_dict()["final"] == "a" and "final" not in first.to_dict()
    g.zero_grad()
    assert final.grad == [] and hint.grad == []
    # The trace keeps the variable gradients for the report.
    assert t1.nodes["hint_1"].grad == ["fix input 1 of final"]  # type: ignore[attr-defined]


def test_frozen_parameters_get_no_entries() -> None:
    g = hint_graph(2)
    g.nodes["hint_2"].instruction.requires_grad = False  # type: ignore[union-attr]
    ctx, trace = run_forward(g)
    asyncio.run(backward(g, trace, "a", ctx))  # type: ignore[arg-type]
    assert g.nodes["hint_2"].instruction.grad == []  # type: ignore[union-attr]
    assert len(g.nodes["hint_1"].instruction.grad) == 1  # type: ignore[union-attr]


class SlowOnFirst(ScriptedLLM):
    """Answers the first question's backward call last."""

    async def complete(self, request: Request) -> Response:
        if "first question" in request.messages[-1].content:
            await asyncio.sleep(0.05)
        return await super().complete(request)


def test_backward_many_accumulates_in_batch_order_whatever_finishes_first() -> None:
    g = hint_graph(1)
    back = SlowOnFirst(reply_per_input)
    ctx = RunContext(llms={"forward": EchoLLM(), "backward": back})

    async def go() -> list[BackwardResult]:
        traces = []
        for i, q in enumerate(["first question", "second question", "third question"]):
            t = await forward(g, {"question": q}, ctx)
            t.example_id = f"ex{i}"
            traces.append(t)
        return await backward_many(g, traces, ["f0", "f1", "f2"], ctx)

    results = asyncio.run(go())
    assert "first question" in back.requests[-1].messages[-1].content  # it did finish last
    assert [r.example_id for r in results] == ["ex0", "ex1", "ex2"]
    entries = g.nodes["hint_1"].instruction.grad  # type: ignore[union-attr]
    assert [e.example_id for e in entries] == ["ex0", "ex1", "ex2"]
    final = g.nodes["final"].instruction.grad  # type: ignore[union-attr]
    assert [e.messages for e in final] == [("f0",), ("f1",), ("f2",)]


def test_final_feedback_labels_the_feedback_as_on_the_final_answer() -> None:
    g = hint_graph(2)
    _, trace = run_forward(g)
    final_feedback(g, trace, Score(0.0, "expected 4", ""))  # type: ignore[arg-type]
    hint = g.nodes["hint_1"].instruction.grad  # type: ignore[union-attr]
    final = g.nodes["final"].instruction.grad  # type: ignore[union-attr]
    assert [(e.about, e.messages) for e in hint] == [("final_answer", ("expected 4",))]
    assert [(e.about, e.messages) for e in final] == [("output", ("expected 4",))]
    assert hint[0].answer_found is False
    assert hint[0].final is None  # the feedback is the final answer's already
    nodes = trace.nodes  # type: ignore[attr-defined]
    assert nodes["final"].grad == ["expected 4"] and nodes["hint_1"].grad == []
    # Not a gradient of the hint: the step record's "gradients" leave it out.
    assert gradient_messages(g.nodes["hint_1"].instruction) == []  # type: ignore[union-attr]


def test_parse_feedback_never_confuses_1_and_10() -> None:
    reply = "".join(f"<feedback_{i}>m{i}</feedback_{i}>" for i in (10, 2, 1))
    assert parse_feedback(reply, 10) == {1: "m1", 2: "m2", 10: "m10"}
    assert parse_feedback("<feedback_10>only ten</feedback_10>", 10) == {10: "only ten"}
    # A forgotten closing tag ends at the next block or the end of the reply.
    assert parse_feedback("<feedback_1>a <feedback_2>b", 2) == {1: "a", 2: "b"}
    assert parse_feedback("no tags at all", 3) == {}


def test_parse_feedback_reads_the_last_block_not_an_echoed_template() -> None:
    # The backward model echoed the requested format before answering (issue 9).
    reply = (
        "Format:\n<feedback_1>...</feedback_1>\n<feedback_2>...</feedback_2>\n\n"
        "<feedback_1>Count the cows.</feedback_1>\n<feedback_2>Add the goats.</feedback_2>"
    )
    assert parse_feedback(reply, 2) == {1: "Count the cows.", 2: "Add the goats."}
    # Only the placeholder: no message at all, never "...".
    assert parse_feedback("<feedback_1>...</feedback_1>", 1) == {}
    # A block mentioned in prose and then given: the later opening tag starts the block.
    assert parse_feedback("I write <feedback_1> then <feedback_1>real</feedback_1>", 1) == {
        1: "real"
    }


@given(st.lists(st.text(alphabet="ab \n", max_size=4), max_size=12))
def test_aggregate_is_ordered_unique_and_non_empty(messages: list[str]) -> None:
    out = aggregate(messages)
    assert all(m and m == m.strip() for m in out)
    assert len(out) == len(set(out))
    stripped = [m.strip() for m in messages if m.strip()]
    assert out == list(dict.fromkeys(stripped))
