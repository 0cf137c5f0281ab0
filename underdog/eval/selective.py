"""Selective prediction metrics: how well a confidence score separates right answers from wrong ones.

Every function takes ``scores`` (higher = more confident) and ``correct`` (0/1 per item). ``auroc`` is the
Mann-Whitney form of the ROC area (ties count one half; equal to sklearn's ``roc_auc_score``); the
accuracy-coverage curve keeps the ``k`` most confident items for k = 1..n, and tied scores are resolved by
their expectation over random tie-breaking, so the curve never depends on input order. ``auacc`` is the mean
of that curve (the area under accuracy vs coverage, as in ASPIRE), ``accuracy_at_coverage`` reads it at a
coverage, and ``prr`` (prediction rejection ratio) puts the area between a random ranking (0) and the oracle
(1). ``selective_metrics`` gives all of them with 95% bootstrap intervals over items, and
``plot_accuracy_coverage`` draws the curves of several methods into one PNG.

Calibration: ``ece`` is the expected calibration error of a probability that the answer is right, over
``n_bins`` equal-width bins of [0, 1] (bin b holds confidences in (b/B, (b+1)/B], the first also 0): the
item-weighted mean of |accuracy - mean confidence| over non-empty bins, 0 for a calibrated score, as in Guo et
al. (2017). ``reliability_bins`` gives those bins and ``plot_reliability`` draws the reliability diagram.
ECE is defined for probabilities only: ``ece`` refuses a score outside [0, 1], and ``selective_metrics`` adds
``ece`` only when told the score is one (``probability=True``). A score that is not a probability is mapped
first or skipped: summed choice log-probs become one with ``choice_confidence`` (the softmax over an item's
choices, read at the predicted choice: the model's probability that its answer is right); margins, raw
log-probs and other unbounded scores have no calibration and get no ECE (the ranking metrics above still apply).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np

COVERAGES = (0.5, 0.8, 0.9)
N_BINS = 10


def _arrays(scores: Sequence[float], correct: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    s, c = np.asarray(scores, dtype=float), np.asarray(correct, dtype=float)
    if s.shape != c.shape or s.ndim != 1:
        raise ValueError(f"scores and correct must be 1-D of one length, got {s.shape} and {c.shape}")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    return s, c


def _groups(sorted_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted values: each position's tie-group id, and the groups' start and end (exclusive) indices."""
    new = np.r_[True, sorted_values[1:] != sorted_values[:-1]]
    starts = np.flatnonzero(new)
    return np.cumsum(new) - 1, starts, np.r_[starts[1:], len(sorted_values)]


def _ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing their average rank."""
    order = np.argsort(x, kind="mergesort")
    gid, starts, ends = _groups(x[order])
    ranks = np.empty(len(x))
    ranks[order] = ((starts + ends + 1) / 2.0)[gid]
    return ranks


def auroc(scores: Sequence[float], correct: Sequence[float]) -> float:
    """Area under the ROC curve of ``scores`` for telling correct (1) from wrong (0); NaN with one class."""
    s, c = _arrays(scores, correct)
    pos = c > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    r = _ranks(s)
    return float((r[pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def accuracy_coverage_curve(scores: Sequence[float], correct: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(coverage k/n, accuracy of the k most confident items) for k = 1..n; ties at their expectation."""
    s, c = _arrays(scores, correct)
    n = len(s)
    if n == 0:
        return np.zeros(0), np.zeros(0)
    order = np.argsort(-s, kind="mergesort")
    ss, cs = s[order], c[order]
    hits = np.r_[0.0, np.cumsum(cs)]
    gid, starts, ends = _groups(ss)
    mean = (hits[ends] - hits[starts]) / (ends - starts)  # a tie group's items count at its mean correctness
    k = np.arange(1, n + 1)
    expected = hits[starts][gid] + mean[gid] * (k - starts[gid])
    return k / n, expected / k


def auacc(scores: Sequence[float], correct: Sequence[float]) -> float:
    """Area under the accuracy-coverage curve: the mean accuracy of the top-k items over k = 1..n."""
    _, acc = accuracy_coverage_curve(scores, correct)
    return float(acc.mean()) if len(acc) else float("nan")


def accuracy_at_coverage(scores: Sequence[float], correct: Sequence[float], coverage: float) -> float:
    """Accuracy of the ``ceil(coverage * n)`` most confident items."""
    if not 0.0 < coverage <= 1.0:
        raise ValueError(f"coverage must be in (0, 1], got {coverage}")
    _, acc = accuracy_coverage_curve(scores, correct)
    if not len(acc):
        return float("nan")
    k = max(1, math.ceil(round(coverage * len(acc), 9)))
    return float(acc[k - 1])


def prr(scores: Sequence[float], correct: Sequence[float]) -> float:
    """Prediction rejection ratio: (AUACC - random) / (oracle AUACC - random); 1 is the oracle, 0 random."""
    _, c = _arrays(scores, correct)
    base, oracle = float(c.mean()) if len(c) else float("nan"), auacc(c, c)
    if not oracle - base > 1e-12:
        return float("nan")
    return (auacc(scores, correct) - base) / (oracle - base)


def _probabilities(probs: Sequence[float], correct: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    p, c = _arrays(probs, correct)
    if len(p) and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"ECE needs probabilities in [0, 1], got scores from {p.min():.4g} to {p.max():.4g}; "
                         "map them first (e.g. choice_confidence) or leave ECE out")
    return p, c


def _bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin of each confidence: (b/B, (b+1)/B] is bin b, and 0 joins the first bin."""
    return np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], p, side="left")


def _ece(p: np.ndarray, c: np.ndarray, n_bins: int) -> float:
    b = _bin_index(p, n_bins)
    count = np.bincount(b, minlength=n_bins)
    gap = np.abs(np.bincount(b, weights=c, minlength=n_bins) - np.bincount(b, weights=p, minlength=n_bins))
    return float(gap.sum() / count.sum()) if count.sum() else float("nan")


def ece(probs: Sequence[float], correct: Sequence[float], n_bins: int = N_BINS) -> float:
    """Expected calibration error: sum over equal-width bins of (items in bin / n) * |accuracy - mean
    confidence|; ``probs`` is each answer's probability of being right. NaN with no items."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p, c = _probabilities(probs, correct)
    return _ece(p, c, n_bins)


def reliability_bins(probs: Sequence[float], correct: Sequence[float], n_bins: int = N_BINS) -> list[dict]:
    """The non-empty bins of the reliability diagram: ``{"lo", "hi", "n", "confidence", "accuracy"}`` each,
    confidence and accuracy being the bin's means."""
    p, c = _probabilities(probs, correct)
    b = _bin_index(p, n_bins)
    out = []
    for k in range(n_bins):
        inside = b == k
        if inside.any():
            out.append({"lo": k / n_bins, "hi": (k + 1) / n_bins, "n": int(inside.sum()),
                        "confidence": float(p[inside].mean()), "accuracy": float(c[inside].mean())})
    return out


def choice_confidence(logprobs: Sequence[Sequence[float]]) -> list[float]:
    """Per item, the softmax over its choices' summed log-probs at the predicted (highest) choice: a
    probability that the picked answer is right, the input ``ece`` needs for multiple-choice scores."""
    out = []
    for lps in logprobs:
        x = np.asarray(lps, dtype=float)
        if x.ndim != 1 or not len(x) or np.isnan(x).any():
            raise ValueError(f"each item needs a 1-D list of choice log-probs without NaN, got {lps!r}")
        out.append(float(1.0 / np.exp(x - x.max()).sum()))
    return out


def _all(s: np.ndarray, c: np.ndarray, with_accuracy: bool, n_bins: int | None = None) -> dict[str, float]:
    """Every metric from one curve (the bootstrap computes this for each resample); ``n_bins``: add ECE."""
    _, acc = accuracy_coverage_curve(s, c)
    base, area = float(c.mean()), float(acc.mean())
    oracle = float(accuracy_coverage_curve(c, c)[1].mean())
    out = {"auroc": auroc(s, c), "auacc": area,
           "prr": (area - base) / (oracle - base) if oracle - base > 1e-12 else float("nan")}
    for cov in COVERAGES:
        out[f"acc@{int(cov * 100)}"] = float(acc[max(1, math.ceil(round(cov * len(acc), 9))) - 1])
    if with_accuracy:
        out["accuracy"] = base
    if n_bins:
        out["ece"] = _ece(s, c, n_bins)
    return out


def selective_metrics(scores: Sequence[float], correct: Sequence[float], n_boot: int = 1000, seed: int = 0,
                      with_accuracy: bool = True, probability: bool = False,
                      n_bins: int = N_BINS) -> dict[str, dict]:
    """AUROC, AUACC, PRR, accuracy at 50/80/90% coverage (and ``accuracy``) as ``{"value", "ci95", "n"}``,
    with 95% percentile bootstrap intervals over items (the same resamples for every metric). With
    ``probability=True`` the scores are probabilities of being right (checked to lie in [0, 1]) and ``ece``
    (over ``n_bins`` equal-width bins) joins them; the other metrics are the same either way."""
    s, c = (_probabilities if probability else _arrays)(scores, correct)
    if not len(s):
        raise ValueError("no items")
    if probability and n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    bins = n_bins if probability else None
    values = _all(s, c, with_accuracy, bins)
    rng = np.random.default_rng(seed)
    samples = [_all(s[i], c[i], with_accuracy, bins) for i in rng.integers(0, len(s), size=(n_boot, len(s)))]
    out = {}
    for name, value in values.items():
        boots = np.array([b[name] for b in samples])
        boots = boots[~np.isnan(boots)]
        ci = [float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))] if len(boots) else None
        out[name] = {"value": float(value), "ci95": ci, "n": int(len(s))}
    return out


def plot_accuracy_coverage(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
                           path: str | os.PathLike, title: str = "") -> None:
    """One accuracy-coverage line per method: ``curves[name] = (scores, correct)``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (scores, correct) in curves.items():
        cov, acc = accuracy_coverage_curve(scores, correct)
        ax.plot(cov, acc, label=f"{name} (AUACC {acc.mean():.3f})", linewidth=1.5)
    ax.set_xlabel("coverage (fraction of questions answered)")
    ax.set_ylabel("accuracy on answered questions")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_reliability(curves: Mapping[str, tuple[Sequence[float], Sequence[float]]], path: str | os.PathLike,
                     n_bins: int = N_BINS, title: str = "") -> None:
    """Reliability diagram: per method (``curves[name] = (probs, correct)``), each non-empty bin's accuracy
    against its mean confidence (the diagonal is perfect calibration), with the share of items per bin below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfect calibration")
    width = 1.0 / n_bins / (len(curves) + 1)
    for m, (name, (probs, correct)) in enumerate(curves.items()):
        bins = reliability_bins(probs, correct, n_bins)
        line, = ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o", linewidth=1.5,
                        label=f"{name} (ECE {ece(probs, correct, n_bins):.3f})")
        total = sum(b["n"] for b in bins)
        hist.bar([b["lo"] + (m + 0.5) * width for b in bins], [b["n"] / total for b in bins], width=width,
                 align="edge", color=line.get_color())
    ax.set_ylabel("accuracy in bin")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title)
    hist.set_xlabel(f"confidence (mean of each of {n_bins} equal-width bins)")
    hist.set_ylabel("share of items")
    hist.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
