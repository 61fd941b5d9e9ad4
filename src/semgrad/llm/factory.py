"""Make a model client from a name: an embedded model, a .gguf path, or a server URL."""

from __future__ import annotations

from semgrad.llm.types import LLM

__all__ = ["close_client", "make_client"]


def make_client(
    model: str,
    *,
    base_url: str | None = None,
    api_key_env: str | None = None,
    slots: int = 4,
) -> LLM:
    """`OpenAICompatible` when `base_url` is given, else the embedded `LocalLLM`.

    An embedded model is resolved now, so a missing or corrupt model fails here with a
    clear message; it is loaded lazily at its first real call.
    """
    if base_url:
        from semgrad.llm.openai import OpenAICompatible

        return OpenAICompatible(base_url, model, api_key_env=api_key_env)
    from semgrad.llm.local import LocalLLM
    from semgrad.llm.models import resolve_model

    resolve_model(model)
    return LocalLLM(model, n_parallel=slots)


async def close_client(client: LLM) -> None:
    """Release what a client holds (HTTP connections, a loaded model)."""
    aclose = getattr(client, "aclose", None)
    if callable(aclose):
        await aclose()
        return
    close = getattr(client, "close", None)
    if callable(close):
        close()
