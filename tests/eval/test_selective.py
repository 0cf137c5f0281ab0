"""Selective prediction metrics: AUROC equals sklearn, AUACC and friends match hand-computed values, ties do
not depend on input order, bootstrap intervals bracket the value, and the plot is written."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from underdog.eval.selective import (
    accuracy_at_coverage,
    accuracy_coverage_curve,
    auacc,
    auroc,
    plot_accuracy_coverage,
    prr,
    selective_metrics,
)


@pytest.mark.parametrize("seed", range(5))
def test_auroc_equals_sklearn_with_and_without_ties(seed):
    rng = np.random.default_rng(seed)
    correct = rng.integers(0, 2, 200)
    for scores in (rng.normal(size=200) + correct, rng.integers(0, 5, 200).astype(float)):  # continuous, tied
        assert abs(auroc(scores, correct) - roc_auc_score(correct, scores)) < 1e-9


def test_auroc_one_class_is_nan():
    assert np.isnan(auroc([0.1, 0.2], [1, 1]))


def test_hand_computed_curve_auacc_coverage_and_prr():
    scores, correct = [0.6, 0.9, 0.7, 0.8], [0, 1, 1, 0]  # sorted: 0.9 (1), 0.8 (0), 0.7 (1), 0.6 (0)
    cov, acc = accuracy_coverage_curve(scores, correct)
    assert np.allclose(cov, [0.25, 0.5, 0.75, 1.0])
    assert np.allclose(acc, [1.0, 0.5, 2 / 3, 0.5])
    assert auacc(scores, correct) == pytest.approx((1 + 0.5 + 2 / 3 + 0.5) / 4)
    assert accuracy_at_coverage(scores, correct, 0.5) == pytest.approx(0.5)
    assert accuracy_at_coverage(scores, correct, 0.75) == pytest.approx(2 / 3)
    assert accuracy_at_coverage(scores, correct, 0.9) == pytest.approx(0.5)  # ceil(3.6) = 4 items
    oracle = (1 + 1 + 2 / 3 + 0.5) / 4
    assert prr(scores, correct) == pytest.approx((auacc(scores, correct) - 0.5) / (oracle - 0.5))  # = 4/7
    assert prr(correct, correct) == pytest.approx(1.0)
    assert prr([-c for c in correct], correct) < 0


def test_ties_use_the_expectation_and_ignore_input_order():
    correct = np.array([1, 0, 0, 1, 1, 0, 1, 1])
    flat = np.zeros(8)
    assert np.allclose(accuracy_coverage_curve(flat, correct)[1], correct.mean())
    scores = np.array([2, 1, 1, 1, 0, 0, 2, 1.0])
    perm = np.random.default_rng(0).permutation(8)
    assert np.allclose(accuracy_coverage_curve(scores, correct)[1],
                       accuracy_coverage_curve(scores[perm], correct[perm])[1])
    assert accuracy_coverage_curve(scores, correct)[1][2] == pytest.approx((2 + 2 / 4) / 3)


def test_selective_metrics_have_intervals_around_the_value(tmp_path):
    rng = np.random.default_rng(1)
    correct = rng.integers(0, 2, 300)
    scores = correct + rng.normal(size=300)
    m = selective_metrics(scores, correct, n_boot=200)
    assert set(m) == {"auroc", "auacc", "prr", "acc@50", "acc@80", "acc@90", "accuracy"}
    for entry in m.values():
        assert entry["ci95"][0] <= entry["value"] <= entry["ci95"][1] and entry["n"] == 300
    assert m["auroc"]["value"] == pytest.approx(roc_auc_score(correct, scores), abs=1e-9)
    assert m["accuracy"]["value"] == pytest.approx(correct.mean())
    plot_accuracy_coverage({"a": (scores, correct), "b": (-scores, correct)}, tmp_path / "p.png", title="t")
    assert (tmp_path / "p.png").stat().st_size > 1000
