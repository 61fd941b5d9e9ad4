from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from semgrad.data import Example, assert_disjoint, split, split_sizes
from semgrad.errors import DataError, UserInputError


def make_examples(n: int) -> list[Example]:
    return [Example(id=f"ex/{i}", inputs={"question": f"q{i}"}, target=str(i)) for i in range(n)]


def ids(parts: dict[str, tuple[Example, ...]]) -> dict[str, list[str]]:
    return {name: [e.id for e in examples] for name, examples in parts.items()}


@st.composite
def split_requests(draw: st.DrawFn) -> tuple[int, dict[str, int | float]]:
    """A dataset size and split sizes (counts, fractions or both) that fit in it."""
    n = draw(st.integers(min_value=0, max_value=120))
    names = draw(
        st.lists(
            st.sampled_from(["train", "val", "test", "gate", "extra"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    sizes: dict[str, int | float] = {}
    budget_count, budget_fraction = n, 1.0
    for name in names:
        if draw(st.booleans()):
            count = draw(st.integers(min_value=0, max_value=budget_count))
            sizes[name] = count
            budget_count -= count
        else:
            fraction = draw(st.floats(min_value=0.0, max_value=budget_fraction, allow_nan=False))
            sizes[name] = fraction
            budget_fraction -= fraction
    # Fractions take their share of the whole set, so check the combination fits.
    try:
        split_sizes(n, sizes)
    except UserInputError:
        sizes = {k: v for k, v in sizes.items() if isinstance(v, float)} or {"train": 0}
    return n, sizes


@settings(max_examples=150, deadline=None)
@given(request=split_requests(), seed=st.integers(min_value=0, max_value=2**32))
def test_splits_are_disjoint_sized_as_asked_and_deterministic(
    request: tuple[int, dict[str, int | float]], seed: int
) -> None:
    n, sizes = request
    examples = make_examples(n)
    parts = split(examples, seed=seed, sizes=sizes)
    assert list(parts) == list(sizes)
    assert_disjoint(parts)
    expected = split_sizes(n, sizes)
    for name, size in sizes.items():
        assert len(parts[name]) == expected[name]
        if isinstance(size, int):
            assert len(parts[name]) == size
        else:
            assert abs(len(parts[name]) - size * n) <= 1 + 1e-9
    chosen = [e for examples_ in parts.values() for e in examples_]
    assert len({e.id for e in chosen}) == len(chosen)
    assert {e.id for e in chosen} <= {e.id for e in examples}
    assert ids(split(examples, seed=seed, sizes=sizes)) == ids(parts)


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=200),
    fractions=st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1, max_size=4),
)
def test_fractions_summing_to_one_use_every_example(n: int, fractions: list[float]) -> None:
    total = sum(fractions)
    sizes: dict[str, int | float] = {f"s{i}": f / total for i, f in enumerate(fractions)}
    if sum(sizes.values()) > 1.0:  # float rounding may push the sum a hair over 1
        sizes["s0"] = float(sizes["s0"]) - 1e-12
    parts = split(make_examples(n), seed=0, sizes=sizes)
    assert sum(len(p) for p in parts.values()) == n


def test_one_shuffle_each_split_is_a_block_of_the_same_permutation() -> None:
    examples = make_examples(50)
    everything = split(examples, seed=7, sizes={"all": 50})["all"]
    parts = split(examples, seed=7, sizes={"a": 10, "b": 15, "c": 25})
    assert parts["a"] + parts["b"] + parts["c"] == everything


def test_different_seeds_give_different_orders() -> None:
    examples = make_examples(100)
    a = split(examples, seed=0, sizes={"train": 50})["train"]
    b = split(examples, seed=1, sizes={"train": 50})["train"]
    assert a != b


def test_golden_order_for_seed_0() -> None:
    # Pins random.Random(seed).shuffle: if a Python release changed it, splits (and every
    # published result on them) would silently change; this test would say so.
    parts = split(make_examples(10), seed=0, sizes={"train": 4, "test": 6})
    assert ids(parts) == {
        "train": ["ex/7", "ex/8", "ex/1", "ex/5"],
        "test": ["ex/3", "ex/4", "ex/2", "ex/0", "ex/9", "ex/6"],
    }


def test_same_split_in_another_process_with_another_hash_seed() -> None:
    code = (
        "import json; from semgrad.data import Example, split\n"
        "ex = [Example(id=f'ex/{i}', inputs={'question': f'q{i}'}, target='') for i in range(300)]\n"
        "parts = split(ex, seed=123, sizes={'train': 0.5, 'val': 40, 'test': 0.25})\n"
        "print(json.dumps({k: [e.id for e in v] for k, v in parts.items()}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    here = split(make_examples(300), seed=123, sizes={"train": 0.5, "val": 40, "test": 0.25})
    assert json.loads(out.stdout) == ids(here)


def test_oversubscribed_counts_name_the_numbers() -> None:
    with pytest.raises(
        UserInputError, match=r"ask for 120 examples \(train=100, test=20\) but only 110"
    ):
        split(make_examples(110), seed=0, sizes={"train": 100, "test": 20})


def test_oversubscribed_fractions_name_the_numbers() -> None:
    with pytest.raises(UserInputError, match=r"add up to 1\.2 \(train=0\.8, test=0\.4\)"):
        split(make_examples(10), seed=0, sizes={"train": 0.8, "test": 0.4})


def test_mixed_counts_and_fractions_oversubscribed() -> None:
    with pytest.raises(UserInputError, match="only 10 are available"):
        split(make_examples(10), seed=0, sizes={"val": 5, "train": 0.6})


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ({}, "no split sizes"),
        ({"train": -1}, "negative size"),
        ({"train": 1.5}, "between 0 and 1"),
        ({"train": True}, "is an int"),
        ({"train": "half"}, "is an int"),
    ],
)
def test_bad_sizes(sizes: dict[str, int | float], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        split(make_examples(10), seed=0, sizes=sizes)


def test_a_set_is_refused_because_it_has_no_order() -> None:
    with pytest.raises(UserInputError, match="a set has no stable order"):
        split(set(), seed=0, sizes={"train": 0})  # type: ignore[arg-type]


def test_seed_must_be_an_int() -> None:
    with pytest.raises(UserInputError, match="seed must be an int"):
        split(make_examples(3), seed="0", sizes={"train": 1})  # type: ignore[arg-type]


def test_duplicate_ids_are_refused() -> None:
    examples = [*make_examples(3), Example(id="ex/1", inputs={}, target="")]
    with pytest.raises(DataError, match="'ex/1'"):
        split(examples, seed=0, sizes={"train": 1})


def test_assert_disjoint_names_the_splits_and_ids() -> None:
    a, b, c = make_examples(3)
    with pytest.raises(DataError, match=r"'train' and 'test' share 2 \('ex/0', 'ex/1'\)"):
        assert_disjoint({"train": (a, b), "val": (c,), "test": (a, b)})


def test_assert_disjoint_with_a_key() -> None:
    a = Example(id="x/1", inputs={"question": "same"}, target="1")
    b = Example(id="x/2", inputs={"question": "same"}, target="1")
    assert_disjoint({"train": (a,), "test": (b,)})
    with pytest.raises(DataError, match="'same'"):
        assert_disjoint({"train": (a,), "test": (b,)}, key=lambda e: e.inputs["question"])


def test_assert_disjoint_preview_is_bounded() -> None:
    examples = make_examples(20)
    with pytest.raises(DataError, match=r"… 15 more"):
        assert_disjoint({"train": examples, "test": examples})
