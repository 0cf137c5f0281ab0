"""The explanation-tuning study's report: accuracy of every variant by group and category, the strategy chosen
per category with its evidence, samples, the verdict and a bar plot, from ``results.json`` alone."""

from __future__ import annotations

from pathlib import Path

from underdog.report import fmt, grid_table, grouped_bars
from underdog.report.verdict import verdict_line


def write(run_dir: Path, results: dict) -> str:
    cfg, metrics = results.get("config", {}), results["metrics"]
    plot = {k.rsplit("/", 1)[0]: v for k, v in metrics.items() if k.endswith("/accuracy")}
    variants = results.get("variants") or list(dict.fromkeys(k.split("/", 1)[0] for k in plot))
    names = list(dict.fromkeys(k.split("/", 1)[1] for k in plot))
    groups = results.get("groups") or [n for n in names if n in ("multi_step", "one_step")]
    categories = results.get("categories") or [n for n in names if n not in groups]
    student, teacher = cfg.get("student", results.get("model")), cfg.get("teacher")
    grouped_bars(plot, groups + categories, variants, run_dir / "explain.png",
                 title=f"Explanation tuning: student {student}, teacher {teacher}")
    selection, samples = results.get("selection") or {}, results.get("samples") or {}
    n_test = (results.get("items_per_split") or {}).get("test")
    compute = sum((results.get("stage_seconds") or {}).values())
    line = verdict_line(results.get("verdict"))
    lines = ["# Explanation tuning (Orca 2)\n", f"Student `{student}`, teacher `{teacher}`, tasks "
             f"`{cfg.get('tasks')}` (seed {cfg.get('seed')}); {n_test} held-out questions. Accuracy of the final "
             f"answer in free text, with 95% bootstrap CI; the stages took {compute:.0f}s of compute in all.\n",
             "Variants: `base` (untuned student), `answers` (tuned on the teacher's final answers), `explanations` "
             "(tuned on the teacher's explanations under a generic system message: prompt erasure), `teacher`"
             + (f", `{cfg.get('compare_model')}:base` (the larger model, untuned)" if cfg.get("compare_model") else "")
             + ".\n", *([line + "\n"] if line else []),
             grid_table(plot, variants, groups, row_label="variant"), "",
             grid_table(plot, variants, categories, row_label="variant"), "", "![accuracy](explain.png)\n"]
    if selection:
        lines.append(f"## Strategy per category (cautious reasoning, chosen by: {selection.get('by')})\n")
        evidence = selection.get("evidence") or {}
        strategies = list(dict.fromkeys(s for row in evidence.values() for s in row)) or cfg.get("strategies", [])
        lines += ["| category | chosen | " + " | ".join(strategies) + " |", "|---" * (len(strategies) + 2) + "|"]
        for c, chosen in selection.get("choice", {}).items():
            lines.append(f"| {c} | **{chosen}** | "
                         + " | ".join(fmt(evidence.get(c, {}).get(s)) for s in strategies) + " |")
    if samples:
        lines.append("\n## Samples (explanation-tuned student)\n")
        for c, s in samples.items():
            lines.append(f"- **{c}** (answer {s['answer']}): {s['student']!r}")
    return "\n".join(lines) + "\n"
