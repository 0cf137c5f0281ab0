"""Explanation tuning end to end on a tiny model: strategies (shipped and a user's own), cautious selection
with its evidence, prompt erasure in the training data, completion-only labels, the results schema, report
and plot, and a re-run that skips every stage."""

from __future__ import annotations

import json

import pytest

from underdog.config import ConfigError, TrainSettings, build_config
from underdog.io import read_jsonl
from underdog.methods.explain import (
    DEFAULT_STRATEGIES,
    ExplainRecipe,
    choose,
    load_strategies,
    run_explain,
)
from underdog.methods.parts.teachers import STYLES, TeacherError

TINY = TrainSettings(epochs=1, batch_size=8, max_length=256, packing=True)


@pytest.fixture(scope="module")
def study(tmp_path_factory, llama_dir):
    out = tmp_path_factory.mktemp("explain") / "run"
    mine = tmp_path_factory.mktemp("strategies")
    (mine / "terse.txt").write_text("# style: recall_generate\nRecall the facts you need, then answer.\n")
    recipe = ExplainRecipe(student=str(llama_dir), out=str(out), device="cpu", sizes={"train": 3, "dev": 2, "test": 2},
                           categories=["family_2hop", "arithmetic_2step", "family_1hop", "arithmetic_1step"],
                           strategies=["direct", "step_by_step"], strategies_dir=str(mine),
                           trial=TINY, train=TINY, max_new_tokens=12, save_model=True)
    logs: list[str] = []
    results = run_explain(recipe, log=logs.append)
    return recipe, results, out, logs


def test_results_schema_report_and_plot(study):
    recipe, results, out, _ = study
    for variant in ("base", "answers", "explanations", "teacher"):
        for group in ("multi_step", "one_step", "family_2hop", "arithmetic_1step"):
            m = results["metrics"][f"{variant}/{group}/accuracy"]
            assert 0.0 <= m["value"] <= 1.0 and len(m["ci95"]) == 2 and m["n"] > 0
    assert results["metrics"]["teacher/multi_step/accuracy"]["value"] == 1.0
    assert results["method"] == "explain" and results["env"]["versions"]["torch"]
    assert (out / "report.md").read_text().startswith("# Explanation tuning") and (out / "explain.png").stat().st_size
    assert json.loads((out / "results.json").read_text())["metrics"] == results["metrics"]


def test_selection_records_choice_and_evidence(study):
    recipe, results, out, logs = study
    sel = results["selection"]
    names = ["direct", "step_by_step", "terse"]  # the listed ones, then the user's folder
    assert list(load_strategies(recipe.strategies, recipe.strategies_dir)) == names
    assert sel["by"] == "student" and set(sel["choice"]) == set(recipe.categories)
    assert all(sel["choice"][c] in names for c in recipe.categories)
    for c in recipe.categories:
        assert set(sel["evidence"][c]) == set(names)  # every strategy measured on every category
        assert all(e["n"] == 2 for e in sel["evidence"][c].values())
    records = read_jsonl(out / "stages/select/selection_records.jsonl")
    assert len(records) == 2 * len(recipe.categories) * len(names)
    assert any(line.startswith("select (student): family_2hop") for line in logs)


def test_prompt_erasure_and_completion_only_labels(study, llama_dir):
    from underdog.lm import load
    from underdog.train import tokenize_example

    recipe, results, out, _ = study
    strategies = load_strategies(recipe.strategies, recipe.strategies_dir)
    teacher = {r["id"]: r for r in json.loads((out / "stages/teacher/result.json").read_text())["result"]["records"]}
    for variant in ("answers", "explanations"):
        examples = read_jsonl(out / f"stages/student-{variant}/train_examples.jsonl")
        assert examples
        for ex in examples:
            text = json.dumps(ex)
            assert all(s.instruction not in text for s in strategies.values())  # the instruction is erased
            system, user, assistant = ex["messages"]
            assert system == {"role": "system", "content": recipe.system_message}
            if variant == "answers":
                assert assistant["content"].startswith("Answer: ") and "\n" not in assistant["content"]
        tok = load(llama_dir, device="cpu").tokenizer
        row = tokenize_example(examples[0], tok)
        trained = tok.decode([t for t, lab in zip(row["input_ids"], row["labels"]) if lab != -100])
        assert examples[0]["messages"][2]["content"] in trained and "Question:" not in trained
    explained = read_jsonl(out / "stages/student-explanations/train_examples.jsonl")
    texts = {ex["messages"][2]["content"] for ex in explained}
    assert texts <= {r["text"] for r in teacher.values()}


def test_rerun_skips_every_stage(study):
    recipe, results, out, _ = study
    logs: list[str] = []
    again = run_explain(recipe, log=logs.append)
    assert sum("finished earlier, skipped" in line for line in logs) == 6
    assert again["metrics"] == results["metrics"]


def test_strategies_shipped_user_and_errors(tmp_path):
    shipped = load_strategies(DEFAULT_STRATEGIES)
    assert sorted(s.style for s in shipped.values()) == sorted(STYLES)
    (tmp_path / "direct.txt").write_text("Just answer.\n")
    (tmp_path / "mine.txt").write_text("# style: extract_generate\nList the numbers, then answer.\n")
    both = load_strategies(["step_by_step", "direct"], str(tmp_path))
    assert list(both) == ["step_by_step", "direct", "mine"]  # the folder's own strategies join
    assert both["direct"].instruction == "Just answer." and both["mine"].style == "extract_generate"
    with pytest.raises(TeacherError, match="strategy 'nope' not found"):
        load_strategies(["nope"], str(tmp_path))


def test_teacher_selection_and_hf_teacher(tmp_path, llama_dir):
    from underdog.methods.explain import make_teacher, run_select
    from underdog.methods.parts.teachers import HFTeacher, Job, WorldTeacher
    from underdog.tasks.reasoning import build_reasoning_tasks

    items = build_reasoning_tasks(5, {"dev": 2}, ["family_2hop", "arithmetic_1step"])
    strategies = load_strategies(["direct", "step_by_step"])
    recipe = ExplainRecipe(select_by="teacher")
    sel = run_select(recipe, items, strategies, WorldTeacher(), tmp_path, log=lambda s: None)
    assert sel["choice"] == {"family_2hop": "direct", "arithmetic_1step": "direct"}  # all 1.0: the default
    assert sel["evidence"]["family_2hop"]["direct"]["value"] == 1.0
    hf = make_teacher(ExplainRecipe(teacher=str(llama_dir), device="cpu", teacher_max_new_tokens=4), tmp_path)
    assert isinstance(hf, HFTeacher)
    texts = hf.respond([Job(it["id"], it, strategies["direct"]) for it in items])
    assert len(texts) == len(items) and all(isinstance(t, str) for t in texts)


def test_choose_departs_from_the_default_only_on_clear_evidence():
    def e(v, lo, hi):
        return {"value": v, "ci95": [lo, hi]}

    ev = {"clear": {"x": e(0.2, 0.1, 0.3), "y": e(0.5, 0.4, 0.6), "z": e(0.8, 0.7, 0.9)},
          "unclear": {"x": e(0.4, 0.2, 0.6), "y": e(0.6, 0.4, 0.8), "z": e(0.1, 0.0, 0.2)},
          "tie": {"x": e(1.0, 1.0, 1.0), "y": e(1.0, 1.0, 1.0), "z": e(1.0, 1.0, 1.0)}}
    assert choose(ev, ["x", "y", "z"]) == {"clear": "z", "unclear": "x", "tie": "x"}


def test_config_errors_are_one_line():
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        build_config(ExplainRecipe, {"bogus": 1})
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        build_config(ExplainRecipe, {"variants": ["nope"]})
    from underdog.cli import main

    assert main(["explain", "select_by=sometimes"]) == 2


def test_save_model_keeps_the_explanation_tuned_student(study):
    from underdog.lm import load

    _, results, out, _ = study
    kept = load(out / "model", device="cpu")  # loadable, with its card
    assert kept.model.config.num_hidden_layers >= 1 and "explain" in (out / "model" / "README.md").read_text()
