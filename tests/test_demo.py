"""`underdog demo` end to end on a tiny model built in code: all three studies run and land in one report."""

from __future__ import annotations

import json

from underdog.demo import run_demo


def test_demo_runs_every_study_and_writes_one_report(llama_dir, tmp_path):
    logs: list[str] = []
    results = run_demo(str(tmp_path / "demo"), model=str(llama_dir), seed=5, quick=True, log=logs.append)
    studies = {name.split("/", 1)[0] for name in results["metrics"]}
    assert studies == {"generalization", "aspire", "explain"}
    assert "generalization/icl/reversal" in results["metrics"] and "aspire/aspire/auroc" in results["metrics"]
    report = (tmp_path / "demo" / "report.md").read_text()
    assert report.count("\n## ") >= 3 and "(generalization/generalization.png)" in report
    assert json.loads((tmp_path / "demo" / "results.json").read_text())["method"] == "demo"
    steps = [line[:10] for line in logs if line.startswith("[demo")]
    assert steps == ["[demo 1/3]", "[demo 2/3]", "[demo 3/3]", "[demo] rep"]  # progress, then the report path
