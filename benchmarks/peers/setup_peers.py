"""Create one virtual environment per peer library and install it from PyPI.

    python benchmarks/peers/setup_peers.py                 # all peers
    python benchmarks/peers/setup_peers.py dspy --force    # recreate one

Each peer gets its own venv under ``~/.cache/semgrad/peers/<peer>/venv`` (outside the
repository, never the semgrad venv, so nothing a peer pulls in, torch included, can reach
semgrad's environment). What was installed, or why it could not be, goes to
``~/.cache/semgrad/peers/<peer>/setup.json``; `run.py` copies that into every result of the
peer, so a peer that cannot be installed is a recorded outcome rather than a missing row.

Runs with any Python 3.11+; uses only the standard library.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

# Peer name -> (pip requirements with lower-bound pins, import names to check, the
# distributions whose versions are recorded).
PEERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "textgrad": (("textgrad>=0.1.8",), ("textgrad",), ("textgrad", "openai", "litellm")),
    "dspy": (
        ("dspy[optuna]>=3.0",),
        ("dspy", "optuna"),
        ("dspy", "litellm", "openai", "gepa", "optuna"),
    ),
    "trace": (("trace-opt>=0.1.3",), ("opto",), ("trace-opt", "openai", "litellm")),
}

# The longest a single pip run may take before the install is recorded as failed.
PIP_TIMEOUT_S = 1800


def peers_root() -> Path:
    return Path(os.environ.get("SEMGRAD_PEERS_DIR", Path.home() / ".cache/semgrad/peers"))


def venv_python(peer: str) -> Path:
    return peers_root() / peer / "venv" / "bin" / "python"


def setup_file(peer: str) -> Path:
    return peers_root() / peer / "setup.json"


@dataclass(frozen=True)
class SetupRecord:
    peer: str
    status: str  # "ok" | "install-failed" | "import-failed"
    python: str
    requirements: list[str]
    versions: dict[str, str]
    torch_installed: bool
    error: str
    seconds: float


def _run(
    cmd: list[str], timeout: float, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    # Some peers write at import time (TextGrad makes ./logs/): run them in the peer's own
    # folder, never in the repository.
    env = {**os.environ, "TEXTGRAD_LOG_DIR": str(peers_root() / "textgrad-logs")}
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, env=env
    )


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def setup_peer(peer: str, *, python: str, force: bool) -> SetupRecord:
    requirements, imports, dists = PEERS[peer]
    venv = peers_root() / peer / "venv"
    started = time.monotonic()

    def record(status: str, error: str, versions: dict[str, str], torch: bool) -> SetupRecord:
        rec = SetupRecord(
            peer=peer,
            status=status,
            python=python,
            requirements=list(requirements),
            versions=versions,
            torch_installed=torch,
            error=error,
            seconds=round(time.monotonic() - started, 1),
        )
        setup_file(peer).write_text(json.dumps(asdict(rec), indent=2) + "\n")
        return rec

    setup_file(peer).parent.mkdir(parents=True, exist_ok=True)
    if force or not venv_python(peer).exists():
        made = _run([python, "-m", "venv", "--clear", str(venv)], timeout=300)
        if made.returncode != 0:
            return record("install-failed", _tail(made.stderr), {}, False)
    pip = [str(venv_python(peer)), "-m", "pip", "install", "--upgrade", *requirements]
    try:
        installed = _run(pip, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return record("install-failed", f"pip did not finish in {PIP_TIMEOUT_S} s", {}, False)
    if installed.returncode != 0:
        return record("install-failed", _tail(installed.stderr or installed.stdout), {}, False)
    probe = (
        "import importlib, importlib.metadata as md, json, sys\n"
        f"for name in {list(imports)!r}: importlib.import_module(name)\n"
        "out = {}\n"
        f"for dist in {[*dists, 'torch']!r}:\n"
        "    try: out[dist] = md.version(dist)\n"
        "    except md.PackageNotFoundError: pass\n"
        "out['python'] = sys.version.split()[0]\n"
        "print(json.dumps(out))\n"
    )
    try:
        checked = _run([str(venv_python(peer)), "-c", probe], timeout=600, cwd=venv.parent)
    except subprocess.TimeoutExpired:
        return record("import-failed", "importing took longer than 600 s", {}, False)
    if checked.returncode != 0:
        return record("import-failed", _tail(checked.stderr), {}, False)
    versions: dict[str, str] = json.loads(checked.stdout.strip().splitlines()[-1])
    torch = "torch" in versions
    return record("ok", "", versions, torch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("peers", nargs="*", help=f"any of {', '.join(PEERS)} (default: all)")
    parser.add_argument("--force", action="store_true", help="recreate the venv from scratch")
    parser.add_argument(
        "--python",
        default=getattr(sys, "_base_executable", sys.executable),
        help="interpreter to build the venvs from (default: this one's base interpreter)",
    )
    args = parser.parse_args(argv)
    unknown = [p for p in args.peers if p not in PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; the peers are {', '.join(PEERS)}")
    failed = 0
    for peer in args.peers or list(PEERS):
        print(f"[setup] {peer}: installing into {peers_root() / peer / 'venv'} ...", flush=True)
        rec = setup_peer(peer, python=args.python, force=args.force)
        shown = ", ".join(f"{k} {v}" for k, v in rec.versions.items())
        print(f"[setup] {peer}: {rec.status} in {rec.seconds} s  {shown}", flush=True)
        if rec.status != "ok":
            failed += 1
            print(f"[setup] {peer}: {rec.error}", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
