"""The CLI generated from the study registry: a toy study defined here gets its subcommand, `underdog run`
dispatches on `method:`, flags and key=value overrides are one mechanism, and `underdog report` rebuilds a
report from results.json alone."""

from __future__ import annotations

import json
import sys
import types

import pytest
from pydantic import Field

from underdog.cli import main
from underdog.config import Strict
from underdog.methods import STUDIES, register
from underdog.runs import Run


def _toy_module() -> types.ModuleType:
    toy = types.ModuleType("toy_study")

    class Recipe(Strict):
        model: str = "builtin"
        seed: int = 0
        out: str = "runs/toy"
        shots: list[int] = [0, 1]
        lr: float = Field(0.1, gt=0)
        loud: bool = False

    def run(recipe, log=print):
        from underdog.eval.verdict import verdict
        from underdog.report import write_report

        run = Run(recipe.out, recipe.model_dump(), log=log)
        value = run.stage("count", {"shots": recipe.shots}, lambda tmp: sum(recipe.shots) * recipe.lr)
        right = [1.0] * 8 + [0.0] * 2
        results = run.write_results("toy", recipe.model, "toy task", {"toy/score": {"value": value, "ci95": None}},
                                    extra={"verdict": verdict("accuracy", ("small + toy", right),
                                                              ("small", [0.0] * 10), ("large", [0.0] * 10))})
        write_report(run.dir)
        return results

    toy.NAME, toy.Recipe, toy.run = "toy", Recipe, run
    toy.DEMO_SECONDS = 1
    toy.demo_recipe = lambda out, model, seed, quick: Recipe(out=out, model=model, seed=seed)
    return toy


@pytest.fixture
def toy_study(monkeypatch):
    monkeypatch.setitem(sys.modules, "toy_study", _toy_module())
    register("toy", "toy_study", "a toy study defined in a test", demo=False)
    yield
    STUDIES.pop("toy")


def test_a_registered_study_gets_a_subcommand_with_a_flag_per_field(toy_study, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["toy", "--shots", "1,2,3", "--lr", "0.5", "--loud", "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["metrics"]["toy/score"]["value"] == pytest.approx(3.0)
    assert results["config"]["loud"] is True and results["config"]["shots"] == [1, 2, 3]
    printed = capsys.readouterr().out.strip().splitlines()
    assert "beats larger: yes" in printed[-2] and printed[-1].startswith("report: ")


def test_flags_and_overrides_are_one_mechanism_and_the_last_wins(toy_study, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["toy", "--lr", "0.5", "--out", str(a)]) == 0
    assert main(["toy", "lr=0.5", f"out={b}"]) == 0
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert ra["metrics"] == rb["metrics"]


def test_underdog_run_dispatches_on_the_method_key(toy_study, tmp_path):
    recipe = tmp_path / "toy.yaml"
    recipe.write_text(f"# underdog run {recipe}\nmethod: toy\nshots: [2, 2]\nout: {tmp_path / 'run'}\n")
    assert main(["run", str(recipe), "lr=1"]) == 0
    assert json.loads((tmp_path / "run" / "results.json").read_text())["metrics"]["toy/score"]["value"] == 4.0


def test_bad_recipes_are_one_line_errors(toy_study, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: nosuch\n")
    assert main(["run", str(recipe)]) == 2
    assert "unknown method 'nosuch'" in capsys.readouterr().err
    recipe.write_text("shots: [1]\n")
    assert main(["run", str(recipe)]) == 2
    assert "no `method:` key" in capsys.readouterr().err
    assert main(["toy", "--lr", "-1", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'lr'" in err[0]
    assert main(["toy", "nosuch=1", "--out", str(tmp_path / "x")]) == 2
    assert "unknown key 'nosuch'" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_report_rebuilds_from_results_json_and_a_folder_of_runs_gets_the_verdict_page(toy_study, tmp_path):
    for name in ("one", "two"):
        assert main(["toy", "--out", str(tmp_path / "runs" / name)]) == 0
    (tmp_path / "runs" / "one" / "report.md").unlink()
    assert main(["report", str(tmp_path / "runs" / "one")]) == 0
    assert "| toy/score | 0.100 |" in (tmp_path / "runs" / "one" / "report.md").read_text()
    assert main(["report", str(tmp_path / "runs")]) == 0
    page = (tmp_path / "runs" / "report.md").read_text()
    assert page.startswith("# Verdict") and page.count("**yes**") == 2
    assert (tmp_path / "runs" / "verdict.png").stat().st_size > 1000
    assert main(["report", str(tmp_path / "empty")]) == 2


def test_reports_export_the_lm_eval_layout_and_read_an_lm_eval_file(toy_study, tmp_path):
    from pathlib import Path

    from underdog.report.lmeval import from_lm_eval

    assert main(["toy", "--out", str(tmp_path / "run")]) == 0
    exported = json.loads((tmp_path / "run" / "results_lm_eval.json").read_text())
    assert exported["results"]["toy"]["score,none"] == pytest.approx(0.1)
    assert from_lm_eval(exported)["metrics"]["toy/score"]["value"] == pytest.approx(0.1)
    real = Path(__file__).parent / "report" / "data" / "lm_eval_results.json"
    copy = tmp_path / "lm_eval_results.json"
    copy.write_text(real.read_text())
    assert main(["report", str(copy)]) == 0
    text = (tmp_path / "lm_eval_results.report.md").read_text()
    assert text.startswith("# lm-eval") and "| metric | value [95% CI] |" in text
    (tmp_path / "junk.json").write_text("[1, 2]")
    assert main(["report", str(tmp_path / "junk.json")]) == 2
