"""Graphs as pure data (no I/O, no models)."""

from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo, DemoParameter, FunctionNode, Graph, LLMNode, Node, Parameter
from semgrad.graph.functions import BUILTINS, resolve_function
from semgrad.graph.spec import graph_from_dict, load_graph

__all__ = [
    "BUILTINS",
    "Demo",
    "DemoParameter",
    "FunctionNode",
    "Graph",
    "LLMNode",
    "Node",
    "Parameter",
    "graph_from_dict",
    "hint_graph",
    "load_graph",
    "resolve_function",
]
