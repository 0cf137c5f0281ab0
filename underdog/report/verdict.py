"""The verdict page: small model + method against the larger model, one row per study, and one bar chart.

Each study's ``results.json`` carries a ``verdict`` entry (``underdog.eval.verdict``). This module reads those
entries from any set of run folders, writes the table and ``verdict.png``, and rebuilds every report
(``underdog report DIR ...``): a demo folder (its studies, then the demo's page), a single study run, or a
folder holding several runs. It reads nothing but ``results.json`` files and what the study reports read.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

from underdog import UnderdogError
from underdog.files import atomic_write_text
from underdog.report import fmt, read_results, write_report

ANSWER = {"yes": "**yes**", "no": "no", "tie": "tie (CI spans 0)", None: "–"}


def verdict_line(entry: dict | None) -> str:
    """One sentence of a verdict entry (empty when there is none)."""
    if not entry:
        return ""
    small, large, diff = entry["small_method"], entry.get("large_best"), entry.get("diff_vs_larger")
    text = f"verdict ({entry['metric']}): {small['label']} {small['value']:.3f}"
    if large and diff:
        text += (f" vs {large['label']} {large['value']:.3f}: difference {diff['value']:+.3f} "
                 f"[{diff['ci95'][0]:+.3f}, {diff['ci95'][1]:+.3f}]; small + method beats larger: "
                 f"{entry.get('beats_larger')}")
    return text


def verdict_table(rows: dict[str, dict | None]) -> str:
    """Markdown: study | metric | small + method | small without | larger, best method | difference | beats."""
    lines = ["| study | metric | small + method | small without it | larger, its best method | "
             "small + method − larger [95% CI] | beats larger |", "|---|---|---|---|---|---|---|"]
    for study, v in rows.items():
        if not v:
            lines.append(f"| {study} | – | – | – | – | – | no verdict in this run |")
            continue
        arm = {k: f"{v[k]['label']}: {fmt(v[k])}" if v.get(k) else "–"
               for k in ("small_method", "small_base", "large_best")}
        d = v.get("diff_vs_larger")
        diff = f"{d['value']:+.3f} [{d['ci95'][0]:+.3f}, {d['ci95'][1]:+.3f}]" if d else "–"
        lines.append(f"| {study} | {v['metric']} | {arm['small_method']} | {arm['small_base']} | "
                     f"{arm['large_best']} | {diff} | {ANSWER.get(v.get('beats_larger'), '–')} |")
    return "\n".join(lines)


def verdict_plot(rows: dict[str, dict | None], path: str | os.PathLike) -> None:
    """Grouped bars: per study, small without, small + method, larger (best), with 95% CIs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    studies = [s for s, v in rows.items() if v]
    roles = [("small_base", "small, without the method", "#bbbbbb"), ("small_method", "small + method", "#2b7bba"),
             ("large_best", "larger, its best method", "#e08214")]
    fig, ax = plt.subplots(figsize=(min(8, 2 + 1.6 * len(studies)), 4.2))
    x = np.arange(len(studies))
    width = 0.26
    for k, (role, label, color) in enumerate(roles):
        vals, err = [], [[], []]
        for s in studies:
            a = rows[s].get(role)
            v = a["value"] if a else np.nan
            lo, hi = (a.get("ci95") or [v, v]) if a else (np.nan, np.nan)
            vals.append(v)
            err[0].append(max(0.0, v - lo) if a else 0)
            err[1].append(max(0.0, hi - v) if a else 0)
        ax.bar(x + (k - 1) * width, vals, width, yerr=err, capsize=2, label=label, color=color)
    ax.set_xticks(x)
    ax.set_xticklabels([s + "\n" + textwrap.fill(rows[s]["metric"], 16) for s in studies], fontsize=7)
    ax.set_ylim(0, 1.0)
    ax.set_ylabel("headline metric")
    ax.set_title("Small model + method vs larger model", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def verdict_page(rows: dict[str, dict | None], out_dir: str | os.PathLike, title: str = "Verdict") -> str:
    """The verdict section (table, bar chart written to ``out_dir/verdict.png``) as Markdown."""
    text = (f"# {title}\n\nFor each study: the small model with the method, the same model without it, and the "
            "larger model with its best method, on the study's headline metric, over the same questions. The "
            "difference is bootstrapped paired (the same resampled questions for both); *yes* when its 95% CI "
            "lies above zero, *no* when below, *tie* otherwise.\n\n" + verdict_table(rows) + "\n")
    if any(rows.values()):
        verdict_plot(rows, Path(out_dir) / "verdict.png")
        text += "\n![verdict](verdict.png)\n"
    return text


def _link_images(text: str, sub: str) -> str:
    """A sub-run's report included in its parent's page: image links point into the sub-folder, headings
    go one level down."""
    return text.replace("](", f"]({sub}/").replace("\n#", "\n##").replace("# ", "## ", 1)


def _study_dirs(results: dict, run_dir: Path) -> dict[str, Path]:
    """Each study's run folder: where the demo's results.json says, or ``run_dir/<study>`` when the demo folder
    was moved since."""
    out = {}
    for study, path in (results.get("studies") or {}).items():
        recorded = Path(path).parent
        out[study] = recorded if (recorded / "results.json").is_file() else run_dir / study
    return out


def write_demo_report(run_dir: str | os.PathLike, results: dict | None = None, rebuild: bool = True) -> str:
    """A demo folder's report.md: the verdict page, then every study's report (rebuilt from its results.json,
    or, with ``rebuild=False``, the report.md its run has just written)."""
    run_dir = Path(run_dir)
    results = results or read_results(run_dir)
    studies = {s: d for s, d in _study_dirs(results, run_dir).items() if (d / "results.json").is_file()}
    reports = {s: write_report(d) if rebuild or not (d / "report.md").is_file() else (d / "report.md").read_text()
               for s, d in studies.items()}
    rows = {s: read_results(d).get("verdict") for s, d in studies.items()}
    env = results.get("env", {})
    head = (f"Model `{results.get('model')}`; {len(studies)} studies ran offline on {env.get('device', '?')} in "
            f"{results.get('wall_seconds', 0):.0f} s.\n\n")
    page = verdict_page(rows, run_dir, title="underdog demo: the verdict")
    page = page.replace("\n\nFor each study", "\n\n" + head + "For each study", 1)
    parts = [page] + [_link_images(text, s) for s, text in reports.items()]
    text = "\n".join(parts)
    atomic_write_text(run_dir / "report.md", text)
    return text


def _report_of_file(path: Path) -> Path:
    """``underdog report FILE.json``: an lm-eval results file (or a results.json) -> ``<stem>.report.md``
    beside it."""
    import json

    from underdog.report import study_report
    from underdog.report.lmeval import from_lm_eval, is_lm_eval

    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UnderdogError(f"{path}: not a readable JSON results file ({e})") from None
    results = from_lm_eval(obj) if is_lm_eval(obj) else obj
    if not isinstance(results, dict) or "metrics" not in results:
        raise UnderdogError(f"{path}: neither an underdog results.json nor an lm-evaluation-harness results file")
    out = path.with_name(f"{path.stem}.report.md")
    atomic_write_text(out, study_report(path.parent, results))
    return out


def rebuild_reports(paths: list[str]) -> list[Path]:
    """``underdog report``: rebuild the reports of every run under ``paths``; returns the report files."""
    written: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():  # an lm-evaluation-harness results file (or an underdog results.json) by itself
            written.append(_report_of_file(path))
        elif (path / "results.json").is_file():
            results = read_results(path)
            if results.get("method") == "demo":
                write_demo_report(path, results)
            else:
                write_report(path)
            written.append(path / "report.md")
        elif path.is_dir() and any(path.glob("*/results.json")):
            runs = sorted(p.parent for p in path.glob("*/results.json"))
            rows = {}
            for d in runs:
                res = read_results(d)
                write_demo_report(d, res) if res.get("method") == "demo" else write_report(d)
                rows[f"{res.get('method')} ({d.name})"] = res.get("verdict")
            text = verdict_page(rows, path) + "\n" + "\n".join(f"- [{d.name}]({d.name}/report.md)" for d in runs) + "\n"
            atomic_write_text(path / "report.md", text)
            written.append(path / "report.md")
        else:
            raise UnderdogError(f"{path}: no results.json here or in its sub-folders")
    return written
