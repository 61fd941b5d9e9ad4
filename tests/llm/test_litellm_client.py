"""LiteLLMClient against a fake `litellm` module (no install, no network)."""

from __future__ import annotations

import asyncio
import sys
import types
from typing import Any

import pytest

from semgrad.errors import (
    ConfigError,
    FatalHTTPError,
    LLMConnectionError,
    LLMHTTPError,
    LLMTimeoutError,
    MalformedResponseError,
)
from semgrad.llm import Cache, Request
from semgrad.llm.litellm_client import LiteLLMClient
from semgrad.llm.stack import build_llm

KEY = "sk-ant-test-0123456789"


class _StatusError(Exception):
    def __init__(self, message: str, status_code: int) -> None:
        super().__init__(message)
        self.status_code = status_code


class Timeout(Exception):  # named like litellm.Timeout
    pass


class APIConnectionError(Exception):  # named like litellm's
    pass


def fake_litellm(reply: Any = None, error: Exception | None = None) -> types.ModuleType:
    module = types.ModuleType("litellm")
    calls: list[dict[str, Any]] = []

    async def acompletion(**kwargs: Any) -> Any:
        calls.append(kwargs)
        if error is not None:
            raise error
        if reply is not None:
            return reply
        return {
            "choices": [
                {"message": {"role": "assistant", "content": "Paris"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 1},
        }

    module.acompletion = acompletion  # type: ignore[attr-defined]
    module.calls = calls  # type: ignore[attr-defined]
    return module


def test_a_call_goes_through_litellm_with_the_request_and_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = fake_litellm()
    monkeypatch.setitem(sys.modules, "litellm", fake)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    llm = LiteLLMClient("anthropic/claude-x", api_key_env="ANTHROPIC_API_KEY")
    request = Request.chat("Capital of France?", system="Be brief.", max_tokens=8, stop=("\n",))
    response = asyncio.run(llm.complete(request))
    assert response.text == "Paris"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (12, 1)
    assert response.model == "anthropic/claude-x" and response.finish_reason == "stop"
    [call] = fake.calls  # type: ignore[attr-defined]
    assert call["model"] == "anthropic/claude-x" and call["api_key"] == KEY
    assert call["messages"][0] == {"role": "system", "content": "Be brief."}
    assert call["max_tokens"] == 8 and call["stop"] == ["\n"] and call["num_retries"] == 0
    assert llm.endpoint == "litellm:anthropic"


def test_the_cache_keys_litellm_replies_apart_and_answers_repeats(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    fake = fake_litellm()
    monkeypatch.setitem(sys.modules, "litellm", fake)
    with Cache(tmp_path / "c.sqlite") as cache:
        llm = build_llm(LiteLLMClient("bedrock/m", api_base="https://x.example/v1/"), cache=cache)
        for _ in range(2):
            asyncio.run(llm.complete(Request.chat("hi")))
    assert len(fake.calls) == 1  # type: ignore[attr-defined]
    assert fake.calls[0]["api_base"] == "https://x.example/v1"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("error", "expected", "retryable"),
    [
        (_StatusError(f"bad key {KEY}", 401), FatalHTTPError, False),
        (_StatusError("no such model", 404), FatalHTTPError, False),
        (_StatusError("slow down", 429), LLMHTTPError, True),
        (_StatusError("overloaded", 529), LLMHTTPError, True),
        (Timeout("took too long"), LLMTimeoutError, None),
        (APIConnectionError("refused"), LLMConnectionError, None),
    ],
)
def test_litellm_errors_become_semgrads(
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    expected: type[Exception],
    retryable: bool | None,
) -> None:
    monkeypatch.setitem(sys.modules, "litellm", fake_litellm(error=error))
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    llm = LiteLLMClient("anthropic/claude-x", api_key_env="ANTHROPIC_API_KEY")
    with pytest.raises(expected) as info:
        asyncio.run(llm.complete(Request.chat("hi")))
    assert KEY not in str(info.value)
    if retryable is not None:
        assert info.value.retryable is retryable  # type: ignore[attr-defined]


def test_a_reply_without_text_is_malformed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "litellm", fake_litellm(reply={"choices": []}))
    with pytest.raises(MalformedResponseError):
        asyncio.run(LiteLLMClient("cohere/x").complete(Request.chat("hi")))


def test_without_litellm_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "litellm", None)  # import litellm -> ImportError
    llm = LiteLLMClient("anthropic/claude-x")  # constructing needs no litellm
    with pytest.raises(ConfigError, match=r"pip install 'semgrad\[litellm\]'"):
        asyncio.run(llm.complete(Request.chat("hi")))
