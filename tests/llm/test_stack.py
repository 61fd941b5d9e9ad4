"""build_stack: the one LLM-stack builder the CLI and the trainer share, and the defaults."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from semgrad.errors import ModelError
from semgrad.llm import EchoLLM, Request
from semgrad.llm import stack as stack_module
from semgrad.llm.budget import Budget, BudgetedLLM
from semgrad.llm.cache import CachedLLM
from semgrad.llm.config import (
    DEFAULT_BACKWARD_MODEL,
    DEFAULT_FORWARD_MODEL,
    DEFAULT_PROMPT_CACHE,
    DEFAULT_REPLICAS,
    DEFAULT_SLOTS,
    ModelsConfig,
)
from semgrad.llm.limit import LimitedLLM
from semgrad.llm.local import LocalLLM
from semgrad.llm.retry import RetryingLLM
from semgrad.llm.stack import build_stack, find_layer


class ClosableEcho(EchoLLM):
    def __init__(self, model: str) -> None:
        super().__init__(model)
        self.closed = False

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[ClosableEcho, dict[str, Any]]]:
    """Replace make_client: record each client made and the arguments it was made with."""
    out: list[tuple[ClosableEcho, dict[str, Any]]] = []

    def fake_make_client(model: str, **kwargs: Any) -> ClosableEcho:
        if model == "broken":
            raise ModelError("no such model")
        client = ClosableEcho(model)
        out.append((client, kwargs))
        return client

    monkeypatch.setattr(stack_module, "make_client", fake_make_client)
    return out


def test_defaults_score_deterministically() -> None:
    models = ModelsConfig()
    assert (
        (models.slots, models.prompt_cache) == (1, False) == (DEFAULT_SLOTS, DEFAULT_PROMPT_CACHE)
    )
    assert models.forward.model == DEFAULT_FORWARD_MODEL
    assert models.backward.model == models.optimizer.model == DEFAULT_BACKWARD_MODEL
    llm = LocalLLM(DEFAULT_FORWARD_MODEL)
    assert (llm.n_parallel, llm.prompt_cache) == (1, False)


def test_slot_settings_do_not_change_cache_keys() -> None:
    # Slots and the prompt cache are server-side settings: a cache filled with 4 slots and
    # the prompt cache on still answers the deterministic default, and the other way round.
    fast = LocalLLM(DEFAULT_FORWARD_MODEL, n_parallel=4, prompt_cache=True)
    exact = LocalLLM(DEFAULT_FORWARD_MODEL)
    request = Request.chat("What is 2+3?")
    assert request.cache_key(fast.model) == request.cache_key(exact.model)


def test_roles_naming_one_model_share_its_client_meter_and_cache(
    made: list[tuple[ClosableEcho, dict[str, Any]]], tmp_path: Path
) -> None:
    models = ModelsConfig(
        forward="small", backward="big", optimizer="big", slots=3, cache="c.sqlite"
    )
    budget = Budget({"calls": 10})
    stack = build_stack(models, budget=budget, base_dir=tmp_path)
    try:
        assert [c.model for c, _ in made] == ["small", "big"]
        assert stack.clients == [c for c, _ in made]
        assert stack.llms["backward"] is stack.llms["optimizer"]
        assert stack.cache is not None and stack.cache.stats().path == tmp_path / "c.sqlite"
        for llm in stack.llms.values():
            assert find_layer(llm, CachedLLM) is not None
            assert find_layer(llm, BudgetedLLM) is not None
            limit = find_layer(llm, LimitedLLM)
            # the embedded slots times the copies
            assert limit is not None and limit.max_concurrency == 3 * DEFAULT_REPLICAS
        asyncio.run(stack.llms["forward"].complete(Request.chat("hi", node="n")))
        assert stack.meter.snapshot().total().calls == 1
    finally:
        asyncio.run(stack.aclose())


def test_embedded_settings_reach_the_client_and_a_server_is_not_limited(
    made: list[tuple[ClosableEcho, dict[str, Any]]],
) -> None:
    models = ModelsConfig(
        forward={"model": "m", "base_url": "http://127.0.0.1:9/v1"},
        slots=2,
        prompt_cache=True,
        ctx_per_slot=2048,
        cache_mode="off",
        max_attempts=3,
    )
    with build_stack(models, roles=("forward",)) as stack:
        assert stack.cache is None
        assert list(stack.llms) == ["forward"]
        llm = stack.llms["forward"]
        assert find_layer(llm, LimitedLLM) is None  # a server bounds its own slots
        retry = find_layer(llm, RetryingLLM)
        assert retry is not None and retry.policy.max_attempts == 3
    [(_client, kwargs)] = made
    assert kwargs == {
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": None,
        "slots": 2,
        "prompt_cache": True,
        "ctx_per_slot": 2048,
        "replicas": DEFAULT_REPLICAS,
    }


def test_a_failing_model_closes_what_was_made(
    made: list[tuple[ClosableEcho, dict[str, Any]]], tmp_path: Path
) -> None:
    models = ModelsConfig(forward="ok", backward="broken", cache=str(tmp_path / "c.sqlite"))
    with pytest.raises(ModelError, match="no such model"):
        build_stack(models)
    [(client, _)] = made
    assert client.closed
