"""The tools study: word problems are exact, Toolformer's filter keeps a useful call and drops useless ones,
kept calls are inserted inline, user JSONL works, and a tiny run writes every cell, the verdict and the plot."""

import json
import random

import pytest

from underdog.config import ConfigError, build_config
from underdog.lm import load
from underdog.methods.tool_tasks import call_text, word_problem, world_tasks
from underdog.methods.tools import (
    ToolsRecipe,
    annotate,
    extract_answer,
    is_correct,
    run,
    toolformer_filter,
    weights,
)
from underdog.tools import calculate
from underdog.tools.lookup import Lookup


def test_word_problems_are_exact_and_sized():
    rng = random.Random(0)
    for d in (1, 2, 3, 4):
        for k in (1, 2, 3):
            p = word_problem(rng, "Dax", "bliks", d, k)
            assert calculate(p["expr"]) == p["answer"]
            assert p["ops"] == k == len(p["op_list"])
            nums = [n for n in p["question"].split() if n.rstrip(".").isdigit()]
            assert all(len(n.rstrip(".")) == d for n in nums) and len(nums) == k + 1


def test_toolformer_weights():
    w = weights(5)
    assert abs(sum(w) - 1) < 1e-9 and w[0] > w[1] > w[4] > 0


@pytest.fixture(scope="module")
def facts():
    train, test, sentences = world_tasks(3, 0, 0, 6, 0, [1], [1])
    return train, Lookup(sentences)


def test_filter_keeps_a_useful_call_and_drops_useless_ones(facts):
    items, lookup = facts
    lm = load("builtin")
    cands = []
    for k, it in enumerate(items[:4]):
        text, pos = it["prompt"] + it["completion"], len(it["prompt"])
        other = items[(k + 1) % len(items)]
        for kind, tool, arg in (("useful", "Lookup", it["query"]), ("other-name", "Lookup", other["query"]),
                                ("calculator", "Calculator", " 2 + 2")):
            out = lookup(arg) if tool == "Lookup" else calculate(arg)
            cands.append({"item": it["id"], "text": text, "pos": pos, "tool": tool, "input": arg, "output": out,
                          "ok": True, "kind": kind})
    filtered = toolformer_filter(lm, cands, tau=1.0)
    for c in filtered:
        assert c["kept"] == (c["kind"] == "useful"), (c["kind"], c["gain"])
        assert c["gain"] == pytest.approx(min(c["loss_none"], c["loss_empty"]) - c["loss_result"])


def test_failed_calls_are_never_kept():
    c = {"item": "a", "text": "Question: x Answer: 4.", "pos": 18, "tool": "Calculator", "input": "1/0",
         "output": "error: division by zero", "ok": False, "kind": "answer"}
    (row,) = toolformer_filter(None, [c], tau=0.0)
    assert row["kept"] is False


def test_annotate_puts_the_best_kept_call_inline():
    items = [{"id": "a", "prompt": "Question: q Answer:", "completion": " 7."},
             {"id": "b", "prompt": "Question: r Answer:", "completion": " 3."}]
    calls = [{"item": "a", "pos": 19, "tool": "Calculator", "input": " 3 + 4", "output": "7", "kept": True,
              "gain": 2.0},
             {"item": "a", "pos": 19, "tool": "Calculator", "input": " 3 * 4", "output": "12", "kept": True,
              "gain": 1.0},
             {"item": "b", "pos": 19, "tool": "Calculator", "input": " 1 + 2", "output": "3", "kept": False,
              "gain": 0.1}]
    a, b = annotate(items, calls)
    assert a == {"prompt": "Question: q Answer:", "completion": " [Calculator( 3 + 4) -> 7] 7."}
    assert b == {"prompt": "Question: r Answer:", "completion": " 3."}
    assert call_text("Lookup", "x", None) == "[Lookup(x) ->]"


def test_answer_extraction():
    assert extract_answer(" [Calculator( 3 + 4) -> 7] 7.") == "7"
    assert extract_answer(" 12.") == "12"
    assert is_correct("12", ["12"]) and is_correct("12.0", ["12"]) and not is_correct("13", ["12"])
    assert is_correct("Dax", ["dax"]) and not is_correct(None, ["1"])


def test_recipe_rejects_unknown_arms_and_keys():
    with pytest.raises(ConfigError, match="arm"):
        build_config(ToolsRecipe, {"arms": ["small", "huge"]})
    with pytest.raises(ConfigError, match="unknown key"):
        build_config(ToolsRecipe, {"tua": 1})


def test_tiny_run_writes_every_cell(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text("\n".join(json.dumps({"question": f"Dax has {a} bliks and gets {b} more. How many now?",
                                       "answer": a + b}) for a, b in [(3, 4), (12, 5), (7, 8), (20, 22), (6, 1),
                                                                       (9, 9), (11, 30), (2, 2)]) + "\n")
    recipe = ToolsRecipe(out=str(tmp_path / "run"), questions=str(q), test_fraction=0.5, compare_model="builtin",
                         tau=0.0, lanes=1, max_new_tokens=24,
                         train={"max_steps": 2, "batch_size": 4}, large_train={"max_steps": 2, "batch_size": 4})
    res = run(recipe, log=lambda m: None)
    for arm in ("small", "small+tools", "large", "large+tools"):
        assert 0.0 <= res["metrics"][f"{arm}/accuracy"]["value"] <= 1.0
    assert res["verdict"]["beats_larger"] in ("yes", "no", "tie")
    assert res["calls"]["small"]["per_tool"]["Calculator"]["proposed"] == 16
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Verdict" in report and "proposed" in report
    again = run(recipe, log=lambda m: None)  # resumes from the cached stages
    assert again["metrics"] == res["metrics"]


def test_the_model_teacher_proposes_parsed_or_malformed_calls(facts):
    from underdog.methods.tool_tasks import propose_with_model
    from underdog.tools import default_registry

    items, _ = facts
    cands = propose_with_model(load("builtin"), items[:3], default_registry(), seed=0, k=2)
    assert 3 <= len(cands) <= 6
    prompts = {it["id"]: it["prompt"] for it in items}
    assert all(c["kind"] == "model" and c["pos"] == len(prompts[c["item"]]) for c in cands)
    assert all(c["tool"] for c in cands)
