"""The task-selection rule of select_task.py (BENCHMARKS.md §2), on made-up figures."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from select_task import choose, verdict  # a module name no other benchmark uses


def test_a_task_qualifies_inside_the_band_and_not_answering_a_constant() -> None:
    mixed = Counter({"True": 30, "False": 20})
    assert verdict(0.6, mixed, 50) == "qualifies"
    assert verdict(0.2, mixed, 50) == "qualifies" and verdict(0.8, mixed, 50) == "qualifies"
    assert verdict(0.18, mixed, 50).startswith("out: accuracy 18%")
    assert verdict(0.9, mixed, 50).startswith("out: accuracy 90%")
    constant = Counter({"(A)": 40, "(B)": 10})
    assert verdict(0.4, constant, 50) == "out: answers a constant ('(A)' in 40 of 50)"


def test_the_choice_is_the_qualifier_closest_to_half_the_first_on_a_tie() -> None:
    rows = {
        "a": {"accuracy": 0.9, "verdict": "out: accuracy 90% outside 20%-80%"},
        "b": {"accuracy": 0.62, "verdict": "qualifies"},
        "c": {"accuracy": 0.38, "verdict": "qualifies"},
        "d": {"accuracy": 0.45, "verdict": "out: answers a constant"},
    }
    assert choose(rows) == "b"  # b and c are both 12 points from 50 %: the first given
    assert choose({"a": rows["a"]}) is None
