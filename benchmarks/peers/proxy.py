"""A counting, caching, budget-enforcing OpenAI-compatible proxy for the peer comparison.

The peer libraries (TextGrad, DSPy, Trace) talk to the embedded models through this proxy,
never to `semgrad serve` directly, so that every method is measured at one place, the same
way:

    peer library ──HTTP──> proxy ──HTTP──> semgrad serve (0.5B)   forward calls
                              └─────────> semgrad serve (1.5B)   optimizer / backward calls

Base URLs carry a *run* and a *phase*: ``http://127.0.0.1:PORT/<run>/<phase>/v1``. The
proxy routes a request by its ``model`` field, and per run and phase it

* counts every request as ``n`` calls (cache hits included: the budget is the method's
  calls, whatever they cost the machine), its prompt and completion tokens, how many were
  answered from the cache, and the seconds spent waiting for the model;
* enforces the run's call budget for the phase: a request beyond it is refused with HTTP
  403 and a body saying ``semgrad-proxy: budget exhausted`` (403, because the OpenAI client,
  LiteLLM and tenacity-style retry loops retry 429 and 5xx, and a refusal must not turn
  into a retry storm);
* answers from a SQLite response cache (semgrad's own `Cache`), so a re-run costs no model
  time. The key is the canonical JSON of the request body plus the run's cache scope and,
  for sampled requests (temperature > 0), a sample index: the k-th identical sampled
  request of a run gets sample k, so repeated samples stay distinct and a re-run replays
  them in order.

``n > 1`` (DSPy's COPRO asks for several candidates in one request) is served as ``n``
upstream requests with seeds ``seed + i``, because llama.cpp's server answers one choice.

**Upstream mode** (`PeerProxy.semgrad`, what ``benchmarks/decide/run.py`` uses for a peer
cell): no HTTP servers behind it and no cache or budget of its own. Each request is turned
into a semgrad `Request` (`request_from_body`) and answered by the semgrad `LLM` the run
registered for that phase and model (`Route`), on the runner's event loop: in the decide
runner that is ``Models.llm(role, log)`` in the runner's `RequestBudget`, so the reply comes
from the same serving path and the same response cache as semgrad's own methods, is logged
in the cell's request log and is counted against the cell's budget for the role, cache hits
included. A `BudgetExceededError` becomes the same 403 refusal; after the first refusal in
a phase, every later request of that phase is refused too (a method stops when either of
its budgets is spent).

It also scores replies (``POST /_admin/score``) with the run's registered semgrad metric, so
the adapters, which run in the peers' own virtual environments without semgrad, optimize
against exactly the metric that scores the test set.

Standalone (the orchestrator `run.py` embeds it instead):

    python benchmarks/peers/proxy.py --upstream http://127.0.0.1:8081/v1 \\
        --upstream http://127.0.0.1:8082/v1 --cache /tmp/peers.sqlite --port 8090

No request or response is logged; no API key is read, stored or forwarded.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, cast

import httpx

from semgrad.errors import BudgetExceededError
from semgrad.llm.cache import Cache
from semgrad.llm.types import LLM, Message, Phase, Request, Response, Usage, canonical_json

__all__ = [
    "BUDGET_MARKER",
    "PeerProxy",
    "PhaseStats",
    "Route",
    "Scorer",
    "list_models",
    "request_from_body",
]

BUDGET_MARKER = "semgrad-proxy: budget exhausted"
# The HTTP status of a refusal: not retried by the OpenAI client (408/409/429/5xx) nor by
# LiteLLM's default retry policy.
BUDGET_STATUS = 403
# CPU decoding of a 320-token reply while other runs share the cores can take minutes.
UPSTREAM_TIMEOUT_S = 1800.0
# Request fields that never reach the model: per-client bookkeeping.
_DROPPED_FIELDS = ("n", "stream", "stream_options", "user", "metadata", "store")
# Fields semgrad's `Request` carries (upstream mode); other fields are counted as ignored.
_REQUEST_FIELDS = ("model", "messages", "temperature", "max_tokens", "top_p", "seed", "stop")
_SERVED_FIELDS = {*_REQUEST_FIELDS, *_DROPPED_FIELDS, "max_completion_tokens"}
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_RUN_NAME = re.compile(r"^[A-Za-z0-9._:=+-]{1,200}$")

# (example id, reply text) -> (value in [0, 1], feedback, extracted prediction)
Scorer = Callable[[str, str], tuple[float, str, str]]


@dataclass
class PhaseStats:
    """What one run did in one phase. `calls` counts cache hits too."""

    calls: int = 0
    cache_hits: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    refused: int = 0  # requests refused because the budget was spent (not calls)
    upstream_errors: int = 0  # calls the model server answered with an error
    upstream_seconds: float = 0.0  # time waiting for the model on cache misses
    calls_by_model: dict[str, int] = field(default_factory=dict)
    tokens_by_model: dict[str, int] = field(default_factory=dict)
    # Summed request latencies on cache misses: concurrent requests overlap, so this can
    # exceed the wall time; per call it tells what a model costs on this machine.
    seconds_by_model: dict[str, float] = field(default_factory=dict)
    # Upstream mode: request fields semgrad's `Request` has no place for, and how often
    # they were sent (e.g. OptoPrime's response_format); they do not reach the model.
    ignored_fields: dict[str, int] = field(default_factory=dict)

    def count_reply(self, model: str, usage: Usage, seconds: float, hit: bool) -> None:
        """Add one reply of `model` (the caller holds the proxy's lock)."""
        self.cache_hits += int(hit)
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.upstream_seconds += seconds
        self.tokens_by_model[model] = self.tokens_by_model.get(model, 0) + usage.total_tokens
        self.seconds_by_model[model] = self.seconds_by_model.get(model, 0.0) + seconds


def _choice(index: int, response: Response) -> dict[str, Any]:
    """One OpenAI-style choice holding `response`."""
    return {
        "index": index,
        "message": {"role": "assistant", "content": response.text},
        "finish_reason": response.finish_reason,
    }


def _completion(
    id_: str, model: str, choices: list[dict[str, Any]], usage: Usage
) -> dict[str, Any]:
    """An OpenAI-style chat completion holding `choices`."""
    return {
        "id": id_,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        },
    }


@dataclass(frozen=True)
class Route:
    """Upstream mode: the semgrad `LLM` that answers one model of one phase of a run, and
    the phase tag its requests carry in semgrad's meter and request log."""

    llm: LLM
    tag: Phase = "forward"


@dataclass
class _Run:
    name: str
    cache_scope: str
    budgets: dict[str, int]
    scorer: Scorer | None
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    # base key -> next sample index, for sampled requests (temperature > 0)
    samples: dict[str, int] = field(default_factory=dict)
    # Upstream mode: phase -> model id -> Route; phase -> requests it may still make.
    routes: dict[str, dict[str, Route]] = field(default_factory=dict)
    remaining: Callable[[str], int | None] | None = None
    stopped: set[str] = field(default_factory=set)  # phases refused once for the budget

    def phase(self, name: str) -> PhaseStats:
        return self.phases.setdefault(name, PhaseStats())


class ProxyError(Exception):
    """A request the proxy answers with an HTTP error; `status` and `message` go back."""

    def __init__(self, status: int, message: str, kind: str = "proxy_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind


def list_models(base_url: str, timeout: float = 30.0) -> list[str]:
    """The model ids an OpenAI-compatible server lists at ``GET {base_url}/models``."""
    reply = httpx.get(f"{base_url.rstrip('/')}/models", timeout=timeout)
    reply.raise_for_status()
    data = reply.json().get("data") or []
    return [str(item["id"]) for item in data if isinstance(item, dict) and "id" in item]


def _temperature(body: Mapping[str, Any]) -> float:
    value = body.get("temperature")
    # An absent temperature means the server's default, which samples (OpenAI: 1).
    return 1.0 if value is None else float(value)


def _key(parts: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(parts).encode()).hexdigest()


def _content(value: Any) -> str:
    """A message's text: a string, or OpenAI's list of text parts joined."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for part in value:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise ProxyError(400, f"only text message content is served, got {part!r:.80}")
            parts.append(str(part.get("text") or ""))
        return "".join(parts)
    if value is None:
        return ""
    raise ProxyError(400, f"message content must be text, got {type(value).__name__}")


def request_from_body(
    body: Mapping[str, Any], *, tag: Phase = "forward", sample_index: int = 0
) -> Request:
    """The semgrad `Request` of an OpenAI chat completions body: the inverse of
    `semgrad.llm.openai.request_body` (messages, temperature, max_tokens, top_p, seed,
    stop). An absent temperature is OpenAI's default, 1 (sampled); an absent max_tokens
    is `Request`'s default, 512. `max_completion_tokens` (LiteLLM's newer name) counts as
    max_tokens. Raises ProxyError (400) for what a `Request` cannot say."""
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ProxyError(400, "messages must be a non-empty list")
    messages = []
    for m in raw:
        role = _ROLES.get(str(m.get("role")) if isinstance(m, dict) else "")
        if role is None:
            raise ProxyError(400, f"unsupported message {m!r:.80}: roles are system/user/assistant")
        messages.append(Message(role, _content(m.get("content"))))  # type: ignore[arg-type]
    max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 512
    stop = body.get("stop")
    stops = () if stop is None else (stop,) if isinstance(stop, str) else tuple(map(str, stop))
    top_p = body.get("top_p")
    try:
        return Request(
            messages=tuple(messages),
            temperature=_temperature(body),
            max_tokens=int(max_tokens),
            top_p=1.0 if top_p is None else float(top_p),
            seed=int(body.get("seed") or 0),
            stop=stops,
            sample_index=sample_index,
            node="peer",
            phase=tag,
        )
    except (TypeError, ValueError) as exc:
        raise ProxyError(400, f"bad request: {exc}") from None


class PeerProxy:
    """The proxy server, on loopback, in a background thread of this process.

    `upstreams` maps a model id to the base URL of the server that runs it (use
    `from_servers` to learn the ids from the servers themselves). `cache` may be None for
    no caching. Upstream mode (`semgrad`): no servers and no cache; each run registers the
    semgrad LLMs that answer it (`Route`s), called on `loop`.
    """

    def __init__(
        self,
        upstreams: Mapping[str, str],
        cache: Cache | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not upstreams and loop is None:
            raise ValueError("the proxy needs at least one upstream model server")
        self.upstreams = {model: url.rstrip("/") for model, url in upstreams.items()}
        self.cache = cache
        self._loop = loop
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}
        self._in_flight: dict[str, threading.Event] = {}
        self._client = httpx.Client(timeout=UPSTREAM_TIMEOUT_S)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_servers(
        cls, urls: Sequence[str], cache: Cache | None, *, host: str = "127.0.0.1", port: int = 0
    ) -> PeerProxy:
        upstreams: dict[str, str] = {}
        for url in urls:
            for model in list_models(url):
                upstreams[model] = url
        return cls(upstreams, cache, host=host, port=port)

    @classmethod
    def semgrad(
        cls, loop: asyncio.AbstractEventLoop, *, host: str = "127.0.0.1", port: int = 0
    ) -> PeerProxy:
        """Upstream mode: requests are answered by the semgrad LLMs each run registers
        (`register(routes=...)`), awaited on `loop`, which must keep running (the caller
        awaits the adapter in a thread, e.g. `asyncio.to_thread`). The LLMs' own cache,
        budget and log apply; the proxy has none of its own."""
        return cls({}, None, host=host, port=port, loop=loop)

    @property
    def upstream_mode(self) -> bool:
        return self._loop is not None

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> PeerProxy:
        if self._server is not None:
            return self
        server = _Server((self._host, self._port), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.shutdown()
            server.server_close()
            thread.join()
        self._server = self._thread = None
        self._client.close()

    def __enter__(self) -> PeerProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return f"http://{self._host}:{self._server.server_address[1]}"

    def base_url(self, run: str, phase: str) -> str:
        """What an OpenAI client of `run` in `phase` should use as its base URL."""
        return f"{self.url}/{run}/{phase}/v1"

    # --- runs --------------------------------------------------------------------------

    def register(
        self,
        run: str,
        *,
        budgets: Mapping[str, int] | None = None,
        scorer: Scorer | None = None,
        cache_scope: str | None = None,
        routes: Mapping[str, Mapping[str, Route]] | None = None,
        remaining: Callable[[str], int | None] | None = None,
    ) -> None:
        """Start counting for `run` (again from zero if it was registered before).

        `budgets` maps a phase to the most calls it may make; phases not named are
        unlimited. `cache_scope` (default: the run name) is part of every cache key, so
        two methods never share replies and each one's wall time is its own; a re-run of
        the same run replays its replies.

        Upstream mode: `routes` maps a phase to the model ids it serves and the `Route`
        (semgrad LLM) of each; the budgets are the LLMs' (a `BudgetExceededError` is the
        refusal), and `remaining(phase)` says how many requests a phase may still make
        (None: unlimited), for the adapters' ``/_admin/runs`` view.
        """
        if not _RUN_NAME.match(run) or run.startswith("_"):
            raise ValueError(
                f"run name {run!r} must match {_RUN_NAME.pattern} and not start with _"
            )
        if self.upstream_mode and (routes is None or budgets):
            raise ValueError("in upstream mode a run gives routes, and budgets via its LLMs")
        if routes is not None and not self.upstream_mode:
            raise ValueError("routes need upstream mode (PeerProxy.semgrad)")
        entry = _Run(run, cache_scope or run, dict(budgets or {}), scorer)
        entry.routes = {phase: dict(models) for phase, models in (routes or {}).items()}
        entry.remaining = remaining
        with self._lock:
            self._runs[run] = entry

    def stats(self, run: str) -> dict[str, Any]:
        with self._lock:
            entry = self._runs.get(run)
            if entry is None:
                raise KeyError(run)
            out: dict[str, Any] = {
                "run": run,
                "budgets": dict(entry.budgets),
                "phases": {name: asdict(stats) for name, stats in entry.phases.items()},
            }
            if entry.routes:
                out["remaining"] = {p: self._remaining(entry, p) for p in entry.routes}
            return out

    def remaining(self, run: str, phase: str) -> int | None:
        with self._lock:
            return self._remaining(self._runs[run], phase)

    @staticmethod
    def _remaining(entry: _Run, phase: str) -> int | None:
        if entry.routes:
            if phase in entry.stopped:
                return 0
            return None if entry.remaining is None else entry.remaining(phase)
        budget = entry.budgets.get(phase)
        return None if budget is None else max(0, budget - entry.phase(phase).calls)

    def models(self, run: str | None = None) -> list[str]:
        """The model ids served (to `run`, in upstream mode)."""
        if not self.upstream_mode:
            return list(self.upstreams)
        with self._lock:
            entry = self._runs.get(run or "")
            return sorted({m for r in (entry.routes if entry else {}).values() for m in r})

    def _run(self, name: str) -> _Run:
        entry = self._runs.get(name)
        if entry is None:
            known = ", ".join(sorted(self._runs)) or "none"
            raise ProxyError(404, f"unknown run {name!r}; registered runs: {known}", "not_found")
        return entry

    # --- chat completions ----------------------------------------------------------------

    def complete(self, run: str, phase: str, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one chat completions request of `run` in `phase` (raises ProxyError)."""
        if body.get("stream"):
            raise ProxyError(400, "the peers proxy does not stream; send stream=false")
        if self.upstream_mode:
            return self._complete_upstream(run, phase, body)
        model = body.get("model")
        if not isinstance(model, str) or model not in self.upstreams:
            raise ProxyError(
                404,
                f"unknown model {model!r}; this proxy serves {', '.join(self.upstreams)}",
                "model_not_found",
            )
        n = int(body.get("n") or 1)
        if n < 1:
            raise ProxyError(400, f"n must be at least 1, got {n}")
        clean = {k: v for k, v in body.items() if k not in _DROPPED_FIELDS}
        if "max_tokens" not in clean and "max_completion_tokens" in clean:
            # LiteLLM (DSPy) sends OpenAI's newer name; llama.cpp's server reads max_tokens.
            clean["max_tokens"] = clean.pop("max_completion_tokens")
        sampled = _temperature(clean) > 0
        with self._lock:
            entry = self._run(run)
            stats = entry.phase(phase)
            stats.requests += 1
            budget = entry.budgets.get(phase)
            if budget is not None and stats.calls >= budget:
                stats.refused += 1
                raise ProxyError(
                    BUDGET_STATUS,
                    f"{BUDGET_MARKER}: run {run!r} may make {budget} model calls in phase "
                    f"{phase!r} and has made {stats.calls}.",
                    "budget_exhausted",
                )
            if budget is not None:
                n = min(n, budget - stats.calls)  # serve what the budget still allows
            stats.calls += n
            stats.calls_by_model[model] = stats.calls_by_model.get(model, 0) + n
            scope = entry.cache_scope
            base = _key({"scope": scope, "body": clean})
            if sampled:
                first = entry.samples.get(base, 0)
                entry.samples[base] = first + n
                indices = list(range(first, first + n))
            else:
                indices = [0] * n  # greedy: every copy is the same reply
        choices: list[dict[str, Any]] = []
        usage = Usage()
        for i, sample in enumerate(indices):
            response, hit, seconds = self._sample(clean, scope, base, sample, sampled)
            usage = usage + response.usage
            with self._lock:
                stats.count_reply(model, response.usage, seconds, bool(hit))
            choices.append(_choice(i, response))
        return _completion(f"chatcmpl-proxy-{base[:16]}", model, choices, usage)

    def _complete_upstream(self, run: str, phase: str, body: dict[str, Any]) -> dict[str, Any]:
        """Upstream mode: each of the `n` choices is one semgrad `Request` to the run's LLM
        for (phase, model), whose cache, budget and log apply."""
        model = body.get("model")
        n = int(body.get("n") or 1)
        if n < 1:
            raise ProxyError(400, f"n must be at least 1, got {n}")
        with self._lock:
            entry = self._run(run)
            served = entry.routes.get(phase, {})
            if not isinstance(model, str) or model not in served:
                raise ProxyError(
                    404,
                    f"unknown model {model!r} in phase {phase!r}; run {run!r} is served "
                    f"{', '.join(served) or 'nothing'} there",
                    "model_not_found",
                )
            route = served[model]
            stats = entry.phase(phase)
            stats.requests += 1
            for name in set(body) - _SERVED_FIELDS:
                stats.ignored_fields[name] = stats.ignored_fields.get(name, 0) + 1
            first = request_from_body(body, tag=route.tag)
            if first.temperature > 0:  # the k-th identical sampled request is sample k
                base = first.cache_key(model)
                start = entry.samples.get(base, 0)
                entry.samples[base] = start + n
                indices = list(range(start, start + n))
            else:
                indices = [0] * n
        choices: list[dict[str, Any]] = []
        usage = Usage()
        refusal: ProxyError | None = None
        for i, sample in enumerate(indices):
            with self._lock:
                if phase in entry.stopped:
                    stats.refused += 1
                    refusal = self._refusal(run, phase, "an earlier request was refused")
                    break
            request = request_from_body(body, tag=route.tag, sample_index=sample)
            started = time.monotonic()
            try:
                assert self._loop is not None
                future = asyncio.run_coroutine_threadsafe(route.llm.complete(request), self._loop)
                response = future.result()
            except BudgetExceededError as exc:
                with self._lock:
                    stats.refused += 1
                    entry.stopped.add(phase)
                refusal = self._refusal(run, phase, str(exc))
                break
            except Exception as exc:
                raise ProxyError(502, f"the model failed: {exc!r}"[:800], "upstream_error") from exc
            seconds = 0.0 if response.cached else time.monotonic() - started
            usage = usage + response.usage
            with self._lock:
                stats.calls += 1
                stats.calls_by_model[model] = stats.calls_by_model.get(model, 0) + 1
                stats.count_reply(model, response.usage, seconds, response.cached)
            choices.append(_choice(i, response))
        if refusal is not None and not choices:
            raise refusal
        return _completion(f"chatcmpl-proxy-{run}-{stats.requests}", model, choices, usage)

    @staticmethod
    def _refusal(run: str, phase: str, why: str) -> ProxyError:
        return ProxyError(
            BUDGET_STATUS,
            f"{BUDGET_MARKER}: run {run!r} in phase {phase!r}: {why}",
            "budget_exhausted",
        )

    def _sample(
        self, body: dict[str, Any], scope: str, base: str, sample: int, sampled: bool
    ) -> tuple[Response, bool, float]:
        """One reply: (response, whether it came from the cache, seconds spent upstream)."""
        key = _key({"base": base, "sample": sample})
        while True:
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                return hit, True, 0.0
            with self._lock:
                waiting = self._in_flight.get(key)
                if waiting is None:
                    self._in_flight[key] = threading.Event()
                    break
            # An identical request is being answered: wait for it, then read the cache.
            waiting.wait()
            if self.cache is None:
                break
        try:
            upstream = dict(body)
            if sampled:
                upstream["seed"] = int(body.get("seed") or 0) + sample
            started = time.monotonic()
            response = self._call(upstream)
            seconds = time.monotonic() - started
            if self.cache is not None:
                # The stored request is the whole body: a run can be audited from the cache.
                fields = canonical_json({"scope": scope, "body": body, "sample": sample})
                self.cache.put(key, fields, response)
            return response, False, seconds
        finally:
            with self._lock:
                event = self._in_flight.pop(key, None)
            if event is not None:
                event.set()

    def _call(self, body: dict[str, Any]) -> Response:
        url = f"{self.upstreams[body['model']]}/chat/completions"
        try:
            reply = self._client.post(url, json=body)
        except httpx.HTTPError as exc:
            raise ProxyError(502, f"model server {url} failed: {exc!r}", "upstream_error") from exc
        if reply.status_code != 200:
            raise ProxyError(
                reply.status_code,
                f"model server answered HTTP {reply.status_code}: {reply.text[:500]}",
                "upstream_error",
            )
        data = reply.json()
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        usage = data.get("usage") or {}
        return Response(
            text=str(message.get("content") or ""),
            usage=Usage(
                int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
            ),
            model=str(body["model"]),
            finish_reason=str(choice.get("finish_reason") or "stop"),
        )

    def note_upstream_error(self, run: str, phase: str) -> None:
        with self._lock:
            entry = self._runs.get(run)
            if entry is not None:
                entry.phase(phase).upstream_errors += 1

    # --- scoring -------------------------------------------------------------------------

    def score(self, run: str, example_id: str, text: str) -> dict[str, Any]:
        with self._lock:
            scorer = self._run(run).scorer
        if scorer is None:
            raise ProxyError(404, f"run {run!r} has no metric registered", "not_found")
        try:
            value, feedback, prediction = scorer(example_id, text)
        except KeyError as exc:
            raise ProxyError(404, f"run {run!r} has no example {example_id!r}") from exc
        return {"value": value, "feedback": feedback, "prediction": prediction}


class _Server(ThreadingHTTPServer):
    proxy: PeerProxy
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hung up mid-reply; nothing to do


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = 3600

    @property
    def proxy(self) -> PeerProxy:
        return cast(_Server, self.server).proxy

    def log_message(self, format: str, *args: Any) -> None:
        pass  # no access log: requests may contain anything

    def do_GET(self) -> None:
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        try:
            if parts[:2] == ["_admin", "runs"] and len(parts) == 3:
                try:
                    self._send(200, self.proxy.stats(parts[2]))
                except KeyError:
                    raise ProxyError(404, f"unknown run {parts[2]!r}", "not_found") from None
            elif len(parts) == 4 and parts[2:] == ["v1", "models"]:
                data = [{"id": m, "object": "model"} for m in self.proxy.models(parts[0])]
                self._send(200, {"object": "list", "data": data})
            elif parts == ["health"]:
                self._send(200, {"status": "ok"})
            else:
                raise ProxyError(404, f"no route GET {self.path}", "not_found")
        except ProxyError as exc:
            self._error(exc)

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = self.path.split("?", 1)[0].strip("/").split("/")
        try:
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                raise ProxyError(400, "the request body is not JSON") from None
            if not isinstance(body, dict):
                raise ProxyError(400, "the request body is not a JSON object")
            if parts == ["_admin", "score"]:
                result = self.proxy.score(str(body["run"]), str(body["id"]), str(body["text"]))
                self._send(200, result)
            elif len(parts) == 5 and parts[2:] == ["v1", "chat", "completions"]:
                run, phase = parts[0], parts[1]
                try:
                    self._send(200, self.proxy.complete(run, phase, body))
                except ProxyError as exc:
                    if exc.kind == "upstream_error":
                        self.proxy.note_upstream_error(run, phase)
                    raise
            else:
                raise ProxyError(404, f"no route POST {self.path}", "not_found")
        except ProxyError as exc:
            self._error(exc)
        except (KeyError, TypeError, ValueError) as exc:
            self._error(ProxyError(400, f"bad request: {exc!r}"))

    def _error(self, exc: ProxyError) -> None:
        self._send(
            exc.status, {"error": {"message": exc.message, "type": exc.kind, "code": exc.kind}}
        )

    def _send(self, status: int, data: Mapping[str, Any]) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The peers' counting, caching proxy.")
    parser.add_argument("--upstream", action="append", required=True, help="a server's base URL")
    parser.add_argument("--cache", type=Path, required=True, help="SQLite response cache file")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--run", action="append", default=[], help="NAME[:OPTIMIZE_BUDGET]")
    args = parser.parse_args(argv)
    with (
        Cache(args.cache) as cache,
        PeerProxy.from_servers(args.upstream, cache, port=args.port) as proxy,
    ):
        for spec in args.run:
            name, _, budget = spec.partition(":")
            proxy.register(name, budgets={"optimize": int(budget)} if budget else None)
        print(f"proxy at {proxy.url} for {', '.join(proxy.upstreams)}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
