"""The one sync door: run a coroutine to completion from synchronous code.

`asyncio.run` refuses to start when the calling thread already runs an event loop, which
is always the case in Jupyter and IPython. `run_sync` uses `asyncio.run` when no loop is
running, and otherwise runs the coroutine in a fresh event loop on a worker thread and
waits for it, so `sg.run`, `sg.evaluate` and `sg.fit` work the same in a script and in a
notebook cell. (Inside a coroutine of your own, prefer the async variants: waiting blocks
the calling loop until the work is done.)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["run_sync"]

T = TypeVar("T")


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """The result of `coro`, run to completion whether or not a loop is running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # A loop runs in this thread (a notebook): a fresh loop on a worker thread. The caller's
    # context variables go with it, so e.g. logging context is the same on both sides.
    context = contextvars.copy_context()
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=1, thread_name_prefix="semgrad-sync"
    ) as pool:
        return pool.submit(context.run, asyncio.run, coro).result()
