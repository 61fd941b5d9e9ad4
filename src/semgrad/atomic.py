"""Atomic file writes: a reader (or a crash) sees the old complete file or the new one,
never half of either.

The text goes to a temporary file in the target's directory (so that `os.replace` is a
rename within one file system), is flushed and fsynced, and only then replaces the target.
On any failure, Ctrl-C included, the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["atomic_open", "atomic_write_json", "atomic_write_text"]


@contextmanager
def atomic_open(path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w") -> Iterator[IO[Any]]:
    """A file opened for writing (`"w"`: UTF-8 text, `"wb"`: bytes) that replaces `path`
    when the block ends without an exception; an exception raised in the block (e.g. a
    failed checksum) leaves `path` as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); what semgrad writes is meant to be shared.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """`obj` as indented JSON (UTF-8, non-ASCII kept) with a final newline."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")
