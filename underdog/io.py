"""JSONL reading and writing with schema checks, read as a stream with bounded memory.

Every data file underdog reads is JSONL: one JSON object a line. ``iter_jsonl`` reads the file line by line in
binary and never holds more than one line: a line longer than ``max_line_bytes`` (default ``MAX_LINE_BYTES``,
1 MiB, about 250k tokens or a hundred 2048-token windows: nothing a small model reads needs more; the
``UNDERDOG_MAX_LINE_BYTES`` environment variable or the readers' ``max_line_bytes`` change it) is an error
naming the line, read without loading the rest of it. Each line must be UTF-8 (an error names the byte offset
of the first bad byte), hold no NUL byte (binary input), parse as strict JSON (no NaN/Infinity) and be an
object whose ``required`` and ``optional`` fields have the given types. Every problem raises ``DataError``
naming the file, the line and the field, so a user with a 100k-line file knows exactly where to look. An
empty file is an error too (``allow_empty``), as in lm-evaluation-harness, which refuses to run on an empty
task.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from underdog import UnderdogError
from underdog.files import atomic_write

MAX_LINE_BYTES = 1 << 20  # 1 MiB a line; see the module docstring
MAX_FIELD_CHARS = 8192  # a choice or reference answer: more than a 2048-token window of English text
_BOM = b"\xef\xbb\xbf"


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


def line_limit(max_line_bytes: int | None = None) -> int:
    """The line limit in force: the argument, else ``UNDERDOG_MAX_LINE_BYTES``, else ``MAX_LINE_BYTES``."""
    if max_line_bytes is not None:
        return int(max_line_bytes)
    raw = os.environ.get("UNDERDOG_MAX_LINE_BYTES", "")
    try:
        return int(raw) if raw else MAX_LINE_BYTES
    except ValueError:
        raise DataError(f"UNDERDOG_MAX_LINE_BYTES={raw!r} is not a number of bytes") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def open_data(path: str | os.PathLike, what: str = "data file"):
    """Open ``path`` for binary reading, or raise ``DataError`` saying why it cannot be read."""
    path = Path(path)
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path}: a broken or looping symbolic link")
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, not a {what}")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file (a device or pipe?); give a {what}")
    try:
        return path.open("rb")
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def decode_line(raw: bytes, path: Path, lineno: int, offset: int) -> str:
    """``raw`` (one line, starting at byte ``offset`` of the file) as text, or a ``DataError`` for binary or
    non-UTF-8 bytes naming the line and the byte offset."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise DataError(f"{path}:{lineno}: UTF-16 text (a byte-order mark at byte offset {offset}); "
                        "save the file as UTF-8")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise DataError(f"{path}:{lineno}: binary data (a NUL byte at byte offset {offset + nul}); "
                        "expected UTF-8 JSON text")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset "
                        f"{offset + e.start}); save the file as UTF-8") from None


def parse_json(text: str, where: str) -> Any:
    """Strict JSON (no NaN/Infinity) or a one-line ``DataError`` starting with ``where``."""
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
    except RecursionError:
        raise DataError(f"{where}: invalid JSON (nested too deeply)") from None
    except ValueError as e:  # NaN/Infinity, or an integer with too many digits
        raise DataError(f"{where}: invalid JSON ({str(e).splitlines()[0]})") from None


def iter_lines(path: str | os.PathLike, max_line_bytes: int | None = None) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every non-blank line, read as a stream (see the module docstring)."""
    path = Path(path)
    limit = line_limit(max_line_bytes)
    with open_data(path) as f:
        lineno, offset = 0, 0
        while True:
            try:
                raw = f.readline(limit + 1)
            except OSError as e:
                raise DataError(f"{path}:{lineno + 1}: cannot read ({e.strerror or e})") from None
            if not raw:
                return
            lineno += 1
            if len(raw) > limit and not raw.endswith(b"\n"):
                raise DataError(f"{path}:{lineno}: line longer than {limit} bytes (the limit; set "
                                "UNDERDOG_MAX_LINE_BYTES to raise it)")
            start = offset
            offset += len(raw)
            if lineno == 1 and raw.startswith(_BOM):
                raw, start = raw[len(_BOM):], start + len(_BOM)
            text = decode_line(raw, path, lineno, start)
            if text.strip():
                yield lineno, text


def iter_jsonl(
    path: str | os.PathLike,
    required: Mapping[str, type | tuple[type, ...]] | None = None,
    optional: Mapping[str, type | tuple[type, ...]] | None = None,
    *,
    max_line_bytes: int | None = None,
    allow_empty: bool = False,
) -> Iterator[dict]:
    """Stream a JSONL file's objects (each with its line number under ``_line``), checking that each has the
    ``required`` fields (and ``optional`` ones, when present and not null) with the given types. Blank lines
    are skipped. Raises ``DataError("file:line: ...")``."""
    path = Path(path)
    n = 0
    for lineno, text in iter_lines(path, max_line_bytes):
        obj = parse_json(text, f"{path}:{lineno}")
        if not isinstance(obj, dict):
            raise DataError(f"{path}:{lineno}: expected a JSON object, got {_JSON_NAMES.get(type(obj), 'value')}")
        for field, types in (required or {}).items():
            if field not in obj:
                raise DataError(f"{path}:{lineno}: missing field '{field}'")
            if not _matches(obj[field], types):
                raise DataError(f"{path}:{lineno}: field '{field}' should be {_type_name(types)}, "
                                f"got {type(obj[field]).__name__}")
        for field, types in (optional or {}).items():
            if field in obj and obj[field] is not None and not _matches(obj[field], types):
                raise DataError(f"{path}:{lineno}: field '{field}' should be {_type_name(types)}, "
                                f"got {type(obj[field]).__name__}")
        obj["_line"] = lineno
        n += 1
        yield obj
    if not n and not allow_empty:
        raise DataError(f"{path}: no data (the file is empty or holds only blank lines)")


_JSON_NAMES = {list: "list", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_jsonl(
    path: str | os.PathLike,
    required: Mapping[str, type | tuple[type, ...]] | None = None,
    optional: Mapping[str, type | tuple[type, ...]] | None = None,
    *,
    max_line_bytes: int | None = None,
    allow_empty: bool = False,
) -> list[dict]:
    """``iter_jsonl`` as a list."""
    return list(iter_jsonl(path, required, optional, max_line_bytes=max_line_bytes, allow_empty=allow_empty))


def check(cond: bool, path: str | os.PathLike, row: Mapping, message: str) -> None:
    """Raise a ``DataError`` for a semantic problem in ``row`` (read by ``read_jsonl``), naming file and line."""
    if not cond:
        raise DataError(f"{path}:{row.get('_line', '?')}: {message}")


def check_unique_ids(rows: Iterable[Mapping], path: str | os.PathLike, key: str = "id") -> None:
    """A ``DataError`` naming both lines of the first id that appears twice."""
    seen: dict[str, Any] = {}
    for row in rows:
        value = str(row[key])
        if value in seen:
            raise DataError(f"{path}:{row.get('_line', '?')}: field '{key}': duplicate id {value!r} "
                            f"(first on line {seen[value]})")
        seen[value] = row.get("_line", "?")


def write_jsonl(path: str | os.PathLike, rows: Iterable[Mapping]) -> None:
    """Write rows atomically (temp file in the same folder, then rename), one at a time; ``_line`` keys are
    dropped."""

    atomic_write(path, (json.dumps({k: v for k, v in row.items() if k != "_line"}, ensure_ascii=False) + "\n"
                        for row in rows))
