from __future__ import annotations

import ast
import collections
import json
import operator
import os
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semgrad.data import ARITH_SIZES, arith_split_of, assert_disjoint, generate_arith
from semgrad.errors import UserInputError
from semgrad.evaluation import NumericMatch

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate(expression: str) -> Fraction:
    """An independent oracle for the recorded computation: + - * / on whole numbers."""

    def walk(node: ast.expr) -> Fraction:
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return Fraction(_OPS[type(node.op)](walk(node.left), walk(node.right)))
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        raise AssertionError(f"unexpected syntax in {expression!r}")

    return walk(ast.parse(expression, mode="eval").body)


ALL = {split: generate_arith(split, size) for split, size in ARITH_SIZES.items()}


def test_fixed_sizes() -> None:
    assert ARITH_SIZES == {"train": 200, "val": 100, "test": 200}
    assert {split: len(examples) for split, examples in ALL.items()} == ARITH_SIZES


def test_ids_inputs_and_targets() -> None:
    for split, examples in ALL.items():
        assert [e.id for e in examples[:2]] == [f"arith/{split}/0", f"arith/{split}/1"]
        for e in examples:
            assert set(e.inputs) == {"question"}
            assert e.inputs["question"].endswith("?")
            assert e.target.isdigit()  # a non-negative whole number


def test_the_recorded_expression_gives_the_target_and_uses_2_to_3_operations() -> None:
    for examples in ALL.values():
        for e in examples:
            value = evaluate(e.meta["expression"])
            assert value.denominator == 1, e
            assert str(value.numerator) == e.target, e
            assert e.meta["operations"] in (2, 3), e
            # every number of the computation appears in the question
            question = e.inputs["question"]
            for node in ast.walk(ast.parse(e.meta["expression"], mode="eval")):
                if isinstance(node, ast.Constant) and isinstance(node.value, int):
                    in_words = {2: "twice", 3: "three times"}.get(node.value, "\0")
                    assert str(node.value) in question or in_words in question, e


def test_numbers_stay_small() -> None:
    targets = [int(e.target) for examples in ALL.values() for e in examples]
    assert max(targets) <= 200
    assert sum(1 for t in targets if t == 0) <= 5


def test_varied_templates_names_and_operation_counts() -> None:
    train = ALL["train"]
    templates = collections.Counter(e.meta["template"] for e in train)
    assert len(templates) == 12
    assert min(templates.values()) >= 5
    operations = collections.Counter(e.meta["operations"] for e in train)
    assert operations[2] >= 20 and operations[3] >= 100
    first_words = {e.inputs["question"].split()[0] for e in train}
    assert len(first_words) >= 20


def test_splits_share_no_question() -> None:
    assert_disjoint(ALL)
    assert_disjoint(ALL, key=lambda e: e.inputs["question"])
    for split, examples in ALL.items():
        questions = [e.inputs["question"] for e in examples]
        assert len(set(questions)) == len(questions)
        assert all(arith_split_of(q) == split for q in questions)


def test_splits_stay_disjoint_for_other_seeds_and_sizes() -> None:
    other = {split: generate_arith(split, 300, seed=5) for split in ARITH_SIZES}
    questions = {
        split: {e.inputs["question"] for e in examples} for split, examples in other.items()
    }
    for split in ARITH_SIZES:
        for base in ARITH_SIZES:
            if base != split:
                assert not questions[split] & {e.inputs["question"] for e in ALL[base]}
    assert other["train"][0].id == "arith/train/s5/0"


def test_deterministic_and_prefix_stable() -> None:
    again = generate_arith("test", 200)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in ALL["test"]]
    assert generate_arith("test", 50) == ALL["test"][:50]
    assert generate_arith("test", 50, seed=1) != ALL["test"][:50]


GOLDEN_TRAIN_0 = (
    "Leo earns $11 an hour mowing lawns. He works 4 hours on Monday and 3 hours on Tuesday, then spends $41 on a book. How many dollars does he have left?",
    "36",
)


def test_golden_first_problem() -> None:
    # A change here changes the bundled benchmark: bump it on purpose, never by accident.
    first = ALL["train"][0]
    assert (first.inputs["question"], first.target) == GOLDEN_TRAIN_0


def test_same_problems_in_another_process() -> None:
    code = (
        "import json; from semgrad.data import generate_arith\n"
        "print(json.dumps([e.to_dict() for e in generate_arith('val', 100)]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "987"},
    )
    assert json.loads(out.stdout) == [e.to_dict() for e in ALL["val"]]


def test_each_target_scores_as_correct_with_the_numeric_metric() -> None:
    metric = NumericMatch()
    for e in ALL["val"]:
        assert metric(f"Let's think step by step. ... The answer is {e.target}.", e).correct


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=10**6), split=st.sampled_from(["train", "val", "test"])
)
def test_any_seed_gives_valid_problems(seed: int, split: str) -> None:
    for e in generate_arith(split, 20, seed=seed):
        assert arith_split_of(e.inputs["question"]) == split
        assert evaluate(e.meta["expression"]) == int(e.target) >= 0


def test_bad_arguments() -> None:
    with pytest.raises(UserInputError, match="arith has no split 'dev'"):
        generate_arith("dev", 3)
    with pytest.raises(UserInputError, match="negative"):
        generate_arith("train", -1)
