"""`OpenAICompatible`: an `LLM` that speaks the chat completions API over HTTP.

One client covers OpenAI, vLLM, SGLang, Ollama, llama.cpp's server and LM Studio: they all
accept `POST {base_url}/chat/completions`. The client does one HTTP call per request and
nothing else; retrying, caching, limiting and metering are wrappers (see `semgrad.llm`).

Secrets: the client holds the *name* of the environment variable with the API key, never
the key. The key is read at call time, sent only in the Authorization header, and scrubbed
from the text we keep of what the server sends back (the reply text after JSON parsing, an
error body, a connection error), by exact match of the key's value. The raw JSON is parsed
untouched: redacting it first would corrupt replies whenever the key is a common substring.
Keys shorter than `_MIN_SECRET_CHARS` are not redacted at all: such a value occurs in
ordinary text by chance, so replacing it would garble replies and hide nothing.

HTTP 401, 403 and 404 raise `FatalHTTPError` (a user error: every later call would fail the
same way), 429 and 5xx raise a retryable `LLMHTTPError`, and a 2xx whose body is not a chat
completion raises `MalformedResponseError` (retried too: proxies truncate bodies).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import os
import re
import ssl
import time
from datetime import UTC, datetime
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from semgrad.errors import (
    ConfigError,
    FatalHTTPError,
    LLMConnectionError,
    LLMHTTPError,
    LLMTimeoutError,
    MalformedResponseError,
)
from semgrad.llm.types import Request, Response, Usage
from semgrad.text import shorten

__all__ = ["OpenAICompatible", "parse_retry_after", "request_body"]

# The clients this object creates: a few small pools instead of one large one, because
# httpcore's pool (1.0.x) scans every connection for every queued request on every event,
# which costs milliseconds of CPU per request at 64 in flight and caps throughput; 16 pools
# of 8 connections each keep that scan short and still allow 128 connections in all.
_POOLS = 16
_CONNECTIONS_PER_POOL = 8


class OpenAICompatible:
    """A chat completions client for any OpenAI-compatible server.

    `base_url` is the API root the server documents, usually ending in `/v1`
    (e.g. `http://127.0.0.1:8080/v1`); requests go to `{base_url}/chat/completions`.
    `api_key_env` names the environment variable holding the key (e.g. `"OPENAI_API_KEY"`);
    leave it `None` for servers without authentication. `timeout` bounds each phase of a
    call (connect, write, read, waiting for a pooled connection), in seconds.

    Pass `http_client` to share or customise an `httpx.AsyncClient`; the caller then owns
    it and `aclose()` leaves it open. Otherwise a client is created on first use.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout: float = 120.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"base_url {base_url!r} is not an http(s) URL; pass the server's API root, "
                f"e.g. 'http://127.0.0.1:8080/v1'.",
                key="base_url",
            )
        try:
            url = httpx.URL(base_url)
            port = url.port
        except (httpx.InvalidURL, ValueError) as exc:
            raise ConfigError(
                f"base_url {shorten(repr(base_url), 300)} is not a valid URL ({exc}); pass "
                f"the server's API root, e.g. 'http://127.0.0.1:8080/v1'.",
                key="base_url",
            ) from None
        if not url.host or (port is not None and not 0 < port < 65536):
            raise ConfigError(
                f"base_url {shorten(repr(base_url), 300)} has no host or a port outside "
                f"1-65535; pass the server's API root, e.g. 'http://127.0.0.1:8080/v1'.",
                key="base_url",
            )
        if not model:
            raise ConfigError("model must name the model the server should run.", key="model")
        if timeout <= 0:
            raise ConfigError(f"timeout must be > 0 seconds, got {timeout}.", key="timeout")
        if api_key_env is not None and not api_key_env:
            raise ConfigError(
                "api_key_env is empty; pass the *name* of the environment variable holding "
                "the key (e.g. 'OPENAI_API_KEY'), or None for a server without a key.",
                key="api_key_env",
            )
        self._base_url = base_url.rstrip("/")
        self._url = f"{self._base_url}/chat/completions"
        self._model = model
        self._api_key_env = api_key_env
        self._timeout = timeout
        self._owns_client = http_client is None
        self._clients: list[httpx.AsyncClient] = [] if http_client is None else [http_client]
        self._in_flight: list[int] = [0] * len(self._clients)
        # Clients we created belong to the event loop they first ran in: their pooled
        # connections cannot be reused from another loop (each `asyncio.run` makes one).
        self._clients_loop: asyncio.AbstractEventLoop | None = None
        # Loading the CA bundle takes tens of ms; all our pools share one context.
        self._ssl_context: ssl.SSLContext | None = None

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def endpoint(self) -> str:
        """The server, for the response cache's keys: the base URL without any user name or
        password in it (those are not part of which server answers, and are secrets)."""
        parts = urlsplit(self._base_url)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host  # an IPv6 literal
        netloc = f"{host}:{parts.port}" if parts.port is not None else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))

    @property
    def api_key_env(self) -> str | None:
        return self._api_key_env

    def __repr__(self) -> str:
        return (
            f"OpenAICompatible(base_url={self._base_url!r}, model={self._model!r}, "
            f"api_key_env={self._api_key_env!r}, timeout={self._timeout!r})"
        )

    async def complete(self, request: Request) -> Response:
        api_key = self._read_api_key()
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        body = request_body(request, self._model)
        index = self._pick_client()
        # Held locally: aclose() may swap the lists while this request is in flight.
        client, in_flight = self._clients[index], self._in_flight
        in_flight[index] += 1
        start = time.perf_counter()
        try:
            reply = await client.post(self._url, json=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise LLMTimeoutError(self._url, self._timeout) from exc
        except httpx.TransportError as exc:
            detail = _redact(str(exc) or type(exc).__name__, api_key)
            raise LLMConnectionError(self._url, detail) from exc
        finally:
            in_flight[index] -= 1
        latency = time.perf_counter() - start
        if not reply.is_success:
            said = _redact(reply.text, api_key)
            if reply.status_code in FatalHTTPError.STATUSES:
                raise FatalHTTPError(reply.status_code, said, url=self._url, model=self._model)
            raise LLMHTTPError(
                reply.status_code,
                said,
                url=self._url,
                retry_after=parse_retry_after(reply.headers.get("Retry-After")),
            )
        return _parse_completion(reply.text, model=self._model, latency_s=latency, secret=api_key)

    async def aclose(self) -> None:
        """Close the HTTP clients this object created (not one passed in). Safe to call twice."""
        if not self._owns_client:
            return
        clients, self._clients, self._in_flight = self._clients, [], []
        loop, self._clients_loop = self._clients_loop, None
        if loop is not asyncio.get_running_loop():
            return  # made in a loop that has ended: their sockets went with it
        for client in clients:
            await client.aclose()

    async def __aenter__(self) -> OpenAICompatible:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _read_api_key(self) -> str | None:
        if self._api_key_env is None:
            return None
        key = os.environ.get(self._api_key_env)
        if not key:
            raise ConfigError(
                f"the environment variable {self._api_key_env} is not set or is empty, and "
                f"the client for {self._base_url} reads its API key from it. Set it "
                f"(export {self._api_key_env}=...) or pass api_key_env=None for a server "
                f"that needs no key."
            )
        return key

    def _pick_client(self) -> int:
        """Index of the client to send the next request on: the least busy one."""
        if self._owns_client:
            loop = asyncio.get_running_loop()
            if self._clients_loop is not loop:
                # Clients left over from a finished loop cannot be closed from here (their
                # sockets belong to that loop); dropping them lets the GC reclaim them.
                self._clients = [self._new_client() for _ in range(_POOLS)]
                self._in_flight = [0] * _POOLS
                self._clients_loop = loop
        return min(range(len(self._clients)), key=self._in_flight.__getitem__)

    def _new_client(self) -> httpx.AsyncClient:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context()
        return httpx.AsyncClient(
            verify=self._ssl_context,
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(
                max_connections=_CONNECTIONS_PER_POOL,
                max_keepalive_connections=_CONNECTIONS_PER_POOL,
            ),
        )


def request_body(request: Request, model: str) -> dict[str, Any]:
    """The JSON body of a chat completions call for `request` (no secrets, no tags)."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
        "top_p": request.top_p,
        "seed": request.sampling_seed,
    }
    # Some servers reject an empty stop list, and omitting it means the same thing.
    if request.stop:
        body["stop"] = list(request.stop)
    return body


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date.

    Returns None when the header is absent or unreadable (the caller then uses its own
    backoff), and never a negative number (a date in the past means "now").
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is unreadable
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP-dates are GMT; a naive result means it said "-0000"
        when = when.replace(tzinfo=UTC)
    reference = now if now is not None else datetime.now(UTC)
    return max(0.0, (when - reference).total_seconds())


def _parse_completion(
    text: str, *, model: str, latency_s: float, secret: str | None = None
) -> Response:
    """The `Response` in a chat completion body; redaction of `secret` happens on the parsed
    reply text and on the raw body kept in an error, never on the JSON before parsing."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedResponseError(
            "the server answered HTTP 2xx with a body that is not JSON; expected a chat "
            "completion object. Is base_url the API root (usually ending in /v1)?",
            raw=_redact(text, secret),
            retryable=True,
        ) from None
    data = data if isinstance(data, dict) else {}
    choices = data.get("choices")
    first = choices[0] if isinstance(choices, list) and choices else None
    first = first if isinstance(first, dict) else {}
    message = first.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise MalformedResponseError(
            "the server's JSON has no text at choices[0].message.content; expected a chat "
            "completion (not a text completion, a stream or a tool call)",
            raw=_redact(text, secret),
            retryable=True,
        )
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    finish_reason = first.get("finish_reason")
    return Response(
        text=_redact(_LONE_SURROGATE.sub("\ufffd", content), secret),
        usage=Usage(_count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))),
        # The configured name, not the server's (llama.cpp reports a file path): reports
        # and cache rows then name the model the same way the cache key does.
        model=model,
        finish_reason=finish_reason if isinstance(finish_reason, str) else "stop",
        latency_s=latency_s,
    )


def _count(value: object) -> int:
    # Servers that do not count tokens omit usage or send null; both mean "unknown" = 0.
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


# JSON may escape half of a surrogate pair ("\udcff"); such a string cannot be encoded to
# UTF-8 (for the next request, the cache, a file), so the reply gets U+FFFD in its place.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

# A shorter key is not a secret that could be told apart from text (see the module doc).
_MIN_SECRET_CHARS = 8


def _redact(text: str, secret: str | None) -> str:
    """`text` with every occurrence of `secret` replaced, for servers that echo the key."""
    if not secret or len(secret) < _MIN_SECRET_CHARS:
        return text
    return text.replace(secret, "[redacted]")
