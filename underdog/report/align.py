"""Report of the alignment study (``underdog align``), from its results.json alone.

One table (each arm's accuracy, coverage, accuracy on answered questions and, where the arm has a score,
AUROC/AUACC; ASPIRE and the larger model read at the aligned model's coverage) and one plot: accuracy on
answered questions against coverage, with the base, DPO and aligned models as points and ASPIRE, its best
baseline, self-consistency, the aligned model's own score and the larger model's best baseline as curves.
"""

from __future__ import annotations

from pathlib import Path

from underdog.report import fmt


def _yes(value) -> str:
    return {True: "yes", False: "no", None: "n/a"}.get(value, str(value))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, c in results.get("curves", {}).items():
        ax.plot(c["coverage"], c["accuracy"], linewidth=1.4, label=name)
    markers = iter("o^sDvP*X")
    for name, (cov, acc) in results.get("points", {}).items():
        ax.scatter([cov], [acc], s=60, marker=next(markers, "o"), zorder=5, edgecolor="black", label=name)
    ax.set_xlabel("coverage (share of questions answered)")
    ax.set_ylabel("accuracy on answered questions")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(f"Accuracy vs coverage ({results.get('n_test')} test questions)")
    ax.legend(fontsize=6.5, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(run_dir: Path, results: dict) -> str:
    m, s, model = results["metrics"], results.get("summary", {}), results["model"]
    plot(results, run_dir / "accuracy_coverage.png")
    head = "| arm | accuracy | coverage | accuracy on answered | AUROC | AUACC |\n|---|---|---|---|---|---|"
    lines = [f"| {model} base (greedy) | {fmt(m.get('base/accuracy'))} | 1 | {fmt(m.get('base/accuracy'))} | | |",
             f"| {model} self-consistency (majority) | {fmt(m.get('self-consistency/accuracy'))} | 1 | | "
             f"{fmt(m.get('self-consistency/auroc'))} | {fmt(m.get('self-consistency/auacc'))} |",
             f"| {model} + DPO (correct > wrong) | {fmt(m.get('dpo/accuracy'))} | {fmt(m.get('dpo/coverage'))} | "
             f"{fmt(m.get('dpo/accuracy_answered'))} | | |",
             f"| {model} + DPO with abstention (aligned, {s.get('rule', 'greedy')} rule) | "
             f"{fmt(m.get('aligned/accuracy'))} | "
             f"{fmt(m.get('aligned/coverage'))} | {fmt(m.get('aligned/accuracy_answered'))} | "
             f"{fmt(m.get('aligned-score/auroc'))} | {fmt(m.get('aligned-score/auacc'))} |"]
    if "aligned-greedy/coverage" in m and s.get("rule") != "greedy":
        lines.append(f"| {model} + DPO with abstention (aligned, greedy decision) | "
                     f"{fmt(m.get('aligned-greedy/accuracy'))} | {fmt(m.get('aligned-greedy/coverage'))} | "
                     f"{fmt(m.get('aligned-greedy/accuracy_answered'))} | | |")
    if "aspire/accuracy" in m:
        lines.append(f"| {model} + ASPIRE (top {s.get('answered')}) | {fmt(m.get('aspire/accuracy'))} | "
                     f"{fmt(m.get('aligned/coverage'))} | {fmt(m.get('aspire_at_coverage/accuracy_answered'))} | "
                     f"{fmt(m.get('aspire/auroc'))} | {fmt(m.get('aspire/auacc'))} |")
    large = s.get("compare_model")
    if large:
        best = s.get("compare_best_baseline")
        lines.append(f"| {large}: {best} (top {s.get('answered')}) | {fmt(m.get(f'{large}/accuracy'))} | "
                     f"{fmt(m.get('aligned/coverage'))} | {fmt(m.get(f'{large}_at_coverage/accuracy_answered'))} | "
                     f"{fmt(m.get(f'{large}:{best}/auroc'))} | {fmt(m.get(f'{large}:{best}/auacc'))} |")
    training = results.get("training", {})
    train_lines = []
    for arm, t in training.items():
        h = t.get("history") or [{}]
        train_lines.append(
            f"- {arm}: {t.get('n_pairs')} pairs ({', '.join(f'{k} {v}' for k, v in t.get('pairs', {}).items() if v)})"
            f", {t.get('steps')} DPO steps; reward margin {h[0].get('margin', 0):+.3f} -> {h[-1].get('margin', 0):+.3f},"
            f" reward accuracy {h[0].get('accuracy', 0):.2f} -> {h[-1].get('accuracy', 0):.2f}")
    diff = m.get("aligned_minus_aspire/accuracy_answered")
    verdict = results.get("verdict") or {}
    text = (f"# Alignment: DPO (TRL) and learned abstention vs ASPIRE\n\nModel `{model}`; task {results.get('task')}; "
            f"{results.get('n_test')} test questions"
            + (f" (ASPIRE's: {results.get('aspire_run')}); ASPIRE and the larger model answer their "
               f"{s.get('answered')} most confident questions (the aligned model's answered count)"
               if results.get("aspire_run") else "; no ASPIRE run to compare")
            + f". Values with 95% bootstrap CIs over questions.\n\n{head}\n" + "\n".join(lines) + "\n\n"
            + f"The aligned model's abstention rule: {s.get('aligned_rule', 'greedy')}. AUROC/AUACC of the aligned "
            f"row score its answers (abstention banned) by 1 - P(abstention's first token).\n\n"
            + f"Abstained on {s.get('n_test', 0) - s.get('answered', 0)} questions. Abstention precision (abstained "
            f"where the base model was wrong): "
            f"{fmt(m.get('aligned/abstain_precision'))}; recall (share of the base model's wrong answers abstained "
            f"on): {fmt(m.get('aligned/abstain_recall'))}.\n\n"
            + f"Aligned more accurate on what it answers than the base overall: "
            f"{_yes(s.get('aligned_beats_base_answered'))} (beyond the CIs: {_yes(s.get('aligned_beats_base_beyond_ci'))}); "
            f"answers at least 20%: {_yes(s.get('coverage_at_least_20'))}.\n"
            + (f"Aligned minus ASPIRE on answered questions at the same coverage: {fmt(diff)} "
               f"(more accurate: {s.get('vs_aspire_at_coverage')}).\n" if diff else "")
            + (f"Verdict ({verdict.get('metric')}): small + method vs larger: "
               f"{_yes(verdict.get('beats_larger'))}.\n" if verdict else "")
            + "\nDPO training (TRL's logged rewards, first -> last logging step):\n" + "\n".join(train_lines) + "\n"
            + "\n![accuracy vs coverage](accuracy_coverage.png)\n")
    return text
