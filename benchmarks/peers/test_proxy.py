"""Offline tests of the peers' proxy: counting, the budget cut-off, the cache, n > 1.

python -m pytest benchmarks/peers        # a few seconds; no model, no peer library
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from common import BUDGET_MARKER, Proxy, is_budget_error, render_prompt
from proxy import PeerProxy

from semgrad.llm.cache import Cache
from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.prompts import render_forward


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="small") as server:
        yield server


@pytest.fixture
def proxy(upstream: FakeOpenAIServer, tmp_path: Path) -> Iterator[PeerProxy]:
    with (
        Cache(tmp_path / "cache.sqlite") as cache,
        PeerProxy.from_servers([upstream.base_url], cache) as running,
    ):
        yield running


def post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def chat(proxy: PeerProxy, run: str, phase: str, text: str, **extra: Any) -> tuple[int, Any]:
    body = {"model": "small", "messages": [{"role": "user", "content": text}], **extra}
    return post(f"{proxy.base_url(run, phase)}/chat/completions", body)


def test_counts_calls_tokens_and_cache_hits_per_phase(
    proxy: PeerProxy, upstream: FakeOpenAIServer
) -> None:
    proxy.register("r1")
    status, reply = chat(proxy, "r1", "optimize", "one two three", temperature=0)
    assert status == 200
    assert reply["choices"][0]["message"]["content"] == "one two three"
    chat(proxy, "r1", "optimize", "one two three", temperature=0)  # same request: a hit
    chat(proxy, "r1", "test", "four", temperature=0)
    phases = proxy.stats("r1")["phases"]
    assert phases["optimize"]["calls"] == 2
    assert phases["optimize"]["cache_hits"] == 1
    assert phases["optimize"]["prompt_tokens"] == 6  # the fake counts words, hits included
    assert phases["test"]["calls"] == 1
    assert upstream.request_count == 2


def test_budget_refuses_past_the_limit_with_a_non_retryable_error(proxy: PeerProxy) -> None:
    proxy.register("r2", budgets={"optimize": 2})
    assert chat(proxy, "r2", "optimize", "a", temperature=0)[0] == 200
    assert chat(proxy, "r2", "optimize", "b", temperature=0)[0] == 200
    status, reply = chat(proxy, "r2", "optimize", "c", temperature=0)
    assert status == 403
    assert BUDGET_MARKER in reply["error"]["message"]
    assert chat(proxy, "r2", "test", "c", temperature=0)[0] == 200  # test is not capped
    stats = proxy.stats("r2")["phases"]["optimize"]
    assert (stats["calls"], stats["refused"]) == (2, 1)
    assert Proxy(proxy.url, "r2").remaining("optimize") == 0


def test_rerun_is_answered_from_the_cache(proxy: PeerProxy, upstream: FakeOpenAIServer) -> None:
    proxy.register("r3")
    chat(proxy, "r3", "optimize", "x y", temperature=0)
    proxy.register("r3")  # a re-run starts counting again
    chat(proxy, "r3", "optimize", "x y", temperature=0)
    stats = proxy.stats("r3")["phases"]["optimize"]
    assert (stats["calls"], stats["cache_hits"]) == (1, 1)
    assert upstream.request_count == 1


def test_cache_scopes_keep_methods_apart(proxy: PeerProxy, upstream: FakeOpenAIServer) -> None:
    proxy.register("a")
    proxy.register("b")
    chat(proxy, "a", "test", "same", temperature=0)
    chat(proxy, "b", "test", "same", temperature=0)
    assert upstream.request_count == 2


def test_n_samples_are_separate_calls_with_distinct_seeds(
    proxy: PeerProxy, upstream: FakeOpenAIServer
) -> None:
    proxy.register("r4", budgets={"optimize": 10})
    status, reply = chat(proxy, "r4", "optimize", "pick", temperature=1.0, n=3)
    assert status == 200 and len(reply["choices"]) == 3
    assert [r["seed"] for r in upstream.requests] == [0, 1, 2]
    assert all("n" not in r for r in upstream.requests)
    # The same sampled request again is a new draw (samples 3..5), not a replay of 0..2.
    chat(proxy, "r4", "optimize", "pick", temperature=1.0, n=3)
    assert [r["seed"] for r in upstream.requests][3:] == [3, 4, 5]
    assert proxy.stats("r4")["phases"]["optimize"]["calls"] == 6


def test_n_is_cut_to_what_the_budget_allows(proxy: PeerProxy) -> None:
    proxy.register("r5", budgets={"optimize": 2})
    status, reply = chat(proxy, "r5", "optimize", "pick", temperature=1.0, n=5)
    assert status == 200 and len(reply["choices"]) == 2
    assert chat(proxy, "r5", "optimize", "pick", temperature=1.0)[0] == 403


def test_max_completion_tokens_reaches_the_server_as_max_tokens(
    proxy: PeerProxy, upstream: FakeOpenAIServer
) -> None:
    proxy.register("r6")
    chat(proxy, "r6", "optimize", "q", temperature=0, max_completion_tokens=7)
    assert upstream.requests[-1]["max_tokens"] == 7


def test_unknown_model_and_run_are_refused(proxy: PeerProxy) -> None:
    proxy.register("r7")
    url = f"{proxy.base_url('r7', 'test')}/chat/completions"
    status, reply = post(url, {"model": "nope", "messages": []})
    assert status == 404 and "small" in reply["error"]["message"]
    assert chat(proxy, "not-registered", "test", "q")[0] == 404


def test_scores_with_the_registered_metric(proxy: PeerProxy) -> None:
    proxy.register("r8", scorer=lambda example_id, text: (1.0, f"{example_id}:{text}", text))
    verdict = Proxy(proxy.url, "r8").score("ex1", "Answer: 4")
    assert (verdict.value, verdict.feedback) == (1.0, "ex1:Answer: 4")


def test_budget_errors_are_recognised_through_exception_chains() -> None:
    try:
        try:
            raise RuntimeError(f"HTTP 403: {BUDGET_MARKER}: run x ...")
        except RuntimeError as inner:
            raise ValueError("wrapped") from inner
    except ValueError as outer:
        assert is_budget_error(outer)
    assert not is_budget_error(ValueError("other"))


def test_adapters_render_semgrads_forward_prompt() -> None:
    question, hints, instruction = " What is 2+2? ", ("h one ", "h two"), "Solve it."
    (message,) = render_forward(
        instruction, {"question": question}, [("hint_1", hints[0]), ("hint_2", hints[1])]
    )
    assert render_prompt(instruction, question, hints) == message.content
    (message,) = render_forward(instruction, {"question": question}, [])
    assert render_prompt(instruction, question) == message.content


def test_upstream_mode_maps_a_chat_body_back_to_semgrads_request() -> None:
    from proxy import ProxyError, request_from_body

    from semgrad.llm.openai import request_body
    from semgrad.llm.types import Message, Request

    for request in (
        Request.chat("What is 2+2?", max_tokens=96),
        Request(
            (Message("system", "s"), Message("user", "u"), Message("assistant", "a")),
            temperature=0.7,
            max_tokens=320,
            top_p=0.9,
            seed=3,
            stop=("\n\n",),
        ),
    ):
        again = request_from_body(request_body(request, "m"), tag=request.phase)
        assert again.cache_key("m") == request.cache_key("m")
    # LiteLLM's names and shapes: max_completion_tokens, text parts, a stop string.
    body = {
        "messages": [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        ],
        "max_completion_tokens": 7,
        "stop": "END",
    }
    request = request_from_body(body)
    assert request.messages == (Message("user", "ab"),)
    assert (request.max_tokens, request.stop, request.temperature) == (7, ("END",), 1.0)
    with pytest.raises(ProxyError):
        request_from_body({"messages": [{"role": "tool", "content": "x"}]})
    with pytest.raises(ProxyError):
        request_from_body({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})
