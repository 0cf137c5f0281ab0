"""`underdog report` on runs written before the verdict, curves and calibration joined results.json: the
reports are rebuilt from what those runs hold (ASPIRE's plot from its answers.jsonl), with no verdict row."""

from __future__ import annotations

import json

from underdog.cli import main


def _old_aspire_run(root):
    rows = [{"id": f"q{i}", "answer": "x", "correct": i % 3 == 0, "perplexity": -0.1 * i, "judge": -0.05 * i,
             "ptrue": -0.7, "selfeval": -0.6, "predictive_entropy": -1.0, "semantic_entropy": -0.5}
            for i in range(12)]
    (root / "answers.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = {f"{m}/{k}": {"value": 0.5, "ci95": [0.3, 0.7]} for m in ("aspire", "perplexity")
               for k in ("accuracy", "auroc", "auacc")}
    results = {"method": "aspire", "model": "builtin", "task": "world-qa", "metrics": metrics, "n_test": 12,
               "config": {"gamma": 0.7, "tune": {"adapter": "prompt"}, "selfeval": {"soft_tokens": 16}},
               "summary": {"alpha": 0.25, "best_baseline": "perplexity"}, "per_split": None}
    (root / "results.json").write_text(json.dumps(results))


def _old_generalization_run(root):
    metrics = {f"{m}/{s}": {"value": 0.6, "ci95": [0.5, 0.7]} for m in ("none", "icl") for s in ("forward", "reversal")}
    results = {"method": "generalization", "model": "builtin", "task": "world", "metrics": metrics,
               "world": {"seed": 7}, "questions_per_split": {"forward": 10, "reversal": 10},
               "by_kind": {"forward:family/icl": {"value": 0.6, "ci95": [0.5, 0.7], "n": 10}},
               "augmentations": {}, "icl_context": None}
    (root / "results.json").write_text(json.dumps(results))


def test_report_rebuilds_runs_made_before_the_verdict(tmp_path):
    runs = tmp_path / "runs"
    (runs / "aspire").mkdir(parents=True)
    (runs / "generalization").mkdir()
    _old_aspire_run(runs / "aspire")
    _old_generalization_run(runs / "generalization")
    assert main(["report", str(runs / "aspire"), str(runs / "generalization")]) == 0
    aspire = (runs / "aspire" / "report.md").read_text()
    assert aspire.startswith("# ASPIRE") and "accuracy_coverage.png" in aspire
    assert (runs / "aspire" / "accuracy_coverage.png").stat().st_size > 1000
    assert "| icl | 0.600 [0.50, 0.70] |" in (runs / "generalization" / "report.md").read_text()
    assert main(["report", str(runs)]) == 0  # the set of runs: a verdict page saying no verdict was recorded
    page = (runs / "report.md").read_text()
    assert page.count("no verdict in this run") == 2 and "[aspire](aspire/report.md)" in page
