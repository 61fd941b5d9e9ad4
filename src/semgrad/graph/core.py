"""Graphs as pure data: parameters, nodes, validation, topological order, state dicts.

A graph has named inputs (e.g. ``question``), nodes that each name their inputs (graph
inputs or other nodes), and one output node. Nothing here does I/O or calls a model; the
executor in `semgrad.execution` runs graphs, `semgrad.autograd` differentiates their traces.

Invariants kept by `Graph.__init__` (and relied on everywhere else):
- every name (input or node) is unique, every reference resolves, there is no cycle;
- `order` is a topological order that depends only on the declaration order, so two
  processes building the same graph run, log and cache it identically.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from semgrad.errors import (
    CycleError,
    DuplicateNameError,
    GraphError,
    UnknownReferenceError,
)

__all__ = [
    "SPEC_VERSION",
    "FeedbackOn",
    "FunctionNode",
    "GradientEntry",
    "Graph",
    "LLMNode",
    "Node",
    "Parameter",
    "SpecJSON",
    "node_to_dict",
]

FeedbackOn = Literal["output", "final_answer"]
"""What a gradient entry's messages judge: the node's own output (a semantic gradient), or
the whole system's final answer (the metric's feedback passed on without backpropagation)."""


@dataclass(frozen=True)
class GradientEntry:
    """One example's contribution to a parameter's gradient (ALGORITHMS.md §2).

    What the parameter's node saw and did on that example (its `inputs` by name, graph
    inputs and predecessors' outputs alike, and its `output`) and the `messages` saying how
    that output should change. `about` says what the messages judge: ``"output"`` for a
    semantic gradient of this node's output, ``"final_answer"`` for the metric's feedback on
    the system's answer handed to a node with no backpropagation. `score` and
    `answer_found` are the metric's verdict on the example's final answer, when known.
    """

    example_id: str
    node: str
    inputs: Mapping[str, str] = field(hash=False)
    output: str
    messages: tuple[str, ...]
    about: FeedbackOn = "output"
    score: float | None = None
    answer_found: bool | None = None

    @property
    def correct(self) -> bool | None:
        """Whether the system answered this example correctly (None when not known)."""
        return None if self.score is None else self.score >= 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "example_id": self.example_id,
            "node": self.node,
            "inputs": dict(self.inputs),
            "output": self.output,
            "messages": list(self.messages),
            "about": self.about,
            "score": self.score,
            "answer_found": self.answer_found,
        }


@dataclass(eq=False)
class Parameter:
    """Trainable text: an instruction, a system prompt, a block of demonstrations.

    `name` is the stable dotted name (``final.instruction``) that the owning graph assigns;
    it keys state dicts, optimizer state, history files and reports. `grad` is the one home
    of the parameter's gradient: `backward` appends one `GradientEntry` per example and
    node that uses the parameter, in example order; optimizers read it; `zero_grad`
    empties it (call it before the next batch, as in PyTorch).
    """

    value: str
    role: str = "instruction"
    requires_grad: bool = True
    name: str = ""
    grad: list[GradientEntry] = field(default_factory=list)

    def zero_grad(self) -> None:
        self.grad = []

    def __repr__(self) -> str:
        text = self.value if len(self.value) <= 60 else self.value[:57] + "..."
        return f"Parameter(name={self.name!r}, role={self.role!r}, value={text!r})"


@dataclass(eq=False)
class LLMNode:
    """A node that renders its inputs and instruction into a prompt and calls a model.

    `llm` names which model of the run context to use (``forward`` by default), so one
    graph can run on any client without being rebuilt.
    """

    name: str
    inputs: tuple[str, ...]
    instruction: Parameter
    llm: str = "forward"
    max_tokens: int = 256
    temperature: float = 0.0
    kind: Literal["llm"] = "llm"

    def __post_init__(self) -> None:
        self.inputs = tuple(self.inputs)
        if not self.instruction.name:
            self.instruction.name = f"{self.name}.{self.instruction.role}"

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        yield f"{self.name}.{self.instruction.role}", self.instruction


@dataclass(eq=False)
class FunctionNode:
    """A node computed by plain Python: answer extraction, a tool, a vote.

    `fn` is the name of a registered function (see `semgrad.graph.functions`) or an import
    path ``package.module:attribute``; it is resolved by the executor, keeping graphs JSON.
    """

    name: str
    inputs: tuple[str, ...]
    fn: str
    kind: Literal["function"] = "function"

    def __post_init__(self) -> None:
        self.inputs = tuple(self.inputs)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        return iter(())


Node = LLMNode | FunctionNode


# The version written into every spec (graph and swarm); `semgrad.graph.spec` reads it.
SPEC_VERSION = 1


def node_to_dict(node: Node) -> dict[str, Any]:
    """A node as plain data, as it appears in a graph spec."""
    if isinstance(node, LLMNode):
        return {
            "type": "llm",
            "name": node.name,
            "inputs": list(node.inputs),
            "instruction": node.instruction.value,
            "role": node.instruction.role,
            "requires_grad": node.instruction.requires_grad,
            "llm": node.llm,
            "max_tokens": node.max_tokens,
            "temperature": node.temperature,
        }
    return {"type": "function", "name": node.name, "inputs": list(node.inputs), "fn": node.fn}


class SpecJSON:
    """The JSON text and deep-copy doors shared by graphs and swarms; a subclass gives
    `to_dict`. Reading a spec (validation with errors that teach) is the spec modules'
    job, which depend on this one: `semgrad.graph.spec.load_graph` / `graph_from_dict`,
    `semgrad.swarm.spec.load_swarm` / `load_spec`."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def copy(self) -> Self:
        """A deep copy: its parameters (and edge logits) are its own."""
        return copy.deepcopy(self)


class Graph(SpecJSON):
    """A validated DAG of nodes with named inputs and one output node."""

    def __init__(
        self,
        inputs: Sequence[str],
        nodes: Sequence[Node],
        output: str,
        *,
        name: str = "graph",
    ) -> None:
        if isinstance(inputs, str):
            raise GraphError(
                f"inputs must be a list of names, got the string {inputs!r}; "
                f"write inputs=[{inputs!r}]"
            )
        self.name = name
        self.inputs: tuple[str, ...] = tuple(inputs)
        self.nodes: dict[str, Node] = {}
        seen: set[str] = set()
        for input_name in self.inputs:
            if input_name in seen:
                raise DuplicateNameError(input_name, "graph input")
            seen.add(input_name)
        for node in nodes:
            if node.name in seen:
                what = "graph input and node" if node.name in self.inputs else "node"
                raise DuplicateNameError(node.name, what)
            if not node.name or "." in node.name:
                raise GraphError(
                    f"node name {node.name!r} is not allowed: names must be non-empty and "
                    f"contain no '.', which separates a node from its parameter in dotted names"
                )
            seen.add(node.name)
            self.nodes[node.name] = node
        known = [*self.inputs, *self.nodes]
        for node in self.nodes.values():
            if not node.inputs:
                raise GraphError(f"node {node.name!r} has no inputs; give it at least one")
            if len(set(node.inputs)) != len(node.inputs):
                raise GraphError(f"node {node.name!r} lists the same input twice: {node.inputs}")
            for ref in node.inputs:
                if ref not in seen:
                    raise UnknownReferenceError(node.name, ref, known)
        if output not in self.nodes:
            raise UnknownReferenceError("<output>", output, list(self.nodes))
        self.output = output
        self.order: tuple[str, ...] = self._topological_order()
        for pname, param in self.named_parameters():
            param.name = pname

    # -- structure ---------------------------------------------------------------------

    def _topological_order(self) -> tuple[str, ...]:
        # Kahn's algorithm; ties broken by declaration order so the order is reproducible.
        indegree = {
            n: sum(1 for r in node.inputs if r in self.nodes) for n, node in self.nodes.items()
        }
        successors = self.successors_map()
        ready = [n for n in self.nodes if indegree[n] == 0]
        position = {n: i for i, n in enumerate(self.nodes)}
        order: list[str] = []
        while ready:
            ready.sort(key=position.__getitem__)
            current = ready.pop(0)
            order.append(current)
            for succ in successors[current]:
                indegree[succ] -= 1
                if indegree[succ] == 0:
                    ready.append(succ)
        if len(order) != len(self.nodes):
            raise CycleError(self._find_cycle(set(self.nodes) - set(order)))
        return tuple(order)

    def _find_cycle(self, candidates: set[str]) -> list[str]:
        # Walk predecessors inside the unsorted remainder until a node repeats: every node
        # left over by Kahn's algorithm has a predecessor in the remainder.
        start = next(n for n in self.nodes if n in candidates)
        path: list[str] = []
        index: dict[str, int] = {}
        current = start
        while current not in index:
            index[current] = len(path)
            path.append(current)
            current = next(r for r in self.nodes[current].inputs if r in candidates)
        cycle = path[index[current] :]
        cycle.reverse()  # predecessor walk → edge direction
        # Start at the node declared first, so the message reads the same every time.
        position = {n: i for i, n in enumerate(self.nodes)}
        first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
        return cycle[first:] + cycle[:first]

    def successors_map(self) -> dict[str, list[str]]:
        """Node → the nodes that take it as an input, in declaration order."""
        succ: dict[str, list[str]] = {n: [] for n in self.nodes}
        for node in self.nodes.values():
            for ref in node.inputs:
                if ref in succ:
                    succ[ref].append(node.name)
        return succ

    def predecessors(self, name: str) -> tuple[str, ...]:
        return self.node(name).inputs

    def successors(self, name: str) -> tuple[str, ...]:
        self.node(name)
        return tuple(self.successors_map()[name])

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise UnknownReferenceError("<lookup>", name, list(self.nodes)) from None

    # -- parameters --------------------------------------------------------------------

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        for name in self.order:
            yield from self.nodes[name].named_parameters()

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self) -> dict[str, str]:
        return {name: p.value for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, str], *, strict: bool = True) -> None:
        params = dict(self.named_parameters())
        if strict:
            missing = [k for k in params if k not in state]
            unexpected = [k for k in state if k not in params]
            if missing or unexpected:
                raise GraphError(
                    f"state dict does not match graph {self.name!r}: "
                    f"missing {missing or 'nothing'}, unexpected {unexpected or 'nothing'}. "
                    f"Pass strict=False to load only the matching entries."
                )
        for key, value in state.items():
            if key in params:
                if not isinstance(value, str):
                    raise GraphError(
                        f"state dict entry {key!r} must be text, got {type(value).__name__}"
                    )
                params[key].value = value

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The graph spec as plain data (`semgrad.graph.spec.graph_from_dict` reads it)."""
        return {
            "semgrad": SPEC_VERSION,
            "name": self.name,
            "inputs": list(self.inputs),
            "nodes": [node_to_dict(node) for node in self.nodes.values()],
            "output": self.output,
        }

    def __repr__(self) -> str:
        return (
            f"Graph(name={self.name!r}, inputs={list(self.inputs)}, "
            f"nodes={list(self.order)}, output={self.output!r})"
        )
