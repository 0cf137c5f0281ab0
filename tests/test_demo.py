"""`underdog demo` end to end on a tiny model built in code: the studies run and land in one report that opens
with the verdict page."""

from __future__ import annotations

import io
import json

from rich.console import Console

from underdog.demo import run_demo
from underdog.methods import STUDIES


def test_demo_runs_the_studies_and_opens_its_report_with_the_verdict(llama_dir, tmp_path):
    terminal = io.StringIO()
    results = run_demo(str(tmp_path / "demo"), model=str(llama_dir), seed=5, quick=True,
                       studies="generalization,aspire,explain", console=Console(file=terminal, width=120))
    studies = {name.split("/", 1)[0] for name in results["metrics"]}
    assert studies == {"generalization", "aspire", "explain"}
    assert "generalization/icl/reversal" in results["metrics"] and "aspire/aspire/auroc" in results["metrics"]
    report = (tmp_path / "demo" / "report.md").read_text()
    assert report.startswith("# underdog demo: the verdict")
    assert report.index("| study | metric |") < report.index("## Generalization study")
    assert "(generalization/generalization.png)" in report and "(verdict.png)" in report
    assert json.loads((tmp_path / "demo" / "results.json").read_text())["method"] == "demo"
    out = terminal.getvalue().strip().splitlines()
    assert out[-2].startswith("demo finished") and out[-1] == str(tmp_path / "demo" / "report.md")  # last line
    assert "Traceback" not in out and "FutureWarning" not in terminal.getvalue()
    assert (tmp_path / "demo" / "demo.log").stat().st_size > 0  # the studies' own output went to the log


def test_every_demo_study_has_its_demo_recipe_and_time_budget(tmp_path):
    for study in STUDIES.values():
        if not study.demo:
            continue
        module = study.load()
        recipe = module.demo_recipe(str(tmp_path / study.name), "builtin", 1, quick=True)
        assert isinstance(recipe, module.Recipe) and recipe.out == str(tmp_path / study.name)
        assert 0 < module.DEMO_SECONDS <= 600
