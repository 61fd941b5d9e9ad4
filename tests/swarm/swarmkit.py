"""Builders shared by the swarm tests: small swarms, a truthful/liar toy task, its models."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from semgrad.data.example import Example
from semgrad.evaluation.metrics import ChoiceMatch
from semgrad.graph import FunctionNode, Graph, LLMNode, Parameter
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.splits import Splits
from semgrad.swarm import EdgeParameter, Swarm

REPO = Path(__file__).resolve().parents[2]


def one_node_agent(instruction: str, *, max_tokens: int = 24) -> Graph:
    return Graph(
        ["question"],
        [LLMNode("answer", ("question",), Parameter(instruction), max_tokens=max_tokens)],
        "answer",
    )


def two_node_agent(prefix: str) -> Graph:
    """draft -> final, both reading the question."""
    return Graph(
        ["question"],
        [
            LLMNode("draft", ("question",), Parameter(f"{prefix}: draft")),
            LLMNode("final", ("question", "draft"), Parameter(f"{prefix}: final")),
        ],
        "final",
    )


def vote_swarm(names: list[str], *, p0: float = 0.5, fn: str = "majority_choice") -> Swarm:
    return Swarm(
        ["question"],
        {n: one_node_agent(f"{n}: answer") for n in names},
        FunctionNode("decision", (), fn),
        [EdgeParameter.from_p0(n, "decision", p0) for n in names],
        name="vote",
    )


def chain_swarm() -> Swarm:
    """Two two-node agents with potential edges both ways (one of them closes a cycle once
    the other is taken) and to the decision."""
    return Swarm(
        ["question"],
        {"a1": two_node_agent("a1"), "a2": two_node_agent("a2")},
        FunctionNode("decision", (), "concat"),
        [
            EdgeParameter.from_p0("a1", "a2/draft", 0.9),
            EdgeParameter.from_p0("a2", "a1/final", 0.9),
            EdgeParameter.from_p0("a1", "decision", 0.5),
            EdgeParameter.from_p0("a2", "decision", 0.5),
        ],
        name="chain",
    )


# -- the truthful / liar toy: a question names its right option; liars pick a wrong one --

# Liars outnumber the truthful: the full swarm votes wrong, and only by cutting the liars'
# edges (or by teaching them, in a text step) does it answer right.
TRUTHFUL = ["t1", "t2"]
LIARS = ["liar1", "liar2", "liar3"]


def toy_spec(path: Path, *, agents: list[str] | None = None) -> Path:
    names = agents or [*TRUTHFUL, *LIARS]
    spec: dict[str, Any] = {
        "semgrad": 1,
        "kind": "swarm",
        "name": "toy",
        "inputs": ["question"],
        "agents": [
            {
                "name": n,
                "graph": {
                    "inputs": ["question"],
                    "nodes": [
                        {
                            "type": "llm",
                            "name": "answer",
                            "inputs": ["question"],
                            "instruction": f"{n}: answer the question",
                            "max_tokens": 24,
                        }
                    ],
                    "output": "answer",
                },
            }
            for n in names
        ],
        "decision": {"type": "function", "fn": "majority_choice"},
        "edges": [{"from": n, "to": "decision", "p0": 0.5} for n in names],
    }
    path.write_text(json.dumps(spec))
    return path


def toy_forward(request: Request) -> str:
    """Truthful agents answer the option the question names; liars another one. An agent
    whose instruction says CAREFUL is always right (what a text step can learn)."""
    text = request.messages[-1].content
    found = re.search(r"right: \((\w)\)", text)
    letter = found.group(1) if found else "A"
    if request.node.startswith("liar") and "CAREFUL" not in text:
        return "Answer: (" + ("A" if letter != "A" else "B") + ")"
    return f"Answer: ({letter})"


def toy_backward(request: Request) -> str:
    n = len(re.findall(r"<feedback_(\d+)>\.\.\.", request.messages[-1].content))
    return " ".join(f"<feedback_{i}>be careful</feedback_{i}>" for i in range(1, n + 1))


def toy_optimizer(request: Request) -> str:
    return "<improved>Be CAREFUL and answer with the right option.</improved>"


def toy_models() -> dict[str, ScriptedLLM]:
    return {
        "forward": ScriptedLLM(toy_forward),
        "backward": ScriptedLLM(toy_backward),
        "optimizer": ScriptedLLM(toy_optimizer),
    }


def toy_splits() -> Splits:
    ex = [
        Example(f"e{i}", {"question": f"q{i} right: ({'ABC'[i % 3]})"}, f"({'ABC'[i % 3]})")
        for i in range(36)
    ]
    return Splits(tuple(ex[:12]), tuple(ex[12:24]), tuple(ex[24:]), ChoiceMatch())
