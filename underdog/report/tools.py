"""Report of the tools study (``methods.tools``): the four-arm comparison, accuracy against digits and
operation count, the calls proposed / executed / kept per tool by Toolformer's filter, and the verdict line.
Drawn from results.json alone (``accuracy_vs_digits.png``)."""

from __future__ import annotations

from pathlib import Path

from underdog.report import fmt, grid_table

ARM_ORDER = ("small", "small+tools", "large", "large+tools")


def _plot(run_dir: Path, metrics: dict, arms: list[str], digits: list[str]) -> str | None:
    if not digits:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    xs = [int(d.split("=")[1]) for d in digits]
    for arm in arms:
        vals, lo, hi = [], [], []
        for d in digits:
            e = metrics.get(f"{arm}/{d}") or {"value": float("nan"), "ci95": None}
            ci = e.get("ci95") or [e["value"], e["value"]]
            vals.append(e["value"])
            lo.append(max(0.0, e["value"] - ci[0]))
            hi.append(max(0.0, ci[1] - e["value"]))
        ax.errorbar(xs, vals, yerr=[lo, hi], marker="o", capsize=3, label=arm,
                    linestyle="-" if arm.endswith("+tools") else "--")
    ax.set_xticks(xs)
    ax.set_xlabel("digits per operand")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("world arithmetic: accuracy vs number size")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(run_dir / "accuracy_vs_digits.png", dpi=120)
    plt.close(fig)
    return "accuracy_vs_digits.png"


def _calls_word(calls: str | None) -> str:
    return {"chain": "one calculator call per operation, chained", "expression": "one calculator call per "
            "problem"}.get(calls or "", "calls as configured")


def _warmup_words(cfg: dict) -> str:
    n = cfg.get("seed_demos") or 0
    return (f"; the filter model first warmed up on {n} teacher-annotated texts, which train with their calls"
            if n else "")


def _grounding_words(cfg: dict) -> str:
    return (" With tools, a call's numbers had to be in the question or an earlier result (`ground_numbers`); "
            "`ungrounded_accuracy` is the same model with its calls decoded freely." if cfg.get("ground_numbers")
            else "")


def verdict_line(v: dict | None) -> str:
    if not v or not v.get("small_method"):
        return "Verdict: not computed."
    sm, lg = v["small_method"], v.get("large_best")
    if not lg:
        return f"Verdict: {sm['label']} {fmt(sm)}; no larger model was compared."
    d = v["diff_vs_larger"]
    word = {"yes": "beats", "no": "loses to", "tie": "ties with"}[v["beats_larger"]]
    return (f"**Verdict: small + tool {word} large** — {sm['label']} {fmt(sm)} vs {lg['label']} {fmt(lg)}; "
            f"difference {d['value']:+.3f} [{d['ci95'][0]:+.2f}, {d['ci95'][1]:+.2f}] (paired bootstrap, "
            f"n = {v['n']}).")


def write(run_dir: Path, results: dict) -> str:
    m = results["metrics"]
    arms = [a for a in ARM_ORDER if f"{a}/accuracy" in m]
    groups = sorted({k.split("/", 1)[1] for k in m if "=" in k.split("/", 1)[1]})
    digits = sorted((g for g in groups if g.startswith("digits=")), key=lambda g: int(g.split("=")[1]))
    ops = sorted((g for g in groups if g.startswith("ops=")), key=lambda g: int(g.split("=")[1]))
    tasks = [g for g in groups if g.startswith("task=")]
    plot = _plot(Path(run_dir), m, arms, digits)
    cfg = results.get("config", {})
    columns = ["accuracy", "ungrounded_accuracy", "all_tasks_accuracy", "calls_per_answer"]
    columns = [c for c in columns if any(f"{a}/{c}" in m for a in arms)]
    lines = [f"# Tool use (Toolformer-style): `{results['model']}` + tools vs `{results.get('compare_model')}`", "",
             verdict_line(results.get("verdict")), "",
             *[f"On the {task} questions: " + verdict_line(v).replace("**", "") + "\n"
               for task, v in (results.get("verdict_by_task") or {}).items()],
             f"Task: {results['task']}; {results.get('counts', {})} items. Candidate calls proposed by the "
             f"{results.get('teacher')} teacher ({_calls_word(cfg.get('calls'))}), kept by Toolformer's filter "
             f"(tau = {results.get('tau')}, insertion {cfg.get('insert')}{_warmup_words(cfg)}). Accuracy is the "
             "answer the model writes after its last call." + _grounding_words(cfg), "",
             "## The comparison (headline: arithmetic accuracy, 95% bootstrap CI)", "",
             grid_table(m, arms, columns, row_label="arm"), ""]
    if digits:
        lines += ["## By digits per operand", "", grid_table(m, arms, digits, row_label="arm"), ""]
    if plot:
        lines += [f"![accuracy vs digits]({plot})", ""]
    if ops:
        lines += ["## By operation count", "", grid_table(m, arms, ops, row_label="arm"), ""]
    if tasks:
        lines += ["## By task", "", grid_table(m, arms, tasks, row_label="arm"), ""]
    calls = results.get("calls") or {}
    if calls:
        lines += ["## Calls proposed, executed and kept (Toolformer's filter)", "",
                  "| scored by | tool | proposed | executed | kept |", "|---|---|---|---|---|"]
        for who, f in calls.items():
            for tool, s in sorted(f.get("per_tool", {}).items()):
                lines.append(f"| {who} | {tool} | {s['proposed']} | {s['executed']} | {s['kept']} |")
        kinds = {who: f.get("per_kind") for who, f in calls.items() if f.get("per_kind")}
        if kinds:
            lines += ["", "Kept share by kind of proposal (the answer call and a chain's earlier steps help; "
                      "the others should not):", "",
                      "| scored by | kind | proposed | kept | mean gain |", "|---|---|---|---|---|"]
            for who, per in kinds.items():
                for kind, s in sorted(per.items()):
                    gain = "–" if s.get("mean_gain") is None else f"{s['mean_gain']:+.2f}"
                    lines.append(f"| {who} | {kind} | {s['proposed']} | {s['kept']} | {gain} |")
        lines.append("")
    examples = results.get("examples") or {}
    if examples:
        lines += ["## Example outputs", ""]
        for arm, rows in examples.items():
            for r in rows[:2]:
                verdict = "right" if r["correct"] else "wrong"
                lines.append(f"- {arm}: `{r['output'].strip()[:140]}` ({verdict})")
        lines.append("")
    return "\n".join(lines)
