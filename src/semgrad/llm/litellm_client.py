"""`LiteLLMClient`: an `LLM` over LiteLLM, for providers that do not speak the OpenAI API
(Anthropic, Bedrock, Vertex AI, Cohere, …). Optional: ``pip install 'semgrad[litellm]'``.

    llm = sg.build_llm(LiteLLMClient("anthropic/claude-3-5-haiku-latest",
                                     api_key_env="ANTHROPIC_API_KEY"), cache=sg.Cache("c.sqlite"))

An OpenAI-compatible server (OpenAI, Ollama, vLLM, llama.cpp, `semgrad serve`) needs no
LiteLLM: use `OpenAICompatible` (``--base-url``). The client makes one
``litellm.acompletion`` call per request and nothing else (retries, caching and limits are
semgrad's wrappers, so LiteLLM's own retries are off); errors become semgrad's: 401, 403
and 404 are fatal, 429 and 5xx retryable, timeouts and connection errors as for a server.
The API key is read from the environment variable `api_key_env` names at call time, and
scrubbed from error text. LiteLLM is imported at the first call, not before.
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any

from semgrad.errors import (
    ConfigError,
    FatalHTTPError,
    LLMConnectionError,
    LLMHTTPError,
    LLMTimeoutError,
    MalformedResponseError,
)
from semgrad.llm.openai import _redact
from semgrad.llm.types import Request, Response, Usage

__all__ = ["LiteLLMClient"]


class LiteLLMClient:
    """An `LLM` for any provider LiteLLM knows, by LiteLLM's model name
    (``"provider/model"``). `api_base` points it at a non-default endpoint; `timeout` is
    in seconds; `options` go to every ``litellm.acompletion`` call as they are."""

    def __init__(
        self,
        model: str,
        *,
        api_key_env: str | None = None,
        api_base: str | None = None,
        timeout: float = 120.0,
        **options: Any,
    ) -> None:
        if not model:
            raise ConfigError("model must name a LiteLLM model, e.g. 'anthropic/...'.", "model")
        if api_key_env is not None and not api_key_env:
            raise ConfigError(
                "api_key_env is empty; pass the *name* of the environment variable holding "
                "the key (e.g. 'ANTHROPIC_API_KEY'), or None to let LiteLLM find it.",
                key="api_key_env",
            )
        self._model = model
        self._api_key_env = api_key_env
        self._api_base = api_base.rstrip("/") if api_base else None
        self._timeout = timeout
        self._options = options

    @property
    def model(self) -> str:
        return self._model

    @property
    def endpoint(self) -> str:
        """For the cache's keys: the `api_base`, else the provider LiteLLM routes to."""
        return self._api_base or f"litellm:{self._model.split('/', 1)[0]}"

    def __repr__(self) -> str:
        return f"LiteLLMClient({self._model!r}, api_base={self._api_base!r})"

    async def complete(self, request: Request) -> Response:
        litellm = _import_litellm()
        key = self._read_api_key()
        kwargs: dict[str, Any] = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "top_p": request.top_p,
            "seed": request.sampling_seed,
            "timeout": self._timeout,
            "num_retries": 0,
            **self._options,
        }
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if key is not None:
            kwargs["api_key"] = key
        if self._api_base is not None:
            kwargs["api_base"] = self._api_base
        start = time.perf_counter()
        try:
            reply = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise self._error(exc, key) from exc
        return _response(reply, self._model, time.perf_counter() - start)

    def _read_api_key(self) -> str | None:
        if self._api_key_env is None:
            return None
        key = os.environ.get(self._api_key_env)
        if not key:
            raise ConfigError(
                f"the environment variable {self._api_key_env} is not set or is empty, and "
                f"the LiteLLM client for {self._model} reads its API key from it. Set it "
                f"(export {self._api_key_env}=...)."
            )
        return key

    def _error(self, exc: Exception, key: str | None) -> Exception:
        where = self.endpoint
        detail = _redact(str(exc) or type(exc).__name__, key)
        status = getattr(exc, "status_code", None)
        name = type(exc).__name__
        if "Timeout" in name:
            return LLMTimeoutError(where, self._timeout)
        if isinstance(status, int) and status in FatalHTTPError.STATUSES:
            return FatalHTTPError(status, detail, url=where, model=self._model)
        if isinstance(status, int) and (status == 429 or status >= 500):
            return LLMHTTPError(status, detail, url=where)
        if "Connection" in name:
            return LLMConnectionError(where, detail)
        if isinstance(status, int):
            return LLMHTTPError(status, detail, url=where)
        return LLMConnectionError(where, f"{name}: {detail}")


def _import_litellm() -> Any:
    try:
        return importlib.import_module("litellm")
    except ImportError:
        raise ConfigError(
            "LiteLLMClient needs LiteLLM: pip install 'semgrad[litellm]'. For an "
            "OpenAI-compatible server, use --base-url (OpenAICompatible) instead.",
            key="model",
        ) from None


def _field(obj: Any, name: str) -> Any:
    """`obj.name` or `obj[name]`: LiteLLM's responses allow both, plain dicts only one."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _response(reply: Any, model: str, latency_s: float) -> Response:
    choices = _field(reply, "choices")
    first = choices[0] if isinstance(choices, list | tuple) and choices else None
    content = _field(_field(first, "message"), "content") if first is not None else None
    if not isinstance(content, str):
        raise MalformedResponseError(
            "LiteLLM returned no text at choices[0].message.content",
            raw=repr(reply)[:2000],
            retryable=True,
        )
    usage = _field(reply, "usage")
    finish_reason = _field(first, "finish_reason")
    return Response(
        text=content,
        usage=Usage(
            _count(_field(usage, "prompt_tokens")), _count(_field(usage, "completion_tokens"))
        ),
        model=model,
        finish_reason=finish_reason if isinstance(finish_reason, str) else "stop",
        latency_s=latency_s,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
