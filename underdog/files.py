"""Writing outputs safely: output paths checked before any work, atomic writes, strict JSON.

``check_output_dir`` / ``check_output_file`` refuse, before anything is computed, a path that is a file, under
a file, unwritable or on a full disk (``OutputError``: one line, exit 2). ``atomic_write`` writes through a temp
file in the same folder renamed over the target, with the user's umask (``tempfile`` makes 0600); a full disk
or an unwritable path is an ``OutputError`` and leaves no file. ``atomic_write_json`` writes strict JSON: NaN
and Infinity become null (``strict_json`` lists where). Run directories (``underdog.runs``) build on these.
"""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from underdog import UnderdogError

_MIN_FREE_BYTES = 1 << 20
# errors of writing an output that the user can fix: one line, exit 2
_USER_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR,
                errno.EEXIST, errno.ENAMETOOLONG}


class OutputError(UnderdogError):
    """An output path cannot be written: it is a file, under a file, not writable, or its disk is full."""


def user_umask() -> int:
    """The process umask, read without changing it where the OS allows (Linux), else set and restored."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _free_bytes(path: Path) -> int | None:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return None


def _nearest_existing(path: Path) -> Path:
    """``path`` or its closest ancestor that exists (a dangling symlink counts as existing)."""
    p = path
    while not (p.exists() or p.is_symlink()):
        if p.parent == p:
            break
        p = p.parent
    return p


def _check_writable(folder: Path, problem: str) -> None:
    """``folder`` takes new files and has free space; else ``OutputError`` (``problem`` opens the message)."""
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{problem}: folder {folder} is not writable")
    free = _free_bytes(folder)
    if free is not None and free < _MIN_FREE_BYTES:
        raise OutputError(f"{problem}: no space left on the disk of {folder}")


def _check_parent(target: Path, what: str) -> None:
    ancestor = _nearest_existing(target.parent)
    if ancestor.is_symlink() and not ancestor.exists():
        raise OutputError(f"cannot create {what} {target}: {ancestor} is a broken symbolic link")
    if not ancestor.is_dir():
        raise OutputError(f"cannot create {what} {target}: {ancestor} is a file, not a folder")
    _check_writable(ancestor, f"cannot create {what} {target}")


def check_output_dir(path: str | os.PathLike) -> Path:
    """Check, before any work, that ``path`` can be a run directory: it is an existing writable folder, or it
    can be created (its nearest existing ancestor is a writable folder); the disk has space. Raises
    ``OutputError`` naming the path and the problem; creates nothing. Returns the path."""
    if not str(path).strip():
        raise OutputError("the output folder is an empty path")
    p = Path(path).expanduser()
    if p.is_symlink() and not p.exists():
        raise OutputError(f"output folder {p} is a broken symbolic link")
    if not p.exists():
        _check_parent(p, "output folder")
    elif not p.is_dir():
        raise OutputError(f"output folder {p} exists and is a file; choose another path")
    else:
        _check_writable(p, "cannot write the output")
    return p


def check_output_file(path: str | os.PathLike) -> Path:
    """Like ``check_output_dir`` for an output file: not a folder, and its folder exists or can be created."""
    if not str(path).strip():
        raise OutputError("the output file is an empty path")
    p = Path(path).expanduser()
    if p.is_dir():
        raise OutputError(f"output file {p} is a folder; give a file name")
    if p.exists() and not os.access(p.parent, os.W_OK | os.X_OK):
        raise OutputError(f"output file {p}: folder {p.parent} is not writable")
    _check_parent(p, "output file")
    return p


def output_error(path: Path, err: OSError) -> OSError | OutputError:
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        return OutputError(f"cannot write {path}: no space left on the disk")
    if err.errno in _USER_ERRNOS:
        return OutputError(f"cannot write {path}: {err.strerror or err}")
    return err


def atomic_write(path: str | os.PathLike, chunks: Iterable[str]) -> None:
    """Write the text ``chunks`` to ``path`` as they come (memory: one chunk) into a temp file in the same folder,
    then rename it over ``path``; the file gets the user's umask. A full disk or an unwritable path raises
    ``OutputError`` and leaves no file behind."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise output_error(path, e) from None
    try:
        os.fchmod(fd, 0o666 & ~user_umask())  # mkstemp makes 0600
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise output_error(path, e) from None
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (``atomic_write``)."""
    atomic_write(path, (text,))


def strict_json(obj: Any, where: str = "", found: list[str] | None = None) -> tuple[Any, list[str]]:
    """``obj`` with every NaN/Infinity replaced by None (numpy values made plain Python), and the dotted
    paths of the values replaced."""
    found = [] if found is None else found
    if type(obj).__module__ == "numpy" and hasattr(obj, "tolist"):
        obj = obj.tolist()
    if isinstance(obj, float):
        if not math.isfinite(obj):
            found.append(where or "(root)")
            return None, found
        return obj, found
    if isinstance(obj, dict):
        return {k: strict_json(v, f"{where}.{k}" if where else str(k), found)[0] for k, v in obj.items()}, found
    if isinstance(obj, (list, tuple)):
        return [strict_json(v, f"{where}[{i}]", found)[0] for i, v in enumerate(obj)], found
    return obj, found


def atomic_write_json(path: str | os.PathLike, obj: Any, strict: bool = True) -> list[str]:
    """Write ``obj`` as JSON atomically. ``strict`` (the default) writes NaN/Infinity as null, so the file
    is valid JSON for every reader; returns the paths of the values so replaced."""
    found: list[str] = []
    if strict:
        obj, found = strict_json(obj)
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str, allow_nan=not strict) + "\n")
    return found
