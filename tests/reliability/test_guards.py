"""The guards behind the corpus, one by one: stream reading with bounded memory, long contexts cut and counted,
output-path checks, the run lock, strict results.json, the umask, a full disk, stage checkpoints, devices
and world sizes."""

from __future__ import annotations

import errno
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from underdog import UnderdogError
from underdog.files import OutputError, atomic_write_text, check_output_dir, check_output_file
from underdog.io import DataError, iter_jsonl, read_jsonl
from underdog.runs import Run, RunLockedError, stage_checkpoint_dir
from underdog.tasks.choice import ChoiceItem, check_choices_fit, evaluate_choices, read_choice_file

ROW = {"id": "a", "context": "the cat sat on the", "choices": ["mat", "tree"], "answer": 0}


def test_a_huge_line_is_refused_reading_only_the_limit(tmp_path):
    path = tmp_path / "big.jsonl"
    with path.open("wb") as f:
        f.write(b'{"id": "a", "context": "')
        f.write(b"word " * 4_000_000)  # 20 MB on one line
        f.write(b'", "choices": ["x", "y"], "answer": 0}\n')
    tracemalloc.start()
    with pytest.raises(DataError, match=r"big.jsonl:1: line longer than 1048576 bytes"):
        read_choice_file(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4 * 2**20, f"peak {peak} bytes while refusing a 20 MB line"


def test_the_line_limit_is_a_setting(tmp_path, monkeypatch):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({**ROW, "context": "x" * 5000}) + "\n")
    with pytest.raises(DataError, match="line longer than 1000 bytes"):
        read_choice_file(path, max_line_bytes=1000)
    monkeypatch.setenv("UNDERDOG_MAX_LINE_BYTES", "1000")
    with pytest.raises(DataError, match="line longer than 1000 bytes"):
        read_choice_file(path)
    monkeypatch.setenv("UNDERDOG_MAX_LINE_BYTES", "10000")
    assert len(read_choice_file(path)) == 1


def test_rows_stream_one_at_a_time_and_errors_name_the_byte_offset(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\n{"a": "\xc3\x28"}\n')
    rows = iter_jsonl(path)
    assert next(rows) == {"a": 1, "_line": 1}
    assert next(rows) == {"a": 2, "_line": 3}
    with pytest.raises(DataError, match=r"d.jsonl:4: not UTF-8 text \(byte 0xc3 at byte offset 26\)"):
        next(rows)
    (tmp_path / "bom.jsonl").write_bytes(b'\xef\xbb\xbf{"a": 1}\n')
    assert read_jsonl(tmp_path / "bom.jsonl") == [{"a": 1, "_line": 1}]
    (tmp_path / "empty.jsonl").write_text("")
    assert read_jsonl(tmp_path / "empty.jsonl", allow_empty=True) == []


def test_a_long_context_is_cut_to_the_window_and_counted(tiny_lm, tmp_path):
    tail = " the cat sat on the mat" * 60  # well over the 256-token window by itself
    huge = "the dog ran far. " * 300_000 + tail  # 5 MB
    items = [ChoiceItem("long", huge, ["mat", "tree"], 0, {}), ChoiceItem("short", "a big", ["dog", "cat"], 1, {})]
    long_result, short_result = evaluate_choices(tiny_lm, items)
    assert long_result.truncated and not short_result.truncated
    cut = evaluate_choices(tiny_lm, [ChoiceItem("long", tail, ["mat", "tree"], 0, {})])[0]
    assert cut.truncated
    assert long_result.logprobs == pytest.approx(cut.logprobs, abs=1e-4)  # the model reads the same window


def test_a_choice_longer_than_the_window_is_named_before_any_output(tiny_lm, tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(ROW) + "\n" + json.dumps({**ROW, "id": "b", "choices": ["x", "y z " * 400]}) + "\n")
    items = read_choice_file(path)
    with pytest.raises(DataError, match=r"d.jsonl:2: choice 1 is \d+ tokens, longer than the model's 256-token"):
        check_choices_fit(tiny_lm, items)
    with pytest.raises(DataError, match=r"d.jsonl:2: choice 1"):
        evaluate_choices(tiny_lm, items)
    check_choices_fit(tiny_lm, items[:1])


def test_output_paths_are_checked_without_creating_anything(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_output_dir(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"
    assert not (tmp_path / "new").exists()
    for bad, message in [(tmp_path / "file", "exists and is a file"), (tmp_path / "file" / "out", "is a file"),
                         ("", "empty path")]:
        with pytest.raises(OutputError, match=message):
            check_output_dir(bad)
    with pytest.raises(OutputError, match="is a folder"):
        check_output_file(tmp_path)
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_file(tmp_path / "file" / "x.jsonl")
    assert issubclass(OutputError, UnderdogError)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write into a read-only folder")
def test_an_unwritable_folder_is_refused(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="not writable"):
            check_output_dir(ro / "out")
        with pytest.raises(OutputError, match="not writable"):
            check_output_dir(ro)
    finally:
        ro.chmod(0o755)


def test_a_full_disk_is_a_clean_error_and_leaves_no_file(tmp_path, monkeypatch):
    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OutputError, match="no space left"):
        atomic_write_text(tmp_path / "results.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_outputs_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        run = Run(tmp_path / "r", {"a": 1}, log=lambda m: None)
        run.stage("s", {}, lambda d: (d / "f.txt").write_text("x") and {"ok": True})
        run.write_results("m", "model", "task", {"acc": {"value": 1.0, "ci95": None}})
    finally:
        os.umask(old)
    for name in ("config.yaml", "results.json", "stages/s/result.json", "stages/s/stage.json"):
        assert (tmp_path / "r" / name).stat().st_mode & 0o777 == 0o640, name
    assert (tmp_path / "r" / "stages" / "s").stat().st_mode & 0o777 == 0o750


def test_results_json_is_strict_and_says_what_was_not_finite(tmp_path):
    run = Run(tmp_path / "r", {}, log=lambda m: None)
    results = run.write_results("m", "model", "task", {"acc": {"value": float("nan"), "ci95": [0.0, float("inf")]}})
    text = (tmp_path / "r" / "results.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in results.json"))
    assert data["metrics"]["acc"] == {"value": None, "ci95": [0.0, None]}
    assert data["non_finite"]["paths"] == ["metrics.acc.value", "metrics.acc.ci95[1]"]
    assert results["non_finite"] == data["non_finite"]


def test_the_run_lock_is_shared_in_a_process_and_released_on_close(tmp_path):
    import subprocess
    import sys

    first = Run(tmp_path / "r", log=lambda m: None)
    second = Run(tmp_path / "r", log=lambda m: None)  # the same process: allowed (a study and its helpers)
    probe = [sys.executable, "-c", f"from underdog.runs import Run; Run({str(tmp_path / 'r')!r})"]
    held = subprocess.run(probe, capture_output=True, text=True)
    assert held.returncode == 1 and "RunLockedError" in held.stderr and f"process {os.getpid()}" in held.stderr
    first.close()
    assert subprocess.run(probe, capture_output=True).returncode == 1  # still held by `second`
    del second
    assert subprocess.run(probe, capture_output=True).returncode == 0
    assert issubclass(RunLockedError, UnderdogError)


def test_stage_checkpoints_are_stable_per_inputs_and_dropped_when_the_stage_ends(tmp_path):
    assert stage_checkpoint_dir() is None
    run = Run(tmp_path / "r", log=lambda m: None)
    seen = []

    def fn(tmp: Path):
        folder = stage_checkpoint_dir()
        seen.append(folder)
        folder.mkdir(parents=True, exist_ok=True)
        if len(seen) == 1:
            raise RuntimeError("killed")
        return {"next": str(stage_checkpoint_dir())}

    with pytest.raises(RuntimeError):
        run.stage("train", {"x": 1}, fn)
    assert seen[0].is_dir()  # kept for the re-run to resume from
    result = run.stage("train", {"x": 1}, fn)
    assert seen[1] == seen[0] and result["next"].endswith("part-1")
    assert not (tmp_path / "r" / "checkpoints").exists()
    assert stage_checkpoint_dir() is None


def test_devices_and_world_sizes_are_checked():
    from underdog.lm.load import ModelLoadError, resolve_device
    from underdog.world import make_world

    assert str(resolve_device("cpu")) == "cpu"
    for bad in ("tpu", "gpu0", "cuda:x", "meta"):
        with pytest.raises(ModelLoadError, match="device"):
            resolve_device(bad)
    for sizes, message in [({"n_families": -1}, "between 0"), ({"p_more": 2.0}, r"\[0, 1\]"),
                           ({"chain_length": 2.5}, "whole number"), ({"doc_min": 20}, "exceeds doc_max")]:
        with pytest.raises(ValueError, match=message):
            make_world(0, **sizes)


def test_recipe_models_refuse_bad_values():
    from underdog.config import ConfigError, ScoreRecipe, TrainConfig, build_config

    for data, key in [({"lr": -1}, "lr"), ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch_size")]:
        with pytest.raises(ConfigError, match=f"'{key}'"):
            build_config(TrainConfig, data)
    for data, key in [({"device": "tpu"}, "device"), ({"dtype": "int4"}, "dtype"), ({"out": " "}, "out"),
                      ({"max_line_bytes": 0}, "max_line_bytes")]:
        with pytest.raises(ConfigError, match=f"'{key}'"):
            build_config(ScoreRecipe, {"data": "d.jsonl", "out": "o", **data})


def test_a_failed_command_can_discard_the_run_folders_it_created(tmp_path, monkeypatch):
    import underdog.runs
    from underdog.runs import discard_unfinished_runs

    monkeypatch.setattr(underdog.runs, "_CREATED", [])  # only the folders of this test

    (tmp_path / "old").mkdir()
    kept_old = Run(tmp_path / "old", {"a": 1}, log=lambda m: None)  # existed before: never removed
    fresh = Run(tmp_path / "fresh", {"a": 1}, log=lambda m: None)
    done = Run(tmp_path / "done", {"a": 1}, log=lambda m: None)
    done.stage("s", {}, lambda d: 1)
    assert discard_unfinished_runs() == [fresh.dir]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done", "old"]
    assert (kept_old.dir / "config.yaml").exists()
