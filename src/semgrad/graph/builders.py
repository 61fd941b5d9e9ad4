"""Ready-made graph shapes."""

from __future__ import annotations

from semgrad.graph.core import FunctionNode, Graph, LLMNode, Node, Parameter

__all__ = ["DEFAULT_FINAL_INSTRUCTION", "DEFAULT_HINT_INSTRUCTIONS", "hint_graph"]

# Distinct starting instructions: identical hint nodes would send identical prompts, get
# identical replies at temperature 0, and give the final node nothing to compare.
DEFAULT_HINT_INSTRUCTIONS = (
    "Name the key quantities in the question and what exactly it asks for. "
    "Be brief and do not solve it.",
    "Outline the steps needed to solve the question, in order. "
    "Be brief and do not give the final answer.",
    "Point out a likely mistake to avoid when solving the question. "
    "Be brief and do not give the final answer.",
)
DEFAULT_FINAL_INSTRUCTION = (
    "Solve the question step by step, using the hints if they help. "
    "End with a last line of the form 'Answer: <answer>'."
)


def hint_graph(
    k: int = 2,
    *,
    hint_instructions: tuple[str, ...] = DEFAULT_HINT_INSTRUCTIONS,
    final_instruction: str = DEFAULT_FINAL_INSTRUCTION,
    hint_max_tokens: int = 96,
    final_max_tokens: int = 320,
    name: str | None = None,
    answer_fn: str | None = None,
) -> Graph:
    """The paper's shape: k hint nodes feeding a final node, every node seeing the question.

    The hints are siblings (they share the final node as successor), which is exactly where
    neighbour-aware backpropagation differs from the independent rule.

    `answer_fn` names a function (a built-in of `semgrad.graph.functions` such as
    ``"calculate"``, or ``package.module:function``) that becomes the output node
    ``answer``, reading the final node's reply: a tool after the model.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    hints = [
        LLMNode(
            name=f"hint_{i}",
            inputs=("question",),
            instruction=Parameter(hint_instructions[(i - 1) % len(hint_instructions)]),
            max_tokens=hint_max_tokens,
        )
        for i in range(1, k + 1)
    ]
    final = LLMNode(
        name="final",
        inputs=("question", *(h.name for h in hints)),
        instruction=Parameter(final_instruction),
        max_tokens=final_max_tokens,
    )
    nodes: list[Node] = [*hints, final]
    if answer_fn is not None:
        nodes.append(FunctionNode("answer", ("final",), answer_fn))
    return Graph(["question"], nodes, nodes[-1].name, name=name or f"hints{k + 1}")
