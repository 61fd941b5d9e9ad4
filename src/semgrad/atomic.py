"""Atomic file writes: a reader (or a crash) sees the old complete file or the new one,
never half of either.

The text goes to a temporary file in the target's directory (so that `os.replace` is a
rename within one file system), is flushed and fsynced, and only then replaces the target.
On any failure, Ctrl-C included, the temporary file is removed and the target is untouched.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Literal

__all__ = ["atomic_open", "atomic_write_json", "atomic_write_text", "remove_temporary_files"]


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: Literal["w", "wb"] = "w", *, durable: bool = True
) -> Iterator[IO[Any]]:
    """A file opened for writing (`"w"`: UTF-8 text, `"wb"`: bytes) that replaces `path`
    when the block ends without an exception; an exception raised in the block (e.g. a
    failed checksum) leaves `path` as it was.

    `durable=False` skips the fsync: the replace is still atomic for every process (a
    kill -9 leaves the old file or the new one), only a power cut may lose the last
    write. For small files rewritten very often (a budget ledger)."""
    target = Path(path)
    if target.exists() and not target.is_file() and not target.is_dir():
        # A device or a pipe (/dev/null): replacing it by a file would break the system.
        raise OSError(errno.EPERM, "not a regular file; refusing to replace it", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        # mkstemp makes the file private (0600); what semgrad writes is meant to be shared.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str, *, durable: bool = True) -> None:
    with atomic_open(path, durable=durable) as f:
        f.write(text)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, durable: bool = True) -> None:
    """`obj` as indented JSON (UTF-8, non-ASCII kept) with a final newline."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n", durable=durable)


def remove_temporary_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files `atomic_open` leaves in `directory` when a process is
    killed between creating one and renaming it (``.<name>.<random>.tmp``); returns them.
    Call it only where no other process is writing (a run directory being resumed)."""
    removed: list[Path] = []
    root = Path(directory)
    if not root.is_dir():
        return removed
    for path in sorted(root.glob(".*.tmp")):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
