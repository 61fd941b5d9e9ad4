"""Reading the README: its commands and the "Your own task" walk-through's files."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    text = readme()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def blocks(text: str, lang: str) -> list[str]:
    """The fenced blocks whose info string is `lang` ("" for a bare fence), in order."""
    found: list[str] = []
    current: list[str] | None = None
    current_lang = ""
    for line in text.splitlines(keepends=True):
        if line.startswith("```"):
            if current is None:
                current, current_lang = [], line[3:].strip()
            else:
                if current_lang == lang:
                    found.append("".join(current))
                current = None
        elif current is not None:
            current.append(line)
    return found


def walkthrough_files() -> dict[str, str]:
    """The files the walk-through asks a user to write, as the README shows them."""
    own = section("Your own task")
    return {
        "capitals.jsonl": blocks(own, "jsonl")[0],
        "capitals.json": blocks(own, "json")[0],
        "capitals_metric.py": blocks(own, "python")[0],
    }


def write_walkthrough(folder: Path) -> None:
    for name, text in walkthrough_files().items():
        (folder / name).write_text(text, encoding="utf-8")


def commands() -> list[str]:
    """Every `semgrad ...` command line in the README's shell blocks (``&&`` chains and
    ``a | b | c`` alternatives of one group split apart; comments dropped)."""
    found: list[str] = []
    for block in blocks(readme(), "bash") + blocks(readme(), ""):
        for line in block.splitlines():
            for part in line.split("&&"):
                match = re.search(r"(?:^|[\s/])semgrad\s+(.*)", part.split("#", 1)[0])
                if match is None:
                    continue
                alternatives = [a.strip() for a in match.group(1).split(" | ")]
                group = alternatives[0].split()[:-1] if len(alternatives) > 1 else []
                found.append(alternatives[0])
                found.extend(" ".join([*group[:1], a]) for a in alternatives[1:])
    return found
