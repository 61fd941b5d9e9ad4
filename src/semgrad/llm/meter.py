"""Counting what a run asked of its models, per node and per phase.

`MeteredLLM` sits outermost in the stack (see `build_llm`), so it sees every request,
including the ones the cache answered. For each (node, phase) the `Meter` keeps:

    requests                  every request made, answered or not
    cache_hits                requests answered without calling a model
    calls                     requests a model answered (requests - cache_hits - errors)
    prompt/completion_tokens  tokens of those real calls: what was spent
    cached_*_tokens           tokens of the cached answers: what the cache saved
    errors                    requests that ended in an exception
    retries                   retries made on the way (recorded by `RetryingLLM`)

A `MeterSnapshot` is a frozen copy; subtracting two gives the spend in between (one
optimizer step, one evaluation), which is how budgets and reports read the meter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from typing import Any

from semgrad.llm.types import ALL_PHASES, LLM, PHASES, Phase, Request, Response, Wrapper

__all__ = ["Meter", "MeterRow", "MeterSnapshot", "MeteredLLM", "Spend"]


@dataclass(frozen=True)
class Spend:
    """Counters for one slice of the meter (a node and phase, a phase, a node, or all)."""

    requests: int = 0
    cache_hits: int = 0
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0
    errors: int = 0
    retries: int = 0

    @property
    def total_tokens(self) -> int:
        """Tokens spent on real calls (cached answers cost nothing)."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def is_zero(self) -> bool:
        return self == _ZERO

    def __add__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Spend)))

    def __sub__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(Spend)))

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(Spend)}


_ZERO = Spend()


@dataclass(frozen=True)
class MeterRow:
    node: str
    phase: Phase
    spend: Spend

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "phase": self.phase, **self.spend.to_dict()}


def _row_order(row: MeterRow) -> tuple[str, int]:
    # Nodes alphabetically, phases in the order a training step runs them.
    return (row.node, ALL_PHASES.index(row.phase))


@dataclass(frozen=True)
class MeterSnapshot:
    """The meter at one moment: one row per (node, phase) seen, in a fixed order."""

    rows: tuple[MeterRow, ...] = ()

    def total(self) -> Spend:
        return sum((row.spend for row in self.rows), Spend())

    def by_phase(self) -> dict[Phase, Spend]:
        """Every phase of `PHASES`, zero where nothing was recorded, then the optional
        phases (``edges``) that were used, in `ALL_PHASES` order."""
        out: dict[Phase, Spend] = {phase: Spend() for phase in ALL_PHASES}
        for row in self.rows:
            out[row.phase] += row.spend
        return {p: s for p, s in out.items() if p in PHASES or not s.is_zero}

    def by_node(self) -> dict[str, Spend]:
        """Each node seen, sorted by name."""
        out: dict[str, Spend] = {}
        for row in self.rows:  # rows are sorted by node already
            out[row.node] = out.get(row.node, Spend()) + row.spend
        return out

    def row(self, node: str, phase: Phase) -> Spend:
        for candidate in self.rows:
            if candidate.node == node and candidate.phase == phase:
                return candidate.spend
        return Spend()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": [row.to_dict() for row in self.rows],
            "by_phase": {phase: spend.to_dict() for phase, spend in self.by_phase().items()},
            "by_node": {node: spend.to_dict() for node, spend in self.by_node().items()},
            "total": self.total().to_dict(),
        }

    def __sub__(self, earlier: MeterSnapshot) -> MeterSnapshot:
        """What was recorded after `earlier` was taken (rows with no change are dropped)."""
        before = {(row.node, row.phase): row.spend for row in earlier.rows}
        rows = []
        for row in self.rows:
            delta = row.spend - before.get((row.node, row.phase), Spend())
            if not delta.is_zero:
                rows.append(MeterRow(row.node, row.phase, delta))
        return MeterSnapshot(tuple(rows))


class Meter:
    """Accumulates spend per (node, phase). Safe to share between tasks and threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spend: dict[tuple[str, Phase], Spend] = {}

    def record(self, request: Request, response: Response) -> None:
        """Count one answered request (a cache hit if `response.cached`)."""
        usage = response.usage
        if response.cached:
            spend = Spend(
                requests=1,
                cache_hits=1,
                cached_prompt_tokens=usage.prompt_tokens,
                cached_completion_tokens=usage.completion_tokens,
            )
        else:
            spend = Spend(
                requests=1,
                calls=1,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
            )
        self._add(request, spend)

    def record_error(self, request: Request) -> None:
        """Count one request that ended in an exception."""
        self._add(request, Spend(requests=1, errors=1))

    def record_retry(self, request: Request) -> None:
        """Count one retry of `request` (not a new request)."""
        self._add(request, Spend(retries=1))

    def snapshot(self) -> MeterSnapshot:
        with self._lock:
            items = list(self._spend.items())
        rows = [MeterRow(node, phase, spend) for (node, phase), spend in items]
        return MeterSnapshot(tuple(sorted(rows, key=_row_order)))

    def _add(self, request: Request, spend: Spend) -> None:
        key = (request.node, request.phase)
        with self._lock:
            self._spend[key] = self._spend.get(key, _ZERO) + spend


class MeteredLLM(Wrapper):
    """An `LLM` that records every request to `inner`, and its outcome, in `meter`."""

    def __init__(self, inner: LLM, meter: Meter) -> None:
        super().__init__(inner)
        self._meter = meter

    @property
    def meter(self) -> Meter:
        return self._meter

    def __repr__(self) -> str:
        return f"MeteredLLM({self._inner!r})"

    async def complete(self, request: Request) -> Response:
        try:
            response = await self._inner.complete(request)
        except Exception:
            # Cancellation is not a failure of the request, so only Exceptions count.
            self._meter.record_error(request)
            raise
        self._meter.record(request, response)
        return response
