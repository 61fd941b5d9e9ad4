"""The `[models]` config and every default of the LLM stack, in one place.

The CLI options, `LocalLLM`, `semgrad serve`, the stack builder and the run config all take
their defaults from here, so changing one default changes it everywhere.

Scoring is deterministic by default: one slot and no prompt cache. llama.cpp decodes the
requests of busy slots in one batch and reuses a slot's cached prompt prefix; both change
float rounding, so a temperature-0 reply can differ between two runs of the same request
(`semgrad.llm.local` has the measurements). With `slots = 1` and `prompt_cache = false` the
same graph scored twice on the same items gives the same replies, also without the
response cache. More slots (and the prompt cache) trade that for throughput. Neither
setting is part of a request, so the response cache's keys do not depend on them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from semgrad.llm.cache import CacheMode

__all__ = [
    "DEFAULT_BACKWARD_MODEL",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_CTX_PER_SLOT",
    "DEFAULT_FORWARD_MODEL",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_PROMPT_CACHE",
    "DEFAULT_REPLICAS",
    "DEFAULT_SLOTS",
    "ModelConfig",
    "ModelsConfig",
    "StrictConfig",
]

# The embedded pair: a fast small model for the forward pass, a larger one for the
# backward and optimizer calls (the paper's cheap-forward / strong-optimizer split).
DEFAULT_FORWARD_MODEL = "qwen2.5-coder-0.5b"
DEFAULT_BACKWARD_MODEL = "qwen2.5-coder-1.5b"
# Parallel slots of an embedded model: 1 repeats exactly (see the module doc).
DEFAULT_SLOTS = 1
# llama.cpp's reuse of a cached prompt prefix: off, because it changes replies.
DEFAULT_PROMPT_CACHE = False
# Independent copies of an embedded model side by side, each with `slots` slots and a share
# of the threads; with one slot each, replies stay those of a single copy. Two copies with one
# thread each scored 1.55x as fast as one copy with two threads on 2 cores, and faster than
# four batched slots (benchmarks/determinism_replicas.json); never more copies than threads.
DEFAULT_REPLICAS = 2
# Tokens of context (prompt plus reply) per slot of an embedded model.
DEFAULT_CTX_PER_SLOT = 4096
# Graph nodes (hence model calls) in flight at once.
DEFAULT_CONCURRENCY = 8
# Attempts per model call on 429/5xx/timeouts/connection errors (the first try included).
DEFAULT_MAX_ATTEMPTS = 5


class StrictConfig(BaseModel):
    """A config section: unknown keys are refused, values are frozen, and types are not
    coerced (`steps = true` or `steps = "3"` is an error, not 1 or 3)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ModelConfig(StrictConfig):
    """A model: an embedded one (registry name or .gguf path) or an OpenAI-compatible server."""

    model: str
    base_url: str | None = None
    api_key_env: str | None = None

    def key(self) -> tuple[str, str | None, str | None]:
        return (self.model, self.base_url, self.api_key_env)


class ModelsConfig(StrictConfig):
    """The `[models]` section: a model per role and how they are called.

    `slots`, `prompt_cache` and `replicas` apply to embedded models only (a server has its own
    settings); `cache` is a path relative to the config file. The cache keys a server's
    replies by its base URL, so one server's answers are never served for another's;
    `cache_namespace` names a share instead: servers given the same namespace share their
    entries (same model name, same request), e.g. two replicas of one deployment.
    """

    forward: ModelConfig = ModelConfig(model=DEFAULT_FORWARD_MODEL)
    backward: ModelConfig = ModelConfig(model=DEFAULT_BACKWARD_MODEL)
    optimizer: ModelConfig = ModelConfig(model=DEFAULT_BACKWARD_MODEL)
    # The model that answers the output node for demonstrations (`[optimizer] teacher`);
    # unset: the backward model. Its requests count as strong-model requests.
    teacher: ModelConfig | None = None
    slots: int = Field(DEFAULT_SLOTS, ge=1, le=64)
    prompt_cache: bool = DEFAULT_PROMPT_CACHE
    replicas: int = Field(DEFAULT_REPLICAS, ge=1, le=64)
    ctx_per_slot: int = Field(DEFAULT_CTX_PER_SLOT, ge=256, le=1_048_576)
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=1024)
    cache: str | None = None
    cache_mode: CacheMode = "read-write"
    cache_namespace: str | None = Field(None, min_length=1, max_length=200)
    max_attempts: int = Field(DEFAULT_MAX_ATTEMPTS, ge=1, le=100)

    @field_validator("forward", "backward", "optimizer", "teacher", mode="before")
    @classmethod
    def _string_is_a_model_name(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    def role(self, role: str) -> ModelConfig:
        """The model of `role` (``teacher`` unset: the backward model)."""
        if role == "teacher":
            return self.teacher or self.backward
        spec = getattr(self, role, None)
        if not isinstance(spec, ModelConfig):
            raise ValueError(
                f"no model role {role!r}; the roles are forward, backward, optimizer, teacher"
            )
        return spec
