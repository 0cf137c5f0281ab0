"""The kill -9 campaign: a two-stage run (``crash_run.py``: score, then fine-tune with trainer checkpoints) is
killed with SIGKILL at eight points of its progress; each re-run must finish, recompute no finished stage,
resume the training from its last complete checkpoint, and give metrics identical to an uninterrupted run.

The runs are forked from one server process that has imported torch once (``crash_run.serve``), so a trial
costs the run's own seconds, not an interpreter start; each run is still its own process, killed for real.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("crash_run.py")
ROOT = Path(__file__).resolve().parents[2]

# point -> (stages finished before the kill, trainer step the re-run resumes from, None: trains from step 0)
POINTS = {
    "score-started": ([], None),
    "score-commit": ([], None),
    "train-started": (["score"], None),
    "train-ckpt-2": (["score"], 2),
    "train-half-ckpt-4": (["score"], 2),
    "train-ckpt-6": (["score"], 6),
    "train-done": (["score"], 8),
    "results": (["score", "train"], None),
}


class Server:
    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
        self.proc = subprocess.Popen([sys.executable, str(SCRIPT), "--server"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=env)

    def _ask(self, line: str) -> int:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return int(self.proc.stdout.readline())

    def start(self, model: Path, out: Path, point: str | None = None) -> int:
        return self._ask(f"run {model} {out} {point or ''}".strip())

    def wait(self, pid: int) -> int:
        return self._ask(f"wait {pid}")

    def run(self, model: Path, out: Path) -> int:
        return self.wait(self.start(model, out))

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture(scope="module")
def reference(server, llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("crash") / "reference"
    assert server.run(llama_dir, out) == 0, Path(f"{out}.log").read_text()[-3000:]
    return json.loads((out / "results.json").read_text())


def kill_at(server: Server, model: Path, out: Path, point: str) -> None:
    pid = server.start(model, out, point)
    reached, deadline = Path(f"{out}.reached"), time.time() + 300
    while not reached.exists():
        assert time.time() < deadline, f"never reached {point}: {Path(f'{out}.log').read_text()[-2000:]}"
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    assert server.wait(pid) == -signal.SIGKILL


@pytest.mark.parametrize("point", list(POINTS))
def test_killed_run_resumes_to_identical_metrics(point, server, llama_dir, reference, tmp_path):
    finished, resumed_step = POINTS[point]
    out = tmp_path / "run"
    kill_at(server, llama_dir, out, point)
    assert not (out / "results.json").exists()
    for stage in ("score", "train"):
        assert (out / "stages" / stage / "stage.json").exists() == (stage in finished), stage
    computed = Path(f"{out}.computed")
    before = computed.read_text().split()
    log = Path(f"{out}.log")
    log.rename(f"{out}.killed.log")

    assert server.run(llama_dir, out) == 0, log.read_text()[-3000:]
    recomputed = computed.read_text().split()[len(before):]
    assert recomputed == [s for s in ("score", "train") if s not in finished]
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"] == reference["metrics"]
    assert results["per_split"] == reference["per_split"]
    assert results["timing"]["skipped_stages"] == finished
    resumed = re.findall(r"resuming from \S+ \(step (\d+)\)", log.read_text())
    assert resumed == ([str(resumed_step)] if resumed_step is not None else [])
    assert not list((out / "stages").glob(".*.tmp-*")), "a killed stage's temp folder survived the re-run"
    assert not (out / "checkpoints").exists(), "checkpoints of a finished stage were kept"


def test_a_second_process_on_a_live_run_is_refused_and_a_crash_releases_the_lock(server, llama_dir, tmp_path):
    out = tmp_path / "run"
    pid = server.start(llama_dir, out, "train-started")
    reached, deadline = Path(f"{out}.reached"), time.time() + 300
    while not reached.exists():
        assert time.time() < deadline
        time.sleep(0.02)
    second = tmp_path / "second.log"
    Path(f"{out}.log").rename(tmp_path / "first.log")
    assert server.run(llama_dir, out) == 1
    Path(f"{out}.log").rename(second)
    assert re.search(rf"RunLockedError: run folder \S+ is in use by process {pid}", second.read_text())
    assert Path(f"{out}.computed").read_text().split() == ["score", "train"]  # the second computed nothing
    os.kill(pid, signal.SIGKILL)
    assert server.wait(pid) == -signal.SIGKILL
    assert server.run(llama_dir, out) == 0  # the kernel dropped the dead process's lock
