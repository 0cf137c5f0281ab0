"""Report of `underdog scale` (and of `underdog scale fit`): tables and PNG plots from results.json alone.

Plots, at the top of the run folder: ``scale_<task>.png`` (each task's discontinuous metric and its continuous
ones against training FLOPs on a log axis, side by side; a line joins the checkpoints of one trained size,
shipped models are stars), ``scale_law.png`` (loss against N and against D with the fitted law),
``scale_frontier.png`` (the compute-optimal N and D of the fitted law against compute) and
``scale_prompting.png`` (the k-shot gain over zero-shot, and chain of thought's over k-shot, against compute).
The text names the tasks that look emergent under the discontinuous metric, with their sharpness numbers, and
says whether the continuous metrics of those tasks are smooth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from underdog.report import fmt

WIDTH = 8.0
DPI = 120
LABELS = {"accuracy": "MC accuracy", "exact_match": "exact match", "logprob": "log p(answer)", "brier": "Brier",
          "token_accuracy": "per-token accuracy", "token_prob": "per-token prob", "token_edit_distance":
          "token edit distance"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _g(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x:.3g}"


def _series(family: list[dict]) -> dict[str, list[int]]:
    """Indices of the points of each trained size (joined by a line) and of each other model (alone)."""
    out: dict[str, list[int]] = {}
    for i, p in enumerate(family):
        out.setdefault(p["size"] or p["id"], []).append(i)
    return out


def _plot_metric(ax, family: list[dict], task: str, name: str, chance: float | None = None) -> None:
    for key, idx in _series(family).items():
        xs = [family[i]["train_flops"] for i in idx]
        ys = [family[i]["metrics"].get(task, {}).get(name, {}).get("value", np.nan) for i in idx]
        shipped = family[idx[0]]["source"] == "shipped"
        ax.plot(xs, ys, marker="*" if shipped else "o", markersize=9 if shipped else 4, linewidth=1, label=key)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_title(LABELS.get(name, name), fontsize=9)
    ax.tick_params(labelsize=7)


def _task_plot(run_dir: Path, family: list[dict], task: str, names: list[str], pl: dict | None) -> str:
    plt = _plt()
    fig, axes = plt.subplots(1, len(names), figsize=(WIDTH, 2.8))
    for ax, name in zip(axes, names):
        chance = 0.25 if name == "accuracy" else 0.0 if name == "exact_match" else None
        _plot_metric(ax, family, task, name, chance)
        ax.set_xlabel("training FLOPs (6ND)", fontsize=7)
    if pl and task == "names":
        axes[0].plot([p["train_flops"] for p in family], pl["predicted"], "k:", linewidth=1, label="p^L")
        axes[0].set_title("exact match (dotted: p^L)", fontsize=9)
    axes[-1].legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(f"{task}: discontinuous (left) vs continuous metrics", fontsize=9)
    fig.tight_layout()
    path = f"scale_{task.replace('/', '_')}.png"
    fig.savefig(run_dir / path, dpi=DPI)
    plt.close(fig)
    return path


def _law_plot(run_dir: Path, law: dict, pts: list[dict]) -> str:
    plt = _plt()
    fit = law["fit"]

    def f(n, d):
        return fit["E"] + fit["A"] / np.power(n, fit["alpha"]) + fit["B"] / np.power(d, fit["beta"])

    n = np.array([p["params"] for p in pts])
    d = np.array([p["tokens"] for p in pts])
    lo = np.array([p["loss"] for p in pts])
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(WIDTH, 3.2))
    grid_n, grid_d = np.geomspace(n.min() / 2, n.max() * 4, 50), np.geomspace(d.min() / 2, d.max() * 4, 50)
    for dd in sorted(set(d))[:: max(1, len(set(d)) // 4)]:
        sel = d == dd
        line, = a1.plot(grid_n, f(grid_n, dd), linewidth=1)
        a1.scatter(n[sel], lo[sel], s=12, color=line.get_color(), label=f"D={dd:.3g}")
    for nn in sorted(set(n))[:: max(1, len(set(n)) // 4)]:
        sel = n == nn
        line, = a2.plot(grid_d, f(nn, grid_d), linewidth=1)
        a2.scatter(d[sel], lo[sel], s=12, color=line.get_color(), label=f"N={nn:.3g}")
    for ax, xl in ((a1, f"N ({law.get('params_used', '')} parameters)"), (a2, "D (training tokens)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xl, fontsize=8)
        ax.set_ylabel("loss", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.suptitle("loss and the fitted law E + A/N^alpha + B/D^beta", fontsize=9)
    fig.tight_layout()
    fig.savefig(run_dir / "scale_law.png", dpi=DPI)
    plt.close(fig)
    return "scale_law.png"


def _frontier_plot(run_dir: Path, law: dict, pts: list[dict]) -> str:
    if not law["frontier"]:
        return ""
    plt = _plt()
    fr = law["frontier"]
    c = [x["compute"] for x in fr]
    fig, ax = plt.subplots(figsize=(WIDTH * 0.75, 3.2))
    ax.plot(c, [x["params"] for x in fr], label="optimal N")
    ax.plot(c, [x["tokens"] for x in fr], label="optimal D")
    ax.scatter([6 * p["params"] * p["tokens"] for p in pts], [p["params"] for p in pts], s=10, color="gray",
               label="runs (N)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training FLOPs C = 6ND", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("compute-optimal frontier of the fitted law", fontsize=9)
    fig.tight_layout()
    fig.savefig(run_dir / "scale_frontier.png", dpi=DPI)
    plt.close(fig)
    return "scale_frontier.png"


def _prompting_plot(run_dir: Path, prompting: dict, shots: int) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(WIDTH * 0.75, 3.0))
    for split, rows in prompting.items():
        ax.plot([r["compute"] for r in rows], [r["gain"] for r in rows], marker="o", markersize=3, label=split)
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("training FLOPs", fontsize=8)
    ax.set_ylabel(f"accuracy gain: {shots}-shot - 0-shot;\nCoT: {shots}-shot CoT - {shots}-shot", fontsize=7)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(run_dir / "scale_prompting.png", dpi=DPI)
    plt.close(fig)
    return "scale_prompting.png"


def _image(alt: str, path: str) -> str:
    return f"![{alt}]({path})" if path else ""


def _law_text(law: dict) -> list[str]:
    fit = law["fit"]
    ci = fit.get("ci95") or {}
    lines = [f"## Scaling law (Chinchilla's form; N = {law.get('params_used')} parameters, {law['points']} points)",
             "", "| parameter | value | 95% CI (bootstrap) |", "|---|---|---|"]
    for k in ("E", "A", "B", "alpha", "beta"):
        c = ci.get(k)
        lines.append(f"| {k} | {fit[k]:.4g} | " + (f"[{c[0]:.4g}, {c[1]:.4g}]" if c else "–") + " |")
    if "holdout" in law:
        h = law["holdout"]["headline"]
        lines += ["", f"Leave-largest-out: fitted without the largest model, the law predicts its loss at "
                  f"N={h['params']:.3g}, D={h['tokens']:.3g} as {h['predicted']:.4f}; observed {h['observed']:.4f} "
                  f"(error {100 * h['rel_error']:+.1f}%)."]
    if not law["frontier"]:
        return lines + ["", f"No compute-optimal frontier: {law.get('frontier_note', 'degenerate law')}."]
    lines += ["", "| compute C | optimal N | optimal D | predicted loss |", "|---|---|---|---|"]
    lines += [f"| {x['compute']:.3g} | {x['params']:.3g} | {x['tokens']:.3g} | {x['loss']:.4f} |"
              for x in law["frontier"]]
    return lines


def _emergence_text(emergence: dict) -> list[str]:
    lines = ["## Emergence: sharp vs smooth", "",
             "Sharpness = the largest rise between neighbouring scales / the whole range (1 = all in one step); "
             "R^2 of a line in log-compute; a curve looks emergent when it rises >= 0.1 (discontinuous metrics), "
             "sharpness >= 0.5 and R^2 < 0.9.", "",
             "| task | metric | kind | sharpness | R^2 (log-linear) | rise | looks emergent | first above chance "
             "[95% CI of its compute] |", "|---|---|---|---|---|---|---|---|"]
    for task, cells in emergence.items():
        for name, e in cells.items():
            if name == "summary":
                continue
            fa = e.get("first_above_chance")
            first = "–" if fa is None else (f"{fa['model']} ({_g(fa['compute'])}) [{_g(fa['ci95'][0])}, "
                                            f"{_g(fa['ci95'][1]) if fa['ci95'][1] is not None else 'beyond'}]"
                                            if fa["model"] else "never")
            lines.append(f"| {task} | {LABELS.get(name, name)} | {e['kind']} | {e['sharpness']:.2f} | "
                         f"{_g(e['r2_log_linear'])} | {e['rise']:+.3f} | {e['emergent']} | {first} |")
    emergent = [t for t, c in emergence.items() if c["summary"]["emergent_discontinuous"] == "yes"]
    lines.append("")

    def disc(c: dict) -> dict:
        return c.get("accuracy") or c.get("exact_match")

    unresolved = [t for t, c in emergence.items() if c["summary"]["emergent_discontinuous"].startswith("unres")]
    if unresolved:
        lines.append("**Finding:** " + ", ".join(
            f"{t} (sharpness {disc(emergence[t])['sharpness']:.2f}, rise {disc(emergence[t])['rise']:+.3f}, the jump "
            f"spans {100 * disc(emergence[t])['jump_span']:.0f}% of the log-compute range)" for t in unresolved)
            + " jump only across a gap in compute, where no model was measured: sharp-looking, but unresolved.")
    if not emergent:
        rises = ", ".join(f"{t} {disc(c)['rise']:+.3f} (sharpness {disc(c)['sharpness']:.2f})"
                          for t, c in emergence.items())
        lines.append(f"**Finding:** no task looks emergent (resolved) under its discontinuous metric (rise and "
                     f"sharpness: {rises}).")
    for t in emergent:
        c = emergence[t]
        disc = c.get("accuracy") or c.get("exact_match")
        cont = [n for n, e in c.items() if n != "summary" and e["kind"] == "continuous"]
        smooth = c["summary"]["smooth_continuous"]
        verdict = ("all smooth" if len(smooth) == len(cont) else
                   f"smooth: {', '.join(LABELS.get(n, n) for n in smooth) or 'none'}; still sharp: "
                   f"{', '.join(LABELS.get(n, n) for n in cont if n not in smooth)}")
        lines.append(f"**Finding:** {t} looks emergent under its discontinuous metric (sharpness "
                     f"{disc['sharpness']:.2f}, R^2 {_g(disc['r2_log_linear'])}, rise {disc['rise']:+.3f}); its "
                     f"continuous metrics: {verdict} (" + ", ".join(
                         f"{LABELS.get(n, n)} sharpness {c[n]['sharpness']:.2f}, R^2 {_g(c[n]['r2_log_linear'])}"
                         for n in cont) + ").")
    return lines


def _fit_only(run_dir: Path, results: dict) -> str:
    law = results["law"]
    pts = results.get("fit_points", [])
    lines = [f"# Scaling-law fit\n\n{results.get('task')}.\n", *_law_text({**law, "points": len(pts)})]
    if results.get("predict"):
        lines += ["", f"Predicted loss at N={results['predict'][0]:.4g}, D={results['predict'][1]:.4g}: "
                  f"{fmt(results['metrics'].get('fit/predicted_loss'))}."]
    if pts:
        lines += ["", _image("law", _law_plot(run_dir, law, pts)),
                  _image("frontier", _frontier_plot(run_dir, law, pts))]
    return "\n".join(lines) + "\n"


def _schedule_note(config: dict) -> str:
    """How the trained checkpoints were taken (nothing for a user's family)."""
    if config.get("models") or not config.get("sizes"):
        return ""
    cool = config.get("cooldown") or 0
    if cool:
        return (f" Each trained checkpoint is annealed: a branch of its size's constant-rate run whose learning rate "
                f"decays linearly to 0 over the budget's last {100 * cool:.0f}% of steps.")
    return " Trained checkpoints are taken from each size's constant-rate run as it passes the budget."


def write(run_dir: Path, results: dict) -> str:
    run_dir = Path(run_dir)
    if "family" not in results:
        return _fit_only(run_dir, results)
    fam = results["family"]
    tasks = results["tasks"]
    lines = [f"# Emergence and scaling\n\n{results.get('task')}. Every model answers the same questions; "
             f"prompts hold the retrieved knowledge ({results.get('icl_budget')} tokens). Training FLOPs C = 6 N D "
             f"with N = {(results.get('config') or {}).get('fit_params', 'non_embedding')} parameters." +
             _schedule_note(results.get("config") or {}), "",
             "## The family", "", "| model | source | N (non-embedding) | N (total) | D (tokens) | C (train FLOPs) | "
             "eval FLOPs | loss | in law fit |", "|---|---|---|---|---|---|---|---|---|"]
    for p in fam:
        lines.append(f"| {p['id']} | {p['source']} | {p['params_non_embedding']:,} | {p['params_total']:,} | "
                     f"{p['tokens']:,} | {p['train_flops']:.3g} | {p['eval_flops']:.3g} | {p['loss']:.4f} | "
                     f"{'yes' if p['in_fit'] else 'no'} |")
    mc_tasks = [f"{s}/0-shot" for s in tasks["mc"]]
    lines += ["", "## Scores (0-shot, knowledge in context)", "",
              "| model | " + " | ".join(f"{t.split('/')[0]} acc | {t.split('/')[0]} log p" for t in mc_tasks)
              + " | names EM | names per-token acc |", "|---" * (2 * len(mc_tasks) + 3) + "|"]
    for p in fam:
        m = p["metrics"]
        cells = [f"{fmt(m.get(t, {}).get('accuracy'))} | {_g(m.get(t, {}).get('logprob', {}).get('value'))}"
                 for t in mc_tasks]
        names = m.get("names", {})
        lines.append(f"| {p['id']} | " + " | ".join(cells) + f" | {fmt(names.get('exact_match'))} | "
                     f"{fmt(names.get('token_accuracy'))} |")
    plots = []
    for t in mc_tasks:
        plots.append(_task_plot(run_dir, fam, t, ["accuracy", "logprob", "brier"], None))
    if "names" in results["emergence"]:
        plots.append(_task_plot(run_dir, fam, "names", ["exact_match", "token_accuracy", "token_prob",
                                                        "token_edit_distance"], results.get("pl_check")))
    lines += ["", *_emergence_text(results["emergence"]), ""] + [f"![{p}]({p})" for p in plots]
    own = results.get("emergence_own_family")
    if own:
        lines += ["", "### The same analysis on the models in the law fit only (one recipe, one data stream)", "",
                  *_emergence_text(own)[4:]]
    pl = results.get("pl_check")
    if pl:
        lines += ["", "## Exact match vs p^L (Schaeffer et al.)", "",
                  f"Names task, mean answer length {pl['mean_length']:.2f} tokens. Predicted EM = mean over questions "
                  f"of p^L (p: per-token probability of the answer, teacher-forced). Mean |observed - predicted| = "
                  f"{pl['mean_abs_gap']:.3f}; correlation over the family = {_g(pl['correlation'])}.", "",
                  "| model | observed EM | p^L |", "|---|---|---|"]
        lines += [f"| {i} | {o:.3f} | {q:.3f} |" for i, o, q in zip(pl["ids"], pl["observed"], pl["predicted"])]
    lines += ["", f"## Prompting across scale ({tasks['shots']}-shot minus 0-shot accuracy; CoT columns: "
              f"{tasks['shots']}-shot chain of thought, the model writing the steps, minus {tasks['shots']}-shot)", "",
              "| model | " + " | ".join(results["prompting"]) + " |", "|---" * (len(results["prompting"]) + 1) + "|"]
    for i, p in enumerate(fam):
        lines.append(f"| {p['id']} | " + " | ".join(
            f"{rows[i]['gain']:+.3f} [{rows[i]['ci95'][0]:+.2f}, {rows[i]['ci95'][1]:+.2f}]"
            for rows in results["prompting"].values()) + " |")
    lines += ["", f"![prompting]({_prompting_plot(run_dir, results['prompting'], tasks['shots'])})", ""]
    law = results.get("law") or {}
    if "fit" in law:
        key = "params_" + law["params_used"]
        pts = [{"params": p[key], "tokens": p["tokens"], "loss": p["loss"]} for p in fam if p["in_fit"]]
        lines += _law_text(law)
        lines += ["", _image("law", _law_plot(run_dir, law, pts)),
                  _image("frontier", _frontier_plot(run_dir, law, pts))]
    elif law:
        lines += ["## Scaling law", "", f"Not fitted: {law.get('skipped')}."]
    v = results.get("verdict")
    if v:
        lines += ["", "## Verdict", "", f"{v['small_method']['label']}: {fmt(v['small_method'])}; "
                  f"{v['small_base']['label']}: {fmt(v['small_base'])}; {v['large_best']['label']}: "
                  f"{fmt(v['large_best'])}. Beats the larger model: {v['beats_larger']}."]
    return "\n".join(lines) + "\n"
