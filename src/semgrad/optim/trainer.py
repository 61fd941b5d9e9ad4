"""The training loop: semantic gradient descent with an update gate, checkpointed per step.

One step (ALGORITHMS.md §3):
 1. pick k training examples the current graph gets wrong (forward passes, cached);
 2. backpropagate the metric's feedback through each of their traces;
 3. ask the optimizer model for a new text per parameter (propose), apply it;
 4. gate: score the candidate on the gate set; keep it only if strictly better,
    else restore the incumbent;
 5. append the step to history.jsonl and replace checkpoint.json atomically.

Everything random in a step comes from a generator seeded by (seed, step), and every model
call is cached at temperature 0, so a run killed at any moment and resumed reaches the same
final graph as an uninterrupted one. A hard budget stops a run cleanly between model calls;
the run resumes from its last completed step.

For a composite graph (a swarm spec in graph.path) `make_trainer` returns a `SwarmTrainer`
(`semgrad.optim.swarm_trainer`), which adds edge steps to this loop.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from semgrad.autograd.backward import backward, parameter_gradients
from semgrad.data.example import Example
from semgrad.data.tasks import load_task
from semgrad.errors import BudgetExceededError, ConfigError
from semgrad.evaluation.evaluator import ExampleResult, aevaluate, is_error
from semgrad.evaluation.metrics import Metric
from semgrad.execution.context import RunContext
from semgrad.graph.builders import hint_graph
from semgrad.graph.core import Graph, Parameter
from semgrad.graph.spec import graph_from_dict, load_graph
from semgrad.llm.budget import Budget
from semgrad.llm.cache import Cache
from semgrad.llm.factory import close_client, default_cache_path, make_client
from semgrad.llm.meter import Meter, Spend
from semgrad.llm.retry import RetryPolicy
from semgrad.llm.stack import build_llm
from semgrad.llm.types import ALL_PHASES, LLM, PHASES
from semgrad.optim.config import RunConfig, config_from_dict
from semgrad.optim.optimizer import NodeOptimizer, Optimizer, SemanticGradientDescent
from semgrad.optim.runfiles import RunFiles, atomic_write_json
from semgrad.prompts import BACKWARD_VERSION, FORWARD_VERSION, OPTIMIZER_VERSION
from semgrad.swarm.spec import is_swarm_file

__all__ = ["Progress", "RunResult", "Splits", "Trainer", "afit", "fit", "make_trainer"]

Progress = Callable[[str, dict[str, Any]], None]


def _quiet(_kind: str, _data: dict[str, Any]) -> None:
    return None


@dataclass(frozen=True)
class Splits:
    train: tuple[Example, ...]
    gate: tuple[Example, ...]
    test: tuple[Example, ...]
    metric: Metric


@dataclass
class RunResult:
    run_dir: Path
    status: str  # "finished" | "budget"
    steps_done: int
    initial_test: float | None
    final_test: float | None
    initial_gate: float | None
    best_gate: float | None
    spend: dict[str, dict[str, int]] = field(default_factory=dict)
    wall_s: float = 0.0
    message: str = ""


def load_splits(config: RunConfig) -> Splits:
    data = config.data
    data_dir = config.resolve(data.data_dir) if data.data_dir else None

    def take(spec: str, size: int | None) -> tuple[tuple[Example, ...], Metric]:
        seed = config.seed if data.split_seed is None else data.split_seed
        task = load_task(spec, data_dir=data_dir, seed=seed)
        examples = task.examples[:size] if size else task.examples
        return tuple(examples), task.metric

    train, metric = take(data.train, data.train_size)
    test, _ = take(data.test, data.test_size)
    if data.gate == "train":
        gate = train
    else:
        gate, _ = take(data.gate, data.gate_size)
    ids = {"train": {e.id for e in train}, "test": {e.id for e in test}}
    if data.gate != "train":
        ids["gate"] = {e.id for e in gate}
    names = list(ids)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            shared = ids[a] & ids[b]
            if shared:
                raise ConfigError(
                    f"the {a} and {b} splits share {len(shared)} examples (e.g. "
                    f"{sorted(shared)[0]}); a held-out score needs disjoint splits",
                    key="data",
                )
    return Splits(train, gate, test, metric)


def load_initial_graph(config: RunConfig) -> Graph:
    if config.graph.path is not None:
        return load_graph(config.resolve(config.graph.path))
    return hint_graph(config.graph.hints or 2)


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


class Trainer:
    """Owns the models, the run directory and the state of one optimization run."""

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | Path,
        *,
        llms: dict[str, LLM] | None = None,
        splits: Splits | None = None,
        budget_overrides: dict[str, int] | None = None,
        progress: Progress = _quiet,
    ) -> None:
        """`llms` (raw clients by role) and `splits` replace what the config names; the
        clients are still wrapped with the run's meter and budget (tests use this)."""
        self.config = config
        self.files = RunFiles(run_dir)
        self.progress = progress
        self.meter = Meter()
        limits = {**config.budget, **(budget_overrides or {})}
        self.budget = Budget(limits) if limits else None
        self._clients: list[LLM] = []
        self._cache: Cache | None = None
        self.llms = self._wrap(llms) if llms is not None else self._build_llms()
        self.ctx = RunContext(
            llms=self.llms, max_concurrency=config.models.concurrency, seed=config.seed
        )
        self.splits = splits if splits is not None else load_splits(config)
        self.graph = self._load_graph()
        self.optimizer = self._make_optimizer()
        # State carried in the checkpoint.
        self.step = 0
        self.initial_gate: float | None = None
        self.best_gate: float | None = None
        self.initial_test: float | None = None
        self.prior_spend: dict[str, dict[str, int]] = {}

    # -- setup -------------------------------------------------------------------------

    def _build_llms(self) -> dict[str, LLM]:
        models = self.config.models
        if models.cache_mode != "off":
            path = self.config.resolve(models.cache) if models.cache else default_cache_path()
            self._cache = Cache(path, mode=models.cache_mode)
        clients: dict[tuple[str, str | None, str | None], LLM] = {}
        out: dict[str, LLM] = {}
        for role in ("forward", "backward", "optimizer"):
            spec = getattr(models, role)
            if spec.key() not in clients:
                client = make_client(
                    spec.model,
                    base_url=spec.base_url,
                    api_key_env=spec.api_key_env,
                    slots=models.slots,
                )
                clients[spec.key()] = build_llm(
                    client,
                    cache=self._cache,
                    meter=self.meter,
                    budget=self.budget,
                    retry=RetryPolicy(max_attempts=models.max_attempts),
                    max_concurrency=None if spec.base_url else models.slots,
                )
                self._clients.append(client)
            out[role] = clients[spec.key()]
        return out

    def _wrap(self, llms: dict[str, LLM]) -> dict[str, LLM]:
        wrapped: dict[int, LLM] = {}
        for client in llms.values():
            if id(client) not in wrapped:
                wrapped[id(client)] = build_llm(
                    client, meter=self.meter, budget=self.budget, retry=None
                )
        return {role: wrapped[id(client)] for role, client in llms.items()}

    def _load_graph(self) -> Graph:
        """The graph to optimize (a subclass may realise it from something else)."""
        if self.config.edges is not None:
            raise ConfigError(
                "edge optimization needs a composite graph: graph.path must name a swarm "
                'spec ("kind": "swarm"); remove the [edges] section for a single graph',
                key="edges",
            )
        return load_initial_graph(self.config)

    def _text_parameters(self) -> list[tuple[str, Parameter]]:
        """The text parameters the node optimizer owns, by dotted name."""
        return list(self.graph.named_parameters())

    def _make_optimizer(self) -> Optimizer:
        opt = self.config.optimizer
        params = self._text_parameters()
        if opt.name == "node":
            return NodeOptimizer(
                params, max_tokens=opt.max_tokens, memory=opt.memory, seed=self.config.seed
            )
        return SemanticGradientDescent(
            params,
            max_tokens=opt.max_tokens,
            memory=opt.memory,
            partial=opt.partial,
            use_gradients=opt.use_gradients,
            seed=self.config.seed,
        )

    async def aclose(self) -> None:
        for client in self._clients:
            await close_client(client)
        if self._cache is not None:
            self._cache.close()

    # -- state -------------------------------------------------------------------------

    def spend(self) -> dict[str, dict[str, int]]:
        return _add_spend(self.prior_spend, _spend_dict(self.meter.snapshot().by_phase()))

    def _checkpoint_state(self, status: str) -> dict[str, Any]:
        return {
            "status": status,
            "step": self.step,
            "graph": self.graph.to_dict(),
            "initial_gate": self.initial_gate,
            "best_gate": self.best_gate,
            "initial_test": self.initial_test,
            "optimizer": self.optimizer.state_dict(),
            "spend": self.spend(),
            "budget_spent": self.budget.spent if self.budget else {},
            "prompts": [FORWARD_VERSION, BACKWARD_VERSION, OPTIMIZER_VERSION],
        }

    def _best_graph_dict(self) -> dict[str, Any]:
        """What best_graph.json holds: the spec of the best graph so far."""
        return self.graph.to_dict()

    def _checkpoint(self, status: str = "running") -> None:
        atomic_write_json(self.files.checkpoint, self._checkpoint_state(status))
        atomic_write_json(self.files.best_graph, self._best_graph_dict())

    def _restore_model(self, state: Mapping[str, Any]) -> None:
        """Set the graph's texts (and whatever else a subclass learns) from a checkpoint."""
        self.graph.load_state_dict(graph_from_dict(state["graph"]).state_dict())

    def restore(self) -> None:
        state = self.files.read_json(self.files.checkpoint)
        self.step = int(state["step"])
        self._restore_model(state)
        self.initial_gate = state.get("initial_gate")
        self.best_gate = state.get("best_gate")
        self.initial_test = state.get("initial_test")
        self.optimizer.load_state_dict(state.get("optimizer", {}))
        self.prior_spend = state.get("spend", {})
        if self.budget is not None:
            for key, value in dict(state.get("budget_spent", {})).items():
                if key in self.budget.spent:
                    self.budget.spent[key] = int(value)
        self.files.truncate_history(self.step)

    # -- evaluation --------------------------------------------------------------------

    async def _evaluate(
        self, examples: Sequence[Example], phase: str = "evaluation", *, what: str = "scoring"
    ) -> list[ExampleResult]:
        ctx = self.ctx.with_phase(phase)  # type: ignore[arg-type]
        total = len(examples)
        self.progress("examples", {"what": what, "done": 0, "total": total})
        done = 0

        def tick(_result: ExampleResult) -> None:
            nonlocal done
            done += 1
            self.progress("examples", {"what": what, "done": done, "total": total})

        result = await aevaluate(self.graph, examples, self.splits.metric, ctx, on_result=tick)
        return list(result.results)

    async def _gate(self, incumbent: float | None) -> dict[str, Any]:
        """Score the current (candidate) graph on the gate set.

        With the early-stop gate, examples are scored in chunks and scoring stops as soon
        as the candidate cannot strictly beat the incumbent even if it got every remaining
        example right: a rejection decided early costs fewer calls and can never be wrong.
        """
        gate = self.splits.gate
        mode = self.config.optimizer.gate
        n = len(gate)
        if mode != "early-stop" or incumbent is None:
            results = await self._evaluate(gate, what="gate")
            total = sum(r.score.value for r in results)
            return {"score": total / n, "evaluated": n, "of": n, "early_stopped": False}
        # Chunks of just enough examples to keep `concurrency` model calls in flight: a
        # smaller chunk decides sooner, a larger one would not run faster.
        llm_nodes = sum(1 for node in self.graph.nodes.values() if node.kind == "llm") or 1
        chunk = max(2, -(-self.config.models.concurrency // llm_nodes))
        total = 0.0
        done = 0
        tokens = 0
        for start in range(0, n, chunk):
            part = await self._evaluate(gate[start : start + chunk], what="gate (early stop)")
            total += sum(r.score.value for r in part)
            tokens += sum(r.trace.usage.total_tokens for r in part)
            done += len(part)
            if done < n and total + (n - done) <= incumbent * n + 1e-9:
                per_example = tokens / done if done else 0
                return {
                    "score": total / done,
                    "evaluated": done,
                    "of": n,
                    "early_stopped": True,
                    "tokens_saved_estimate": round(per_example * (n - done)),
                }
        return {"score": total / n, "evaluated": n, "of": n, "early_stopped": False}

    # -- one step ----------------------------------------------------------------------

    async def _pick_batch(self, rng: random.Random) -> list[ExampleResult]:
        k = self.config.optimizer.batch_size
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
        # Fewer than k wrong answers in the whole training split: fill with right ones.
        return (wrong + right)[:k]

    async def _step(self) -> dict[str, Any]:
        t0 = time.perf_counter()
        before = self.meter.snapshot()
        step = self.step
        incumbent_score = self.best_gate
        opt_cfg = self.config.optimizer
        rng = random.Random(f"{self.config.seed}/{step}/batch")
        batch = await self._pick_batch(rng)
        traces = [r.trace for r in batch]
        backward_records = []
        if isinstance(self.optimizer, SemanticGradientDescent) and opt_cfg.use_gradients:
            backward_records = await asyncio.gather(
                *(
                    backward(self.graph, r.trace, r.score.feedback, self.ctx, mode=opt_cfg.backward)
                    for r in batch
                )
            )
        else:
            for r in batch:  # no backprop: only the output node learns the feedback
                r.trace.nodes[r.trace.output_node].grad = [r.score.feedback]
        parameter_gradients(self.graph, traces)
        gradients = {name: list(p.grad) for name, p in self.graph.named_parameters()}
        proposals = await self.optimizer.propose(traces, self.ctx)
        incumbent_state = self.graph.state_dict()
        changed = self.optimizer.apply(proposals, step=step)
        if not changed and opt_cfg.retry_temperature > 0:
            # Nothing to gate: the small optimizer model failed or echoed the old text.
            # One more sample at a higher temperature (seeded, and cached as sample 1).
            retry = await self.optimizer.propose(
                traces, self.ctx, temperature=opt_cfg.retry_temperature, sample_index=1
            )
            proposals += retry
            changed = self.optimizer.apply(retry, step=step)
        gate: dict[str, Any] = {}
        if not changed:
            accepted = False
            candidate_score = None
        elif opt_cfg.gate == "none":
            accepted = True
            candidate_score = None
        else:
            gate = await self._gate(self.best_gate)
            candidate_score = gate["score"]
            accepted = self.best_gate is None or candidate_score > self.best_gate
        if accepted:
            if candidate_score is not None:
                self.best_gate = candidate_score
        else:
            self.graph.load_state_dict(incumbent_state)
        if candidate_score is not None and changed:
            self.optimizer.remember(
                {
                    n: (p.new or "", candidate_score)
                    for p in proposals
                    if p.ok and (n := p.parameter) in changed
                }
            )
        self.graph.zero_grad()
        spent = self.meter.snapshot() - before
        return {
            "step": step,
            "batch": [
                {
                    "id": r.example.id,
                    "inputs": dict(r.example.inputs),
                    "target": r.example.target,
                    "output": r.trace.output,
                    "score": r.score.value,
                    "feedback": r.score.feedback,
                    "node_outputs": {n: t.value for n, t in r.trace.nodes.items()},
                    "node_gradients": {n: list(t.grad) for n, t in r.trace.nodes.items()},
                }
                for r in batch
            ],
            "backward": [b.to_dict() for b in backward_records],
            "gradients": gradients,
            "proposals": [p.to_dict() for p in proposals],
            "changed": changed,
            "candidate_score": candidate_score,
            "incumbent_score": incumbent_score,
            "accepted": accepted,
            "gate": gate,
            "state": self.graph.state_dict(),
            "best_gate": self.best_gate,
            "spend": _spend_dict(spent.by_phase()),
            "wall_s": round(time.perf_counter() - t0, 3),
        }

    # -- the loop ----------------------------------------------------------------------

    async def run(self, *, resume: bool = False) -> RunResult:
        t0 = time.perf_counter()
        if resume:
            self.restore()
            self.progress("resume", {"step": self.step})
        else:
            self.files.root.mkdir(parents=True, exist_ok=True)
            # A single-graph run's config.json has no "edges" key, as before edges existed.
            dump = self.config.model_dump(exclude={"edges"} if self.config.edges is None else None)
            atomic_write_json(self.files.config, dump)
            atomic_write_json(self.files.initial_graph, self._best_graph_dict())
        try:
            if self.initial_gate is None:
                self.progress(
                    "initial", {"gate": len(self.splits.gate), "test": len(self.splits.test)}
                )
                gate = await self._evaluate(self.splits.gate, what="initial gate")
                self.initial_gate = sum(r.score.value for r in gate) / len(gate)
                self.best_gate = self.initial_gate
                test = await self._evaluate(self.splits.test, what="initial test")
                self.initial_test = sum(r.score.value for r in test) / len(test)
                self._checkpoint()
                self.progress(
                    "initial_done", {"gate": self.initial_gate, "test": self.initial_test}
                )
            while self.step < self.config.steps:
                self.progress("step", {"step": self.step, "steps": self.config.steps})
                record = await self._step()
                self.files.append_history(record)
                self.step += 1
                self._checkpoint()
                self.progress("step_done", record)
            self.progress("final", {"test": len(self.splits.test)})
            final = await self._evaluate(self.splits.test, what="final test")
            final_test = sum(r.score.value for r in final) / len(final)
        except BudgetExceededError as exc:
            # Stop cleanly: the checkpoint keeps the last completed step; spend so far is
            # recorded so a resumed run continues counting from here.
            self._checkpoint(status="budget")
            result = RunResult(
                self.files.root,
                "budget",
                self.step,
                self.initial_test,
                None,
                self.initial_gate,
                self.best_gate,
                self.spend(),
                time.perf_counter() - t0,
                str(exc),
            )
            self.progress("budget", {"message": str(exc)})
            return result
        self._checkpoint(status="finished")
        result = RunResult(
            self.files.root,
            "finished",
            self.step,
            self.initial_test,
            final_test,
            self.initial_gate,
            self.best_gate,
            self.spend(),
            time.perf_counter() - t0,
        )
        atomic_write_json(
            self.files.summary,
            {
                "status": result.status,
                "steps": result.steps_done,
                "initial_test": result.initial_test,
                "final_test": result.final_test,
                "initial_gate": result.initial_gate,
                "best_gate": result.best_gate,
                "spend": result.spend,
                "test_size": len(self.splits.test),
                "gate_size": len(self.splits.gate),
                "train_size": len(self.splits.train),
                **self._summary_extra(),
            },
        )
        return result

    def _summary_extra(self) -> dict[str, Any]:
        """More entries for summary.json (a subclass's learned structure)."""
        return {}


def make_trainer(
    config: RunConfig,
    run_dir: str | Path,
    *,
    llms: dict[str, LLM] | None = None,
    splits: Splits | None = None,
    budget_overrides: dict[str, int] | None = None,
    progress: Progress = _quiet,
) -> Trainer:
    """The trainer for `config`: a `SwarmTrainer` when graph.path is a swarm spec (node and
    edge optimization in one loop), else a `Trainer`."""
    kwargs: dict[str, Any] = {
        "llms": llms,
        "splits": splits,
        "budget_overrides": budget_overrides,
        "progress": progress,
    }
    if config.graph.path is not None and is_swarm_file(config.resolve(config.graph.path)):
        from semgrad.optim.swarm_trainer import SwarmTrainer

        return SwarmTrainer(config, run_dir, **kwargs)
    return Trainer(config, run_dir, **kwargs)


async def afit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    llms: dict[str, LLM] | None = None,
    splits: Splits | None = None,
    budget_overrides: dict[str, int] | None = None,
    progress: Progress = _quiet,
) -> RunResult:
    trainer = make_trainer(
        config,
        run_dir,
        llms=llms,
        splits=splits,
        budget_overrides=budget_overrides,
        progress=progress,
    )
    try:
        return await trainer.run(resume=resume)
    finally:
        await trainer.aclose()


def fit(
    config: RunConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    llms: dict[str, LLM] | None = None,
    splits: Splits | None = None,
    budget_overrides: dict[str, int] | None = None,
    progress: Progress = _quiet,
) -> RunResult:
    """The sync door: optimize `config`'s graph into `run_dir` (or resume it)."""
    return asyncio.run(
        afit(
            config,
            run_dir,
            resume=resume,
            llms=llms,
            splits=splits,
            budget_overrides=budget_overrides,
            progress=progress,
        )
    )


def load_run_config(run_dir: str | Path) -> RunConfig:
    files = RunFiles(run_dir)
    data = files.read_json(files.config)
    base_dir = data.pop("base_dir", ".")
    return config_from_dict(data, base_dir=base_dir)
