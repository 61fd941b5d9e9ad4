"""Running graphs: the run context, the async executor, traces."""

from semgrad.execution.context import RunContext
from semgrad.execution.executor import forward, forward_many, is_fatal, run
from semgrad.execution.trace import NodeTrace, Trace

__all__ = ["NodeTrace", "RunContext", "Trace", "forward", "forward_many", "is_fatal", "run"]
