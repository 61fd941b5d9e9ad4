"""Request logs: every model request a run made and the reply it got, for replay.

`RecordingLLM` is a wrapper that sits outside the cache (so it sees cache hits too) and
appends one `LogEntry` per request to a `RequestLog`. A log is written as compressed JSON
lines (`.jsonl.gz`): the request's key fields (model, messages, every sampling parameter),
its cache key, the reply's text, token counts and finish reason, and whether the cache
served it. No API key, header, URL or path of the machine is in it: the key fields are
what the cache stores already.

`RequestLog.fill_cache(cache)` puts every logged reply into a `Cache`, so the run that
made the log can be repeated in ``replay-only`` mode with no model: the benchmarks commit
one log per cell and `benchmarks/make_results.py --replay` re-runs the cells from them.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from semgrad.atomic import atomic_open
from semgrad.errors import DataError
from semgrad.llm.cache import Cache
from semgrad.llm.types import LLM, Request, Response, Usage, Wrapper, canonical_json

__all__ = ["LogEntry", "NoModel", "RecordingLLM", "RequestLog"]


@dataclass(frozen=True)
class LogEntry:
    """One request and its reply."""

    key: str
    fields: dict[str, Any]
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    cached: bool
    node: str = ""
    phase: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "request": self.fields,
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "cached": self.cached,
            "node": self.node,
            "phase": self.phase,
        }

    @classmethod
    def from_dict(cls, row: dict[str, Any]) -> LogEntry:
        return cls(
            key=str(row["key"]),
            fields=dict(row["request"]),
            text=str(row["text"]),
            prompt_tokens=int(row.get("prompt_tokens", 0)),
            completion_tokens=int(row.get("completion_tokens", 0)),
            finish_reason=str(row.get("finish_reason", "stop")),
            cached=bool(row.get("cached", False)),
            node=str(row.get("node", "")),
            phase=str(row.get("phase", "")),
        )

    def response(self) -> Response:
        return Response(
            text=self.text,
            usage=Usage(self.prompt_tokens, self.completion_tokens),
            model=str(self.fields.get("model", "")),
            finish_reason=self.finish_reason,
        )


class RequestLog:
    """An ordered list of `LogEntry`s, read from and written to ``.jsonl.gz`` files."""

    def __init__(self, entries: Iterable[LogEntry] = ()) -> None:
        self.entries: list[LogEntry] = list(entries)

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[LogEntry]:
        return iter(self.entries)

    def add(self, entry: LogEntry) -> None:
        self.entries.append(entry)

    def write(self, path: str | Path) -> None:
        """Write the log atomically; `mtime=0` keeps the bytes the same for the same log."""
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
            for entry in self.entries:
                line = json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True)
                gz.write((line + "\n").encode())
        with atomic_open(Path(path), "wb") as f:
            f.write(buf.getvalue())

    @classmethod
    def read(cls, path: str | Path) -> RequestLog:
        p = Path(path)
        try:
            with gzip.open(p, "rt", encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
            return cls(LogEntry.from_dict(row) for row in rows)
        except FileNotFoundError:
            raise DataError(f"no request log at {p}", str(p)) from None
        except (OSError, EOFError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{p} is not a request log (.jsonl.gz of requests and replies): {exc}", str(p)
            ) from None

    def fill_cache(self, cache: Cache) -> int:
        """Put every logged reply into `cache` (first reply per key wins); returns how many
        entries were new to it."""
        added = 0
        for entry in self.entries:
            if cache.get(entry.key) is None and cache.put(
                entry.key, canonical_json(entry.fields), entry.response()
            ):
                added += 1
        return added

    def replay_cache(self, path: Path) -> Cache:
        """A cache at `path` holding the logged replies, opened ``replay-only``: it answers
        exactly the logged requests, and any other is a `CacheMissError` (a replay from the
        log alone). The caller closes it."""
        cache = Cache(path)
        try:
            self.fill_cache(cache)
        finally:
            cache.close()
        return Cache(path, mode="replay-only")

    def requests_by(self, field: str) -> dict[str, int]:
        """Counts of requests by `field` ("phase", "node" or a request field like "model")."""
        out: dict[str, int] = {}
        for entry in self.entries:
            value = getattr(entry, field, None) if field in ("phase", "node") else None
            if value is None:
                value = entry.fields.get(field, "")
            out[str(value)] = out.get(str(value), 0) + 1
        return out


class RecordingLLM(Wrapper):
    """Appends every request that reaches it, and its reply, to `log`. Put it outside the
    cache to log cache hits too (a replay needs every reply the run saw)."""

    def __init__(self, inner: LLM, log: RequestLog) -> None:
        super().__init__(inner)
        self.log = log

    async def complete(self, request: Request) -> Response:
        response = await self._inner.complete(request)
        model = self._inner.model
        self.log.add(
            LogEntry(
                key=request.cache_key(model),
                fields=request.key_fields(model),
                text=response.text,
                prompt_tokens=response.usage.prompt_tokens,
                completion_tokens=response.usage.completion_tokens,
                finish_reason=response.finish_reason,
                cached=response.cached,
                node=request.node,
                phase=request.phase,
            )
        )
        return response


class NoModel:
    """A model that is never there: the client behind a replay-only cache (a replay from a
    `RequestLog`), which answers every request the log holds; one it lacks fails here."""

    def __init__(self, model: str) -> None:
        self.model = model

    async def complete(self, request: Request) -> Response:
        raise RuntimeError(f"a replay must never call a model ({self.model}, node {request.node})")

    async def aclose(self) -> None:
        return None
