"""The peer comparison: TextGrad, DSPy (COPRO, MIPROv2, GEPA) and Trace on the hint graph.

    python benchmarks/peers/run.py --task bbh:object_counting --train 10 --val 10 --test 20 \\
        --budget 150 --methods textgrad,copro,miprov2,gepa,trace --seeds 0

Runs in the semgrad venv. It loads the splits with semgrad (split seed 0: the first N of
train, of val and of test, checked disjoint), starts the two embedded models with
`LocalServer` (or uses running ones: --forward-url, --optimizer-url) and the counting,
caching proxy (`proxy.py`) in front of them, then runs each method's adapter in its peer's
own venv (`setup_peers.py`) as a subprocess with a wall-time limit. The adapter optimizes
through ``/<run>/optimize/v1`` (capped at --budget calls) and predicts the test set through
``/<run>/test/v1``; this script scores the test predictions with semgrad's metric for the
task and writes one JSON per (task, method, seed) under benchmarks/peers/results/.

Resumable: a (task, method, seed) whose result file says ok or cannot-express is skipped
(--force redoes it); anything else is run again, and the response cache answers every call
the earlier attempt made, so finished work costs no model time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import write_json
from proxy import PeerProxy, Scorer
from setup_peers import peers_root, setup_file, venv_python

from semgrad.data import Example, load_task
from semgrad.evaluation.metrics import Metric, task_metric
from semgrad.graph import LLMNode, hint_graph
from semgrad.llm.cache import Cache
from semgrad.llm.models import DEFAULT_BACKWARD_MODEL, DEFAULT_FORWARD_MODEL

HERE = Path(__file__).resolve().parent
SCHEMA = "semgrad-peers/1"
DONE = ("ok", "cannot-express")
ANSWER_FORMAT = "End with a last line of the form 'Answer: <answer>'."


def _system() -> tuple[dict[str, str], dict[str, int], float]:
    """The instructions, max_tokens and temperature of semgrad's hint_graph(2), per node."""
    nodes = [hint_graph(2).node(name) for name in ("hint_1", "hint_2", "final")]
    llm_nodes = [n for n in nodes if isinstance(n, LLMNode)]
    (temperature,) = {n.temperature for n in llm_nodes}
    return (
        {n.name: n.instruction.value for n in llm_nodes},
        {n.name: n.max_tokens for n in llm_nodes},
        temperature,
    )


INSTRUCTIONS, MAX_TOKENS, TEMPERATURE = _system()


@dataclass(frozen=True)
class Method:
    name: str
    peer: str | None  # the venv (setup_peers.PEERS key); None: this Python (stdlib adapters)
    script: str  # relative to benchmarks/peers, or absolute
    args: tuple[str, ...] = ()

    def python(self) -> Path:
        return Path(sys.executable) if self.peer is None else venv_python(self.peer)


METHODS: dict[str, Method] = {
    "textgrad": Method("textgrad", "textgrad", "textgrad_adapter.py"),
    "copro": Method("copro", "dspy", "dspy_adapter.py", ("--optimizer", "copro")),
    "miprov2": Method("miprov2", "dspy", "dspy_adapter.py", ("--optimizer", "miprov2")),
    "gepa": Method("gepa", "dspy", "dspy_adapter.py", ("--optimizer", "gepa")),
    "bootstrap-rs": Method(
        "bootstrap-rs", "dspy", "dspy_adapter.py", ("--optimizer", "bootstrap-rs")
    ),
    "trace": Method("trace", "trace", "trace_adapter.py"),
    # Not an optimizer: the initial program through DSPy's own prompt layout, the baseline
    # the DSPy optimizers are paired against.
    "dspy-initial": Method("dspy-initial", "dspy", "dspy_adapter.py", ("--optimizer", "none")),
}
# Not an optimizer: semgrad's own initial prompts sent through the proxy (the decide
# runner's one-serving-path check; standard library only, so it runs in any Python).
IDENTITY = Method("identity", None, "identity_adapter.py")


# --- the splits -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Splits:
    task: str
    train: tuple[Example, ...]
    val: tuple[Example, ...]
    test: tuple[Example, ...]
    metric: Metric

    def by_id(self) -> dict[str, Example]:
        return {e.id: e for e in (*self.train, *self.val, *self.test)}


def load_splits(task: str, sizes: Mapping[str, int], data_dir: str | None) -> Splits:
    """The first N examples of each split (split seed 0), checked disjoint."""
    loaded = {which: load_task(f"{task}:{which}", data_dir=data_dir, seed=0) for which in sizes}
    parts: dict[str, tuple[Example, ...]] = {}
    for which, n in sizes.items():
        examples = loaded[which].examples
        if len(examples) < n:
            raise SystemExit(f"{task}:{which} has {len(examples)} examples, fewer than {n}")
        parts[which] = examples[:n]
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        ids = {e.id for e in parts[a]} & {e.id for e in parts[b]}
        texts = {_question(e) for e in parts[a]} & {_question(e) for e in parts[b]}
        if ids or texts:
            raise SystemExit(f"{task}: the {a} and {b} splits overlap ({len(ids | texts)} items)")
    return Splits(task, parts["train"], parts["val"], parts["test"], task_metric(loaded["test"]))


def _question(example: Example) -> str:
    if set(example.inputs) != {"question"}:
        raise SystemExit(
            f"example {example.id} has inputs {sorted(example.inputs)}; the hint graph reads "
            f"one input, 'question'"
        )
    return example.inputs["question"].strip()


def _items(examples: Sequence[Example]) -> list[dict[str, str]]:
    return [{"id": e.id, "question": _question(e), "target": e.target} for e in examples]


def scorer_for(splits: Splits) -> Scorer:
    examples = splits.by_id()

    def score(example_id: str, text: str) -> tuple[float, str, str]:
        verdict = splits.metric(text, examples[example_id])
        return verdict.value, verdict.feedback, verdict.prediction

    return score


# --- the models -------------------------------------------------------------------------------------


@contextlib.contextmanager
def model_servers(args: argparse.Namespace) -> Iterator[list[str]]:
    """Base URLs of the forward and optimizer servers: given, started here, or fakes."""
    if args.fake:
        from semgrad.llm.fakes import FakeOpenAIServer

        with (
            FakeOpenAIServer(reply=_fake_reply, model=args.forward_model) as fwd,
            FakeOpenAIServer(reply=_fake_reply, model=args.optimizer_model) as opt,
        ):
            yield [fwd.base_url, opt.base_url]
        return
    with contextlib.ExitStack() as stack:
        urls: list[str] = []
        for url, model, slots, ctx in (
            (args.forward_url, args.forward_model, args.forward_slots, 4096),
            (args.optimizer_url, args.optimizer_model, args.optimizer_slots, args.optimizer_ctx),
        ):
            if url:
                urls.append(url)
                continue
            from semgrad.llm.serve import LocalServer

            print(f"[peers] starting {model} ({slots} slots) ...", flush=True)
            server = stack.enter_context(
                LocalServer(model, port=0, n_parallel=slots, n_ctx_per_slot=ctx)
            )
            urls.append(server.base_url)
        yield urls


def _fake_reply(body: Mapping[str, Any]) -> str:
    """Replies for --fake: enough shape for every adapter's parsing, no intelligence."""
    messages = body.get("messages") or []
    text = json.dumps(messages)
    if "IMPROVED_VARIABLE" in text:  # TextGrad's optimizer
        return "<IMPROVED_VARIABLE>Think carefully, then answer.</IMPROVED_VARIABLE>"
    system = next((str(m.get("content")) for m in messages if m.get("role") == "system"), "")
    if "Your output fields are:" in system:  # DSPy: fill every output field it asks for
        block = system.split("Your output fields are:", 1)[1].split("All interactions", 1)[0]
        fields = re.findall(r"`(\w+)`", block)
        if body.get("response_format"):
            return json.dumps({f: "Answer: 1" for f in fields})
        return "".join(f"[[ ## {f} ## ]]\nAnswer: 1\n\n" for f in fields) + "[[ ## completed ## ]]"
    if '"suggestion"' in text:  # Trace's OptoPrime
        return json.dumps({"reasoning": "fake", "answer": "", "suggestion": {}})
    return "Answer: 1"


# --- one method ---------------------------------------------------------------------------------------


def result_path(results: Path, args: argparse.Namespace, method: str, seed: int) -> Path:
    """results/<task>/<sizes and budget>/<method>-s<seed>.json: runs of other sizes never
    count as done for this one."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", args.task)
    config = f"train{args.train}-val{args.val}-test{args.test}-budget{args.budget}"
    return results / slug / config / f"{method}-s{seed}.json"


def is_done(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("status") in DONE
    except (OSError, ValueError):
        return False


def run_method(
    args: argparse.Namespace,
    method: Method,
    seed: int,
    splits: Splits,
    proxy: PeerProxy,
    models: Mapping[str, str],
) -> dict[str, Any]:
    run_name = re.sub(r"[^A-Za-z0-9._-]+", "_", f"{splits.task}.{method.name}.s{seed}")
    if args.fake:
        run_name = f"fake.{run_name}"
    proxy.register(
        run_name,
        budgets={"optimize": args.budget},
        scorer=scorer_for(splits),
        cache_scope=f"{run_name}|train{args.train}|val{args.val}",
    )
    work = Path(args.work) / run_name
    data = task_data(
        splits,
        method.name,
        seed,
        args.budget,
        models,
        proxy,
        run_name,
        optimizer_max_tokens=args.optimizer_max_tokens,
        concurrency=args.concurrency,
        options=_options(args),
    )
    setup = setup_record(method.peer) if method.peer else {"status": "ok"}
    started = time.monotonic()
    adapter, status, error = run_adapter(method, data, work, args.timeout, setup)
    wall = round(time.monotonic() - started, 2)
    stats = proxy.stats(run_name)["phases"]
    return {
        "schema": SCHEMA,
        "task": splits.task,
        "method": method.name,
        "seed": seed,
        "split_seed": 0,
        "status": _final_status(status, error),
        "error": error,
        "library": {
            "name": adapter.get("library") or method.peer,
            "versions": adapter.get("versions") or setup.get("versions") or {},
            "setup": setup,
        },
        "optimizer": adapter.get("optimizer", ""),
        "settings": adapter.get("settings", {}),
        "models": dict(models),
        "protocol": {
            "forward_max_tokens": MAX_TOKENS,
            "forward_temperature": TEMPERATURE,
            "optimizer_max_tokens": args.optimizer_max_tokens,
            "concurrency": args.concurrency,
            "options": _options(args),
            "timeout_seconds": args.timeout,
        },
        "sizes": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "budget": {
            "optimize_calls": args.budget,
            "exhausted": bool(adapter.get("budget_exhausted")),
        },
        "test": _score(splits, adapter.get("predictions") or []),
        "calls": {
            "optimize": stats.get("optimize", {}),
            "test": stats.get("test", {}),
        },
        "wall_seconds": {
            "optimize": adapter.get("optimize_seconds"),
            "test": adapter.get("test_seconds"),
            "adapter_total": wall,
        },
        "optimized": adapter.get("optimized", {}),
        "history": adapter.get("history", []),
        "notes": adapter.get("notes", []),
        "machine": {"nproc": os.cpu_count(), "platform": platform.platform()},
        "fake_models": bool(args.fake),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "work_dir": str(work),
    }


def task_data(
    splits: Splits,
    method: str,
    seed: int,
    budget: int,
    models: Mapping[str, str],
    proxy: PeerProxy,
    run_name: str,
    *,
    optimizer_max_tokens: int,
    concurrency: int,
    options: Mapping[str, Any],
    budgets: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """The task file an adapter reads (`common.TaskFile`). `budget` sizes the adapters'
    settings; `budgets` (the decide runner's requests per role) is informative."""
    data: dict[str, Any] = {
        "task": splits.task,
        "method": method,
        "seed": seed,
        "budget": budget,
        "train": _items(splits.train),
        "val": _items(splits.val),
        "test": _items(splits.test),
        "instructions": INSTRUCTIONS,
        "max_tokens": MAX_TOKENS,
        "temperature": TEMPERATURE,
        "optimizer_max_tokens": optimizer_max_tokens,
        "answer_format": ANSWER_FORMAT,
        "metric": splits.metric.name,
        "models": dict(models),
        "proxy": {
            "url": proxy.url,
            "run": run_name,
            "optimize_base_url": proxy.base_url(run_name, "optimize"),
            "test_base_url": proxy.base_url(run_name, "test"),
        },
        "api_key_env": "SEMGRAD_PEERS_API_KEY",
        "concurrency": concurrency,
        "options": dict(options),
    }
    if budgets is not None:
        data["budgets"] = dict(budgets)
    return data


def run_adapter(
    method: Method, data: Mapping[str, Any], work: Path, timeout: float, setup: Mapping[str, Any]
) -> tuple[dict[str, Any], str, str]:
    """Write the task file into `work`, run the method's adapter on it (in its peer's venv)
    and read its result: (the adapter's result, its status, the error text)."""
    work.mkdir(parents=True, exist_ok=True)
    task_file, out_file, log_file = work / "task.json", work / "adapter.json", work / "adapter.log"
    out_file.unlink(missing_ok=True)
    write_json(task_file, data)
    adapter: dict[str, Any] = {}
    status, error = "failed", ""
    if setup.get("status") != "ok":
        error = f"the {method.peer} venv is not usable ({setup.get('status', 'missing')}): " + str(
            setup.get("error") or "run benchmarks/peers/setup_peers.py"
        )
        return adapter, status, error
    command = [str(method.python()), str(HERE / method.script)]
    command += [str(task_file), str(out_file), *method.args]
    run = data["proxy"]["run"]
    print(f"[peers] {run}: running {method.script} {' '.join(method.args)}", flush=True)
    error = _run_adapter(command, work, log_file, timeout)
    if out_file.exists():
        adapter = json.loads(out_file.read_text())
        status = str(adapter.get("status", "failed"))
        error = "\n".join(filter(None, [str(adapter.get("error") or ""), error]))
    elif not error:
        error = f"the adapter wrote no result; see {log_file}"
    return adapter, status, error


def _final_status(status: str, error: str) -> str:
    """The adapter's own verdict, unless the run was stopped at the wall-time limit."""
    return "failed" if "wall-time limit" in error else status


def _options(args: argparse.Namespace) -> dict[str, Any]:
    """--option KEY=VALUE pairs; a VALUE that parses as JSON is passed as that value."""
    options: dict[str, Any] = {}
    for pair in args.option:
        key, _, value = pair.partition("=")
        try:
            options[key] = json.loads(value)
        except ValueError:
            options[key] = value
    return options


def setup_record(peer: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = json.loads(setup_file(peer).read_text())
        return record
    except (OSError, ValueError):
        return {"status": "missing", "error": f"no {setup_file(peer)}; run setup_peers.py"}


def _run_adapter(command: list[str], work: Path, log: Path, timeout: float) -> str:
    """Run one adapter; '' when it exited by itself, else why it was stopped or failed."""
    env = {
        **os.environ,
        "TEXTGRAD_LOG_DIR": str(work / "textgrad-logs"),
        "DSPY_CACHEDIR": str(work / "dspy-cache"),
        "PYTHONUNBUFFERED": "1",
        # LiteLLM and DSPy fetch a model price list from the internet unless told not to.
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    env.pop("PYTHONPATH", None)  # the peer venv must not see the semgrad venv's packages
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return f"stopped at the wall-time limit of {timeout:.0f} s; see {log}"
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        return f"the adapter exited with code {code}; last lines of {log}:\n{tail}"
    return ""


def _score(splits: Splits, predictions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """semgrad's metric on every test example; a missing or failed prediction scores 0."""
    by_id = {str(p["id"]): p for p in predictions}
    rows: list[dict[str, Any]] = []
    for example in splits.test:
        p = by_id.get(example.id, {})
        text, error = str(p.get("text") or ""), str(p.get("error") or "")
        verdict = splits.metric(text, example)
        rows.append(
            {
                "id": example.id,
                "target": example.target,
                "score": verdict.value,
                "prediction": verdict.prediction,
                "text": text,
                "error": error if p else "no prediction",
            }
        )
    n = len(rows)
    correct = sum(float(r["score"]) for r in rows)
    return {
        "accuracy": round(correct / n, 4) if n else 0.0,
        "correct": correct,
        "n": n,
        "errors": sum(1 for r in rows if r["error"]),
        "examples": rows,
    }


# --- the command --------------------------------------------------------------------------------------


def summary_line(result: Mapping[str, Any]) -> str:
    opt = result.get("calls", {}).get("optimize", {})
    test = result.get("calls", {}).get("test", {})
    wall = result.get("wall_seconds", {})
    tokens = int(opt.get("prompt_tokens", 0)) + int(opt.get("completion_tokens", 0))
    return (
        f"{result['method']:<9} s{result['seed']} {result['status']:<14} "
        f"acc {result['test']['accuracy']:>6.1%}  "
        f"opt calls {opt.get('calls', 0):>4} (hits {opt.get('cache_hits', 0)}, "
        f"refused {opt.get('refused', 0)}) tokens {tokens:>7}  "
        f"test calls {test.get('calls', 0):>4}  wall {wall.get('adapter_total', 0):>7.1f}s"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", required=True, help="e.g. bbh:object_counting, gsm8k, arith")
    p.add_argument("--train", type=int, default=10)
    p.add_argument("--val", type=int, default=10)
    p.add_argument("--test", type=int, default=20)
    p.add_argument("--budget", type=int, default=150, help="model calls for the optimization")
    p.add_argument("--methods", default=",".join(METHODS), help=f"any of {','.join(METHODS)}")
    p.add_argument("--seeds", default="0", help="comma-separated optimizer seeds")
    p.add_argument("--data-dir", default=os.environ.get("SEMGRAD_DATA_DIR"))
    p.add_argument("--results", default=str(HERE / "results"))
    p.add_argument("--work", default=str(peers_root() / "work"), help="task files, adapter logs")
    p.add_argument("--cache", default=str(peers_root() / "cache.sqlite"))
    p.add_argument("--forward-url", help="a running server for the forward model")
    p.add_argument("--optimizer-url", help="a running server for the optimizer model")
    p.add_argument("--forward-model", default=DEFAULT_FORWARD_MODEL)
    p.add_argument("--optimizer-model", default=DEFAULT_BACKWARD_MODEL)
    p.add_argument("--forward-slots", type=int, default=4)
    p.add_argument("--optimizer-slots", type=int, default=2)
    p.add_argument("--optimizer-ctx", type=int, default=8192, help="tokens per optimizer slot")
    p.add_argument("--optimizer-max-tokens", type=int, default=512)
    p.add_argument("--concurrency", type=int, default=4, help="adapters' parallel examples")
    p.add_argument("--timeout", type=float, default=4 * 3600, help="wall seconds per method")
    p.add_argument("--option", action="append", default=[], help="KEY=VALUE for the adapters")
    p.add_argument("--force", action="store_true", help="redo finished (task, method, seed)s")
    p.add_argument(
        "--fake", action="store_true", help="scripted fake models: checks the wiring only"
    )
    args = p.parse_args(argv)
    unknown = [m for m in args.methods.split(",") if m not in METHODS]
    if unknown:
        p.error(f"unknown method(s) {', '.join(unknown)}; the methods are {', '.join(METHODS)}")
    if args.fake:
        args.results = str(Path(args.work) / "fake-results")
        args.cache = str(Path(args.work) / "fake-cache.sqlite")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = [METHODS[m] for m in args.methods.split(",")]
    results = Path(args.results)
    todo = [
        (m, s)
        for s in seeds
        for m in methods
        if args.force or not is_done(result_path(results, args, m.name, s))
    ]
    splits = load_splits(
        args.task, {"train": args.train, "val": args.val, "test": args.test}, args.data_dir
    )
    print(
        f"[peers] {args.task}: train {len(splits.train)}, val {len(splits.val)}, test "
        f"{len(splits.test)}, metric {splits.metric.name}, budget {args.budget} calls; "
        f"{len(todo)} of {len(seeds) * len(methods)} runs to do",
        flush=True,
    )
    if todo:
        models = {"forward": args.forward_model, "optimizer": args.optimizer_model}
        with (
            model_servers(args) as urls,
            Cache(args.cache) as cache,
            PeerProxy.from_servers(urls, cache) as proxy,
        ):
            missing = [m for m in models.values() if m not in proxy.upstreams]
            if missing:
                raise SystemExit(f"no server lists {missing}; they list {list(proxy.upstreams)}")
            print(f"[peers] proxy at {proxy.url} -> {proxy.upstreams}", flush=True)
            for method, seed in todo:
                result = run_method(args, method, seed, splits, proxy, models)
                write_json(result_path(results, args, method.name, seed), result)
                print(f"[peers] {summary_line(result)}", flush=True)
                if result["error"]:
                    print(f"[peers]   error: {result['error'][-600:]}", flush=True)
    print(f"[peers] results in {results}:")
    for seed in seeds:
        for method in methods:
            path = result_path(results, args, method.name, seed)
            if path.exists():
                print("  " + summary_line(json.loads(path.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
