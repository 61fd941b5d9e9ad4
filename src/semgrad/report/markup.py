"""The report's markup kit: plain strings are always escaped.

The page is built with `el()`, which escapes every plain `str` it is given; only `Html`
values, made by `el()` and `esc()` themselves, pass through as markup. So every text that
came from a model, a dataset or a user stays text: it never becomes markup. This module
also holds the small display formats the sections share (percent, seconds, clipping) and
the word diff of two texts.
"""

from __future__ import annotations

import difflib
import html
import re
from collections.abc import Sequence
from typing import TypeAlias

__all__ = [
    "Content",
    "Html",
    "clip",
    "el",
    "esc",
    "join",
    "num_text",
    "pct",
    "prob",
    "seconds",
    "section",
    "word_diff",
]


class Html(str):
    """Markup that is safe to put in the page as it is. Any other `str` gets escaped."""

    __slots__ = ()


Content: TypeAlias = "Html | str | int | float | Sequence[Content] | None"

_VOID = frozenset({"br", "hr", "meta", "col", "wbr"})


def esc(value: Content) -> Html:
    """`value` as markup: `Html` as it is, text escaped, sequences joined, None as nothing."""
    if isinstance(value, Html):
        return value
    if value is None:
        return Html("")
    if isinstance(value, list | tuple):
        return Html("".join(esc(v) for v in value))
    return Html(html.escape(str(value), quote=True))


def el(tag: str, *children: Content, **attrs: str | int | float | bool | None) -> Html:
    """An element. Attribute names drop a trailing `_` and use `-` for `_` (`class_`,
    `stroke_width`); True writes a bare attribute, False or None leaves it out."""
    parts = [tag]
    for key, value in attrs.items():
        if value is None or value is False:
            continue
        name = key.rstrip("_").replace("_", "-")
        parts.append(name if value is True else f'{name}="{esc(_fmt_attr(value))}"')
    start = f"<{' '.join(parts)}>"
    if tag in _VOID:
        return Html(start)
    return Html(f"{start}{esc(list(children))}</{tag}>")


def _fmt_attr(value: str | int | float) -> str:
    if isinstance(value, float):
        return f"{value:.1f}".rstrip("0").rstrip(".")
    return str(value)


def section(id_: str, title: str, *body: Content) -> Html:
    """A top-level section with a linked heading."""
    return el("section", el("h2", el("a", title, href=f"#{id_}", class_="plain")), *body, id=id_)


def join(items: Sequence[Html], sep: str) -> Html:
    return Html(esc(sep).join(items))


# -- display formats -----------------------------------------------------------------------


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def prob(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def num_text(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.2f} s" if value < 10 else f"{value:.1f} s"
    minutes, sec = divmod(round(value), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


def clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


# -- word diff -----------------------------------------------------------------------------

_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


def word_diff(old: str, new: str) -> Html:
    """`old` → `new` with deleted words in <del> and inserted words in <ins>.

    Whitespace is diffed as its own token, and a run of whitespace alone between two
    changes is folded into them, so a rewritten sentence reads as one deletion and one
    insertion instead of alternating single words.
    """
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    if matcher.ratio() < 0.3:  # a rewrite, not an edit: word-level pieces would be noise
        return el("div", el("del", old), el("br"), el("ins", new), class_="rewrite")
    # (kind, old text, new text) chunks; kind "=" or "~"
    chunks: list[tuple[str, str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        chunks.append(("=" if op == "equal" else "~", "".join(a[i1:i2]), "".join(b[j1:j2])))
    merged: list[tuple[str, str, str]] = []
    for i, (kind, x, y) in enumerate(chunks):
        between_changes = 0 < i < len(chunks) - 1 and chunks[i + 1][0] == "~"
        if kind == "=" and between_changes and merged and merged[-1][0] == "~" and not x.strip():
            kind = "~"
        if kind == "~" and merged and merged[-1][0] == "~":
            _, px, py = merged.pop()
            x, y = px + x, py + y
        merged.append((kind, x, y))
    out: list[Content] = []
    for kind, x, y in merged:
        if kind == "=":
            out.append(x)
            continue
        if x:
            out.append(el("del", x))
        if y:
            out.append(el("ins", y))
    return esc(out)
