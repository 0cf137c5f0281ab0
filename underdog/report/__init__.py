"""Reports: results.json -> Markdown tables and PNG plots (matplotlib, Agg backend).

Every study writes ``results.json`` first; the report is derived from it, so ``underdog report DIR`` can
rebuild ``report.md`` and the plots at any time without recomputing anything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence


def fmt(entry: dict | None) -> str:
    if not entry:
        return "–"
    ci = entry.get("ci95")
    if ci and None not in ci:
        return f"{entry['value']:.3f} [{ci[0]:.2f}, {ci[1]:.2f}]"
    return f"{entry['value']:.3f}"


def grid_table(metrics: dict, rows: Sequence[str], cols: Sequence[str], row_label: str = "method",
               shown_as: Mapping[str, str] | None = None) -> str:
    """Markdown table of ``metrics["<row>/<col>"]`` (value and 95% CI); ``shown_as`` renames rows on display."""
    shown_as = shown_as or {}
    lines = [f"| {row_label} | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        lines.append(f"| {shown_as.get(r, r)} | " + " | ".join(fmt(metrics.get(f"{r}/{c}")) for c in cols) + " |")
    return "\n".join(lines)


def grouped_bars(metrics: dict, groups: Sequence[str], series: Sequence[str], path: str | os.PathLike,
                 title: str = "", chance: float | None = None, ylabel: str = "accuracy") -> None:
    """Grouped bar chart: one group per ``groups`` entry (x axis), one bar per ``series`` entry, with 95% CI
    error bars from ``metrics["<series>/<group>"]`` and an optional chance line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    x = np.arange(len(groups))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups) * max(1, len(series)) / 2), 4))
    for k, s in enumerate(series):
        vals, lo, hi = [], [], []
        for g in groups:
            e = metrics.get(f"{s}/{g}") or {"value": np.nan, "ci95": None}
            v = e["value"]
            ci = e.get("ci95") or [v, v]
            vals.append(v)
            lo.append(max(0.0, v - ci[0]) if ci[0] is not None else 0)
            hi.append(max(0.0, ci[1] - v) if ci[1] is not None else 0)
        ax.bar(x + (k - (len(series) - 1) / 2) * width, vals, width, yerr=[lo, hi], capsize=2, label=s)
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label=f"chance ({chance:.2f})")
    ax.set_xticks(x)
    ax.set_xticklabels(groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, ncol=min(4, len(series) + 1), loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
