"""benchmarks/demo_prefix.py: its pure parts and --help, never a model (the lead runs it)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from semgrad.data.tasks import load_task
from semgrad.evaluation.metrics import task_metric
from semgrad.llm.local import parse_reply

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "demo_prefix.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_prefix", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["demo_prefix"] = module
    spec.loader.exec_module(module)
    return module


def test_help_works_without_loading_anything() -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "--limit" in done.stdout and "--demos" in done.stdout and "prompt cache" in done.stdout


def test_the_graph_has_k_labelled_demos_its_metric_scores_1() -> None:
    bench = _module()
    train = load_task("arith:train")
    metric = task_metric(train)
    graph = bench.demo_graph(train.examples, metric, 3)
    demos = graph.demos("answer")
    assert len(demos) == 3
    by_question = {e.inputs["question"]: e for e in train.examples}
    for demo in demos:
        assert metric(demo.output, by_question[demo.inputs["question"]]).correct


def test_summaries_and_comparison() -> None:
    bench = _module()
    off = [bench.Call(f"e{i}", 100, 0, 10, 1.0, f"r{i}") for i in range(3)]
    on = [bench.Call("e0", 100, 0, 10, 1.0, "r0")]
    on += [bench.Call(f"e{i}", 100, 80, 10, 0.5, "x" if i == 2 else f"r{i}") for i in (1, 2)]
    s_off, s_on = bench.summarize(off), bench.summarize(on)
    assert s_off["processed_prompt_tokens"] == 300 and s_off["cached_prompt_tokens"] == 0
    assert s_on["processed_prompt_tokens"] == 140 and s_on["median_processed_per_call"] == 20
    same = bench.compare(off, on)
    assert same == {
        "replies_compared": 3,
        "differing_replies": 1,
        "differing_examples": ["e2"],
        "byte_identical": False,
    }
    assert bench.compare(off, off)["byte_identical"]
    assert bench.summarize([]) == {"calls": 0}


def _raw(**extra: object) -> dict[str, object]:
    usage = {"prompt_tokens": 120, "completion_tokens": 5}
    usage.update(extra.pop("usage_extra", {}))  # type: ignore[arg-type]
    return {
        "choices": [{"finish_reason": "stop", "message": {"content": "Answer: 3"}}],
        "usage": usage,
        **extra,
    }


def test_the_embedded_reply_says_how_many_prompt_tokens_came_from_the_cache() -> None:
    timings = parse_reply(_raw(timings={"cache_n": 96, "prompt_n": 24}), model="m").usage
    assert (timings.cached_prompt_tokens, timings.processed_prompt_tokens) == (96, 24)
    openai = parse_reply(
        _raw(usage_extra={"prompt_tokens_details": {"cached_tokens": 64}}), model="m"
    ).usage
    assert openai.cached_prompt_tokens == 64
    assert parse_reply(_raw(), model="m").usage.cached_prompt_tokens == 0
    odd = parse_reply(_raw(timings={"cache_n": 9999}), model="m").usage
    assert odd.cached_prompt_tokens == 120  # never more than the prompt
    assert (timings + openai).cached_prompt_tokens == 160
