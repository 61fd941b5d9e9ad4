"""The one-serving-path check: semgrad's initial 3-node program, sent through the proxy.

    python identity_adapter.py TASK.json OUT.json

Not an optimizer. It predicts the test set with the initial instructions, sending for each
node exactly the request semgrad's executor sends (one user message in `render_forward`'s
layout, the node's max_tokens and temperature, top_p 1, seed 0, no stop), hint replies
stripped as semgrad strips them, the final reply stripped. Through the decide runner's
proxy (upstream mode) these are semgrad's own requests, so the shared response cache or the
same model answers them: its per-item results must equal the ``initial`` cell's.

Standard library only, so it runs in any Python (the decide runner uses its own).
"""

from __future__ import annotations

from common import (
    AdapterResult,
    Clock,
    Item,
    TaskFile,
    adapter_main,
    chat,
    node_body,
    predict_all,
)


def run(task: TaskFile, result: AdapterResult) -> None:
    base_url = task.base_url("test")
    instructions = task.instructions
    temperature = float(task.data.get("temperature", 0.0))

    def node(name: str, question: str, hints: list[str]) -> str:
        body = node_body(
            task, name, instructions[name], question, hints,
            temperature=temperature, top_p=1.0, seed=0,
        )  # fmt: skip
        text = chat(base_url, body).strip()
        if not text:  # semgrad records an empty reply as the node's failure
            raise ValueError(f"node {name}: the model returned an empty reply")
        return text

    def predict(item: Item) -> str:
        hints = [node("hint_1", item.question, []), node("hint_2", item.question, [])]
        return node("final", item.question, hints)

    clock = Clock()
    result.optimizer = "none (the initial program)"
    result.optimized = {"instructions": instructions}
    result.predictions = predict_all(task.items("test"), predict, threads=task.concurrency)
    result.test_seconds = clock.seconds()
    result.status = "ok"


if __name__ == "__main__":
    raise SystemExit(adapter_main(run, "semgrad-identity", []))
