"""Every malformed input of the corpus: exit code 2, one line on stderr, no traceback, nothing written.

The cases run in this process through ``underdog.cli.main`` (an exception escaping it is what a user would see
as a traceback), each in a fresh folder whose every file and folder is compared before and after the run.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.reliability.corpus import CASES, PENDING, Ctx


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under ``root`` with its kind, size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def run_case(case, root: Path, model: str, capsys) -> dict:
    from underdog.cli import main

    ctx = Ctx(root, str(model))
    argv = case.build(ctx)
    before = snapshot(root)
    capsys.readouterr()
    error = None
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = e.code
    except BaseException as e:  # noqa: BLE001 - a user would see this as a traceback
        rc, error = None, f"{type(e).__name__}: {e}"
    captured = capsys.readouterr()
    after = snapshot(root)
    return {"rc": rc, "stderr": captured.err, "error": error, "written": sorted(set(after) ^ set(before)) +
            sorted(k for k in before if k in after and before[k] != after[k])}


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=pytest.mark.xfail(strict=True, reason=f"CLI wiring pending: {PENDING[c.id]}"))
    if c.id in PENDING else pytest.param(c, id=c.id) for c in CASES])
def test_malformed_input_is_one_clean_line(case, tmp_path, llama_dir, capsys):
    root = tmp_path / "case"
    root.mkdir()
    try:
        result = run_case(case, root, llama_dir, capsys)
    finally:
        for p in root.rglob("*"):  # give back a read-only folder so that pytest can clean up
            if p.is_dir() and not p.is_symlink():
                p.chmod(0o755)
    assert result["error"] is None, f"traceback: {result['error']}"
    lines = result["stderr"].strip().splitlines()
    assert result["rc"] == 2, f"exit {result['rc']}, stderr {result['stderr'][-500:]!r}"
    assert len(lines) == 1, f"stderr has {len(lines)} lines: {result['stderr'][-800:]!r}"
    assert "Traceback" not in result["stderr"]
    assert not result["written"], f"written: {result['written'][:5]}"


def test_the_corpus_is_large_and_covers_every_entry_point():
    commands = {c.id.split("-")[0] for c in CASES}
    assert len(CASES) >= 60
    assert {"score", "world", "convert", "aspire", "general", "explain", "run", "pretrain", "probe",
            "compare"} <= commands
    assert len({c.id for c in CASES}) == len(CASES)


def test_an_output_folder_in_use_by_another_process_is_refused(tmp_path, llama_dir, capsys):
    import subprocess
    import sys

    from tests.reliability.corpus import GOOD_CHOICE, Case

    root = tmp_path / "case"
    (root / "out").mkdir(parents=True)
    (root / "out" / ".lock").write_text("")
    holder = subprocess.Popen([sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR); "
                               "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(120)",
                               str(root / "out" / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        case = Case("score-out-in-use", lambda c: ["score", "--model", c.model, "--data",
                                                   c.write("data.jsonl", [GOOD_CHOICE]), "--out", c.out])
        result = run_case(case, root, llama_dir, capsys)
    finally:
        holder.kill()
        holder.wait()
    assert result["error"] is None and result["rc"] == 2
    assert len(result["stderr"].strip().splitlines()) == 1 and "is in use by another process" in result["stderr"]
    assert not result["written"]


def test_real_processes_print_one_line_and_exit_2(tmp_path):
    """A few cases as the user runs them: a fresh ``underdog`` process each (started side by side)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    (tmp_path / "bad.jsonl").write_bytes(b'{"id": "a", "context": "caf\xe9", "choices": ["x", "y"], "answer": 0}\n')
    (tmp_path / "file").write_text("x")
    commands = [["score", "--data", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o1")],
                ["world", "--out", str(tmp_path / "file")],
                ["score", "--data", str(tmp_path / "bad.jsonl"), "--out", str(tmp_path / "o2"), "--device", "tpu"]]
    procs = [subprocess.Popen([sys.executable, "-m", "underdog.cli", *argv], cwd=root, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for argv in commands]
    for argv, proc in zip(commands, procs):
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 2, (argv, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.jsonl", "file"]
