"""The generalization study's report: accuracy by method and split, by knowledge kind, and the augmentations
the model wrote, from ``results.json`` alone (runs made before the verdict existed included)."""

from __future__ import annotations

from pathlib import Path

from underdog.report import grid_table, grouped_bars
from underdog.report.verdict import verdict_line

SPLITS = ("forward", "rephrasing", "reversal", "syllogism", "holdout", "two_hop")


def kind_table(by_kind: dict) -> str:
    """Markdown table of ``"<split>:<kind>/<method>"`` accuracies, rows in split order, with question counts."""
    n: dict[str, int] = {}
    methods: list[str] = []
    for key, entry in by_kind.items():
        cell, method = key.rsplit("/", 1)
        n[cell] = max(n.get(cell, 0), int(entry.get("n", 0)))
        if method not in methods:
            methods.append(method)
    order = {s: i for i, s in enumerate(SPLITS)}
    rows = sorted(n, key=lambda r: (order.get(r.split(":")[0], len(order)), r))
    return grid_table(by_kind, rows, methods, row_label="split:kind (questions)",
                      shown_as={r: f"{r} ({n[r]})" for r in rows})


def augmentation_report(summaries: dict) -> str:
    if not summaries:
        return ""
    lines = ["\n## Augmentations written by the model\n",
             "| kind | prompts | kept | dropped (reason: count) | true (checked against the world) |",
             "|---|---|---|---|---|"]
    for kind, s in summaries.items():
        c = dict(s["counts"])
        generated, kept = c.pop("generated"), c.pop("kept", 0)
        truth = s["truth"] or {}
        true = f"{truth['true_fraction']:.0%}" if truth.get("true_fraction") is not None else "unknown"
        lines.append(f"| {kind} | {generated} | {kept} | {', '.join(f'{k}: {v}' for k, v in c.items()) or '–'} "
                     f"| {true} |")
    for kind, s in summaries.items():
        lines.append(f"\nSample ({kind}; file `{s['file']}`):\n")
        lines += [f"- {a['source']} → **{a['text']}**" + ("" if "true" not in a else (" ✓" if a["true"] else " ✗"))
                  for a in s["sample"]]
    return "\n".join(lines) + "\n"


def write(run_dir: Path, results: dict) -> str:
    metrics, model = results["metrics"], results.get("model")
    splits = [s for s in SPLITS if any(k.endswith(f"/{s}") for k in metrics)]
    arms = list(dict.fromkeys(k.rsplit("/", 1)[0] for k in metrics))
    grouped_bars(metrics, splits, arms, run_dir / "generalization.png", title=f"Generalization by split ({model})",
                 chance=0.25)
    ctx = results.get("icl_context")
    ctx_line = (f"\nICL prompts ({ctx['mode']}): budget {ctx['budget_tokens']} tokens, on average "
                f"{ctx['mean_in_context']:.1f} of {ctx['in_world']} {ctx['unit']} ({ctx['mean_tokens']:.0f} tokens; "
                f"{ctx['note']}).\n") if ctx else ""
    params = (results.get("model_info") or {}).get("parameters")
    line = verdict_line(results.get("verdict"))
    by_kind = results.get("by_kind") or {}
    return (f"# Generalization study\n\nModel `{model}`" + (f" ({params:,} parameters)" if params else "")
            + f"; world {results.get('world')}; questions per split: {results.get('questions_per_split')}. "
            "Accuracy with 95% bootstrap CI; 4 choices, chance 0.25."
            + (" Rows `M:method` are the larger model M.\n\n" if any(":" in a for a in arms) else "\n\n")
            + (f"{line}\n\n" if line else "")
            + f"{grid_table(metrics, arms, splits)}\n{ctx_line}\n![accuracy by split](generalization.png)\n"
            + (f"\n## By knowledge kind\n\n{kind_table(by_kind)}\n" if by_kind else "")
            + augmentation_report(results.get("augmentations") or {}))
