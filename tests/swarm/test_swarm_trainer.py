"""Node and edge optimization in one loop, on scripted models: schedules, history,
checkpoints, resume, budgets, the report, the CLI and the bundled demonstration config."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from swarmkit import LIARS, REPO, TRUTHFUL, toy_forward, toy_models, toy_spec, toy_splits

from semgrad.cli import main
from semgrad.errors import ConfigError
from semgrad.llm.fakes import FakeOpenAIServer, ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.config import RunConfig, config_from_dict, load_config
from semgrad.optim.edge_step import step_kind
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.trainer import Trainer, optimize
from semgrad.report import render_report
from semgrad.swarm import load_swarm, swarm_from_dict


def config(tmp_path: Path, *, steps: int = 6, **edges: Any) -> RunConfig:
    spec = toy_spec(tmp_path / "toy.json")
    return config_from_dict(
        {
            "name": "toy",
            "steps": steps,
            "graph": {"path": str(spec)},
            "data": {"train": "x", "test": "y"},
            "models": {"cache_mode": "off"},
            "edges": {"schedule": "edges-only", "samples": 8, "batch_size": 4, "lr": 0.3, **edges},
        }
    )


def history(run_dir: Path) -> list[dict[str, Any]]:
    return RunFiles(run_dir).read_history()


def test_edge_steps_cut_the_liars(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = optimize(config(tmp_path), run_dir, llms=toy_models(), splits=toy_splits())
    assert result.status == "finished" and result.steps_done == 6
    assert result.initial_test == 0.0 and result.final_test == 1.0  # liars outvoted the truth
    rows = history(run_dir)
    assert [r["kind"] for r in rows] == ["edges"] * 6
    last = rows[-1]["edge_probabilities"]
    assert all(last[f"{t}->decision"] > 0.7 for t in TRUTHFUL)
    assert all(last[f"{liar}->decision"] < 0.3 for liar in LIARS)
    assert rows[-1]["kept_edges"] == [f"{t}->decision" for t in TRUTHFUL]
    first = rows[0]
    edges = first["edges"]
    assert len(edges["samples"]) == 8 and len(edges["batch"]) == 4
    assert edges["baseline_used"] == pytest.approx(edges["mean_utility"])  # first batch
    assert set(edges["samples"][0]) >= {"decisions", "log_prob", "utility", "included"}
    assert edges["flipped"] == [f"{liar}->decision" for liar in LIARS]
    assert first["accepted"] is True and first["candidate_score"] == 1.0
    assert first["incumbent_score"] == 0.0 and first["changed"] == edges["flipped"]
    assert first["spend"]["edges"]["calls"] > 0 and first["spend"]["backward"]["calls"] == 0
    # best_graph.json: the swarm spec with the learned logits; realised_graph.json: flat.
    files = RunFiles(run_dir)
    best = json.loads(files.best_graph.read_text())
    assert best["kind"] == "swarm"
    assert swarm_from_dict(best).probabilities() == pytest.approx(last)
    realised = json.loads((run_dir / "realised_graph.json").read_text())
    assert [n["name"] for n in realised["nodes"]] == ["t1/answer", "t2/answer", "decision"]
    summary = json.loads(files.summary.read_text())
    assert summary["edges"]["kept"] == rows[-1]["kept_edges"]
    assert summary["spend"]["edges"]["calls"] > 0
    initial = json.loads(files.initial_graph.read_text())
    assert initial["kind"] == "swarm" and all(e["logit"] == 0.0 for e in initial["edges"])
    assert json.loads(files.config.read_text())["edges"]["schedule"] == "edges-only"


def test_node_steps_on_a_swarm_teach_the_liars(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    cfg = config(tmp_path, steps=1, schedule="nodes-only")
    result = optimize(cfg, run_dir, llms=toy_models(), splits=toy_splits())
    assert result.final_test == 1.0
    step = history(run_dir)[0]
    assert step["kind"] == "nodes" and step["edges"] is None and step["accepted"] is True
    assert set(step["changed"]) == {f"{a}/answer.instruction" for a in [*TRUTHFUL, *LIARS]}
    assert all("CAREFUL" in text for text in step["state"].values())
    assert set(step["edge_probabilities"].values()) == {0.5}  # untouched
    best = swarm_from_dict(json.loads(RunFiles(run_dir).best_graph.read_text()))
    assert "CAREFUL" in best.state_dict()["liar1/answer.instruction"]


@pytest.mark.parametrize(
    ("schedule", "kinds"),
    [
        ("alternate", ["edges", "nodes", "edges", "nodes"]),
        ("interleave", ["both"] * 4),
        ("edges-only", ["edges"] * 4),
        ("nodes-only", ["nodes"] * 4),
    ],
)
def test_schedules(tmp_path: Path, schedule: str, kinds: list[str]) -> None:
    assert [step_kind(schedule, i) for i in range(4)] == kinds
    optimize(
        config(tmp_path, steps=4, schedule=schedule),
        tmp_path / "run",
        llms=toy_models(),
        splits=toy_splits(),
    )
    rows = history(tmp_path / "run")
    assert [r["kind"] for r in rows] == kinds
    for row in rows:
        assert (row["edges"] is not None) == (row["kind"] != "nodes")
        assert ("proposals" in row) and set(row["edge_probabilities"]) == {
            f"{a}->decision" for a in [*TRUTHFUL, *LIARS]
        }
    if schedule == "interleave":
        # Edge update first, then the text step, gated against the graph the edges left.
        assert rows[0]["edges"]["regated"] is True
        assert rows[0]["incumbent_score"] == rows[0]["edges"]["gate"]["score"] == 1.0


def test_one_budget_covers_edges_and_a_stop_resumes_to_the_same_result(tmp_path: Path) -> None:
    reference = tmp_path / "ref"
    cfg = config(tmp_path, steps=4, schedule="alternate")
    optimize(cfg, reference, llms=toy_models(), splits=toy_splits())
    ref_best = json.loads(RunFiles(reference).best_graph.read_text())

    run_dir = tmp_path / "run"
    limited = config_from_dict(
        {**cfg.model_dump(exclude={"base_dir"}), "budget": {"edges.calls": 60}}
    )
    stopped = optimize(limited, run_dir, llms=toy_models(), splits=toy_splits())
    assert stopped.status == "budget" and "edges.calls" in stopped.message
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["budget_spent"]["edges.calls"] <= 60
    more = optimize(
        limited,
        run_dir,
        resume=True,
        llms=toy_models(),
        splits=toy_splits(),
        budget_overrides={"edges.calls": 100_000},
    )
    assert more.status == "finished"
    assert json.loads(RunFiles(run_dir).best_graph.read_text()) == ref_best


class Killed(BaseException):
    """Stands for kill -9: nothing in semgrad catches it."""


def strip(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("wall_s",)}


def test_crash_then_resume_continues_exactly(tmp_path: Path) -> None:
    cfg = config(tmp_path, steps=5, schedule="alternate")
    reference = tmp_path / "ref"
    optimize(cfg, reference, llms=toy_models(), splits=toy_splits())
    ref_rows = history(reference)
    first_step_calls = ref_rows[0]["spend"]["edges"]["requests"]

    seen = {"edges": 0}

    def crash_in_the_third_step(request: Request) -> str:
        if request.phase == "edges":
            seen["edges"] += 1
            if seen["edges"] == first_step_calls + 5:  # inside step 3 (an edge step)
                raise Killed
        return toy_forward(request)

    models = toy_models()
    models["forward"] = ScriptedLLM(crash_in_the_third_step)
    run_dir = tmp_path / "crash"
    with pytest.raises(Killed):
        optimize(cfg, run_dir, llms=models, splits=toy_splits())
    state = json.loads((run_dir / "checkpoint.json").read_text())
    assert state["step"] == 2 and state["status"] == "running"
    assert state["edge_optimizer"]["t"] == 1 and set(state["swarm"]["edges"][0]) >= {"logit"}
    result = optimize(cfg, run_dir, resume=True, llms=toy_models(), splits=toy_splits())
    assert result.steps_done == 5
    assert (run_dir / "best_graph.json").read_text() == (reference / "best_graph.json").read_text()
    assert [strip(r) for r in history(run_dir)] == [strip(r) for r in ref_rows]
    final = json.loads((run_dir / "checkpoint.json").read_text())
    assert (
        final["edge_optimizer"]
        == json.loads((reference / "checkpoint.json").read_text())["edge_optimizer"]
    )


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"edges\.schedule"):
        config(tmp_path, schedule="sometimes")
    with pytest.raises(ConfigError, match=r"edges\.betas"):
        config(tmp_path, betas=[0.9, 1.0])
    with pytest.raises(ConfigError, match=r"edges\.threshold"):
        config(tmp_path, threshold=1.0)
    single = config_from_dict(
        {
            "graph": {"hints": 1},
            "data": {"train": "x", "test": "y"},
            "models": {"cache_mode": "off"},
            "edges": {},
        }
    )
    with pytest.raises(ConfigError, match="swarm spec"):
        Trainer.from_config(single, tmp_path / "run", llms=toy_models(), splits=toy_splits())


def test_a_single_graph_config_still_gets_the_plain_trainer(tmp_path: Path) -> None:
    single = config_from_dict(
        {
            "graph": {"hints": 1},
            "data": {"train": "x", "test": "y"},
            "models": {"cache_mode": "off"},
        }
    )
    trainer = Trainer.from_config(single, tmp_path / "run", llms=toy_models(), splits=toy_splits())
    assert trainer.edge_step is None
    assert "edges" not in single.model_dump(exclude={"edges"})
    optimize(single, tmp_path / "run", llms=toy_models(), splits=toy_splits())  # type: ignore[arg-type]
    assert "edges" not in json.loads(RunFiles(tmp_path / "run").config.read_text())
    row = history(tmp_path / "run")[0]
    assert "kind" not in row and "edges" not in row["spend"]


def test_the_report_draws_the_edge_probabilities(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    optimize(
        config(tmp_path, steps=4, schedule="alternate"),
        run_dir,
        llms=toy_models(),
        splits=toy_splits(),
    )
    page = render_report(run_dir).read_text()
    assert 'id="edges"' in page and "edge probabilities over the steps" in page
    assert page.count('class="edge-line"') == 5
    for name in [*TRUTHFUL, *LIARS]:
        assert f"{name}-&gt;decision" in page
    assert "threshold 0.5" in page and "Sampled graphs (edge step)" in page
    assert "t1/answer" in page and "Composite graph of 5 agents" in page
    assert "<script" not in page


def test_an_instruction_with_markup_is_escaped_in_a_swarm_report(tmp_path: Path) -> None:
    spec = json.loads(toy_spec(tmp_path / "toy.json").read_text())
    spec["agents"][0]["graph"]["nodes"][0]["instruction"] = "<script>alert(1)</script>"
    (tmp_path / "toy.json").write_text(json.dumps(spec))
    cfg = config_from_dict(
        {
            "graph": {"path": str(tmp_path / "toy.json")},
            "steps": 1,
            "data": {"train": "x", "test": "y"},
            "models": {"cache_mode": "off"},
            "edges": {"schedule": "edges-only"},
        }
    )
    optimize(cfg, tmp_path / "run", llms=toy_models(), splits=toy_splits())
    page = render_report(tmp_path / "run").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)" in page


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    return code if isinstance(code, int) else 0


def test_cli_exports_the_swarm_or_its_realisation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    optimize(config(tmp_path, steps=2), run_dir, llms=toy_models(), splits=toy_splits())
    assert cli("export", str(run_dir)) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["kind"] == "swarm" and len(exported["edges"]) == 5
    assert cli("export", str(run_dir), "--realise", "-o", str(tmp_path / "flat.json")) == 0
    flat = json.loads((tmp_path / "flat.json").read_text())
    assert [n["name"] for n in flat["nodes"]] == ["t1/answer", "t2/answer", "decision"]


def test_cli_runs_a_swarm_spec_as_its_deterministic_graph(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_HOME", str(tmp_path / "home"))
    spec = toy_spec(tmp_path / "toy.json")
    with FakeOpenAIServer(reply=lambda body: "Answer: (B)") as server:
        code = cli(
            "run",
            str(spec),
            "-i",
            "question=pick one",
            "--base-url",
            server.base_url,
            "--model",
            "fake",
            "--cache-mode",
            "off",
            "--json",
        )
    assert code == 0
    trace = json.loads(capsys.readouterr().out)
    assert list(trace["nodes"])[-1] == "decision" and trace["output"] == "(B)"
    assert cli("optimize", "--help") == 0
    assert "swarm" in capsys.readouterr().out


def test_the_demonstration_config_loads_and_runs_on_fakes(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEMGRAD_DATA_DIR", str(data_dir))
    cfg = load_config(REPO / "configs" / "swarm-adversarial.toml")
    assert cfg.edges is not None and cfg.edges.schedule == "edges-only"
    swarm = load_swarm(cfg.resolve(cfg.graph.path or ""))
    assert len(swarm.edges) == 5
    short = config_from_dict(
        {
            **cfg.model_dump(exclude={"base_dir"}),
            "steps": 2,
            "models": {"cache_mode": "off"},
        },
        base_dir=cfg.base_dir,
    )

    def reply(request: Request) -> str:
        return "Answer: True" if "adversary" not in request.node else "Answer: False"

    fake = ScriptedLLM(reply)
    trainer = Trainer.from_config(
        short, tmp_path / "run", llms={"forward": fake, "backward": fake, "optimizer": fake}
    )
    assert trainer.edge_step is not None
    assert len(trainer.splits.train) == 12 and len(trainer.splits.test) == 20
    assert trainer.graph.nodes["decision"].inputs == tuple(f"{a}/answer" for a in swarm.agents)
    result = optimize(
        short, tmp_path / "run2", llms={"forward": fake, "backward": fake, "optimizer": fake}
    )
    assert result.status == "finished" and result.steps_done == 2
    assert all(r["kind"] == "edges" for r in history(tmp_path / "run2"))


def test_fit_learns_the_edges_of_a_swarm_built_in_python(tmp_path: Path) -> None:
    import semgrad as sg

    swarm = load_swarm(toy_spec(tmp_path / "toy.json"))
    s = toy_splits()
    result = sg.fit(
        swarm,
        s.train,
        s.metric,
        gate=s.gate,
        test=s.test,
        llms=toy_models(),
        run_dir=tmp_path / "run",
        steps=6,
        edges={"schedule": "edges-only", "samples": 8, "batch_size": 4, "lr": 0.3},
    )
    assert result.graph is swarm and result.final_test == 1.0
    assert json.loads((tmp_path / "run" / "best_graph.json").read_text())["kind"] == "swarm"
    steps = RunFiles(tmp_path / "run").read_steps()
    assert [r.kind for r in steps] == ["edges"] * 6 and steps[0].edges is not None
    assert steps[-1].kept_edges == [f"{t}->decision" for t in TRUTHFUL]
