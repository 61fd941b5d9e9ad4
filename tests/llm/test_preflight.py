"""The pre-flight check against a loopback fake server, a closed port and refusing servers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread
from typing import Any

import pytest

from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.llm.preflight import PreflightError, model_listed, preflight


def test_a_served_model_passes_and_the_list_is_returned() -> None:
    with FakeOpenAIServer(model="qwen") as server:
        assert preflight(server.base_url, "qwen") == ("qwen",)
        assert server.request_count == 0  # no completion was spent


def test_a_model_the_server_does_not_list_names_what_it_offers() -> None:
    with FakeOpenAIServer(model="qwen") as server, pytest.raises(PreflightError) as info:
        preflight(server.base_url, "gpt-4o")
    message = str(info.value)
    assert "does not serve the model 'gpt-4o'" in message
    assert "it offers: qwen" in message


def test_url_without_v1_falls_back_to_one_request_and_says_check_v1() -> None:
    with FakeOpenAIServer() as server, pytest.raises(PreflightError) as info:
        preflight(f"http://127.0.0.1:{server.port}", "fake-model")
    assert "answered 404" in str(info.value)
    assert "Does the URL end in /v1" in str(info.value)


def test_a_closed_port_names_the_url() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(PreflightError) as info:
        preflight(url, "m")
    assert url in str(info.value)
    assert "Is the server running? Does the URL end in /v1" in str(info.value)


class _Refusing(BaseHTTPRequestHandler):
    status = 401
    models = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if not type(self).models:
            self._reply(404, b'{"error": "no such route"}')
            return
        key = self.headers.get("Authorization", "")
        self._reply(self.status, f'{{"error": "bad key {key}"}}'.encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._reply(self.status, b'{"error": "no"}')


@pytest.fixture
def refusing() -> Iterator[tuple[str, type[_Refusing]]]:
    handler = type("Handler", (_Refusing,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_key_names_the_variable_and_is_never_echoed(
    refusing: tuple[str, type[_Refusing]], monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    url, handler = refusing
    handler.status = status
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    with pytest.raises(PreflightError) as info:
        preflight(url, "m", api_key_env="MY_KEY")
    message = str(info.value)
    assert f"refused the API key in $MY_KEY (HTTP {status}" in message
    assert "sk-secret-123" not in message
    with pytest.raises(PreflightError, match=r"requires an API key.*--api-key-env"):
        preflight(url, "m")
    handler.models = False  # no /models: the 1-token request is refused the same way
    with pytest.raises(PreflightError, match=r"refused the API key in \$MY_KEY"):
        preflight(url, "m", api_key_env="MY_KEY")


def test_a_missing_key_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    with pytest.raises(PreflightError, match="NOPE_KEY is not set"):
        preflight("http://127.0.0.1:9/v1", "m", api_key_env="NOPE_KEY")


def test_model_listed_is_lenient_about_ollama_tags_and_gguf_paths() -> None:
    assert model_listed("llama3", ["llama3:latest"])
    assert model_listed("foo", ["models/foo.gguf"])
    assert not model_listed("llama3", ["llama3.1:8b"])
