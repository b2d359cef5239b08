"""Typed configuration: frozen dataclasses <-> JSON, rejecting unknown keys.

Each system keeps its own ``@dataclass(frozen=True, kw_only=True)`` config classes. This module
provides the shared plumbing: ``to_dict`` / ``from_dict`` (unknown keys raise a
:class:`~metashot.errors.UsageError` with a "did you mean" suggestion), and JSON file helpers.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from metashot.errors import UsageError

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """Return a JSON-ready dict of a (possibly nested) dataclass instance."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return _jsonable(dataclasses.asdict(config))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys raise UsageError naming the closest field.

    Nested dataclass fields are built recursively; lists are turned back into tuples where the
    field's type is a tuple.
    """
    if not isinstance(data, dict):
        raise UsageError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(key, list(fields), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(fields))}"
        raise UsageError(f"{cls.__name__}: unknown key {key!r}{hint}")
    hints = typing.get_type_hints(cls)
    kwargs = {k: _coerce(hints.get(k), v) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise UsageError(f"{cls.__name__}: {exc}") from None


def _coerce(hint: Any, value: Any) -> Any:
    if hint is None:
        return value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or len(args) != 1:
            return value
        return _coerce(args[0], value)
    if dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return from_dict(hint, value)  # type: ignore[arg-type]
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def save_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as pretty JSON atomically (temporary file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, raising UsageError with the file name if it is missing or malformed."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise UsageError(f"{path}: file not found") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def load_config(cls: type[T], path: str | os.PathLike[str]) -> T:
    """Read a JSON config file into dataclass ``cls``."""
    return from_dict(cls, load_json(path))
