"""Request logs: what a run asked and got, written compressed and replayed into a cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from semgrad.errors import CacheMissError, DataError
from semgrad.llm.cache import Cache, CachedLLM
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.record import RecordingLLM, RequestLog
from semgrad.llm.types import Request


def test_a_log_replays_every_reply_including_cache_hits(tmp_path: Path) -> None:
    model = ScriptedLLM(lambda r: f"reply to {r.messages[-1].content}")
    log = RequestLog()
    with Cache(tmp_path / "c.sqlite") as cache:
        llm = RecordingLLM(CachedLLM(model, cache), log)
        requests = [
            Request.chat("a", node="n1", phase="forward"),
            Request.chat("b"),
            Request.chat("a"),
        ]

        async def go() -> list[str]:
            return [(await llm.complete(r)).text for r in requests]

        texts = asyncio.run(go())
    assert [e.cached for e in log] == [False, False, True]
    assert log.requests_by("phase") == {"forward": 3}
    path = tmp_path / "log.jsonl.gz"
    log.write(path)
    first = path.read_bytes()
    log.write(path)
    assert path.read_bytes() == first  # the same log, the same bytes

    back = RequestLog.read(path)
    assert [e.to_dict() for e in back] == [e.to_dict() for e in log]
    with Cache(tmp_path / "replay.sqlite") as replay:
        assert back.fill_cache(replay) == 2
        offline = CachedLLM(
            ScriptedLLM(lambda r: "never called"), Cache(replay.path, mode="replay-only")
        )

        async def again() -> list[str]:
            return [(await offline.complete(r)).text for r in requests]

        assert asyncio.run(again()) == texts
        with pytest.raises(CacheMissError):
            asyncio.run(offline.complete(Request.chat("c")))

    replayed = back.replay_cache(tmp_path / "again.sqlite")  # the same, in one call
    try:
        alone = CachedLLM(ScriptedLLM(lambda r: "never called"), replayed)

        async def from_log() -> list[str]:
            return [(await alone.complete(r)).text for r in requests]

        assert asyncio.run(from_log()) == texts
        with pytest.raises(CacheMissError):
            asyncio.run(alone.complete(Request.chat("c")))
    finally:
        replayed.close()


def test_a_file_that_is_not_a_log_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="not a request log"):
        RequestLog.read(tmp_path / "bad.jsonl.gz")
    with pytest.raises(DataError, match="no request log"):
        RequestLog.read(tmp_path / "missing.jsonl.gz")
