"""OpenAICompatible against a real loopback HTTP server (FakeOpenAIServer), offline."""

from __future__ import annotations

import asyncio
import socket
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest

from semgrad.errors import (
    ConfigError,
    FatalHTTPError,
    LLMConnectionError,
    LLMHTTPError,
    LLMTimeoutError,
    MalformedResponseError,
)
from semgrad.llm import Cache, CachedLLM, FakeOpenAIServer, OpenAICompatible, Request, Response
from semgrad.llm.fakes import ScriptedFailure
from semgrad.llm.openai import parse_retry_after, request_body
from semgrad.llm.types import MAX_REPLY_CHARS, capped_reply

SECRET = "sk-test-0123456789abcdef-SECRET"
KEY_ENV = "SEMGRAD_TEST_API_KEY"


async def _complete(llm: OpenAICompatible, request: Request) -> Response:
    # The async context manager closes the client's connections before the loop ends.
    async with llm:
        return await llm.complete(request)


def _free_port() -> int:
    # Bind to an ephemeral port and release it: nothing listens there afterwards.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_request_body_carries_every_sampling_field_and_omits_empty_stop() -> None:
    request = Request.chat("hi", system="be brief", temperature=0.5, max_tokens=7, top_p=0.9)
    body = request_body(request, "m")
    assert body == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.5,
        "max_tokens": 7,
        "top_p": 0.9,
        "seed": 0,
    }
    assert request_body(Request.chat("hi", stop=("\n",)), "m")["stop"] == ["\n"]


def test_completes_against_the_fake_server() -> None:
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url, "fake-model")
        response = asyncio.run(_complete(llm, Request.chat("two words", seed=3, node="a")))
        assert response.text == "two words"
        assert response.usage.prompt_tokens == 2
        assert response.usage.completion_tokens == 2
        assert response.model == "fake-model"
        assert response.finish_reason == "stop"
        assert not response.cached
        assert response.latency_s > 0
        (sent,) = server.requests
        assert sent["seed"] == 3
        assert sent["model"] == "fake-model"
        assert "stop" not in sent
        # Metering tags stay on our side of the wire.
        assert "node" not in sent and "phase" not in sent


def test_base_url_with_trailing_slash_is_joined_cleanly() -> None:
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url + "/", "m")
        assert asyncio.run(_complete(llm, Request.chat("ok"))).text == "ok"


def test_base_url_without_api_root_gives_a_404_http_error() -> None:
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url.removesuffix("/v1"), "m")
        with pytest.raises(LLMHTTPError) as info:
            asyncio.run(_complete(llm, Request.chat("ok")))
        assert info.value.status == 404
        assert not info.value.retryable


def test_client_survives_several_event_loops() -> None:
    # Each asyncio.run makes a new loop; pooled connections from the old one must not leak in.
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url, "m")
        assert asyncio.run(llm.complete(Request.chat("one"))).text == "one"
        assert asyncio.run(llm.complete(Request.chat("two"))).text == "two"
        asyncio.run(llm.aclose())
        asyncio.run(llm.aclose())  # twice is fine


def test_a_caller_owned_http_client_is_used_and_left_open() -> None:
    async def run(base_url: str) -> str:
        async with httpx.AsyncClient() as http:
            llm = OpenAICompatible(base_url, "m", http_client=http)
            text = (await llm.complete(Request.chat("mine"))).text
            await llm.aclose()
            assert not http.is_closed
            return text

    with FakeOpenAIServer() as server:
        assert asyncio.run(run(server.base_url)) == "mine"


def test_api_key_is_read_at_call_time_and_sent_as_bearer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url, "m", api_key_env=KEY_ENV)  # no key yet: fine
        monkeypatch.setenv(KEY_ENV, SECRET)
        asyncio.run(_complete(llm, Request.chat("a")))
        monkeypatch.setenv(KEY_ENV, "sk-rotated")
        asyncio.run(_complete(llm, Request.chat("b")))
        first, second = server.headers
        assert first["authorization"] == f"Bearer {SECRET}"
        assert second["authorization"] == "Bearer sk-rotated"
        assert SECRET not in repr(llm) and SECRET not in str(vars(llm))


def test_no_authorization_header_without_api_key_env() -> None:
    with FakeOpenAIServer() as server:
        asyncio.run(_complete(OpenAICompatible(server.base_url, "m"), Request.chat("a")))
        assert "authorization" not in server.headers[0]


def test_missing_key_variable_is_a_clear_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url, "m", api_key_env=KEY_ENV)
        with pytest.raises(ConfigError, match=KEY_ENV):
            asyncio.run(_complete(llm, Request.chat("a")))
        assert server.request_count == 0


def test_key_never_reaches_errors_reprs_or_the_cache_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    # A server that echoes the key back in an error body (some do, for "invalid key").
    echo_key: ScriptedFailure = (401, {}, f'{{"error": "invalid api key {SECRET}"}}')
    with FakeOpenAIServer(failures=[echo_key]) as server:
        client = OpenAICompatible(server.base_url, "m", api_key_env=KEY_ENV)
        with pytest.raises(LLMHTTPError) as info:
            asyncio.run(_complete(client, Request.chat("a")))
        error_text = "".join(traceback.format_exception(info.value))
        assert SECRET not in error_text and SECRET not in repr(info.value)
        assert SECRET not in info.value.body
        assert "[redacted]" in info.value.body

        cache_path = tmp_path / "cache.sqlite"
        cache = Cache(cache_path)
        cached = CachedLLM(client, cache)
        asyncio.run(cached.complete(Request.chat("store me")))
        assert cache.stats().writes == 1
        assert SECRET not in repr(cached)
        cache.close()
        assert server.headers[-1]["authorization"] == f"Bearer {SECRET}"
    for file in tmp_path.iterdir():  # the database and any WAL/SHM side files
        assert SECRET.encode() not in file.read_bytes()


def test_unreachable_server_is_a_connection_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    url = f"http://127.0.0.1:{_free_port()}/v1"
    llm = OpenAICompatible(url, "m", api_key_env=KEY_ENV, timeout=5)
    with pytest.raises(LLMConnectionError) as info:
        asyncio.run(_complete(llm, Request.chat("a")))
    assert info.value.url == f"{url}/chat/completions"
    assert "cannot reach" in str(info.value)
    assert SECRET not in "".join(traceback.format_exception(info.value))


def test_slow_server_is_a_timeout_error() -> None:
    with FakeOpenAIServer(latency=1.0) as server:
        llm = OpenAICompatible(server.base_url, "m", timeout=0.1)
        with pytest.raises(LLMTimeoutError) as info:
            asyncio.run(_complete(llm, Request.chat("a")))
        assert info.value.timeout == 0.1
        assert "0.1 s" in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        "this is not json",
        "[1, 2, 3]",
        '{"choices": []}',
        '{"choices": [{"message": {"content": null}}]}',
        '{"choices": [{"text": "a legacy completion"}]}',
    ],
)
def test_a_body_without_completion_text_is_malformed(body: str) -> None:
    with FakeOpenAIServer(failures=[(200, {}, body)]) as server:
        llm = OpenAICompatible(server.base_url, "m")
        with pytest.raises(MalformedResponseError) as info:
            asyncio.run(_complete(llm, Request.chat("a")))
        assert info.value.raw == body


def test_missing_usage_counts_as_zero_tokens() -> None:
    body = '{"choices": [{"message": {"role": "assistant", "content": "hi"}}]}'
    with FakeOpenAIServer(failures=[(200, {}, body)]) as server:
        response = asyncio.run(_complete(OpenAICompatible(server.base_url, "m"), Request.chat("a")))
    assert response.text == "hi"
    assert response.usage.total_tokens == 0
    assert response.finish_reason == "stop"


def test_a_reply_over_the_cap_is_cut_there_and_marked_length() -> None:
    # A server that ignores max_tokens (or a hostile one) cannot hand megabytes to the
    # parsers, metrics, prompts, cache and report: they read the first MAX_REPLY_CHARS.
    long = "x" * (MAX_REPLY_CHARS + 10)
    with FakeOpenAIServer(reply=lambda body: long) as server:
        llm = OpenAICompatible(server.base_url, "m")
        cut = asyncio.run(_complete(llm, Request.chat("a")))
    assert (len(cut.text), cut.finish_reason) == (MAX_REPLY_CHARS, "length")
    assert capped_reply("x" * MAX_REPLY_CHARS, "stop") == ("x" * MAX_REPLY_CHARS, "stop")


def test_http_errors_carry_status_body_url_and_retry_after() -> None:
    with FakeOpenAIServer(failures=[(429, {"Retry-After": "3"}, "slow down")]) as server:
        llm = OpenAICompatible(server.base_url, "m")
        with pytest.raises(LLMHTTPError) as info:
            asyncio.run(_complete(llm, Request.chat("a")))
    error = info.value
    assert (error.status, error.body, error.retry_after) == (429, "slow down", 3.0)
    assert error.url.endswith("/v1/chat/completions")
    assert error.retryable


def test_parse_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("nan") is None
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    later = format_datetime(now + timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(later, now=now) == 7.0
    earlier = format_datetime(now - timedelta(seconds=7), usegmt=True)
    assert parse_retry_after(earlier, now=now) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"base_url": "127.0.0.1:8080/v1"}, "base_url"),
        ({"model": ""}, "model"),
        ({"timeout": 0}, "timeout"),
        ({"api_key_env": ""}, "api_key_env"),
    ],
)
def test_bad_configuration_is_refused_eagerly(kwargs: dict[str, object], key: str) -> None:
    args: dict[str, object] = {"base_url": "http://127.0.0.1:1/v1", "model": "m", **kwargs}
    with pytest.raises(ConfigError) as info:
        OpenAICompatible(**args)  # type: ignore[arg-type]
    assert info.value.key == key


@pytest.mark.parametrize("key", ["e", "n", '"', "content"])
def test_a_short_api_key_never_corrupts_the_reply(
    monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    # Redaction works on parsed text: the raw JSON is parsed untouched, so a key that is a
    # common substring ("e" is in "finish_reason", '"' is JSON's quote) changes nothing.
    monkeypatch.setenv(KEY_ENV, key)
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url, "m", api_key_env=KEY_ENV)
        response = asyncio.run(_complete(llm, Request.chat("the content here")))
    assert response.text == "the content here"
    assert response.finish_reason == "stop"
    assert response.usage.completion_tokens == 3


def test_a_long_key_echoed_in_a_reply_is_redacted_after_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url, "m", api_key_env=KEY_ENV)
        response = asyncio.run(_complete(llm, Request.chat(f"my key is {SECRET} ok")))
    assert response.text == "my key is [redacted] ok"


def test_a_key_echoed_in_a_malformed_body_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FakeOpenAIServer(failures=[(200, {}, f"<html>{SECRET}")]) as server:
        llm = OpenAICompatible(server.base_url, "m", api_key_env=KEY_ENV)
        with pytest.raises(MalformedResponseError) as info:
            asyncio.run(_complete(llm, Request.chat("a")))
    assert SECRET not in info.value.raw and SECRET not in str(info.value)


def test_a_404_for_an_unknown_model_is_fatal_and_names_the_model() -> None:
    with FakeOpenAIServer() as server:
        llm = OpenAICompatible(server.base_url.removesuffix("/v1"), "my-model")
        with pytest.raises(FatalHTTPError) as info:
            asyncio.run(_complete(llm, Request.chat("ok")))
    assert "'my-model'" in str(info.value) and "/v1" in str(info.value)


def test_a_lone_surrogate_in_a_reply_becomes_a_replacement_character() -> None:
    body = '{"choices": [{"message": {"content": "a \\udcff b \\ud83d\\ude00"}}]}'
    with FakeOpenAIServer(failures=[(200, {}, body)]) as server:
        response = asyncio.run(_complete(OpenAICompatible(server.base_url, "m"), Request.chat("a")))
    assert response.text == "a \ufffd b \U0001f600"
    response.text.encode("utf-8")  # storable and sendable
