"""An example whose model call failed is an error, never a training mistake."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from semgrad.data.example import Example
from semgrad.errors import FatalHTTPError, LLMHTTPError
from semgrad.evaluation.metrics import ExactMatch
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.config import config_from_dict
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.trainer import Splits, optimize

WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "lemon", "candle", "forest"]
FAILING = {"apple", "river", "stone"}


def forward(request: Request) -> str:
    text = request.messages[-1].content
    if request.node != "final":
        return f"a hint from {request.node}"
    word = re.search(r"word: (\w+)", text).group(1)  # type: ignore[union-attr]
    if word in FAILING:
        raise LLMHTTPError(400, "the server failed this request")  # not retried
    return "wrong"


def _config() -> object:
    return config_from_dict(
        {
            "name": "t",
            "steps": 1,
            "graph": {"hints": 1},
            "data": {"train": "a", "gate": "b", "test": "c"},
            "models": {"cache_mode": "off"},
            "optimizer": {"batch_size": 3},
        }
    )


def _splits() -> Splits:
    ex = [Example(f"w/{i}", {"question": f"word: {w}"}, w) for i, w in enumerate(WORDS)]
    return Splits(train=tuple(ex[:6]), gate=tuple(ex[6:8]), test=tuple(ex[8:]), metric=ExactMatch())


def test_errored_examples_are_never_picked_as_training_mistakes(tmp_path: Path) -> None:
    splits = _splits()
    llms = {
        "forward": ScriptedLLM(forward),
        "backward": ScriptedLLM(lambda r: "<feedback_1>be right</feedback_1>"),
        "optimizer": ScriptedLLM(lambda r: "<improved>Answer with the word.</improved>"),
    }
    cfg = _config()
    # Failed calls allowed: by default they stop the run (tests/reliability).
    result = optimize(cfg, tmp_path / "run", llms=llms, splits=splits, max_error_rate=1.0)  # type: ignore[arg-type]
    assert result.status == "finished"
    (step,) = RunFiles(tmp_path / "run").read_history()
    picked = {b["inputs"]["question"].removeprefix("word: ") for b in step["batch"]}
    assert picked == {"cloud", "tiger", "piano"}  # the three errored words are never picked


def test_by_default_an_errored_example_stops_the_run_before_the_step_is_recorded(
    tmp_path: Path,
) -> None:
    llms = {
        "forward": ScriptedLLM(forward),
        "backward": ScriptedLLM(lambda r: "<feedback_1>be right</feedback_1>"),
        "optimizer": ScriptedLLM(lambda r: "<improved>Answer with the word.</improved>"),
    }
    result = optimize(_config(), tmp_path / "run", llms=llms, splits=_splits())  # type: ignore[arg-type]
    assert result.status == "errors" and "failed after their retries" in result.message
    assert RunFiles(tmp_path / "run").read_history() == []


@pytest.mark.parametrize("role", ["forward", "backward", "optimizer"])
def test_a_fatal_status_stops_the_run_at_once(role: str, tmp_path: Path) -> None:
    # A 401/403/404 from any model: the run stops (the CLI exits 2), never "finished".
    def refuse(request: Request) -> str:
        raise FatalHTTPError(401, "bad key", url="http://x/v1/chat/completions")

    llms = {
        "forward": ScriptedLLM(lambda r: "wrong"),
        "backward": ScriptedLLM(lambda r: "<feedback_1>be right</feedback_1>"),
        "optimizer": ScriptedLLM(lambda r: "<improved>Answer with the word.</improved>"),
    }
    llms[role] = ScriptedLLM(refuse)
    with pytest.raises(FatalHTTPError):
        optimize(_config(), tmp_path / "run", llms=llms, splits=_splits())  # type: ignore[arg-type]
