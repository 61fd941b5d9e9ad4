"""A content-addressed response cache on SQLite, and `CachedLLM`, the wrapper that uses it.

The key of a response is `Request.cache_key(model, endpoint=...)`: the sha256 of the
canonical JSON of everything that can change the reply (model, messages, every sampling
parameter, the sample index at temperature > 0, and the server's base URL for a client that
talks to one; `semgrad.llm.types` says why the embedded model's keys carry no endpoint). It
is the same in every process and on every machine, so a cache file filled by one run serves
the next, and a run can be replayed offline from it. A `namespace` replaces the endpoint:
clients of several servers given one namespace share their entries (same model name and
request), on purpose.

The file is in WAL mode with a busy timeout, so several processes (parallel evaluations, a
Ray worker per core) can read and write one cache at once. What is stored is the request's
key fields and the response: no API key, no headers, no node or phase tags.

Modes:
    read-write   look up, call the model on a miss, store the answer (the default)
    read-only    look up, call the model on a miss, store nothing
    replay-only  look up, and raise CacheMissError on a miss: never calls a model
    off          no lookups, no writes: every request goes to the model
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Literal, get_args

from semgrad.errors import CacheMissError, ConfigError, DataError
from semgrad.llm.types import (
    LLM,
    Request,
    Response,
    Usage,
    Wrapper,
    canonical_json,
    endpoint_of,
)
from semgrad.text import shorten

__all__ = ["Cache", "CacheMode", "CacheStats", "CachedLLM"]

CacheMode = Literal["read-write", "read-only", "replay-only", "off"]
CACHE_MODES: tuple[CacheMode, ...] = get_args(CacheMode)

# Bumped when the table layout changes; an older file is refused rather than misread.
_SCHEMA_VERSION = 1
# How long a writer waits for another process's write lock before failing. Writes are
# single-row transactions, so even many processes rarely hold each other up for long.
_BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key               TEXT PRIMARY KEY,
    model             TEXT NOT NULL,
    request_json      TEXT NOT NULL,
    text              TEXT NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    finish_reason     TEXT NOT NULL,
    created_at        REAL NOT NULL
)
"""


@dataclass(frozen=True)
class CacheStats:
    """The cache file's size, and what this process did with it since it was opened."""

    path: Path
    entries: int
    size_bytes: int
    hits: int
    misses: int
    writes: int


class Cache:
    """One SQLite file of responses keyed by `Request.cache_key(model)`.

    Thread-safe: one connection behind a lock. The calls are single-row reads and writes,
    fast enough to make from the event loop directly.

    In the read-only and replay-only modes a missing file is not created: it is an empty
    cache. In mode off the file is not touched at all.
    """

    def __init__(self, path: Path | str, mode: CacheMode = "read-write") -> None:
        if mode not in CACHE_MODES:
            raise ConfigError(
                f"unknown cache mode {mode!r}; expected one of {', '.join(CACHE_MODES)}.",
                key="cache.mode",
            )
        self._path = Path(path)
        self._mode: CacheMode = mode
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0
        self._writes = 0
        self._conn: sqlite3.Connection | None = None
        if mode == "read-write":
            try:
                self._path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DataError(
                    f"the folder of the response cache {shorten(str(self._path), 300)} cannot "
                    f"be made ({exc.strerror or exc}). Point the cache at a file path in a "
                    f"writable directory.",
                    path=str(self._path),
                ) from None
            self._conn = self._connect(create=True)
        elif mode in ("read-only", "replay-only") and self._path.exists():
            self._conn = self._connect(create=False)

    @property
    def path(self) -> Path:
        return self._path

    @property
    def mode(self) -> CacheMode:
        return self._mode

    @property
    def writable(self) -> bool:
        return self._mode == "read-write"

    def __repr__(self) -> str:
        return f"Cache({str(self._path)!r}, mode={self._mode!r})"

    def get(self, key: str) -> Response | None:
        """The stored response for `key` (marked `cached=True`), or None."""
        with self._lock:
            row = None
            if self._conn is not None:
                row = self._conn.execute(
                    "SELECT model, text, prompt_tokens, completion_tokens, finish_reason "
                    "FROM responses WHERE key = ?",
                    (key,),
                ).fetchone()
            if row is None:
                self._misses += 1
                return None
            self._hits += 1
        model, text, prompt_tokens, completion_tokens, finish_reason = row
        # A row written before replies were capped may be longer: `Response` cuts it.
        return Response(
            text=text,
            usage=Usage(prompt_tokens, completion_tokens),
            model=model,
            finish_reason=finish_reason,
            cached=True,
            latency_s=0.0,
        )

    def put(self, key: str, fields_json: str, response: Response) -> bool:
        """Store `response` under `key`; `fields_json` is the request's canonical key fields.

        The first answer stored for a key wins (a concurrent writer's equal request is
        ignored). Returns True when this call added the row.
        """
        conn = self._writable_connection("put")
        with self._lock:
            # An explicit transaction: the row is all there or not there, whatever the
            # other processes writing the same file are doing.
            conn.execute("BEGIN IMMEDIATE")
            try:
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO responses (key, model, request_json, text, "
                    "prompt_tokens, completion_tokens, finish_reason, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        key,
                        response.model,
                        fields_json,
                        response.text,
                        response.usage.prompt_tokens,
                        response.usage.completion_tokens,
                        response.finish_reason,
                        time.time(),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            added = cursor.rowcount == 1
            self._writes += added
        return added

    def stats(self) -> CacheStats:
        with self._lock:
            entries = 0
            if self._conn is not None:
                (entries,) = self._conn.execute("SELECT COUNT(*) FROM responses").fetchone()
            hits, misses, writes = self._hits, self._misses, self._writes
        # The WAL holds recent writes not yet folded into the main file: both are the cache.
        size = sum(p.stat().st_size for p in (self._path, _wal_path(self._path)) if p.exists())
        return CacheStats(self._path, entries, size, hits, misses, writes)

    def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        conn = self._writable_connection("clear")
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                deleted = conn.execute("DELETE FROM responses").rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return deleted

    def close(self) -> None:
        """Close the file. Safe to call twice; a closed cache is empty and not writable."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Cache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _writable_connection(self, action: str) -> sqlite3.Connection:
        if not self.writable:
            raise ConfigError(
                f"cannot {action} the cache {self._path}: it was opened in mode "
                f"{self._mode!r}, which never writes. Open it with mode='read-write'.",
                key="cache.mode",
            )
        if self._conn is None:
            raise ConfigError(f"cannot {action} the cache {self._path}: it was closed.")
        return self._conn

    def _connect(self, *, create: bool) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; put() and clear() open their own.
        try:
            conn = sqlite3.connect(
                self._path,
                timeout=_BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as exc:  # a directory, a path in a missing or read-only folder
            raise DataError(
                f"{shorten(str(self._path), 300)} cannot be opened as a response cache "
                f"({exc}). Point the cache at a file path in a writable directory.",
                path=str(self._path),
            ) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            if create:
                _retry_locked(lambda: _initialise(conn))
            _check_schema(conn, self._path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise  # contention that outlasted the busy timeout, not a bad file
            raise DataError(
                f"{self._path} cannot be used as a response cache ({exc}). Point the cache "
                f"at another path, or delete the file to start an empty cache.",
                path=str(self._path),
            ) from exc
        except BaseException:
            conn.close()
            raise
        return conn


def _initialise(conn: sqlite3.Connection) -> None:
    # WAL lets readers run alongside one writer and keeps writers from blocking readers;
    # the setting is stored in the file, so read-only openers inherit it.
    conn.execute("PRAGMA journal_mode = WAL")
    # Durable enough for a cache (a power cut may lose the last writes, never corrupt).
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SCHEMA)
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version == 0:
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _check_schema(conn: sqlite3.Connection, path: Path) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version not in (0, _SCHEMA_VERSION):
        raise ConfigError(
            f"the cache file {path} has layout version {version}, and this semgrad reads "
            f"version {_SCHEMA_VERSION}. Use another cache path, or delete the file to "
            f"start an empty cache.",
            key="cache.path",
        )


def _retry_locked(action: Callable[[], None]) -> None:
    """Run `action`, retrying while another process holds the lock switching to WAL.

    Changing the journal mode can report "database is locked" without waiting for the busy
    timeout when several processes open a new file at the same moment.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            action()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _wal_path(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


class CachedLLM(Wrapper):
    """An `LLM` that answers from `cache` when it can, and otherwise asks `inner`.

    A hit comes back with `cached=True` and `latency_s=0`. Concurrent identical requests
    in one process make a single inner call ("single flight"): the first caller's call is
    shared, and the others get its answer marked `cached=True`, since nothing was spent
    for them. A request that joins another's call still counts as a miss in `stats()`.

    Keys include the endpoint of the client underneath (its base URL), or `namespace` in
    its place when given: the same namespace on clients of different servers shares their
    entries. The embedded model has no endpoint, and no namespace applies to it.
    """

    def __init__(self, inner: LLM, cache: Cache, *, namespace: str | None = None) -> None:
        super().__init__(inner)
        self._cache = cache
        self._namespace = namespace or None
        self._in_flight: dict[str, asyncio.Task[Response]] = {}

    @property
    def namespace(self) -> str | None:
        return self._namespace

    def key_fields(self, request: Request) -> dict[str, object]:
        """What this layer keys `request` by (the model, endpoint or namespace underneath)."""
        return request.key_fields(
            self._inner.model, endpoint=endpoint_of(self._inner), namespace=self._namespace
        )

    @property
    def cache(self) -> Cache:
        return self._cache

    def __repr__(self) -> str:
        return f"CachedLLM({self._inner!r}, {self._cache!r})"

    async def complete(self, request: Request) -> Response:
        if self._cache.mode == "off":
            return await self._inner.complete(request)
        key = request.cache_key(
            self._inner.model, endpoint=endpoint_of(self._inner), namespace=self._namespace
        )
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        if self._cache.mode == "replay-only":
            raise CacheMissError(key)
        flight = self._in_flight.get(key)
        if flight is not None:
            # shield: one waiter being cancelled must not cancel the call the others share.
            response = await asyncio.shield(flight)
            return replace(response, cached=True, latency_s=0.0)
        flight = asyncio.ensure_future(self._fetch(key, request))
        self._in_flight[key] = flight
        # Mark a failure as seen even if every caller was cancelled before it came.
        flight.add_done_callback(_consume_exception)
        return await asyncio.shield(flight)

    async def _fetch(self, key: str, request: Request) -> Response:
        try:
            response = await self._inner.complete(request)
            if self._cache.writable:
                fields = canonical_json(self.key_fields(request))
                self._cache.put(key, fields, response)
            return response
        finally:
            del self._in_flight[key]


def _consume_exception(task: asyncio.Task[Response]) -> None:
    if not task.cancelled():
        task.exception()
