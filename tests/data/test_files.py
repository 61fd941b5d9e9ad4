"""Your own data files (JSONL, CSV) and Hugging Face datasets as examples and tasks."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from semgrad.data import assert_disjoint, load_task
from semgrad.data.files import (
    FILE_SPLITS,
    file_sha256,
    is_data_path,
    load_file,
    load_file_task,
)
from semgrad.errors import DataError, UserInputError
from semgrad.evaluation import ExactMatch, NumericMatch, task_metric

CAPITALS = [
    ("France", "Paris"),
    ("Japan", "Tokyo"),
    ("Kenya", "Nairobi"),
    ("Peru", "Lima"),
    ("Norway", "Oslo"),
    ("Egypt", "Cairo"),
    ("Canada", "Ottawa"),
    ("Chile", "Santiago"),
    ("India", "New Delhi"),
    ("Italy", "Rome"),
]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def capitals(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "capitals.jsonl",
        [{"country": c, "answer": a} for c, a in CAPITALS],
    )


def test_jsonl_defaults_target_answer_inputs_the_rest(capitals: Path) -> None:
    examples = load_file(capitals)
    assert len(examples) == 10
    first = examples[0]
    assert first.id == "capitals/1"
    assert dict(first.inputs) == {"country": "France"}
    assert first.target == "Paris"
    assert first.meta["line"] == 1
    assert len({e.id for e in examples}) == 10


def test_explicit_columns_id_column_and_non_text_values(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {"id": "q1", "q": "2+2", "ctx": "math", "gold": 4, "note": True},
            {"id": "q2", "q": "3+3", "ctx": "math", "gold": 6, "note": None},
        ],
    )
    examples = load_file(path, input_cols=["q"], target_col="gold")
    assert [e.id for e in examples] == ["q1", "q2"]
    assert dict(examples[0].inputs) == {"q": "2+2"}
    assert examples[1].target == "6"


def test_csv_with_bom_and_quoted_commas(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes('question,label\n"Is 1,000 big?",Yes\n\nsmall?,No\n'.encode("utf-8-sig"))
    examples = load_file(path)
    assert [e.id for e in examples] == ["d/1", "d/3"]
    assert dict(examples[0].inputs) == {"question": "Is 1,000 big?"}
    assert examples[0].target == "Yes"


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "expected"),
    [
        ("x.jsonl", '{"q": "a", "answer": "b"}\n{"q": "a" "answer": "b"}\n', {}, "line 2"),
        ("x.jsonl", '{"q": "a", "answer": "b"}\n[1, 2]\n', {}, "line 2 is a JSON list"),
        ("x.jsonl", "", {}, "has no rows"),
        ("x.csv", "", {}, "has no rows"),
        ("x.jsonl", '{"q": "a"}\n', {}, "none of the default target columns"),
        ("x.jsonl", '{"q": "a", "a": "b"}\n', {"target_col": "gold"}, "no target column 'gold'"),
        ("x.jsonl", '{"q": "a", "answer": "b"}\n', {"input_cols": ["question"]}, "'question'"),
        ("x.jsonl", '{"q": "a", "answer": "b"}\n{"answer": "c"}\n', {}, "line 2 has no value"),
        ("x.csv", "q,answer\na,b,c\n", {}, "data row 1 has 3 fields"),
        ("x.csv", "q,q\na,b\n", {}, "repeats 'q'"),
        ("x.txt", "hello", {}, ".jsonl"),
    ],
)
def test_bad_files_say_what_and_where(
    tmp_path: Path, name: str, content: str, kwargs: dict[str, Any], expected: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as info:
        load_file(path, **kwargs)
    assert expected in str(info.value)


def test_non_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("question,answer\ncaf\xe9,x\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"not UTF-8 text .*line 2"):
        load_file(path)
    with pytest.raises(DataError, match="does not exist"):
        load_file(tmp_path / "nope.jsonl")


def test_file_spec_in_load_task_whole_and_carved(capitals: Path) -> None:
    whole = load_task(f"file:{capitals}")
    assert len(whole) == 10
    assert isinstance(task_metric(whole), ExactMatch)
    assert file_sha256(capitals)[:12] in whole.description
    parts = {which: load_task(f"file:{capitals}:{which}", seed=1) for which in FILE_SPLITS}
    assert {k: len(v) for k, v in parts.items()} == {"train": 6, "val": 2, "test": 2}
    assert_disjoint({k: v.examples for k, v in parts.items()})
    assert {e.id for t in parts.values() for e in t.examples} == {e.id for e in whole.examples}
    # seeded: the same in every call, different for another seed
    assert load_task(f"file:{capitals}:train", seed=1).examples == parts["train"].examples
    assert load_task(f"file:{capitals}:train", seed=2).examples != parts["train"].examples


def test_numeric_targets_get_the_numeric_metric(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "n.jsonl", [{"question": "1+1", "answer": 2}])
    assert isinstance(task_metric(load_file_task(path)), NumericMatch)


def test_bad_file_specs() -> None:
    with pytest.raises(UserInputError, match="file:PATH"):
        load_task("file:")
    with pytest.raises(UserInputError, match="hf:NAME:SPLIT"):
        load_task("hf:onlyname")
    assert is_data_path("caps.jsonl") and is_data_path("a/b.CSV")
    assert not is_data_path("arith:test") and not is_data_path("file:caps.jsonl")


@pytest.fixture
def fake_datasets(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def load_dataset(
        name: str, config: str | None, *, split: str, revision: str | None = None
    ) -> list[dict[str, Any]]:
        calls.append((name, config, split, revision))
        return [{"question": f"q{i}", "answer": str(i), "extra": i} for i in range(3)]

    module = types.ModuleType("datasets")
    module.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", module)
    return calls


def test_hf_spec_through_the_datasets_extra(fake_datasets: list[tuple[Any, ...]]) -> None:
    task = load_task("hf:org/set:main:test")
    assert fake_datasets == [("org/set", "main", "test", None)]
    assert [e.id for e in task.examples] == ["org/set/test/0", "org/set/test/1", "org/set/test/2"]
    assert dict(task.examples[1].inputs) == {"question": "q1", "extra": "1"}
    assert isinstance(task_metric(task), NumericMatch)
    load_task("hf:org/set:train")
    assert fake_datasets[-1] == ("org/set", None, "train", None)


def test_hf_without_the_extra_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # import fails
    with pytest.raises(UserInputError, match=r"pip install 'semgrad\[datasets\]'"):
        load_task("hf:org/set:test")


def test_column_options_in_the_spec(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "caps.jsonl", [{"country": c, "capital": a, "note": "x"} for c, a in CAPITALS]
    )
    task = load_task(f"file:{path}:test?target=capital&inputs=country")
    assert len(task) == 2
    assert set(task.examples[0].inputs) == {"country"}
    assert task.examples[0].target in dict(CAPITALS).values()
    with pytest.raises(UserInputError, match="target=COLUMN and inputs=COL1,COL2"):
        load_task(f"file:{path}?targets=capital")
