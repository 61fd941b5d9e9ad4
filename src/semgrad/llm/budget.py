"""Hard budgets on model calls and tokens, total and per phase.

A `Budget` is checked *before* each request is sent to a model: every HTTP attempt, retries
included (`BudgetedLLM` sits inside `RetryingLLM`); cache hits are free and never checked.
The call's worst case is reserved while it is in flight, so concurrent calls can never
overshoot together: spend never exceeds a limit. The worst case of a call's tokens is its
`max_tokens` plus one token per character of the prompt (a BPE token is at least one
character) plus a margin for the chat template; the actual usage replaces the reservation
when the reply arrives. A call that fails still counts as one call (it was sent).

With a `ledger` file (a run's budget.json), every reservation is written there *before*
the request is sent (write-ahead, an atomic replace), and every settlement after: a process
killed at any moment leaves a ledger that counts every request it may have sent (an
in-flight request counts with its worst case). `Budget.from_ledger` restores it, so no
sequence of stops, kills, retries and resumes can send more than a limit allows.

Limits are named ``calls`` / ``tokens`` (all phases) or ``<phase>.calls`` /
``<phase>.tokens`` (``forward``, ``backward``, ``optimizer``, ``evaluation``, ``edges``,
``teacher``).

Budgets in **requests** count the distinct requests of a run, cache hits included, so runs
of different methods (or libraries) compare at equal cost whatever their cache held
(BENCHMARKS.md §3): ``requests`` (all), ``requests.forward`` (the forward model's: the phases
``forward``, ``evaluation`` and ``edges``) and ``requests.strong`` (the strong models':
``backward``, ``optimizer`` and ``teacher``). They are counted by `RequestBudgetLLM`, which
sits outside the cache; a request is counted when it is made, answered or not, and refused
once a limit is reached. A repeat of a request the run has already made (same cache key:
an unchanged node on an item it has already scored) is not counted again: any in-memory
cache answers it (DSPy's does, before its calls reach a budget), whereas a hit of a request
another run made still counts. The counted keys are part of the checkpoint
(`counted_requests`), so a resumed run counts as the uninterrupted one would. Without a
request limit nothing needs the keys: no request is hashed for them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from semgrad.atomic import atomic_write_json
from semgrad.errors import BudgetExceededError, ConfigError
from semgrad.llm.types import ALL_PHASES, LLM, Request, Response, Wrapper

__all__ = ["REQUEST_KINDS", "Budget", "BudgetedLLM", "RequestBudgetLLM", "worst_case_tokens"]

_TEMPLATE_MARGIN = 16  # chat-template tokens per message, generously


def worst_case_tokens(request: Request) -> int:
    prompt = sum(len(m.content) + _TEMPLATE_MARGIN for m in request.messages)
    return prompt + request.max_tokens


# Which request budget each phase's requests count against.
REQUEST_KINDS: dict[str, str] = {
    "forward": "forward",
    "evaluation": "forward",
    "edges": "forward",
    "backward": "strong",
    "optimizer": "strong",
    "teacher": "strong",
}


def _valid_keys() -> list[str]:
    return [
        "calls",
        "tokens",
        *(f"{p}.{r}" for p in ALL_PHASES for r in ("calls", "tokens")),
        "requests",
        "requests.forward",
        "requests.strong",
    ]


@dataclass
class _Reservation:
    phase: str
    tokens: int


class Budget:
    """Limits and what has been spent against them (restorable from a checkpoint)."""

    def __init__(
        self,
        limits: Mapping[str, int],
        spent: Mapping[str, int] | None = None,
        *,
        ledger: str | Path | None = None,
    ) -> None:
        valid = _valid_keys()
        for key, value in limits.items():
            if key not in valid:
                raise ConfigError(f"unknown budget {key!r}; use one of {', '.join(valid)}", key=key)
            if value < 0:
                raise ConfigError(f"a budget must be >= 0, got {value}", key=key)
        self.limits = dict(limits)
        self.spent: dict[str, int] = {k: 0 for k in valid}
        for key, value in (spent or {}).items():
            if key in self.spent:
                self.spent[key] = int(value)
        self._reserved: dict[str, int] = {k: 0 for k in valid}
        self._counted: set[str] = set()  # the keys of the requests counted so far
        self.limits_requests = any(k.startswith("requests") for k in self.limits)
        self._lock = threading.Lock()
        self.ledger = Path(ledger) if ledger is not None else None

    @staticmethod
    def read_ledger(path: str | Path) -> dict[str, int]:
        """What a ledger file charged (spent plus in flight, per key); {} when there is
        none or it cannot be read (an atomic replace never leaves half a file, so that
        means the run never sent a request)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            charged = data["charged"]
            return {str(k): int(v) for k, v in charged.items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    def charge_at_least(self, charged: Mapping[str, int]) -> None:
        """Raise what is spent to at least `charged` (a checkpoint's or a ledger's)."""
        with self._lock:
            for key, value in charged.items():
                if key in self.spent:
                    self.spent[key] = max(self.spent[key], int(value))

    def charged(self) -> dict[str, int]:
        """Spent plus in flight, per key: what a kill now would have cost at most."""
        with self._lock:
            return self._charged()

    def _charged(self) -> dict[str, int]:
        return {k: v + self._reserved[k] for k, v in self.spent.items()}

    def _write_ledger(self) -> None:
        # Called with the lock held, so ledger writes happen in the order of the changes.
        if self.ledger is not None:
            atomic_write_json(
                self.ledger, {"limits": self.limits, "charged": self._charged()}, durable=False
            )

    def _keys(self, phase: str, resource: str) -> tuple[str, str]:
        return resource, f"{phase}.{resource}"

    def reserve(self, request: Request) -> _Reservation:
        """Claim room for one call, or raise `BudgetExceededError` without calling."""
        tokens = worst_case_tokens(request)
        with self._lock:
            for resource, need in (("calls", 1), ("tokens", tokens)):
                for key in self._keys(request.phase, resource):
                    limit = self.limits.get(key)
                    if limit is None:
                        continue
                    if self.spent[key] + self._reserved[key] + need > limit:
                        raise BudgetExceededError(key, limit, self.spent[key])
            for resource, need in (("calls", 1), ("tokens", tokens)):
                for key in self._keys(request.phase, resource):
                    self._reserved[key] += need
            self._write_ledger()  # before the request is sent: write-ahead
        return _Reservation(request.phase, tokens)

    def settle(self, reservation: _Reservation, used_tokens: int) -> None:
        """Replace a reservation by what the call really used (0 tokens if it failed)."""
        with self._lock:
            for resource, reserved, used in (
                ("calls", 1, 1),
                ("tokens", reservation.tokens, used_tokens),
            ):
                for key in self._keys(reservation.phase, resource):
                    self._reserved[key] -= reserved
                    self.spent[key] += used
            self._write_ledger()

    def count_request(self, request: Request, key: str | None = None) -> None:
        """Count one request (cache hit or not) against ``requests`` and
        ``requests.<kind>``, or raise `BudgetExceededError` without counting it. A request
        whose `key` (its cache key) was counted before is not counted again."""
        keys = ("requests", f"requests.{REQUEST_KINDS.get(request.phase, 'forward')}")
        with self._lock:
            if key is not None and key in self._counted:
                return
            for k in keys:
                limit = self.limits.get(k)
                if limit is not None and self.spent[k] + 1 > limit:
                    raise BudgetExceededError(k, limit, self.spent[k])
            for k in keys:
                self.spent[k] += 1
            if key is not None:
                self._counted.add(key)

    def counted_requests(self) -> list[str]:
        """The keys of the requests counted so far (for a checkpoint), sorted."""
        with self._lock:
            return sorted(self._counted)

    def restore_counted_requests(self, keys: list[str]) -> None:
        with self._lock:
            self._counted.update(keys)

    def remaining(self) -> dict[str, int]:
        return {k: v - self.spent[k] for k, v in self.limits.items()}

    def state_dict(self) -> dict[str, dict[str, int]]:
        return {"limits": dict(self.limits), "spent": dict(self.spent)}


class BudgetedLLM(Wrapper):
    """Refuses a request that could exceed the budget; sits inside the cache (hits are free)
    and inside the retries (each attempt is charged)."""

    def __init__(self, inner: LLM, budget: Budget) -> None:
        super().__init__(inner)
        self.budget = budget

    async def complete(self, request: Request) -> Response:
        reservation = self.budget.reserve(request)
        try:
            response = await self._inner.complete(request)
        except BaseException:
            self.budget.settle(reservation, 0)
            raise
        self.budget.settle(reservation, response.usage.total_tokens)
        return response


class RequestBudgetLLM(Wrapper):
    """Counts the distinct requests of a run against the request budgets; sits outside the
    cache, so a cache hit counts as a request (and is refused once a request limit is
    reached), unless the run already made that request."""

    def __init__(self, inner: LLM, budget: Budget) -> None:
        super().__init__(inner)
        self.budget = budget

    async def complete(self, request: Request) -> Response:
        # The key (a hash of the whole request) only when a request limit needs it.
        key = request.cache_key(self.model) if self.budget.limits_requests else None
        self.budget.count_request(request, key)
        return await self._inner.complete(request)
