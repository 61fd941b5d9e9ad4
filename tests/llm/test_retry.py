"""RetryingLLM: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import asyncio
import random
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from semgrad.errors import (
    CacheMissError,
    ConfigError,
    FatalHTTPError,
    LLMConnectionError,
    LLMHTTPError,
    LLMTimeoutError,
    MalformedResponseError,
    RetryExhaustedError,
)
from semgrad.llm import (
    FakeOpenAIServer,
    Meter,
    OpenAICompatible,
    Request,
    RetryingLLM,
    RetryPolicy,
    ScriptedLLM,
    is_retryable,
)


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers the delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


REQUEST = Request.chat("hello there", node="solver", phase="forward")


def test_honours_retry_after_then_backs_off_then_succeeds_against_a_server() -> None:
    failures = [(429, {"Retry-After": "1"}), (500, {}), (503, {})]
    sleep = RecordingSleep()
    policy = RetryPolicy(max_attempts=5, base_delay=0.5, max_delay=30.0, jitter=0.25)

    async def run(base_url: str) -> str:
        async with OpenAICompatible(base_url, "m") as client:
            llm = RetryingLLM(client, policy, sleep=sleep, rng=random.Random(7))
            response = await llm.complete(REQUEST)
            assert llm.retries == 3
            return response.text

    with FakeOpenAIServer(failures=failures) as server:
        assert asyncio.run(run(server.base_url)) == "hello there"
        assert server.request_count == 4
    assert sleep.delays[0] == 1.0  # exactly what the server asked for, no jitter
    # Then the policy's own backoff: base_delay * 2**(n-1) for retry n, +-25% jitter.
    assert 1.0 * 0.75 <= sleep.delays[1] <= 1.0 * 1.25
    assert 2.0 * 0.75 <= sleep.delays[2] <= 2.0 * 1.25
    assert len(sleep.delays) == 3


def test_retry_after_is_capped_by_max_delay() -> None:
    sleep = RecordingSleep()
    inner = ScriptedLLM([LLMHTTPError(429, "slow", retry_after=3600), "ok"])
    llm = RetryingLLM(inner, RetryPolicy(max_delay=10), sleep=sleep)
    assert asyncio.run(llm.complete(REQUEST)).text == "ok"
    assert sleep.delays == [10]


def test_gives_up_after_max_attempts_with_a_typed_error() -> None:
    sleep = RecordingSleep()
    errors = [LLMHTTPError(503, f"busy {i}") for i in range(3)]
    inner = ScriptedLLM([*errors, "never reached"])
    llm = RetryingLLM(inner, RetryPolicy(max_attempts=3, jitter=0), sleep=sleep)
    with pytest.raises(RetryExhaustedError) as info:
        asyncio.run(llm.complete(REQUEST))
    assert info.value.attempts == 3
    assert info.value.last_error is errors[-1]
    assert info.value.__cause__ is errors[-1]
    assert "gave up after 3 attempts" in str(info.value)
    assert len(inner.requests) == 3
    assert sleep.delays == [0.5, 1.0]
    assert llm.retries == 2


def test_a_400_is_not_retried() -> None:
    sleep = RecordingSleep()

    async def run(base_url: str) -> None:
        async with OpenAICompatible(base_url, "m") as client:
            await RetryingLLM(client, sleep=sleep).complete(REQUEST)

    with FakeOpenAIServer(failures=[(400, {}, "bad request")]) as server:
        with pytest.raises(LLMHTTPError) as info:
            asyncio.run(run(server.base_url))
        assert info.value.status == 400
        assert server.request_count == 1
    assert sleep.delays == []


@pytest.mark.parametrize(
    "error",
    [
        LLMHTTPError(400, "bad request"),
        FatalHTTPError(401, "no key"),
        FatalHTTPError(404, "no such model"),
        CacheMissError("ab" * 32),
        ConfigError("the key variable is not set"),
        MalformedResponseError("the embedded model answered with an error", raw="{}"),
    ],
    ids=["400", "401", "404", "cache-miss", "config", "local-malformed"],
)
def test_permanent_errors_are_raised_at_once(error: Exception) -> None:
    sleep = RecordingSleep()
    inner = ScriptedLLM([error, "ok"])
    with pytest.raises(type(error)) as info:
        asyncio.run(RetryingLLM(inner, sleep=sleep).complete(REQUEST))
    assert info.value is error
    assert len(inner.requests) == 1 and sleep.delays == []


@pytest.mark.parametrize(
    "error",
    [
        LLMTimeoutError("http://x/v1/chat/completions", 1.0),
        LLMConnectionError("http://x/v1/chat/completions", "refused"),
        LLMHTTPError(429, "rate limited"),
        LLMHTTPError(502, "bad gateway"),
        MalformedResponseError("not a completion", raw='{"choi', retryable=True),
    ],
    ids=["timeout", "connection", "429", "502", "malformed-200"],
)
def test_transient_errors_are_retried(error: Exception) -> None:
    assert is_retryable(error)
    sleep = RecordingSleep()
    inner = ScriptedLLM([error, error, "ok"])
    assert asyncio.run(RetryingLLM(inner, sleep=sleep).complete(REQUEST)).text == "ok"
    assert len(sleep.delays) == 2


def test_unreachable_server_is_retried_then_gives_up() -> None:
    sleep = RecordingSleep()

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def run() -> None:
        async with OpenAICompatible(f"http://127.0.0.1:{port}/v1", "m", timeout=5) as client:
            await RetryingLLM(client, RetryPolicy(max_attempts=2), sleep=sleep).complete(REQUEST)

    with pytest.raises(RetryExhaustedError) as info:
        asyncio.run(run())
    assert isinstance(info.value.last_error, LLMConnectionError)
    assert len(sleep.delays) == 1


def test_backoff_doubles_up_to_max_delay_without_jitter() -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=3.0, jitter=0.0)
    rng = random.Random(0)
    error = LLMHTTPError(500, "x")
    assert [policy.delay(n, error, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]


@given(
    retry=st.integers(min_value=1, max_value=20),
    seed=st.integers(min_value=0, max_value=2**32),
    jitter=st.floats(min_value=0.0, max_value=1.0),
)
def test_jittered_delay_stays_within_its_band(retry: int, seed: int, jitter: float) -> None:
    policy = RetryPolicy(base_delay=0.5, max_delay=30.0, jitter=jitter)
    delay = policy.delay(retry, LLMTimeoutError("u", 1.0), random.Random(seed))
    nominal = min(30.0, 0.5 * 2 ** (retry - 1))
    assert nominal * (1 - jitter) - 1e-9 <= delay <= min(30.0, nominal * (1 + jitter)) + 1e-9


def test_retries_are_recorded_in_the_meter() -> None:
    meter = Meter()
    inner = ScriptedLLM([LLMHTTPError(503, "busy"), "ok"])
    llm = RetryingLLM(inner, sleep=RecordingSleep(), meter=meter)
    asyncio.run(llm.complete(REQUEST))
    assert meter.snapshot().row("solver", "forward").retries == 1


def test_the_default_sleep_really_waits() -> None:
    inner = ScriptedLLM([LLMTimeoutError("u", 1.0), "ok"])
    llm = RetryingLLM(inner, RetryPolicy(base_delay=0.001, jitter=0))
    assert asyncio.run(llm.complete(REQUEST)).text == "ok"
    assert llm.model == "scripted"


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"base_delay": -1}, {"max_delay": -1}, {"jitter": 1.5}],
)
def test_bad_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


def test_a_malformed_200_from_a_server_is_retried_and_counted_in_the_meter() -> None:
    # A proxy that truncates the body, then one that sends garbage: both are retried like a
    # 5xx, each retry is counted by the meter, and the third answer is the real one.
    sleep = RecordingSleep()
    meter = Meter()
    truncated = (200, {}, '{"choices": [{"message": {"content": "hel')
    garbage = (200, {}, "<html>proxy error</html>")

    async def run(base_url: str) -> str:
        async with OpenAICompatible(base_url, "m") as client:
            llm = RetryingLLM(client, sleep=sleep, meter=meter)
            return (await llm.complete(REQUEST)).text

    with FakeOpenAIServer(failures=[truncated, garbage]) as server:
        assert asyncio.run(run(server.base_url)) == "hello there"
        assert server.request_count == 3
    assert len(sleep.delays) == 2
    assert meter.snapshot().total().retries == 2


def test_malformed_200s_are_retried_a_bounded_number_of_times() -> None:
    sleep = RecordingSleep()
    bad = MalformedResponseError("not a completion", raw="", retryable=True)
    inner = ScriptedLLM([bad] * 10)
    llm = RetryingLLM(inner, RetryPolicy(max_attempts=3), sleep=sleep)
    with pytest.raises(RetryExhaustedError) as info:
        asyncio.run(llm.complete(REQUEST))
    assert info.value.last_error is bad
    assert len(inner.requests) == 3 and llm.retries == 2


@pytest.mark.parametrize("status", [401, 403, 404])
def test_auth_and_not_found_statuses_are_fatal_user_errors(status: int) -> None:
    from semgrad.errors import UserInputError
    from semgrad.execution.executor import is_fatal

    sleep = RecordingSleep()

    async def run(base_url: str) -> None:
        async with OpenAICompatible(base_url, "no-such-model") as client:
            await RetryingLLM(client, sleep=sleep).complete(REQUEST)

    with FakeOpenAIServer(failures=[(status, {}, "nope")]) as server:
        with pytest.raises(FatalHTTPError) as info:
            asyncio.run(run(server.base_url))
        assert server.request_count == 1
    assert sleep.delays == []
    error = info.value
    assert error.status == status and not error.retryable
    assert isinstance(error, UserInputError) and is_fatal(error)
    assert "no-such-model" in str(error) and "nope" in str(error)
