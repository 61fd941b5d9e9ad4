"""The optimizers on their own: they read only their parameters' gradients, and every
proposal passes the checks of ALGORITHMS.md §3c (issue 9's optimizer defects)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

from semgrad.autograd.backward import backward
from semgrad.evaluation.metrics import Score
from semgrad.execution import RunContext, Trace, forward
from semgrad.graph import Graph, hint_graph
from semgrad.graph.core import GradientEntry, Parameter
from semgrad.llm.fakes import EchoLLM, ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.optimizer import (
    NodeOptimizer,
    Proposal,
    SemanticGradientDescent,
    _copies_an_input,
    _copies_own_work,
    _echoes,
    parse_improved,
)
from semgrad.prompts import OptimizerExample, render_optimizer


def entry(
    output: str = "Answer: 13",
    messages: tuple[str, ...] = ('The expected output is: "42".',),
    *,
    question: str = "What is 6 times 7?",
    score: float | None = 0.0,
    example_id: str = "ex",
) -> GradientEntry:
    return GradientEntry(
        example_id=example_id,
        node="final",
        inputs={"question": question},
        output=output,
        messages=messages,
        score=score,
        answer_found=True,
    )


def propose_with(
    reply: str | Callable[[Request], str], entries: list[GradientEntry], **options: object
) -> tuple[Proposal, ScriptedLLM]:
    param = Parameter("Solve step by step.", name="final.instruction")
    param.grad.extend(entries)
    opt = SemanticGradientDescent([param], **options)  # type: ignore[arg-type]
    llm = ScriptedLLM(reply if callable(reply) else (lambda _r: reply))
    (proposal,) = asyncio.run(opt.propose(RunContext(llms={"optimizer": llm})))
    return proposal, llm


# -- the gradient's one home -------------------------------------------------------------------


def test_propose_reads_only_the_parameters_gradients() -> None:
    proposal, llm = propose_with("<improved>Multiply the numbers.</improved>", [entry()])
    assert proposal.ok and proposal.new == "Multiply the numbers."
    prompt = llm.requests[0].messages[0].content
    assert "Answer: 13" in prompt and 'The expected output is: "42".' in prompt
    assert llm.requests[0].node == "final"  # from the entry, not by splitting the name


def test_zero_grad_means_nothing_to_propose_from() -> None:
    param = Parameter("Solve.", name="final.instruction")
    param.grad.append(entry())
    opt = SemanticGradientDescent([param])
    opt.zero_grad()
    assert param.grad == []
    llm = ScriptedLLM([])
    assert asyncio.run(opt.propose(RunContext(llms={"optimizer": llm}))) == []
    assert llm.requests == []


def _hint_graph_trace() -> tuple[Graph, Trace, RunContext]:
    def back(request: Request) -> str:
        n = len(re.findall(r"<feedback_(\d+)>\.\.\.", request.messages[-1].content))
        return " ".join(f"<feedback_{i}>hint {i} misled</feedback_{i}>" for i in range(1, n + 1))

    def opt(request: Request) -> str:
        return "<improved>Give one short, correct fact about the question.</improved>"

    ctx = RunContext(
        llms={"forward": EchoLLM(), "backward": ScriptedLLM(back), "optimizer": ScriptedLLM(opt)}
    )
    g = hint_graph(2)
    trace = asyncio.run(forward(g, {"question": "What is 2+2?"}, ctx))
    return g, trace, ctx


def test_sgd_accumulates_by_backprop_and_proposes_from_param_grad() -> None:
    g, trace, ctx = _hint_graph_trace()
    opt = SemanticGradientDescent(g.named_parameters())
    opt.zero_grad()
    records = asyncio.run(opt.accumulate(g, [trace], [Score(0.0, "expected 4", "5")], ctx))
    assert len(records) == 1 and records[0].calls[0].successor == "final"
    proposals = asyncio.run(opt.propose(ctx))
    assert {p.parameter for p in proposals} == {n for n, _ in g.named_parameters()}
    hint_prompt = next(
        r.messages[0].content
        for r in ctx.llm("optimizer").requests  # type: ignore[attr-defined]
        if r.node == "hint_1"
    )
    assert "Feedback on the output: hint 1 misled" in hint_prompt


def test_the_search_shows_an_upstream_node_the_final_answer_beside_its_gradient() -> None:
    # `[optimizer] final_answer` (the search's default): a hint's optimizer prompt shows the
    # metric's word on the final answer too; the output node's gradient is that word already.
    from semgrad.optim.config import config_from_dict
    from semgrad.optim.trainer import make_optimizer

    base = {"graph": {"hints": 2}, "data": {"train": "arith:train", "test": "arith:test"}}
    for settings, shown in (({}, True), ({"final_answer": False}, False)):
        g, trace, ctx = _hint_graph_trace()
        options = config_from_dict({**base, "optimizer": settings}).optimizer
        opt = make_optimizer(options, g.named_parameters(), seed=0)
        asyncio.run(opt.accumulate(g, [trace], [Score(0.0, "expected 4", "5")], ctx))
        asyncio.run(opt.propose(ctx))
        prompts = {
            r.node: r.messages[0].content
            for r in ctx.llm("optimizer").requests  # type: ignore[attr-defined]
        }
        line = "Feedback on the whole system's final answer: expected 4"
        assert "Feedback on the output: hint 1 misled" in prompts["hint_1"]
        assert (line in prompts["hint_1"]) is shown and (line in prompts["hint_2"]) is shown
        assert line not in prompts["final"]


def test_no_gradients_ablation_labels_the_final_feedback_as_such() -> None:
    # Issue 9: every node was shown the final feedback "as feedback on its own output".
    g, trace, ctx = _hint_graph_trace()
    opt = SemanticGradientDescent(g.named_parameters(), use_gradients=False)
    records = asyncio.run(opt.accumulate(g, [trace], [Score(0.0, "expected 4", "5")], ctx))
    assert records == []
    assert ctx.llm("backward").requests == []  # type: ignore[attr-defined]
    asyncio.run(opt.propose(ctx))
    prompts = {
        r.node: r.messages[0].content
        for r in ctx.llm("optimizer").requests  # type: ignore[attr-defined]
    }
    hint = prompts["hint_1"]
    assert "Feedback on the output" not in hint
    assert "Feedback on the whole system's final answer: expected 4" in hint
    assert "feedback on the whole system's final answer):" in hint
    # The output node's output is the final answer: its label stays what it was.
    assert "Feedback on the output: expected 4" in prompts["final"]


def test_node_optimizer_learns_from_the_final_feedback_without_backprop() -> None:
    g, trace, ctx = _hint_graph_trace()
    opt = NodeOptimizer(g.named_parameters())
    assert asyncio.run(opt.accumulate(g, [trace], ["expected 4"], ctx)) == []
    proposals = asyncio.run(opt.propose(ctx))
    assert len(proposals) == 3 and all(p.ok for p in proposals)


# -- parsing: one rule, the last complete block ---------------------------------------------------


def test_parse_improved_takes_the_last_complete_block() -> None:
    assert parse_improved("<improved>a</improved> then <improved>b</improved>") == "b"
    assert parse_improved("<improved>...</improved>") is None  # the placeholder is no block
    assert parse_improved("I use <improved> tags: <improved>Count.</improved>") == "Count."
    assert parse_improved("<improved>reasoning cut off") is None


def test_a_tag_mentioned_in_prose_is_a_failed_proposal() -> None:
    # The server stops at "</improved>" and leaves it out; the reply only *mentioned* the
    # tag ("...between <improved> and </improved>"), which auto-closing turned into "and".
    reply = "I will write the new instruction between <improved> and"
    proposal, _ = propose_with(reply, [entry()])
    assert proposal.new is None and not proposal.ok
    assert proposal.error is not None and "mentions the <improved> tag" in proposal.error


def test_a_real_block_cut_at_the_stop_string_is_still_read() -> None:
    proposal, _ = propose_with("Here: <improved>Multiply the two numbers.", [entry()])
    assert proposal.new == "Multiply the two numbers."


# -- the copy guard: inputs, the node's own output, its gradient ----------------------------------

OUTPUT = "Six plus seven makes thirteen so the total number of apples is thirteen"
MESSAGE = "The hint should say to multiply six by seven instead of adding the two numbers"


def test_a_copy_of_the_nodes_own_output_is_a_failed_proposal() -> None:
    proposal, _ = propose_with(f"<improved>{OUTPUT}.</improved>", [entry(OUTPUT, (MESSAGE,))])
    assert proposal.new is None
    assert proposal.error == "the proposal copies the node's output or the feedback on it"


def test_a_copy_of_the_gradient_is_a_failed_proposal() -> None:
    proposal, _ = propose_with(f"<improved>{MESSAGE}.</improved>", [entry(OUTPUT, (MESSAGE,))])
    assert proposal.new is None
    assert proposal.error == "the proposal copies the node's output or the feedback on it"


def test_output_plus_backward_message_is_a_failed_proposal() -> None:
    # What the no-gate run accepted as a hint's instruction (issue 9).
    reply = f"<improved>{OUTPUT}. {MESSAGE}.</improved>"
    proposal, _ = propose_with(reply, [entry(OUTPUT, (MESSAGE,))])
    assert proposal.new is None


def test_a_proposal_that_takes_up_one_phrase_of_the_advice_is_kept() -> None:
    text = (
        "Read the question carefully, decide which operation it asks for, and when it asks "
        "for a product multiply six by seven instead of adding; check the result before "
        "answering with only the number."
    )
    proposal, _ = propose_with(f"<improved>{text}</improved>", [entry(OUTPUT, (MESSAGE,))])
    assert proposal.ok and proposal.new == text


def test_the_copy_guard_is_linear_on_megabyte_texts() -> None:
    # 2 MB of 400,000 words, copied from a 2 MB output and feedback: under a few seconds
    # (the quadratic-in-practice version took 16 s of an optimize on such a reply).
    huge = "[b]\x1b[31m(" * 200_000
    start = time.process_time()
    assert _echoes(huge, huge, "other words entirely")
    ex = OptimizerExample(inputs={"question": huge}, output=huge, feedback=(huge,))
    assert _copies_an_input(huge, [ex]) and _copies_own_work(huge, [ex])
    assert not _copies_an_input("a short instruction to answer with a number", [ex])
    assert time.process_time() - start < 5


# -- the prompt: mistakes only where there were mistakes, format only when relevant ----------------


def test_correct_examples_are_not_called_mistakes() -> None:
    _, llm = propose_with(
        "<improved>Multiply.</improved>",
        [entry(example_id="a"), entry("Answer: 42", ("The output is correct.",), score=1.0)],
    )
    prompt = llm.requests[0].messages[0].content
    assert "It made mistakes on some of these examples" in prompt
    assert "Example 1 (the final answer was wrong)" in prompt
    assert "Example 2 (the final answer was right)" in prompt
    _, llm = propose_with(
        "<improved>Multiply.</improved>", [entry("Answer: 42", ("Correct.",), score=1.0)]
    )
    prompt = llm.requests[0].messages[0].content
    assert "mistake" not in prompt
    assert "The system answered these examples correctly" in prompt


def test_all_wrong_paper_prompt_is_the_paper_protocols() -> None:
    # A replay of a paper-protocol run must hit its cached optimizer calls: when every
    # example is a mistake the text is the one tests/snapshots/optimizer.txt holds.
    ex = OptimizerExample({"question": "q"}, "o", ["f"])
    marked = OptimizerExample({"question": "q"}, "o", ["f"], correct=False, answer_found=True)
    assert render_optimizer("instruction", "x", [ex]) == render_optimizer(
        "instruction", "x", [marked]
    )
    text = render_optimizer("instruction", "x", [marked])[0].content
    assert "It made mistakes on these examples (its inputs, its output, and feedback" in text
    assert "state in the instruction the exact answer format" in text


def test_search_style_asks_for_a_format_only_when_no_answer_was_found() -> None:
    right_format = OptimizerExample(
        {"q": "a"}, "Answer: 13", ["expected 42"], False, "output", True
    )
    no_answer = OptimizerExample({"q": "a"}, "thirteen", ["no answer"], False, "output", False)
    plain = render_optimizer("instruction", "x", [right_format], style="search")[0].content
    assert "format" not in plain
    fmt = render_optimizer("instruction", "x", [right_format, no_answer], style="search")
    assert "exact answer format" in fmt[0].content


def test_backward_then_propose_end_to_end_records_the_score_on_entries() -> None:
    g, trace, ctx = _hint_graph_trace()
    asyncio.run(backward(g, trace, Score(1.0, "The output is correct.", "4"), ctx))
    final = g.nodes["final"].instruction  # type: ignore[union-attr]
    assert final.grad[0].correct is True
