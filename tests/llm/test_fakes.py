"""The fakes shipped for tests: ScriptedLLM, EchoLLM and FakeOpenAIServer."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from semgrad.errors import LLMError, LLMHTTPError
from semgrad.llm import (
    LLM,
    EchoLLM,
    FakeOpenAIServer,
    Message,
    OpenAICompatible,
    Request,
    Response,
    ScriptedLLM,
    build_llm,
)


def _run(llm: LLM, *requests: Request) -> list[Response]:
    async def run() -> list[Response]:
        return list(await asyncio.gather(*(llm.complete(r) for r in requests)))

    return asyncio.run(run())


# --- ScriptedLLM and EchoLLM -------------------------------------------------------------


def test_scripted_replies_in_order_and_records_requests() -> None:
    llm = ScriptedLLM(["first reply", "second"], model="s")
    a, b = Request.chat("one", node="x"), Request.chat("two")
    assert [r.text for r in _run(llm, a, b)] == ["first reply", "second"]
    assert llm.requests == [a, b]
    assert llm.remaining == 0
    assert isinstance(llm, LLM) and llm.model == "s"


def test_scripted_usage_is_word_counts() -> None:
    (response,) = _run(ScriptedLLM(["three word reply"]), Request.chat("a b", system="c d e"))
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (5, 3)


def test_scripted_exceptions_are_raised_in_turn() -> None:
    llm = ScriptedLLM([LLMHTTPError(503, "busy"), "ok"])
    with pytest.raises(LLMHTTPError):
        _run(llm, Request.chat("x"))
    assert _run(llm, Request.chat("x"))[0].text == "ok"


def test_running_out_of_script_says_so_clearly() -> None:
    llm = ScriptedLLM(["only one"])
    _run(llm, Request.chat("first"))
    with pytest.raises(LLMError, match="ran out of replies") as info:
        _run(llm, Request.chat("the second question", node="solver"))
    message = str(info.value)
    assert "scripted with 1" in message and "request #2" in message
    assert "'solver'" in message and "the second question" in message


def test_scripted_function_computes_replies() -> None:
    llm = ScriptedLLM(lambda r: r.messages[-1].content[::-1])
    assert [r.text for r in _run(llm, Request.chat("abc"), Request.chat("xy"))] == ["cba", "yx"]
    assert llm.remaining is None


def test_concurrent_scripted_requests_get_replies_in_arrival_order() -> None:
    llm = ScriptedLLM(["r0", "r1", "r2"], delay=0.01)
    texts = [r.text for r in _run(llm, *(Request.chat(f"q{i}") for i in range(3)))]
    assert texts == ["r0", "r1", "r2"]


def test_a_single_string_script_is_refused() -> None:
    with pytest.raises(TypeError, match="list of replies"):
        ScriptedLLM("hello")


def test_echo_replies_with_the_last_user_message() -> None:
    llm = EchoLLM()
    request = Request(
        messages=(
            Message("system", "sys"),
            Message("user", "the question"),
            Message("assistant", "an earlier answer"),
        )
    )
    (response,) = _run(llm, request)
    assert response.text == "the question"
    assert response.model == "echo"
    assert response.usage.completion_tokens == 2
    assert llm.requests == [request]


# --- FakeOpenAIServer --------------------------------------------------------------------


def test_server_listens_on_loopback_and_serves_models() -> None:
    with FakeOpenAIServer(model="tiny") as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        with httpx.Client() as http:
            models = http.get(f"{server.base_url}/models").json()
            assert models["data"][0]["id"] == "tiny"
            assert http.get(f"{server.base_url}/nothing").status_code == 404
            assert http.post(f"{server.base_url}/chat/completions", content=b"{").status_code == 400
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


def test_server_serves_scripted_failures_first_and_counts_requests() -> None:
    def shout(body: Mapping[str, Any]) -> str:
        return str(body["messages"][-1]["content"]).upper()

    failures = [(429, {"Retry-After": "1"}), (500, {})]
    with FakeOpenAIServer(reply=shout, failures=failures) as server:
        llm = OpenAICompatible(server.base_url, "m")
        statuses = []
        for _ in range(2):
            with pytest.raises(LLMHTTPError) as info:
                _run(llm, Request.chat("hey"))
            statuses.append((info.value.status, info.value.retry_after))
        assert statuses == [(429, 1.0), (500, None)]
        assert _run(llm, Request.chat("hey"))[0].text == "HEY"
        server.fail_next((503, {}))
        with pytest.raises(LLMHTTPError):
            _run(llm, Request.chat("hey"))
        assert server.request_count == 4
        assert [body["messages"][-1]["content"] for body in server.requests] == ["hey"] * 4
        assert all(h["content-type"] == "application/json" for h in server.headers)


def test_a_failing_reply_function_is_a_500() -> None:
    def broken(body: Mapping[str, Any]) -> str:
        raise ValueError("oops")

    with FakeOpenAIServer(reply=broken) as server:
        with pytest.raises(LLMHTTPError) as info:
            _run(OpenAICompatible(server.base_url, "m"), Request.chat("x"))
        assert info.value.status == 500 and "oops" in info.value.body


def test_server_sustains_64_concurrent_requests() -> None:
    # 192 requests at 200 ms each: the client must keep many of them in flight at once.
    # Checked by the overlap the server saw, not by wall time (the machine may be busy).
    latency, count = 0.2, 192
    with FakeOpenAIServer(latency=latency) as server:
        llm = build_llm(OpenAICompatible(server.base_url, "m"), max_concurrency=64)
        requests = [Request.chat(f"question {i}") for i in range(count)]
        responses = _run(llm, *requests)
        assert [r.text for r in responses] == [f"question {i}" for i in range(count)]
        assert server.request_count == count
        assert server.max_in_flight >= 32, f"only {server.max_in_flight} requests overlapped"
