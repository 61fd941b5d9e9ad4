"""Text that came from outside (model replies, user input) made safe to show, store and parse.

Three rules, one place each:

- `shorten`: a value echoed in a message is cut to a readable length (the start and the end
  survive, the middle is replaced by a count), so a 4 MB name never makes a 4 MB error.
- `visible`: control characters (ESC and OSC sequences, C0/C1 codes except newline and tab,
  lone surrogates, bidirectional overrides) are shown as escapes like ``\\x1b``, so model
  text printed to a terminal is data, never commands.
- `MAX_PARSE_CHARS`: parsers that look for an answer or a block in a reply read at most
  this many characters of it (the end of the reply, where answers are), so a hostile
  multi-megabyte reply costs a bounded time.
"""

from __future__ import annotations

__all__ = ["MAX_MESSAGE_CHARS", "MAX_PARSE_CHARS", "parse_window", "shorten", "visible"]

# Answers and edit blocks sit at the end of a reply; 100,000 characters is ~25,000 tokens,
# far beyond any max_tokens semgrad asks for, so only hostile or runaway replies are cut.
MAX_PARSE_CHARS = 100_000

# An error message is one readable paragraph: at most this many characters in all.
MAX_MESSAGE_CHARS = 1_500

# C0 controls but tab and newline, DEL, C1 controls, lone surrogates, and the Unicode
# bidirectional embedding/override/isolate controls (which reorder what a reader sees).
_INVISIBLE = [
    *range(0x00, 0x09),
    *range(0x0B, 0x20),
    *range(0x7F, 0xA0),
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
    *range(0xD800, 0xE000),
]
# str.translate with a table runs in C: linear and fast even on megabytes of escapes.
_VISIBLE = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _INVISIBLE}


def visible(text: str) -> str:
    """`text` with every control character shown as an escape (``\\x1b``, ``\\u202e``).

    Newline and tab are kept; everything else that a terminal would act on instead of
    showing (ESC, BEL, carriage return, backspace, C1 codes) is made visible. Linear time.
    """
    return text.translate(_VISIBLE)


def shorten(text: str, limit: int = 200) -> str:
    """`text` cut to about `limit` characters: its start and end, with the middle replaced
    by ``…[N characters omitted]…``. Short texts come back unchanged."""
    if len(text) <= limit:
        return text
    keep = max(limit - 40, 2)
    head, tail = keep * 2 // 3, keep - keep * 2 // 3
    omitted = len(text) - head - tail
    return f"{text[:head]}…[{omitted} characters omitted]…{text[len(text) - tail :]}"


def parse_window(text: str, limit: int = MAX_PARSE_CHARS) -> str:
    """The part of a reply that parsers read: all of it, or its last `limit` characters."""
    return text if len(text) <= limit else text[len(text) - limit :]
