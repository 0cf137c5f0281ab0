"""The alignment study's metrics: abstention, selective scores, ASPIRE and the larger model at equal coverage.

Every figure is over the same test questions, with 95% bootstrap intervals over questions (the same resamples
for every arm, so differences are paired). A *selective* arm is a pair of per-question columns (answered,
correct); its statistics are accuracy (correct / all), coverage (answered / all) and accuracy on answered
questions (correct / answered). ASPIRE and the larger model's best baseline (by AUACC) become selective arms by
answering their ``m`` most confident questions, ``m`` = the aligned model's answered count, so all three are
read at one coverage. Curves for the report's plot are stored at 101 coverage points. The aligned model's
abstention follows a named rule (``apply_rule``): its greedy choice of the abstention's first token, or a
threshold on that token's probability chosen on the dev split (``choose_threshold``); the headline
``aligned/*`` metrics carry the rule's name, and the greedy decision is always reported as ``aligned-greedy/*``.
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


def choose_threshold(p_abstain, correct, min_coverage: float) -> tuple[float, float, float]:
    """The threshold t (abstain when p > t) maximising accuracy on answered questions among those keeping
    coverage >= ``min_coverage`` (ties: the higher coverage); returns (t, coverage, accuracy on answered)."""
    p = np.asarray(p_abstain, dtype=float)
    ok = np.asarray(correct, dtype=float)
    if not len(p):
        raise ValueError("no dev questions to choose a threshold on")
    order = np.argsort(p, kind="mergesort")
    hits = np.cumsum(ok[order])
    best = None
    for j in range(len(p)):
        if j + 1 < len(p) and p[order[j + 1]] == p[order[j]]:
            continue  # answer all questions with equal p together
        cov, acc = (j + 1) / len(p), hits[j] / (j + 1)
        if cov >= min_coverage and (best is None or acc >= best[2]):
            best = (float(p[order[j]]), cov, float(acc))
    return best  # type: ignore[return-value]


def apply_rule(test: list[dict], dev: list[dict], rule: str, min_coverage: float) -> dict:
    """Set ``abstained`` on the aligned model's test rows by ``rule`` ("threshold": p_abstain above the dev
    threshold; "greedy": ``abstained_greedy``); returns the rule's description (name, threshold, dev figures)."""
    if rule == "greedy":
        for r in test:
            r["abstained"] = bool(r["abstained_greedy"])
        return {"rule": "greedy", "name": "greedy: abstains when the abstention's first token is the argmax"}
    t, cov, acc = choose_threshold([r["p_abstain"] for r in dev], [r["correct"] for r in dev], min_coverage)
    for r in test:
        r["abstained"] = r["p_abstain"] > t
    return {"rule": "threshold", "threshold": t, "dev_coverage": cov, "dev_accuracy_answered": acc,
            "name": f"threshold: abstains when P(abstention's first token) > {t:.4g} (chosen on {len(dev)} dev "
                    f"questions: coverage {cov:.3f}, accuracy on answered {acc:.3f}; floor {min_coverage})"}


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


def _selective(rows: list[dict], key: str, idx: np.ndarray, prefix: str, base_ok: np.ndarray, metrics: dict,
               rule: str | None = None) -> np.ndarray:
    """Accuracy, coverage, accuracy on answered and (when ``rule``) abstention precision/recall of one
    decision column ``key``; returns the (answered, correct) rows."""
    answered = np.array([not r[key] for r in rows], dtype=float)
    ok = np.array([r["correct"] for r in rows], dtype=float) * answered
    sel = np.stack([answered, ok], 1)
    extra = {"rule": rule} if rule else {}
    metrics[f"{prefix}/accuracy"] = {**_boot(ok, lambda r: float(r.mean()), idx), **extra}
    metrics[f"{prefix}/coverage"] = {**_boot(answered, lambda r: float(r.mean()), idx), **extra}
    metrics[f"{prefix}/accuracy_answered"] = {**_boot(sel, answered_accuracy, idx), **extra}
    if rule:
        wrong, abstained = 1 - base_ok, 1 - answered
        both = abstained * wrong
        metrics[f"{prefix}/abstain_precision"] = {**_boot(np.stack([abstained, both], 1), answered_accuracy, idx),
                                                  **extra}
        metrics[f"{prefix}/abstain_recall"] = {**_boot(np.stack([wrong, both], 1), answered_accuracy, idx), **extra}
    return sel


def write_results(run: Run, recipe, test: list[dict], base: list[dict], evals: dict, training: dict,
                  aspire: dict | None, info: dict, rule: dict | None = None) -> dict:
    n = len(test)
    idx = np.random.default_rng(recipe.seed).integers(0, n, size=(recipe.n_boot, n))
    mean = lambda r: float(r.mean())  # noqa: E731
    base_ok = np.array([r["correct"] for r in base], dtype=float)
    metrics: dict = {"base/accuracy": _boot(base_ok, mean, idx)}
    arms, curves, points = {}, {}, {}
    rule = rule or {"rule": "greedy", "name": "greedy: abstains when its greedy answer is the abstention"}
    arms["dpo"] = _selective(evals["dpo"], "abstained", idx, "dpo", base_ok, metrics)
    arms["aligned"] = _selective(evals["aligned"], "abstained", idx, "aligned", base_ok, metrics, rule["name"])
    points[f"{recipe.model} + dpo"] = [float(arms["dpo"][:, 0].mean()), answered_accuracy(arms["dpo"])]
    points[f"{recipe.model} + aligned ({rule['rule']})"] = [float(arms["aligned"][:, 0].mean()),
                                                            answered_accuracy(arms["aligned"])]
    if all("abstained_greedy" in r for r in evals["aligned"]):
        greedy = _selective(evals["aligned"], "abstained_greedy", idx, "aligned-greedy", base_ok, metrics,
                            "greedy: abstains when the abstention's first token is the argmax")
        if rule["rule"] != "greedy":
            points[f"{recipe.model} + aligned (greedy)"] = [float(greedy[:, 0].mean()), answered_accuracy(greedy)]
    aligned = arms["aligned"]
    conf = [r["confidence"] for r in evals["aligned"]]
    scored_ok = np.array([r["correct"] for r in evals["aligned"]], dtype=float)  # its answer, abstention banned
    for m, entry in selective_metrics(conf, scored_ok, n_boot=recipe.n_boot, seed=recipe.seed).items():
        metrics[f"aligned-score/{m}"] = entry
    curves[f"{recipe.model} + aligned: 1 - P(abstain)"] = _curve(conf, scored_ok)
    sc = self_consistency([[s["text"] for s in r["samples"]] for r in base], [q["answers"] for q in test],
                          recipe.gamma)
    sc_conf, sc_ok = [r["confidence"] for r in sc], [r["correct"] for r in sc]
    for m, entry in selective_metrics(sc_conf, sc_ok, n_boot=recipe.n_boot, seed=recipe.seed).items():
        metrics[f"self-consistency/{m}"] = entry
    curves[f"{recipe.model}: self-consistency ({recipe.consistency_samples} samples)"] = _curve(sc_conf, sc_ok)
    points[f"{recipe.model} (base)"] = [1.0, float(base_ok.mean())]
    m_answered = int(aligned[:, 0].sum())
    summary: dict = {"answered": m_answered, "n_test": n, "aligned_rule": rule["name"],
                     **{k: v for k, v in rule.items() if k not in ("name",)}}
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
