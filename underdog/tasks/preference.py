"""Preference data: JSONL in TRL's explicit-prompt formats, read with one clear error per bad line.

A preference file holds one ``{"prompt", "chosen", "rejected"}`` object a line, either plain (three non-empty
strings: the completion texts follow the prompt text) or conversational (``prompt`` a list of ``{"role",
"content"}`` messages, ``chosen`` and ``rejected`` lists of assistant messages), as ``trl.DPOTrainer`` takes
them; one file is one format. ``read_preferences`` checks every line and raises ``DataError`` (an
``UnderdogError``: the CLI prints it and exits 2) naming ``file:line`` and the problem: bytes that are not
UTF-8 (with their byte offset in the file), bad JSON, a missing or empty field, a wrong type, a mix of formats.
``write_preferences`` writes pairs back (atomically) in the same format.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from underdog.io import DataError, write_jsonl

FIELDS = ("prompt", "chosen", "rejected")
ROLES = ("system", "user", "assistant")


def _messages(value: object, where: str, field: str) -> None:
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{field}' must be a non-empty list of messages in a conversational file")
    for k, m in enumerate(value):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str) or not isinstance(m.get("content"), str):
            raise DataError(f"{where}: {field}[{k}] must be an object with string 'role' and 'content'")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: {field}[{k}] has role {m['role']!r}; one of {', '.join(ROLES)}")
        if not m["content"].strip():
            raise DataError(f"{where}: {field}[{k}] has empty 'content'")


def check_pair(obj: object, where: str) -> str:
    """Check one decoded line; returns its format (``plain`` or ``conversational``) or raises ``DataError``."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    for field in FIELDS:
        if field not in obj:
            raise DataError(f"{where}: missing field '{field}' (a preference line needs {', '.join(FIELDS)})")
    if all(isinstance(obj[f], str) for f in FIELDS):
        for field in FIELDS:
            if not obj[field].strip():
                raise DataError(f"{where}: field '{field}' is empty")
        if obj["chosen"] == obj["rejected"]:
            raise DataError(f"{where}: 'chosen' and 'rejected' are the same text")
        return "plain"
    if all(isinstance(obj[f], list) for f in FIELDS):
        for field in FIELDS:
            _messages(obj[field], where, field)
        if obj["chosen"] == obj["rejected"]:
            raise DataError(f"{where}: 'chosen' and 'rejected' are the same messages")
        return "conversational"
    kinds = ", ".join(f"{f} {type(obj[f]).__name__}" for f in FIELDS)
    raise DataError(f"{where}: 'prompt', 'chosen', 'rejected' must be all strings (plain) or all message lists "
                    f"(conversational); got {kinds}")


def read_preferences(path: str | os.PathLike) -> list[dict]:
    """Read and check a preference JSONL file (blank lines skipped); rows keep only the three fields."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    rows: list[dict] = []
    fmt = None
    offset = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{where}: bytes that are not UTF-8 at byte offset {offset + e.start} "
                                f"(byte {raw[e.start]:#04x}); save the file as UTF-8") from None
            offset += len(raw)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{where}: invalid JSON ({e.msg} at column {e.colno})") from None
            kind = check_pair(obj, where)
            if fmt is not None and kind != fmt:
                raise DataError(f"{where}: a {kind} line in a file whose first line is {fmt}; use one format")
            fmt = kind
            rows.append({f: obj[f] for f in FIELDS})
    if not rows:
        raise DataError(f"{path}: no preference pairs (the file is empty)")
    return rows


def write_preferences(path: str | os.PathLike, pairs: Iterable[Mapping]) -> None:
    """Write pairs as preference JSONL (only the three fields)."""
    write_jsonl(path, ({f: p[f] for f in FIELDS} for p in pairs))
