"""OpenTelemetry spans (the otel extra), read back with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import semgrad as sg
from semgrad.data.example import Example
from semgrad.evaluation.metrics import NumericMatch
from semgrad.llm.fakes import ScriptedLLM

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from semgrad import telemetry

EXAMPLES = [
    Example(f"sum/{a}-{b}", {"question": f"add: {a} {b}"}, str(a + b))
    for a, b in [(1, 2), (3, 4), (5, 6), (7, 8), (2, 9), (4, 4)]
]
SECRET_QUESTION = "add: 1 2"


def reply(request: Any) -> str:
    text = request.messages[-1].content
    if "<improved>" in text:
        return "<improved>ADD the two numbers and end with 'Answer: N'.</improved>"
    if "<feedback_1>" in text:
        return "<feedback_1>Add them.</feedback_1>"
    a, b = (int(x) for x in text.split("add: ")[1].split()[:2])
    return f"Answer: {a + b}" if "ADD" in text else "Answer: 0"


def graph() -> sg.Graph:
    return sg.graph_from_dict(
        {
            "name": "adder",
            "inputs": ["question"],
            "nodes": [
                {"type": "llm", "name": "hint", "inputs": ["question"], "instruction": "Hint."},
                {
                    "type": "llm",
                    "name": "final",
                    "inputs": ["question", "hint"],
                    "instruction": "Answer.",
                },
            ],
            "output": "final",
        }
    )


@pytest.fixture
def exporter() -> Iterator[tuple[InMemorySpanExporter, TracerProvider]]:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    yield spans, provider
    provider.shutdown()


def _by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def test_one_step_shows_forward_and_backward_spans_with_tokens(
    exporter: tuple[InMemorySpanExporter, TracerProvider], tmp_path: Path
) -> None:
    spans, provider = exporter
    llm = ScriptedLLM(reply, model="scripted")
    result = sg.fit(
        graph(),
        EXAMPLES[:2],
        NumericMatch(),
        gate=EXAMPLES[2:4],
        test=EXAMPLES[4:],
        llms={"forward": llm, "backward": llm, "optimizer": llm},
        run_dir=tmp_path / "run",
        steps=1,
        tracer=telemetry.enable(provider),
    )
    assert result.final_test == 1.0
    done = spans.get_finished_spans()
    names = {s.name for s in done}
    assert {"semgrad.step", "semgrad.forward", "semgrad.node", "semgrad.backward",
            "semgrad.proposal", "semgrad.gate", "chat scripted"} <= names  # fmt: skip

    calls = _by_name(done, "chat scripted")
    by_phase = {str(s.attributes["semgrad.phase"]) for s in calls if s.attributes}
    assert {"forward", "backward", "optimizer", "evaluation"} <= by_phase
    for call in calls:
        attrs = dict(call.attributes or {})
        assert attrs["gen_ai.operation.name"] == "chat"
        assert attrs["gen_ai.request.model"] == "scripted"
        assert int(attrs["gen_ai.usage.input_tokens"]) > 0  # type: ignore[arg-type]
        assert int(attrs["gen_ai.usage.output_tokens"]) > 0  # type: ignore[arg-type]
        assert attrs["semgrad.node"] in ("hint", "final")
        # No prompt or reply text unless capture_content.
        assert "gen_ai.input.messages" not in attrs and "gen_ai.output.messages" not in attrs
        assert not any(SECRET_QUESTION in str(v) for v in attrs.values())

    # The tree: model calls under their node, nodes under a forward pass, and the
    # step's backward pass, proposal and gate under the step.
    ids = {s.context.span_id: s for s in done}

    def parent(s: ReadableSpan) -> ReadableSpan:
        assert s.parent is not None
        return ids[s.parent.span_id]

    forward_call = next(
        s for s in calls if s.attributes and s.attributes["semgrad.phase"] == "forward"
    )
    assert parent(forward_call).name == "semgrad.node"
    assert parent(parent(forward_call)).name == "semgrad.forward"
    [step] = _by_name(done, "semgrad.step")
    assert step.attributes is not None and step.attributes["semgrad.step"] == 0
    for name in ("semgrad.backward", "semgrad.proposal", "semgrad.gate"):
        assert all(parent(s) is step for s in _by_name(done, name)), name
    backward_call = next(
        s for s in calls if s.attributes and s.attributes["semgrad.phase"] == "backward"
    )
    assert parent(backward_call).name == "semgrad.backward"


def test_capture_content_records_prompts_and_replies(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    spans, provider = exporter
    ctx = sg.RunContext(
        llms={"forward": ScriptedLLM(reply)},
        tracer=telemetry.enable(provider, capture_content=True),
    )
    trace = asyncio.run(sg.forward(graph(), {"question": SECRET_QUESTION}, ctx))
    assert trace.ok
    call = next(s for s in spans.get_finished_spans() if s.name.startswith("chat "))
    attrs = dict(call.attributes or {})
    assert SECRET_QUESTION in json.loads(str(attrs["gen_ai.input.messages"]))[-1]["content"]
    assert json.loads(str(attrs["gen_ai.output.messages"])) == [
        {"role": "assistant", "content": "Answer: 0"}
    ]


def test_a_failed_call_is_an_error_span(
    exporter: tuple[InMemorySpanExporter, TracerProvider],
) -> None:
    from opentelemetry.trace import StatusCode

    spans, provider = exporter
    ctx = sg.RunContext(
        llms={"forward": ScriptedLLM([RuntimeError("boom")])}, tracer=telemetry.enable(provider)
    )
    trace = asyncio.run(sg.forward(graph(), {"question": "add: 1 2"}, ctx))
    assert not trace.ok
    call = next(s for s in spans.get_finished_spans() if s.name.startswith("chat "))
    assert call.status.status_code is StatusCode.ERROR


def test_without_a_tracer_nothing_is_imported() -> None:
    code = (
        "import sys, asyncio, semgrad as sg\n"
        "from semgrad.llm.fakes import EchoLLM\n"
        "g = sg.graph_from_dict({'name': 'g', 'inputs': ['q'], 'nodes': [{'type': 'llm', "
        "'name': 'a', 'inputs': ['q'], 'instruction': 'x'}], 'output': 'a'})\n"
        "ctx = sg.RunContext(llms={'forward': EchoLLM()})\n"
        "asyncio.run(sg.forward(g, {'q': 'hi'}, ctx))\n"
        "print(any(m.startswith('opentelemetry') for m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
