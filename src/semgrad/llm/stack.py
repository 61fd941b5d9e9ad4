"""Building the LLMs of a run: `build_llm` wraps one client with every layer in its right
place; `build_stack` makes the clients a `[models]` config names and wraps each one.

`build_stack` is the one place the policy lives (the CLI and the trainer both use it):
one client per distinct model (roles naming the same model share it, and its slots), one
response cache and one meter shared by all, the budget checked before every model call,
retries with `max_attempts`, and in-flight requests to an embedded model bounded by its
slots (a server bounds its own).

MeteredLLM      outermost: sees every request, cache hits included
 RequestBudgetLLM  counts distinct requests against the request budgets (hits included)
  CachedLLM     a hit returns here: no retry, no concurrency slot, no model call
   RetryingLLM  waits between attempts *outside* the limiter, so a request sleeping
                off a 429 does not hold a slot another request could use
    BudgetedLLM every attempt (retries included) is checked against the budget and
                charged before it is sent
      LimitedLLM   innermost: bounds what is in flight to the server
        client
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

from semgrad.llm.budget import Budget, BudgetedLLM, RequestBudgetLLM
from semgrad.llm.cache import Cache, CachedLLM
from semgrad.llm.config import ModelConfig, ModelsConfig
from semgrad.llm.factory import close_client, default_cache_path, make_client
from semgrad.llm.limit import LimitedLLM
from semgrad.llm.meter import Meter, MeteredLLM
from semgrad.llm.retry import RetryingLLM, RetryPolicy
from semgrad.llm.types import LLM

__all__ = ["ROLES", "LLMStack", "build_llm", "build_stack", "find_layer"]

# The roles a run's graph and optimizer call models by ("teacher": the backward model
# unless `[models] teacher` names another).
ROLES: tuple[str, ...] = ("forward", "backward", "optimizer", "teacher")

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
    cache_namespace: str | None = None,
) -> LLM:
    """Wrap `client` as Meter(RequestBudget(Cache(Retry(Budget(Limit(client)))))), leaving out
    the layers not asked for. `cache_namespace` replaces a server's base URL in the cache
    keys (`CachedLLM`).

    `retry=None` disables retrying; the default retries transient failures up to 5 times.
    With a `meter`, retries are also counted in it, per node and phase.
    """
    llm: LLM = client
    if max_concurrency is not None:
        llm = LimitedLLM(llm, max_concurrency)
    if budget is not None:
        llm = BudgetedLLM(llm, budget)
    if retry is not None:
        llm = RetryingLLM(llm, retry, meter=meter)
    if cache is not None:
        llm = CachedLLM(llm, cache, namespace=cache_namespace)
    if budget is not None:
        llm = RequestBudgetLLM(llm, budget)
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


@dataclass
class LLMStack:
    """The wrapped LLMs of a run by role, the meter and cache they share, and the raw
    clients to close when done (`aclose()`, or `with` outside an event loop)."""

    llms: dict[str, LLM]
    meter: Meter
    cache: Cache | None = None
    clients: list[LLM] = field(default_factory=list)

    async def aclose(self) -> None:
        """Close every client, then the cache; safe to call twice."""
        clients, self.clients = self.clients, []
        try:
            for client in clients:
                await close_client(client)
        finally:
            if self.cache is not None:
                self.cache.close()

    def __enter__(self) -> LLMStack:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run(self.aclose())


def build_stack(
    models: ModelsConfig,
    *,
    roles: Sequence[str] = ROLES,
    meter: Meter | None = None,
    budget: Budget | None = None,
    base_dir: str | Path = ".",
) -> LLMStack:
    """The LLMs `models` names for `roles`, each wrapped by `build_llm` with the policy above.

    `meter` (a new one by default) and `budget` are shared by every role; `models.cache`
    is resolved against `base_dir` (the config file's folder), else the default cache path
    is used; `cache_mode = "off"` opens none. A missing or corrupt embedded model fails
    here, with every client made so far closed again.
    """
    meter = meter if meter is not None else Meter()
    cache: Cache | None = None
    if models.cache_mode != "off":
        path = Path(models.cache).expanduser() if models.cache else default_cache_path()
        cache = Cache(path if path.is_absolute() else Path(base_dir) / path, mode=models.cache_mode)
    stack = LLMStack(llms={}, meter=meter, cache=cache)
    retry = RetryPolicy(max_attempts=models.max_attempts)
    shared: dict[tuple[str, str | None, str | None], LLM] = {}
    try:
        for role in roles:
            spec: ModelConfig = models.role(role)
            if spec.key() not in shared:
                client = make_client(
                    spec.model,
                    base_url=spec.base_url,
                    api_key_env=spec.api_key_env,
                    slots=models.slots,
                    prompt_cache=models.prompt_cache,
                    ctx_per_slot=models.ctx_per_slot,
                    replicas=models.replicas,
                )
                stack.clients.append(client)
                shared[spec.key()] = build_llm(
                    client,
                    cache=cache,
                    meter=meter,
                    budget=budget,
                    retry=retry,
                    # The copies an embedded client really made (never more than threads).
                    max_concurrency=None
                    if spec.base_url
                    else models.slots * getattr(client, "replicas", models.replicas),
                    cache_namespace=models.cache_namespace,
                )
            stack.llms[role] = shared[spec.key()]
    except BaseException:
        # Nothing has been called yet, so nothing needs an event loop to close: an embedded
        # model is not loaded and an HTTP client opens its connections on first use.
        for client in stack.clients:
            close = getattr(client, "close", None)
            if callable(close):
                close()
        if cache is not None:
            cache.close()
        raise
    return stack
