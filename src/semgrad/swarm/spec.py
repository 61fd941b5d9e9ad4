"""The JSON form of a composite graph, next to the single-graph spec of `semgrad.graph.spec`.

    {
      "semgrad": 1,
      "kind": "swarm",
      "name": "vote",
      "inputs": ["question"],
      "agents": [{"name": "a1", "graph": { ...an ordinary graph spec... }}, ...],
      "decision": {"type": "function", "fn": "majority_choice"},
      "edges": [
        {"from": "a1", "to": "decision", "p0": 0.5},
        {"from": "a1", "to": "a2/final", "p0": 0.5, "logit": 0.8}
      ]
    }

The decision is a node spec without a name (``decision`` by default) whose ``inputs`` are
the swarm inputs it always sees (default none). An edge's ``p0`` is its initial keep
probability; ``logit``, when present, is its current (learned) value and wins over ``p0``.
Validated like graph specs: unknown keys refused, types checked, then the `Swarm`
constructor checks names and references; every error names the agent, edge or key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from semgrad.errors import GraphError, SpecError
from semgrad.graph.core import FunctionNode, Graph, LLMNode, Node, Parameter
from semgrad.graph.spec import (
    SPEC_VERSION,
    _describe,
    _FunctionNodeSpec,
    _LLMNodeSpec,
    graph_from_dict,
    read_spec_json,
)
from semgrad.swarm.composite import Swarm
from semgrad.swarm.edges import EdgeParameter, logit

__all__ = [
    "is_swarm_file",
    "is_swarm_spec",
    "load_spec",
    "load_swarm",
    "spec_from_dict",
    "swarm_from_dict",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# A decision is a node spec whose name defaults to "decision" and whose inputs (the swarm
# inputs it always sees) default to none.
class _LLMDecisionSpec(_LLMNodeSpec):
    name: str = "decision"
    inputs: list[str] = Field(default_factory=list)


class _FunctionDecisionSpec(_FunctionNodeSpec):
    name: str = "decision"
    inputs: list[str] = Field(default_factory=list)


_DecisionSpec = Annotated[_LLMDecisionSpec | _FunctionDecisionSpec, Field(discriminator="type")]


class _AgentSpec(_Strict):
    name: str
    graph: dict[str, Any]  # an ordinary graph spec, checked by graph_from_dict


class _EdgeSpec(_Strict):
    source: str = Field(alias="from")
    to: str
    p0: float = Field(0.5, gt=0.0, lt=1.0)
    logit: float | None = Field(None, allow_inf_nan=False)


class _SwarmSpec(_Strict):
    semgrad: int = SPEC_VERSION
    kind: Literal["swarm"]
    name: str = "swarm"
    inputs: list[str]
    agents: list[_AgentSpec]
    decision: _DecisionSpec
    edges: list[_EdgeSpec] = Field(default_factory=list)


_adapter = TypeAdapter(_SwarmSpec)


def is_swarm_spec(data: Any) -> bool:
    """True for a JSON object that declares ``"kind": "swarm"``."""
    return isinstance(data, dict) and data.get("kind") == "swarm"


def swarm_from_dict(data: Any, *, source: str | None = None) -> Swarm:
    if not isinstance(data, dict):
        raise SpecError(
            f"a swarm spec must be a JSON object with kind, inputs, agents, decision and "
            f"edges, got {type(data).__name__}",
            source,
        )
    try:
        spec = _adapter.validate_python(data)
    except ValidationError as err:
        raise SpecError(f"invalid swarm spec: {_describe(err, _SwarmSpec)}", source) from None
    if spec.semgrad != SPEC_VERSION:
        raise SpecError(
            f"swarm spec version {spec.semgrad} is not supported (this semgrad reads version "
            f"{SPEC_VERSION})",
            source,
        )
    agents: list[tuple[str, Graph]] = []
    for i, agent in enumerate(spec.agents):
        where = f"agents[{i}] (agent {agent.name!r})"
        try:
            agents.append((agent.name, graph_from_dict(agent.graph)))
        except SpecError as err:
            raise SpecError(f"{where}: {err}", source) from None
        except GraphError as err:  # names, references, cycles inside the agent's graph
            raise GraphError(f"{where}: {err}") from None
    d = spec.decision
    decision: Node
    if isinstance(d, _LLMDecisionSpec):
        decision = LLMNode(
            name=d.name,
            inputs=tuple(d.inputs),
            instruction=Parameter(d.instruction, role=d.role, requires_grad=d.requires_grad),
            llm=d.llm,
            max_tokens=d.max_tokens,
            temperature=d.temperature,
        )
    else:
        decision = FunctionNode(name=d.name, inputs=tuple(d.inputs), fn=d.fn)
    edges = [
        EdgeParameter(e.source, e.to, logit(e.p0) if e.logit is None else e.logit, e.p0)
        for e in spec.edges
    ]
    return Swarm(spec.inputs, agents, decision, edges, name=spec.name)


def _read_json(path: str | Path) -> tuple[Any, str]:
    return read_spec_json(path, what="a graph or swarm spec")


def is_swarm_file(path: str | Path) -> bool:
    """True when `path` is a readable JSON file holding a swarm spec (no error otherwise:
    a file that cannot be read is reported by whoever loads it)."""
    try:
        data, _ = _read_json(path)
    except SpecError:
        return False
    return is_swarm_spec(data)


def load_swarm(path: str | Path) -> Swarm:
    """Read a swarm spec from a JSON file, with errors that name the file and the problem."""
    data, source = _read_json(path)
    if isinstance(data, dict) and not is_swarm_spec(data) and "nodes" in data:
        raise SpecError(
            'this is a single graph spec, not a swarm (no "kind": "swarm"); load it with '
            "semgrad.load_graph",
            source,
        )
    return swarm_from_dict(data, source=source)


def spec_from_dict(data: Any, *, source: str | None = None) -> Graph | Swarm:
    """A graph or a swarm, whichever the spec declares (``"kind"``, default graph)."""
    if is_swarm_spec(data):
        return swarm_from_dict(data, source=source)
    return graph_from_dict(data, source=source)


def load_spec(path: str | Path) -> Graph | Swarm:
    """Read a graph spec or a swarm spec from a JSON file."""
    data, source = _read_json(path)
    return spec_from_dict(data, source=source)
