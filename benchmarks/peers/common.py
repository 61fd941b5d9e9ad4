"""What every peer adapter shares: the task file, the proxy's metric, the result file.

The adapters run in the peers' own virtual environments, where semgrad is not installed,
so this module uses the standard library only. It is imported by the adapters (and by
`run.py` for the file formats); it imports no peer library.

The task file (JSON, written by `run.py`)::

    {"task": "bbh:object_counting", "method": "copro", "seed": 0, "budget": 150,
     "train": [{"id": ..., "question": ..., "target": ...}], "val": [...], "test": [...],
     "instructions": {"hint_1": ..., "hint_2": ..., "final": ...},
     "max_tokens": {"hint_1": 96, "hint_2": 96, "final": 320},
     "optimizer_max_tokens": 512, "answer_format": "...",
     "models": {"forward": "qwen2.5-coder-0.5b", "optimizer": "qwen2.5-coder-1.5b"},
     "proxy": {"url": ..., "run": ..., "optimize_base_url": ..., "test_base_url": ...},
     "api_key_env": "SEMGRAD_PEERS_API_KEY", "concurrency": 4, "options": {...}}

The result file (JSON, written by the adapter, completed by `run.py`): see `AdapterResult`.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import sys
import tempfile
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

BUDGET_MARKER = "semgrad-proxy: budget exhausted"  # the proxy's refusal text (proxy.py)
NODES = ("hint_1", "hint_2", "final")


# --- the task ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    id: str
    question: str
    target: str


@dataclass(frozen=True)
class TaskFile:
    data: Mapping[str, Any]

    @classmethod
    def read(cls, path: str | Path) -> TaskFile:
        return cls(json.loads(Path(path).read_text()))

    def items(self, split: str) -> list[Item]:
        return [Item(str(e["id"]), str(e["question"]), str(e["target"])) for e in self.data[split]]

    @property
    def instructions(self) -> dict[str, str]:
        return {node: str(self.data["instructions"][node]) for node in NODES}

    def max_tokens(self, node: str) -> int:
        return int(self.data["max_tokens"][node])

    @property
    def optimizer_max_tokens(self) -> int:
        return int(self.data["optimizer_max_tokens"])

    @property
    def forward_model(self) -> str:
        return str(self.data["models"]["forward"])

    @property
    def optimizer_model(self) -> str:
        return str(self.data["models"]["optimizer"])

    @property
    def seed(self) -> int:
        return int(self.data["seed"])

    @property
    def budget(self) -> int:
        return int(self.data["budget"])

    @property
    def concurrency(self) -> int:
        return int(self.data.get("concurrency", 4))

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.data.get("options") or {})

    def base_url(self, phase: str) -> str:
        return str(self.data["proxy"][f"{phase}_base_url"])

    @property
    def api_key(self) -> str:
        # The embedded servers need no key; clients insist on one, so a dummy is used.
        return os.environ.get(str(self.data.get("api_key_env", "")), "") or "unused"

    @property
    def proxy(self) -> Proxy:
        return Proxy(str(self.data["proxy"]["url"]), str(self.data["proxy"]["run"]))


# --- the proxy's metric and counters ------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    value: float
    feedback: str
    prediction: str


class Proxy:
    """The proxy's admin endpoints: the run's metric and its call counters."""

    def __init__(self, url: str, run: str) -> None:
        self.url = url.rstrip("/")
        self.run = run

    def _request(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            headers={"Content-Type": "application/json"},
            method="GET" if data is None else "POST",
        )
        with urllib.request.urlopen(request, timeout=120) as reply:
            result: dict[str, Any] = json.loads(reply.read())
        return result

    def score(self, example_id: str, text: str) -> Verdict:
        """semgrad's metric for the task, applied by the proxy (the same one scores the test)."""
        data = self._request("/_admin/score", {"run": self.run, "id": example_id, "text": text})
        return Verdict(float(data["value"]), str(data["feedback"]), str(data["prediction"]))

    def calls(self, phase: str) -> int:
        stats = self._request(f"/_admin/runs/{self.run}")
        return int(stats["phases"].get(phase, {}).get("calls", 0))

    def remaining(self, phase: str) -> int | None:
        stats = self._request(f"/_admin/runs/{self.run}")
        if "remaining" in stats:  # upstream mode: the proxy knows the budgets by role
            left = stats["remaining"].get(phase)
            return None if left is None else int(left)
        budget = stats["budgets"].get(phase)
        if budget is None:
            return None
        return max(0, int(budget) - int(stats["phases"].get(phase, {}).get("calls", 0)))


# --- a chat request with the standard library ------------------------------------------------


class ChatError(Exception):
    """The proxy answered a chat request with an HTTP error (its message is the text)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


def chat(base_url: str, body: Mapping[str, Any], timeout: float = 3600.0) -> str:
    """POST one chat completions request (no client library) and return the first
    choice's text; an HTTP error raises `ChatError` with the proxy's message (a budget
    refusal carries `BUDGET_MARKER`)."""
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            data = json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        try:
            message = str(json.loads(exc.read())["error"]["message"])
        except (ValueError, KeyError, TypeError):
            message = str(exc)
        raise ChatError(exc.code, message) from None
    return str(data["choices"][0]["message"]["content"] or "")


# --- the forward prompt ---------------------------------------------------------------------------


def render_prompt(instruction: str, question: str, hints: Sequence[str] = ()) -> str:
    """The user message of one node, in the layout semgrad's `render_forward` uses.

    Adapters that control the prompt text (TextGrad, Trace) send exactly what semgrad sends,
    so the comparison is between optimizers, not between prompt layouts.
    """
    parts = [f"Question:\n{question.strip()}"]
    parts += [f"Hint {i}:\n{hint.strip()}" for i, hint in enumerate(hints, start=1)]
    parts.append(f"Instruction:\n{instruction.strip()}")
    return "\n\n".join(parts)


def node_body(
    task: TaskFile,
    node: str,
    instruction: str,
    question: str,
    hints: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """The chat request of one node of the 3-node program for the forward model, in
    semgrad's layout (`render_prompt`) with the node's max_tokens; `extra` adds fields."""
    return {
        "model": task.forward_model,
        "messages": [{"role": "user", "content": render_prompt(instruction, question, hints)}],
        "temperature": 0.0,
        "max_tokens": task.max_tokens(node),
        **extra,
    }


# --- budget errors ----------------------------------------------------------------------------------


def is_budget_error(exc: BaseException | None) -> bool:
    """True when `exc`, or anything it was raised from, is the proxy's budget refusal."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if BUDGET_MARKER in str(exc) or BUDGET_MARKER in repr(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


class BudgetExhausted(Exception):
    """Raised by an adapter's own loop when the proxy refused a call for the budget."""


# --- the result ---------------------------------------------------------------------------------------


@dataclass
class Prediction:
    id: str
    text: str
    error: str = ""


@dataclass
class AdapterResult:
    status: str = "failed"  # ok | failed | cannot-express
    error: str = ""
    library: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    optimizer: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    budget_exhausted: bool = False
    optimized: dict[str, Any] = field(default_factory=dict)
    predictions: list[Prediction] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    optimize_seconds: float = 0.0
    test_seconds: float = 0.0

    def write(self, path: str | Path) -> None:
        write_json(Path(path), asdict(self))


def write_json(path: Path, data: Any) -> None:
    """Write atomically: a reader (or a resumed run) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=2, ensure_ascii=False)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def versions(dists: Iterable[str]) -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for dist in dists:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[dist] = importlib.metadata.version(dist)
    return found


def error_text(exc: BaseException, limit: int = 4000) -> str:
    text = "".join(traceback.format_exception(exc))
    return text[-limit:]


def predict_all(
    items: Sequence[Item], predict: Callable[[Item], str], *, threads: int
) -> list[Prediction]:
    """Run `predict` over `items` on a thread pool; a failure is recorded per example."""

    def one(item: Item) -> Prediction:
        try:
            return Prediction(item.id, predict(item))
        except Exception as exc:
            return Prediction(item.id, "", f"{type(exc).__name__}: {exc}"[:2000])

    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        return list(pool.map(one, items))


def score_items(
    task: TaskFile, items: Sequence[Item], predict: Callable[[Item], str]
) -> tuple[float, list[Prediction]]:
    """Predict `items` and score them with the task's metric (through the proxy): the
    accuracy and the predictions. A refusal for budget ends the evaluation."""
    predictions = predict_all(items, predict, threads=task.concurrency)
    if any(BUDGET_MARKER in p.error for p in predictions):
        raise BudgetExhausted("the budget ran out during an evaluation")
    scores = [task.proxy.score(p.id, p.text).value if not p.error else 0.0 for p in predictions]
    return (sum(scores) / len(scores) if scores else 0.0), predictions


class Clock:
    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 2)


def adapter_main(
    run: Callable[[TaskFile, AdapterResult], None], library: str, dists: Sequence[str]
) -> int:
    """The adapters' shared entry point: ``python ADAPTER.py TASK.json OUT.json [options]``.

    `run` fills in the result; whatever it raises is recorded as the result's error, and
    the result file is written in every case, so the orchestrator always has one.
    """
    if len(sys.argv) < 3:
        print(f"usage: {sys.argv[0]} TASK.json OUT.json", file=sys.stderr)
        return 2
    task = TaskFile.read(sys.argv[1])
    result = AdapterResult(library=library, versions=versions(dists))
    try:
        run(task, result)
    except Exception as exc:
        result.status = "failed"
        result.error = error_text(exc)
    result.write(sys.argv[2])
    print(
        f"[{library}] status={result.status} budget_exhausted={result.budget_exhausted} "
        f"optimize={result.optimize_seconds}s test={result.test_seconds}s",
        flush=True,
    )
    if result.error:
        print(result.error[-1500:], file=sys.stderr, flush=True)
    return 0
