"""Run directories: config, resumable stages, atomic writes, seeds, environment capture, results.json.

A study is a ``Run`` in ``runs/<name>/``. Each stage computes into a temporary folder and is renamed into
``stages/<stage>/`` only when finished, together with ``stage.json`` holding the hash of its inputs. Re-running
the study skips every stage whose inputs hash matches, so a run killed with ``kill -9`` resumes from its last
finished stage and gives identical results. Independent stages can run side by side in worker processes
(``Run.stages_in_lanes``: on a CPU two small trainings with one thread each outrun one with two threads).
``results.json`` has one schema for every method (see DESIGN.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import platform
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import yaml


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` via a temp file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")


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


class Run:
    """A run directory with resumable stages."""

    def __init__(self, out_dir: str | os.PathLike, config: dict | None = None, log: Callable[[str], None] = print):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = log
        self.config = config or {}
        self.timing: dict[str, float] = {}
        self.skipped: list[str] = []
        if config is not None:
            atomic_write_text(self.dir / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def stage_dir(self, name: str) -> Path:
        return self.dir / "stages" / name

    def is_done(self, name: str, inputs: Any) -> bool:
        meta = self.stage_dir(name) / "stage.json"
        if not meta.is_file():
            return False
        try:
            return json.loads(meta.read_text()).get("key") == hash_inputs(inputs)
        except json.JSONDecodeError:
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
        start = time.time()
        try:
            result = fn(tmp)
            elapsed = time.time() - start
            atomic_write_json(tmp / "result.json", {"result": result})
            atomic_write_json(tmp / "stage.json", {"key": hash_inputs(inputs), "seconds": elapsed,
                                                   "finished": time.strftime("%Y-%m-%dT%H:%M:%S")})
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.timing[name] = round(elapsed, 3)
        self.log(f"stage {name}: done in {elapsed:.1f}s")
        return result

    def stages_in_lanes(self, jobs: Sequence[tuple[str, Any, Callable[[Path], Any]]], lanes: int) -> dict[str, Any]:
        """Run independent stages ``(name, inputs, fn)``, ``lanes`` at a time, each in a worker process with
        1/``lanes`` of this process's torch threads (``fn`` must be picklable: a module-level function or a
        ``functools.partial`` of one). Jobs start in the order given, so put the longest first. Finished stages
        are loaded, not rerun, as ``stage`` does; a worker's output (progress bars, logs) goes to
        ``stages/<name>.log``. Returns {name: result}."""
        from tqdm.auto import tqdm

        results, todo = {}, []
        for name, inputs, fn in jobs:
            if lanes <= 1 or self.is_done(name, inputs):
                results[name] = self.stage(name, inputs, fn)
            else:
                todo.append((name, inputs, fn))
        if not todo:
            return results
        import torch

        threads = max(1, torch.get_num_threads() // lanes)
        self.log(f"stages {', '.join(n for n, _, _ in todo)}: {lanes} at a time, {threads} thread(s) each; "
                 f"progress in {self.dir / 'stages'}/<stage>.log")
        with ProcessPoolExecutor(lanes, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_stage_in_lane, str(self.dir), name, inputs, fn, threads): name
                       for name, inputs, fn in todo}
            try:
                for future in tqdm(as_completed(futures), total=len(futures), desc=f"stages ({lanes} lanes)"):
                    name = futures[future]
                    results[name] = future.result()
                    seconds = json.loads((self.stage_dir(name) / "stage.json").read_text())["seconds"]
                    self.timing[name] = round(seconds, 3)
                    self.log(f"stage {name}: done in {seconds:.1f}s")
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        return {name: results[name] for name, _, _ in jobs}

    def write_results(self, method: str, model: str, task: str, metrics: dict, per_split: Any = None,
                      extra: dict | None = None) -> dict:
        results = {"method": method, "model": model, "task": task, "config": self.config, "metrics": metrics,
                   "per_split": per_split, "env": environment(),
                   "timing": {"stages_seconds": self.timing, "skipped_stages": self.skipped}}
        if extra:
            results.update(extra)
        atomic_write_json(self.dir / "results.json", results)
        return results


def _stage_in_lane(out_dir: str, name: str, inputs: Any, fn: Callable[[Path], Any], threads: int) -> Any:
    """One stage in a worker process of ``Run.stages_in_lanes``: torch on ``threads`` threads, output to a log."""
    import torch

    torch.set_num_threads(threads)
    log_path = Path(out_dir) / "stages" / f"{name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as f, contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
        return Run(out_dir, log=lambda message: print(message, flush=True)).stage(name, inputs, fn)
