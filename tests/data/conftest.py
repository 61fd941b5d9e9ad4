"""A small data directory the tests write themselves, in the real files' formats.

It stands in for the real datasets (tests/conftest.py's `data_dir`) wherever a test checks
parsing, splitting or an error rather than the real files' counts, so those tests run on
a fresh clone too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GSM8K_TRAIN = 305  # GSM8K_VAL_SIZE (300) for val, 5 left for train
GSM8K_TEST = [
    {"question": "Janet has 3 eggs and buys 2. How many?", "answer": "3 + 2 = 5\n#### 5"},
    {"question": "A big number?", "answer": "so #### is not the end\n#### 1,000"},
    {"question": "Below zero?", "answer": "#### -3 "},
]
OBJECT_COUNTING = 105  # 50 train + 50 val + 5 test
NAVIGATE = ["Yes", "No", "No"]
MOVIES = ["(A)"] * 5 + ["(B)"] * 4 + ["Monsters, Inc"]  # 9 of 10 letters: one text quirk


def liar_row(
    statement_id: str, label: str, statement: str, speaker: str, context: str = "a speech"
) -> str:
    return "\t".join(
        [
            f"{statement_id}.json",
            label,
            statement,
            "economy",
            speaker,
            "Senator",
            "Ohio",
            "democrat",
            "1",
            "2",
            "3",
            "4",
            "5",
            context,
        ]
    )


LIAR = {
    "train": [
        liar_row(str(i), label, f"Claim {i}.", "jane-doe")
        for i, label in enumerate(
            ["pants-fire", "false", "barely-true", "half-true", "mostly-true", "true", "false"]
        )
    ],
    "valid": [
        liar_row("100", "false", "Taxes doubled.", "john-q-public"),
        liar_row("101", "half-true", "Jobs rose.", "chain-email", context=""),
        liar_row("102", "true", 'He said "no', "a-b"),
    ],
    "test": [liar_row("200", "true", "It rained.", "jane-doe")],
}


def write_mini_data(root: Path) -> Path:
    (root / "gsm8k").mkdir(parents=True)
    train = [
        json.dumps({"question": f"What is {i} + 1?", "answer": f"{i} + 1\n#### {i + 1}"})
        for i in range(GSM8K_TRAIN)
    ]
    (root / "gsm8k" / "train.jsonl").write_text("\n".join(train) + "\n", encoding="utf-8")
    test = [json.dumps(row) for row in GSM8K_TEST]
    # a blank line between items is skipped; ids keep the line index
    (root / "gsm8k" / "test.jsonl").write_text(
        test[0] + "\n" + test[1] + "\n\n" + test[2] + "\n", encoding="utf-8"
    )
    bbh = root / "bbh"
    bbh.mkdir()
    tasks = {
        "object_counting": [(f"How many: {'x ' * (i % 7)}{i}?", str(i % 7)) for i in range(105)],
        "navigate": [(f"Walk {i} steps. Back home?", t) for i, t in enumerate(NAVIGATE)],
        "movie_recommendation": [(f"Movie {i}? (A) x (B) y", t) for i, t in enumerate(MOVIES)],
    }
    for task, items in tasks.items():
        examples = [{"input": q, "target": t} for q, t in items]
        (bbh / f"{task}.json").write_text(json.dumps({"examples": examples}), encoding="utf-8")
    (bbh / "cot-prompts").mkdir()  # a folder, as in the real data: not a task
    (root / "liar").mkdir()
    for split, rows in LIAR.items():
        (root / "liar" / f"{split}.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


@pytest.fixture(scope="session")
def mini_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_mini_data(tmp_path_factory.mktemp("mini-data"))
