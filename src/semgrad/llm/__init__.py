"""The LLM layer: the `LLM` protocol, clients that implement it, and wrappers around them.

types    Request, Response, Usage, Message, Phase and the `LLM` protocol
openai   OpenAICompatible: any chat completions server over HTTP
cache    Cache (SQLite) and CachedLLM
retry    RetryPolicy and RetryingLLM
limit    LimitedLLM
meter    Meter, MeterSnapshot and MeteredLLM
stack    build_llm: the wrappers composed in the right order; build_stack: the LLMs a
         [models] config names, with one policy (the CLI and the trainer use it)
config   ModelsConfig / ModelConfig (the [models] section) and every default
fakes    ScriptedLLM, EchoLLM, FakeOpenAIServer, for tests (yours too)
"""

from semgrad.llm.cache import Cache, CachedLLM, CacheMode, CacheStats
from semgrad.llm.config import ModelConfig, ModelsConfig
from semgrad.llm.fakes import EchoLLM, FakeOpenAIServer, ScriptedLLM
from semgrad.llm.limit import LimitedLLM
from semgrad.llm.meter import Meter, MeteredLLM, MeterRow, MeterSnapshot, Spend
from semgrad.llm.openai import OpenAICompatible
from semgrad.llm.retry import RetryingLLM, RetryPolicy, is_retryable
from semgrad.llm.stack import LLMStack, build_llm, build_stack, find_layer
from semgrad.llm.types import (
    ALL_PHASES,
    LLM,
    PHASES,
    Message,
    Phase,
    Request,
    Response,
    Usage,
    canonical_json,
)

# The embedded local model (LocalLLM) and the model registry are exported here too once
# their modules exist.

__all__ = [
    "ALL_PHASES",
    "LLM",
    "PHASES",
    "Cache",
    "CacheMode",
    "CacheStats",
    "CachedLLM",
    "EchoLLM",
    "FakeOpenAIServer",
    "LLMStack",
    "LimitedLLM",
    "Message",
    "Meter",
    "MeterRow",
    "MeterSnapshot",
    "MeteredLLM",
    "ModelConfig",
    "ModelsConfig",
    "OpenAICompatible",
    "Phase",
    "Request",
    "Response",
    "RetryPolicy",
    "RetryingLLM",
    "ScriptedLLM",
    "Spend",
    "Usage",
    "build_llm",
    "build_stack",
    "canonical_json",
    "find_layer",
    "is_retryable",
]
