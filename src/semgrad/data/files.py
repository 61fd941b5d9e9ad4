"""Your own data: a JSON Lines or CSV file, or a Hugging Face dataset, as `Example`s.

Columns map to an example like this (every choice can be overridden):

- the **target** is the column named by `target_col`, else the first of ``target``,
  ``answer``, ``label`` that the data has;
- the **inputs** are the columns named by `input_cols`, else every column except the
  target and ``id``; their names are the graph's input names (a ``question`` column feeds
  the graph input ``question``);
- the **id** is the ``id`` column when there is one, else ``<file stem>/<row>``: the line
  number in a JSONL file, the data row number (1-based, header excluded) in a CSV file,
  so ids stay the same as long as the rows do;
- values that are not text (numbers, booleans, lists) are written as JSON (``7``,
  ``true``); a missing or null value is an error naming the row and column.

As task specs (`semgrad.load_task`, ``--data``, ``[data] train = ...`` in configs)::

    file:PATH                       every row, in file order
    file:PATH:train|val|test        a split carved from the file, see `FILE_SPLITS`
    hf:NAME:SPLIT                   a Hugging Face dataset's split (needs semgrad[datasets])
    hf:NAME:CONFIG:SPLIT            ... of a named configuration
    ...?target=COL&inputs=A,B       column options, for configs (``--target-col`` etc. win)

Splits of a file come from the one seeded shuffle of `semgrad.data.split` (60 % train,
20 % val, 20 % test, in that order of the permutation), so they are disjoint for a seed
and the same in every process; they are checked with `assert_disjoint` anyway.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from semgrad.data.example import Example, Task
from semgrad.data.loaders import import_datasets
from semgrad.data.splits import assert_disjoint, split
from semgrad.errors import DataError, UserInputError
from semgrad.userfiles import read_user_text

__all__ = [
    "FILE_SPLITS",
    "TARGET_COLUMNS",
    "carve",
    "examples_from_rows",
    "file_sha256",
    "is_data_path",
    "load_data_spec",
    "load_file",
    "load_file_task",
    "load_hf_task",
    "resolve_spec_path",
]

# The target column when none is named: the first of these the data has.
TARGET_COLUMNS: tuple[str, ...] = ("target", "answer", "label")
# The shares of a file's split specs (file:PATH:train|val|test), carved in this order.
FILE_SPLITS: dict[str, float] = {"train": 0.6, "val": 0.2, "test": 0.2}

_SUFFIXES = (".jsonl", ".csv")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 of a data file's bytes: what a run records to know its data again."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def examples_from_rows(
    rows: Iterable[tuple[int, Mapping[str, Any]]],
    *,
    source: str,
    id_prefix: str,
    row_word: str = "row",
    input_cols: Sequence[str] | None = None,
    target_col: str | None = None,
) -> tuple[Example, ...]:
    """Examples from numbered rows (row number, column -> value), mapped as the module says.

    `source` names the data in error messages, `row_word` what a row number counts
    (``line`` for JSONL); ids are ``<id_prefix>/<row number>`` unless there is an ``id``
    column.
    """
    examples: list[Example] = []
    target: str | None = None
    inputs: tuple[str, ...] = ()
    for number, row in rows:
        if target is None:
            columns = list(row)
            target, inputs = _columns(columns, source, input_cols, target_col)
        where = f"{source}, {row_word} {number}"
        values: dict[str, str] = {}
        for column in (*inputs, target):
            value = row.get(column)
            if value is None:
                what = "no" if column not in row else "a null"
                raise DataError(
                    f"{where} has {what} value for column {column!r} (it has "
                    f"{', '.join(map(repr, row)) or 'no columns'}); every row needs the "
                    f"input and target columns.",
                    path=source,
                )
            values[column] = _text(value)
        raw_id = row.get("id")
        example_id = _text(raw_id) if raw_id is not None else f"{id_prefix}/{number}"
        examples.append(
            Example(
                id=example_id,
                inputs={column: values[column] for column in inputs},
                target=values[target],
                meta={"source": source, row_word: number},
            )
        )
    if not examples:
        raise DataError(f"{source} has no rows; a data file needs at least one example.", source)
    return tuple(examples)


def _columns(
    columns: list[str],
    source: str,
    input_cols: Sequence[str] | None,
    target_col: str | None,
) -> tuple[str, tuple[str, ...]]:
    """The target column and the input columns, from the first row's columns."""
    have = ", ".join(map(repr, columns)) or "none"
    if target_col is not None:
        if target_col not in columns:
            raise DataError(
                f"{source} has no target column {target_col!r}; its columns are {have}. "
                f"Pass the right name with --target-col (target_col=).",
                path=source,
            )
        target = target_col
    else:
        found = next((c for c in TARGET_COLUMNS if c in columns), None)
        if found is None:
            raise DataError(
                f"{source} has none of the default target columns "
                f"({', '.join(TARGET_COLUMNS)}); its columns are {have}. Name the target "
                f"column with --target-col (target_col=).",
                path=source,
            )
        target = found
    if input_cols is not None:
        chosen = tuple(input_cols)
        repeated = sorted({c for c in chosen if chosen.count(c) > 1})
        if repeated:
            raise DataError(
                f"the input columns for {source} name {', '.join(map(repr, repeated))} more "
                f"than once; name each input column once in --input-cols (input_cols=).",
                path=source,
            )
        unknown = [c for c in chosen if c not in columns]
        if unknown:
            raise DataError(
                f"{source} has no input column(s) {', '.join(map(repr, unknown))}; its "
                f"columns are {have}. Fix --input-cols (input_cols=).",
                path=source,
            )
        if target in chosen:
            raise DataError(
                f"column {target!r} of {source} is both the target and an input; an example "
                f"must not be given its own answer.",
                path=source,
            )
        if not chosen:
            raise DataError(f"no input columns chosen for {source}.", path=source)
        return target, chosen
    chosen = tuple(c for c in columns if c not in (target, "id"))
    if not chosen:
        raise DataError(
            f"{source} has only the target column {target!r}; an example needs at least one "
            f"input column besides it (e.g. 'question').",
            path=source,
        )
    return target, chosen


def _read_text(path: Path) -> str:
    return read_user_text(
        path,
        what="a data file (.jsonl or .csv)",
        error=lambda message: DataError(message, path=str(path)),
    )


def _jsonl_rows(path: Path, text: str) -> Iterable[tuple[int, Mapping[str, Any]]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except RecursionError:
            raise DataError(
                f"{path}, line {number} nests JSON too deeply to read; each line of a .jsonl "
                f'file is one flat JSON object, e.g. {{"question": "...", "answer": "..."}}.',
                path=str(path),
            ) from None
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}, line {number} is not valid JSON ({exc.msg} at column {exc.colno}); "
                f"each line of a .jsonl file is one JSON object, e.g. "
                f'{{"question": "...", "answer": "..."}}.',
                path=str(path),
            ) from None
        if not isinstance(row, dict):
            raise DataError(
                f"{path}, line {number} is a JSON {type(row).__name__}, not an object; each "
                f'line of a .jsonl file is one JSON object, e.g. {{"question": "...", '
                f'"answer": "..."}}.',
                path=str(path),
            )
        yield number, row


def _csv_rows(path: Path, text: str) -> Iterable[tuple[int, Mapping[str, Any]]]:
    try:
        yield from _csv_cells(path, text)
    except csv.Error as exc:
        raise DataError(
            f"{path} cannot be read as CSV ({exc}); a field longer than 131,072 characters "
            f"or a stray quote is the usual cause. Save it as a .jsonl file instead.",
            path=str(path),
        ) from None


def _csv_cells(path: Path, text: str) -> Iterable[tuple[int, Mapping[str, Any]]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if header is None:
        return
    names = [name.strip() for name in header]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates or not all(names):
        problem = f"repeats {', '.join(map(repr, duplicates))}" if duplicates else "has a blank"
        raise DataError(
            f"the header of {path} {problem}; every column needs a unique name.", str(path)
        )
    for number, cells in enumerate(reader, start=1):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(names):
            raise DataError(
                f"{path}, data row {number} has {len(cells)} fields but the header has "
                f"{len(names)} ({', '.join(names)}); quote fields that contain commas.",
                path=str(path),
            )
        yield number, dict(zip(names, cells, strict=True))


def _is_example_row(row: Mapping[str, Any]) -> bool:
    """semgrad's own example format (what `Example.to_dict` writes, e.g. a run directory's
    data/train.jsonl): an "id", "inputs" as an object of texts and a "target"."""
    return (
        isinstance(row.get("inputs"), dict)
        and "target" in row
        and "id" in row
        and set(row) <= {"id", "inputs", "target", "meta"}
    )


def _example_from_row(row: Mapping[str, Any]) -> Example:
    meta = row.get("meta")
    return Example(
        _text(row["id"]),
        {str(k): _text(v) for k, v in row["inputs"].items()},
        _text(row["target"]),
        dict(meta) if isinstance(meta, dict) else {},
    )


def resolve_spec_path(spec: str, base_dir: str | os.PathLike[str]) -> str:
    """A ``file:`` spec with a relative path made relative to `base_dir` (a config's
    folder); any other spec unchanged."""
    head, qmark, query = spec.strip().partition("?")
    kind, _, rest = head.partition(":")
    if kind.lower() != "file" or not rest:
        return spec
    path, suffix = rest, ""
    stem, sep, tail = rest.rpartition(":")
    if sep and tail.lower() in FILE_SPLITS:
        path, suffix = stem, f":{tail}"
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(base_dir) / p
    return f"file:{p}{suffix}{qmark}{query}"


def load_file(
    path: str | os.PathLike[str],
    *,
    input_cols: Sequence[str] | None = None,
    target_col: str | None = None,
) -> tuple[Example, ...]:
    """Every row of a ``.jsonl`` or ``.csv`` file as an `Example`, in file order.

    Raises `DataError` (exit 2 in the CLI) for a missing file or column, a line that is
    not a JSON object (naming the line), an empty file and a file that is not UTF-8.
    """
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in _SUFFIXES:
        raise DataError(
            f"cannot read {p}: a data file is .jsonl (one JSON object per line) or .csv "
            f"(a header row, then one example per row), got {suffix or 'no suffix'!r}.",
            path=str(p),
        )
    text = _read_text(p)
    if suffix == ".jsonl":
        rows, word = _jsonl_rows(p, text), "line"
        if input_cols is None and target_col is None:
            rows_list = list(rows)
            if rows_list and all(_is_example_row(row) for _, row in rows_list):
                return tuple(_example_from_row(row) for _, row in rows_list)
            rows = iter(rows_list)
    else:
        rows, word = _csv_rows(p, text), "data row"
    return examples_from_rows(
        rows,
        source=str(p),
        id_prefix=p.stem,
        row_word=word,
        input_cols=input_cols,
        target_col=target_col,
    )


# A target that is one number: "18", "-5", "1,000", "$18", "18.0", "12%" (the data layer
# only names the metric; `semgrad.evaluation` builds it).
_NUMERIC_TARGET = re.compile(r"\$?\s*-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?\s*%?\.?")


def _default_metric_name(examples: Sequence[Example]) -> str:
    numeric = all(_NUMERIC_TARGET.fullmatch(e.target.strip()) for e in examples)
    return "numeric" if numeric else "exact"


def _task(name: str, examples: tuple[Example, ...], description: str) -> Task:

    metric = _default_metric_name(examples)
    return Task(
        name=name,
        examples=examples,
        metric_name=metric,
        description=f"{description} (metric: {metric}; numbers -> numeric, else exact).",
    )


def carve(
    examples: Sequence[Example], which: str, *, seed: int, source: str
) -> tuple[Example, ...]:
    """Split `which` of `FILE_SPLITS` from one seeded shuffle, checked disjoint."""
    if which not in FILE_SPLITS:
        raise UserInputError(
            f"unknown split {which!r} of {source}; a file is carved into "
            f"{' / '.join(FILE_SPLITS)} ({', '.join(f'{v:.0%}' for v in FILE_SPLITS.values())})."
        )
    parts = split(examples, seed=seed, sizes=FILE_SPLITS)
    assert_disjoint(parts)
    return parts[which]


def load_file_task(
    path: str | os.PathLike[str],
    which: str | None = None,
    *,
    seed: int = 0,
    input_cols: Sequence[str] | None = None,
    target_col: str | None = None,
) -> Task:
    """A task from a data file: every row, or split `which` carved with `seed`.

    The metric is ``numeric`` when every target is a number, else ``exact``; replace it
    with `semgrad.evaluation.resolve_metric` (``--metric``) for anything else.
    """
    p = Path(path)
    rows = load_file(p, input_cols=input_cols, target_col=target_col)
    digest = file_sha256(p)[:12]
    if which is None:
        return _task(f"file:{p}", rows, f"{p}: {len(rows)} rows, sha256 {digest}")
    examples = carve(rows, which, seed=seed, source=str(p))
    return _task(
        f"file:{p}:{which}",
        examples,
        f"{p} {which}: {len(examples)} of {len(rows)} rows (seed {seed}), sha256 {digest}",
    )


def load_hf_task(
    name: str,
    which: str,
    *,
    config: str | None = None,
    input_cols: Sequence[str] | None = None,
    target_col: str | None = None,
    revision: str | None = None,
) -> Task:
    """A split of a Hugging Face dataset, columns mapped as for files (needs `datasets`).

    Ids are ``<name>/<split>/<row index>``; this downloads on first use into the
    ``datasets`` cache.
    """
    datasets = import_datasets(f"the Hugging Face dataset {name!r}")
    try:
        rows = datasets.load_dataset(name, config, split=which, revision=revision)
    except (FileNotFoundError, ValueError, ConnectionError) as exc:
        raise DataError(
            f"cannot load Hugging Face dataset {name!r} (config {config!r}, split {which!r}): "
            f"{exc}",
        ) from None
    source = f"hf:{name}" + (f":{config}" if config else "") + f":{which}"
    examples = examples_from_rows(
        enumerate(rows),
        source=source,
        id_prefix=f"{name}/{which}",
        input_cols=input_cols,
        target_col=target_col,
    )
    return _task(source, examples, f"Hugging Face {name} {which}: {len(examples)} rows")


def load_data_spec(
    spec: str,
    *,
    seed: int = 0,
    input_cols: Sequence[str] | None = None,
    target_col: str | None = None,
) -> Task:
    """The task of a ``file:`` or ``hf:`` spec (see the module docstring).

    Column options may follow a ``?`` (for configs, which have no column keys):
    ``file:capitals.jsonl:train?target=capital&inputs=country``; arguments given here
    win over them.
    """
    spec, _, query = spec.strip().partition("?")
    if query:
        options = _spec_options(spec, query)
        if target_col is None:
            target_col = options.get("target")
        if input_cols is None and "inputs" in options:
            input_cols = [c.strip() for c in options["inputs"].split(",") if c.strip()]
    kind, _, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind == "file":
        path, which = rest, None
        head, sep, tail = rest.rpartition(":")
        if sep and tail.lower() in FILE_SPLITS:
            path, which = head, tail.lower()
        if not path:
            raise UserInputError(f"bad data spec {spec!r}: file:PATH[:train|val|test].")
        return load_file_task(path, which, seed=seed, input_cols=input_cols, target_col=target_col)
    if kind == "hf":
        parts = rest.split(":")
        if len(parts) not in (2, 3) or not all(parts):
            raise UserInputError(
                f"bad data spec {spec!r}: hf:NAME:SPLIT or hf:NAME:CONFIG:SPLIT, e.g. "
                f"hf:openai/gsm8k:main:test."
            )
        config = parts[1] if len(parts) == 3 else None
        return load_hf_task(
            parts[0], parts[-1], config=config, input_cols=input_cols, target_col=target_col
        )
    raise UserInputError(f"bad data spec {spec!r}: expected file:PATH or hf:NAME:SPLIT.")


def _spec_options(spec: str, query: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for pair in query.split("&"):
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in ("target", "inputs") or not value.strip():
            raise UserInputError(
                f"bad option {pair!r} in data spec {spec}?{query}: the options are "
                f"target=COLUMN and inputs=COL1,COL2, joined by '&'."
            )
        options[key.strip()] = value.strip()
    return options


def is_data_path(text: str) -> bool:
    """True when `text` is a path to a data file (what ``--data caps.jsonl`` means)."""
    return Path(text).suffix.lower() in _SUFFIXES and not text.lower().startswith(("file:", "hf:"))
