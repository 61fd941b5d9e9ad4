"""The real embedded model: LocalLLM and serve() with qwen2.5-coder-0.5b on this CPU.

These tests fail, not skip, when the model is missing: the message says how to install it
(`semgrad models install qwen2.5-coder-0.5b`). Replies are kept to a few tokens so the
whole module stays well under a minute on two cores.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from semgrad.llm.local import LocalLLM
from semgrad.llm.serve import serve
from semgrad.llm.types import Request, Response

pytestmark = pytest.mark.real

MODEL = "qwen2.5-coder-0.5b"


@pytest.fixture(scope="module")
def llm() -> Iterator[LocalLLM]:
    # Constructing does not load (or even look for) the model, so a missing model fails
    # inside each test, with ModelNotInstalledError's message, rather than erroring here.
    with LocalLLM(MODEL, n_parallel=4, n_ctx_per_slot=1024) as local:
        yield local


def ask(llm: LocalLLM, *requests: Request) -> list[Response]:
    async def run() -> list[Response]:
        return await asyncio.gather(*(llm.complete(r) for r in requests))

    return asyncio.run(run())


def test_one_short_completion(llm: LocalLLM) -> None:
    [response] = ask(llm, Request.chat("What is 2 + 3? Reply with the number only.", max_tokens=8))
    assert "5" in response.text
    assert response.model == MODEL
    assert response.finish_reason in ("stop", "length")
    assert response.latency_s > 0
    assert llm.loaded


def test_four_concurrent_completions_share_the_batch(llm: LocalLLM) -> None:
    ask(llm, Request.chat("Hi.", max_tokens=1))  # load first: the load is not part of a call
    # Long answers cut at the same length, so that the four calls run for equally long.
    topics = ["colours", "fruits", "animals", "countries"]
    requests = [Request.chat(f"List twenty {t}, comma-separated.", max_tokens=12) for t in topics]
    start = time.perf_counter()
    responses = ask(llm, *requests)
    wall = time.perf_counter() - start
    assert [r.finish_reason for r in responses] == ["length"] * 4
    # Decoded together, the four calls overlap: each one's latency is close to the wall
    # time of all four. One after another, the latencies would add up to the wall time.
    assert sum(r.latency_s for r in responses) > 2.5 * wall


def test_usage_counts_the_tokens(llm: LocalLLM) -> None:
    requests = [
        Request.chat("Count from 1 to 100, separated by commas.", max_tokens=6),
        Request.chat("List the numbers from 50 to 1, one per line.", max_tokens=5),
    ]
    responses = ask(llm, *requests)
    for request, response in zip(requests, responses, strict=True):
        assert response.finish_reason == "length"
        assert response.usage.completion_tokens == request.max_tokens
        # The chat template (Qwen adds a default system prompt) makes prompts > 10 tokens.
        assert response.usage.prompt_tokens > 10
    total = responses[0].usage + responses[1].usage
    assert total.completion_tokens == 11


def test_temperature_zero_repeats_itself_one_request_at_a_time() -> None:
    # Batching and llama.cpp's prompt cache both change float rounding, and with it a
    # near-tie between two tokens (see semgrad.llm.local); without them, replies repeat.
    request = Request.chat("Describe a hash table in one sentence.", max_tokens=24)
    with LocalLLM(MODEL, n_parallel=1, n_ctx_per_slot=512, prompt_cache=False) as llm:
        replies = [ask(llm, request)[0] for _ in range(3)]
    assert len({r.text for r in replies}) == 1
    assert len({r.usage for r in replies}) == 1


def test_replicas_give_the_replies_one_copy_gives() -> None:
    # Two single-slot copies side by side, one thread each: nothing is batched, so every
    # reply is the one a single copy gives, whichever copy served it.
    requests = [
        Request.chat(f"Name {n} animals, one per line.", max_tokens=24) for n in (2, 3, 4, 5)
    ]
    with LocalLLM(MODEL, n_parallel=1, n_ctx_per_slot=512, prompt_cache=False) as one:
        alone = [r.text for r in ask(one, *requests)]
    with LocalLLM(
        MODEL, n_parallel=1, n_ctx_per_slot=512, prompt_cache=False, replicas=2
    ) as two:
        side_by_side = [r.text for r in ask(two, *requests)]
    assert side_by_side == alone


def test_serve_answers_chat_completions_on_loopback() -> None:
    stop = threading.Event()
    ready: queue.Queue[str] = queue.Queue()
    failures: list[BaseException] = []

    def run() -> None:
        try:
            serve(MODEL, port=0, n_parallel=1, n_ctx_per_slot=1024, on_ready=ready.put, stop=stop)
        except BaseException as e:  # handed to the test thread, which raises it
            failures.append(e)
            ready.put("")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        base_url = ready.get(timeout=60)
        if failures:
            raise failures[0]
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        models = httpx.get(f"{base_url}/models", timeout=10).json()
        assert MODEL in [m["id"] for m in models["data"]]
        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Say hello."}],
            "max_tokens": 6,
            "temperature": 0,
        }
        reply = httpx.post(f"{base_url}/chat/completions", json=body, timeout=60)
        assert reply.status_code == 200, reply.text
        data = reply.json()
        assert data["choices"][0]["message"]["content"].strip()
        assert data["usage"]["completion_tokens"] <= 6
        assert data["model"] == MODEL
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not thread.is_alive()
