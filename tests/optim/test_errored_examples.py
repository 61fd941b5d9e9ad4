"""An example whose model call failed is an error, never a training mistake."""

from __future__ import annotations

import re
from pathlib import Path

from semgrad.data.example import Example
from semgrad.errors import LLMHTTPError
from semgrad.evaluation.metrics import ExactMatch
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.config import config_from_dict
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.trainer import Splits, fit

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


def test_errored_examples_are_never_picked_as_training_mistakes(tmp_path: Path) -> None:
    ex = [Example(f"w/{i}", {"question": f"word: {w}"}, w) for i, w in enumerate(WORDS)]
    splits = Splits(
        train=tuple(ex[:6]), gate=tuple(ex[6:8]), test=tuple(ex[8:]), metric=ExactMatch()
    )
    llms = {
        "forward": ScriptedLLM(forward),
        "backward": ScriptedLLM(lambda r: "<feedback_1>be right</feedback_1>"),
        "optimizer": ScriptedLLM(lambda r: "<improved>Answer with the word.</improved>"),
    }
    cfg = config_from_dict(
        {
            "name": "t",
            "steps": 1,
            "graph": {"hints": 1},
            "data": {"train": "a", "gate": "b", "test": "c"},
            "models": {"cache_mode": "off"},
            "optimizer": {"batch_size": 3},
        }
    )
    fit(cfg, tmp_path / "run", llms=llms, splits=splits)  # type: ignore[arg-type]
    (step,) = RunFiles(tmp_path / "run").read_history()
    picked = {b["inputs"]["question"].removeprefix("word: ") for b in step["batch"]}
    assert picked == {"cloud", "tiger", "piano"}  # the three errored words are never picked
