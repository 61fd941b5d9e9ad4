"""A graph with demos trains as before: the text optimizer proposes only instructions, the
demos are used by every forward call, kept in the run's files and restored from its
checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

from tests.optim.test_fit import EXAMPLES, graph, reply_body

import semgrad as sg
from semgrad.evaluation.metrics import NumericMatch
from semgrad.graph.spec import graph_from_dict
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.records import read_history

DEMO = sg.Demo({"question": "add: 1 1"}, "Answer: 2")


def test_demos_ride_along_a_text_optimization_run(tmp_path: Path) -> None:
    forward_prompts: list[Request] = []

    def reply(request: Request) -> str:
        if request.phase not in ("backward", "optimizer"):
            forward_prompts.append(request)
        return reply_body({"messages": [{"content": request.messages[-1].content}]})

    llm = ScriptedLLM(reply)
    g = graph()
    g.set_demos("final", [DEMO])
    run_dir = tmp_path / "run"
    result = sg.fit(
        g,
        EXAMPLES[:4],
        NumericMatch(),
        gate=EXAMPLES[4:7],
        test=EXAMPLES[7:],
        llms={"forward": llm, "backward": llm, "optimizer": llm},
        run_dir=run_dir,
        steps=1,
        optimizer={"method": "paper"},
    )
    assert result.status == "finished" and result.final_test == 1.0
    [step] = read_history(run_dir / "history.jsonl")
    # Only the instruction is a text parameter: one proposal, gradients for it alone.
    assert [p["parameter"] for p in step.proposals] == ["final.instruction"]
    assert list(step.gradients) == ["final.instruction"]
    assert result.graph.demos("final") == (DEMO,)
    assert json.loads(step.state["final.demos"]) == [DEMO.to_dict()]
    # Every forward call showed the demo as a prior turn.
    assert forward_prompts and all(len(r.messages) == 3 for r in forward_prompts)
    assert all(r.messages[1].content == "Answer: 2" for r in forward_prompts)
    # The run's files keep the demos; the checkpoint restores them into a graph without.
    best = json.loads((run_dir / "best_graph.json").read_text())
    assert best["nodes"][0]["demos"] == [DEMO.to_dict()]
    checkpoint = json.loads((run_dir / "checkpoint.json").read_text())
    fresh = graph()
    fresh.load_state_dict(graph_from_dict(checkpoint["graph"]).state_dict())
    assert fresh.demos("final") == (DEMO,)
