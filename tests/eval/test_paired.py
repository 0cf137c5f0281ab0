"""Paired comparison of two models' answers to the same questions (``underdog compare``)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from underdog.cli import main
from underdog.eval.metrics import mean_with_ci
from underdog.eval.paired import CompareError, compare_runs, paired_difference


def test_paired_difference_counts_and_mean():
    r = paired_difference([1, 0, 1, 1, 0], [1, 1, 0, 1, 1])
    assert r["value"] == pytest.approx(0.2)
    assert (r["n"], r["only_a"], r["only_b"]) == (5, 1, 2)
    assert r["ci95"][0] <= 0.2 <= r["ci95"][1]
    with pytest.raises(ValueError, match="equal lengths"):
        paired_difference([1, 0], [1])


def test_pairing_sees_a_gain_that_separate_intervals_miss():
    """B = A plus 12 more right answers out of 400: the separate 95% intervals overlap, the paired one
    excludes zero (what the pairing is for)."""
    a = (np.random.default_rng(0).random(400) < 0.8).astype(float)
    b = a.copy()
    b[np.flatnonzero(a == 0)[:12]] = 1
    sep_a, sep_b = mean_with_ci(a), mean_with_ci(b)
    assert sep_a["ci95"][1] > sep_b["ci95"][0]
    paired = paired_difference(a, b)
    assert paired["value"] == pytest.approx(12 / 400)
    assert paired["ci95"][0] > 0 and (paired["only_a"], paired["only_b"]) == (0, 12)


def _run(path, seed, correct, splits=("forward", "reversal"), methods=("icl",)):
    (path / "stages").mkdir(parents=True)
    (path / "results.json").write_text(json.dumps({"world": {"seed": seed, "pool": "eval"}}))
    answers = [{"id": f"q{i}", "split": splits[i % len(splits)], "pred": 0, "correct": c}
               for i, c in enumerate(correct)]
    for m in methods:
        (path / "stages" / m).mkdir()
        (path / "stages" / m / "result.json").write_text(json.dumps({"result": {"answers": answers}}))
    return path


def test_compare_runs_pools_worlds_by_split(tmp_path):
    a = [_run(tmp_path / "a7", 7, [1, 1, 0, 0]), _run(tmp_path / "a1", 1, [1, 0, 1, 0])]
    b = [_run(tmp_path / "b7", 7, [1, 1, 1, 1]), _run(tmp_path / "b1", 1, [0, 0, 1, 1])]
    r = compare_runs(a, b)["by_split"]
    assert list(r) == ["forward", "reversal"]  # the world's split order
    # forward: q0, q2 of each world -> A (1, 0, 1, 1), B (1, 1, 0, 1)
    assert (r["forward"]["a"], r["forward"]["b"], r["forward"]["n"]) == (0.75, 0.75, 4)
    assert (r["forward"]["only_a"], r["forward"]["only_b"]) == (1, 1)
    # reversal: q1, q3 -> A (1, 0, 0, 0), B (1, 1, 0, 1)
    assert r["reversal"]["value"] == pytest.approx(0.5)


def test_compare_runs_refuses_what_is_not_paired(tmp_path):
    a7 = _run(tmp_path / "a7", 7, [1, 0, 1, 0])
    with pytest.raises(CompareError, match="different worlds"):
        compare_runs([a7], [_run(tmp_path / "b1", 1, [1, 0, 1, 0])])
    with pytest.raises(CompareError, match="different questions"):
        compare_runs([a7], [_run(tmp_path / "b7", 7, [1, 0, 1])])
    with pytest.raises(CompareError, match=r"no answers of method 'ft'.*\['icl'\]"):
        compare_runs([a7], [a7], method="ft")
    with pytest.raises(CompareError, match="as many B runs"):
        compare_runs([a7, a7], [a7])
    with pytest.raises(CompareError, match="no results.json"):
        compare_runs([tmp_path / "missing"], [a7])


def test_compare_command(tmp_path, capsys):
    a = _run(tmp_path / "a", 7, [1, 0, 0, 0], methods=("none", "icl"))
    b = _run(tmp_path / "b", 7, [1, 1, 1, 0], methods=("none", "icl"))
    out = tmp_path / "cmp.json"
    assert main(["compare", "--a", str(a), "--b", str(b), "--method", "none", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert "| forward | 2 | 0.500 | 1.000 | +0.500" in table
    assert json.loads(out.read_text())["by_split"]["reversal"]["only_b"] == 1
    assert main(["compare", "--a", str(a), "--b", str(tmp_path / "nowhere")]) == 2
    assert "no results.json" in capsys.readouterr().err
