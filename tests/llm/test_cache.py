"""The SQLite response cache and CachedLLM: keys, modes, concurrency, single flight."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from semgrad.errors import CacheMissError, ConfigError, DataError, LLMHTTPError
from semgrad.llm import (
    Cache,
    CachedLLM,
    CacheMode,
    Message,
    Request,
    Response,
    ScriptedLLM,
    Usage,
    canonical_json,
)
from semgrad.llm.types import MAX_REPLY_CHARS

BASE = Request(
    messages=(Message("system", "be brief"), Message("user", "what is 2+2?")),
    temperature=0.0,
    max_tokens=64,
    top_p=1.0,
    seed=0,
    stop=(),
)


def _response(text: str = "4") -> Response:
    return Response(text=text, usage=Usage(5, 1), model="m", finish_reason="length")


def _put(cache: Cache, request: Request, text: str, model: str = "m") -> str:
    key = request.cache_key(model)
    cache.put(key, canonical_json(request.key_fields(model)), _response(text))
    return key


# --- the key -----------------------------------------------------------------------------


def test_cache_key_is_the_same_in_another_process() -> None:
    # A fresh interpreter has another hash() seed; a key built on hash() would differ.
    code = (
        "from semgrad.llm import Message, Request\n"
        "r = Request(messages=(Message('system', 'be brief'), Message('user', 'what is 2+2?')),"
        " max_tokens=64)\n"
        "print(r.cache_key('m'))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == BASE.cache_key("m")


@pytest.mark.parametrize(
    "changed",
    [
        replace(BASE, messages=(Message("system", "be brief"), Message("user", "what is 2+3?"))),
        replace(BASE, messages=(Message("user", "be brief"), Message("user", "what is 2+2?"))),
        replace(BASE, messages=BASE.messages[1:]),
        replace(BASE, temperature=0.5),
        replace(BASE, max_tokens=65),
        replace(BASE, top_p=0.9),
        replace(BASE, stop=("\n",)),
    ],
    ids=["content", "role", "messages", "temperature", "max_tokens", "top_p", "stop"],
)
def test_cache_key_changes_with_everything_the_model_sees(changed: Request) -> None:
    assert changed.cache_key("m") != BASE.cache_key("m")


def test_cache_key_changes_with_the_model() -> None:
    assert BASE.cache_key("m") != BASE.cache_key("m2")


def test_cache_key_ignores_node_and_phase_tags() -> None:
    tagged = replace(BASE, node="solver.answer", phase="evaluation")
    assert tagged.cache_key("m") == BASE.cache_key("m")


def test_seed_matters_only_when_sampling() -> None:
    # Greedy decoding ignores the seed: runs with other seeds share temperature-0 calls.
    assert replace(BASE, seed=1).cache_key("m") == BASE.cache_key("m")
    hot = replace(BASE, temperature=0.7)
    assert replace(hot, seed=1).cache_key("m") != hot.cache_key("m")


def test_sample_index_matters_only_when_sampling() -> None:
    assert replace(BASE, sample_index=3).cache_key("m") == BASE.cache_key("m")
    hot = replace(BASE, temperature=0.7)
    assert replace(hot, sample_index=1).cache_key("m") != hot.cache_key("m")
    assert replace(hot, sample_index=1).cache_key("m") == replace(hot, sample_index=1).cache_key(
        "m"
    )


# --- the file ----------------------------------------------------------------------------


def test_roundtrip_stats_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "cache.sqlite"  # parents are created
    with Cache(path) as cache:
        key = _put(cache, BASE, "4")
        assert cache.get("0" * 64) is None
        hit = cache.get(key)
        assert hit == Response(
            text="4", usage=Usage(5, 1), model="m", finish_reason="length", cached=True
        )
        stats = cache.stats()
        assert (stats.entries, stats.hits, stats.misses, stats.writes) == (1, 1, 1, 1)
        assert stats.path == path and stats.size_bytes > 0
        assert cache.clear() == 1
        assert cache.stats().entries == 0


def test_a_row_over_the_reply_cap_is_read_cut(tmp_path: Path) -> None:
    # A row stored before replies were capped is read as the clients read a reply now.
    with Cache(tmp_path / "c.sqlite") as cache:
        key = _put(cache, Request.chat("q"), "y" * (MAX_REPLY_CHARS + 1))
        got = cache.get(key)
    assert got is not None and (len(got.text), got.finish_reason) == (MAX_REPLY_CHARS, "length")


def test_the_first_answer_stored_for_a_key_wins(tmp_path: Path) -> None:
    with Cache(tmp_path / "c.sqlite") as cache:
        key = BASE.cache_key("m")
        fields = canonical_json(BASE.key_fields("m"))
        assert cache.put(key, fields, _response("first"))
        assert not cache.put(key, fields, _response("second"))
        hit = cache.get(key)
        assert hit is not None and hit.text == "first"
        assert cache.stats().writes == 1


def test_file_is_in_wal_mode_and_stores_the_request_fields(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with Cache(path) as cache:
        key = _put(cache, replace(BASE, node="n1"), "4")
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (request_json,) = conn.execute(
            "SELECT request_json FROM responses WHERE key = ?", (key,)
        ).fetchone()
    finally:
        conn.close()
    assert request_json == canonical_json(BASE.key_fields("m"))
    assert "n1" not in request_json


def test_read_only_modes_never_create_or_write_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.sqlite"
    for mode in ("read-only", "replay-only", "off"):
        cache = Cache(path, mode=mode)
        assert cache.get(BASE.cache_key("m")) is None
        with pytest.raises(ConfigError, match="mode='read-write'"):
            cache.put("k", "{}", _response())
        with pytest.raises(ConfigError):
            cache.clear()
        cache.close()
    assert not path.exists()


@pytest.mark.parametrize("mode", ["read-write", "read-only"])
def test_a_file_that_is_not_a_cache_is_refused(tmp_path: Path, mode: CacheMode) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some notes\n" * 100)
    with pytest.raises(DataError, match="cannot be used as a response cache") as info:
        Cache(path, mode=mode)
    assert info.value.path == str(path)


def test_unknown_mode_and_newer_layout_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown cache mode"):
        Cache(tmp_path / "c.sqlite", mode="write-only")  # type: ignore[arg-type]
    path = tmp_path / "future.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(ConfigError, match="layout version 99"):
        Cache(path)


# --- CachedLLM modes ---------------------------------------------------------------------


def _fill(path: Path, request: Request, text: str) -> None:
    with Cache(path) as cache:
        _put(cache, request, text, model="scripted")


def test_read_write_calls_once_then_hits(tmp_path: Path) -> None:
    inner = ScriptedLLM(["4"])
    with Cache(tmp_path / "c.sqlite") as cache:
        llm = CachedLLM(inner, cache)
        first = asyncio.run(llm.complete(BASE))
        second = asyncio.run(llm.complete(BASE))
        assert (first.text, first.cached) == ("4", False)
        assert (second.text, second.cached, second.latency_s) == ("4", True, 0.0)
        assert second.usage == first.usage
        assert len(inner.requests) == 1
        assert cache.stats().writes == 1
    # A new process (here: a new Cache on the same file) hits too.
    with Cache(tmp_path / "c.sqlite") as cache:
        assert asyncio.run(CachedLLM(ScriptedLLM([]), cache).complete(BASE)).cached


def test_read_only_hits_but_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _fill(path, BASE, "stored")
    other = Request.chat("not cached")
    inner = ScriptedLLM(["fresh", "fresh again"])
    with Cache(path, mode="read-only") as cache:
        llm = CachedLLM(inner, cache)
        assert asyncio.run(llm.complete(BASE)).text == "stored"
        assert asyncio.run(llm.complete(other)).text == "fresh"
        assert asyncio.run(llm.complete(other)).text == "fresh again"
        assert cache.stats().entries == 1 and cache.stats().writes == 0


def test_replay_only_raises_on_a_miss_without_calling_the_model(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _fill(path, BASE, "stored")
    inner = ScriptedLLM(["never"])
    with Cache(path, mode="replay-only") as cache:
        llm = CachedLLM(inner, cache)
        assert asyncio.run(llm.complete(BASE)).text == "stored"
        miss = Request.chat("not cached")
        with pytest.raises(CacheMissError) as info:
            asyncio.run(llm.complete(miss))
        assert info.value.key == miss.cache_key("scripted")
        assert "replay-only" in str(info.value)
    assert inner.requests == []


def test_replay_only_on_a_missing_file_misses_everything(tmp_path: Path) -> None:
    llm = CachedLLM(ScriptedLLM([]), Cache(tmp_path / "none.sqlite", mode="replay-only"))
    with pytest.raises(CacheMissError):
        asyncio.run(llm.complete(BASE))


def test_off_passes_everything_through(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    inner = ScriptedLLM(["a", "b"])
    llm = CachedLLM(inner, Cache(path, mode="off"))
    assert [asyncio.run(llm.complete(BASE)).text for _ in range(2)] == ["a", "b"]
    assert not path.exists()
    assert llm.model == "scripted"


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_identical_requests_make_one_call(tmp_path: Path) -> None:
    inner = ScriptedLLM(lambda r: r.messages[-1].content.upper(), delay=0.05)
    other = Request.chat("something else")

    async def run(llm: CachedLLM) -> list[Response]:
        return await asyncio.gather(*[llm.complete(BASE) for _ in range(10)], llm.complete(other))

    with Cache(tmp_path / "c.sqlite") as cache:
        responses = asyncio.run(run(CachedLLM(inner, cache)))
        assert len(inner.requests) == 2  # one per distinct request
        assert {r.text for r in responses[:10]} == {"WHAT IS 2+2?"}
        assert [r.cached for r in responses[:10]].count(False) == 1
        assert responses[10].text == "SOMETHING ELSE"
        assert cache.stats().writes == 2


def test_a_shared_failure_reaches_every_waiter_and_is_not_stored(tmp_path: Path) -> None:
    inner = ScriptedLLM([LLMHTTPError(503, "busy")], delay=0.02)

    async def run(llm: CachedLLM) -> list[Response | BaseException]:
        return await asyncio.gather(*[llm.complete(BASE) for _ in range(3)], return_exceptions=True)

    with Cache(tmp_path / "c.sqlite") as cache:
        results = asyncio.run(run(CachedLLM(inner, cache)))
        assert all(isinstance(r, LLMHTTPError) for r in results)
        assert len(inner.requests) == 1
        assert cache.stats().entries == 0


def test_a_cancelled_waiter_does_not_cancel_the_shared_call(tmp_path: Path) -> None:
    inner = ScriptedLLM(["done"], delay=0.05)

    async def run(llm: CachedLLM) -> Response:
        first = asyncio.ensure_future(llm.complete(BASE))
        second = asyncio.ensure_future(llm.complete(BASE))
        await asyncio.sleep(0.01)
        first.cancel()
        return await second

    with Cache(tmp_path / "c.sqlite") as cache:
        assert asyncio.run(run(CachedLLM(inner, cache))).text == "done"
        assert cache.stats().entries == 1


def _write_rows(path: str, start: int, count: int, barrier: Any) -> None:
    # Runs in a child process. The barrier lines the children up so that they really do
    # create the file, switch it to WAL and write rows at the same time.
    barrier.wait(timeout=60)
    cache = Cache(path)
    for i in range(start, start + count):
        request = Request.chat(f"question {i}")
        cache.put(
            request.cache_key("m"),
            canonical_json(request.key_fields("m")),
            Response(text=f"answer {i}", model="m"),
        )
    cache.close()


def test_several_processes_write_one_file_without_losing_rows(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"  # created by the racing children themselves
    workers, per_worker, overlap = 4, 200, 50
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that has threads
    barrier = ctx.Barrier(workers)
    starts = [w * (per_worker - overlap) for w in range(workers)]
    procs = [
        ctx.Process(target=_write_rows, args=(str(path), start, per_worker, barrier))
        for start in starts
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=60)
    assert [proc.exitcode for proc in procs] == [0] * workers
    expected = {i for s in starts for i in range(s, s + per_worker)}
    with Cache(path, mode="read-only") as cache:
        assert cache.stats().entries == len(expected)
        for i in expected:
            hit = cache.get(Request.chat(f"question {i}").cache_key("m"))
            assert hit is not None and hit.text == f"answer {i}"
