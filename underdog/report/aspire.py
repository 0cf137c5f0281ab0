"""ASPIRE's report: selective metrics of every method, the margins over the baselines, the verdict and the
accuracy-coverage plot, from ``results.json`` (runs made before curves were stored in it: from their
``answers.jsonl``)."""

from __future__ import annotations

import json
from pathlib import Path

from underdog.eval.selective import plot_accuracy_coverage, plot_reliability
from underdog.report import fmt
from underdog.report.verdict import verdict_line

COLUMNS = ("accuracy", "auroc", "auacc", "acc@50", "acc@80", "acc@90", "prr", "ece")
BASELINES = ("perplexity", "predictive_entropy", "semantic_entropy", "ptrue", "selfeval")


def _signed(x: float | None) -> str:
    return "n/a" if x is None or x != x else f"{x:+.3f}"


def _yes(flag: bool | None) -> str:
    return {True: "yes", False: "no"}.get(flag, "–")


def _curves(run_dir: Path, results: dict) -> dict[str, tuple[list, list]]:
    if results.get("curves"):
        return {k: (v["scores"], v["correct"]) for k, v in results["curves"].items()}
    path, summary = run_dir / "answers.jsonl", results.get("summary", {})
    if not path.is_file():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    alpha = summary.get("alpha", 0.25)
    correct = [r["correct"] for r in rows]
    model = results.get("model")
    curves = {f"{model}: aspire": ([(1 - alpha) * r["perplexity"] + alpha * r["judge"] for r in rows], correct)}
    best = summary.get("best_baseline")
    if best:
        curves[f"{model}: {best} (best baseline)"] = ([r[best] for r in rows], correct)
    return curves


def write(run_dir: Path, results: dict) -> str:
    cfg, metrics, summary = results.get("config", {}), results["metrics"], results.get("summary", {})
    model, compare = results.get("model"), cfg.get("compare_model")
    n = results.get("n_test")
    curves = _curves(run_dir, results)
    if curves:
        plot_accuracy_coverage(curves, run_dir / "accuracy_coverage.png",
                               title=f"Accuracy-coverage ({n} test questions)")
    methods = list(dict.fromkeys(k.rsplit("/", 1)[0] for k in metrics))
    lines = ["| method | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for m in methods:
        label = m if ":" in m else f"{model}: {m}"
        lines.append(f"| {label} | " + " | ".join(fmt(metrics.get(f"{m}/{c}")) for c in COLUMNS) + " |")
    margins = summary.get("aspire_minus_baseline", {})
    ahead, beyond = summary.get("aspire_beats_every_baseline", {}), summary.get("aspire_ahead_beyond_ci", {})
    alpha, gap = summary.get("alpha"), summary.get("auacc_gap_vs_compare")
    judge = results.get("selfeval_training") or {}
    info = results.get("model_info") or {}
    per_split = results.get("per_split") or {}
    verdict = verdict_line(results.get("verdict"))
    text = (f"# ASPIRE: selective prediction with learned self-evaluation\n\nModel `{model}`"
            + (f" ({info['parameters']:,} parameters)" if info.get("parameters") else "")
            + f" with θp ({cfg.get('tune', {}).get('adapter')}) and θs ({cfg.get('selfeval', {}).get('soft_tokens')} "
            f"soft tokens); task {results.get('task')}; {n} test questions; correct = Rouge-L >= {cfg.get('gamma')}; "
            f"α = {alpha}{' (tuned on dev)' if cfg.get('alpha') is None else ''}. Values with 95% bootstrap CIs "
            "over questions.\n\n" + (f"{verdict}\n\n" if verdict else "") + "\n".join(lines) + "\n\n")
    if margins:
        text += ("ASPIRE minus each baseline of `" + str(model) + "` (AUROC / AUACC): " + "; ".join(
            f"{b} {_signed(margins['auroc'][b])} / {_signed(margins['auacc'][b])}" for b in margins.get("auroc", {}))
            + f". Ahead of every baseline: AUROC {_yes(ahead.get('auroc'))}, AUACC {_yes(ahead.get('auacc'))}; by "
            f"more than each one's CI half-width: AUROC {_yes(beyond.get('auroc'))}, AUACC "
            f"{_yes(beyond.get('auacc'))}.\n")
    if alpha == 0:
        text += "α = 0: ASPIRE's score is the perplexity score (the learned judge did not help on dev).\n"
    if gap is not None:
        text += (f"`{model}` + ASPIRE AUACC minus `{compare}`'s best baseline "
                 f"({summary.get('compare_best_baseline')}) AUACC: {_signed(gap)}.\n")
    if per_split:
        text += "\nAccuracy by world split: " + "; ".join(
            f"{s} " + ", ".join(f"{k} {v:.2f}" for k, v in d.items()) for s, d in per_split.items()) + ".\n"
    if judge:
        text += (f"\nθs training: {judge['examples']} examples ({judge['positives']} correct), loss "
                 f"{judge['first_loss']:.3f} -> {judge['last_loss']:.3f}.\n")
    if curves:
        text += "\n![accuracy-coverage](accuracy_coverage.png)\n"
    calibration = results.get("calibration") or {}
    if calibration:
        plot_reliability({k: (v["probs"], v["correct"]) for k, v in calibration.items()}, run_dir / "reliability.png",
                         title="Reliability of the probability scores")
        text += ("\nCalibration (ECE, 10 equal-width bins) of the scores that are probabilities of a correct answer "
                 "(θs judge, P(True), untrained self-evaluation); `–` for scores that are not probabilities.\n"
                 "\n![reliability](reliability.png)\n")
    return text
