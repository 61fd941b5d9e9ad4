"""The HTML report: sections, escaping, partial runs, errors, and a run the trainer wrote."""

from __future__ import annotations

import html
import json
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

import semgrad.report
from semgrad.data.example import Example
from semgrad.errors import DataError
from semgrad.evaluation.metrics import Score
from semgrad.llm.fakes import ScriptedLLM
from semgrad.llm.types import Request
from semgrad.optim.config import config_from_dict
from semgrad.optim.trainer import Splits, optimize
from semgrad.report import RunData, load_run, render_html, render_report
from semgrad.report.load import read_run
from semgrad.report.markup import Html, el, esc, word_diff

XSS = "<script>alert(1)</script>"


# -- building run directories by hand, in the format the trainer writes --------------------


def graph_spec(final_instruction: str = "Answer the question.") -> dict[str, Any]:
    return {
        "semgrad": 1,
        "name": "hints2",
        "inputs": ["question"],
        "nodes": [
            {
                "type": "llm",
                "name": "hint",
                "inputs": ["question"],
                "instruction": "Give a hint.",
                "role": "instruction",
                "requires_grad": True,
                "llm": "forward",
                "max_tokens": 96,
                "temperature": 0.0,
            },
            {"type": "function", "name": "clean", "inputs": ["hint"], "fn": "strip"},
            {
                "type": "llm",
                "name": "final",
                "inputs": ["question", "clean"],
                "instruction": final_instruction,
                "role": "instruction",
                "requires_grad": True,
                "llm": "forward",
                "max_tokens": 256,
                "temperature": 0.0,
            },
        ],
        "output": "final",
    }


def spend(calls: int, tokens: int) -> dict[str, dict[str, int]]:
    zero = {"cache_hits": 0, "errors": 0, "retries": 0}
    return {
        "forward": {**zero, "calls": calls, "prompt_tokens": tokens, "completion_tokens": 10},
        "backward": {**zero, "calls": 2, "prompt_tokens": 200, "completion_tokens": 20},
        "optimizer": {
            **zero,
            "calls": 3,
            "cache_hits": 1,
            "prompt_tokens": 300,
            "completion_tokens": 30,
        },
        "evaluation": {**zero, "calls": 6, "prompt_tokens": 120, "completion_tokens": 12},
    }


def step_record(
    step: int,
    *,
    new: str | None = "Answer the question in UPPERCASE.",
    accepted: bool = True,
    candidate: float | None = 0.75,
    incumbent: float | None = 0.5,
    reply: str = "a reply",
    gate: dict[str, Any] | None = None,
) -> dict[str, Any]:
    changed = ["final.instruction"] if new is not None else []
    best = candidate if accepted and candidate is not None else incumbent
    return {
        "step": step,
        "batch": [
            {
                "id": f"ex/{step}",
                "inputs": {"question": "word: lemon"},
                "target": "LEMON",
                "output": reply,
                "score": 0.0,
                "feedback": 'The expected output is: "LEMON".',
                "node_outputs": {"hint": "a hint", "clean": "a hint", "final": reply},
                "node_gradients": {
                    "hint": ["say it louder"],
                    "clean": ["say it louder"],
                    "final": ['The expected output is: "LEMON".'],
                },
            }
        ],
        "backward": [
            {
                "example_id": f"ex/{step}",
                "mode": "neighbors",
                "calls": [
                    {
                        "successor": "final",
                        "inputs": ["clean"],
                        "prompt": [{"role": "user", "content": "why was it wrong?"}],
                        "raw": "<feedback_1>say it louder</feedback_1>",
                        "messages": {"clean": "say it louder"},
                        "missing": [],
                        "cached": False,
                        "error": None,
                    }
                ],
            }
        ],
        "gradients": {
            "hint.instruction": ["say it louder"],
            "final.instruction": ['The expected output is: "LEMON".'],
        },
        "proposals": [
            {
                "parameter": "hint.instruction",
                "old": "Give a hint.",
                "new": None,
                "prompt": [{"role": "user", "content": "improve the hint instruction"}],
                "raw": "no tags here",
                "error": "the reply has no <improved>...</improved> block",
                "cached": False,
            },
            {
                "parameter": "final.instruction",
                "old": "Answer the question.",
                "new": new,
                "prompt": [{"role": "user", "content": "improve the final instruction"}],
                "raw": f"<improved>{new}</improved>",
                "error": None,
                "cached": True,
            },
        ],
        "changed": changed,
        "candidate_score": candidate,
        "incumbent_score": incumbent,
        "accepted": accepted,
        "gate": gate
        if gate is not None
        else {"score": candidate, "evaluated": 4, "of": 4, "early_stopped": False},
        "state": {
            "hint.instruction": "Give a hint.",
            "final.instruction": new or "Answer the question.",
        },
        "best_gate": best,
        "spend": spend(12, 400),
        "wall_s": 1.25,
    }


def config(name: str = "demo", steps: int = 2) -> dict[str, Any]:
    model = {"model": "qwen2.5-coder-0.5b", "base_url": None, "api_key_env": None}
    return {
        "name": name,
        "seed": 0,
        "steps": steps,
        "graph": {"path": None, "hints": 1},
        "models": {
            "forward": model,
            "backward": model,
            "optimizer": {**model, "base_url": "http://llm:8000/v1"},
        },
        "data": {"train": "arith:train", "gate": "arith:val", "test": "arith:test"},
        "optimizer": {"name": "sgd", "batch_size": 1, "gate": "full", "partial": None},
        "budget": {},
    }


def write_run(
    root: Path,
    history: list[dict[str, Any]],
    *,
    status: str = "finished",
    summary: bool = True,
    name: str = "demo",
    best_instruction: str = "Answer the question in UPPERCASE.",
) -> Path:
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config(name, steps=2)))
    (root / "initial_graph.json").write_text(json.dumps(graph_spec()))
    (root / "best_graph.json").write_text(json.dumps(graph_spec(best_instruction)))
    (root / "checkpoint.json").write_text(
        json.dumps(
            {
                "status": status,
                "step": len(history),
                "graph": graph_spec(best_instruction),
                "initial_gate": 0.5,
                "best_gate": 0.75,
                "initial_test": 0.25,
                "spend": spend(30, 900),
                "prompts": ["forward/1", "backward/1", "optimizer/2"],
            }
        )
    )
    (root / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history))
    if summary:
        (root / "summary.json").write_text(
            json.dumps(
                {
                    "status": "finished",
                    "steps": len(history),
                    "initial_test": 0.25,
                    "final_test": 0.8,
                    "initial_gate": 0.5,
                    "best_gate": 0.75,
                    "spend": spend(40, 1000),
                    "test_size": 5,
                    "gate_size": 4,
                    "train_size": 8,
                }
            )
        )
    return root


def finished_run(tmp_path: Path) -> Path:
    return write_run(
        tmp_path / "run",
        [
            step_record(0),
            step_record(
                1,
                new="Answer in lowercase.",
                accepted=False,
                candidate=0.25,
                incumbent=0.75,
                gate={
                    "score": 0.25,
                    "evaluated": 2,
                    "of": 4,
                    "early_stopped": True,
                    "tokens_saved_estimate": 1234,
                },
            ),
        ],
    )


def text_of(page: str) -> str:
    """The visible text, roughly: style and tags dropped, entities decoded."""
    body = page.split("</style>", 1)[-1]
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))


# -- the page ------------------------------------------------------------------------------


def test_report_is_written_next_to_the_run_with_every_section(tmp_path: Path) -> None:
    run = finished_run(tmp_path)
    path = render_report(run)
    assert path == run / "report.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for section in ("top", "graph", "curve", "steps", "step-1", "step-2", "cost"):
        assert f'id="{section}"' in page, section
    text = text_of(page)
    # header
    assert "demo" in text and "finished" in text and "2 of 2" in text
    assert "25.0% → 80.0%" in text  # test score, initial → final
    assert "50.0% → 75.0%" in text  # gate score, initial → best
    assert "2.50 s" in text  # wall time, summed over the steps
    assert "qwen2.5-coder-0.5b" in text and "http://llm:8000/v1" in text
    assert "Unfinished" not in text
    # graph: nodes in order with their edges and initial/best instructions
    nodes = re.findall(r'<code class="node">(.*?)</code>', page)
    assert nodes == ["hint", "clean", "final"]
    assert "Give a hint." in page and "strip" in page
    assert "<svg" in page and "the graph" in page
    # the step table
    assert "accepted" in text and "rejected" in text
    assert "2/4 examples" in text and "early stop, ~1,234 tokens saved" in text
    assert "ex/0" in text and "ex/1" in text
    assert "1.25 s" in text
    # proposals: a diff, a failure with its error
    assert "<ins>" in page and "<del>" in page
    assert "failed" in text and "the reply has no &lt;improved&gt;" in page
    assert "kept" in text and "rejected by the gate" in text
    # examples and gradients per node, collapsible
    assert "<details" in page and "say it louder" in page and "LEMON" in page
    # cost: the summary's, with totals
    assert "from summary.json" in text
    assert "total" in text and "1,000" in text


def test_the_page_is_self_contained(tmp_path: Path) -> None:
    page = render_report(finished_run(tmp_path)).read_text(encoding="utf-8")
    lowered = page.lower()
    assert "<script" not in lowered
    assert "<link" not in lowered and "<img" not in lowered and "@import" not in lowered
    assert " src=" not in lowered
    # the only URL is the SVG namespace (a name, never fetched) and the model's base_url text
    urls = set(re.findall(r"https?://[^\s\"'<)]+", page))
    assert urls <= {"http://www.w3.org/2000/svg", "http://llm:8000/v1"}


def test_every_model_and_user_text_is_escaped(tmp_path: Path) -> None:
    record = step_record(0, new=f"Reply {XSS}", reply=f"lemon {XSS}")
    record["batch"][0]["feedback"] = f"wrong {XSS}"
    record["batch"][0]["id"] = f"id{XSS}"
    record["batch"][0]["inputs"] = {f"q{XSS}": f"word {XSS}"}
    record["batch"][0]["node_gradients"]["hint"] = [f"grad {XSS}"]
    record["proposals"][0]["raw"] = XSS
    record["proposals"][0]["error"] = f"bad reply {XSS}"
    record["backward"][0]["example_id"] = f"id{XSS}"
    record["backward"][0]["calls"][0]["raw"] = XSS
    record["backward"][0]["calls"][0]["prompt"][0]["content"] = XSS
    record["gradients"][f"node{XSS}.instruction"] = [XSS]
    record["changed"] = [f"p{XSS}"]
    record["spend"][f"phase{XSS}"] = {"calls": 1}
    run = write_run(tmp_path / "run", [record], name=f"run {XSS}", best_instruction=XSS)
    page = render_report(run).read_text(encoding="utf-8")
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page.count("&lt;script&gt;") >= 10


def test_attribute_values_are_escaped_too() -> None:
    html = el("a", "x", title='say "hi" <b>', href="#a&b")
    assert html == '<a title="say &quot;hi&quot; &lt;b&gt;" href="#a&amp;b">x</a>'
    assert el("td", Html("<b>ok</b>"), "<b>no</b>") == "<td><b>ok</b>&lt;b&gt;no&lt;/b&gt;</td>"
    assert esc(None) == "" and esc(["a<", 3]) == "a&lt;3"


def test_word_diff_marks_deleted_and_inserted_words() -> None:
    diff = word_diff("Answer the question briefly.", "Answer the question in UPPERCASE.")
    assert "Answer the question " in diff
    assert "<del>briefly</del>" in diff and "<ins>in UPPERCASE</ins>" in diff
    assert word_diff("same text", "same text") == "same text"
    assert word_diff("a <b>", "a <i>") == "a &lt;<del>b</del><ins>i</ins>&gt;"


def test_a_rewrite_is_shown_as_one_deletion_and_one_insertion() -> None:
    diff = word_diff("Solve it step by step.", "Reply with the word in UPPERCASE only.")
    assert diff.count("<del>") == 1 and diff.count("<ins>") == 1


def test_rendering_is_a_pure_function_of_the_data() -> None:
    run = RunData(
        root="somewhere",
        config=config(),
        initial_graph=graph_spec(),
        best_graph=graph_spec("Answer the question in UPPERCASE."),
        history=(step_record(0),),
    )
    page = render_html(run)
    assert page == render_html(run)
    assert 'id="step-1"' in page and "somewhere" in page
    assert "<details open" not in page
    assert "<details open" in render_html(run, expand=True)


# -- partial and unfinished runs -----------------------------------------------------------


def test_a_budget_stop_is_called_unfinished(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [step_record(0)], status="budget", summary=False)
    text = text_of(render_report(run).read_text(encoding="utf-8"))
    assert "Unfinished: stopped at its budget" in text
    assert f"semgrad resume {run}" in text and "--budget KEY=N" in text
    assert "1 of 2" in text
    assert "25.0% → —" in text  # no final test score yet
    assert "from checkpoint.json" in text  # the cost so far


def test_a_running_run_is_called_unfinished(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [step_record(0)], status="running", summary=False)
    text = text_of(render_report(run).read_text(encoding="utf-8"))
    assert "Unfinished (status 'running')" in text and "still going" in text


def test_a_run_with_only_a_config_still_gives_a_readable_page(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config()))
    text = text_of(render_report(run).read_text(encoding="utf-8"))
    assert "not started" in text and "Unfinished: no step yet" in text
    assert "No graph file in this run" in text
    assert "No scores yet" in text and "No completed step yet" in text
    assert "No cost recorded yet" in text


def test_a_teacher_model_of_its_own_is_listed_with_the_others(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    cfg = config()
    cfg["models"] = {**cfg.get("models", {}), "teacher": {"model": "a-teacher-model"}}
    (run / "config.json").write_text(json.dumps(cfg))
    text = text_of(render_report(run).read_text(encoding="utf-8"))
    assert "teacher" in text and "a-teacher-model" in text


def test_empty_history_and_no_summary(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [], status="running", summary=False)
    text = text_of(render_report(run).read_text(encoding="utf-8"))
    assert "No completed step yet" in text and "0 of 2" in text
    assert "Give a hint." in text  # the graph is there


def test_damaged_files_are_reported_on_the_page_not_raised(tmp_path: Path) -> None:
    run = finished_run(tmp_path)
    (run / "summary.json").write_text("{not json")
    with (run / "history.jsonl").open("a") as f:
        f.write('{"step": 2, "batch": [')  # a line cut by a crash
    data = load_run(run)
    assert len(data.history) == 2 and data.summary is None
    text = text_of(render_html(data))
    assert "Some run files could not be used" in text
    assert "summary.json is not valid JSON" in text
    assert "history.jsonl line 3 is not valid JSON" in text


def test_odd_values_do_not_break_the_page(tmp_path: Path) -> None:
    record: dict[str, Any] = {
        "step": 0,
        "batch": "oops",
        "proposals": [None, 3],
        "gate": [],
        "spend": None,
    }
    run = write_run(tmp_path / "run", [record, {"step": "x"}], summary=False)
    page = render_report(run).read_text(encoding="utf-8")
    assert 'id="step-1"' in page and 'id="step-2"' in page


# -- errors --------------------------------------------------------------------------------


def test_a_directory_that_is_not_a_run_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match=r"not a semgrad run directory.*config\.json.*notes\.txt"):
        render_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_a_missing_directory_or_a_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist") as err:
        render_report(tmp_path / "nope")
    assert err.value.path == str(tmp_path / "nope")
    (tmp_path / "file.json").write_text("{}")
    with pytest.raises(DataError, match="is a file, not a run directory"):
        render_report(tmp_path / "file.json")


# -- output --------------------------------------------------------------------------------


def test_out_may_be_a_file_or_a_directory_and_leaves_no_temp_files(tmp_path: Path) -> None:
    run = finished_run(tmp_path)
    custom = render_report(run, tmp_path / "out" / "r.html")
    assert custom == tmp_path / "out" / "r.html" and custom.exists()
    (tmp_path / "dir").mkdir()
    assert render_report(run, tmp_path / "dir") == tmp_path / "dir" / "report.html"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["r.html"]
    assert not (run / "report.html").exists()


def test_public_names() -> None:
    assert sorted(semgrad.report.__all__) == ["RunData", "load_run", "render_html", "render_report"]
    for name in semgrad.report.__all__:
        assert hasattr(semgrad.report, name)


# -- a run the trainer really wrote --------------------------------------------------------

WORDS = [
    "apple",
    "river",
    "stone",
    "cloud",
    "tiger",
    "piano",
    "lemon",
    "candle",
    "forest",
    "mirror",
    "rocket",
    "garden",
    "button",
    "planet",
]


class CaseSensitive:
    name = "case-sensitive"

    def __call__(self, prediction_text: str, example: Example) -> Score:
        answer = prediction_text.strip()
        if answer == example.target:
            return Score(1.0, "The output is correct.", answer)
        return Score(0.0, f"The expected output is {example.target} {XSS}", answer)


def forward_reply(request: Request) -> str:
    if request.node != "final":
        return f"a hint {XSS}"
    word = re.search(r"word: (\w+)", request.messages[-1].content).group(1)  # type: ignore[union-attr]
    return word.upper() if "UPPERCASE" in request.messages[-1].content else word


def backward_reply(request: Request) -> str:
    n = len(re.findall(r"<feedback_(\d+)>\.\.\.", request.messages[-1].content))
    return " ".join(f"<feedback_{i}>louder {XSS}</feedback_{i}>" for i in range(1, n + 1))


def optimizer_reply(request: Request) -> str:
    if request.node == "final":
        return "<improved>Reply with the word in UPPERCASE only.</improved>"
    return XSS


def test_the_report_of_a_real_training_run(tmp_path: Path) -> None:
    ex = [Example(f"w/{i}", {"question": f"word: {w}"}, w.upper()) for i, w in enumerate(WORDS)]
    splits = Splits(tuple(ex[:6]), tuple(ex[6:10]), tuple(ex[10:]), CaseSensitive())
    cfg = config_from_dict(
        {
            "name": "real",
            "steps": 2,
            "graph": {"hints": 2},
            "data": {"train": "arith:train", "gate": "arith:val", "test": "arith:test"},
            "models": {"cache_mode": "off"},
        }
    )
    llms = {
        "forward": ScriptedLLM(forward_reply),
        "backward": ScriptedLLM(backward_reply),
        "optimizer": ScriptedLLM(optimizer_reply),
    }
    optimize(cfg, tmp_path / "run", llms=llms, splits=splits)  # type: ignore[arg-type]
    page = render_report(tmp_path / "run").read_text(encoding="utf-8")
    text = text_of(page)
    assert "<script" not in page.lower() and "&lt;script&gt;" in page
    assert "finished" in text and "2 of 2" in text and "0.0% → 100.0%" in text
    assert "<ins>" in page and "UPPERCASE" in page
    assert "accepted" in text and "no change" in text
    assert "hint_1" in text and "hint_2" in text
    assert "from summary.json" in text


# -- typed run records: per-item gate scores, partial gates, truncated replies --------------


def test_per_item_gate_scores_and_a_partial_gate_are_shown(tmp_path: Path) -> None:
    full = step_record(0)
    full["version"] = 1
    full["gate"] = {
        "score": 0.75,
        "partial": False,
        "partial_score": None,
        "evaluated": 4,
        "of": 4,
        "early_stopped": False,
        "scores": {"g/1": 1.0, "g/2": 1.0, "g/3": 1.0, f"g/{XSS}": 0.0},
    }
    early = step_record(1, accepted=False, candidate=None, incumbent=0.75)
    early["version"] = 1
    early["gate"] = {
        "score": None,
        "partial": True,
        "partial_score": 0.25,
        "evaluated": 2,
        "of": 4,
        "early_stopped": True,
        "scores": {"g/1": 0.5, "g/2": 0.0},
    }
    page = render_report(write_run(tmp_path / "run", [full, early])).read_text(encoding="utf-8")
    text = text_of(page)
    assert "Gate scores by item (4)" in text and "Gate scores by item (2 of 4)" in text
    assert "partial: the gate stopped early" in text
    assert "g/&lt;script&gt;" in page and "<script" not in page.lower()
    # the partial mean is shown as the candidate's score, marked partial, not as a gate score
    assert "25.0% partial" in text
    assert "candidate 25.0% on 2/4 (partial) vs 75.0%" in text


def test_an_old_early_stopped_gate_reads_as_partial() -> None:
    run = RunData(
        root="r",
        config=config(),
        history=(
            step_record(
                0,
                accepted=False,
                candidate=0.25,
                gate={"score": 0.25, "evaluated": 2, "of": 4, "early_stopped": True},
            ),
        ),
    )
    (step,) = read_run(run).steps
    assert step.gate is not None and step.gate.partial and step.gate.score is None
    assert step.candidate == 0.25 and step.gate.mean == 0.25


def test_truncated_replies_are_counted_and_marked(tmp_path: Path) -> None:
    record = step_record(0)
    record["batch"][0]["finish_reasons"] = {"hint": "length", "clean": "stop", "final": "stop"}
    record["proposals"][1]["finish_reason"] = "length"
    record["backward"][0]["calls"][0]["finish_reason"] = "stop"
    page = render_report(write_run(tmp_path / "run", [record])).read_text(encoding="utf-8")
    text = text_of(page)
    assert "truncated replies 2 cut at max_tokens" in text
    assert "2 replies cut off at max_tokens" in text
    assert text.count("cut off at max_tokens") == 3  # the step, the node output, the proposal
    plain = render_report(finished_run(tmp_path / "plain")).read_text(encoding="utf-8")
    assert "cut at max_tokens" not in text_of(plain)  # no finish reasons recorded: no count


def test_the_stylesheet_is_package_data() -> None:
    css = resources.files("semgrad.report").joinpath("style.css")
    assert css.is_file()
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert "report/style.css" in pyproject["tool"]["setuptools"]["package-data"]["semgrad"]
    page = render_html(RunData(root="r", config=config()))
    assert css.read_text(encoding="utf-8") in page and ".badge.ok" in page


def test_only_the_loading_module_reads_run_file_values() -> None:
    """The sections and drawings get typed values: no defensive JSON helpers outside load."""
    import semgrad.report.markup
    import semgrad.report.page
    import semgrad.report.sections
    import semgrad.report.svg

    for module in (
        semgrad.report.markup,
        semgrad.report.page,
        semgrad.report.sections,
        semgrad.report.svg,
    ):
        source = Path(str(module.__file__)).read_text(encoding="utf-8")
        for helper in ("_num", "_dict", "_list", "_text", "_int", "json"):
            assert not re.search(rf"(?<![\w.]){helper}\b", source), (module.__name__, helper)
