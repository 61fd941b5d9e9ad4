"""Pareto parents (`[optimizer] parents = "pareto"`, `semgrad.optim.pool`): the front and
its draws, and the trainer's pool (the parent is what a step edits, a winner joins, the
pool's best is the incumbent, the pool survives a kill), with scripted models."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from tests.optim.test_search import (
    WORDS,
    Killed,
    config,
    history,
    killed_at,
    models,
    splits,
    upper_for_final,
)

from semgrad.errors import ConfigError
from semgrad.optim import trainer as trainer_module
from semgrad.optim.pool import PoolEntry, ProgramPool
from semgrad.optim.records import StepRecord
from semgrad.optim.trainer import optimize

GATE = WORDS[8:14]  # forest, mirror, rocket, garden, button, planet


def entry(right: str, **kw: Any) -> PoolEntry:
    """A program scoring 1 on the gate items whose letters are in `right` (a..f)."""
    return PoolEntry(
        {"final.instruction": right},
        {w: float(c in right) for w, c in zip(GATE, "abcdef", strict=True)},
        **kw,
    )


def test_the_front_keeps_the_programs_best_on_some_item_and_drops_the_dominated() -> None:
    pool = ProgramPool([entry(""), entry("ab"), entry("abc"), entry("de"), entry("e")])
    # "" and "ab" and "e" are dominated ("abc" >= "ab" everywhere, "de" >= "e"); nobody
    # gets f right, so f counts for nobody.
    assert pool.front() == {2: 3, 3: 2}
    assert pool.best() == 2  # the highest mean; "abc" (3 of 6) over "de" (2 of 6)


def test_equal_programs_keep_the_earlier_and_the_best_is_the_earlier_on_a_tie() -> None:
    pool = ProgramPool([entry("ab"), entry("cd"), entry("ab")])
    assert pool.front() == {0: 2, 1: 2}
    assert pool.best() == 0


def test_a_pool_where_nothing_is_right_draws_the_incumbent() -> None:
    pool = ProgramPool([entry(""), entry("")])
    assert pool.front() == {}
    assert pool.choose(random.Random(0)) == 0


def test_parents_are_drawn_in_proportion_to_their_fronts_and_seeded() -> None:
    pool = ProgramPool([entry(""), entry("abc"), entry("d")])
    draws = Counter(pool.choose(random.Random(f"0/{step}/parent")) for step in range(3000))
    assert set(draws) == {1, 2}
    assert draws[1] / 3000 == pytest.approx(0.75, abs=0.03)
    assert pool.choose(random.Random("7/3/parent")) == pool.choose(random.Random("7/3/parent"))


def test_the_pool_round_trips() -> None:
    pool = ProgramPool([entry("ab"), entry("abc", parent=0, step=1)])
    again = ProgramPool.from_dict(json.loads(json.dumps(pool.to_dict())))
    assert again == pool and again[1].parent == 0 and again[1].step == 1


def test_pareto_parents_are_a_setting_of_the_search_only() -> None:
    assert config().optimizer.parents == "incumbent"
    assert (
        config(optimizer={"parents": "pareto", "method": "demos", "demos": 3}).optimizer.parents
        == "pareto"
    )
    for bad, words in (
        ({"method": "paper"}, "paper method"),
        ({"gate": "none"}, 'gate = "none"'),
    ):
        with pytest.raises(ConfigError, match=words) as err:
            config(optimizer={"parents": "pareto", **bad})
        assert err.value.key == "optimizer"
    with pytest.raises(ConfigError, match=r"\[edges\]"):
        config(optimizer={"parents": "pareto"}, edges={})


def test_the_default_search_with_pareto_parents_learns_and_records_its_pool(
    tmp_path: Path,
) -> None:
    cfg = config(steps=2, optimizer={"parents": "pareto"})
    result = optimize(cfg, tmp_path / "run", llms=models(upper_for_final), splits=splits())
    assert result.final_test == 1.0
    first, second = history(tmp_path / "run")
    # The first step edits the initial program (the pool's only one) and its winner joins;
    # the second edits the winner, which dominates the initial program.
    assert (first.parent, first.pool, first.accepted) == (0, 2, True)
    assert (second.parent, second.pool) == (1, 2 + second.accepted)
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    pool = ProgramPool.from_dict(state["pool"])
    assert pool[1].parent == 0 and pool[1].step == 0 and pool[1].mean == 1.0
    assert state["graph"] and result.best_gate == 1.0
    from semgrad.report.load import load_run
    from semgrad.report.page import render_html

    html = render_html(load_run(tmp_path / "run"))
    assert "Parent: </strong>the initial program, drawn from the Pareto front" in html
    assert "Parent: </strong>program 1 of the pool" in html and "screen vs parent" in html


def test_without_pareto_parents_the_history_has_no_pool_fields(tmp_path: Path) -> None:
    optimize(config(), tmp_path / "run", llms=models(upper_for_final), splits=splits())
    row = json.loads((tmp_path / "run" / "history.jsonl").read_text().splitlines()[0])
    assert "parent" not in row and "pool" not in row
    assert StepRecord.from_dict(row).parent is None


class ScriptedSteps:
    """Stands for `search_step`: step i sees the graph the trainer gave it and, when
    `outcomes[i]` is a string of gate letters, accepts a child scoring 1 on those."""

    def __init__(self, outcomes: list[str | None]) -> None:
        self.outcomes = outcomes
        self.seen: list[tuple[str, float | None]] = []

    async def __call__(self, host: Any) -> StepRecord:
        text = host.graph.state_dict()["final.instruction"]
        self.seen.append((text, host.best_gate))
        right = self.outcomes[host.step]
        if right is None:
            return StepRecord(step=host.step, incumbent_score=host.best_gate)
        child = entry(right)
        host.graph.load_state_dict({**host.graph.state_dict(), **child.state})
        host.incumbent_scores = dict(child.scores)
        host.best_gate = child.mean
        return StepRecord(step=host.step, accepted=True, incumbent_score=self.seen[-1][1])


def test_each_step_edits_its_drawn_parent_and_the_pool_s_best_stays_the_incumbent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps = ScriptedSteps(["ab", "cde", None, "abf"])
    monkeypatch.setattr(trainer_module, "search_step", steps)
    cfg = config(steps=4, optimizer={"parents": "pareto"})
    optimize(cfg, tmp_path / "run", llms=models(upper_for_final), splits=splits())
    records = history(tmp_path / "run")
    state = json.loads((tmp_path / "run" / "checkpoint.json").read_text())
    pool = ProgramPool.from_dict(state["pool"])
    assert [e.state["final.instruction"] for e in pool.entries[1:]] == ["ab", "cde", "abf"]
    for record, (text, score) in zip(records, steps.seen, strict=True):
        parent = pool[record.parent]  # type: ignore[index]
        # The step saw its parent's texts and gate score (the incumbent of its comparison).
        assert text == parent.state["final.instruction"] and score == parent.mean
    assert [r.parent for r in records[:2]] == [0, 1]  # the initial program, then "ab"
    # "abf" beat its parent; "cde" (3 of 6) stays the incumbent over it only by coming
    # first: both score 3 of 6.
    assert pool[3].parent == records[3].parent
    assert [r.pool for r in records] == [2, 3, 3, 4]
    assert [r.best_gate for r in records] == [2 / 6, 3 / 6, 3 / 6, 3 / 6]
    assert all(r.state["final.instruction"] == "cde" for r in records[1:])
    final = next(n for n in state["graph"]["nodes"] if n["name"] == "final")
    assert final["instruction"] == "cde"


def test_a_killed_pareto_run_resumes_to_the_same_graph(tmp_path: Path) -> None:
    cfg = config(steps=3, optimizer={"parents": "pareto"})
    reference = optimize(cfg, tmp_path / "ref", llms=models(upper_for_final), splits=splits())
    run_dir = tmp_path / "crash"
    with pytest.raises(Killed):  # killed during the second step's proposals
        optimize(cfg, run_dir, llms=models(killed_at(9)), splits=splits())
    assert json.loads((run_dir / "checkpoint.json").read_text())["step"] >= 1
    result = optimize(cfg, run_dir, resume=True, llms=models(upper_for_final), splits=splits())
    assert result.final_test == reference.final_test == 1.0
    best = "best_graph.json"
    assert (run_dir / best).read_text() == (tmp_path / "ref" / best).read_text()
    assert _pools(history(run_dir)) == _pools(history(tmp_path / "ref"))


def _pools(records: list[StepRecord]) -> list[tuple[Any, ...]]:
    return [(r.parent, r.pool, r.accepted, r.state) for r in records]
