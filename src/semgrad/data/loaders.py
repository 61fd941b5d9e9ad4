"""Loaders for GSM8K, BIG-Bench Hard and LIAR from a local data directory.

The data directory holds one folder per dataset, laid out as the upstream files are::

    <data dir>/gsm8k/train.jsonl, test.jsonl
    <data dir>/bbh/<task>.json                 (27 tasks)
    <data dir>/liar/train.tsv, valid.tsv, test.tsv

It is given explicitly (``--data-dir``) or by the ``SEMGRAD_DATA_DIR`` environment variable,
read when a loader runs, never at import. Nothing is downloaded; `load_hf` reads a Hugging
Face dataset through the optional ``datasets`` library instead (``pip install
semgrad[datasets]``).

Every loader returns a tuple of `Example` in file order, with stable ids
(``gsm8k/test/17``, ``bbh/navigate/3``, ``liar/valid/1234``) and the graph input
``question``.
"""

from __future__ import annotations

import csv
import importlib
import io
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from semgrad.data.example import Example
from semgrad.errors import DataError, UserInputError
from semgrad.userfiles import parse_json, read_user_text

__all__ = [
    "DATA_DIR_ENV",
    "LIAR_BINARY_LABELS",
    "LIAR_LABELS",
    "bbh_target_format",
    "gsm8k_target",
    "import_datasets",
    "liar_question",
    "list_bbh_tasks",
    "load_bbh",
    "load_gsm8k",
    "load_hf",
    "load_liar",
    "resolve_data_dir",
]

DATA_DIR_ENV = "SEMGRAD_DATA_DIR"

# LIAR's six labels, from most false to most true.
LIAR_LABELS: tuple[str, ...] = (
    "pants-fire",
    "false",
    "barely-true",
    "half-true",
    "mostly-true",
    "true",
)
# The binary LIAR labels: "is the statement a lie?" Yes (label false) / No (label true).
LIAR_BINARY_LABELS: tuple[str, ...] = ("Yes", "No")

PathLike = str | os.PathLike[str]


# --- the data directory ---------------------------------------------------------------------


def resolve_data_dir(explicit: PathLike | None = None) -> Path:
    """The data directory: `explicit` if given, else ``$SEMGRAD_DATA_DIR`` (read now).

    Raises `DataError` when neither is set or the directory does not exist.
    """
    source = "--data-dir"
    if explicit is None:
        from_env = os.environ.get(DATA_DIR_ENV, "").strip()
        if not from_env:
            raise DataError(
                f"no data directory given. Pass --data-dir DIR (or data_dir=...) or set "
                f"{DATA_DIR_ENV}=DIR, where DIR holds the gsm8k/, bbh/ and liar/ folders."
            )
        explicit, source = from_env, DATA_DIR_ENV
    path = Path(explicit).expanduser()
    if not path.is_dir():
        raise DataError(
            f"the data directory {path} (from {source}) does not exist or is not a directory. "
            f"Point --data-dir or {DATA_DIR_ENV} at the directory that holds the gsm8k/, "
            f"bbh/ and liar/ folders.",
            path=str(path),
        )
    return path


def _require_file(path: Path, expected: str) -> Path:
    if not path.is_file():
        raise DataError(
            f"missing data file {path}: expected {expected}. Check that --data-dir / "
            f"{DATA_DIR_ENV} points at the right directory and that the file is there.",
            path=str(path),
        )
    return path


def _check_split(split: str, allowed: Sequence[str], dataset: str) -> None:
    if split not in allowed:
        raise UserInputError(
            f"{dataset} has no split {split!r}; the splits are: {', '.join(allowed)}."
        )


# --- GSM8K ----------------------------------------------------------------------------------

_GSM8K_MARKER = "#### "


def gsm8k_target(answer: str) -> str:
    """The final answer of a GSM8K worked solution: the text after the last ``#### ``,
    with thousands separators removed (``#### 1,000`` -> ``1000``)."""
    if _GSM8K_MARKER not in answer:
        raise ValueError(f"no '{_GSM8K_MARKER.strip()}' final-answer marker in {answer[-80:]!r}")
    return answer.rsplit(_GSM8K_MARKER, 1)[1].strip().replace(",", "")


def load_gsm8k(data_dir: PathLike | None, split: Literal["train", "test"]) -> tuple[Example, ...]:
    """GSM8K from ``<data_dir>/gsm8k/<split>.jsonl`` (7,473 train, 1,319 test).

    Input ``question``; target the final number (after the last ``#### ``, commas
    stripped); id ``gsm8k/<split>/<line index>``; meta ``solution`` is the worked solution.
    """
    _check_split(split, ("train", "test"), "GSM8K")
    path = _require_file(
        resolve_data_dir(data_dir) / "gsm8k" / f"{split}.jsonl",
        f"the GSM8K {split} file, one JSON object per line with 'question' and 'answer'",
    )
    examples: list[Example] = []
    text = read_user_text(path, what="the GSM8K file (JSON lines)", error=_data_error(path))
    # Lines as reading the file in text mode splits them (universal newlines only).
    for index, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n")):
        if not line.strip():
            continue
        where = f"{path}, line {index + 1}"
        try:
            row = json.loads(line)
            question, answer = row["question"], row["answer"]
            target = gsm8k_target(answer)
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, RecursionError) as exc:
            raise DataError(
                f"{where} is not a GSM8K item ({exc}); expected a JSON object with "
                f"'question' and an 'answer' ending in '#### <number>'.",
                path=str(path),
            ) from None
        examples.append(
            Example(
                id=f"gsm8k/{split}/{index}",
                inputs={"question": question},
                target=target,
                meta={"solution": answer},
            )
        )
    return tuple(examples)


# --- BIG-Bench Hard -------------------------------------------------------------------------

_CHOICE = re.compile(r"^\([A-Z]\)$")
_INTEGER = re.compile(r"^-?\d+$")
# Two-valued target vocabularies and the format name each one gets.
_WORD_FORMATS: tuple[tuple[frozenset[str], str], ...] = (
    (frozenset({"True", "False"}), "true/false"),
    (frozenset({"Yes", "No"}), "yes/no"),
    (frozenset({"yes", "no"}), "yes/no"),
    (frozenset({"valid", "invalid"}), "valid/invalid"),
)


def bbh_target_format(targets: Sequence[str]) -> str:
    """The target format of a BBH task, read from its targets.

    ``choice`` (``(A)``..``(R)``; a few upstream items with a text target do not change
    it), ``true/false``, ``yes/no``, ``valid/invalid``, ``integer`` (may be negative), or
    ``text`` (free text: word_sorting, dyck_languages).
    """
    if not targets:
        return "text"
    distinct = set(targets)
    for vocabulary, name in _WORD_FORMATS:
        if distinct <= vocabulary:
            return name
    if all(_INTEGER.match(t) for t in targets):
        return "integer"
    letters = sum(1 for t in targets if _CHOICE.match(t))
    if letters >= 0.9 * len(targets):
        return "choice"
    return "text"


def list_bbh_tasks(data_dir: PathLike | None) -> tuple[str, ...]:
    """The BBH task names (``<task>.json`` files in ``<data_dir>/bbh``), sorted."""
    folder = resolve_data_dir(data_dir) / "bbh"
    if not folder.is_dir():
        raise DataError(
            f"missing folder {folder}: expected the BIG-Bench Hard task files "
            f"(<task>.json) there. Check --data-dir / {DATA_DIR_ENV}.",
            path=str(folder),
        )
    return tuple(sorted(p.stem for p in folder.glob("*.json") if p.is_file()))


def load_bbh(data_dir: PathLike | None, task: str) -> tuple[Example, ...]:
    """All examples of one BBH task from ``<data_dir>/bbh/<task>.json``, in file order.

    Input ``question``; id ``bbh/<task>/<index>``; meta ``task``, ``index`` and
    ``target_format`` (see `bbh_target_format`). The three upstream items of
    multiple-choice tasks whose target is text, not a letter (movie_recommendation 163,
    ruin_names 99 and 144), load unchanged with ``target_format`` ``text`` and
    ``upstream_quirk`` set.
    """
    root = resolve_data_dir(data_dir)
    tasks = list_bbh_tasks(root)
    if task not in tasks:
        raise DataError(
            f"unknown BBH task {task!r}; the tasks in {root / 'bbh'} are: "
            f"{', '.join(tasks) or '(none)'}.",
            path=str(root / "bbh"),
        )
    path = root / "bbh" / f"{task}.json"
    what = 'a BBH task file, {"examples": [{"input": ..., "target": ...}, ...]}'
    text = read_user_text(path, what=what, error=_data_error(path))
    data = parse_json(text, where=str(path), what=what, error=_data_error(path))
    try:
        items = data["examples"]
        pairs = [(str(item["input"]), str(item["target"])) for item in items]
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path} is not a BBH task file ({exc!r}); expected "
            f'{{"examples": [{{"input": ..., "target": ...}}, ...]}}.',
            path=str(path),
        ) from None
    task_format = bbh_target_format([target for _, target in pairs])
    examples: list[Example] = []
    for index, (question, target) in enumerate(pairs):
        meta: dict[str, Any] = {"task": task, "index": index, "target_format": task_format}
        if task_format == "choice" and not _CHOICE.match(target):
            meta["target_format"] = "text"
            meta["upstream_quirk"] = "text target in a multiple-choice task"
        examples.append(
            Example(
                id=f"bbh/{task}/{index}",
                inputs={"question": question},
                target=target,
                meta=meta,
            )
        )
    return tuple(examples)


# --- LIAR -----------------------------------------------------------------------------------

_LIAR_FIELDS = 14
_LIAR_BINARY_TARGETS = {"false": "Yes", "true": "No"}
_CREDIT_HISTORY = ("barely-true", "false", "half-true", "mostly-true", "pants-fire")


def _readable_name(slug: str) -> str:
    # Speakers are slugs ("barack-obama", "chain-email").
    return " ".join(word.capitalize() for word in slug.replace("_", "-").split("-") if word)


def liar_question(
    statement: str, speaker: str, job_title: str, state: str, party: str, context: str
) -> str:
    """The ``question`` input for a LIAR row: the statement and who said it where, one
    field a line, empty fields left out."""
    lines = [
        ("Statement", statement),
        ("Speaker", _readable_name(speaker)),
        ("Job title", job_title),
        ("State", state),
        ("Party", party),
        ("Context", context),
    ]
    return "\n".join(f"{label}: {value.strip()}" for label, value in lines if value.strip())


def _data_error(path: Path) -> Callable[[str], DataError]:
    return lambda message: DataError(message, path=str(path))


def _liar_rows(reader: Any, path: Path) -> Iterator[list[str]]:
    """The rows of a LIAR file; a row the csv module cannot read is a `DataError`."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(
                f"{path}, line {reader.line_num} cannot be read ({exc}); LIAR rows are "
                f"tab-separated statements of at most a few thousand characters.",
                path=str(path),
            ) from None
        yield row


def load_liar(
    data_dir: PathLike | None,
    split: Literal["train", "valid", "test"],
    *,
    binary: bool,
) -> tuple[Example, ...]:
    """LIAR from ``<data_dir>/liar/<split>.tsv`` (tab-separated, no header, no quoting).

    6-way (``binary=False``): every row (10,269 / 1,284 / 1,283), target the label
    (``pants-fire``, ``false``, ``barely-true``, ``half-true``, ``mostly-true``, ``true``),
    id ``liar/<split>/<statement id>``.

    Binary (``binary=True``), the "is it a lie?" variant of ProTeGi and the semantic
    backprop reference code: only the ``false`` and ``true`` rows (3,681 / 432 / 461),
    target ``"Yes"`` for ``false`` (yes, it is a lie) and ``"No"`` for ``true``; id
    ``liar-binary/<split>/<statement id>``.

    Input ``question``: the statement with speaker, job title, state, party and context,
    one per line (`liar_question`). The speaker's credit-history counts are *not* in the
    question (they count the statement itself, so they leak its label); they are in meta
    with the other columns.
    """
    _check_split(split, ("train", "valid", "test"), "LIAR")
    path = _require_file(
        resolve_data_dir(data_dir) / "liar" / f"{split}.tsv",
        f"the LIAR {split} file, tab-separated with {_LIAR_FIELDS} fields a row",
    )
    prefix = "liar-binary" if binary else "liar"
    examples: list[Example] = []
    text = read_user_text(path, what="the LIAR file (tab-separated)", error=_data_error(path))
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t", quoting=csv.QUOTE_NONE)
    for row in _liar_rows(reader, path):
        if not row:
            continue
        if len(row) != _LIAR_FIELDS:
            raise DataError(
                f"{path}, line {reader.line_num} has {len(row)} fields, expected "
                f"{_LIAR_FIELDS} (LIAR rows are tab-separated with no quoting).",
                path=str(path),
            )
        statement_id, label, statement, subjects, speaker, job, state, party = row[:8]
        counts, context = row[8:13], row[13]
        if label not in LIAR_LABELS:
            raise DataError(
                f"{path}, line {reader.line_num} has label {label!r}; expected one of "
                f"{', '.join(LIAR_LABELS)}.",
                path=str(path),
            )
        if binary and label not in _LIAR_BINARY_TARGETS:
            continue
        meta = {
            "statement_id": statement_id,
            "label": label,
            "subjects": subjects,
            "speaker": speaker,
            "job_title": job,
            "state": state,
            "party": party,
            "credit_history": dict(zip(_CREDIT_HISTORY, counts, strict=True)),
            "context": context,
        }
        examples.append(
            Example(
                id=f"{prefix}/{split}/{statement_id.removesuffix('.json')}",
                inputs={"question": liar_question(statement, speaker, job, state, party, context)},
                target=_LIAR_BINARY_TARGETS[label] if binary else label,
                meta=meta,
            )
        )
    return tuple(examples)


# --- Hugging Face datasets (optional) -------------------------------------------------------


def import_datasets(what: str) -> Any:
    """The optional ``datasets`` library, or a `UserInputError` saying how to install it."""
    try:
        return importlib.import_module("datasets")
    except ImportError:
        raise UserInputError(
            f"{what} needs the optional 'datasets' library, which is not installed. "
            f"Install it with: pip install 'semgrad[datasets]'. (Or use the local loaders "
            f"with --data-dir, or a .jsonl/.csv file.)"
        ) from None


def load_hf(
    path: str,
    *,
    split: str,
    name: str | None = None,
    inputs: Mapping[str, str] | None = None,
    target: str = "answer",
    transform_target: Callable[[str], str] | None = None,
    id_prefix: str | None = None,
    revision: str | None = None,
) -> tuple[Example, ...]:
    """Examples from a Hugging Face dataset, through the optional ``datasets`` library.

    `inputs` maps graph input names to dataset columns (default ``{"question":
    "question"}``); `target` is the target column, passed through `transform_target`;
    the remaining columns go to meta. Ids are ``<id_prefix or path>/<split>/<row index>``.
    GSM8K, for instance, with the same ids and targets as `load_gsm8k`::

        load_hf("openai/gsm8k", name="main", split="test",
                transform_target=gsm8k_target, id_prefix="gsm8k")

    This downloads on first use (into the ``datasets`` cache); the local loaders never do.
    """
    datasets = import_datasets("load_hf")
    columns = dict(inputs) if inputs is not None else {"question": "question"}
    rows = datasets.load_dataset(path, name, split=split, revision=revision)
    prefix = id_prefix or path
    examples: list[Example] = []
    for index, row in enumerate(rows):
        try:
            values = {key: str(row[column]) for key, column in columns.items()}
            raw_target = str(row[target])
            final = transform_target(raw_target) if transform_target else raw_target
        except (KeyError, ValueError) as exc:
            raise DataError(
                f"row {index} of Hugging Face dataset {path!r} (split {split!r}) cannot be "
                f"read ({exc!r}); its columns are {sorted(row)}. Set inputs= and target= to "
                f"the right column names.",
            ) from None
        used = {*columns.values(), target}
        examples.append(
            Example(
                id=f"{prefix}/{split}/{index}",
                inputs=values,
                target=final,
                meta={k: v for k, v in row.items() if k not in used},
            )
        )
    return tuple(examples)
