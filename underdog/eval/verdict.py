"""The verdict: does the small model with a method beat the larger model, on the same questions?

Every study ends with one comparison, the toolkit's thesis in a line: the small model + method, the small
model without it, and the larger model with its best method, on the study's headline metric. The difference
small + method minus larger is bootstrapped *paired* (the same resampled questions for both arms), so the
shared difficulty of the questions cancels. Verdict: ``yes`` when the 95% CI lies above zero, ``no`` when it
lies below, ``tie`` otherwise. The dict goes into ``results.json`` under ``"verdict"``; ``underdog report``
reads only that.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Statistic = Callable[[np.ndarray], float]


def _mean(rows: np.ndarray) -> float:
    return float(np.mean(rows))


def _arm(label: str, rows: np.ndarray, statistic: Statistic, idx: np.ndarray) -> dict:
    draws = np.array([statistic(rows[i]) for i in idx])
    return {"label": label, "value": statistic(rows), "ci95": [float(np.quantile(draws, 0.025)),
                                                               float(np.quantile(draws, 0.975))]}


def verdict(metric: str, small_method: tuple[str, Sequence], small_base: tuple[str, Sequence] | None,
            large_best: tuple[str, Sequence] | None, statistic: Statistic = _mean, higher_is_better: bool = True,
            n_boot: int = 1000, seed: int = 0) -> dict:
    """The verdict entry of ``results.json``.

    Each arm is ``(label, rows)``: one row per question, in the same question order for every arm (for
    accuracy, 0/1 per question; for a statistic over several columns, e.g. AUACC from (score, correct), an
    ``(n, k)`` array and a ``statistic`` taking such rows). ``small_base`` or ``large_best`` may be None (no
    such run): the entry then says so, with no difference and no verdict."""
    small = np.asarray(small_method[1], dtype=float)
    n = len(small)
    if n == 0:
        raise ValueError("the verdict needs at least one question")
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    arms = {"small_method": _arm(small_method[0], small, statistic, idx)}
    rows = {"small_method": small}
    for role, arm in (("small_base", small_base), ("large_best", large_best)):
        if arm is None:
            arms[role] = None
            continue
        data = np.asarray(arm[1], dtype=float)
        if len(data) != n:
            raise ValueError(f"{role} has {len(data)} rows, small_method {n}: the arms must share the questions")
        arms[role], rows[role] = _arm(arm[0], data, statistic, idx), data
    out = {"metric": metric, "higher_is_better": higher_is_better, "n": n, **arms, "diff_vs_larger": None,
           "beats_larger": None, "gain_over_base": None}
    sign = 1.0 if higher_is_better else -1.0
    for role, key in (("large_best", "diff_vs_larger"), ("small_base", "gain_over_base")):
        if arms[role] is None:
            continue
        d = np.array([statistic(small[i]) - statistic(rows[role][i]) for i in idx])
        out[key] = {"value": arms["small_method"]["value"] - arms[role]["value"],
                    "ci95": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))]}
    if out["diff_vs_larger"] is not None:
        lo, hi = (sign * v for v in out["diff_vs_larger"]["ci95"])
        lo, hi = min(lo, hi), max(lo, hi)
        out["beats_larger"] = "yes" if lo > 0 else "no" if hi < 0 else "tie"
    return out
