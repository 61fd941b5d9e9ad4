"""The run context: everything a forward pass needs, passed in explicitly.

No globals: the models, the concurrency limit, the phase tag and the seed travel in one
object that the caller builds. Copies made with `with_phase` share the same limit, so
forward, backward and evaluation work started from one context never exceed it together.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from semgrad.errors import ConfigError
from semgrad.llm.config import DEFAULT_CONCURRENCY
from semgrad.llm.types import LLM, Phase
from semgrad.telemetry import Tracer

__all__ = ["RunContext"]


class _Limit:
    """One concurrency bound, with a semaphore per event loop (a semaphore cannot cross loops)."""

    def __init__(self, value: int) -> None:
        self.value = value
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    def semaphore(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        sem = self._by_loop.get(loop)
        if sem is None:
            sem = asyncio.Semaphore(self.value)
            self._by_loop[loop] = sem
        return sem


@dataclass(frozen=True)
class RunContext:
    """Models by role (``forward``, ``backward``, ``optimizer``, …) and run-wide settings.

    `max_concurrency` bounds how many nodes run at once across all examples; each model
    client may have its own, tighter bound (e.g. the embedded model's slots).

    `tracer` (from `semgrad.telemetry.enable`) records OpenTelemetry spans of the nodes,
    model calls, backward passes, proposals, gates and steps run with this context; None
    (the default) records nothing and imports nothing.
    """

    llms: Mapping[str, LLM]
    max_concurrency: int = DEFAULT_CONCURRENCY
    phase: Phase = "forward"
    seed: int = 0
    tracer: Tracer | None = field(default=None, compare=False)
    _limit: _Limit = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.max_concurrency < 1:
            raise ConfigError(
                f"must be at least 1, got {self.max_concurrency}", key="max_concurrency"
            )
        if not self.llms:
            raise ConfigError("a run context needs at least one model (e.g. 'forward')", "llms")
        if self._limit is None:
            object.__setattr__(self, "_limit", _Limit(self.max_concurrency))

    def llm(self, role: str) -> LLM:
        try:
            llm = self.llms[role]
        except KeyError:
            raise ConfigError(
                f"no model for role {role!r}; the context has {', '.join(self.llms)}. "
                f"Give the run context an LLM under {role!r} or change the node's 'llm'.",
                key="llm",
            ) from None
        return llm if self.tracer is None else self.tracer.wrap(llm)

    def with_phase(self, phase: Phase) -> RunContext:
        return replace(self, phase=phase)

    def semaphore(self) -> asyncio.Semaphore:
        return self._limit.semaphore()
