"""The training loop: text steps by the method `[optimizer] method` names, checkpointed per step.

The default method, ``search``, takes each text step by `semgrad.optim.search.search_step`
(ALGORITHMS.md §3b: candidates, screen, paired gate). The method ``paper`` is the
reference protocol, one step (ALGORITHMS.md §3):
 1. pick k training examples the current graph gets wrong (forward passes, cached);
 2. backpropagate the metric's feedback through each of their traces;
 3. ask the optimizer model for a new text per parameter (propose), apply it;
 4. gate: score the candidate on the gate set; keep it only if strictly better,
    else restore the incumbent;
 5. append the step's `StepRecord` to history.jsonl and replace checkpoint.json atomically.

A `Trainer` is built from objects: the graph (or a `Swarm`, whose edges an `EdgeStep`
learns in the same loop), the `Splits` (train / gate / test examples and the metric), the
models by role, an optimizer, the loop settings (a `RunConfig`, which is also what
config.json records) and a run directory. `Trainer.from_config` builds those from a TOML
config; `semgrad.fit` (semgrad.optim.fit) from Python objects.

Everything random in a step comes from a generator seeded by (seed, step), and every model
call is cached at temperature 0, so a run killed at any moment and resumed reaches the same
final graph as an uninterrupted one. A hard budget stops a run cleanly between model calls;
the run resumes from its last completed step.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semgrad.atomic import remove_temporary_files
from semgrad.autograd.backward import BackwardResult, gradient_messages
from semgrad.data.example import Example
from semgrad.errors import BudgetExceededError, ConfigError, DataError
from semgrad.evaluation.evaluator import ExampleResult, aevaluate, is_error
from semgrad.evaluation.metrics import Metric
from semgrad.execution.context import RunContext
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Demo, Graph, Parameter
from semgrad.graph.spec import graph_from_dict
from semgrad.llm.budget import Budget
from semgrad.llm.cache import Cache
from semgrad.llm.factory import close_client
from semgrad.llm.meter import Meter, MeterSnapshot, Spend
from semgrad.llm.record import RecordingLLM, RequestLog
from semgrad.llm.stack import build_llm, build_stack
from semgrad.llm.types import ALL_PHASES, LLM, PHASES
from semgrad.optim.config import ModelsConfig, OptimizerConfig, RunConfig, config_from_dict
from semgrad.optim.demos import DemoPool, ateach
from semgrad.optim.edge_step import EdgeStep, same_wiring
from semgrad.optim.optimizer import NodeOptimizer, Optimizer, SemanticGradientDescent
from semgrad.optim.pool import PoolEntry, ProgramPool
from semgrad.optim.records import (
    BudgetStopped,
    CallsFailed,
    EdgeStepRecord,
    ExamplesScored,
    FinalTestStarted,
    GateResult,
    InitialScored,
    InitialStarted,
    Progress,
    Resumed,
    RunSummary,
    StepFinished,
    StepRecord,
    StepStarted,
    append_history,
    quiet,
)
from semgrad.optim.runfiles import RunFiles, atomic_write_json
from semgrad.optim.search import (
    DemoSourceFactory,
    batch_item,
    check_method,
    demo_source,
    incumbent_gate_scores,
    search_step,
)
from semgrad.optim.splits import Splits, load_splits
from semgrad.prompts import (
    BACKWARD_VERSION,
    FORWARD_VERSION,
    OPTIMIZER_SEARCH_VERSION,
    OPTIMIZER_VERSION,
)
from semgrad.swarm.composite import Swarm
from semgrad.swarm.spec import load_spec
from semgrad.telemetry import traced

__all__ = [
    "RunResult",
    "Splits",
    "Trainer",
    "aoptimize",
    "load_model",
    "load_run_config",
    "make_optimizer",
    "optimize",
]


@dataclass(frozen=True)
class RunResult:
    """How a run (or this part of it) ended; `graph` is the best graph so far (for a
    composite graph, the swarm with its learned edges)."""

    run_dir: Path
    status: str  # "finished" | "budget" | "errors" (model calls failed after their retries)
    steps_done: int
    initial_test: float | None
    final_test: float | None
    initial_gate: float | None
    best_gate: float | None
    spend: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0  # this process's part of the run
    message: str = ""
    graph: Graph | Swarm | None = None
    # Over every process of the run: the time up to each one's last checkpoint (a killed
    # process's time after it is not counted), then this one's.
    total_wall_s: float = 0.0


def load_model(config: RunConfig) -> Graph | Swarm:
    """The graph (or swarm spec) `config.graph` names."""
    if config.graph.path is not None:
        return load_spec(config.resolve(config.graph.path))
    return hint_graph(config.graph.hints or 2, answer_fn=config.graph.answer_fn)


def make_optimizer(
    options: OptimizerConfig, params: Sequence[tuple[str, Parameter]], *, seed: int
) -> Optimizer:
    """The text optimizer `[optimizer]` names, over `params`."""
    # The search shows the optimizer the incumbent's score and recently rejected texts.
    search: dict[str, Any] = (
        {}
        if options.method == "paper"
        else {
            "style": "search",
            "rejected": options.rejected,
            "final_answer": options.final_answer,
        }
    )
    if options.name == "node":
        return NodeOptimizer(
            params, max_tokens=options.max_tokens, memory=options.memory, seed=seed, **search
        )
    return SemanticGradientDescent(
        params,
        max_tokens=options.max_tokens,
        memory=options.memory,
        partial=options.partial,
        use_gradients=options.use_gradients,
        seed=seed,
        **search,
    )


def _spend_dict(by_phase: Mapping[Any, Spend]) -> dict[str, dict[str, int]]:
    return {phase: s.to_dict() for phase, s in by_phase.items()}


def _add_spend(
    a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    # Every run reports PHASES; an optional phase (edges) only when it was used.
    used = [p for p in ALL_PHASES if p in PHASES or p in a or p in b]
    for phase in used:
        x, y = a.get(phase, {}), b.get(phase, {})
        out[phase] = {k: x.get(k, 0) + y.get(k, 0) for k in sorted(set(x) | set(y))}
    return out


def _mean(results: Sequence[ExampleResult]) -> float | None:
    """The mean score, or None for no examples (a run may have no test split: a benchmark
    scores its final graph itself, outside the run's budget)."""
    return sum(r.score.value for r in results) / len(results) if results else None


class Trainer:
    """Owns the models, the run directory and the state of one optimization run."""

    def __init__(
        self,
        model: Graph | Swarm,
        splits: Splits,
        run_dir: str | Path,
        *,
        config: RunConfig,
        llms: Mapping[str, LLM] | None = None,
        optimizer: Optimizer | None = None,
        budget_overrides: Mapping[str, int] | None = None,
        progress: Progress = quiet,
        max_error_rate: float = 0.0,
        request_log: RequestLog | None = None,
    ) -> None:
        """`model` is a graph, or a swarm whose edges are learned too (`config.edges`).
        `config` holds the loop's settings (steps, seed, [optimizer], [edges], budget,
        models.concurrency) and is what config.json records. `llms` are raw clients by
        role (wrapped with the run's meter and budget); without them the models
        `config.models` names are built. `optimizer` defaults to the one `[optimizer]`
        names, over the model's parameters. `max_error_rate`: see `_check_failed_calls`.
        `request_log` receives every request of the run and its reply, cache hits included
        (`RecordingLLM`, outermost): what a replay of the run needs."""
        if not 0.0 <= max_error_rate <= 1.0:
            raise ConfigError(f"max_error_rate must be in [0, 1], got {max_error_rate}")
        self.max_error_rate = max_error_rate
        self.config = config
        self.files = RunFiles(run_dir)
        self.progress = progress
        self.meter = Meter()
        limits = {**config.budget, **(budget_overrides or {})}
        # Always kept (with no limits it only counts): every request sent over the run's
        # life is charged to budget.json before it is sent, kills and resumes included.
        self.budget = Budget(limits, ledger=self.files.budget)
        self._clients: list[LLM] = []
        self._cache: Cache | None = None
        self.llms = self._wrap(llms) if llms is not None else self._build_llms(config.models)
        if request_log is not None:
            recorded = {id(llm): RecordingLLM(llm, request_log) for llm in self.llms.values()}
            self.llms = {role: recorded[id(llm)] for role, llm in self.llms.items()}
        if "teacher" not in self.llms and "backward" in self.llms:
            self.llms["teacher"] = self.llms["backward"]  # the teacher is the backward model
        self.ctx = RunContext(
            llms=self.llms, max_concurrency=config.models.concurrency, seed=config.seed
        )
        self.splits = splits
        self.edge_step: EdgeStep | None = None
        if isinstance(model, Swarm):
            self.edge_step = EdgeStep(model, config.edges)
            self.graph = self.edge_step.realise()
            params = self.edge_step.text_parameters()
        elif config.edges is not None:
            raise ConfigError(
                "edge optimization needs a composite graph: graph.path must name a swarm "
                'spec ("kind": "swarm"); remove the [edges] section for a single graph',
                key="edges",
            )
        else:
            self.graph = model
            params = list(model.named_parameters())
        check_method(config.optimizer.method, self.graph)
        self.optimizer = optimizer or make_optimizer(config.optimizer, params, seed=config.seed)
        # Where the search's demonstration candidates come from (semgrad.optim.demos).
        self.demo_source: DemoSourceFactory = demo_source
        # State carried in the checkpoint.
        self.step = 0
        self.initial_gate: float | None = None
        self.best_gate: float | None = None
        # The incumbent's gate score per item ({} when unknown: an ungated acceptance).
        self.incumbent_scores: dict[str, float] = {}
        self.initial_test: float | None = None
        self.prior_spend: dict[str, dict[str, int]] = {}
        # The teacher's demos for the output node so far, and the examples it answered.
        self.teacher_demos: tuple[Demo, ...] = ()
        self.taught: set[str] = set()
        # Pareto parents ([optimizer] parents = "pareto"): the accepted programs; empty
        # until the first step that draws a parent.
        self.pool = ProgramPool()
        # Wall time of the run's earlier processes (see RunResult.total_wall_s), and when
        # this one started.
        self.prior_wall = 0.0
        self._started = time.perf_counter()
        # The last checkpoint written or restored (what a stop mid-step records).
        self._committed: dict[str, Any] | None = None

    @classmethod
    def from_config(
        cls,
        config: RunConfig,
        run_dir: str | Path,
        *,
        llms: Mapping[str, LLM] | None = None,
        splits: Splits | None = None,
        metric: Metric | None = None,
        budget_overrides: Mapping[str, int] | None = None,
        progress: Progress = quiet,
        max_error_rate: float = 0.0,
        request_log: RequestLog | None = None,
    ) -> Trainer:
        """The trainer for a TOML config (`load_config`) or a run's config.json
        (`load_run_config`). `llms`, `splits` or `metric` replace what the config names."""
        return cls(
            load_model(config),
            splits if splits is not None else load_splits(config, metric=metric),
            run_dir,
            config=config,
            llms=llms,
            budget_overrides=budget_overrides,
            progress=progress,
            max_error_rate=max_error_rate,
            request_log=request_log,
        )

    def _build_llms(self, models: ModelsConfig) -> dict[str, LLM]:
        """The models by role a config names, wrapped with the cache, retries, the run's
        meter and budget; the clients (and the cache) are closed by `aclose`."""
        stack = build_stack(
            models, meter=self.meter, budget=self.budget, base_dir=self.config.base_dir
        )
        self._cache = stack.cache
        self._clients = stack.clients
        return stack.llms

    def _wrap(self, llms: Mapping[str, LLM]) -> dict[str, LLM]:
        wrapped: dict[int, LLM] = {}
        for client in llms.values():
            if id(client) not in wrapped:
                wrapped[id(client)] = build_llm(
                    client, meter=self.meter, budget=self.budget, retry=None
                )
        return {role: wrapped[id(client)] for role, client in llms.items()}

    async def aclose(self) -> None:
        for client in self._clients:
            await close_client(client)
        if self._cache is not None:
            self._cache.close()

    # -- state -------------------------------------------------------------------------

    @property
    def model(self) -> Graph | Swarm:
        """What is optimized: the graph, or the swarm (whose realisation is `graph`)."""
        return self.edge_step.swarm if self.edge_step else self.graph

    def wall(self) -> float:
        """Seconds the run has taken so far, over every process (`RunResult.total_wall_s`)."""
        return round(self.prior_wall + time.perf_counter() - self._started, 1)

    def _optimizer_version(self) -> str:
        """The version of the optimizer prompt this run's proposals use."""
        return OPTIMIZER_SEARCH_VERSION if self.optimizer.style == "search" else OPTIMIZER_VERSION

    def spend(self) -> dict[str, dict[str, int]]:
        return _add_spend(self.prior_spend, _spend_dict(self.meter.snapshot().by_phase()))

    def _checkpoint_state(self, status: str) -> dict[str, Any]:
        state = {
            "status": status,
            "step": self.step,
            "graph": self.graph.to_dict(),
            "initial_gate": self.initial_gate,
            "best_gate": self.best_gate,
            "incumbent_gate_scores": self.incumbent_scores,
            "initial_test": self.initial_test,
            "optimizer": self.optimizer.state_dict(),
            "spend": self.spend(),
            "budget_spent": self.budget.charged(),
            "prompts": [FORWARD_VERSION, BACKWARD_VERSION, self._optimizer_version()],
            "wall_s": self.wall(),
        }
        if self.budget.limits_requests:
            # A repeat of a request counted before the stop stays free after the resume.
            state["counted_requests"] = self.budget.counted_requests()
        if self.taught:
            state["teacher"] = {
                "demos": [d.to_dict() for d in self.teacher_demos],
                "taught": sorted(self.taught),
            }
        if self.pool:
            state["pool"] = self.pool.to_dict()
        if self.edge_step is not None:
            state.update(self.edge_step.state_dict())
        return state

    def _model_dict(self) -> dict[str, Any]:
        """What best_graph.json holds: the spec of the best graph (or swarm) so far."""
        return self.model.to_dict()

    def _checkpoint(self, status: str = "running") -> None:
        state = self._checkpoint_state(status)
        atomic_write_json(self.files.checkpoint, state)
        atomic_write_json(self.files.best_graph, self._model_dict())
        if self.edge_step is not None:
            atomic_write_json(self.files.realised_graph, self.graph.to_dict())
        self._committed = state

    def _stop_checkpoint(self, status: str) -> None:
        """Record a clean stop (a budget, failed model calls) in the middle of a step: the
        last committed state with the new status and what has been spent since, never the
        half-done step's graph (a candidate not yet gated) nor its optimizer state."""
        if self._committed is None:  # stopped during the initial scoring: nothing changed yet
            self._checkpoint(status)
            return
        state = {
            **self._committed,
            "status": status,
            "spend": self.spend(),
            "budget_spent": self.budget.charged(),
            "wall_s": self.wall(),
        }
        if self.budget.limits_requests:
            state["counted_requests"] = self.budget.counted_requests()
        atomic_write_json(self.files.checkpoint, state)

    def restore(self) -> None:
        state = self.files.read_json(self.files.checkpoint)
        self.step = int(state["step"])
        if self.edge_step is not None:
            self.edge_step.load_state_dict(state, source=str(self.files.checkpoint))
            self.graph = self.edge_step.realise()
        else:
            self.graph.load_state_dict(graph_from_dict(state["graph"]).state_dict())
        self.initial_gate = state.get("initial_gate")
        self.best_gate = state.get("best_gate")
        self.incumbent_scores = dict(state.get("incumbent_gate_scores") or {})
        self.initial_test = state.get("initial_test")
        self.optimizer.load_state_dict(state.get("optimizer", {}))
        self.prior_spend = state.get("spend", {})
        teacher = state.get("teacher") or {}
        self.teacher_demos = tuple(Demo.from_dict(d) for d in teacher.get("demos", []))
        self.taught = set(teacher.get("taught", []))
        self.pool = ProgramPool.from_dict(state.get("pool") or [])
        self.prior_wall = float(state.get("wall_s") or 0.0)
        self.budget.charge_at_least(dict(state.get("budget_spent") or {}))
        self.budget.restore_counted_requests(list(state.get("counted_requests") or []))
        self.files.truncate_history(self.step)
        self._committed = state

    # -- evaluation --------------------------------------------------------------------

    async def _evaluate(
        self, examples: Sequence[Example], phase: str = "evaluation", *, what: str = "scoring"
    ) -> list[ExampleResult]:
        ctx = self.ctx.with_phase(phase)  # type: ignore[arg-type]
        total = len(examples)
        self.progress(ExamplesScored(what, 0, total))
        done = 0

        def tick(_result: ExampleResult) -> None:
            nonlocal done
            done += 1
            self.progress(ExamplesScored(what, done, total))

        result = await aevaluate(
            self.graph,
            examples,
            self.splits.metric,
            ctx,
            on_result=tick,
            # The paper's protocol gives the backward model the reference feedback only.
            truncation_notes=self.config.optimizer.method != "paper",
        )
        return list(result.results)

    @traced("semgrad.gate")
    async def _gate(self, incumbent: float | None) -> GateResult:
        """Score the current (candidate) graph on the gate set, per item.

        With the early-stop gate, examples are scored in chunks and scoring stops as soon
        as the candidate cannot strictly beat the incumbent even if it got every remaining
        example right: a rejection decided early costs fewer calls and can never be wrong.
        Such a result is partial: it has no gate score, only the mean over the prefix.
        """
        gate = self.splits.gate
        n = len(gate)
        if self.config.optimizer.gate != "early-stop" or incumbent is None:
            results = await self._evaluate(gate, what="gate")
            return GateResult(
                evaluated=n,
                of=n,
                mean=sum(r.score.value for r in results) / n,
                scores={r.example.id: r.score.value for r in results},
            )
        # Chunks of just enough examples to keep `concurrency` model calls in flight: a
        # smaller chunk decides sooner, a larger one would not run faster.
        llm_nodes = sum(1 for node in self.graph.nodes.values() if node.kind == "llm") or 1
        chunk = max(2, -(-self.config.models.concurrency // llm_nodes))
        total = 0.0
        tokens = 0
        scores: dict[str, float] = {}
        done = 0
        for start in range(0, n, chunk):
            part = await self._evaluate(gate[start : start + chunk], what="gate (early stop)")
            total += sum(r.score.value for r in part)
            tokens += sum(r.trace.usage.total_tokens for r in part)
            scores.update((r.example.id, r.score.value) for r in part)
            done += len(part)
            if done < n and total + (n - done) <= incumbent * n + 1e-9:
                per_example = tokens / done if done else 0
                return GateResult(
                    evaluated=done,
                    of=n,
                    mean=total / done,
                    scores=scores,
                    early_stopped=True,
                    tokens_saved_estimate=round(per_example * (n - done)),
                )
        return GateResult(evaluated=n, of=n, mean=total / n, scores=scores)

    # -- one step ----------------------------------------------------------------------

    async def score(
        self, examples: Sequence[Example], *, what: str, phase: str = "evaluation"
    ) -> list[ExampleResult]:
        """Score the current graph on `examples`, per item (what a search step calls)."""
        return await self._evaluate(examples, phase, what=what)

    async def _pick_batch(self, rng: random.Random) -> list[ExampleResult]:
        k = self.config.optimizer.batch_size
        wrong, right = await self.find_examples(rng, k)
        # Fewer than k wrong answers in the whole training split: fill with right ones.
        return (wrong + right)[:k]

    async def find_examples(
        self, rng: random.Random, k: int
    ) -> tuple[list[ExampleResult], list[ExampleResult]]:
        """Training examples in a seeded order, scored by chunks until `k` wrong answers
        are found: (wrong, right) among those scored. Examples whose model call failed are
        in neither (a failed call is no mistake of the graph to learn from)."""
        order = list(self.splits.train)
        rng.shuffle(order)
        wrong: list[ExampleResult] = []
        right: list[ExampleResult] = []
        chunk = max(2 * k, self.config.models.concurrency)
        for start in range(0, len(order), chunk):
            chunk_examples = order[start : start + chunk]
            for r in await self._evaluate(chunk_examples, phase="forward", what="finding errors"):
                if is_error(r):
                    continue  # a failed model call is no mistake of the graph to learn from
                (right if r.score.value >= 1.0 else wrong).append(r)
            if len(wrong) >= k:
                break
        return wrong, right

    async def teach(self, results: Sequence[ExampleResult]) -> DemoPool:
        """The teacher's demos for the output node so far, after it answered the output
        node for up to `[optimizer] teacher` of `results` (in their order: the search
        passes mistakes first) that it had not answered before (`ateach`)."""
        k = self.config.optimizer.teacher
        fresh = [r for r in results if r.example.id not in self.taught][:k]
        if fresh:
            demos = await ateach(self.graph, fresh, self.splits.metric, self.ctx)
            self.taught.update(r.example.id for r in fresh)
            known = set(self.teacher_demos)
            self.teacher_demos += tuple(d for d in demos if d not in known)
        return DemoPool({self.graph.output: self.teacher_demos})

    async def backprop(
        self, batch: Sequence[ExampleResult]
    ) -> tuple[list[BackwardResult], dict[str, list[str]]]:
        """Semantic gradients for the batch: the backward calls made, and the messages each
        parameter received ({dotted name: [messages]})."""
        self.optimizer.zero_grad()
        records = await self.optimizer.accumulate(
            self.graph,
            [r.trace for r in batch],
            [r.score for r in batch],
            self.ctx,
            mode=self.config.optimizer.backward,
        )
        gradients = {name: gradient_messages(p) for name, p in self.graph.named_parameters()}
        return list(records), gradients

    async def _node_step(self) -> StepRecord:
        """A text step: batch, backprop, proposals, gate (the record's decision fields)."""
        step = self.step
        incumbent_score = self.best_gate
        opt_cfg = self.config.optimizer
        rng = random.Random(f"{self.config.seed}/{step}/batch")
        batch = await self._pick_batch(rng)
        backward_records, gradients = await self.backprop(batch)
        proposals = await self.optimizer.propose(self.ctx)
        incumbent_state = self.graph.state_dict()
        changed = self.optimizer.apply(proposals, step=step)
        if not changed and opt_cfg.retry_temperature > 0:
            # Nothing to gate: the small optimizer model failed or echoed the old text.
            # One more sample at a higher temperature (seeded, and cached as sample 1).
            retry = await self.optimizer.propose(
                self.ctx, temperature=opt_cfg.retry_temperature, sample_index=1
            )
            proposals += retry
            changed = self.optimizer.apply(retry, step=step)
        gate: GateResult | None = None
        if not changed:
            accepted = False
        elif opt_cfg.gate == "none":
            accepted = True
        else:
            gate = await self._gate(self.best_gate)
            # A partial (early-stopped) gate is a rejection: it stopped because the
            # candidate could no longer win.
            accepted = gate.score is not None and (
                self.best_gate is None or gate.score > self.best_gate
            )
        if accepted:
            if gate is not None:
                self.best_gate = gate.score
                self.incumbent_scores = dict(gate.scores)
            else:
                self.incumbent_scores = {}
        else:
            self.graph.load_state_dict(incumbent_state)
        if gate is not None and changed:
            # The mean over the items scored (all of them unless the gate stopped early).
            self.optimizer.remember(
                {
                    n: (p.new or "", gate.mean)
                    for p in proposals
                    if p.ok and (n := p.parameter) in changed
                }
            )
        return StepRecord(
            step=step,
            batch=[batch_item(r) for r in batch],
            backward=[b.to_dict() for b in backward_records],
            gradients=gradients,
            proposals=[p.to_dict() for p in proposals],
            changed=changed,
            candidate_score=gate.score if gate is not None else None,
            incumbent_score=incumbent_score,
            accepted=accepted,
            gate=gate,
        )

    async def _edge_update(self, edge_step: EdgeStep) -> EdgeStepRecord:
        """An edge step; when it changes the deterministic graph's wiring, the new graph
        is scored on the gate set and becomes the incumbent (edge steps are not gated)."""

        def tick(done: int, total: int) -> None:
            self.progress(ExamplesScored("sampled graphs", done, total))

        result = await edge_step.update(
            self.splits.train,
            self.splits.metric,
            self.ctx,
            seed=self.config.seed,
            step=self.step,
            on_result=tick,
        )
        incumbent = self.best_gate
        gate: GateResult | None = None
        if result.flipped:
            realised = edge_step.realise()
            if not same_wiring(realised, self.graph):
                self.graph = realised
                gate = await self._gate(None)
                self.best_gate = gate.score
                self.incumbent_scores = dict(gate.scores)
            else:
                self.graph = realised
        u = result.update
        return EdgeStepRecord(
            batch=result.batch,
            samples=result.samples,
            distinct_graphs=result.distinct_graphs,
            utilities=list(u["utilities"]),
            mean_utility=u["mean_utility"],
            baseline_used=u["baseline_used"],
            baseline=u["baseline"],
            gradient=dict(u["gradient"]),
            probabilities_before=result.probabilities_before,
            probabilities=edge_step.probabilities(),
            logits=edge_step.swarm.edge_state_dict(),
            kept_before=result.kept_before,
            kept=edge_step.kept_edges(),
            flipped=result.flipped,
            regated=gate is not None,
            gate=gate,
            incumbent_score=incumbent,
            temperature=edge_step.config.temperature,
            threshold=edge_step.config.threshold,
        )

    @traced("semgrad.step", lambda self: {"semgrad.step": self.step})
    async def _step(self) -> StepRecord:
        t0 = time.perf_counter()
        before = self.meter.snapshot()
        edge_step = self.edge_step
        kind = edge_step.kind(self.step) if edge_step is not None else None
        edges: EdgeStepRecord | None = None
        if edge_step is not None and kind in ("edges", "both"):
            edges = await self._edge_update(edge_step)
        if kind in (None, "nodes", "both"):
            incumbent = self.graph.state_dict()
            paper = self.config.optimizer.method == "paper"
            parent: int | None = None
            try:
                if self.config.optimizer.parents == "pareto":
                    parent = await self._draw_parent()
                record = await (self._node_step() if paper else search_step(self))
            except BaseException:
                # A stop in the middle of a step (a budget, a cancel, an error) must not
                # leave a half-gated candidate in place: the checkpoint saves the incumbent.
                self.graph.load_state_dict(incumbent)
                if self.pool:
                    self._take(self.pool.best())
                raise
            if parent is not None:
                record = self._into_pool(record, parent)
        else:  # an edge step only: its re-gating is the step's decision
            assert edges is not None
            record = StepRecord(
                step=self.step,
                changed=edges.flipped if edges.regated else [],
                candidate_score=edges.gate.score if edges.gate else None,
                incumbent_score=edges.incumbent_score,
                accepted=edges.regated,
                gate=edges.gate,
            )
        spent = self.meter.snapshot() - before
        return dataclasses.replace(
            record,
            state=self.model.state_dict(),
            best_gate=self.best_gate,
            spend=_spend_dict(spent.by_phase()),
            wall_s=round(time.perf_counter() - t0, 3),
            kind=kind,
            edges=edges,
            edge_probabilities=edge_step.probabilities() if edge_step else {},
            kept_edges=edge_step.kept_edges() if edge_step else [],
        )

    # -- Pareto parents (semgrad.optim.pool) ---------------------------------------------

    async def _draw_parent(self) -> int:
        """Draw the step's parent from the pool (seeded by seed and step) and make it the
        program the step edits; the pool starts with the incumbent, scored on the whole
        gate set."""
        if not self.pool:
            scores = await incumbent_gate_scores(self)
            self.pool.add(PoolEntry(self.graph.state_dict(), scores))
        parent = self.pool.choose(random.Random(f"{self.config.seed}/{self.step}/parent"))
        self._take(parent)
        return parent

    def _take(self, index: int) -> None:
        """Make the pool's program `index` the graph's texts and the step's incumbent."""
        entry = self.pool[index]
        self.graph.load_state_dict(entry.state)
        self.incumbent_scores = dict(entry.scores)
        self.best_gate = entry.mean

    def _into_pool(self, record: StepRecord, parent: int) -> StepRecord:
        """After a step on `parent`: its winner (which beat the parent) joins the pool, and
        the pool's best program becomes the incumbent again."""
        if record.accepted:
            self.pool.add(
                PoolEntry(self.graph.state_dict(), dict(self.incumbent_scores), parent, self.step)
            )
        self._take(self.pool.best())
        return dataclasses.replace(record, parent=parent, pool=len(self.pool))

    # -- the loop ----------------------------------------------------------------------

    def _result(
        self, status: str, t0: float, final_test: float | None, message: str = ""
    ) -> RunResult:
        return RunResult(
            self.files.root,
            status,
            self.step,
            self.initial_test,
            final_test,
            self.initial_gate,
            self.best_gate,
            self.spend(),
            time.perf_counter() - t0,
            message,
            self.model,
            self.wall(),
        )

    def _open(self, resume: bool) -> None:
        """Take up the run in the run directory (`resume`), or start it there.

        A resume after a kill at any moment works: temporary files of a write the kill
        cut short are removed, budget.json's charge (every request the killed processes may
        have sent) is carried over, and a run killed before its first checkpoint starts
        again from its start (its finished calls are cached, so it reaches the same result).
        """
        remove_temporary_files(self.files.root)
        if resume:
            self.budget.charge_at_least(Budget.read_ledger(self.files.budget))
            if self.files.checkpoint.exists():
                self.restore()
                self.progress(Resumed(self.step))
                return
            self.files.history.unlink(missing_ok=True)
        self.files.root.mkdir(parents=True, exist_ok=True)
        # A single-graph run's config.json has no "edges" key, as before edges existed.
        dump = self.config.model_dump(exclude={"edges"} if self.config.edges is None else None)
        if not resume:  # a resumed run keeps the config.json it was loaded from
            atomic_write_json(self.files.config, dump)
        atomic_write_json(self.files.initial_graph, self._model_dict())

    async def _initial_scores(self) -> None:
        """Score the initial graph on the gate and test sets, each unless already done (a
        run stopped during its initial scoring scores the rest on resume). A run with no
        test split (a benchmark scores its final graph itself) has no initial test score."""
        test_due = self.initial_test is None and bool(self.splits.test)
        if self.initial_gate is not None and not test_due:
            return
        self.progress(InitialStarted(len(self.splits.gate), len(self.splits.test)))
        before = self.meter.snapshot()
        if self.initial_gate is None:
            gate = await self._evaluate(self.splits.gate, what="initial gate")
            self._check_failed_calls(before, "the initial scoring")
            gate_score = _mean(gate)
            if gate_score is None:
                raise ConfigError(
                    "the gate split has no examples: a candidate needs items to be compared "
                    'on; give gate examples (or gate = "train")',
                    key="data.gate",
                )
            self.initial_gate = gate_score
            self.best_gate = self.initial_gate
            self.incumbent_scores = {r.example.id: r.score.value for r in gate}
        if test_due:
            test = await self._evaluate(self.splits.test, what="initial test")
            self._check_failed_calls(before, "the initial scoring")
            self.initial_test = _mean(test)
        self._checkpoint()
        self.progress(InitialScored(self.initial_gate, self.initial_test))

    def _check_failed_calls(self, before: MeterSnapshot, what: str) -> None:
        """Raise `_CallsFailedStop` when more of the model requests made since `before` (one
        unit of work: the initial scoring, a step, the final test) failed after their
        retries than `max_error_rate` allows; by default any failure stops the run.

        A failed call is an error, never a wrong answer: the unit is not committed (a step
        is not written to the history nor the checkpoint) and the run stops resumable, so
        a fault can never silently change a result. Failed calls are not cached and every
        successful one is, so `resume` on a healthy server redoes exactly the failed ones.
        Failures within the allowance are counted in the spend (``errors`` per phase).
        """
        spent = (self.meter.snapshot() - before).total()
        if spent.errors == 0 or spent.errors <= self.max_error_rate * spent.requests:
            return
        raise _CallsFailedStop(
            f"{spent.errors} of {spent.requests} model requests failed after their retries "
            f"during {what}, more than --max-error-rate {self.max_error_rate:.1%} allows; "
            f"{what} was not recorded and the run stopped at step {self.step}. Make the "
            f"model server healthy, then continue with `semgrad resume {self.files.root}` "
            f"(only the failed calls are sent again), or allow failures with "
            f"--max-error-rate."
        )

    async def run(self, *, resume: bool = False) -> RunResult:
        t0 = self._started = time.perf_counter()
        self._open(resume)
        try:
            await self._initial_scores()
            while self.step < self.config.steps:
                self.progress(StepStarted(self.step, self.config.steps))
                before = self.meter.snapshot()
                record = await self._step()
                self._check_failed_calls(before, f"step {self.step + 1}")
                append_history(self.files.history, record)
                self.step += 1
                self._checkpoint()
                self.progress(StepFinished(record))
            self.progress(FinalTestStarted(len(self.splits.test)))
            before = self.meter.snapshot()
            final_test = _mean(await self._evaluate(self.splits.test, what="final test"))
            self._check_failed_calls(before, "the final test")
        except BudgetExceededError as exc:
            # Stop cleanly: the checkpoint keeps the last completed step; spend so far is
            # recorded so a resumed run continues counting from here.
            self._stop_checkpoint("budget")
            self.progress(BudgetStopped(str(exc)))
            return self._result("budget", t0, None, str(exc))
        except _CallsFailedStop as exc:
            self._stop_checkpoint("errors")
            self.progress(CallsFailed(str(exc)))
            return self._result("errors", t0, None, str(exc))
        self._checkpoint(status="finished")
        result = self._result("finished", t0, final_test)
        summary = RunSummary(
            status=result.status,
            steps=result.steps_done,
            initial_test=result.initial_test,
            final_test=result.final_test,
            initial_gate=result.initial_gate,
            best_gate=result.best_gate,
            spend=result.spend,
            test_size=len(self.splits.test),
            gate_size=len(self.splits.gate),
            train_size=len(self.splits.train),
            edges=self.edge_step.summary() if self.edge_step else None,
            requests_sent=self.budget.charged()["calls"],
        )
        atomic_write_json(self.files.summary, summary.to_dict())
        return result


class _CallsFailedStop(Exception):
    """Model calls failed beyond the allowance: the run stops (status "errors")."""


async def aoptimize(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    llms: Mapping[str, LLM] | None = None,
    splits: Splits | None = None,
    metric: Metric | None = None,
    budget_overrides: Mapping[str, int] | None = None,
    progress: Progress = quiet,
    max_error_rate: float = 0.0,
) -> RunResult:
    """Optimize `config`'s graph into `run_dir` (or resume it); what `semgrad optimize`
    and `semgrad resume` do. A run whose model calls fail (after their retries) beyond
    `max_error_rate` stops with status "errors" (see `Trainer._check_failed_calls`)."""
    trainer = Trainer.from_config(
        config,
        run_dir,
        llms=llms,
        splits=splits,
        metric=metric,
        budget_overrides=budget_overrides,
        progress=progress,
        max_error_rate=max_error_rate,
    )
    try:
        return await trainer.run(resume=resume)
    finally:
        await trainer.aclose()


def optimize(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    llms: Mapping[str, LLM] | None = None,
    splits: Splits | None = None,
    metric: Metric | None = None,
    budget_overrides: Mapping[str, int] | None = None,
    progress: Progress = quiet,
    max_error_rate: float = 0.0,
) -> RunResult:
    """The sync door of `aoptimize`."""
    return asyncio.run(
        aoptimize(
            config,
            run_dir,
            resume=resume,
            llms=llms,
            splits=splits,
            metric=metric,
            budget_overrides=budget_overrides,
            progress=progress,
            max_error_rate=max_error_rate,
        )
    )


def load_run_config(run_dir: str | Path) -> RunConfig:
    """The config a run directory recorded (config.json), to resume it."""
    files = RunFiles(run_dir)
    if files.root.is_dir() and not files.config.exists():
        raise DataError(
            f"{files.root} has no config.json: it is not a semgrad run directory, or its run "
            f"was stopped before it started (no model was called yet). Start it again with "
            f"`semgrad optimize CONFIG --out {files.root}`.",
            str(files.config),
        )
    data = files.read_json(files.config)
    base_dir = data.pop("base_dir", ".")
    optimizer = data.get("optimizer")
    if isinstance(optimizer, dict) and "method" not in optimizer:
        # Recorded before methods existed: the paper protocol was the only one.
        data["optimizer"] = {"method": "paper", **optimizer}
    section = data.get("data")
    if isinstance(section, dict):
        # Recorded before settings without effect were refused: they had none, so drop them.
        if section.get("gate", "train") == "train":
            section.pop("gate_size", None)
        if section.get("metric") is None:
            section.pop("metric_options", None)
    return config_from_dict(data, base_dir=base_dir)
