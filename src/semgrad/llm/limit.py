"""`LimitedLLM`: at most N requests in flight to one model endpoint at a time.

A server has a fixed number of slots; sending more requests than that only queues them
on the server (where they time out) instead of here (where they just wait).
"""

from __future__ import annotations

import asyncio

from semgrad.errors import ConfigError
from semgrad.llm.types import LLM, Request, Response, Wrapper

__all__ = ["LimitedLLM"]


class LimitedLLM(Wrapper):
    """An `LLM` that lets at most `max_concurrency` requests reach `inner` at once.

    `in_flight` is the number of requests inside `inner` now; `peak_in_flight` the most
    there have been at once, for tests and reports.
    """

    def __init__(self, inner: LLM, max_concurrency: int) -> None:
        if max_concurrency < 1:
            raise ConfigError(
                f"max_concurrency must be >= 1, got {max_concurrency}.", key="max_concurrency"
            )
        super().__init__(inner)
        self._max_concurrency = max_concurrency
        # An asyncio.Semaphore belongs to the loop it first waited in, and each
        # `asyncio.run` makes a new loop, so it is made (again) inside the running loop.
        self._semaphore: asyncio.Semaphore | None = None
        self._semaphore_loop: asyncio.AbstractEventLoop | None = None
        self.in_flight = 0
        self.peak_in_flight = 0

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    def __repr__(self) -> str:
        return f"LimitedLLM({self._inner!r}, max_concurrency={self._max_concurrency})"

    async def complete(self, request: Request) -> Response:
        async with self._current_semaphore():
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return await self._inner.complete(request)
            finally:
                self.in_flight -= 1

    def _current_semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._semaphore is None or self._semaphore_loop is not loop:
            self._semaphore = asyncio.Semaphore(self._max_concurrency)
            self._semaphore_loop = loop
        return self._semaphore
