"""Loaders against the real files in the shared data directory (counts from its READMEs)."""

from __future__ import annotations

import collections
import functools
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from semgrad.data import (
    DATA_DIR_ENV,
    Example,
    bbh_target_format,
    gsm8k_target,
    liar_question,
    list_bbh_tasks,
    load_bbh,
    load_gsm8k,
    load_hf,
    load_liar,
    resolve_data_dir,
)
from semgrad.errors import DataError, UserInputError

# --- GSM8K ------------------------------------------------------------------------------------


@functools.cache
def gsm8k(data_dir: Path, split: str) -> tuple[Example, ...]:
    return load_gsm8k(data_dir, split)  # type: ignore[arg-type]


@pytest.mark.parametrize(("split", "count"), [("train", 7473), ("test", 1319)])
def test_gsm8k_counts_ids_and_targets(data_dir: Path, split: str, count: int) -> None:
    examples = gsm8k(data_dir, split)
    assert len(examples) == count
    assert [e.id for e in examples[:2]] == [f"gsm8k/{split}/0", f"gsm8k/{split}/1"]
    assert len({e.id for e in examples}) == count
    for e in examples:
        assert set(e.inputs) == {"question"}
        assert "," not in e.target
        float(e.target)  # every target is a number once commas are gone


def test_gsm8k_first_test_item(data_dir: Path) -> None:
    first = gsm8k(data_dir, "test")[0]
    assert first.inputs["question"].startswith("Janet’s ducks lay 16 eggs per day.")
    assert first.target == "18"


def test_gsm8k_commas_and_negatives(data_dir: Path) -> None:
    examples = gsm8k(data_dir, "train") + gsm8k(data_dir, "test")
    with_separators = [e for e in examples if "," in e.meta["solution"].rsplit("#### ", 1)[1]]
    assert len(with_separators) == 93  # the README's count
    assert sum(1 for e in examples if e.target.startswith("-")) == 5


def test_gsm8k_target_parsing() -> None:
    assert gsm8k_target("so 2 + 2 = 4\n#### 4") == "4"
    assert gsm8k_target("a #### b\n#### 1,000") == "1000"
    assert gsm8k_target("#### -3 ") == "-3"
    with pytest.raises(ValueError, match="no '####'"):
        gsm8k_target("the answer is 4")


# --- BBH --------------------------------------------------------------------------------------

EXPECTED_FORMATS = {
    "boolean_expressions": "true/false",
    "causal_judgement": "yes/no",
    "navigate": "yes/no",
    "web_of_lies": "yes/no",
    "sports_understanding": "yes/no",
    "formal_fallacies": "valid/invalid",
    "object_counting": "integer",
    "multistep_arithmetic_two": "integer",
    "word_sorting": "text",
    "dyck_languages": "text",
}


def test_bbh_has_27_tasks_and_6511_examples(data_dir: Path) -> None:
    tasks = list_bbh_tasks(data_dir)
    assert len(tasks) == 27
    assert tasks == tuple(sorted(tasks))
    assert "cot-prompts" not in tasks
    sizes = {task: len(load_bbh(data_dir, task)) for task in tasks}
    assert sum(sizes.values()) == 6511
    assert sizes["causal_judgement"] == 187
    assert sizes["penguins_in_a_table"] == 146
    assert sizes["snarks"] == 178


def test_bbh_ids_inputs_and_target_formats(data_dir: Path) -> None:
    for task in list_bbh_tasks(data_dir):
        examples = load_bbh(data_dir, task)
        assert examples[3].id == f"bbh/{task}/3"
        assert all(set(e.inputs) == {"question"} for e in examples)
        formats = collections.Counter(e.meta["target_format"] for e in examples)
        expected = EXPECTED_FORMATS.get(task, "choice")
        assert formats.most_common(1)[0][0] == expected, task
        assert all(e.meta["task"] == task for e in examples)


@pytest.mark.parametrize(
    ("task", "index", "target"),
    [
        ("movie_recommendation", 163, "Monsters, Inc"),
        ("ruin_names", 99, "dearth, wind, & fire"),
        ("ruin_names", 144, "rita, sue and bob poo"),
    ],
)
def test_bbh_upstream_quirk_targets_load_unchanged(
    data_dir: Path, task: str, index: int, target: str
) -> None:
    example = load_bbh(data_dir, task)[index]
    assert example.id == f"bbh/{task}/{index}"
    assert example.target == target
    assert example.meta["target_format"] == "text"
    assert example.meta["upstream_quirk"] == "text target in a multiple-choice task"


def test_bbh_only_the_three_known_quirks(data_dir: Path) -> None:
    quirks = [
        e.id
        for task in list_bbh_tasks(data_dir)
        for e in load_bbh(data_dir, task)
        if "upstream_quirk" in e.meta
    ]
    assert quirks == ["bbh/movie_recommendation/163", "bbh/ruin_names/99", "bbh/ruin_names/144"]


def test_bbh_target_format_inference() -> None:
    assert bbh_target_format(["(A)", "(B)"]) == "choice"
    assert bbh_target_format(["True", "False"]) == "true/false"
    assert bbh_target_format(["yes", "no"]) == "yes/no"
    assert bbh_target_format(["-3", "12"]) == "integer"
    assert bbh_target_format(["] )", "}"]) == "text"
    assert bbh_target_format([]) == "text"


# --- LIAR -------------------------------------------------------------------------------------


LIAR_LABEL_COUNTS = {  # the README's table
    "train": {
        "pants-fire": 842,
        "false": 1998,
        "barely-true": 1657,
        "half-true": 2123,
        "mostly-true": 1966,
        "true": 1683,
    },
    "valid": {
        "pants-fire": 116,
        "false": 263,
        "barely-true": 237,
        "half-true": 248,
        "mostly-true": 251,
        "true": 169,
    },
    "test": {
        "pants-fire": 92,
        "false": 250,
        "barely-true": 214,
        "half-true": 267,
        "mostly-true": 249,
        "true": 211,
    },
}


@pytest.mark.parametrize(
    ("split", "count", "binary_count"),
    [("train", 10269, 3681), ("valid", 1284, 432), ("test", 1283, 461)],
)
def test_liar_counts(data_dir: Path, split: str, count: int, binary_count: int) -> None:
    six = load_liar(data_dir, split, binary=False)  # type: ignore[arg-type]
    two = load_liar(data_dir, split, binary=True)  # type: ignore[arg-type]
    assert len(six) == count
    assert len(two) == binary_count
    assert len({e.id for e in six}) == count
    assert collections.Counter(e.target for e in six) == LIAR_LABEL_COUNTS[split]
    assert collections.Counter(e.target for e in two) == {
        "Yes": LIAR_LABEL_COUNTS[split]["false"],
        "No": LIAR_LABEL_COUNTS[split]["true"],
    }


def test_liar_binary_convention_false_is_yes_a_lie(data_dir: Path) -> None:
    two = load_liar(data_dir, "test", binary=True)
    for e in two:
        assert e.target == {"false": "Yes", "true": "No"}[e.meta["label"]]
        assert e.id.startswith("liar-binary/test/")


def test_liar_question_is_readable_and_has_no_credit_history(data_dir: Path) -> None:
    first = load_liar(data_dir, "test", binary=False)[0]
    assert first.id == "liar/test/11972"
    assert first.target == "true"
    assert first.inputs["question"] == (
        "Statement: Building a wall on the U.S.-Mexico border will take literally years.\n"
        "Speaker: Rick Perry\n"
        "Job title: Governor\n"
        "State: Texas\n"
        "Party: republican\n"
        "Context: Radio interview"
    )
    assert first.meta["credit_history"] == {
        "barely-true": "30",
        "false": "30",
        "half-true": "42",
        "mostly-true": "23",
        "pants-fire": "18",
    }
    assert first.meta["speaker"] == "rick-perry"


def test_liar_question_leaves_out_empty_fields() -> None:
    text = liar_question("Says X.", "chain-email", "", "", "none", "an e-mail")
    assert text == "Statement: Says X.\nSpeaker: Chain Email\nParty: none\nContext: an e-mail"


# --- errors -----------------------------------------------------------------------------------


def test_no_data_dir_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError, match=r"--data-dir.*SEMGRAD_DATA_DIR"):
        resolve_data_dir(None)


def test_env_var_is_read_at_call_time(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path))
    assert resolve_data_dir(None) == tmp_path
    assert resolve_data_dir(tmp_path / "..") == tmp_path / ".."


def test_missing_data_dir_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=r"nope \(from --data-dir\) does not exist") as info:
        resolve_data_dir(missing)
    assert info.value.path == str(missing)
    monkeypatch.setenv(DATA_DIR_ENV, str(missing))
    with pytest.raises(DataError, match=r"from SEMGRAD_DATA_DIR"):
        load_gsm8k(None, "test")


def test_missing_file_is_named_with_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"missing data file .*gsm8k/test\.jsonl: expected the GSM8K"
    ) as info:
        load_gsm8k(tmp_path, "test")
    assert info.value.path == str(tmp_path / "gsm8k" / "test.jsonl")
    with pytest.raises(DataError, match=r"liar/valid\.tsv: expected the LIAR valid file"):
        load_liar(tmp_path, "valid", binary=True)
    with pytest.raises(DataError, match=r"missing folder .*bbh"):
        list_bbh_tasks(tmp_path)


def test_malformed_gsm8k_line_is_named(tmp_path: Path) -> None:
    (tmp_path / "gsm8k").mkdir()
    lines = [
        json.dumps({"question": "q", "answer": "#### 1"}),
        json.dumps({"question": "q", "answer": "4"}),
    ]
    (tmp_path / "gsm8k" / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.jsonl, line 2 is not a GSM8K item"):
        load_gsm8k(tmp_path, "train")


def test_malformed_liar_row_is_named(tmp_path: Path) -> None:
    (tmp_path / "liar").mkdir()
    good = "\t".join(
        ["1.json", "true", "s", "subj", "sp", "j", "st", "p", "0", "0", "0", "0", "0", "c"]
    )
    bad = "\t".join(["2.json", "true", "s"])
    (tmp_path / "liar" / "test.tsv").write_text(good + "\n" + bad + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.tsv, line 2 has 3 fields, expected 14"):
        load_liar(tmp_path, "test", binary=False)


def test_liar_quotes_are_not_special(tmp_path: Path) -> None:
    (tmp_path / "liar").mkdir()
    row = [
        "1.json",
        "false",
        'He said "no',
        "s",
        "a-b",
        "",
        "",
        "none",
        "0",
        "0",
        "0",
        "0",
        "0",
        "x",
    ]
    (tmp_path / "liar" / "test.tsv").write_text("\t".join(row) + "\n", encoding="utf-8")
    (example,) = load_liar(tmp_path, "test", binary=True)
    assert example.inputs["question"].startswith('Statement: He said "no\n')
    assert example.target == "Yes"


def test_bad_bbh_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "bbh").mkdir()
    (tmp_path / "bbh" / "broken.json").write_text(
        '{"examples": [{"input": "x"}]}', encoding="utf-8"
    )
    with pytest.raises(DataError, match=r"broken\.json is not a BBH task file"):
        load_bbh(tmp_path, "broken")


# --- Hugging Face (optional) ------------------------------------------------------------------


def test_load_hf_without_datasets_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    with pytest.raises(UserInputError, match=r"pip install 'semgrad\[datasets\]'"):
        load_hf("openai/gsm8k", name="main", split="test")


def test_load_hf_builds_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []

    def load_dataset(
        path: str, name: str | None, *, split: str, revision: str | None
    ) -> list[dict[str, str]]:
        calls.append((path, name, split, revision))
        return [
            {"question": "1+1?", "answer": "so\n#### 2", "extra": "a"},
            {"question": "big?", "answer": "#### 1,000", "extra": "b"},
        ]

    fake = types.ModuleType("datasets")
    fake.load_dataset = load_dataset  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    examples = load_hf(
        "openai/gsm8k", name="main", split="test", transform_target=gsm8k_target, id_prefix="gsm8k"
    )
    assert calls == [("openai/gsm8k", "main", "test", None)]
    assert [e.id for e in examples] == ["gsm8k/test/0", "gsm8k/test/1"]
    assert [e.target for e in examples] == ["2", "1000"]
    assert examples[0].inputs == {"question": "1+1?"}
    assert examples[0].meta == {"extra": "a"}
    with pytest.raises(DataError, match=r"columns are \['answer', 'extra', 'question'\]"):
        load_hf("x/y", split="train", target="label")
