"""`build_llm`: the standard way to wrap a client, with every layer in its right place.

MeteredLLM      outermost: sees every request, cache hits included
  CachedLLM     a hit returns here: no retry, no concurrency slot, no model call
   BudgetedLLM  a miss is checked against the budget before any model call
    RetryingLLM waits between attempts *outside* the limiter, so a request sleeping
                off a 429 does not hold a slot another request could use
      LimitedLLM   innermost: bounds what is in flight to the server
        client
"""

from __future__ import annotations

from typing import TypeVar

from semgrad.llm.budget import Budget, BudgetedLLM
from semgrad.llm.cache import Cache, CachedLLM
from semgrad.llm.limit import LimitedLLM
from semgrad.llm.meter import Meter, MeteredLLM
from semgrad.llm.retry import RetryingLLM, RetryPolicy
from semgrad.llm.types import LLM

__all__ = ["build_llm", "find_layer"]

_DEFAULT_RETRY = RetryPolicy()

L = TypeVar("L")


def build_llm(
    client: LLM,
    *,
    cache: Cache | None = None,
    retry: RetryPolicy | None = _DEFAULT_RETRY,
    max_concurrency: int | None = None,
    meter: Meter | None = None,
    budget: Budget | None = None,
) -> LLM:
    """Wrap `client` as Meter(Cache(Budget(Retry(Limit(client))))), leaving out the layers not
    asked for.

    `retry=None` disables retrying; the default retries transient failures up to 5 times.
    With a `meter`, retries are also counted in it, per node and phase.
    """
    llm: LLM = client
    if max_concurrency is not None:
        llm = LimitedLLM(llm, max_concurrency)
    if retry is not None:
        llm = RetryingLLM(llm, retry, meter=meter)
    if budget is not None:
        llm = BudgetedLLM(llm, budget)
    if cache is not None:
        llm = CachedLLM(llm, cache)
    if meter is not None:
        llm = MeteredLLM(llm, meter)
    return llm


def find_layer(llm: LLM, kind: type[L]) -> L | None:
    """The outermost layer of type `kind` in a stack of wrappers, or None.

    Walks the `inner` attribute every wrapper has, e.g.
    `find_layer(llm, RetryingLLM).retries` for a report.
    """
    layer: object = llm
    while layer is not None:
        if isinstance(layer, kind):
            return layer
        layer = getattr(layer, "inner", None)
    return None
