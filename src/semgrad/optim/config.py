"""The optimization config (`semgrad optimize CONFIG.toml`), validated with pydantic.

Every error names the key that is wrong. Paths in the file are relative to the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from semgrad.errors import ConfigError, GraphError
from semgrad.graph.functions import resolve_function
from semgrad.llm.config import ModelConfig, ModelsConfig, StrictConfig
from semgrad.userfiles import invalid_keys, parse_toml, read_user_text

__all__ = [
    "LATER_SEARCH_SETTINGS",
    "DataConfig",
    "EdgesConfig",
    "GraphConfig",
    "Method",
    "ModelConfig",
    "ModelsConfig",
    "OptimizerConfig",
    "RunConfig",
    "load_config",
]


class GraphConfig(StrictConfig):
    path: str | None = None
    hints: int | None = Field(None, ge=1, le=16)
    # With hints: a function node after the final node answers (e.g. "calculate").
    answer_fn: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> GraphConfig:
        if (self.path is None) == (self.hints is None):
            raise ValueError("give exactly one of graph.path (a JSON spec) or graph.hints (k)")
        if self.answer_fn is not None:
            if self.hints is None:
                raise ValueError(
                    "graph.answer_fn goes with graph.hints; with graph.path, add the function "
                    "node to the spec itself"
                )
            try:  # an unknown name fails here, with the choices
                resolve_function(self.answer_fn)
            except GraphError as err:
                raise ValueError(f"graph.answer_fn: {err}") from None
        return self


class DataConfig(StrictConfig):
    """The splits: task specs (``bbh:navigate:train``) or ``file:PATH`` (JSONL examples)."""

    train: str
    gate: str = "train"
    test: str
    train_size: int | None = Field(None, ge=1)
    gate_size: int | None = Field(None, ge=1)
    test_size: int | None = Field(None, ge=1)
    data_dir: str | None = None
    # Seed of the one shuffle that carves the splits; defaults to the run's seed. Fix it to
    # compare seeds of the optimizer on the same train/gate/test examples.
    split_seed: int | None = None
    # The metric, when not the task's: a built-in name ("numeric", "exact", "choice",
    # "label") with its options, or "module:qualname" (see semgrad.optim.splits).
    metric: str | None = None
    metric_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _nothing_ignored(self) -> DataConfig:
        """Refuse the settings that would have no effect (they used to be dropped)."""
        if self.metric_options and self.metric is None:
            raise ValueError(
                "metric_options are options of data.metric, which is not set; set data.metric "
                '(e.g. "numeric") or remove metric_options'
            )
        if self.gate == "train" and self.gate_size is not None:
            raise ValueError(
                'gate_size sizes a gate split of its own, but gate = "train" gates on the '
                "training examples; set data.gate to a split (e.g. a task's val split) or "
                "remove gate_size"
            )
        return self


Method = Literal["search", "paper", "demos"]
"""How a text step is taken (README, "Which method to use when"):

- ``search`` (default): gradient-guided candidate search (ALGORITHMS.md §3b): a minibatch of
  mistakes, semantic backprop, a few small candidate edits, a screen on the minibatch plus
  a few validation items, a paired gate against the incumbent on the same items;
- ``paper``: the paper's protocol exactly (§3): a batch of 2 mistakes, one proposal per
  parameter, a full update, a strict gate (score > incumbent's);
- ``demos``: the search with demonstration changes only (no optimizer-model call).
"""

DEFAULT_TEACHER = 8
"""Examples per step the teacher answers in the search (`OptimizerConfig.teacher`)."""

# Settings whose default depends on the method: (paper, search and demos).
_METHOD_DEFAULTS: dict[str, tuple[object, object]] = {
    "batch_size": (2, 4),
    "gate": ("full", "early-stop"),
}


# Settings the paper method refuses when on (its protocol is the paper's), and why.
_SEARCH_ONLY = {
    "teacher": "the paper method changes instructions only",
    "final_answer": "the paper method's optimizer prompt is the paper's",
    "node_fallback": "the paper method proposes one edit per parameter, not candidates",
    "gate_held_out": "the paper method has no screen",
    "skip_shown": "the paper method changes no demonstrations",
}

# The search's settings added since runs record their optimizer settings, oldest first: a
# run recorded without one ran without it (it is off when such a run is replayed, and the
# benchmark report marks it).
LATER_SEARCH_SETTINGS = ("final_answer", "gate_held_out", "skip_shown")


class OptimizerConfig(StrictConfig):
    method: Method = "search"
    name: Literal["sgd", "node"] = "sgd"
    # Default 2 for the paper method, 4 for the search (see _METHOD_DEFAULTS).
    batch_size: int = Field(4, ge=1, le=64)
    backward: Literal["neighbors", "independent"] = "neighbors"
    use_gradients: bool = True
    partial: float | None = Field(None, gt=0.0, le=1.0)
    memory: int = Field(0, ge=0, le=32)
    # Default "full" for the paper method; "early-stop" (exact) for the search.
    gate: Literal["full", "early-stop", "none"] = "early-stop"
    max_tokens: int = Field(400, ge=16, le=8192)
    # When no proposal of a step changed anything (all failed or repeated the old text),
    # ask once more at this temperature; 0 turns the retry off. The search samples its
    # diversity candidates at this temperature too.
    retry_temperature: float = Field(0.7, ge=0.0, le=2.0)
    # -- the search (method "search" / "demos") --
    candidates: int = Field(4, ge=1, le=32)  # candidate edits per step
    screen_size: int = Field(8, ge=0, le=1024)  # validation items of the screen
    # Survivors of the screen that go on to the full gate, best first (successive halving:
    # most of a step's forward requests are gate requests; 1 since 2026-12-03, before
    # every survivor was gated).
    gate_survivors: int = Field(1, ge=1, le=32)
    gate_rule: Literal["margin", "sign"] = "margin"  # the paired gate's rule (gate.py)
    gate_margin: int = Field(1, ge=1, le=1024)  # wins - losses needed ("margin")
    gate_level: float = Field(0.05, gt=0.0, lt=1.0)  # the sign test's level ("sign")
    # The gate decides on the validation items the screen did not use: a candidate is
    # gated because it won its screen, so its wins there are selected, not measured (on a
    # gate set whose screen drew more than half of it, every item). Default true for the
    # search (since 2026-12-03; before, the screened items counted), false for the paper
    # method, which has no screen.
    gate_held_out: bool = True
    # A candidate whose changed demonstrations show an item's own inputs (a teacher's or a
    # successful trace's answer to that very training question) is not scored on that item
    # in the screen, nor credited for it by the gate: its answer there is shown, not
    # found. Default true for the search (since 2026-12-03; before, such items counted: in
    # the BBH runs 9 of the 37 minibatch wins of the screens were items a candidate's
    # demonstrations showed), false for the paper method, which changes no demonstrations.
    skip_shown: bool = True
    # Demonstrations per node in a demos candidate; 0: no demos candidates.
    demos: int = Field(3, ge=0, le=16)
    rejected: int = Field(3, ge=0, le=16)  # recently rejected texts shown to the optimizer
    # Training examples per step whose output-node prompt the teacher model ([models]
    # teacher, default the backward model) answers; the answers the metric scores 1 become
    # demonstrations for the output node (`semgrad.optim.demos.ateach`). Default
    # DEFAULT_TEACHER for the search, 0 (off) for "demos" and "paper".
    teacher: int = Field(DEFAULT_TEACHER, ge=0, le=256)
    # What a step edits: "incumbent" (the best program so far) or "pareto" (a program
    # drawn from the Pareto front of the accepted programs' per-item gate scores, GEPA's
    # way; semgrad.optim.pool).
    parents: Literal["incumbent", "pareto"] = "incumbent"
    # Show the optimizer, for a node that is not the output node, the metric's feedback on
    # the system's final answer (what it was and should have been) beside the feedback on
    # the node's own output. Default true for the search (since 2026-12-03), false for the
    # paper method, whose prompt is the paper's.
    final_answer: bool = True
    # When the most blamed node's proposal changes nothing (it failed, or repeated the
    # current text, retry included), the one-node candidate takes the next blamed node's
    # proposal from the same optimizer reply instead of being dropped (no extra requests).
    # Off by default: on BBH object_counting (benchmarks/decide, method "search-fallback",
    # 3 seeds) it changed one step's candidate and none of the final programs.
    node_fallback: bool = False

    @model_validator(mode="before")
    @classmethod
    def _method_defaults(cls, data: Any) -> Any:
        """Fill the settings whose default depends on the method (`_METHOD_DEFAULTS`)."""
        if not isinstance(data, dict):
            return data
        method = data.get("method", "search")
        index = 0 if method == "paper" else 1
        filled = {key: values[index] for key, values in _METHOD_DEFAULTS.items()}
        filled["teacher"] = DEFAULT_TEACHER if method == "search" else 0
        for key in LATER_SEARCH_SETTINGS:
            filled[key] = method != "paper"
        out = {**filled, **data}
        for key, why in _SEARCH_ONLY.items():
            if method == "paper" and out.get(key):
                raise ValueError(
                    f"{key} is a setting of the search: {why}; remove {key} or use "
                    'method = "search"'
                )
        if out.get("parents") == "pareto" and method == "paper":
            raise ValueError(
                'parents = "pareto" is a setting of the search: the paper method edits the '
                'incumbent; remove parents or use method = "search"'
            )
        if out.get("parents") == "pareto" and out.get("gate") == "none":
            raise ValueError(
                'parents = "pareto" draws parents by their per-item gate scores, which '
                'gate = "none" does not measure; use gate = "early-stop" or "full"'
            )
        if method == "demos" and out.get("demos") == 0:
            raise ValueError('method = "demos" needs demos >= 1 (demonstrations per node)')
        if method == "demos" and out.get("gate") == "none":
            raise ValueError(
                'gate = "none" is an ablation of the paper and search methods; the demos '
                'method always gates (use gate = "full" or "early-stop")'
            )
        return out


class EdgesConfig(StrictConfig):
    """Edge optimization of a composite graph (a swarm spec in graph.path).

    `schedule` says what each step does: "alternate" (edge steps and node steps take turns,
    starting with edges), "interleave" (every step updates the edges, then the texts),
    "edges-only" or "nodes-only".
    """

    schedule: Literal["alternate", "interleave", "edges-only", "nodes-only"] = "alternate"
    lr: float = Field(0.1, gt=0.0, le=10.0)
    samples: int = Field(4, ge=1, le=256)  # graphs sampled per edge step
    batch_size: int = Field(4, ge=1, le=1024)  # training examples each sample is scored on
    baseline_decay: float = Field(0.9, ge=0.0, le=1.0)
    temperature: float = Field(1.0, gt=0.0, le=100.0)
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    betas: tuple[float, float] = Field((0.9, 0.999), strict=False)  # a TOML array
    eps: float = Field(1e-8, gt=0.0)

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        if not all(0.0 <= b < 1.0 for b in value):
            raise ValueError(f"both betas must be in [0, 1), got {list(value)}")
        return value


class RunConfig(StrictConfig):
    name: str = "run"
    seed: int = 0
    steps: int = Field(4, ge=0, le=10_000)
    graph: GraphConfig
    models: ModelsConfig = ModelsConfig()
    data: DataConfig
    optimizer: OptimizerConfig = OptimizerConfig()
    # Only for a composite graph (a swarm spec); None for a single graph.
    edges: EdgesConfig | None = None
    budget: dict[str, int] = Field(default_factory=dict)
    # Where the config file was, to resolve relative paths (not part of the file).
    base_dir: str = "."

    @model_validator(mode="after")
    def _pool_of_one_graph(self) -> RunConfig:
        if self.edges is not None and self.optimizer.parents == "pareto":
            raise ValueError(
                'optimizer.parents = "pareto" keeps a pool of programs of one graph, and '
                "edge optimization changes the graph itself; remove the [edges] section or "
                'set parents = "incumbent"'
            )
        return self

    def resolve(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p


def _describe(err: ValidationError) -> tuple[str, str]:
    problems = invalid_keys(err, RunConfig, hidden=("base_dir",))
    return problems[0][0], "; ".join(f"{key}: {problem}" for key, problem in problems)


def config_from_dict(data: dict[str, Any], *, base_dir: str = ".") -> RunConfig:
    try:
        return RunConfig.model_validate({**data, "base_dir": base_dir})
    except ValidationError as err:
        key, msg = _describe(err)
        raise ConfigError(msg, key=key) from None


def load_config(path: str | Path) -> RunConfig:
    p = Path(path)
    what = "a run config (.toml)"
    text = read_user_text(p, what=what, error=ConfigError)
    data = parse_toml(text, where=str(p), what=what, error=ConfigError)
    return config_from_dict(data, base_dir=str(p.parent.resolve()))
