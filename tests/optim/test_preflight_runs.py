"""`semgrad optimize`, `resume` and `sg.fit` check every model server before a run starts:
a wrong model name, a refused key or a dead server exits 2 with a message, never a run
that ends "finished" at 0 % with every call failed."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

import semgrad as sg
from semgrad.cli import main
from semgrad.data.example import Example
from semgrad.errors import UserInputError
from semgrad.evaluation.metrics import NumericMatch
from semgrad.llm.config import ModelsConfig
from semgrad.llm.fakes import FakeOpenAIServer
from semgrad.llm.preflight import PreflightError, preflight_models

EXAMPLES = [Example(f"sum/{i}", {"question": f"add: {i} {i}"}, str(2 * i)) for i in range(6)]


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


GRAPH = {
    "semgrad": 1,
    "name": "g",
    "inputs": ["question"],
    "nodes": [{"type": "llm", "name": "a", "inputs": ["question"], "instruction": "Add."}],
    "output": "a",
}


def _write_run(tmp_path: Path, models: dict[str, str], **extra: str) -> Path:
    (tmp_path / "g.json").write_text(json.dumps(GRAPH))
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps({"question": e.inputs["question"], "answer": e.target})
                            + "\n" for e in EXAMPLES))  # fmt: skip
    spec = f"file:{data}:{{}}"
    lines = [f'{role} = {{ model = "{m}", base_url = "{url}" }}'
             for role, (m, url) in ((r, v.split("@", 1)) for r, v in models.items())]  # fmt: skip
    lines += [f'{k} = "{v}"' for k, v in extra.items()]
    config = tmp_path / "run.toml"
    config.write_text(
        'name = "sums"\nsteps = 1\n[graph]\npath = "g.json"\n[models]\n'
        + "\n".join(lines)
        + f'\ncache = "{tmp_path / "cache.sqlite"}"\n'
        + f'[data]\ntrain = "{spec.format("train")}"\ngate = "train"\n'
        + f'test = "{spec.format("test")}"\nmetric = "numeric"\n'
    )
    return config


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")


def test_optimize_with_a_wrong_model_name_exits_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(model="served") as server:
        url = server.base_url
        config = _write_run(
            tmp_path,
            {"forward": f"served@{url}", "backward": f"typo@{url}", "optimizer": f"typo@{url}"},
        )
        assert cli("optimize", str(config)) == 2
        assert server.request_count == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "[models] backward, [models] optimizer:" in err
    assert "does not serve the model 'typo'; it offers: served" in err
    assert not (tmp_path / "runs/sums/summary.json").exists()


def test_resume_checks_the_recorded_servers_again(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeOpenAIServer(model="m") as server:
        url = server.base_url
        config = _write_run(
            tmp_path, {"forward": f"m@{url}", "backward": f"m@{url}", "optimizer": f"m@{url}"}
        )
        assert cli("optimize", str(config)) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert cli("resume", "runs/sums") == 2  # the server is gone now
    err = " ".join(capsys.readouterr().err.split())
    assert f"cannot reach the model server at {url}" in err


def test_fit_with_models_naming_a_dead_server_raises_before_any_work(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    with pytest.raises(UserInputError, match=r"\[models\] forward, \[models\] backward"):
        sg.fit(
            sg.graph_from_dict(GRAPH),
            EXAMPLES[:3],
            NumericMatch(),
            test=EXAMPLES[3:],
            models={"forward": {"model": "m", "base_url": url},
                    "backward": {"model": "m", "base_url": url},
                    "optimizer": "qwen2.5-coder-0.5b"},
            run_dir=tmp_path / "run",
        )  # fmt: skip
    assert not (tmp_path / "run" / "checkpoint.json").exists()


def test_replay_only_runs_need_no_server() -> None:
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    spec = {"model": "m", "base_url": url}
    preflight_models(ModelsConfig.model_validate({"forward": spec, "cache_mode": "replay-only"}))
    with pytest.raises(PreflightError, match=r"^\[models\] forward: cannot reach"):
        preflight_models(ModelsConfig.model_validate({"forward": spec}))
