from __future__ import annotations

from pathlib import Path

import pytest

from semgrad.data import (
    BBH_SIZES,
    DATA_DIR_ENV,
    GSM8K_VAL_SIZE,
    assert_disjoint,
    list_bbh_tasks,
    list_tasks,
    load_bbh,
    load_task,
)
from semgrad.errors import DataError, UserInputError
from semgrad.evaluation import (
    LIAR_BINARY_LABELS,
    ChoiceMatch,
    ExactMatch,
    LabelMatch,
    NumericMatch,
    task_metric,
)


def test_arith_needs_no_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    tasks = {split: load_task(f"arith:{split}") for split in ("train", "val", "test")}
    assert {split: len(task) for split, task in tasks.items()} == {
        "train": 200,
        "val": 100,
        "test": 200,
    }
    assert_disjoint({split: task.examples for split, task in tasks.items()})
    assert all(isinstance(task_metric(task), NumericMatch) for task in tasks.values())
    assert tasks["val"].name == "arith:val"
    assert "100 synthetic" in tasks["val"].description
    # arith is a fixed benchmark: the seed does not change it
    assert load_task("arith:test", seed=3).examples == tasks["test"].examples


def test_gsm8k_val_is_carved_from_train_by_one_shuffle(data_dir: Path) -> None:
    train = load_task("gsm8k:train", data_dir=data_dir)
    val = load_task("gsm8k:val", data_dir=data_dir)
    test = load_task("gsm8k:test", data_dir=data_dir)
    assert (len(train), len(val), len(test)) == (7473 - GSM8K_VAL_SIZE, GSM8K_VAL_SIZE, 1319)
    assert_disjoint({"train": train.examples, "val": val.examples, "test": test.examples})
    assert {e.id for e in train.examples} | {e.id for e in val.examples} == {
        f"gsm8k/train/{i}" for i in range(7473)
    }
    assert test.examples[0].id == "gsm8k/test/0"
    assert isinstance(task_metric(val), NumericMatch)


def test_gsm8k_split_depends_on_the_seed(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(data_dir))
    val_0 = load_task("gsm8k:val")  # data dir from the environment, seed 0 by default
    assert val_0.examples == load_task("gsm8k:val", data_dir=data_dir, seed=0).examples
    assert val_0.examples != load_task("gsm8k:val", seed=1).examples


def test_bbh_splits_are_disjoint_and_cover_the_task(data_dir: Path) -> None:
    task = "penguins_in_a_table"
    parts = {
        s: load_task(f"bbh:{task}:{s}", data_dir=data_dir, seed=0) for s in ("train", "val", "test")
    }
    assert {s: len(t) for s, t in parts.items()} == {"train": 50, "val": 50, "test": 46}
    assert BBH_SIZES == {"train": 50, "val": 50}
    assert_disjoint({s: t.examples for s, t in parts.items()})
    assert_disjoint({s: t.examples for s, t in parts.items()}, key=lambda e: e.inputs["question"])
    all_ids = {e.id for e in load_bbh(data_dir, task)}
    assert {e.id for t in parts.values() for e in t.examples} == all_ids
    assert parts["test"].name == f"bbh:{task}:test"
    other_seed = load_task(f"bbh:{task}:train", data_dir=data_dir, seed=1)
    assert other_seed.examples != parts["train"].examples


@pytest.mark.parametrize(
    ("task", "metric"),
    [
        ("date_understanding", ChoiceMatch),
        ("navigate", ChoiceMatch),
        ("boolean_expressions", ChoiceMatch),
        ("formal_fallacies", ChoiceMatch),
        ("object_counting", NumericMatch),
        ("multistep_arithmetic_two", NumericMatch),
        ("word_sorting", ExactMatch),
        ("dyck_languages", ExactMatch),
    ],
)
def test_bbh_metric_follows_the_target_format(data_dir: Path, task: str, metric: type) -> None:
    loaded = load_task(f"bbh:{task}:val", data_dir=data_dir)
    assert isinstance(task_metric(loaded), metric)
    for example in loaded.examples:
        assert task_metric(loaded)(example.target, example).correct, example


def test_every_bbh_task_scores_its_own_targets_as_correct(data_dir: Path) -> None:
    for task in list_bbh_tasks(data_dir):
        loaded = load_task(f"bbh:{task}:test", data_dir=data_dir)
        wrong = [
            e.id
            for e in loaded.examples
            if not task_metric(loaded)(f"So the answer is {e.target}.", e).correct
        ]
        assert wrong == [], task


def test_liar_tasks(data_dir: Path) -> None:
    six = load_task("liar:valid", data_dir=data_dir)
    assert len(six) == 1284
    assert six.name == "liar:valid"
    assert isinstance(task_metric(six), LabelMatch)
    binary = load_task("liar-binary:val", data_dir=data_dir)
    assert len(binary) == 432
    assert binary.name == "liar-binary:val"
    assert task_metric(binary) == LabelMatch(labels=LIAR_BINARY_LABELS)
    # val and valid name the same official file for both forms
    assert load_task("liar:val", data_dir=data_dir).examples == six.examples
    assert load_task("liar-binary:valid", data_dir=data_dir).name == "liar-binary:val"
    assert len(load_task("liar-binary:test", data_dir=data_dir)) == 461
    assert len(load_task("liar:test", data_dir=data_dir)) == 1283


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("mmlu:test", "unknown dataset 'mmlu'"),
        ("gsm8k", "a spec is <dataset>:<split>"),
        ("gsm8k:dev", "unknown split 'dev' \\(expected train or val or test\\)"),
        ("arith:train:extra", "a spec is <dataset>:<split>"),
        ("bbh:navigate", "bbh:<task>:<split>"),
        ("bbh::test", "bbh:<task>:<split>"),
        ("liar:dev", "unknown split 'dev'"),
        ("", "a spec is"),
    ],
)
def test_bad_specs_list_the_valid_forms(spec: str, problem: str) -> None:
    with pytest.raises(UserInputError, match=problem) as info:
        load_task(spec)
    message = str(info.value)
    for form in list_tasks():
        assert form in message


def test_datasets_other_than_arith_need_a_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataError, match="--data-dir"):
        load_task("gsm8k:test")


def test_list_tasks_describes_every_form() -> None:
    forms = list_tasks()
    assert list(forms) == [
        "arith:train|val|test",
        "reviews:train|val|test",
        "gsm8k:train|val|test",
        "bbh:<task>:train|val|test",
        "liar:train|valid|test",
        "liar-binary:train|val|test",
        "file:PATH[:train|val|test]",
        "hf:NAME[:CONFIG]:SPLIT",
    ]
    assert all(forms.values())


def test_reviews_task_is_bundled_disjoint_and_balanced() -> None:
    from semgrad.data.reviews import REVIEWS_SIZES, reviews_split_of

    texts = {}
    for which, size in REVIEWS_SIZES.items():
        task = load_task(f"reviews:{which}")
        assert len(task) == size
        labels = {e.target for e in task.examples}
        assert labels == {"POS", "NEG"}
        texts[which] = {e.inputs["question"] for e in task.examples}
        assert all(reviews_split_of(t) == which for t in texts[which])
    assert not texts["train"] & texts["val"] and not texts["train"] & texts["test"]
    assert not texts["val"] & texts["test"]
    ex = load_task("reviews:test").examples[0]
    score = task_metric(load_task("reviews:test"))("The review is positive.", ex)
    assert score.value == 0.0 and "POS, NEG" in score.feedback
    assert task_metric(load_task("reviews:test"))(ex.target, ex).value == 1.0


def test_a_task_names_its_metric_and_evaluation_resolves_it() -> None:
    # data does not import evaluation (that would be a cycle): a task carries a name.
    task = load_task("reviews:test")
    assert (task.metric_name, task.metric_labels) == ("label", ("POS", "NEG"))
    assert task_metric(task) == LabelMatch(labels=("POS", "NEG"))
    assert task_metric(load_task("arith:test")) == NumericMatch()
