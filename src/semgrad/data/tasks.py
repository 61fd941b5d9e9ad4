"""Tasks: a named set of examples with the metric that scores them, from a short spec.

Spec grammar (case-insensitive)::

    arith:train|val|test            bundled synthetic arithmetic (200 / 100 / 200), no data dir
    gsm8k:train|val|test            GSM8K; val = 300 examples carved from the train file
    bbh:<task>:train|val|test       one BIG-Bench Hard task; 50 train / 50 val / rest test
    liar:train|valid|test           LIAR, 6-way labels, the official files
    liar-binary:train|val|test      LIAR, "is it a lie?" Yes/No, the official files
    file:PATH[:train|val|test]      your own .jsonl or .csv file (`semgrad.data.files`);
                                    ?target=COL&inputs=A,B sets the columns
    hf:NAME[:CONFIG]:SPLIT          a Hugging Face dataset (needs semgrad[datasets])

Splits carved from one file (gsm8k train/val, every bbh split) come from one
``random.Random(seed)`` shuffle (`semgrad.data.split`), so they are disjoint for a given
seed and keep the shuffled order. The ``seed`` changes only those: arith is a fixed
benchmark, and gsm8k:test and the LIAR splits are the official files in file order.
For LIAR, ``val`` and ``valid`` name the same official validation file.
"""

from __future__ import annotations

import os
from typing import Literal

from semgrad.data.arith import ARITH_SIZES, generate_arith
from semgrad.data.example import Task
from semgrad.data.loaders import (
    LIAR_BINARY_LABELS,
    LIAR_LABELS,
    bbh_target_format,
    load_bbh,
    load_gsm8k,
    load_liar,
    resolve_data_dir,
)
from semgrad.data.reviews import REVIEW_LABELS, generate_reviews
from semgrad.data.splits import split
from semgrad.errors import DataError, UserInputError

__all__ = ["BBH_SIZES", "GSM8K_VAL_SIZE", "Task", "list_tasks", "load_task"]

# Carved from GSM8K's train file with one seeded shuffle; the rest (7,173) is gsm8k:train.
GSM8K_VAL_SIZE = 300
# Per BBH task; test is every remaining example (46 to 150 of them, by task).
BBH_SIZES: dict[str, int] = {"train": 50, "val": 50}

_SPLITS = ("train", "val", "test")
_LIAR_FILES: dict[str, Literal["train", "valid", "test"]] = {
    "train": "train",
    "val": "valid",
    "valid": "valid",
    "test": "test",
}


def list_tasks() -> dict[str, str]:
    """The spec forms `load_task` accepts, each with a one-line description."""
    return {
        "arith:train|val|test": (
            "bundled synthetic arithmetic word problems (200/100/200); no data directory needed"
        ),
        "reviews:train|val|test": (
            "bundled POS/NEG review labelling, a convention learnable only from feedback "
            "(60/40/60); no data directory needed"
        ),
        "gsm8k:train|val|test": (
            f"GSM8K grade-school math; val = {GSM8K_VAL_SIZE} seeded from the train file, "
            f"train = the rest, test = the official 1,319"
        ),
        "bbh:<task>:train|val|test": (
            f"one BIG-Bench Hard task (27 of them); {BBH_SIZES['train']} train / "
            f"{BBH_SIZES['val']} val / rest test, seeded"
        ),
        "liar:train|valid|test": "LIAR statements, 6-way truthfulness labels (official files)",
        "liar-binary:train|val|test": (
            "LIAR, is the statement a lie? Yes (label false) / No (label true) (official files)"
        ),
        "file:PATH[:train|val|test]": (
            "your own .jsonl or .csv file: every row, or a 60/20/20 split carved with the seed"
        ),
        "hf:NAME[:CONFIG]:SPLIT": "a Hugging Face dataset split (pip install 'semgrad[datasets]')",
    }


def _bad_spec(spec: str, problem: str) -> UserInputError:
    forms = "\n".join(f"  {form:<28} {text}" for form, text in list_tasks().items())
    return UserInputError(f"bad task spec {spec!r}: {problem}. The task specs are:\n{forms}")


def load_task(spec: str, *, data_dir: str | os.PathLike[str] | None = None, seed: int = 0) -> Task:
    """The task a spec names (see the module docstring for the grammar).

    `data_dir` (else ``$SEMGRAD_DATA_DIR``) is needed for every dataset but arith; `seed`
    picks the shuffle that carves gsm8k train/val and the bbh splits.
    """
    if spec.strip().lower().startswith(("file:", "hf:")):
        from semgrad.data.files import load_data_spec

        return load_data_spec(spec, seed=seed)
    parts = [part.strip() for part in spec.strip().split(":")]
    name = parts[0].lower()
    if name == "bbh":
        if len(parts) != 3 or not parts[1]:
            raise _bad_spec(spec, "a BBH spec names a task and a split, bbh:<task>:<split>")
        bbh_task, which = parts[1].lower(), parts[2].lower()
    else:
        if len(parts) != 2:
            raise _bad_spec(spec, "a spec is <dataset>:<split>")
        bbh_task, which = "", parts[1].lower()
    if name == "arith":
        return _arith(_check(spec, which, _SPLITS))
    if name == "reviews":
        return _reviews(_check(spec, which, _SPLITS))
    if name == "gsm8k":
        return _gsm8k(_check(spec, which, _SPLITS), data_dir, seed)
    if name == "bbh":
        return _bbh(bbh_task, _check(spec, which, _SPLITS), data_dir, seed)
    if name == "liar":
        return _liar(_check(spec, which, tuple(_LIAR_FILES)), data_dir, binary=False)
    if name == "liar-binary":
        return _liar(_check(spec, which, tuple(_LIAR_FILES)), data_dir, binary=True)
    raise _bad_spec(spec, f"unknown dataset {parts[0]!r}")


def _check(spec: str, which: str, allowed: tuple[str, ...]) -> str:
    if which not in allowed:
        raise _bad_spec(spec, f"unknown split {which!r} (expected {' or '.join(allowed)})")
    return which


def _arith(which: str) -> Task:
    examples = generate_arith(which, ARITH_SIZES[which])
    return Task(
        name=f"arith:{which}",
        examples=examples,
        metric_name="numeric",
        description=(
            f"arith {which}: {len(examples)} synthetic multi-step arithmetic word problems; "
            f"the answer is a whole number (metric: numeric)."
        ),
    )


def _reviews(which: str) -> Task:
    examples = generate_reviews(which)  # type: ignore[arg-type]
    return Task(
        name=f"reviews:{which}",
        examples=examples,
        metric_name="label",
        metric_labels=REVIEW_LABELS,
        description=(
            f"reviews {which}: {len(examples)} short reviews labelled POS or NEG; the label "
            f"convention is stated nowhere but in the metric's feedback (metric: label)."
        ),
    )


def _gsm8k(which: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Task:
    if which == "test":
        examples = load_gsm8k(data_dir, "test")
    else:
        pool = load_gsm8k(data_dir, "train")
        examples = split(
            pool, seed=seed, sizes={"val": GSM8K_VAL_SIZE, "train": len(pool) - GSM8K_VAL_SIZE}
        )[which]
    return Task(
        name=f"gsm8k:{which}",
        examples=examples,
        metric_name="numeric",
        description=(
            f"GSM8K {which}: {len(examples)} grade-school math word problems; the answer is "
            f"a number (metric: numeric)."
        ),
    )


def _bbh(task: str, which: str, data_dir: str | os.PathLike[str] | None, seed: int) -> Task:
    root = resolve_data_dir(data_dir)
    pool = load_bbh(root, task)
    fixed = sum(BBH_SIZES.values())
    if len(pool) <= fixed:
        raise DataError(
            f"BBH task {task!r} has {len(pool)} examples, too few for {BBH_SIZES['train']} "
            f"train + {BBH_SIZES['val']} val + a test split.",
            path=str(root / "bbh" / f"{task}.json"),
        )
    parts = split(pool, seed=seed, sizes={**BBH_SIZES, "test": len(pool) - fixed})
    examples = parts[which]
    target_format = bbh_target_format([example.target for example in pool])
    metric = {"integer": "numeric", "text": "exact"}.get(target_format, "choice")
    return Task(
        name=f"bbh:{task}:{which}",
        examples=examples,
        metric_name=metric,
        description=(
            f"BIG-Bench Hard {task} {which}: {len(examples)} examples; targets are "
            f"{target_format} (metric: {metric})."
        ),
    )


def _liar(which: str, data_dir: str | os.PathLike[str] | None, *, binary: bool) -> Task:
    file_split = _LIAR_FILES[which]
    examples = load_liar(data_dir, file_split, binary=binary)
    if binary:
        name = f"liar-binary:{'val' if file_split == 'valid' else file_split}"
        labels = LIAR_BINARY_LABELS
        what = "is the statement a lie? Yes (label false) or No (label true)"
    else:
        name = f"liar:{file_split}"
        labels = LIAR_LABELS
        what = "one of pants-fire, false, barely-true, half-true, mostly-true, true"
    return Task(
        name=name,
        examples=examples,
        metric_name="label",
        metric_labels=labels,
        description=f"LIAR {file_split}: {len(examples)} statements; {what} (metric: label).",
    )
