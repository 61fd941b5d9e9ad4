"""semgrad: trainable compound LLM systems.

The curated public API. Everything here is stable across minor versions; the submodules
(`semgrad.graph`, `semgrad.llm`, `semgrad.execution`, `semgrad.data`, `semgrad.evaluation`,
`semgrad.swarm`) hold the rest. The types that public functions return are exported with
them (`Trace`, `BackwardResult`, `Proposal`, `EvalResult`, ...).

Sync and async: the engine's primitives are coroutines without a prefix (`forward`,
`forward_many`, `backward`, `backward_many`); an operation that also has a sync door for
code outside an event loop pairs ``aname`` (the coroutine) with ``name`` (the door):
`aevaluate`/`evaluate`, `afit`/`fit`; `run` is the sync door of `forward`.
"""

from semgrad.autograd import (
    BackwardCall,
    BackwardResult,
    backward,
    backward_many,
    final_feedback,
)
from semgrad.data import Example, Task, load_task, split
from semgrad.errors import SemgradError
from semgrad.evaluation import LLMJudge, Metric, Score, metric_for, resolve_metric, task_metric
from semgrad.evaluation.evaluator import EvalResult, ExampleResult, aevaluate, evaluate
from semgrad.execution import NodeTrace, RunContext, Trace, forward, forward_many, run
from semgrad.graph import (
    Demo,
    DemoParameter,
    FunctionNode,
    Graph,
    LLMNode,
    Parameter,
    graph_from_dict,
    hint_graph,
    load_graph,
)
from semgrad.graph.core import GradientEntry
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
    Optimizer,
    Proposal,
    RunConfig,
    RunResult,
    SemanticGradientDescent,
    Trainer,
    afit,
    fit,
    load_config,
    records,
)
from semgrad.swarm import EdgeOptimizer, EdgeParameter, Swarm, load_swarm

__version__ = "0.1.0"

__all__ = [
    "LLM",
    "BackwardCall",
    "BackwardResult",
    "Cache",
    "Demo",
    "DemoParameter",
    "EchoLLM",
    "EdgeOptimizer",
    "EdgeParameter",
    "EvalResult",
    "Example",
    "ExampleResult",
    "FunctionNode",
    "GradientEntry",
    "Graph",
    "LLMJudge",
    "LLMNode",
    "LocalLLM",
    "Meter",
    "Metric",
    "NodeOptimizer",
    "NodeTrace",
    "OpenAICompatible",
    "Optimizer",
    "Parameter",
    "Proposal",
    "Request",
    "Response",
    "RetryPolicy",
    "RunConfig",
    "RunContext",
    "RunResult",
    "Score",
    "ScriptedLLM",
    "SemanticGradientDescent",
    "SemgradError",
    "Swarm",
    "Task",
    "Trace",
    "Trainer",
    "Usage",
    "__version__",
    "aevaluate",
    "afit",
    "backward",
    "backward_many",
    "build_llm",
    "evaluate",
    "final_feedback",
    "fit",
    "forward",
    "forward_many",
    "graph_from_dict",
    "hint_graph",
    "load_config",
    "load_graph",
    "load_swarm",
    "load_task",
    "metric_for",
    "records",
    "resolve_metric",
    "run",
    "split",
    "task_metric",
]
