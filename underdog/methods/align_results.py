"""The alignment study's metrics: abstention, selective scores, ASPIRE and the larger model at equal coverage.

Every figure is over the same test questions, with 95% bootstrap intervals over questions (the same resamples
for every arm, so differences are paired). A *selective* arm is a pair of per-question columns (answered,
correct); its statistics are accuracy (correct / all), coverage (answered / all) and accuracy on answered
questions (correct / answered). ASPIRE and the larger model's best baseline (by AUACC) become selective arms by
answering their ``m`` most confident questions, ``m`` = the aligned model's answered count, so all three are
read at one coverage. Curves for the report's plot are stored at 101 coverage points.
"""

from __future__ import annotations

import numpy as np

from underdog.eval.consistency import self_consistency
from underdog.eval.selective import accuracy_coverage_curve, auacc, selective_metrics
from underdog.eval.verdict import verdict
from underdog.runs import Run, metric

BASELINES = ("perplexity", "predictive_entropy", "semantic_entropy", "ptrue", "selfeval")


def answered_accuracy(rows: np.ndarray) -> float:
    """rows (n, 2) of (answered, correct): accuracy on the answered ones (0 when none is answered)."""
    n = rows[:, 0].sum()
    return float(rows[:, 1].sum() / n) if n else 0.0


def _boot(rows: np.ndarray, stat, idx: np.ndarray) -> dict:
    draws = np.array([stat(rows[i]) for i in idx])
    return metric(stat(rows), [np.quantile(draws, 0.025), np.quantile(draws, 0.975)], n=len(rows))


def top_m(scores, m: int) -> np.ndarray:
    """0/1 per question: among the ``m`` highest scores (ties broken by question order)."""
    chosen = np.zeros(len(scores))
    chosen[np.argsort(-np.asarray(scores, dtype=float), kind="mergesort")[:m]] = 1
    return chosen


def _curve(scores, correct) -> dict:
    cov, acc = accuracy_coverage_curve(scores, correct)
    grid = np.linspace(0, len(cov) - 1, min(101, len(cov))).round().astype(int)
    return {"coverage": [round(float(cov[i]), 4) for i in grid], "accuracy": [round(float(acc[i]), 4) for i in grid]}


def write_results(run: Run, recipe, test: list[dict], base: list[dict], evals: dict, training: dict,
                  aspire: dict | None, info: dict) -> dict:
    n = len(test)
    idx = np.random.default_rng(recipe.seed).integers(0, n, size=(recipe.n_boot, n))
    mean = lambda r: float(r.mean())  # noqa: E731
    base_ok = np.array([r["correct"] for r in base], dtype=float)
    metrics: dict = {"base/accuracy": _boot(base_ok, mean, idx)}
    arms, curves, points = {}, {}, {}
    for arm in ("dpo", "aligned"):
        rows = evals[arm]
        answered = np.array([not r["abstained"] for r in rows], dtype=float)
        ok = np.array([r["correct"] for r in rows], dtype=float)
        sel = np.stack([answered, ok], 1)
        arms[arm] = sel
        metrics[f"{arm}/accuracy"] = _boot(ok, mean, idx)
        metrics[f"{arm}/coverage"] = _boot(answered, mean, idx)
        metrics[f"{arm}/accuracy_answered"] = _boot(sel, answered_accuracy, idx)
        points[f"{recipe.model} + {arm}"] = [float(answered.mean()), answered_accuracy(sel)]
    aligned = arms["aligned"]
    wrong = 1 - base_ok
    abstained = 1 - aligned[:, 0]
    both = abstained * wrong
    metrics["aligned/abstain_precision"] = _boot(np.stack([abstained, both], 1), answered_accuracy, idx)
    metrics["aligned/abstain_recall"] = _boot(np.stack([wrong, both], 1), answered_accuracy, idx)
    conf = [r["confidence"] for r in evals["aligned"]]
    for m, entry in selective_metrics(conf, aligned[:, 1], n_boot=recipe.n_boot, seed=recipe.seed).items():
        metrics[f"aligned-score/{m}"] = entry
    curves[f"{recipe.model} + aligned: 1 - P(abstain)"] = _curve(conf, aligned[:, 1])
    sc = self_consistency([[s["text"] for s in r["samples"]] for r in base], [q["answers"] for q in test],
                          recipe.gamma)
    sc_conf, sc_ok = [r["confidence"] for r in sc], [r["correct"] for r in sc]
    for m, entry in selective_metrics(sc_conf, sc_ok, n_boot=recipe.n_boot, seed=recipe.seed).items():
        metrics[f"self-consistency/{m}"] = entry
    curves[f"{recipe.model}: self-consistency ({recipe.consistency_samples} samples)"] = _curve(sc_conf, sc_ok)
    points[f"{recipe.model} (base)"] = [1.0, float(base_ok.mean())]
    m_answered = int(aligned[:, 0].sum())
    summary: dict = {"answered": m_answered, "n_test": n}
    large_arm = None
    if aspire is not None:
        rows = aspire["rows"]
        a_ok = np.array([r["correct"] for r in rows], dtype=float)
        a_score = [(1 - aspire["alpha"]) * r["perplexity"] + aspire["alpha"] * r["judge"] for r in rows]
        metrics["aspire/accuracy"] = _boot(a_ok, mean, idx)
        for m, entry in selective_metrics(a_score, a_ok, n_boot=recipe.n_boot, seed=recipe.seed).items():
            metrics[f"aspire/{m}"] = entry
        curves[f"{aspire['model']} + ASPIRE (α {aspire['alpha']})"] = _curve(a_score, a_ok)
        best = max(BASELINES, key=lambda b: auacc([r[b] for r in rows], a_ok))
        curves[f"{aspire['model']}: {best} (ASPIRE's best baseline)"] = _curve([r[best] for r in rows], a_ok)
        if m_answered:
            a_sel = np.stack([top_m(a_score, m_answered), a_ok * top_m(a_score, m_answered)], 1)
            metrics["aspire_at_coverage/accuracy_answered"] = _boot(a_sel, answered_accuracy, idx)
            both = np.concatenate([aligned, a_sel], 1)
            metrics["aligned_minus_aspire/accuracy_answered"] = _boot(
                both, lambda r: answered_accuracy(r[:, :2]) - answered_accuracy(r[:, 2:]), idx)
        if aspire["compare"]:
            c_rows, name = aspire["compare"], aspire["compare_model"]
            c_ok = np.array([r["correct"] for r in c_rows], dtype=float)
            c_best = max(BASELINES, key=lambda b: auacc([r[b] for r in c_rows], c_ok))
            c_score = [r[c_best] for r in c_rows]
            metrics[f"{name}/accuracy"] = _boot(c_ok, mean, idx)
            for m, entry in selective_metrics(c_score, c_ok, n_boot=recipe.n_boot, seed=recipe.seed).items():
                metrics[f"{name}:{c_best}/{m}"] = entry
            curves[f"{name}: {c_best} (best baseline)"] = _curve(c_score, c_ok)
            points[f"{name} (base)"] = [1.0, float(c_ok.mean())]
            summary.update(compare_model=name, compare_best_baseline=c_best)
            if m_answered:
                large_arm = (f"{name} + {c_best}, top {m_answered}",
                             np.stack([top_m(c_score, m_answered), c_ok * top_m(c_score, m_answered)], 1))
                metrics[f"{name}_at_coverage/accuracy_answered"] = _boot(large_arm[1], answered_accuracy, idx)
    acc_ans, acc_base = metrics["aligned/accuracy_answered"], metrics["base/accuracy"]
    summary.update(
        aligned_beats_base_answered=acc_ans["value"] > acc_base["value"],
        aligned_beats_base_beyond_ci=acc_ans["ci95"][0] > acc_base["ci95"][1],
        coverage_at_least_20=metrics["aligned/coverage"]["value"] >= 0.2)
    if "aligned_minus_aspire/accuracy_answered" in metrics:
        lo, hi = metrics["aligned_minus_aspire/accuracy_answered"]["ci95"]
        summary["vs_aspire_at_coverage"] = "aligned" if lo > 0 else "aspire" if hi < 0 else "tie"
    base_arm = ("base (answers all)", np.stack([np.ones(n), base_ok], 1))
    result_verdict = verdict("accuracy on answered questions (at the aligned model's coverage)",
                             (f"{recipe.model} + aligned (abstains)", aligned), base_arm, large_arm,
                             statistic=answered_accuracy, n_boot=recipe.n_boot, seed=recipe.seed)
    per_split: dict = {}
    for name, rows in (("base", base), ("dpo", evals["dpo"]), ("aligned", evals["aligned"])):
        for split in sorted({r.get("split") for r in rows if r.get("split")}):
            rs = [r for r in rows if r.get("split") == split]
            per_split.setdefault(split, {})[name] = float(np.mean([r["correct"] for r in rs]))
            if name == "aligned":
                per_split[split]["aligned_coverage"] = float(np.mean([not r["abstained"] for r in rs]))
    train_info = {arm: {k: v for k, v in t.items()} for arm, t in training.items()}
    extra = {"verdict": result_verdict, "summary": summary, "training": train_info, "curves": curves,
             "points": points, "model_info": info, "n_test": n,
             "aspire_run": str(recipe.aspire_run or run.dir / "aspire") if aspire else None}
    return run.write_results("align", recipe.model, recipe.task or str(recipe.test), metrics, per_split, extra)
