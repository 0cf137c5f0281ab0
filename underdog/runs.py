"""Run directories: config, resumable stages, atomic writes, seeds, environment capture, results.json.

A study is a ``Run`` in ``runs/<name>/``. Each stage computes into a temporary folder and is renamed into
``stages/<stage>/`` only when finished, together with ``stage.json`` holding the hash of its inputs. Re-running
the study skips every stage whose inputs hash matches, so a run killed with ``kill -9`` resumes from its last
finished stage and gives identical results. A long computation inside a stage (a fine-tuning) can keep
checkpoints in ``stage_checkpoint_dir()``, a folder stable across re-runs of the same stage with the same
inputs, deleted when the stage finishes: a killed training resumes from its last checkpoint, not step 0.
Independent stages can run side by side in worker processes (``Run.stages_in_lanes``: on a CPU two small
trainings with one thread each outrun one with two threads).

A run directory is locked (``fcntl.flock`` on ``<dir>/.lock``) while a ``Run`` on it is alive: a second process
gets ``RunLockedError``; the kernel drops the lock when the process exits or crashes. The run folder is
checked before any work and every file written atomically with the user's umask (``underdog.files``);
``results.json`` is strict JSON: NaN and Infinity are written as null and listed under ``non_finite``. ``results.json`` has one schema for every method (see
DESIGN.md).
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import hashlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import yaml

from underdog import UnderdogError
from underdog.files import (
    atomic_write_json,
    atomic_write_text,
    check_output_dir,
    output_error,
    strict_json,
    user_umask,
)

try:
    import fcntl
except ImportError:  # Windows: runs are not locked
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"


class RunLockedError(UnderdogError):
    """Another process is using the run directory."""


def hash_inputs(inputs: Any) -> str:
    """A stable short hash of JSON-able stage inputs."""
    blob = json.dumps(inputs, sort_keys=True, default=str, ensure_ascii=False).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_commit() -> str | None:
    try:
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        commit = out.stdout.strip()
        return commit if len(commit) == 40 else None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict:
    """Versions, device and git commit, for results.json."""
    import torch
    import transformers

    import underdog

    versions = {"underdog": underdog.__version__, "python": platform.python_version(), "torch": torch.__version__,
                "transformers": transformers.__version__}
    for pkg in ("peft", "accelerate", "tokenizers"):
        try:
            versions[pkg] = __import__(pkg).__version__
        except ImportError:
            pass
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
    else:
        device = f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, " \
                 f"{torch.get_num_threads()} threads)"
    return {"versions": versions, "device": device, "git": git_commit(), "platform": platform.platform()}


def metric(value: float, ci95: list[float] | tuple[float, float] | None = None, **extra: Any) -> dict:
    """One entry of ``results["metrics"]``."""
    entry = {"value": float(value), "ci95": [float(ci95[0]), float(ci95[1])] if ci95 is not None else None}
    entry.update(extra)
    return entry


class _Lock:
    """An exclusive ``flock`` on ``<run dir>/.lock``, shared by every ``Run`` of this process on that folder."""

    def __init__(self, path: Path) -> None:
        self.path, self.fd, self.users = path, None, 0
        if fcntl is None:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                holder = ""
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"process {holder}" if holder.isdigit() else "another process"
                raise RunLockedError(f"run folder {path.parent} is in use by {who}; wait for it to finish or "
                                     "choose another output folder") from None
            raise output_error(path, e) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the last descriptor drops the flock
            self.fd = None


_LOCKS: dict[str, _Lock] = {}
_CREATED: list[Path] = []  # run folders this process created, for discard_unfinished_runs


def discard_unfinished_runs() -> list[Path]:
    """Remove the run folders this process created that hold no finished stage, no checkpoints and no
    results.json (only ``config.yaml``, the lock, temp folders of a stage that failed): called by the CLI when
    a command stops on a user error, so that a bad input leaves nothing behind. Returns the folders removed."""
    removed = []
    for folder in reversed(_CREATED):
        finished = (any((folder / "stages").glob("*/stage.json")) or (folder / "results.json").exists()
                    or (folder / "checkpoints").exists())  # a training's checkpoints are worth resuming
        if folder.is_dir() and not finished:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    _CREATED.clear()
    return removed


def _acquire(run_dir: Path) -> str:
    key = str(run_dir.resolve())
    lock = _LOCKS.get(key)
    if lock is None or lock.fd is None and fcntl is not None:
        lock = _LOCKS[key] = _Lock(run_dir / LOCK_FILE)
    lock.users += 1
    return key


def _release(key: str) -> None:
    lock = _LOCKS.get(key)
    if lock is None:
        return
    lock.users -= 1
    if lock.users <= 0:
        lock.release()
        _LOCKS.pop(key, None)


# the running stage's checkpoint root and how many checkpoint folders it has handed out
_STAGE_CHECKPOINTS: contextvars.ContextVar[list | None] = contextvars.ContextVar("underdog_stage_checkpoints",
                                                                                default=None)


def stage_checkpoint_dir() -> Path | None:
    """A checkpoint folder for the next long computation of the running stage (``part-0``, ``part-1``, ... in
    call order), stable across re-runs of the stage with the same inputs, so that a killed stage resumes from
    it; None outside a stage. The stage deletes its checkpoints when it finishes."""
    current = _STAGE_CHECKPOINTS.get()
    if current is None:
        return None
    root, count = current
    current[1] = count + 1
    return root / f"part-{count}"


class Run:
    """A run directory with resumable stages; locked against other processes while this object lives
    (``close()`` or the end of the process releases it; ``lock=False`` for a worker of the lock holder)."""

    def __init__(self, out_dir: str | os.PathLike, config: dict | None = None, log: Callable[[str], None] = print,
                 lock: bool = True):
        self.dir = check_output_dir(out_dir)
        try:
            if not self.dir.exists():
                self.dir.mkdir(parents=True)
                _CREATED.append(self.dir)
        except FileExistsError:
            pass  # created meanwhile by another process: the lock decides who runs
        except OSError as e:
            raise output_error(self.dir, e) from None
        self.log = log
        self.config = config or {}
        self.timing: dict[str, float] = {}
        self.skipped: list[str] = []
        self._lock_key = _acquire(self.dir) if lock else None
        if self._lock_key is not None:
            self._finalizer = weakref.finalize(self, _release, self._lock_key)
        if config is not None:
            atomic_write_text(self.dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def close(self) -> None:
        """Release the run folder's lock (also done when the object is garbage-collected or the process ends)."""
        if self._lock_key is not None:
            self._finalizer()
            self._lock_key = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def stage_dir(self, name: str) -> Path:
        return self.dir / "stages" / name

    def checkpoint_root(self, name: str) -> Path:
        return self.dir / "checkpoints" / name

    def is_done(self, name: str, inputs: Any) -> bool:
        """A finished stage with these inputs exists: its ``stage.json`` has their key and its result loads."""
        final = self.stage_dir(name)
        try:
            if json.loads((final / "stage.json").read_text()).get("key") != hash_inputs(inputs):
                return False
            return "result" in json.loads((final / "result.json").read_text())
        except (OSError, ValueError, AttributeError):
            return False

    def stage(self, name: str, inputs: Any, fn: Callable[[Path], Any]) -> Any:
        """Run ``fn(tmp_dir) -> JSON-able result`` unless a finished stage with the same inputs exists.

        ``fn`` may write files into ``tmp_dir``; they land in ``stages/<name>/`` with the result, all at once.
        Returns the result (loaded from disk when the stage is skipped)."""
        final = self.stage_dir(name)
        if self.is_done(name, inputs):
            self.skipped.append(name)
            self.log(f"stage {name}: finished earlier, skipped")
            return json.loads((final / "result.json").read_text())["result"]
        final.parent.mkdir(parents=True, exist_ok=True)
        for stale in final.parent.glob(f".{name}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{name}.tmp-"))
        os.chmod(tmp, 0o777 & ~user_umask())  # mkdtemp makes 0700
        checkpoints = self.checkpoint_root(name)
        key = hash_inputs(inputs)
        if checkpoints.is_dir():
            for stale in checkpoints.iterdir():  # checkpoints of this stage with other inputs
                if stale.name != key:
                    shutil.rmtree(stale, ignore_errors=True)
        token = _STAGE_CHECKPOINTS.set([checkpoints / key, 0])
        start = time.time()
        try:
            result = fn(tmp)
            elapsed = time.time() - start
            atomic_write_json(tmp / "result.json", {"result": result}, strict=False)
            atomic_write_json(tmp / "stage.json", {"key": key, "seconds": elapsed,
                                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        finally:
            _STAGE_CHECKPOINTS.reset(token)
        shutil.rmtree(checkpoints, ignore_errors=True)  # the stage is done: its checkpoints are not needed
        with contextlib.suppress(OSError):
            checkpoints.parent.rmdir()  # only when no other stage has checkpoints
        self.timing[name] = round(elapsed, 3)
        self.log(f"stage {name}: done in {elapsed:.1f}s")
        return result

    def stages_in_lanes(self, jobs: Sequence[tuple[str, Any, Callable[[Path], Any]]], lanes: int,
                        after: dict[str, Collection[str]] | None = None) -> dict[str, Any]:
        """Run stages ``(name, inputs, fn)``, ``lanes`` at a time, each in a worker process with 1/``lanes`` of
        this process's torch threads (``fn`` must be picklable: a module-level function or a
        ``functools.partial`` of one). A stage named in ``after`` waits until the stages listed for it are
        finished (its ``fn`` may read their folders); when a lane frees up, the first waiting stage of ``jobs``
        whose stages before it are done starts, so put the longest chain first. Finished stages are loaded, not
        rerun, as ``stage`` does; a worker's output (progress bars, logs) goes to ``stages/<name>.log``.
        Returns {name: result}, in the order of ``jobs``."""
        from tqdm.auto import tqdm

        after = after or {}
        names = [name for name, _, _ in jobs]
        unknown = sorted(set(after).union(*after.values()) - set(names))
        if unknown:
            raise ValueError(f"stages_in_lanes: 'after' names stages that are not jobs: {', '.join(unknown)}")
        results, todo = {}, []
        for name, inputs, fn in jobs:
            if self.is_done(name, inputs):
                results[name] = self.stage(name, inputs, fn)
            else:
                todo.append((name, inputs, fn))

        def next_ready(busy: bool):
            """The first waiting job whose stages before it are done (taken off ``todo``); None if there is none
            yet, an error if none can ever be (nothing is ``busy`` that could finish them)."""
            job = next((j for j in todo if set(after.get(j[0], ())) <= results.keys()), None)
            if job is None and todo and not busy:
                raise ValueError(f"stages_in_lanes: stages wait on each other: {', '.join(j[0] for j in todo)}")
            if job is not None:
                todo.remove(job)
            return job

        if lanes <= 1 or not todo:
            while todo:
                job = next_ready(busy=False)
                results[job[0]] = self.stage(*job)
            return {name: results[name] for name in names}
        import torch

        threads = max(1, torch.get_num_threads() // lanes)
        self.log(f"stages {', '.join(n for n, _, _ in todo)}: {lanes} at a time, {threads} thread(s) each; "
                 f"progress in {self.dir / 'stages'}/<stage>.log")
        running: dict[Future, str] = {}
        with ProcessPoolExecutor(lanes, mp_context=multiprocessing.get_context("spawn")) as pool, \
                tqdm(total=len(todo), desc=f"stages ({lanes} lanes)") as bar:
            try:
                while todo or running:
                    while len(running) < lanes and (job := next_ready(busy=bool(running))) is not None:
                        name, inputs, fn = job
                        running[pool.submit(_stage_in_lane, str(self.dir), name, inputs, fn, threads,
                                            os.getpid())] = name
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        name = running.pop(future)
                        results[name] = future.result()
                        seconds = json.loads((self.stage_dir(name) / "stage.json").read_text())["seconds"]
                        self.timing[name] = round(seconds, 3)
                        self.log(f"stage {name}: done in {seconds:.1f}s")
                        bar.update()
            except BaseException:  # Ctrl-C or a failed stage: stop the other workers now, not when they finish
                _terminate_workers(pool)
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return {name: results[name] for name in names}

    def write_results(self, method: str, model: str, task: str, metrics: dict, per_split: Any = None,
                      extra: dict | None = None) -> dict:
        results = {"method": method, "model": model, "task": task, "config": self.config, "metrics": metrics,
                   "per_split": per_split, "env": environment(),
                   "timing": {"stages_seconds": self.timing, "skipped_stages": self.skipped}}
        if extra:
            results.update(extra)
        _, found = strict_json(results)
        if found:
            results["non_finite"] = {"paths": found, "note": "NaN or Infinity, written as null (strict JSON)"}
            self.log(f"results.json: {len(found)} value(s) not finite, written as null: {', '.join(found[:5])}")
        atomic_write_json(self.dir / "results.json", results)
        return results


def _terminate_workers(pool: ProcessPoolExecutor) -> None:
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        process.terminate()


def _exit_when_orphaned(parent: int, every: float = 1.0) -> None:
    """A worker's watchdog: a parent killed with ``kill -9`` cannot stop its workers, so each worker ends itself
    once it is re-parented (its unfinished stage stays unfinished, and resumes on the next run)."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            os._exit(1)


def _stage_in_lane(out_dir: str, name: str, inputs: Any, fn: Callable[[Path], Any], threads: int,
                   parent: int) -> Any:
    """One stage in a worker process of ``Run.stages_in_lanes`` (started by process ``parent``): torch on
    ``threads`` threads, output to a log."""
    import torch

    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    torch.set_num_threads(threads)
    log_path = Path(out_dir) / "stages" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        return Run(out_dir, log=lambda message: print(message, flush=True), lock=False).stage(name, inputs, fn)


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort; not every OS can open a folder)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

