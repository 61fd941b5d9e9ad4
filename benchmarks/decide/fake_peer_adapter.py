"""A stand-in peer adapter for the decide runner's offline tests (standard library only).

    python fake_peer_adapter.py TASK.json OUT.json

Optimize phase: the final node's prompt for the first 4 validation items, then 2 of them
again (cache hits of the cell's own requests: not counted again), then requests to the strong model until the proxy
refuses one for the budget, taking the last ``<improved>`` reply as its final instruction,
then one more forward request (refused too: a phase stops at its first refusal). Test
phase: every test item's final prompt with that instruction. Notes say what it saw.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "peers"))

from common import (
    BUDGET_MARKER,
    AdapterResult,
    ChatError,
    Item,
    TaskFile,
    adapter_main,
    chat,
    node_body,
    predict_all,
)


def run(task: TaskFile, result: AdapterResult) -> None:
    optimize = task.base_url("optimize")
    instruction = task.instructions["final"]

    def forward(base_url: str, item: Item, text: str) -> str:
        return chat(base_url, node_body(task, "final", text, item.question))

    val = task.items("val")
    result.notes.append(f"remaining before: {task.proxy.remaining('optimize')}")
    for item in [*val[:4], *val[:2]]:
        forward(optimize, item, instruction)
    k = 0
    while True:
        body = {
            "model": task.optimizer_model,
            "messages": [
                {"role": "system", "content": "You improve instructions."},
                {"role": "user", "content": [{"type": "text", "text": f"Improve {k}: "}]},
            ],
            "max_completion_tokens": task.optimizer_max_tokens,
            "temperature": 0.0,
            "response_format": {"type": "json_object"},
        }
        try:
            reply = chat(optimize, body)
        except ChatError as exc:
            result.notes.append(f"strong refused after {k}: {exc}")
            result.budget_exhausted = BUDGET_MARKER in str(exc)
            break
        found = re.search(r"<improved>(.*?)</improved>", reply, re.S)
        instruction = found.group(1).strip() if found else instruction
        k += 1
    try:
        forward(optimize, val[5], instruction)
        result.notes.append("forward answered after the refusal")
    except ChatError as exc:
        result.notes.append(f"forward refused after the refusal: {exc}")
    result.notes.append(f"remaining after: {task.proxy.remaining('optimize')}")
    result.optimized = {"final": instruction}
    result.history = [{"strong_requests": k}]
    test = task.base_url("test")
    result.predictions = predict_all(
        task.items("test"), lambda item: forward(test, item, instruction).strip(), threads=4
    )
    result.status = "ok"


if __name__ == "__main__":
    raise SystemExit(adapter_main(run, "fake-peer", []))
