"""Snapshot tests: what the model sees is a reviewed diff.

To accept an intended change, run with SEMGRAD_UPDATE_SNAPSHOTS=1 and review the diff of
tests/snapshots/ before committing.
"""

from __future__ import annotations

import os
from pathlib import Path

from semgrad import prompts
from semgrad.graph import hint_graph
from semgrad.prompts import render_forward

SNAPSHOTS = Path(__file__).parent / "snapshots"


def check(name: str, text: str) -> None:
    path = SNAPSHOTS / f"{name}.txt"
    if os.environ.get("SEMGRAD_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}; run with SEMGRAD_UPDATE_SNAPSHOTS=1 and review it"
    assert text == path.read_text(encoding="utf-8"), f"prompt {name!r} changed; see {path}"


def render(messages: tuple[prompts.Message, ...]) -> str:
    return "\n".join(f"<<{m.role}>>\n{m.content}" for m in messages) + "\n"


def test_forward_version() -> None:
    assert prompts.FORWARD_VERSION == "forward/1"


def test_forward_final_node_snapshot() -> None:
    g = hint_graph(2)
    final = g.nodes["final"]
    msgs = render_forward(
        final.instruction.value,  # type: ignore[union-attr]
        {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
        [("hint_1", "Count the apples he starts with."), ("hint_2", "  Add the ones he buys.  ")],
    )
    check("forward_final", render(msgs))


def test_forward_hint_node_snapshot() -> None:
    g = hint_graph(2)
    msgs = render_forward(
        g.nodes["hint_1"].instruction.value,  # type: ignore[union-attr]
        {"question": "What is 6 times 7?"},
        [],
    )
    check("forward_hint", render(msgs))


def test_versions() -> None:
    assert prompts.BACKWARD_VERSION == "backward/1"
    assert prompts.OPTIMIZER_VERSION == "optimizer/5"
    assert prompts.OPTIMIZER_SEARCH_VERSION == "optimizer-search/3"


def test_backward_neighbors_snapshot() -> None:
    msgs = prompts.render_backward_neighbors(
        "Solve step by step.",
        {"question": "What is 6 times 7?"},
        [("hint_1", "Multiply 6 by 7."), ("hint_2", "Add 6 and 7.")],
        "6 + 7 = 13. Answer: 13",
        ['The expected output is: "42".'],
    )
    check("backward_neighbors", render(msgs))


def test_backward_independent_snapshot() -> None:
    msgs = prompts.render_backward_independent(
        "Solve step by step.",
        {"question": "What is 6 times 7?"},
        "Add 6 and 7.",
        "6 + 7 = 13. Answer: 13",
        ['The expected output is: "42".', "Use multiplication."],
    )
    check("backward_independent", render(msgs))


def test_optimizer_snapshot() -> None:
    msgs = prompts.render_optimizer(
        "instruction",
        "Solve step by step.",
        [
            prompts.OptimizerExample(
                {"question": "What is 6 times 7?", "hint_1": "Add 6 and 7."},
                "Answer: 13",
                ['The expected output is: "42".'],
            )
        ],
        history=[("Solve it.", 0.25)],
    )
    check("optimizer", render(msgs))


def test_optimizer_paper_mixed_batch_snapshot() -> None:
    # A batch that fell back to an example the system got right: only the wrong one is
    # called a mistake (issue 9). The all-wrong text is the `optimizer` snapshot, unchanged.
    msgs = prompts.render_optimizer(
        "instruction",
        "Solve step by step.",
        [
            prompts.OptimizerExample(
                {"question": "What is 6 times 7?"},
                "Answer: 13",
                ['The expected output is: "42".'],
                correct=False,
            ),
            prompts.OptimizerExample(
                {"question": "What is 2 plus 2?"}, "Answer: 4", ["The output is correct."], True
            ),
        ],
    )
    check("optimizer_paper_mixed", render(msgs))


def test_optimizer_final_answer_feedback_snapshot() -> None:
    # The no-gradients ablation: a hint is shown the feedback on the system's final answer,
    # labelled as such, not as feedback on its own output.
    msgs = prompts.render_optimizer(
        "instruction",
        "Give a hint.",
        [
            prompts.OptimizerExample(
                {"question": "What is 6 times 7?"},
                "Add the numbers.",
                ['The expected output is: "42".'],
                about="final_answer",
            )
        ],
    )
    check("optimizer_final_answer", render(msgs))


def test_optimizer_search_snapshot() -> None:
    # The search style asks for an answer format only when no answer could be read.
    examples = [
        prompts.OptimizerExample(
            {"question": "What is 6 times 7?"},
            "Answer: 13",
            ['The expected output is: "42". The answer given was "13".'],
            correct=False,
            answer_found=True,
        )
    ]
    msgs = prompts.render_optimizer(
        "instruction", "Solve step by step.", examples, [("Solve it.", 0.25)], style="search"
    )
    check("optimizer_search", render(msgs))
    no_answer = prompts.OptimizerExample(
        {"question": "What is 2 plus 2?"},
        "four-ish",
        ['No final answer was found in the output. The expected output is: "4".'],
        correct=False,
        answer_found=False,
    )
    msgs = prompts.render_optimizer(
        "instruction", "Solve step by step.", [*examples, no_answer], style="search"
    )
    check("optimizer_search_format", render(msgs))




def test_optimizer_search_shows_an_upstream_node_the_final_answer() -> None:
    # A hint node's own feedback (from the backward model) can be wrong about the answer;
    # the search style shows, beside it, what the system answered and should have.
    examples = [
        prompts.OptimizerExample(
            {"question": "I have two pigs and three bananas. How many animals do I have?"},
            "2 pigs, 3 bananas",
            ["The input is correct and does not need any changes."],
            correct=False,
            answer_found=True,
            final='The expected output is: "2". The answer given was "5".',
        )
    ]
    msgs = prompts.render_optimizer(
        "instruction", "List the quantities.", examples, style="search", final_answer=True
    )
    check("optimizer_search_final_answer", render(msgs))
    assert "Feedback on the whole system's final answer: The expected output" in msgs[0].content
    # Off (a search recorded before the setting), and never in the paper's prompt.
    off = prompts.render_optimizer("instruction", "List the quantities.", examples, style="search")
    assert "The answer given" not in off[0].content
    paper = prompts.render_optimizer(
        "instruction", "List the quantities.", examples, final_answer=True
    )
    assert "The answer given" not in paper[0].content


def test_optimizer_search_incumbent_snapshot() -> None:
    # The search shows the current text's validation score and the recently rejected texts
    # with theirs; the paper style ignores both (its text stays byte-identical).
    examples = [
        prompts.OptimizerExample(
            {"question": "What is 6 times 7?"},
            "Answer: 13",
            ['The expected output is: "42". The answer given was "13".'],
            correct=False,
            answer_found=True,
        )
    ]
    rejected = [("Answer quickly.", 0.3), ("Think about it.", 0.35)]
    msgs = prompts.render_optimizer(
        "instruction",
        "Solve step by step.",
        examples,
        style="search",
        score=0.4,
        rejected=rejected,
    )
    check("optimizer_search_incumbent", render(msgs))
    paper = prompts.render_optimizer(
        "instruction",
        "Solve step by step.",
        examples,
        style="paper",
        score=0.4,
        rejected=rejected,
    )
    assert paper == prompts.render_optimizer("instruction", "Solve step by step.", examples)


def test_judge_snapshot() -> None:
    assert prompts.JUDGE_VERSION == "judge/1"
    messages = prompts.render_judge(
        "The output is correct when it names the same city as the reference.",
        {"country": "France"},
        "The capital of France is Lyon.",
        "Paris",
    )
    check("judge", render(messages))


def test_forward_with_two_demos_snapshot() -> None:
    # Demos are prior turns: each user turn is the node's own prompt for the demo's inputs
    # (instruction last), then its output; the current example's prompt comes last.
    from semgrad.execution import RunContext, run
    from semgrad.graph.core import Demo
    from semgrad.llm.fakes import ScriptedLLM

    g = hint_graph(1)
    g.set_demos(
        "final",
        [
            Demo(
                {"question": "What is 2 plus 2?", "hint_1": "Add two and two."},
                "2 + 2 = 4.\nAnswer: 4",
            ),
            Demo({"question": "What is 3 times 5?", "hint_1": " Multiply. "}, "Answer: 15"),
        ],
    )
    llm = ScriptedLLM(lambda r: "Count the apples." if r.node == "hint_1" else "Answer: 7")
    run(
        g,
        {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?"},
        RunContext({"forward": llm}),
    )
    (request,) = [r for r in llm.requests if r.node == "final"]
    check("forward_demos", render(request.messages))
