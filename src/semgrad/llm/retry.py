"""`RetryingLLM`: retries transient failures with exponential backoff, honouring Retry-After.

Transient means the same request may well succeed later: HTTP 429 (rate limited) and 5xx,
timeouts, connection failures, and an HTTP 2xx whose body is not a chat completion (a proxy
or an overloaded server that truncated or garbled the body: treated like a 5xx; a local
model's malformed reply is not retried, it would come again). Everything
else (a 400 for a bad request, a 401/403/404, a replay-only cache miss, a missing API key)
fails the same way every time, so it is raised at once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from semgrad.errors import (
    ConfigError,
    LLMConnectionError,
    LLMError,
    LLMHTTPError,
    LLMTimeoutError,
    MalformedResponseError,
    RetryExhaustedError,
)
from semgrad.llm.meter import Meter
from semgrad.llm.types import LLM, Request, Response, Wrapper

__all__ = ["RetryPolicy", "RetryingLLM", "is_retryable"]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry.

    `max_attempts` counts the first try: 5 means one call and up to four retries. Retry `n`
    (1-based) waits `base_delay * 2**(n-1)` seconds, capped at `max_delay`, then spread by
    up to `jitter` of itself either way so that many clients rate-limited together do not
    come back together. A server's Retry-After replaces the backoff (still capped at
    `max_delay`, so a server cannot stall a run for an hour).
    """

    max_attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ConfigError(
                f"max_attempts must be >= 1 (1 means no retries), got {self.max_attempts}.",
                key="retry.max_attempts",
            )
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError(
                f"retry delays must be >= 0 seconds, got base_delay={self.base_delay}, "
                f"max_delay={self.max_delay}.",
                key="retry",
            )
        if not 0 <= self.jitter <= 1:
            raise ConfigError(
                f"jitter is a fraction of the delay and must be in [0, 1], got {self.jitter}.",
                key="retry.jitter",
            )

    def delay(self, retry: int, error: BaseException, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1-based) after `error`."""
        if isinstance(error, LLMHTTPError) and error.retry_after is not None:
            return min(self.max_delay, error.retry_after)
        backoff = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        spread = 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return min(self.max_delay, backoff * spread)


def is_retryable(error: BaseException) -> bool:
    """Whether the same request may succeed if sent again later."""
    if isinstance(error, LLMHTTPError):
        return error.retryable
    if isinstance(error, MalformedResponseError):
        return error.retryable
    return isinstance(error, LLMTimeoutError | LLMConnectionError)


class RetryingLLM(Wrapper):
    """An `LLM` that retries `inner` on transient failures.

    After `policy.max_attempts` failed attempts it raises `RetryExhaustedError`, carrying
    the attempt count and the last error. `retries` counts the retries this object made
    (not first attempts), for reports; with a `meter`, each retry is also recorded under
    the request's node and phase.

    `sleep` and `rng` are injectable so tests can record the delays instead of waiting.
    """

    def __init__(
        self,
        inner: LLM,
        policy: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
        meter: Meter | None = None,
    ) -> None:
        super().__init__(inner)
        self._policy = policy if policy is not None else RetryPolicy()
        self._sleep = sleep
        # Jitter only spreads waits in time; it never changes a result, so an OS-seeded
        # generator is fine by default (and better: processes do not retry in lockstep).
        self._rng = rng if rng is not None else random.Random()
        self._meter = meter
        self.retries = 0

    @property
    def policy(self) -> RetryPolicy:
        return self._policy

    def __repr__(self) -> str:
        return f"RetryingLLM({self._inner!r}, {self._policy!r})"

    async def complete(self, request: Request) -> Response:
        attempt = 1
        while True:
            try:
                return await self._inner.complete(request)
            except LLMError as exc:
                if not is_retryable(exc):
                    raise
                if attempt >= self._policy.max_attempts:
                    raise RetryExhaustedError(attempt, exc) from exc
                delay = self._policy.delay(attempt, exc, self._rng)
            self.retries += 1
            if self._meter is not None:
                self._meter.record_retry(request)
            await self._sleep(delay)
            attempt += 1
