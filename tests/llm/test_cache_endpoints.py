"""The server is part of a cached reply's key: one server's answers are never served for
another's; the embedded model's keys are unchanged; a namespace shares on purpose."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from semgrad.cli import main
from semgrad.llm import Cache, CachedLLM, Message, Request, ScriptedLLM
from semgrad.llm.config import ModelsConfig
from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.llm.openai import OpenAICompatible
from semgrad.llm.stack import build_stack
from semgrad.llm.types import endpoint_of

REQUEST = Request(
    messages=(Message("system", "be brief"), Message("user", "what is 2+2?")), max_tokens=64
)


def test_the_embedded_models_keys_are_the_ones_recorded_caches_hold() -> None:
    # Computed before endpoints were keyed: the benchmarks' and the fixtures' caches
    # (embedded registry models, no endpoint) must keep hitting.
    expected = "c4f9bf7d0a9ada122bad286fc0ac71bd09be351c962d9ee9c2f088e4cba12c00"
    assert REQUEST.cache_key("qwen2.5-coder-0.5b") == expected
    assert REQUEST.cache_key("qwen2.5-coder-0.5b", namespace="team") == expected
    assert endpoint_of(ScriptedLLM([])) is None


def test_endpoint_is_the_base_url_without_credentials() -> None:
    llm = OpenAICompatible("https://user:secret@API.example.com:8443/v1/", "m")
    assert llm.endpoint == "https://api.example.com:8443/v1"
    assert OpenAICompatible("http://[::1]:8080/v1", "m").endpoint == "http://[::1]:8080/v1"


def test_two_servers_never_share_entries_and_a_namespace_shares_them(tmp_path: Path) -> None:
    a = OpenAICompatible("http://127.0.0.1:1/v1", "m")
    b = OpenAICompatible("http://127.0.0.1:2/v1", "m")
    with Cache(tmp_path / "c.sqlite") as cache:
        keys = {
            (name, ns): CachedLLM(llm, cache, namespace=ns).key_fields(REQUEST)
            for name, llm in (("a", a), ("b", b))
            for ns in (None, "team")
        }
    assert keys["a", None]["endpoint"] == "http://127.0.0.1:1/v1"
    assert keys["a", None] != keys["b", None]
    assert keys["a", "team"] == keys["b", "team"]
    assert "endpoint" not in keys["a", "team"] and keys["a", "team"]["namespace"] == "team"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    graph = tmp_path / "g.json"
    graph.write_text(
        json.dumps(
            {
                "semgrad": 1,
                "name": "g",
                "inputs": ["question"],
                "nodes": [
                    {"type": "llm", "name": "a", "inputs": ["question"], "instruction": "Answer."}
                ],
                "output": "a",
            }
        )
    )
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "".join(json.dumps({"question": f"q{i}", "answer": "x"}) + "\n" for i in range(3))
    )
    yield tmp_path


def _cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def _eval(base_url: str, *extra: str) -> int:
    return _cli(
        "eval", "g.json", "--data", "qa.jsonl", "--base-url", base_url, "--model", "fake-model",
        "--max-error-rate", "1", *extra,
    )  # fmt: skip


def test_eval_on_another_server_calls_it_instead_of_replaying_the_first(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer() as first, FakeOpenAIServer() as second:
        assert _eval(first.base_url) == 0
        assert first.request_count == 3
        assert _eval(first.base_url) == 0  # the same server: all from the cache
        assert first.request_count == 3
        assert _eval(second.base_url) == 0
        assert second.request_count == 3  # a new server is asked, not served stale replies
        capsys.readouterr()
        assert _eval(second.base_url, "--cache-namespace", "fleet") == 0
        assert second.request_count == 6  # a new namespace: nothing shared yet
        assert _eval(first.base_url, "--cache-namespace", "fleet") == 0
        assert first.request_count == 3  # shared on purpose
    assert "cache hits" in capsys.readouterr().out


def test_run_against_a_dead_server_fails_after_another_server_filled_the_cache(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", "g.json", "-i", "question=q0", "--model", "fake-model", "--max-attempts", "1"]
    with FakeOpenAIServer() as server:
        assert _cli(*args, "--base-url", server.base_url) == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    capsys.readouterr()
    # Before endpoints were keyed this printed the first server's cached reply, exit 0.
    assert _cli(*args, "--base-url", f"http://127.0.0.1:{port}/v1") != 0
    assert f"cannot reach the model server at http://127.0.0.1:{port}/v1" in " ".join(
        capsys.readouterr().err.split()
    )


def test_build_stack_passes_the_namespace_to_the_cache(tmp_path: Path) -> None:
    models = ModelsConfig.model_validate(
        {
            "forward": {"model": "m", "base_url": "http://127.0.0.1:1/v1"},
            "backward": {"model": "m", "base_url": "http://127.0.0.1:2/v1"},
            "optimizer": {"model": "m", "base_url": "http://127.0.0.1:2/v1"},
            "cache": str(tmp_path / "c.sqlite"),
            "cache_namespace": "fleet",
        }
    )
    stack = build_stack(models)
    try:
        layers = [_cached(stack.llms[role]) for role in ("forward", "backward")]
        assert [layer.namespace for layer in layers] == ["fleet", "fleet"]
        assert layers[0].key_fields(REQUEST) == layers[1].key_fields(REQUEST)
    finally:
        asyncio.run(stack.aclose())


def _cached(llm: object) -> CachedLLM:
    from semgrad.llm.stack import find_layer

    layer = find_layer(llm, CachedLLM)  # type: ignore[arg-type]
    assert layer is not None
    return layer


def test_a_replay_needs_no_server_and_keys_by_the_recorded_url(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer() as server:
        url = server.base_url
        assert _eval(url) == 0
    # The server is gone: replaying its answers from the cache still works, no pre-flight.
    assert _eval(url, "--cache-mode", "replay-only") == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        other = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    capsys.readouterr()
    # Another URL has no recorded answers: a replay of it fails on the first miss.
    assert _eval(other, "--cache-mode", "replay-only") != 0
