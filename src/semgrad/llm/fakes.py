"""Fake models for tests: ours and our users'.

    ScriptedLLM       replies from a script (or a function of the request), in order
    EchoLLM           replies with the last user message
    FakeOpenAIServer  a real HTTP server on loopback that speaks the chat completions API,
                      with scripted latency and failures, to test the whole client stack

The fakes report token usage as whitespace word counts, so meters and budgets have
numbers to add up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast

from semgrad.errors import LLMError
from semgrad.llm.types import Message, Request, Response, Usage

__all__ = [
    "DROP",
    "EchoLLM",
    "FakeOpenAIServer",
    "ScriptedFailure",
    "ScriptedLLM",
    "count_words",
    "echo_last_user",
]


def count_words(text: str) -> int:
    """The fakes' token count: whitespace-separated words."""
    return len(text.split())


def _prompt_words(messages: Sequence[Message]) -> int:
    return sum(count_words(m.content) for m in messages)


def _last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return messages[-1].content


class ScriptedLLM:
    """An `LLM` that answers from a script.

    `replies` is either a sequence, answered in order (a string is returned as the reply,
    an exception instance is raised), or a function from the request to the reply text.
    Every request is appended to `requests` as it arrives, so a test can check what the
    code under test asked. `delay` seconds are slept before each answer, to let concurrent
    requests overlap. With `honour_max_tokens`, a reply longer than the request's
    `max_tokens` (counted in words) is cut there and marked `finish_reason="length"`, as a
    server would.
    """

    def __init__(
        self,
        replies: Sequence[str | BaseException] | Callable[[Request], str],
        *,
        model: str = "scripted",
        delay: float = 0.0,
        honour_max_tokens: bool = False,
    ) -> None:
        if isinstance(replies, str):
            raise TypeError(
                f"ScriptedLLM got a single string {replies[:40]!r} as its script; pass a "
                f"list of replies (ScriptedLLM([{replies[:20]!r}])) or a function."
            )
        self._function = replies if callable(replies) else None
        self._script: list[str | BaseException] = [] if callable(replies) else list(replies)
        self._model = model
        self._delay = delay
        self._honour_max_tokens = honour_max_tokens
        self._next = 0
        self.requests: list[Request] = []

    @property
    def model(self) -> str:
        return self._model

    @property
    def remaining(self) -> int | None:
        """Scripted replies not used yet (None for a function script, which never ends)."""
        return None if self._function is not None else len(self._script) - self._next

    def __repr__(self) -> str:
        script = "function" if self._function is not None else f"{len(self._script)} replies"
        return f"ScriptedLLM({script}, model={self._model!r})"

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        # The reply is chosen on arrival, so concurrent requests get replies in the order
        # they were made, whatever order their delays end in.
        reply = self._reply_for(request)
        if self._delay:
            await asyncio.sleep(self._delay)
        if isinstance(reply, BaseException):
            raise reply
        finish_reason = "stop"
        if self._honour_max_tokens and count_words(reply) > request.max_tokens:
            reply = " ".join(reply.split()[: request.max_tokens])
            finish_reason = "length"
        return Response(
            text=reply,
            usage=Usage(_prompt_words(request.messages), count_words(reply)),
            model=self._model,
            finish_reason=finish_reason,
            latency_s=self._delay,
        )

    def _reply_for(self, request: Request) -> str | BaseException:
        if self._function is not None:
            return self._function(request)
        if self._next >= len(self._script):
            return LLMError(
                f"ScriptedLLM {self._model!r} ran out of replies: it was scripted with "
                f"{len(self._script)} and got request #{len(self.requests)} (node "
                f"{request.node!r}, phase {request.phase!r}, last user message "
                f"{_last_user_text(request.messages)[:80]!r}). Add replies to the script, "
                f"or pass a function of the request instead of a list."
            )
        reply = self._script[self._next]
        self._next += 1
        return reply


class EchoLLM:
    """An `LLM` that replies with the last user message: handy for wiring tests of graphs."""

    def __init__(self, model: str = "echo", delay: float = 0.0) -> None:
        self._model = model
        self._delay = delay
        self.requests: list[Request] = []

    @property
    def model(self) -> str:
        return self._model

    def __repr__(self) -> str:
        return f"EchoLLM(model={self._model!r})"

    async def complete(self, request: Request) -> Response:
        self.requests.append(request)
        if self._delay:
            await asyncio.sleep(self._delay)
        text = _last_user_text(request.messages)
        return Response(
            text=text,
            usage=Usage(_prompt_words(request.messages), count_words(text)),
            model=self._model,
            latency_s=self._delay,
        )


# (status, headers) or (status, headers, body): one scripted answer served instead of a
# completion. The body defaults to an OpenAI-style error object. Status `DROP` (0) answers
# nothing: the server closes the connection after reading the request.
DROP = 0
ScriptedFailure = tuple[int, Mapping[str, str]] | tuple[int, Mapping[str, str], str]


def echo_last_user(body: Mapping[str, Any]) -> str:
    """The default reply of `FakeOpenAIServer`: the content of the last user message."""
    messages = body.get("messages") or []
    for message in reversed(messages):
        if isinstance(message, Mapping) and message.get("role") == "user":
            return str(message.get("content", ""))
    return ""


class FakeOpenAIServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1, in a background thread.

    Serves `POST /v1/chat/completions` and `GET /v1/models`. Each completion request
    sleeps `latency` seconds, then is answered by the next scripted failure if any are
    left, else by a completion whose text is `reply(request_json)`. One thread per
    connection, so it sustains as many concurrent requests as clients open connections.

        with FakeOpenAIServer(failures=[(429, {"Retry-After": "1"})]) as server:
            llm = OpenAICompatible(server.base_url, "fake-model")
            ...
            assert server.request_count == 2

    It keeps the JSON bodies (`requests`) and headers (`headers`) of the completion
    requests it received, so tests can check what a client sent; it writes nothing else
    anywhere (no access log). With `honour_max_tokens`, a reply longer than the body's
    `max_tokens` (in words) is cut there with `finish_reason` "length", as a server does.

    To stand in for a particular server: `prefix` is the API root's path (``/v1``),
    `models` the ids ``GET {prefix}/models`` lists (default: `model`), `strict_model`
    answers 404 to a completion for a model not listed (as OpenAI, vLLM and Ollama do;
    Ollama's ``NAME`` also matches a listed ``NAME:latest``; llama.cpp's server ignores the
    name), and `api_key` answers 401 unless the request carries ``Bearer <api_key>``.
    """

    def __init__(
        self,
        *,
        reply: Callable[[Mapping[str, Any]], str] = echo_last_user,
        latency: float = 0.0,
        failures: Sequence[ScriptedFailure] = (),
        model: str = "fake-model",
        honour_max_tokens: bool = False,
        models: Sequence[str] | None = None,
        strict_model: bool = False,
        api_key: str | None = None,
        prefix: str = "/v1",
    ) -> None:
        self.reply = reply
        self.models = tuple(models) if models is not None else (model,)
        self.strict_model = strict_model
        self.api_key = api_key
        self.prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self.honour_max_tokens = honour_max_tokens
        self.latency = latency
        self.model = model
        self._failures: list[ScriptedFailure] = list(failures)
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._connections: set[socket.socket] = set()
        self._sleeping = 0
        self._max_sleeping = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        if self._server is not None:
            return self
        # Port 0: the OS picks a free port, so parallel tests never collide.
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAIServer:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and drop open connections. Safe to call twice."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.server_close()
        thread.join()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            # Unblocks handler threads waiting on idle keep-alive connections.
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)
        self._server = self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- what tests look at ------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeOpenAIServer is not running; use it in a `with` block")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.prefix}"

    @property
    def request_count(self) -> int:
        """Completion requests received, failures included."""
        with self._lock:
            return len(self._requests)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of the completion requests received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def headers(self) -> list[dict[str, str]]:
        """The headers of the completion requests received (names lower-cased)."""
        with self._lock:
            return [dict(h) for h in self._headers]

    @property
    def max_in_flight(self) -> int:
        """The most completion requests that were waiting out `latency` at the same moment:
        how far a client's requests overlapped (a measure that a busy machine cannot fake,
        unlike a wall-clock bound)."""
        with self._lock:
            return self._max_sleeping

    def fail_next(self, *failures: ScriptedFailure) -> None:
        """Append scripted failures, served before any further completion."""
        with self._lock:
            self._failures.extend(failures)

    # --- called from handler threads ---------------------------------------------------

    def _arrived(self, headers: dict[str, str], body: dict[str, Any]) -> ScriptedFailure | None:
        with self._lock:
            self._requests.append(body)
            self._headers.append(headers)
            return self._failures.pop(0) if self._failures else None

    def _in_flight(self, delta: int) -> None:
        with self._lock:
            self._sleeping += delta
            self._max_sleeping = max(self._max_sleeping, self._sleeping)

    def _track(self, conn: socket.socket, *, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    fake: FakeOpenAIServer
    daemon_threads = True
    block_on_close = False
    # The default backlog of 5 drops connections when a benchmark opens 64 at once.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and hung up mid-reply is expected in tests; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so a client reuses its connections
    disable_nagle_algorithm = True  # headers and body go out without a delayed-ACK stall
    timeout = 60  # idle keep-alive connections are closed eventually

    @property
    def fake(self) -> FakeOpenAIServer:
        return cast(_Server, self.server).fake

    def setup(self) -> None:
        super().setup()
        self.fake._track(self.connection, open_=True)

    def finish(self) -> None:
        self.fake._track(self.connection, open_=False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        # No access log: a request's details are kept only where a test can ask for them.
        pass

    def _refused(self) -> bool:
        """Answer 401 (and return True) when the fake wants a key the request lacks."""
        key = self.fake.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return False
        self._send(401, _error_json("Incorrect API key provided", 401))
        return True

    def do_GET(self) -> None:
        if self.path.rstrip("/") == f"{self.fake.prefix}/models":
            if self._refused():
                return
            listed = [{"id": name, "object": "model"} for name in self.fake.models]
            self._send(200, json.dumps({"object": "list", "data": listed}))
        else:
            self._send(404, _error_json(f"no route GET {self.path}", 404))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.rstrip("/") != f"{self.fake.prefix}/chat/completions":
            self._send(404, _error_json(f"no route POST {self.path}", 404))
            return
        if self._refused():
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._send(400, _error_json("the request body is not a JSON object", 400))
            return
        fake = self.fake
        asked = body.get("model")
        if fake.strict_model and asked not in fake.models and f"{asked}:latest" not in fake.models:
            self._send(404, _error_json(f"The model {asked!r} does not exist", 404))
            return
        headers = {name.lower(): value for name, value in self.headers.items()}
        failure = fake._arrived(headers, body)
        if fake.latency > 0:
            fake._in_flight(+1)
            try:
                time.sleep(fake.latency)
            finally:
                fake._in_flight(-1)
        if failure is not None and failure[0] == DROP:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if failure is not None:
            status, extra = failure[0], failure[1]
            text = failure[2] if len(failure) == 3 else _error_json("scripted failure", status)
            self._send(status, text, extra)
            return
        try:
            reply = fake.reply(body)
        except Exception as exc:
            self._send(500, _error_json(f"reply function failed: {exc!r}", 500))
            return
        finish_reason = "stop"
        limit = body.get("max_tokens")
        if fake.honour_max_tokens and isinstance(limit, int) and count_words(reply) > limit:
            reply = " ".join(reply.split()[:limit])
            finish_reason = "length"
        messages = body.get("messages") or []
        prompt_words = sum(
            count_words(str(m.get("content", ""))) for m in messages if isinstance(m, dict)
        )
        completion = {
            "id": f"chatcmpl-fake-{fake.request_count}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", fake.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_words,
                "completion_tokens": count_words(reply),
                "total_tokens": prompt_words + count_words(reply),
            },
        }
        self._send(200, json.dumps(completion))

    def _send(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        payload = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _error_json(message: str, status: int) -> str:
    return json.dumps({"error": {"message": message, "type": "fake_error", "code": status}})
