"""semgrad: trainable compound LLM systems.

The curated public API. Everything here is stable across minor versions; the submodules
(`semgrad.graph`, `semgrad.llm`, `semgrad.execution`, `semgrad.data`, `semgrad.evaluation`,
`semgrad.swarm`) hold the rest.
"""

from semgrad.autograd import backward
from semgrad.data import Example, Task, load_task, split
from semgrad.errors import SemgradError
from semgrad.evaluation import LLMJudge, Metric, Score, metric_for, resolve_metric
from semgrad.evaluation.evaluator import EvalResult, ExampleResult, aevaluate, evaluate
from semgrad.execution import NodeTrace, RunContext, Trace, forward, forward_many, run
from semgrad.graph import FunctionNode, Graph, LLMNode, Parameter, hint_graph, load_graph
from semgrad.llm import (
    LLM,
    Cache,
    EchoLLM,
    Meter,
    OpenAICompatible,
    Request,
    Response,
    RetryPolicy,
    ScriptedLLM,
    Usage,
    build_llm,
)
from semgrad.llm.local import LocalLLM
from semgrad.optim import (
    NodeOptimizer,
    RunConfig,
    SemanticGradientDescent,
    fit,
    load_config,
)
from semgrad.swarm import EdgeOptimizer, EdgeParameter, Swarm, load_swarm

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "Cache",
    "EchoLLM",
    "EdgeOptimizer",
    "EdgeParameter",
    "EvalResult",
    "Example",
    "ExampleResult",
    "FunctionNode",
    "Graph",
    "LLMJudge",
    "LLMNode",
    "LocalLLM",
    "Meter",
    "Metric",
    "NodeOptimizer",
    "NodeTrace",
    "OpenAICompatible",
    "Parameter",
    "Request",
    "Response",
    "RetryPolicy",
    "RunConfig",
    "RunContext",
    "Score",
    "ScriptedLLM",
    "SemanticGradientDescent",
    "SemgradError",
    "Swarm",
    "Task",
    "Trace",
    "Usage",
    "__version__",
    "aevaluate",
    "backward",
    "build_llm",
    "evaluate",
    "fit",
    "forward",
    "forward_many",
    "hint_graph",
    "load_config",
    "load_graph",
    "load_swarm",
    "load_task",
    "metric_for",
    "resolve_metric",
    "run",
    "split",
]
