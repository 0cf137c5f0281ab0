"""Reports: results.json -> Markdown tables and PNG plots (matplotlib, Agg backend).

Every study writes ``results.json`` first; the report is derived from it, so ``underdog report DIR`` can
rebuild ``report.md`` and the plots at any time without recomputing anything.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from underdog import UnderdogError
from underdog.files import atomic_write_json, atomic_write_text


def fmt(entry: dict | None) -> str:
    """``0.812 [0.78, 0.84]``; "–" for no entry, "n/a" for a value that is not defined (NaN, stored as null)."""
    if not entry:
        return "–"
    if entry.get("value") is None or entry["value"] != entry["value"]:
        return "n/a"
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
    fig, ax = plt.subplots(figsize=(8, 4))  # page width: 960 px at dpi 120
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
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else "center",
                       fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the axes, over no bar
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def metrics_table(metrics: dict) -> str:
    """Every metric of a results.json as a two-column Markdown table (the report of a study with no module)."""
    lines = ["| metric | value [95% CI] |", "|---|---|"]
    lines += [f"| {name} | {fmt(entry)} |" for name, entry in metrics.items()]
    return "\n".join(lines)


def read_results(run_dir: str | os.PathLike) -> dict:
    path = Path(run_dir) / "results.json"
    if not path.is_file():
        raise UnderdogError(f"{run_dir}: no results.json (not a finished underdog run)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UnderdogError(f"{path}: not valid JSON ({e})") from None


def study_report(run_dir: str | os.PathLike, results: dict) -> str:
    """The Markdown report of one study run, from its results.json: ``underdog.report.<method>.write(run_dir,
    results)`` when that module exists (it may also draw PNG plots into ``run_dir``), else a metrics table."""
    method = str(results.get("method", ""))
    try:
        module = importlib.import_module(f"underdog.report.{method}") if method.isidentifier() else None
    except ModuleNotFoundError as e:
        if e.name != f"underdog.report.{method}":
            raise
        module = None
    if module is not None:
        return module.write(Path(run_dir), results)
    from underdog.report.verdict import verdict_line

    line = verdict_line(results.get("verdict"))
    return (f"# {method or 'run'}\n\nModel `{results.get('model')}`; task {results.get('task')}.\n\n"
            + (f"{line}\n\n" if line else "") + metrics_table(results.get("metrics", {})) + "\n")


def write_report(run_dir: str | os.PathLike) -> str:
    """Rebuild ``run_dir/report.md`` (and the plots) from ``run_dir/results.json`` alone, and export the
    results in lm-evaluation-harness's layout to ``results_lm_eval.json``; returns the report's text."""
    from underdog.report.lmeval import to_lm_eval

    results = read_results(run_dir)
    text = study_report(run_dir, results)
    atomic_write_text(Path(run_dir) / "report.md", text)
    atomic_write_json(Path(run_dir) / "results_lm_eval.json", to_lm_eval(results))
    return text
