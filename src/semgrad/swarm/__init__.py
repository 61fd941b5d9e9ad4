"""Composite graphs and edge optimization (GPTSwarm's other half, ALGORITHMS.md §5).

composite  Swarm (agents, a decision node, potential edges), SampledGraph; realising a
           choice of edges as an ordinary flat Graph that shares the swarm's parameters
edges      EdgeParameter (a logit per potential edge) and the probability math
spec       the JSON form ("kind": "swarm"), load_swarm, load_spec for either kind
optimizer  EdgeOptimizer (REINFORCE + Adam), sample_utilities (score sampled graphs)
"""

from semgrad.swarm.composite import SEPARATOR, SampledGraph, Swarm
from semgrad.swarm.edges import EdgeParameter, logit, sigmoid
from semgrad.swarm.optimizer import (
    EdgeOptimizer,
    EdgeUpdate,
    ScoredGraph,
    reinforce_gradient,
    sample_utilities,
    score_samples,
)
from semgrad.swarm.spec import (
    is_swarm_file,
    is_swarm_spec,
    load_spec,
    load_swarm,
    spec_from_dict,
    swarm_from_dict,
)

__all__ = [
    "SEPARATOR",
    "EdgeOptimizer",
    "EdgeParameter",
    "EdgeUpdate",
    "SampledGraph",
    "ScoredGraph",
    "Swarm",
    "is_swarm_file",
    "is_swarm_spec",
    "load_spec",
    "load_swarm",
    "logit",
    "reinforce_gradient",
    "sample_utilities",
    "score_samples",
    "sigmoid",
    "spec_from_dict",
    "swarm_from_dict",
]
