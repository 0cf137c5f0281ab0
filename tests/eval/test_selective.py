"""Selective prediction metrics: AUROC equals sklearn, AUACC and friends match hand-computed values, ties do
not depend on input order, bootstrap intervals bracket the value, and the plot is written. ECE matches hand
values and a reference loop, refuses non-probabilities, and joins selective_metrics only when asked."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from underdog.eval.selective import (
    accuracy_at_coverage,
    accuracy_coverage_curve,
    auacc,
    auroc,
    choice_confidence,
    ece,
    plot_accuracy_coverage,
    plot_reliability,
    prr,
    reliability_bins,
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


def _reference_ece(probs, correct, n_bins):
    """Guo et al.'s loop: bins (lo, hi] of equal width, weighted |accuracy - confidence|."""
    probs, correct = np.asarray(probs, float), np.asarray(correct, float)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (probs > lo) & (probs <= hi)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - probs[inside].mean())
    return total


def test_ece_hand_computed_and_against_a_reference_loop():
    probs, correct = [0.05, 0.15, 0.95, 0.9, 0.35], [0, 0, 1, 0, 1]  # one item per bin
    assert ece(probs, correct) == pytest.approx((0.05 + 0.15 + 0.05 + 0.9 + 0.65) / 5)
    assert ece([0.82, 0.88, 0.85], [1, 1, 0]) == pytest.approx(abs(2 / 3 - 0.85))  # one bin
    assert ece([0.0, 1.0], [0, 1]) == 0.0  # the edges join the first and last bins
    rng = np.random.default_rng(3)
    for n_bins in (1, 5, 10, 15):
        p = rng.uniform(size=500)
        c = rng.integers(0, 2, 500)
        assert ece(p, c, n_bins) == pytest.approx(_reference_ece(p, c, n_bins), abs=1e-12)


def test_ece_separates_calibrated_from_overconfident():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    assert ece(p, rng.uniform(size=20000) < p) < 0.02
    assert ece(np.full(1000, 0.99), np.arange(1000) % 2) == pytest.approx(0.49)


def test_ece_refuses_scores_that_are_not_probabilities():
    with pytest.raises(ValueError, match="probabilities in"):
        ece([-2.3, -0.1], [0, 1])
    with pytest.raises(ValueError, match="probabilities in"):
        selective_metrics([0.5, 1.5], [0, 1], probability=True)
    with pytest.raises(ValueError, match="n_bins"):
        ece([0.5], [1], n_bins=0)


def test_choice_confidence_is_the_softmax_at_the_picked_choice():
    conf = choice_confidence([[0.0, np.log(3.0)], [-1.0, -1.0, -1.0, -1.0], [-700.0, -2.0]])
    assert conf == pytest.approx([0.75, 0.25, 1.0])
    with pytest.raises(ValueError):
        choice_confidence([[]])


def test_selective_metrics_add_ece_only_for_probabilities(tmp_path):
    rng = np.random.default_rng(2)
    p = rng.uniform(size=300)
    correct = (rng.uniform(size=300) < p ** 2).astype(int)  # overconfident
    plain = selective_metrics(p, correct, n_boot=100)
    with_ece = selective_metrics(p, correct, n_boot=100, probability=True, n_bins=10)
    assert "ece" not in plain
    assert set(with_ece) == set(plain) | {"ece"}
    for name in plain:
        assert with_ece[name] == plain[name]  # same resamples, same values and intervals
    entry = with_ece["ece"]
    assert entry["value"] == pytest.approx(ece(p, correct, 10))
    assert entry["ci95"][0] <= entry["value"] <= entry["ci95"][1] and entry["value"] > 0.1
    bins = reliability_bins(p, correct, 10)
    assert sum(b["n"] for b in bins) == 300
    assert all(b["lo"] < b["confidence"] <= b["hi"] for b in bins)
    plot_reliability({"raw": (p, correct), "squared": (p ** 2, correct)}, tmp_path / "r.png", title="t")
    assert (tmp_path / "r.png").stat().st_size > 1000
