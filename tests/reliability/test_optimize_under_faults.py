"""R1: a 3-step `optimize` behind a fault injector (429 with Retry-After, 500, 503, truncated
JSON, garbage, dropped connections) gives the fault-free run's per-item results and
best_graph.json at 20 % faults; at 50 % it finishes the same or stops with a clear error
(and then resumes to the same result), never a silently different one."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from faultkit import FAULTS, FaultyServer, outcome, write_config

from semgrad.errors import LLMError
from semgrad.llm.fakes import DROP
from semgrad.llm.retry import RetryPolicy
from semgrad.optim.config import load_config
from semgrad.optim.trainer import load_run_config, optimize

STEPS = 3


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = functools.partial(RetryPolicy, base_delay=0.0, jitter=0.0)
    monkeypatch.setattr("semgrad.llm.stack.RetryPolicy", fast)


@pytest.fixture(scope="module")
def fault_free(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, ...]:
    tmp = tmp_path_factory.mktemp("clean")
    with FaultyServer() as server:
        cfg = write_config(tmp, server.base_url, "clean", steps=STEPS)
        result = optimize(load_config(cfg), tmp / "clean")
    assert result.status == "finished"
    return outcome(tmp / "clean")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_twenty_percent_faults_change_nothing(
    seed: int, tmp_path: Path, fault_free: tuple[object, ...]
) -> None:
    with FaultyServer(rate=0.2, seed=seed) as server:
        cfg = write_config(tmp_path, server.base_url, "faulty", steps=STEPS, max_attempts=8)
        result = optimize(load_config(cfg), tmp_path / "faulty")
    assert server.faults > 0
    assert result.status == "finished", result.message
    assert outcome(tmp_path / "faulty") == fault_free


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fifty_percent_faults_finish_the_same_or_stop_clearly(
    seed: int, tmp_path: Path, fault_free: tuple[object, ...]
) -> None:
    run_dir = tmp_path / "faulty"
    with FaultyServer(rate=0.5, seed=seed) as server:
        cfg = write_config(tmp_path, server.base_url, "faulty", steps=STEPS, max_attempts=3)
        try:
            result = optimize(load_config(cfg), run_dir)
            status, message = result.status, result.message
        except LLMError as exc:  # a connection that kept dropping: the server is unreachable
            status, message = "raised", str(exc)
        cache = tmp_path / "faulty.sqlite"
    assert status in ("finished", "errors", "raised")
    if status == "errors":
        assert "failed after their retries" in message and "semgrad resume" in message
        assert not (run_dir / "summary.json").exists()
    if status != "finished":
        # The same run, resumed against a healthy server, reaches the fault-free result.
        assert cache.exists()
        with FaultyServer() as healthy:
            config = load_run_config(run_dir)
            models = config.models.model_copy(
                update={
                    role: getattr(config.models, role).model_copy(
                        update={"base_url": healthy.base_url}
                    )
                    for role in ("forward", "backward", "optimizer")
                }
            )
            result = optimize(config.model_copy(update={"models": models}), run_dir, resume=True)
        assert result.status == "finished"
    assert outcome(run_dir) == fault_free


def test_allowed_failures_are_counted_not_hidden(tmp_path: Path) -> None:
    # (Not a dropped connection: one that fails every attempt is fatal, the server is gone.)
    kinds = [f for f in FAULTS if f[0] != DROP]
    with FaultyServer(rate=0.5, seed=3, kinds=kinds) as server:
        cfg = write_config(tmp_path, server.base_url, "allowed", steps=1, max_attempts=1)
        result = optimize(load_config(cfg), tmp_path / "allowed", max_error_rate=1.0)
    assert result.status == "finished"
    errors = sum(phase.get("errors", 0) for phase in result.spend.values())
    assert errors > 0


def test_the_cli_exits_3_when_calls_failed_and_resume_finishes_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], fault_free: tuple[object, ...]
) -> None:
    from semgrad.cli import main

    def cli(*argv: str) -> object:
        with pytest.raises(SystemExit) as info:
            main(list(argv))
        return info.value.code

    run_dir = tmp_path / "run"
    kinds = [f for f in FAULTS if f[0] != DROP]
    with FaultyServer(rate=0.6, seed=5, kinds=kinds) as server:
        cfg = write_config(tmp_path, server.base_url, "run", steps=STEPS, max_attempts=1)
        assert cli("optimize", str(cfg), "--out", str(run_dir)) == 3
        err = " ".join(capsys.readouterr().err.split())
        assert "failed after their retries" in err and f"semgrad resume {run_dir}" in err
        server.rate = 0.0
        assert cli("resume", str(run_dir)) in (0, None)
    assert outcome(run_dir) == fault_free
