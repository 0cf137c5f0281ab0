"""JSONL reading and writing with schema checks.

Every data file underdog reads is JSONL: one JSON object a line. ``read_jsonl`` validates each line against a
small schema (field name -> expected type(s)) and raises ``DataError`` naming the file, the line and the field,
so a user with a 100k-line file knows exactly where to look.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from underdog import UnderdogError


class DataError(UnderdogError):
    """A data file is malformed; the message names file, line and field."""


_TYPE_NAMES = {str: "string", int: "integer", float: "number", list: "list", dict: "object", bool: "boolean"}


def _type_name(types: type | tuple[type, ...]) -> str:
    if isinstance(types, tuple):
        return " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
    return _TYPE_NAMES.get(types, types.__name__)


def _matches(value: Any, types: type | tuple[type, ...]) -> bool:
    types = types if isinstance(types, tuple) else (types,)
    if isinstance(value, bool) and bool not in types:
        return False  # JSON true is not an integer answer
    if float in types and isinstance(value, int):
        return True
    return isinstance(value, types)


def read_jsonl(
    path: str | os.PathLike,
    required: Mapping[str, type | tuple[type, ...]] | None = None,
    optional: Mapping[str, type | tuple[type, ...]] | None = None,
) -> list[dict]:
    """Read a JSONL file; check each object has ``required`` fields (and ``optional`` ones, when present)
    with the given types. Blank lines are skipped. Raises ``DataError("file:line: ...")``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows: list[dict] = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            for field, types in (required or {}).items():
                if field not in obj:
                    raise DataError(f"{path}:{lineno}: missing field '{field}'")
                if not _matches(obj[field], types):
                    raise DataError(
                        f"{path}:{lineno}: field '{field}' should be {_type_name(types)}, "
                        f"got {type(obj[field]).__name__}"
                    )
            for field, types in (optional or {}).items():
                if field in obj and obj[field] is not None and not _matches(obj[field], types):
                    raise DataError(
                        f"{path}:{lineno}: field '{field}' should be {_type_name(types)}, "
                        f"got {type(obj[field]).__name__}"
                    )
            obj["_line"] = lineno
            rows.append(obj)
    return rows


def check(cond: bool, path: str | os.PathLike, row: Mapping, message: str) -> None:
    """Raise a ``DataError`` for a semantic problem in ``row`` (read by ``read_jsonl``), naming file and line."""
    if not cond:
        raise DataError(f"{path}:{row.get('_line', '?')}: {message}")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping]) -> None:
    """Write rows atomically (temp file in the same folder, then rename); ``_line`` keys are dropped."""
    from underdog.runs import atomic_write_text

    atomic_write_text(path, "".join(
        json.dumps({k: v for k, v in row.items() if k != "_line"}, ensure_ascii=False) + "\n" for row in rows))
