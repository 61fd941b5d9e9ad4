"""`LocalLLM`: the embedded model, run in this process by llama.cpp (through xllamacpp).

llama.cpp's server keeps `n_parallel` slots, each with its own share of the context
(`n_ctx_per_slot` tokens), and decodes all busy slots together in one batch. A blocking
`handle_chat_completions` call occupies one slot; calls made from several threads at once
are batched. So `complete()` hands each request to a worker thread of a pool with exactly
`n_parallel` threads: up to `n_parallel` requests share the batch, the rest wait in the
pool's queue (not in a slot's queue inside llama.cpp, where they could not be cancelled).

The model is loaded on the first `complete()`, never at construction, so a run whose
requests are all answered by the cache never spends the seconds (and the memory) a load
costs. `model` needs no load either: it is the registry name, or for a path
`gguf:<file name>:<sha256[:12]>`, so cache keys follow the weights and not the path.

Determinism, measured on 2 CPU threads with qwen2.5-coder-0.5b (Q4), xllamacpp
2026.10.11549, six prompts, 48-64 reply tokens, temperature 0:

- one request at a time, prompt cache off: every reply came out byte-identical on each
  of three repeats, in any order (two runs);
- one request at a time, prompt cache on (llama.cpp's default): 2 of 6 repeats differed
  from the first reply (two runs). Presumably the repeat finds its prompt in the slot's
  cache and recomputes only its end, and the different batch shape changes the rounding;
- batched with three other prompts (n_parallel=4): 3 to 5 of 6 replies differed from
  the same prompt run alone, in five such comparisons with the prompt cache on or off;
  one parted from its solo reply at the tenth character. Four copies of one prompt in
  one batch agreed with each other and with the solo reply in one run, and not in
  another run made under CPU contention (which changes which requests share a step).

Where two tokens are nearly tied, float rounding decides, and batching and prompt reuse
change the rounding. So temperature 0 here is greedy but not bit-reproducible once
requests are batched or prompts are cached. Reproducible runs come from semgrad's cache,
which stores the first reply under a key of the request; `n_parallel=1,
prompt_cache=False` gives exact repeats without it, at the cost of batching. That is the
default (`semgrad.llm.config`): scoring the same graph twice gives the same per-item
results, so a gate compares like with like.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from semgrad.errors import ConfigError, LLMError, MalformedResponseError, ModelError
from semgrad.llm.config import (
    DEFAULT_CTX_PER_SLOT,
    DEFAULT_FORWARD_MODEL,
    DEFAULT_PROMPT_CACHE,
    DEFAULT_REPLICAS,
    DEFAULT_SLOTS,
)
from semgrad.llm.models import (
    REGISTRY,
    ModelSpec,
    get_spec,
    is_path_spec,
    resolve_model,
)
from semgrad.llm.types import Request, Response, Usage

__all__ = [
    "LocalLLM",
    "parse_reply",
    "request_body",
    "server_params",
    "start_server",
    "validate_slots",
]

# llama.cpp's verbosity is a level threshold: 0 prints nothing, 1 errors, 2 warnings,
# 3 (its default) information such as per-request timings on every call.
_VERBOSITY_QUIET = 1
_VERBOSITY_VERBOSE = 3


class LocalLLM:
    """An `LLM` that runs a GGUF model on this machine's CPU.

    `model` is a registry name (see `semgrad.llm.models`) or a path to a .gguf file.
    `n_parallel` requests are decoded together; each gets `n_ctx_per_slot` tokens of
    context (prompt plus reply). `n_threads` defaults to the CPUs this process may use.
    `prompt_cache` lets llama.cpp reuse the cached prefix of an earlier prompt in the same
    slot: faster for prompts that share a long start, but it makes temperature-0 replies
    vary slightly (see the module doc); `n_parallel=1, prompt_cache=False` (the default)
    gives replies that repeat exactly, at the cost of batching. `replicas` independent
    copies of the model (default 2, never more than the threads) run side by side, each
    with `n_parallel` slots and an equal share of the threads: with one slot each, every
    reply is the one a single copy gives, and the copies win back the throughput batching
    gave (benchmarks/README.md, "Deterministic scoring").
    `verbose` lets llama.cpp log to stderr (load details, timings); otherwise it prints
    errors only. Call `close()` (or use `with`) to free the model's memory.
    """

    def __init__(
        self,
        model: str = DEFAULT_FORWARD_MODEL,
        *,
        n_parallel: int = DEFAULT_SLOTS,
        n_ctx_per_slot: int = DEFAULT_CTX_PER_SLOT,
        n_threads: int | None = None,
        prompt_cache: bool = DEFAULT_PROMPT_CACHE,
        replicas: int = DEFAULT_REPLICAS,
        verbose: bool = False,
        registry: Mapping[str, ModelSpec] | None = None,
    ) -> None:
        threads = validate_slots(n_parallel, n_ctx_per_slot, n_threads)
        if replicas < 1:
            raise ConfigError(f"must be at least 1, got {replicas}", key="replicas")
        self._registry = REGISTRY if registry is None else registry
        self._spec = model
        # A registry name is its own id; a path's id needs its hash, computed on first use.
        self._model_id: str | None = None
        if model in self._registry:
            self._model_id = model
        elif not is_path_spec(model):
            get_spec(model, registry=self._registry)  # raises: unknown name, lists known ones
        self.n_parallel = n_parallel
        self.n_ctx_per_slot = n_ctx_per_slot
        self.n_threads = threads
        self.prompt_cache = prompt_cache
        # Independent copies of the model, each with its own slots and a share of the
        # threads: requests run side by side without sharing a batch, so each reply is what
        # one copy alone gives (deterministic with one slot each), unlike batched slots.
        # Never more copies than threads: a copy needs at least one of its own.
        self.replicas = min(replicas, threads)
        self.verbose = verbose
        # Threading locks, not asyncio ones: worker threads take them, and an asyncio lock
        # would also tie the object to one event loop. Three, so that the event loop never
        # waits behind the seconds a load or a hash takes: `_state_lock` (pool, closed) is
        # only ever held for a moment.
        self._state_lock = threading.Lock()
        self._id_lock = threading.Lock()
        self._load_lock = threading.Lock()
        self._server: Any = None  # the first copy (all of them in `_servers`)
        self._servers: list[Any] = []
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False

    @property
    def model(self) -> str:
        if self._model_id is None:
            with self._id_lock:
                if self._model_id is None:
                    self._model_id, _ = resolve_model(self._spec, registry=self._registry)
        return self._model_id

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory (it is loaded by the first `complete()`)."""
        return self._server is not None

    async def complete(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool(), self._complete_blocking, request)

    def close(self) -> None:
        """Wait for requests in flight, then free the model. The LLM cannot be used after."""
        with self._state_lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
        with self._load_lock:
            # Dropping the last reference stops llama.cpp's loop and frees the weights.
            self._server = None
            self._servers = []
            self._idle = queue.SimpleQueue()

    async def aclose(self) -> None:
        """`close()` for async code (the CLI closes every client this way); it waits in a
        worker thread, so the event loop keeps running while requests in flight finish."""
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> LocalLLM:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __enter__(self) -> LocalLLM:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "loaded" if self.loaded else "not loaded"
        return f"LocalLLM({self._spec!r}, n_parallel={self.n_parallel}, {state})"

    def _pool(self) -> ThreadPoolExecutor:
        with self._state_lock:
            if self._closed:
                raise LLMError(f"{self!r} was closed; create a new LocalLLM to use the model.")
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=self.n_parallel * self.replicas,
                    thread_name_prefix="semgrad-local-llm",
                )
            return self._executor

    # --- in the worker threads ------------------------------------------------------------

    def _complete_blocking(self, request: Request) -> Response:
        self._load()
        # A copy with a free slot: each copy is handed out `n_parallel` times at most.
        server = self._idle.get()
        start = time.perf_counter()
        try:
            raw = server.handle_chat_completions(
                request_body(request, prompt_cache=self.prompt_cache)
            )
        except (ValueError, RuntimeError) as e:
            # xllamacpp raises for requests it cannot even parse; a well-formed Request
            # should never get here, so say so rather than guess.
            raise MalformedResponseError(f"the embedded model rejected the request: {e}") from e
        finally:
            self._idle.put(server)
        latency = time.perf_counter() - start
        return parse_reply(
            raw, model=self.model, latency_s=latency, n_ctx_per_slot=self.n_ctx_per_slot
        )

    def _load(self) -> Any:
        with self._load_lock:
            if self._server is not None:
                return self._server
            if self._closed:
                raise LLMError(f"{self!r} was closed; create a new LocalLLM to use the model.")
            model_id, path = resolve_model(self._spec, registry=self._registry)
            self._model_id = model_id
            threads = max(1, self.n_threads // self.replicas)
            for _ in range(self.replicas):
                server = start_server(
                    path,
                    server_params(
                        path,
                        alias=model_id,
                        n_parallel=self.n_parallel,
                        n_ctx_per_slot=self.n_ctx_per_slot,
                        n_threads=threads,
                        verbose=self.verbose,
                    ),
                )
                self._servers.append(server)
                for _slot in range(self.n_parallel):
                    self._idle.put(server)
            self._server = self._servers[0]
            return self._server


def server_params(
    path: Path,
    *,
    alias: str,
    n_parallel: int,
    n_ctx_per_slot: int,
    n_threads: int,
    verbose: bool,
    host: str = "127.0.0.1",
    port: int = 0,
    api_keys: Sequence[str] | None = None,
) -> Any:
    """llama.cpp server parameters for one model file (an `xllamacpp.CommonParams`).

    llama.cpp's server always listens on HTTP too. In-process use has no need for that, so
    by default it gets a random loopback port and an API key nobody knows, which keeps
    other processes on the machine out. `serve()` passes its own host, port and keys
    (an empty list: no key required).
    """
    import xllamacpp  # deferred: only code that runs a model pays for loading llama.cpp

    p = xllamacpp.CommonParams()
    p.model.path = str(path)
    p.model_alias = {alias}  # what /v1/models lists and replies name as their model
    p.n_parallel = n_parallel
    p.n_ctx = n_parallel * n_ctx_per_slot  # llama.cpp splits n_ctx evenly over the slots
    p.cpuparams.n_threads = n_threads
    p.cpuparams_batch.n_threads = n_threads
    p.verbosity = _VERBOSITY_VERBOSE if verbose else _VERBOSITY_QUIET
    p.hostnames = [host]
    p.port = port
    p.api_keys = list(api_keys) if api_keys is not None else [secrets.token_urlsafe(32)]
    p.ui = False  # no web chat page
    p.n_threads_http = 1 if port == 0 else -1  # -1: llama.cpp's default pool
    return p


def validate_slots(n_parallel: int, n_ctx_per_slot: int, n_threads: int | None) -> int:
    """Check the server's shape; return the thread count (default: the CPUs we may use)."""
    if n_parallel < 1:
        raise ConfigError(f"must be at least 1, got {n_parallel}", key="n_parallel")
    if n_ctx_per_slot < 64:
        raise ConfigError(f"must be at least 64 tokens, got {n_ctx_per_slot}", key="n_ctx_per_slot")
    if n_threads is not None and n_threads < 1:
        raise ConfigError(f"must be at least 1 (or None), got {n_threads}", key="n_threads")
    return n_threads or _available_cpus()


def start_server(path: Path, params: Any) -> Any:
    """Load the model and start llama.cpp's server loop (an `xllamacpp.Server`)."""
    import xllamacpp

    try:
        return xllamacpp.Server(params)
    except RuntimeError as e:
        raise ModelError(
            f"llama.cpp could not start on {path}: {e} The file may not be a model llama.cpp "
            f"supports, may be truncated, or may not fit in memory; the port may be taken "
            f"when serving. Run with verbose=True to see llama.cpp's own log."
        ) from e


def request_body(request: Request, *, prompt_cache: bool = DEFAULT_PROMPT_CACHE) -> dict[str, Any]:
    """The OpenAI-style chat completion body llama.cpp receives for a `Request`."""
    body: dict[str, Any] = {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "top_p": request.top_p,
        "seed": request.sampling_seed,
        # llama.cpp's own field: reuse a slot's cached prompt prefix (see the module doc).
        "cache_prompt": prompt_cache,
    }
    if request.stop:  # as OpenAICompatible does: no stop list and an empty one are the same
        body["stop"] = list(request.stop)
    return body


def parse_reply(
    raw: object, *, model: str, latency_s: float = 0.0, n_ctx_per_slot: int | None = None
) -> Response:
    """Map llama.cpp's reply (a dict shaped like an OpenAI chat completion) to a `Response`."""
    if not isinstance(raw, dict):
        raise MalformedResponseError(
            "the embedded model returned something that is not a chat completion", raw=repr(raw)
        )
    error = raw.get("error")
    if error is not None:
        if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
            limit = f" (now {n_ctx_per_slot})" if n_ctx_per_slot is not None else ""
            raise ConfigError(
                f"the prompt has {error.get('n_prompt_tokens', '?')} tokens but each slot of "
                f"the embedded model holds {error.get('n_ctx', '?')}. Raise n_ctx_per_slot"
                f"{limit} or shorten the prompt.",
                key="n_ctx_per_slot",
            )
        message = error.get("message", error) if isinstance(error, dict) else error
        raise MalformedResponseError(
            f"the embedded model answered with an error instead of a completion: {message}",
            raw=_dump(raw),
        )
    try:
        choice = raw["choices"][0]
        content = choice["message"].get("content") or ""
        finish_reason = choice.get("finish_reason") or "stop"
        usage = raw.get("usage") or {}
        prompt_tokens = int(usage.get("prompt_tokens", 0))
        completion_tokens = int(usage.get("completion_tokens", 0))
        cached_tokens = _cached_prompt_tokens(raw, usage, prompt_tokens)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as e:
        raise MalformedResponseError(
            f"the embedded model's reply lacks a chat completion field ({e!r})", raw=_dump(raw)
        ) from e
    if not isinstance(content, str):
        raise MalformedResponseError("the reply's message content is not text", raw=_dump(raw))
    return Response(
        text=content,
        usage=Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_prompt_tokens=cached_tokens,
        ),
        model=model,
        finish_reason=str(finish_reason),
        latency_s=latency_s,
    )


def _cached_prompt_tokens(raw: Mapping[str, Any], usage: Mapping[str, Any], prompt: int) -> int:
    """How many prompt tokens llama.cpp reused from its prompt cache: the OpenAI field
    ``usage.prompt_tokens_details.cached_tokens``, else ``timings.cache_n``; 0 when the
    reply says neither. Clamped to [0, prompt tokens]."""
    details = usage.get("prompt_tokens_details")
    found: object = details.get("cached_tokens") if isinstance(details, Mapping) else None
    if found is None:
        timings = raw.get("timings")
        found = timings.get("cache_n") if isinstance(timings, Mapping) else None
    if isinstance(found, bool) or not isinstance(found, int):
        return 0
    return max(0, min(found, prompt))


def _dump(raw: object) -> str:
    try:
        return json.dumps(raw, ensure_ascii=False, default=repr)
    except (TypeError, ValueError):
        return repr(raw)


def _available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity where the OS says)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
