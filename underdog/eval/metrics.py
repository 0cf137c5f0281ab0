"""Metrics for generated and scored answers, and bootstrap confidence intervals.

Exact match and token F1 follow the SQuAD conventions (lower-case, strip punctuation and articles); Rouge-L
comes from ``rouge-score``; edit distance is Levenshtein on characters; Brier score is for probabilities of
the correct choice. ``bootstrap_ci`` gives the 95% interval every results.json entry carries.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np


def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    return float(any(normalize_answer(prediction) == normalize_answer(r) for r in references))


def token_f1(prediction: str, references: Sequence[str]) -> float:
    def f1(pred: str, ref: str) -> float:
        p, r = normalize_answer(pred).split(), normalize_answer(ref).split()
        common = sum((Counter(p) & Counter(r)).values())
        if not p or not r:
            return float(p == r)
        if common == 0:
            return 0.0
        precision, recall = common / len(p), common / len(r)
        return 2 * precision * recall / (precision + recall)

    return max(f1(prediction, r) for r in references)


_ROUGE = None


def rouge_l(prediction: str, references: Sequence[str]) -> float:
    """Max Rouge-L F-measure of ``prediction`` against any reference (rouge-score, no stemming)."""
    global _ROUGE
    if _ROUGE is None:
        from rouge_score import rouge_scorer

        _ROUGE = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    return max(_ROUGE.score(r, prediction)["rougeL"].fmeasure for r in references)


def edit_distance(a: Sequence, b: Sequence) -> int:
    """Levenshtein distance between two sequences: characters of strings, or token ids."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def brier(prob_correct: Sequence[float]) -> float:
    """Brier score of the probability put on the correct choice (lower is better; 0 is perfect)."""
    p = np.asarray(prob_correct, dtype=float)
    return float(np.mean((1.0 - p) ** 2))


def bootstrap_ci(values: Sequence[float], stat: Callable[[np.ndarray], float] = np.mean, n_boot: int = 1000,
                 seed: int = 0) -> tuple[float, float]:
    """95% percentile bootstrap interval of ``stat`` over ``values``."""
    x = np.asarray(values, dtype=float)
    if len(x) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(n_boot, len(x)))
    stats = np.array([stat(x[i]) for i in idx]) if stat is not np.mean else x[idx].mean(1)
    lo, hi = np.percentile(stats, [2.5, 97.5])
    return (float(lo), float(hi))


def mean_with_ci(values: Sequence[float], seed: int = 0) -> dict:
    """``{"value", "ci95", "n"}`` for a list of per-item scores."""
    x = np.asarray(values, dtype=float)
    lo, hi = bootstrap_ci(x, seed=seed)
    return {"value": float(x.mean()) if len(x) else float("nan"), "ci95": [lo, hi], "n": int(len(x))}
