"""Serve an embedded model over HTTP with the OpenAI chat completions API.

This is llama.cpp's own server (the one inside xllamacpp, the same code `LocalLLM` runs),
listening on a host and port of our choosing: `POST /v1/chat/completions`,
`GET /v1/models` (which lists the model under its semgrad id), and llama.cpp's other
endpoints such as `GET /health`. Any OpenAI-compatible client, including semgrad's own
HTTP client, can then use the model from another process.

It listens on loopback only unless `allow_remote=True`: a model server reachable from the
network lets anyone who reaches it spend this machine's CPU, so that has to be asked for.
"""

from __future__ import annotations

import errno
import ipaddress
import signal
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType, TracebackType
from typing import Any

from semgrad.errors import ConfigError
from semgrad.llm.config import DEFAULT_CTX_PER_SLOT, DEFAULT_FORWARD_MODEL, DEFAULT_SLOTS
from semgrad.llm.local import server_params, start_server, validate_slots
from semgrad.llm.models import ModelSpec, resolve_model

__all__ = ["LocalServer", "is_loopback", "serve"]


class LocalServer:
    """llama.cpp's HTTP server for one model, running in this process until `close()`.

    Starting it loads the model (a few seconds). `base_url` is what an OpenAI client
    wants, e.g. `http://127.0.0.1:8080/v1`. `port=0` picks a free port.
    """

    def __init__(
        self,
        model: str = DEFAULT_FORWARD_MODEL,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        n_parallel: int = DEFAULT_SLOTS,
        n_ctx_per_slot: int = DEFAULT_CTX_PER_SLOT,
        n_threads: int | None = None,
        api_key: str | None = None,
        allow_remote: bool = False,
        verbose: bool = False,
        registry: Mapping[str, ModelSpec] | None = None,
    ) -> None:
        if not allow_remote and not is_loopback(host):
            raise ConfigError(
                f"refusing to listen on {host!r}, which other machines may reach: anyone who "
                f"can connect could use the model{'' if api_key else ' without a key'}. Use "
                f"127.0.0.1 (the default), or pass allow_remote=True, ideally with an "
                f"api_key, if you mean it.",
                key="host",
            )
        if not 0 <= port <= 65535:
            raise ConfigError(f"must be between 0 and 65535, got {port}", key="port")
        if port != 0:
            _check_port_free(host, port)
        threads = validate_slots(n_parallel, n_ctx_per_slot, n_threads)
        self.model, path = resolve_model(model, registry=registry)
        keys: Sequence[str] = [api_key] if api_key else []
        self._server: Any = start_server(
            path,
            server_params(
                path,
                alias=self.model,
                n_parallel=n_parallel,
                n_ctx_per_slot=n_ctx_per_slot,
                n_threads=threads,
                verbose=verbose,
                host=host,
                port=port,
                api_keys=keys,
            ),
        )
        self.base_url = f"{self._server.listening_address}/v1"

    def close(self) -> None:
        # Dropping the last reference stops llama.cpp's HTTP and decoding loops.
        self._server = None

    def __enter__(self) -> LocalServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def serve(
    model: str = DEFAULT_FORWARD_MODEL,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    n_parallel: int = DEFAULT_SLOTS,
    n_ctx_per_slot: int = DEFAULT_CTX_PER_SLOT,
    n_threads: int | None = None,
    api_key: str | None = None,
    allow_remote: bool = False,
    verbose: bool = False,
    on_ready: Callable[[str], None] | None = None,
    stop: threading.Event | None = None,
) -> str:
    """Serve `model` until Ctrl-C, SIGTERM or `stop` is set; return the base URL it had.

    `on_ready` receives the base URL once the model is loaded and the port is open; by
    default a line saying where the server is goes to stdout. Called from a thread other
    than the main one (which alone receives signals), `stop` is required.
    """
    in_main = threading.current_thread() is threading.main_thread()
    if stop is None and not in_main:
        raise ConfigError(
            "serve() stops on Ctrl-C or SIGTERM, which only the main thread receives; from "
            "another thread pass stop=threading.Event() and set it to stop the server.",
            key="stop",
        )
    stop = stop or threading.Event()
    with LocalServer(
        model,
        host=host,
        port=port,
        n_parallel=n_parallel,
        n_ctx_per_slot=n_ctx_per_slot,
        n_threads=n_threads,
        api_key=api_key,
        allow_remote=allow_remote,
        verbose=verbose,
    ) as server:
        if on_ready is not None:
            on_ready(server.base_url)
        else:
            print(
                f"semgrad: serving {server.model} at {server.base_url} "
                f"(OpenAI-compatible: POST /chat/completions, GET /models). Ctrl-C to stop.",
                flush=True,
            )
        _wait(stop, handle_signals=in_main)
        return server.base_url


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to anything


def _wait(stop: threading.Event, *, handle_signals: bool) -> None:
    if not handle_signals:
        stop.wait()
        return

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        # Short waits in a loop rather than one long wait, so Python gets to run its
        # Ctrl-C handler promptly between them.
        while not stop.wait(0.25):
            pass
    except KeyboardInterrupt:
        pass  # Ctrl-C is how one stops a server in a terminal: a normal exit
    finally:
        signal.signal(signal.SIGTERM, previous)


def _check_port_free(host: str, port: int) -> None:
    """Fail with a clear message now rather than with llama.cpp's generic one later."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        # As servers do (llama.cpp too): a port left in TIME_WAIT by a server that just
        # stopped is free to reuse; only a live listener makes the bind fail.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host.strip("[]"), port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} on {host} is already in use (another server?); choose "
                    f"another port, or port=0 for any free one.",
                    key="port",
                ) from e
            raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror}", key="host") from e
