"""The one door for files a user hands over: graph and swarm specs, run configs, data files,
run directories, output paths.

Reading (or writing) one either works or raises the caller's `UserInputError` subclass with
one paragraph naming the file (shortened), what was wrong and how to fix it: never an
`OSError` (missing, a directory, a name too long, no permission), a `UnicodeDecodeError`, a
`RecursionError` from JSON or TOML nested deeper than Python reads, nor a `csv.Error`.
The CLI turns that error into exit 2.
"""

from __future__ import annotations

import json
import os
import tomllib
import types
import typing
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, NoReturn

from pydantic import BaseModel, ValidationError

from semgrad.errors import SemgradError
from semgrad.text import shorten

__all__ = [
    "check_output_file",
    "invalid_keys",
    "parse_json",
    "parse_toml",
    "read_user_text",
    "shown",
    "write_failed",
]

# How an error names a path the user gave (a 5,000-character path is shortened).
_PATH_CHARS = 300

ErrorFactory = Callable[[str], SemgradError]


def shown(path: str | os.PathLike[str]) -> str:
    """A path as an error message shows it: at most a few hundred characters."""
    return shorten(str(path), _PATH_CHARS)


def _fail(error: ErrorFactory, message: str) -> NoReturn:
    raise error(message)


def _os_problem(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def read_user_text(path: str | os.PathLike[str], *, what: str, error: ErrorFactory) -> str:
    """The text of the file `path` (UTF-8, a byte-order mark dropped); `what` says what the
    file should be (e.g. "a run config (.toml)"), `error` makes the exception to raise."""
    p = Path(path)
    try:
        if p.is_dir():
            _fail(error, f"{shown(p)} is a directory; pass the path of {what}.")
        raw = p.read_bytes()
    except FileNotFoundError:
        _fail(error, f"no such file: {shown(p)} does not exist; pass the path of {what}.")
    except OSError as exc:
        _fail(error, f"cannot read {shown(p)} ({_os_problem(exc)}); pass the path of {what}.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        _fail(
            error,
            f"{shown(p)} is not UTF-8 text (byte {exc.start}, line {line}: "
            f"{raw[exc.start : exc.start + 4]!r}); save {what} as UTF-8 and try again.",
        )


def parse_json(text: str, *, where: str, what: str, error: ErrorFactory) -> Any:
    """`text` (from `where`: a file, a line of one) as JSON."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _fail(
            error,
            f"{shorten(where, _PATH_CHARS)} is not valid JSON ({exc.msg} at line {exc.lineno}, "
            f"column {exc.colno}); it should be {what}.",
        )
    except RecursionError:
        _fail(
            error,
            f"{shorten(where, _PATH_CHARS)} nests JSON arrays or objects too deeply to read; "
            f"it should be {what}.",
        )


def parse_toml(text: str, *, where: str, what: str, error: ErrorFactory) -> dict[str, Any]:
    """`text` (from `where`) as TOML."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        _fail(error, f"{shorten(where, _PATH_CHARS)} is not valid TOML ({exc}); fix {what}.")
    except RecursionError:
        _fail(
            error,
            f"{shorten(where, _PATH_CHARS)} nests TOML arrays or tables too deeply to read; "
            f"fix {what}.",
        )


def check_output_file(path: str | os.PathLike[str], *, what: str, error: ErrorFactory) -> Path:
    """`path` if a file can be written there: not a directory nor a device, its folder not
    a file, its name not too long. (The write itself may still fail: see `write_failed`.)"""
    p = Path(path)
    try:
        if p.is_dir():
            _fail(error, f"{shown(p)} is a directory; pass a file path for {what}.")
        if p.exists() and not p.is_file():
            # A device or a pipe: an atomic write would replace it by a file (/dev/null!).
            _fail(
                error,
                f"{shown(p)} is not a regular file (a device or a pipe); pass a file path "
                f"for {what}.",
            )
        for parent in p.parents:
            if parent.exists():
                if not parent.is_dir():
                    _fail(
                        error,
                        f"{shown(parent)} is a file, so {shown(p)} cannot be created; pass a "
                        f"file path in a directory for {what}.",
                    )
                break
    except OSError as exc:
        _fail(error, f"cannot write {what} to {shown(p)} ({_os_problem(exc)}).")
    return p


def write_failed(path: str | os.PathLike[str], exc: OSError, *, what: str) -> str:
    """The message for a write of `what` to `path` that failed with `exc`."""
    return (
        f"cannot write {what} to {shown(path)} ({_os_problem(exc)}); pass a file path in a "
        f"writable directory."
    )


def invalid_keys(
    err: ValidationError, model: type[BaseModel], *, hidden: Collection[str] = ()
) -> list[tuple[str, str]]:
    """What pydantic found wrong in a user's file read as `model`: (dotted key, problem)
    pairs, the key "<top>" for the whole. An unknown key is named with the keys allowed
    where it stands (`hidden` ones, set by the program, left out), so a misspelt key is
    easy to fix."""
    found = []
    for e in err.errors():
        loc = e["loc"]
        key = ".".join(str(x) for x in loc) or "<top>"
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            allowed = _keys_at(model, loc[:-1])
            if allowed is not None:
                valid = ", ".join(k for k in allowed if k not in hidden) or "none"
                message = (
                    f"unknown key {shorten(repr(str(loc[-1])), 80)}; the keys here are {valid}"
                )
        elif e["type"].endswith("_type") and "input" in e:  # e.g. "3" where 3 was due
            message = f"{message}, got {shorten(repr(e['input']), 80)}"
        found.append((shorten(key, _PATH_CHARS), message))
    return found


def _keys_at(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str] | None:
    """The keys of the object at `loc` inside `model`'s data, or None if not an object."""
    kind: Any = model
    for part in loc:
        kind = _inside(kind, part)
        if kind is None:
            return None
    kind = _unwrapped(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return [f.alias or name for name, f in kind.model_fields.items()]
    return None


def _unwrapped(kind: Any) -> Any:
    """`kind` without Annotated and without None in an optional."""
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(kind) if a is not type(None)]
        if len(members) == 1:
            return _unwrapped(members[0])
    return kind


def _inside(kind: Any, part: int | str) -> Any:
    """The type of item `part` (a key, a list index, a union's tag) of a value of `kind`."""
    kind = _unwrapped(kind)
    origin = typing.get_origin(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel) and isinstance(part, str):
        for name, f in kind.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
        return None
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(kind)[0]
    if origin is dict and isinstance(part, str):
        return typing.get_args(kind)[1]
    if origin in (typing.Union, types.UnionType) and isinstance(part, str):
        for member in typing.get_args(kind):  # a tagged union: the member with that tag
            member = _unwrapped(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                tag = member.model_fields.get("type")
                if tag is not None and part in typing.get_args(tag.annotation):
                    return member
    return None
