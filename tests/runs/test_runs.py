"""Runs: stages are cached by input hash, written atomically, and a run killed with kill -9 resumes."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from underdog.runs import Run

SCRIPT = Path(__file__).resolve().parent.parent / "two_stage_run.py"


def test_stage_skips_when_inputs_match_and_reruns_when_they_change(tmp_path):
    calls = []
    run = Run(tmp_path / "r", {"a": 1}, log=lambda m: None)
    assert run.stage("s", {"x": 1}, lambda d: calls.append(1) or {"v": 1}) == {"v": 1}
    again = Run(tmp_path / "r", {"a": 1}, log=lambda m: None)
    assert again.stage("s", {"x": 1}, lambda d: calls.append(1) or {"v": 2}) == {"v": 1}
    assert again.skipped == ["s"]
    assert again.stage("s", {"x": 2}, lambda d: calls.append(1) or {"v": 3}) == {"v": 3}
    assert len(calls) == 2


def test_failed_stage_leaves_nothing(tmp_path):
    run = Run(tmp_path / "r", {}, log=lambda m: None)

    def boom(d):
        (d / "partial.txt").write_text("half")
        raise RuntimeError("boom")

    try:
        run.stage("s", {}, boom)
    except RuntimeError:
        pass
    assert not run.stage_dir("s").exists()
    assert not list((tmp_path / "r" / "stages").glob(".s.tmp-*"))


def _run(model_dir, out, slow):
    return subprocess.Popen([sys.executable, str(SCRIPT), str(model_dir), str(out), str(slow)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_kill_9_resumes_without_recomputing(llama_dir, tmp_path):
    reference = tmp_path / "reference"
    assert _run(llama_dir, reference, 0).wait(timeout=120) == 0

    out = tmp_path / "killed"
    proc = _run(llama_dir, out, 30)
    deadline = time.time() + 120
    while not (out / "stage2.started").exists():
        assert time.time() < deadline and proc.poll() is None, "stage 2 never started"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / "stages" / "score" / "stage.json").exists()
    assert not (out / "stages" / "summarise").exists()
    assert not (out / "results.json").exists()

    assert _run(llama_dir, out, 0).wait(timeout=120) == 0
    assert (out / "computed.log").read_text().split() == ["stage1", "stage2", "stage2"]
    ours = json.loads((out / "results.json").read_text())
    ref = json.loads((reference / "results.json").read_text())
    assert ours["metrics"] == ref["metrics"]
    assert ours["timing"]["skipped_stages"] == ["score"]


def _lane_stage(value: int, tmp: Path) -> dict:
    """A stage for the lanes test: writes a file, reports where and with how many threads it ran."""
    import torch

    (tmp / "marker.txt").write_text(str(value))
    print(f"computing {value}")
    return {"value": value, "pid": os.getpid(), "threads": torch.get_num_threads()}


def test_stages_in_lanes_run_in_workers_with_a_share_of_the_threads_and_resume(tmp_path):
    import functools

    import torch

    run = Run(tmp_path / "lanes", {"x": 1})
    jobs = [(name, {"v": v}, functools.partial(_lane_stage, v)) for name, v in (("a", 1), ("b", 2), ("c", 3))]
    results = run.stages_in_lanes(jobs, lanes=2)
    assert list(results) == ["a", "b", "c"]
    assert [r["value"] for r in results.values()] == [1, 2, 3]
    assert all(r["pid"] != os.getpid() for r in results.values())
    assert {r["threads"] for r in results.values()} == {max(1, torch.get_num_threads() // 2)}
    for name, v in (("a", 1), ("b", 2), ("c", 3)):
        assert (run.stage_dir(name) / "marker.txt").read_text() == str(v)
        assert f"computing {v}" in (run.dir / "stages" / f"{name}.log").read_text()
    again = Run(tmp_path / "lanes", {"x": 1})
    assert again.stages_in_lanes(jobs, lanes=2) == results  # finished stages are loaded, not recomputed
    assert again.skipped == ["a", "b", "c"]


def _after_stage(value: int, wait_for: str | None, run_dir: str, tmp: Path) -> dict:
    """A stage that records whether the stage it waits on had finished (its stage.json written) when it began."""
    ready = wait_for is None or (Path(run_dir) / "stages" / wait_for / "stage.json").is_file()
    time.sleep(0.3 if wait_for is None and value == 1 else 0)
    return {"value": value, "ready": ready, "start": time.time()}


def test_a_stage_after_others_starts_only_when_they_are_done(tmp_path):
    import functools

    for lanes in (1, 2):
        run = Run(tmp_path / f"after{lanes}", {"x": lanes})
        d = str(run.dir)
        # c is listed first but waits for a (the slow one); b needs nothing and takes the free lane
        jobs = [("c", {"v": 3}, functools.partial(_after_stage, 3, "a", d)),
                ("a", {"v": 1}, functools.partial(_after_stage, 1, None, d)),
                ("b", {"v": 2}, functools.partial(_after_stage, 2, None, d))]
        results = run.stages_in_lanes(jobs, lanes=lanes, after={"c": ["a"]})
        assert list(results) == ["c", "a", "b"]
        assert results["c"]["ready"] and results["c"]["start"] >= results["a"]["start"]
    with pytest.raises(ValueError, match="not jobs: z"):
        Run(tmp_path / "bad", {"x": 0}).stages_in_lanes(jobs, lanes=2, after={"c": ["z"]})
    with pytest.raises(ValueError, match="wait on each other"):
        Run(tmp_path / "cycle", {"x": 0}).stages_in_lanes(jobs[:2], lanes=2, after={"c": ["a"], "a": ["c"]})


LANES_RUN = Path(__file__).with_name("lanes_run.py")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has finished; only its parent's bookkeeping is left


def _wait_for(predicate, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return predicate()


def _worker_pids(out: Path) -> list[int]:
    assert _wait_for(lambda: (out / "a.pid").exists() and (out / "b.pid").exists(), 60), "workers never started"
    return [int((out / f"{n}.pid").read_text()) for n in ("a", "b")]


def test_a_failed_lane_stops_the_other_worker_at_once(tmp_path):
    start = time.monotonic()
    proc = subprocess.run([sys.executable, str(LANES_RUN), str(tmp_path), "fail"], capture_output=True, text=True,
                          timeout=100)
    assert proc.returncode != 0 and "stage b failed" in proc.stderr
    assert time.monotonic() - start < 60  # the sleeping stage a (120 s) was not waited for
    assert not any(_alive(pid) for pid in _worker_pids(tmp_path))
    assert not (tmp_path / "run" / "stages" / "a" / "stage.json").exists()


def test_workers_end_when_the_run_is_killed_9(tmp_path):
    proc = subprocess.Popen([sys.executable, str(LANES_RUN), str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        pids = _worker_pids(tmp_path)
        assert all(_alive(pid) for pid in pids)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert _wait_for(lambda: not any(_alive(pid) for pid in pids), 10), "workers outlived their run"
    finally:
        proc.kill()
