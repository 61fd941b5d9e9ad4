"""``arith``: a small synthetic task of multi-step arithmetic word problems, bundled.

It needs no data directory, so the quick start and the offline tests can run a real
optimisation end to end. Each problem is a short story with 2 or 3 operations (+, −, ×,
exact ÷) on small whole numbers and a whole-number answer, e.g.::

    Mia has 12 stickers. She buys 3 packs of 5 stickers and gives 7 to her brother.
    How many stickers does she have now?                                    -> "20"

Problems come from 12 story templates, with varied names, objects and phrasings, filled
with numbers from a seeded `random.Random`. Every template keeps intermediate results
non-negative and divisions exact, and its answer is computed from the same numbers that
are written into the story. Operands stay below 100 and answers at most 200: hard enough
for a 0.5B model to fail often with chain of thought, easy enough for it to succeed often,
so an optimiser has room to show an improvement.

Splits never share a question, by construction: a question belongs to exactly one split,
chosen by the sha256 of its text (40 % of question space is train, 20 % val, 40 % test),
and each split's generator keeps only its own questions and drops repeats. So a split's
questions do not depend on the other splits' sizes or seeds.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from semgrad.data.example import Example
from semgrad.errors import UserInputError

__all__ = ["ARITH_SIZES", "ArithSplit", "arith_split_of", "generate_arith"]

ArithSplit = Literal["train", "val", "test"]

# The fixed sizes of the bundled splits (`load_task("arith:<split>")`).
ARITH_SIZES: dict[str, int] = {"train": 200, "val": 100, "test": 200}

_SPLITS: tuple[ArithSplit, ...] = ("train", "val", "test")
_SPLIT_SEEDS: dict[str, int] = {"train": 1_001, "val": 2_002, "test": 3_003}


def arith_split_of(question: str) -> ArithSplit:
    """The one split a question text can belong to: its sha256 bucket out of ten,
    0-3 train, 4-5 val, 6-9 test."""
    bucket = int.from_bytes(hashlib.sha256(question.encode("utf-8")).digest()[:8], "big") % 10
    if bucket < 4:
        return "train"
    return "val" if bucket < 6 else "test"


# --- the stories ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    name: str
    subject: str  # she / he
    possessive: str  # her / his


_PEOPLE = tuple(
    [
        _Person(name, "she", "her")
        for name in [
            "Mia",
            "Ava",
            "Lena",
            "Sofia",
            "Zara",
            "Nora",
            "Priya",
            "Emma",
            "Hana",
            "Lucia",
            "Chloe",
            "Amara",
            "Ines",
        ]
    ]
    + [
        _Person(name, "he", "his")
        for name in [
            "Liam",
            "Noah",
            "Omar",
            "Leo",
            "Ravi",
            "Tom",
            "Mateo",
            "Kenji",
            "Sam",
            "Diego",
            "Felix",
            "Jonah",
            "Arjun",
        ]
    ]
)
_RELATIVES = ("brother", "sister", "cousin", "friend", "neighbour", "best friend")
_COLLECTIBLES = (
    "stickers",
    "marbles",
    "baseball cards",
    "stamps",
    "beads",
    "crayons",
    "seashells",
    "trading cards",
    "pencils",
    "erasers",
)
_CONTAINERS = ("packs", "boxes", "bags", "sets")
_BAKED = ("cookies", "muffins", "cupcakes", "brownies", "rolls")
_FLOWERS = ("tulips", "roses", "sunflowers", "daisies", "lettuce plants", "tomato plants")
_JOBS = ("babysitting", "walking dogs", "tutoring", "washing cars", "mowing lawns")
_DAYS = (("Saturday", "Sunday"), ("Monday", "Tuesday"), ("Friday", "Saturday"))
_ITEMS = ("a book", "a video game", "a pair of shoes", "a backpack", "a board game", "a jacket")
_VEHICLES = ("bus", "train", "tram", "ferry")
_STUDENTS = ("students", "children", "campers", "players")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _n(count: int, singular: str, plural: str) -> str:
    """``1 egg``, ``3 eggs``."""
    return f"{count} {singular if count == 1 else plural}"


@dataclass(frozen=True)
class _Problem:
    question: str
    answer: int
    expression: str

    @property
    def operations(self) -> int:
        return sum(self.expression.count(op) for op in ("+", " - ", "*", "/"))


def _packs(r: random.Random) -> _Problem:
    p, obj, box = r.choice(_PEOPLE), r.choice(_COLLECTIBLES), r.choice(_CONTAINERS)
    a, b, c = r.randint(4, 30), r.randint(2, 5), r.randint(3, 10)
    d = r.randint(2, min(a + b * c - 1, 25))
    rel = r.choice(_RELATIVES)
    verb = r.choice(("buys", "gets", "is given"))
    q = (
        f"{p.name} has {a} {obj}. {_cap(p.subject)} {verb} {b} {box} of {c} {obj} and gives "
        f"{d} to {p.possessive} {rel}. How many {obj} does {p.subject} have now?"
    )
    return _Problem(q, a + b * c - d, f"{a} + {b} * {c} - {d}")


def _vehicle(r: random.Random) -> _Problem:
    v = r.choice(_VEHICLES)
    a = r.randint(12, 45)
    b = r.randint(2, a - 2)
    c = r.randint(2, 15)
    d = r.randint(1, a - b + c - 1)
    q = (
        f"A {v} leaves the station with {a} passengers. At the first stop, {b} people get off "
        f"and {c} people get on. At the second stop, {_n(d, 'person gets', 'people get')} off. "
        f"How many passengers are on the {v} now?"
    )
    return _Problem(q, a - b + c - d, f"{a} - {b} + {c} - {d}")


def _wage(r: random.Random) -> _Problem:
    p, job, (day1, day2), item = (
        r.choice(_PEOPLE),
        r.choice(_JOBS),
        r.choice(_DAYS),
        r.choice(_ITEMS),
    )
    a, b, c = r.randint(4, 12), r.randint(1, 5), r.randint(1, 5)
    d = r.randint(3, a * (b + c) - 1)
    q = (
        f"{p.name} earns ${a} an hour {job}. {_cap(p.subject)} works {_n(b, 'hour', 'hours')} "
        f"on {day1} and {_n(c, 'hour', 'hours')} on {day2}, then spends ${d} on {item}. How many dollars does "
        f"{p.subject} have left?"
    )
    return _Problem(q, a * (b + c) - d, f"{a} * ({b} + {c}) - {d}")


def _share(r: random.Random) -> _Problem:
    p, food = r.choice(_PEOPLE), r.choice(_BAKED)
    a, b, d = r.randint(2, 4), r.randint(6, 12), r.randint(2, 6)
    total = a * b
    # Eat c so that the rest divides evenly among d friends and each gets at least one.
    choices = [c for c in range(1, total - d + 1) if (total - c) % d == 0 and c <= 9]
    c = r.choice(choices)
    q = (
        f"{p.name} bakes {a} trays of {b} {food}. {_cap(p.subject)} eats {c} of them and "
        f"shares the rest equally among {d} friends. How many {food} does each friend get?"
    )
    return _Problem(q, (total - c) // d, f"({a} * {b} - {c}) / {d}")


def _times_as_many(r: random.Random) -> _Problem:
    p, other = r.sample(_PEOPLE, 2)
    obj = r.choice(_COLLECTIBLES)
    a, k = r.randint(3, 15), r.randint(2, 5)
    if r.random() < 0.5:
        q = (
            f"{p.name} has {a} {obj}. {other.name} has {k} times as many {obj} as {p.name}. "
            f"How many {obj} do they have together?"
        )
        return _Problem(q, a + k * a, f"{a} + {k} * {a}")
    q = (
        f"{p.name} has {a} {obj}. {other.name} has {k} times as many {obj} as {p.name}. "
        f"How many more {obj} does {other.name} have than {p.name}?"
    )
    return _Problem(q, k * a - a, f"{k} * {a} - {a}")


def _garden(r: random.Random) -> _Problem:
    flower = r.choice(_FLOWERS)
    a, b = r.randint(3, 8), r.randint(4, 10)
    c = r.randint(2, a * b - 2)
    if r.random() < 0.5:
        q = (
            f"A gardener plants {a} rows of {b} {flower}. {c} of the {flower} die. How many "
            f"{flower} are still alive?"
        )
        return _Problem(q, a * b - c, f"{a} * {b} - {c}")
    d = r.randint(2, 12)
    q = (
        f"A gardener plants {a} rows of {b} {flower}. {c} of the {flower} die, so the "
        f"gardener plants {d} new ones. How many {flower} are in the garden now?"
    )
    return _Problem(q, a * b - c + d, f"{a} * {b} - {c} + {d}")


def _shop(r: random.Random) -> _Problem:
    p = r.choice(_PEOPLE)
    item, other = r.sample(
        [
            ("notebook", "notebooks"),
            ("pen", "pens"),
            ("ruler", "rulers"),
            ("folder", "folders"),
            ("sandwich", "sandwiches"),
            ("juice box", "juice boxes"),
        ],
        2,
    )
    a, b, c = r.randint(2, 9), r.randint(1, 6), r.randint(2, 5)
    cost = a * c + b
    bill = next(x for x in (10, 20, 50, 100) if x > cost)
    q = (
        f"A {item[0]} costs ${a} and a {other[0]} costs ${b}. {p.name} buys {c} {item[1]} and "
        f"one {other[0]}, and pays with a ${bill} bill. How many dollars of change does "
        f"{p.subject} get?"
    )
    return _Problem(q, bill - (a * c + b), f"{bill} - ({a} * {c} + {b})")


def _book(r: random.Random) -> _Problem:
    p = r.choice(_PEOPLE)
    a, k = r.randint(5, 20), r.randint(2, 3)
    read = a + k * a
    total = read + r.randint(5, 60)
    twice = {2: "twice as many pages", 3: "three times as many pages"}[k]
    q = (
        f"{p.name}'s book has {total} pages. {_cap(p.subject)} reads {a} pages on Monday and "
        f"{twice} on Tuesday. How many pages does {p.subject} still have to read?"
    )
    return _Problem(q, total - read, f"{total} - ({a} + {k} * {a})")


def _savings(r: random.Random) -> _Problem:
    p, item = r.choice(_PEOPLE), r.choice(_ITEMS)
    a, b = r.randint(3, 15), r.randint(2, 8)
    if r.random() < 0.5:
        c = r.randint(3, a * b - 1)
        q = (
            f"{p.name} saves ${a} every week for {b} weeks. Then {p.subject} buys {item} for "
            f"${c}. How many dollars does {p.subject} have left?"
        )
        return _Problem(q, a * b - c, f"{a} * {b} - {c}")
    d = r.randint(5, 20)
    c = r.randint(5, a * b + d - 1)
    q = (
        f"{p.name} saves ${a} every week for {b} weeks. {_cap(p.subject)} already had ${d}. "
        f"Then {p.subject} buys {item} for ${c}. How many dollars does {p.subject} have left?"
    )
    return _Problem(q, a * b + d - c, f"{a} * {b} + {d} - {c}")


def _groups(r: random.Random) -> _Problem:
    who = r.choice(_STUDENTS)
    size = r.randint(3, 6)
    groups = r.randint(2, 8)
    absent = r.randint(1, 6)
    total = size * groups + absent
    go = "goes" if absent == 1 else "go"
    if r.random() < 0.5:
        q = (
            f"There are {total} {who} at a club. {absent} of them {go} home early. The rest "
            f"are put into teams of {size}. How many teams are there?"
        )
        return _Problem(q, groups, f"({total} - {absent}) / {size}")
    girls = r.randint(1, total - 1)
    boys = total - girls
    q = (
        f"A club has {_n(girls, 'girl', 'girls')} and {_n(boys, 'boy', 'boys')}. {absent} of "
        f"the children {go} home early, and the rest are put into teams of {size}. How many "
        f"teams are there?"
    )
    return _Problem(q, groups, f"({girls} + {boys} - {absent}) / {size}")


def _eggs(r: random.Random) -> _Problem:
    p = r.choice(_PEOPLE)
    a = r.randint(8, 16)
    b = r.randint(1, a - 2)
    c = r.randint(2, 4)
    story = (
        f"{p.name}'s hens lay {a} eggs a day. {_cap(p.subject)} uses {_n(b, 'egg', 'eggs')} "
        f"each day and sells the rest for ${c} each."
    )
    if r.random() < 0.5:
        q = f"{story} How many dollars does {p.subject} make each day?"
        return _Problem(q, (a - b) * c, f"({a} - {b}) * {c}")
    d = r.randint(2, 3)
    q = f"{story} How many dollars does {p.subject} make in {d} days?"
    return _Problem(q, (a - b) * c * d, f"({a} - {b}) * {c} * {d}")


def _tank(r: random.Random) -> _Problem:
    p = r.choice(_PEOPLE)
    per_minute, minutes = r.randint(2, 9), r.randint(3, 10)
    start = r.randint(5, 40)
    leak = r.randint(2, start + per_minute * minutes - 1)
    q = (
        f"A tank holds {start} litres of water. {p.name} pours in {per_minute} litres a minute "
        f"for {minutes} minutes, and then {leak} litres are used to water the plants. How "
        f"many litres are in the tank now?"
    )
    return _Problem(
        q, start + per_minute * minutes - leak, f"{start} + {per_minute} * {minutes} - {leak}"
    )


_TEMPLATES: dict[str, Callable[[random.Random], _Problem]] = {
    "packs": _packs,
    "vehicle": _vehicle,
    "wage": _wage,
    "share": _share,
    "times_as_many": _times_as_many,
    "garden": _garden,
    "shop": _shop,
    "book": _book,
    "savings": _savings,
    "groups": _groups,
    "eggs": _eggs,
    "tank": _tank,
}


def generate_arith(split: str, n: int, *, seed: int = 0) -> tuple[Example, ...]:
    """`n` distinct arith problems of `split` ("train", "val" or "test").

    Deterministic in (`split`, `n`, `seed`), and the first `n` of a larger request. Ids are
    ``arith/<split>/<index>`` for seed 0 and ``arith/<split>/s<seed>/<index>`` otherwise;
    input ``question``; target the answer as a whole number (``"20"``); meta ``template``,
    ``expression`` (the computation, e.g. ``12 + 3 * 5 - 7``) and ``operations``.
    """
    if split not in _SPLITS:
        raise UserInputError(f"arith has no split {split!r}; the splits are: train, val, test.")
    if n < 0:
        raise UserInputError(f"cannot generate a negative number of problems ({n}).")
    rng = random.Random(_SPLIT_SEEDS[split] * 1_000_003 + seed)
    names = list(_TEMPLATES)
    prefix = f"arith/{split}" if seed == 0 else f"arith/{split}/s{seed}"
    seen: set[str] = set()
    examples: list[Example] = []
    attempts = 0
    while len(examples) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise UserInputError(f"could not generate {n} distinct arith problems for {split!r}.")
        template = rng.choice(names)
        problem = _TEMPLATES[template](rng)
        if problem.question in seen or arith_split_of(problem.question) != split:
            continue
        seen.add(problem.question)
        examples.append(
            Example(
                id=f"{prefix}/{len(examples)}",
                inputs={"question": problem.question},
                target=str(problem.answer),
                meta={
                    "template": template,
                    "expression": problem.expression,
                    "operations": problem.operations,
                },
            )
        )
    return tuple(examples)
