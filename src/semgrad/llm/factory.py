"""Make a model client from a name: an embedded model, a .gguf path, or a server URL."""

from __future__ import annotations

from pathlib import Path

from semgrad.llm.config import (
    DEFAULT_CTX_PER_SLOT,
    DEFAULT_PROMPT_CACHE,
    DEFAULT_REPLICAS,
    DEFAULT_SLOTS,
)
from semgrad.llm.types import LLM

__all__ = ["close_client", "default_cache_path", "make_client"]


def default_cache_path() -> Path:
    """`$SEMGRAD_HOME/cache.sqlite` (default `~/.cache/semgrad/cache.sqlite`), read at call time."""
    from semgrad.llm.models import models_home

    return models_home() / "cache.sqlite"


def make_client(
    model: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    slots: int = DEFAULT_SLOTS,
    prompt_cache: bool = DEFAULT_PROMPT_CACHE,
    ctx_per_slot: int = DEFAULT_CTX_PER_SLOT,
    replicas: int = DEFAULT_REPLICAS,
) -> LLM:
    """`OpenAICompatible` when `base_url` is given, else the embedded `LocalLLM` with
    `slots` parallel slots of `ctx_per_slot` tokens and llama.cpp's prompt cache on or off
    (`semgrad.llm.config` says why one slot and no prompt cache is the default).

    An embedded model is resolved now, so a missing or corrupt model fails here with a
    clear message; it is loaded lazily at its first real call.
    """
    if base_url:
        from semgrad.llm.openai import OpenAICompatible

        return OpenAICompatible(base_url, model, api_key_env=api_key_env)
    from semgrad.llm.local import LocalLLM
    from semgrad.llm.models import resolve_model

    resolve_model(model)
    return LocalLLM(
        model,
        n_parallel=slots,
        n_ctx_per_slot=ctx_per_slot,
        prompt_cache=prompt_cache,
        replicas=replicas,
    )


async def close_client(client: LLM) -> None:
    """Release what a client holds (HTTP connections, a loaded model)."""
    aclose = getattr(client, "aclose", None)
    if callable(aclose):
        await aclose()
        return
    close = getattr(client, "close", None)
    if callable(close):
        close()
