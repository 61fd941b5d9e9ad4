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
from typing import Any, Final, Literal, Self

from semgrad.errors import (
    CycleError,
    DuplicateNameError,
    GraphError,
    UnknownReferenceError,
)
from semgrad.text import shorten

__all__ = [
    "SPEC_VERSION",
    "Demo",
    "DemoParameter",
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
    `answer_found` are the metric's verdict on the example's final answer, when known;
    `final` is the metric's feedback on that answer, kept beside the semantic gradient of a
    node that is not the output node (the search's optimizer shows both).
    """

    example_id: str
    node: str
    inputs: Mapping[str, str] = field(hash=False)
    output: str
    messages: tuple[str, ...]
    about: FeedbackOn = "output"
    score: float | None = None
    answer_found: bool | None = None
    final: str | None = None

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
            **({"final": self.final} if self.final is not None else {}),
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


@dataclass(frozen=True)
class Demo:
    """One demonstration of an LLM node: its `inputs` by name (graph inputs and
    predecessors' outputs, exactly the node's inputs) and the `output` it should give.

    Rendered as a prior chat turn of the node's prompt (`semgrad.prompts.render_forward`).
    """

    inputs: Mapping[str, str] = field(hash=False)
    output: str

    def __post_init__(self) -> None:
        # A plain dict of the caller's mapping: immutable by convention, deep-copyable.
        object.__setattr__(self, "inputs", dict(self.inputs))
        bad = [
            k for k, v in self.inputs.items() if not isinstance(k, str) or not isinstance(v, str)
        ]
        if bad or not isinstance(self.output, str):
            raise GraphError(
                f"a demo's inputs and output must be text; got inputs {dict(self.inputs)!r}, "
                f"output {self.output!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": dict(self.inputs), "output": self.output}

    @classmethod
    def from_dict(cls, data: Any) -> Demo:
        if (
            not isinstance(data, Mapping)
            or set(data) != {"inputs", "output"}
            or not isinstance(data["inputs"], Mapping)
        ):
            raise GraphError(
                f'a demo is an object {{"inputs": {{name: text, ...}}, "output": text}}, '
                f"got {data!r}"
            )
        return cls(data["inputs"], data["output"])


class DemoParameter:
    """The demonstrations of an LLM node: an ordered tuple of `Demo`s, trainable.

    Its dotted name is ``<node>.demos`` and its role ``"demos"``. It is not a text
    `Parameter`: text optimizers (`SemanticGradientDescent`, `NodeOptimizer`) never see it
    and backward sends it no gradient; demos come from successful traces or labelled
    examples (`semgrad.optim.demos`). Set it with ``node.demos.value = (Demo(...), ...)``:
    each demo must have exactly the node's inputs, checked on assignment once the node
    owns the parameter.
    """

    role: Final = "demos"

    def __init__(self, value: Sequence[Demo] = (), *, name: str = "") -> None:
        self.name = name
        self._inputs: tuple[str, ...] | None = None
        self._value: tuple[Demo, ...] = ()
        self.value = tuple(value)

    @property
    def value(self) -> tuple[Demo, ...]:
        return self._value

    @value.setter
    def value(self, demos: Sequence[Demo]) -> None:
        self._value = self._checked(tuple(demos))

    def bind(self, node: str, inputs: Sequence[str]) -> None:
        """Make this the demos of node `node` with inputs `inputs` (the node does it).

        Only once: a node made from another (``dataclasses.replace``, a swarm's realised
        graph) shares its origin's demos, as it shares its instruction, and leaves their
        name and inputs alone."""
        if self._inputs is not None:
            return
        self.name = f"{node}.demos"
        self._inputs = tuple(inputs)
        self._value = self._checked(self._value)

    def _checked(self, demos: tuple[Demo, ...]) -> tuple[Demo, ...]:
        for demo in demos:
            if not isinstance(demo, Demo):
                raise GraphError(
                    f"{self.name or 'demos'}: a demo must be a semgrad Demo(inputs, output), "
                    f"got {type(demo).__name__}"
                )
        if self._inputs is None:
            return demos
        out = []
        for demo in demos:
            if set(demo.inputs) != set(self._inputs):
                raise GraphError(
                    f"{self.name}: a demo must give exactly the node's inputs "
                    f"{list(self._inputs)}, got {list(demo.inputs)}"
                )
            # The node's input order: one canonical form for specs and state dicts.
            out.append(Demo({k: demo.inputs[k] for k in self._inputs}, demo.output))
        return tuple(out)

    def to_list(self) -> list[dict[str, Any]]:
        return [d.to_dict() for d in self._value]

    def to_text(self) -> str:
        """The demos as JSON text, the form a state dict holds."""
        return json.dumps(self.to_list(), ensure_ascii=False)

    def load_text(self, text: str) -> None:
        """Set the demos from `to_text()`'s JSON (a state dict entry)."""
        try:
            data = json.loads(text)
        except (TypeError, json.JSONDecodeError) as err:
            raise GraphError(
                f"state dict entry {self.name!r} must be the JSON list of demos that "
                f"state_dict() writes; it does not parse: {err}"
            ) from None
        if not isinstance(data, list):
            raise GraphError(
                f"state dict entry {self.name!r} must be a JSON list of demos, got "
                f"{type(data).__name__}"
            )
        self.value = tuple(Demo.from_dict(d) for d in data)

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"DemoParameter(name={self.name!r}, demos={len(self._value)})"


@dataclass(eq=False)
class LLMNode:
    """A node that renders its inputs and instruction into a prompt and calls a model.

    `llm` names which model of the run context to use (``forward`` by default), so one
    graph can run on any client without being rebuilt. `demos` are its demonstrations
    (none by default), rendered as prior chat turns before the prompt.
    """

    name: str
    inputs: tuple[str, ...]
    instruction: Parameter
    llm: str = "forward"
    max_tokens: int = 256
    temperature: float = 0.0
    kind: Literal["llm"] = "llm"
    demos: DemoParameter = field(default_factory=DemoParameter)

    def __post_init__(self) -> None:
        self.inputs = tuple(self.inputs)
        role = self.instruction.role
        if not role.strip() or "." in role or role == "demos":
            raise GraphError(
                f"node {self.name!r}: the instruction's role {shorten(repr(role), 80)} is not "
                f"allowed; the role names the parameter ({self.name}.<role>) and is shown to "
                f"the optimizer, so it must be non-empty, without '.', and not 'demos' (the "
                f'name of the node\'s demonstrations); e.g. "instruction" or "system prompt".'
            )
        if not self.instruction.name:
            self.instruction.name = f"{self.name}.{self.instruction.role}"
        if not isinstance(self.demos, DemoParameter):
            raise GraphError(
                f"node {self.name!r}: demos must be a DemoParameter, e.g. "
                f"demos=DemoParameter([Demo(inputs, output)]); got {type(self.demos).__name__}"
            )
        self.demos.bind(self.name, self.inputs)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """The text parameters (the instruction); the demos are `demos`."""
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
    """A node as plain data, as it appears in a graph spec. ``"demos"`` is written only
    for a node that has some, so a spec without demos reads exactly as before them."""
    if isinstance(node, LLMNode):
        data: dict[str, Any] = {
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
        if node.demos.value:
            data["demos"] = node.demos.to_list()
        return data
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

    def named_demos(self) -> Iterator[tuple[str, DemoParameter]]:
        """Every LLM node's demonstrations (``final.demos``), in topological order."""
        for name in self.order:
            node = self.nodes[name]
            if isinstance(node, LLMNode):
                yield node.demos.name, node.demos

    def demos(self, node: str) -> tuple[Demo, ...]:
        """The demos of LLM node `node` (empty when it has none)."""
        return self._llm_node(node).demos.value

    def set_demos(self, node: str, demos: Sequence[Demo]) -> None:
        """Replace the demos of LLM node `node` (each must have exactly its inputs)."""
        self._llm_node(node).demos.value = tuple(demos)

    def _llm_node(self, name: str) -> LLMNode:
        node = self.node(name)
        if not isinstance(node, LLMNode):
            raise GraphError(f"node {name!r} is a function node; only LLM nodes have demos")
        return node

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()

    def state_dict(self) -> dict[str, str]:
        """Parameter name → text. A node's demos appear (``final.demos``, as the JSON text
        of `DemoParameter.to_text`) only when it has some, so the state of a graph without
        demos is exactly what it was before demos existed."""
        state: dict[str, str] = {}
        for name in self.order:
            node = self.nodes[name]
            for pname, p in node.named_parameters():
                state[pname] = p.value
            if isinstance(node, LLMNode) and node.demos.value:
                state[node.demos.name] = node.demos.to_text()
        return state

    def load_state_dict(self, state: Mapping[str, str], *, strict: bool = True) -> None:
        """Load `state_dict()`'s entries. With `strict` (the default) every text parameter
        must be there and nothing else, and a node whose demos entry is absent is left with
        no demos (absent means none, as `state_dict` writes it)."""
        params = dict(self.named_parameters())
        demos = dict(self.named_demos())
        if strict:
            missing = [k for k in params if k not in state]
            unexpected = [k for k in state if k not in params and k not in demos]
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
            elif key in demos:
                demos[key].load_text(value)
        if strict:
            for key, demo_param in demos.items():
                if key not in state:
                    demo_param.value = ()

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
