"""Composite graphs ("swarms"): agent graphs, a decision node, learnable potential edges.

A `Swarm` joins several agents, each an ordinary `Graph` with a name, and a decision node
that gives the final answer (a function such as ``majority_choice``, or an LLM node whose
instruction combines the agents' answers). The wiring inside an agent is fixed: it is the
agent's own graph. What is learned is which *potential edges* exist (ALGORITHMS.md §5):
from an agent's output to the decision node, or to a node of another agent, where the
agent's answer arrives as one more hint.

A swarm is never run directly. `realise` turns a choice of edges into a flat `Graph`
(node ``final`` of agent ``a1`` becomes ``a1/final``), so the executor, the cache, traces,
the backward pass and the evaluator work unchanged. The flat graph holds the *same*
`Parameter` objects as the swarm's agents, so a text optimizer stepping on a realised graph
changes the swarm.

Invariants:
- potential edges are visited in their declared order; an edge that would close a cycle
  given the edges already taken is skipped (neither decided nor counted in log p(G)), so
  every realised graph is acyclic by construction;
- the deterministic realisation keeps an edge iff its probability is >= the threshold, in
  the same order with the same skipping: the same logits always give the same graph;
- a realised graph keeps only the nodes the answer depends on: an agent connected to
  nothing would cost model calls and change no answer. With no agent connected at all the
  decision answers nothing (``no_answer``), which a metric scores as a failure.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from semgrad.errors import DuplicateNameError, GraphError, UnknownReferenceError
from semgrad.graph.core import (
    SPEC_VERSION,
    FunctionNode,
    Graph,
    LLMNode,
    Node,
    Parameter,
    SpecJSON,
    node_to_dict,
)
from semgrad.swarm.edges import EdgeParameter, decision_log_prob

__all__ = ["SEPARATOR", "SampledGraph", "Swarm"]

SEPARATOR = "/"  # agent a1's node final is a1/final in a realised graph ('.' names parameters)

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")

Decisions = Mapping[str, bool | None]


def _check_name(name: str, what: str) -> None:
    if not isinstance(name, str) or not _NAME.match(name):
        raise GraphError(
            f"{what} name {name!r} is not allowed: use letters, digits, '_' and '-' "
            f"(no '.', which names parameters, and no '/', which joins agent and node names)"
        )


@dataclass(frozen=True, eq=False)
class SampledGraph:
    """One graph drawn from the edge distribution.

    `decisions` maps every potential edge, in order, to True (kept), False (left out) or
    None (skipped: it would have closed a cycle). `probabilities` are the edges' keep
    probabilities at sampling time and `log_prob` is log p(G), the sum over the decided
    edges of log p or log(1 − p).
    """

    decisions: Mapping[str, bool | None]
    probabilities: Mapping[str, float]
    log_prob: float
    temperature: float
    graph: Graph

    @property
    def included(self) -> tuple[str, ...]:
        """The names of the edges kept, in edge order."""
        return tuple(name for name, x in self.decisions.items() if x)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": dict(self.decisions),
            "included": list(self.included),
            "log_prob": self.log_prob,
            "temperature": self.temperature,
            "nodes": list(self.graph.order),
        }


class Swarm(SpecJSON):
    """Agents (named graphs), a decision node and an ordered list of potential edges.

    `decision.inputs` names the swarm inputs the decision always sees (often none: a vote
    needs only the agents' answers); the agents connected to it by kept edges are added.
    """

    def __init__(
        self,
        inputs: Sequence[str],
        agents: Mapping[str, Graph] | Sequence[tuple[str, Graph]],
        decision: Node,
        edges: Sequence[EdgeParameter],
        *,
        name: str = "swarm",
    ) -> None:
        if isinstance(inputs, str):
            raise GraphError(
                f"inputs must be a list of names, got the string {inputs!r}; "
                f"write inputs=[{inputs!r}]"
            )
        if isinstance(edges, set | frozenset) or isinstance(agents, set | frozenset):
            raise GraphError(
                "agents and edges must be ordered (a dict or a list): sampling visits the "
                "edges in order, realised graphs list the agents in order, and a set's "
                "order changes between runs"
            )
        self.name = name
        self.inputs: tuple[str, ...] = tuple(inputs)
        if not self.inputs:
            raise GraphError("a swarm needs at least one input (e.g. 'question')")
        if len(set(self.inputs)) != len(self.inputs):
            raise GraphError(f"the swarm lists an input twice: {list(self.inputs)}")
        pairs = list(agents.items()) if isinstance(agents, Mapping) else list(agents)
        if not pairs:
            raise GraphError("a swarm needs at least one agent")
        self.agents: dict[str, Graph] = {}
        for agent_name, graph in pairs:
            _check_name(agent_name, "agent")
            if agent_name in self.agents:
                raise DuplicateNameError(agent_name, "agent")
            if agent_name in self.inputs:
                raise DuplicateNameError(agent_name, "swarm input and agent")
            if not isinstance(graph, Graph):
                raise GraphError(
                    f"agent {agent_name!r} must be a Graph, got {type(graph).__name__}"
                )
            missing = [i for i in graph.inputs if i not in self.inputs]
            if missing:
                raise GraphError(
                    f"agent {agent_name!r} reads input(s) {missing}, which the swarm does not "
                    f"have (its inputs: {list(self.inputs)}); add them to the swarm's inputs"
                )
            self.agents[agent_name] = graph
        _check_name(decision.name, "decision node")
        if decision.name in self.agents:
            raise DuplicateNameError(decision.name, "agent and decision node")
        if decision.name in self.inputs:
            raise DuplicateNameError(decision.name, "swarm input and decision node")
        for ref in decision.inputs:
            if ref not in self.inputs:
                raise UnknownReferenceError(decision.name, ref, list(self.inputs))
        self.decision = decision
        self._check_parameters_not_shared()
        self.edges: tuple[EdgeParameter, ...] = tuple(edges)
        self._ends = [self._check_edge(e) for e in self.edges]
        seen: set[str] = set()
        for e in self.edges:
            if e.name in seen:
                raise DuplicateNameError(e.name, "potential edge")
            seen.add(e.name)
        # Fixed wiring, node level: flat node -> its successors inside its agent.
        self._fixed: dict[str, list[str]] = {self.decision.name: []}
        for agent_name, graph in self.agents.items():
            for node_name, succs in graph.successors_map().items():
                self._fixed[self.flat(agent_name, node_name)] = [
                    self.flat(agent_name, s) for s in succs
                ]
        for pname, param in self.named_parameters():
            param.name = pname

    # -- structure -----------------------------------------------------------------------

    @staticmethod
    def flat(agent: str, node: str) -> str:
        """The name of an agent's node in a realised graph: ``a1/final``."""
        return f"{agent}{SEPARATOR}{node}"

    def _check_parameters_not_shared(self) -> None:
        owner: dict[int, str] = {}
        for agent_name, graph in self.agents.items():
            for pname, param in graph.named_parameters():
                here = self.flat(agent_name, pname)
                if id(param) in owner:
                    raise GraphError(
                        f"{owner[id(param)]} and {here} are the same Parameter object: two "
                        f"agents built from one graph would share their instructions. Give "
                        f"each agent its own graph (graph.copy())."
                    )
                owner[id(param)] = here
        if isinstance(self.decision, LLMNode) and id(self.decision.instruction) in owner:
            raise GraphError(
                f"the decision node's instruction is the same Parameter object as "
                f"{owner[id(self.decision.instruction)]}; give it its own Parameter"
            )

    def _check_edge(self, edge: EdgeParameter) -> tuple[str, str]:
        """Validate one potential edge; return its (source, target) flat node names."""
        if not isinstance(edge, EdgeParameter):
            raise GraphError(f"edges must be EdgeParameter objects, got {type(edge).__name__}")
        if edge.source not in self.agents:
            raise UnknownReferenceError(edge.name, edge.source, list(self.agents))
        source = self.flat(edge.source, self.agents[edge.source].output)
        if edge.target == self.decision.name:
            return source, edge.target
        agent, sep, node = edge.target.partition(SEPARATOR)
        if not sep:
            hint = ""
            if "." in edge.target:
                a, _, n = edge.target.partition(".")
                hint = f" Write {self.flat(a, n)!r}: '/' joins an agent and its node."
            elif edge.target in self.agents:
                nodes = ", ".join(self.flat(edge.target, n) for n in self.agents[edge.target].nodes)
                hint = f" An edge to an agent names one of its nodes: {nodes}."
            raise GraphError(
                f"edge {edge.name!r}: target {edge.target!r} is neither the decision node "
                f"{self.decision.name!r} nor 'agent{SEPARATOR}node'.{hint}"
            )
        if agent not in self.agents:
            raise UnknownReferenceError(edge.name, edge.target, list(self.agents))
        if node not in self.agents[agent].nodes:
            known = [self.flat(agent, n) for n in self.agents[agent].nodes]
            raise UnknownReferenceError(edge.name, edge.target, known)
        if agent == edge.source:
            raise GraphError(
                f"edge {edge.name!r} joins two nodes of agent {agent!r}: the wiring inside an "
                f"agent is fixed; put it in the agent's graph instead"
            )
        return source, edge.target

    def _reaches(self, succ: Mapping[str, list[str]], start: str, goal: str) -> bool:
        stack, seen = [start], {start}
        while stack:
            current = stack.pop()
            if current == goal:
                return True
            for nxt in succ[current]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    def _decide(self, choose: Callable[[EdgeParameter], bool]) -> dict[str, bool | None]:
        """Visit the potential edges in order; skip one that would close a cycle given the
        edges kept so far (None), else keep it iff `choose(edge)`."""
        succ = {n: list(s) for n, s in self._fixed.items()}
        out: dict[str, bool | None] = {}
        for edge, (source, target) in zip(self.edges, self._ends, strict=True):
            if self._reaches(succ, target, source):
                out[edge.name] = None
                continue
            keep = bool(choose(edge))
            out[edge.name] = keep
            if keep:
                succ[source].append(target)
        return out

    # -- realising graphs ------------------------------------------------------------------

    def realise(self, decisions: Decisions | None = None, *, prune: bool = True) -> Graph:
        """The flat graph with the kept edges (`decisions[name]` true); others left out.

        Agent nodes are renamed ``agent/node`` and share their `Parameter` objects with
        this swarm. An edge's source arrives at its target as one more input, after the
        target's own inputs, in edge order. With `prune`, nodes the answer does not depend
        on are left out.
        """
        decisions = dict(decisions or {})
        unknown = [k for k in decisions if k not in {e.name for e in self.edges}]
        if unknown:
            raise GraphError(
                f"decisions name edge(s) {unknown} that the swarm does not have; its edges: "
                f"{[e.name for e in self.edges]}"
            )
        incoming: dict[str, list[str]] = {}
        for edge, (source, target) in zip(self.edges, self._ends, strict=True):
            if decisions.get(edge.name):
                incoming.setdefault(target, []).append(source)
        nodes: list[Node] = []
        for agent_name, graph in self.agents.items():
            for node in graph.nodes.values():
                flat = self.flat(agent_name, node.name)
                own = [r if r in graph.inputs else self.flat(agent_name, r) for r in node.inputs]
                nodes.append(
                    dataclasses.replace(node, name=flat, inputs=(*own, *incoming.get(flat, [])))
                )
        voters = incoming.get(self.decision.name, [])
        if voters:
            nodes.append(
                dataclasses.replace(self.decision, inputs=(*self.decision.inputs, *voters))
            )
        else:
            # Nothing to decide from: an empty answer, scored as a failure by any metric.
            nodes.append(FunctionNode(self.decision.name, (self.inputs[0],), "no_answer"))
        if prune:
            nodes = self._needed(nodes)
        return Graph(self.inputs, nodes, self.decision.name, name=self.name)

    def _needed(self, nodes: list[Node]) -> list[Node]:
        """The nodes the decision depends on, in their declared order."""
        by_name = {n.name: n for n in nodes}
        keep = {self.decision.name}
        stack = [self.decision.name]
        while stack:
            for ref in by_name[stack.pop()].inputs:
                if ref in by_name and ref not in keep:
                    keep.add(ref)
                    stack.append(ref)
        return [n for n in nodes if n.name in keep]

    def threshold_decisions(
        self, threshold: float = 0.5, *, temperature: float = 1.0
    ) -> dict[str, bool | None]:
        """The deterministic choice: keep an edge iff p >= `threshold` (cycles skipped)."""
        if not 0.0 < threshold < 1.0:
            raise GraphError(f"the threshold must be strictly between 0 and 1, got {threshold!r}")
        return self._decide(lambda e: e.probability(temperature) >= threshold)

    def realise_deterministic(
        self, threshold: float = 0.5, *, temperature: float = 1.0, prune: bool = True
    ) -> Graph:
        """The final graph: every edge with p >= `threshold`, in order, cycles skipped."""
        return self.realise(
            self.threshold_decisions(threshold, temperature=temperature), prune=prune
        )

    def sample(self, rng: random.Random, temperature: float = 1.0) -> SampledGraph:
        """Draw a graph: each edge in order is kept with probability σ(logit / T), except
        one that would close a cycle, which is skipped. Reproducible from `rng`'s seed."""
        probabilities = {e.name: e.probability(temperature) for e in self.edges}
        decisions = self._decide(lambda e: rng.random() < probabilities[e.name])
        return SampledGraph(
            decisions=decisions,
            probabilities=probabilities,
            log_prob=self.log_prob(decisions, temperature=temperature),
            temperature=temperature,
            graph=self.realise(decisions),
        )

    def log_prob(self, decisions: Decisions, *, temperature: float = 1.0) -> float:
        """log p(G) under the current logits: the sum over decided edges (skipped ones,
        None, count nothing)."""
        by_name = {e.name: e for e in self.edges}
        total = 0.0
        for edge_name, keep in decisions.items():
            if edge_name not in by_name:
                raise GraphError(f"no potential edge {edge_name!r} in swarm {self.name!r}")
            if keep is not None:
                total += decision_log_prob(by_name[edge_name].logit, keep, temperature)
        return total

    # -- parameters --------------------------------------------------------------------------

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every text parameter, agents first: ``a1/final.instruction``, then the decision's."""
        for agent_name, graph in self.agents.items():
            for pname, param in graph.named_parameters():
                yield self.flat(agent_name, pname), param
        if isinstance(self.decision, LLMNode):
            yield from self.decision.named_parameters()

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_edges(self) -> Iterator[tuple[str, EdgeParameter]]:
        for edge in self.edges:
            yield edge.name, edge

    def probabilities(self, temperature: float = 1.0) -> dict[str, float]:
        """Edge name -> the probability it is kept, σ(logit / T)."""
        return {e.name: e.probability(temperature) for e in self.edges}

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.zero_grad()
        for e in self.edges:
            e.zero_grad()

    def state_dict(self) -> dict[str, str]:
        """The text parameters by name, like `Graph.state_dict` (the logits are in
        `edge_state_dict`)."""
        return {name: p.value for name, p in self.named_parameters()}

    def load_state_dict(self, state: Mapping[str, str], *, strict: bool = True) -> None:
        params = dict(self.named_parameters())
        _check_keys(state, params, f"swarm {self.name!r}", strict)
        for key, value in state.items():
            if key in params:
                if not isinstance(value, str):
                    raise GraphError(
                        f"state dict entry {key!r} must be text, got {type(value).__name__}"
                    )
                params[key].value = value

    def edge_state_dict(self) -> dict[str, float]:
        """Edge name -> logit."""
        return {e.name: e.logit for e in self.edges}

    def load_edge_state_dict(self, state: Mapping[str, float], *, strict: bool = True) -> None:
        edges = dict(self.named_edges())
        _check_keys(state, edges, f"swarm {self.name!r} (edges)", strict)
        for key, value in state.items():
            if key in edges:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise GraphError(f"edge logit {key!r} must be a number, got {value!r}")
                edges[key].logit = float(value)

    # -- JSON ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The swarm spec as plain data (`semgrad.swarm.spec.swarm_from_dict` reads it)."""
        return {
            "semgrad": SPEC_VERSION,
            "kind": "swarm",
            "name": self.name,
            "inputs": list(self.inputs),
            "agents": [{"name": n, "graph": g.to_dict()} for n, g in self.agents.items()],
            "decision": node_to_dict(self.decision),
            "edges": [
                {"from": e.source, "to": e.target, "p0": e.p0, "logit": e.logit} for e in self.edges
            ],
        }

    def __repr__(self) -> str:
        return (
            f"Swarm(name={self.name!r}, inputs={list(self.inputs)}, "
            f"agents={list(self.agents)}, decision={self.decision.name!r}, "
            f"edges={[e.name for e in self.edges]})"
        )


def _check_keys(
    state: Mapping[str, Any], known: Mapping[str, Any], what: str, strict: bool
) -> None:
    if not strict:
        return
    missing = [k for k in known if k not in state]
    unexpected = [k for k in state if k not in known]
    if missing or unexpected:
        raise GraphError(
            f"state dict does not match {what}: missing {missing or 'nothing'}, "
            f"unexpected {unexpected or 'nothing'}. Pass strict=False to load only the "
            f"matching entries."
        )
