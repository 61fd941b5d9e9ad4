"""Loaders and tasks on small files written by the tests (tests/data/conftest.py), so the
parsing, the splits and the errors are tested without the real datasets."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from semgrad.data import (
    DATA_DIR_ENV,
    GSM8K_VAL_SIZE,
    assert_disjoint,
    list_bbh_tasks,
    load_bbh,
    load_gsm8k,
    load_liar,
    load_task,
)
from semgrad.errors import DataError, UserInputError
from semgrad.evaluation import (
    LIAR_BINARY_LABELS,
    ChoiceMatch,
    LabelMatch,
    NumericMatch,
    task_metric,
)

GSM8K_TRAIN = 305  # lines in the small train file (tests/data/conftest.py)

# --- GSM8K ------------------------------------------------------------------------------------


def test_gsm8k_jsonl_parsing(mini_data_dir: Path) -> None:
    examples = load_gsm8k(mini_data_dir, "test")
    # the blank line is skipped, and ids keep the line index
    assert [e.id for e in examples] == ["gsm8k/test/0", "gsm8k/test/1", "gsm8k/test/3"]
    assert [e.target for e in examples] == ["5", "1000", "-3"]  # commas gone, sign kept
    assert examples[0].inputs == {"question": "Janet has 3 eggs and buys 2. How many?"}
    assert examples[1].meta["solution"] == "so #### is not the end\n#### 1,000"


def test_gsm8k_val_is_carved_from_train(mini_data_dir: Path) -> None:
    train = load_task("gsm8k:train", data_dir=mini_data_dir)
    val = load_task("gsm8k:val", data_dir=mini_data_dir)
    assert (len(train), len(val)) == (GSM8K_TRAIN - GSM8K_VAL_SIZE, GSM8K_VAL_SIZE)
    assert_disjoint({"train": train.examples, "val": val.examples})
    ids = {e.id for e in train.examples} | {e.id for e in val.examples}
    assert ids == {f"gsm8k/train/{i}" for i in range(GSM8K_TRAIN)}
    assert isinstance(task_metric(val), NumericMatch)
    other = load_task("gsm8k:val", data_dir=mini_data_dir, seed=1)
    assert other.examples != val.examples


def test_gsm8k_split_comes_from_the_environment(
    mini_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(mini_data_dir))
    assert load_task("gsm8k:test").examples == load_gsm8k(mini_data_dir, "test")


# --- BBH --------------------------------------------------------------------------------------


def test_bbh_json_parsing(mini_data_dir: Path) -> None:
    assert list_bbh_tasks(mini_data_dir) == ("movie_recommendation", "navigate", "object_counting")
    counting = load_bbh(mini_data_dir, "object_counting")
    assert len(counting) == 105 and counting[3].id == "bbh/object_counting/3"
    assert counting[3].meta == {"task": "object_counting", "index": 3, "target_format": "integer"}
    assert {e.meta["target_format"] for e in load_bbh(mini_data_dir, "navigate")} == {"yes/no"}
    movies = load_bbh(mini_data_dir, "movie_recommendation")
    assert [e.meta["target_format"] for e in movies] == ["choice"] * 9 + ["text"]
    assert movies[9].target == "Monsters, Inc"
    assert movies[9].meta["upstream_quirk"] == "text target in a multiple-choice task"


def test_bbh_task_splits(mini_data_dir: Path) -> None:
    task = "object_counting"
    parts = {
        s: load_task(f"bbh:{task}:{s}", data_dir=mini_data_dir) for s in ("train", "val", "test")
    }
    assert {s: len(t) for s, t in parts.items()} == {"train": 50, "val": 50, "test": 5}
    assert_disjoint({s: t.examples for s, t in parts.items()})
    assert {e.id for t in parts.values() for e in t.examples} == {
        e.id for e in load_bbh(mini_data_dir, task)
    }
    assert isinstance(task_metric(parts["val"]), NumericMatch)
    assert load_task(f"bbh:{task}:train", data_dir=mini_data_dir, seed=1).examples != (
        parts["train"].examples
    )


def test_bbh_too_small_for_the_splits(mini_data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"'navigate' has 3 examples, too few"):
        load_task("bbh:navigate:test", data_dir=mini_data_dir)


def test_bbh_unknown_task_lists_the_tasks(mini_data_dir: Path) -> None:
    with pytest.raises(DataError, match=r"unknown BBH task 'navigat'.*navigate"):
        load_bbh(mini_data_dir, "navigat")
    with pytest.raises(DataError, match=r"unknown BBH task 'navigat'.*navigate"):
        load_task("bbh:navigat:test", data_dir=mini_data_dir)


def test_bbh_task_name_cannot_escape_the_folder(mini_data_dir: Path) -> None:
    with pytest.raises(DataError, match="unknown BBH task"):
        load_bbh(mini_data_dir, "../gsm8k/train")


def test_metric_follows_a_choice_format(mini_data_dir: Path, tmp_path: Path) -> None:
    root = shutil.copytree(mini_data_dir, tmp_path / "data")
    movies = root / "bbh" / "movie_recommendation.json"
    items = [{"input": f"Movie {i}?", "target": f"({'AB'[i % 2]})"} for i in range(110)]
    movies.write_text(json.dumps({"examples": items}), encoding="utf-8")
    loaded = load_task("bbh:movie_recommendation:val", data_dir=root)
    assert isinstance(task_metric(loaded), ChoiceMatch)
    assert all(task_metric(loaded)(e.target, e).correct for e in loaded.examples)


# --- LIAR -------------------------------------------------------------------------------------


def test_liar_tsv_parsing(mini_data_dir: Path) -> None:
    six = load_liar(mini_data_dir, "valid", binary=False)
    assert [e.id for e in six] == ["liar/valid/100", "liar/valid/101", "liar/valid/102"]
    assert [e.target for e in six] == ["false", "half-true", "true"]
    assert six[0].inputs["question"] == (
        "Statement: Taxes doubled.\n"
        "Speaker: John Q Public\n"
        "Job title: Senator\n"
        "State: Ohio\n"
        "Party: democrat\n"
        "Context: a speech"
    )
    assert "Context" not in six[1].inputs["question"]  # empty fields are left out
    assert six[2].inputs["question"].startswith('Statement: He said "no\n')  # no quoting
    assert six[0].meta["credit_history"] == {
        "barely-true": "1",
        "false": "2",
        "half-true": "3",
        "mostly-true": "4",
        "pants-fire": "5",
    }
    binary = load_liar(mini_data_dir, "valid", binary=True)
    assert [(e.id, e.target) for e in binary] == [
        ("liar-binary/valid/100", "Yes"),
        ("liar-binary/valid/102", "No"),
    ]


def test_liar_tasks(mini_data_dir: Path) -> None:
    six = load_task("liar:train", data_dir=mini_data_dir)
    assert len(six) == 7 and isinstance(task_metric(six), LabelMatch)
    binary = load_task("liar-binary:train", data_dir=mini_data_dir)
    assert [e.target for e in binary.examples] == ["Yes", "No", "Yes"]
    assert task_metric(binary) == LabelMatch(labels=LIAR_BINARY_LABELS)
    # val and valid name the same official file for both forms
    assert load_task("liar:val", data_dir=mini_data_dir).examples == (
        load_task("liar:valid", data_dir=mini_data_dir).examples
    )
    assert load_task("liar-binary:valid", data_dir=mini_data_dir).name == "liar-binary:val"


# --- specs and splits -------------------------------------------------------------------------


def test_spec_is_case_and_space_insensitive(mini_data_dir: Path) -> None:
    assert load_task(" GSM8K:Test ", data_dir=mini_data_dir).name == "gsm8k:test"
    assert load_task("BBH:Object_Counting:VAL", data_dir=mini_data_dir).name == (
        "bbh:object_counting:val"
    )


def test_unknown_split_is_refused(mini_data_dir: Path) -> None:
    with pytest.raises(
        UserInputError, match="GSM8K has no split 'val'; the splits are: train, test"
    ):
        load_gsm8k(mini_data_dir, "val")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="LIAR has no split 'dev'"):
        load_liar(mini_data_dir, "dev", binary=False)  # type: ignore[arg-type]
