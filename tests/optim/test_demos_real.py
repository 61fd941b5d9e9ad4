"""The demonstrations method with the real embedded 0.5B (slow tier: `-m real`). Fails, not
skips, when the model is missing; uses its own response cache, so the model really runs."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path

import pytest

from semgrad.data.tasks import load_task
from semgrad.execution import RunContext
from semgrad.execution.executor import forward
from semgrad.graph.spec import load_graph
from semgrad.llm.local import LocalLLM
from semgrad.llm.stack import build_llm
from semgrad.optim.config import config_from_dict
from semgrad.optim.records import read_history
from semgrad.optim.runfiles import RunFiles
from semgrad.optim.trainer import optimize

pytestmark = pytest.mark.real

REPO = Path(__file__).resolve().parents[2]


def test_a_demos_run_puts_labelled_demonstrations_before_the_prompt(tmp_path: Path) -> None:
    """Reviews must be labelled POS/NEG, which no instruction says, so no training example
    succeeds and the demonstrations are labelled from targets (LabeledFewShot). One step of
    `method = "demos"` on the 0.5B (no optimizer model) must accept a demonstrations set
    for the output node, and the node's forward prompt must then be: one user turn and one
    assistant turn per demonstration (the reply in the metric's answer format), the same
    for every example, then the example's own prompt with the instruction last."""
    source = REPO / "configs" / "reviews.toml"
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    data["graph"]["path"] = str((source.parent / data["graph"]["path"]).resolve())
    data["models"] = {"forward": "qwen2.5-coder-0.5b", "cache": str(tmp_path / "cache.sqlite")}
    data["data"].update(train_size=8, gate_size=8, test_size=8)
    data["optimizer"] = {"method": "demos", "candidates": 2, "screen_size": 4}
    data["steps"] = 1
    config = config_from_dict(data, base_dir=str(source.parent))

    result = optimize(config, tmp_path / "run")
    assert result.status == "finished", result.message
    # The model really ran (a fresh cache), and no optimizer model was asked anything.
    assert result.spend["evaluation"]["calls"] > 0
    assert result.spend.get("optimizer", {}).get("calls", 0) == 0
    [step] = read_history(RunFiles(tmp_path / "run").history)
    assert step.method == "demos" and step.accepted, step
    assert step.changed == ["label.demos"]

    graph = load_graph(tmp_path / "run" / "best_graph.json")
    demos = graph.nodes["label"].demos.value
    assert 1 <= len(demos) <= 3
    assert all(d.output.strip() in ("Answer: POS", "Answer: NEG") for d in demos), demos
    assert graph.nodes["read"].demos.value == ()  # nothing succeeded: the output node only

    # The forward prompt with those demos, on two held-out reviews.
    tests = load_task("reviews:test").examples[:2]
    client = LocalLLM("qwen2.5-coder-0.5b")
    ctx = RunContext(llms={"forward": build_llm(client)})

    async def both() -> list[tuple[object, ...]]:
        try:
            traces = [await forward(graph, ex, ctx) for ex in tests]
        finally:
            await client.aclose()
        return [tuple(t.nodes["label"].prompt) for t in traces]

    prompts = asyncio.run(both())
    for prompt in prompts:
        roles = [m.role for m in prompt]
        assert roles == ["user", "assistant"] * len(demos) + ["user"], roles
        for i, demo in enumerate(demos):
            assert prompt[2 * i + 1].content == demo.output.strip()
            assert demo.inputs["question"] in prompt[2 * i].content
        instruction = graph.nodes["label"].instruction.value
        assert all(m.content.endswith(instruction) for m in prompt if m.role == "user")
    # The demonstration turns are byte-identical for every example: a reusable prefix.
    assert prompts[0][:-1] == prompts[1][:-1]
    assert prompts[0][-1] != prompts[1][-1]
    assert json.dumps([m.content for m in prompts[0]])  # plain text, nothing else
