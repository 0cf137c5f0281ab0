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
                         tau=0.0, lanes=1, max_new_tokens=24, seed_demos=0,
                         train={"max_steps": 2, "batch_size": 4}, large_train={"max_steps": 2, "batch_size": 4})
    res = run(recipe, log=lambda m: None)
    for arm in ("small", "small+tools", "large", "large+tools"):
        assert 0.0 <= res["metrics"][f"{arm}/accuracy"]["value"] <= 1.0
    assert res["verdict"]["beats_larger"] in ("yes", "no", "tie")
    assert res["calls"]["small"]["per_tool"]["Calculator"]["proposed"] == 16
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Verdict" in report and "proposed" in report and "one calculator call per operation" in report
    assert {"small+tools/ungrounded_accuracy", "large+tools/ungrounded_accuracy"} <= set(res["metrics"])
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


def test_chain_proposals_are_one_operation_each_and_end_at_the_answer():
    from underdog.methods.tool_tasks import propose_program
    from underdog.methods.tools import chain_around

    train, _, _ = world_tasks(1, 12, 0, 0, 0, [2, 3], [1, 2, 3])
    cands = propose_program(train, seed=0, calls="chain")
    for it in train:
        chain = sorted((c for c in cands if c["item"] == it["id"] and c.get("step") is not None),
                       key=lambda c: c["step"])
        assert len(chain) == it["ops"] and [c["kind"] for c in chain][-1] == "answer"
        outs = [calculate(c["input"]) for c in chain]
        assert outs[-1] == it["answers"][0]
        for c, prev in zip(chain[1:], outs):  # each call starts from the previous result
            assert c["input"].split()[0] == prev and c["input"].count(" ") == 3
        for c in chain:
            c["chain_out"] = outs
        before, after = chain_around(chain[0])
        assert before == "" and after.count("[Calculator(") == it["ops"] - 1
    assert {c["kind"] for c in cands} - {"step", "answer", "noun"} <= {"random-pair", "too-early"}
    expr = propose_program(train, seed=0, calls="expression")
    assert sum(c["kind"] == "answer" for c in expr) == len(train) and all("step" not in c for c in expr)


def test_filter_scores_a_chain_call_between_its_neighbours(monkeypatch):
    import underdog.methods.tools as tools

    seen = {}

    def fake(lm, contexts, conts, window, batch_size=64):
        seen["pairs"] = list(zip(contexts, conts))
        return [2.0, 2.0, 0.5]

    monkeypatch.setattr(tools, "weighted_losses", fake)
    c = {"item": "a", "text": "Question: q Answer: 15.", "pos": 19, "tool": "Calculator", "input": " 2 + 3",
         "output": "5", "ok": True, "kind": "step", "step": 0, "chain": [" 2 + 3", " 5 * 3"],
         "chain_out": ["5", "15"]}
    (row,) = tools.toolformer_filter(None, [c], tau=1.0, insert="inline")
    none, empty, result = seen["pairs"]
    assert none == ("Question: q Answer: [Calculator(", " 5 * 3) -> 15] 15.")
    assert empty[0] == "Question: q Answer: [Calculator( 2 + 3) ->] [Calculator("
    assert result[0] == "Question: q Answer: [Calculator( 2 + 3) -> 5] [Calculator(" and result[1] == none[1]
    assert row["kept"] and row["gain"] == pytest.approx(1.5)
    last = {**c, "input": " 5 * 3", "output": "15", "kind": "answer", "step": 1}
    tools.toolformer_filter(None, [last], tau=1.0, insert="inline")
    assert seen["pairs"][0] == ("Question: q Answer: [Calculator( 2 + 3) -> 5]", " 15.")
    assert seen["pairs"][2][0].endswith("-> 5] [Calculator( 5 * 3) -> 15]")


def test_annotate_puts_a_kept_chain_in_order_and_prefers_it_by_gain():
    items = [{"id": "a", "prompt": "Question: q Answer:", "completion": " 15."}]
    base = {"item": "a", "pos": 19, "tool": "Calculator", "kept": True}
    chain = [{**base, "input": " 5 * 3", "output": "15", "step": 1, "gain": 3.0},
             {**base, "input": " 2 + 3", "output": "5", "step": 0, "gain": 1.2}]
    other = {**base, "input": " 2 * 3", "output": "6", "gain": 2.0}
    (a,) = annotate(items, chain + [other])
    assert a["completion"] == " [Calculator( 2 + 3) -> 5] [Calculator( 5 * 3) -> 15] 15."
    (b,) = annotate(items, [{**chain[0], "kept": False}, chain[1], other])
    assert b["completion"] == " [Calculator( 2 * 3) -> 6] 15."


def test_run_propose_executes_each_chain_call_and_fills_the_chain_results(tmp_path):
    from underdog.methods.tool_tasks import load_tasks
    from underdog.methods.tools import run_propose

    recipe = ToolsRecipe(n_train=9, n_test=0, n_fact_train=2, n_fact_test=0, digits=[2], ops=[3], calls="chain")
    load_tasks(recipe, tmp_path)
    cands = run_propose(recipe, tmp_path)
    chain = [c for c in cands if c.get("step") is not None]
    assert len(chain) == 27 and all(c["ok"] for c in chain)
    assert all(c["chain_out"][c["step"]] == c["output"] for c in chain)
    assert all(c["tool"] == "Lookup" for c in cands if c["item"].startswith("train-facts"))


def test_seed_demos_take_whole_chains_and_leave_half_the_texts_to_the_filter():
    from underdog.methods.tool_tasks import propose_program
    from underdog.methods.tools import seed_demos

    train, _, _ = world_tasks(2, 8, 0, 0, 0, [2], [2])
    cands = [{**c, "ok": True, "output": calculate(c["input"]) if c["tool"] == "Calculator" else "x"}
             for c in propose_program(train, seed=0)]
    demos, chosen = seed_demos(cands, train, 100)
    assert chosen == {it["id"] for it in train[::2]}
    assert len(demos) == 8 and {d["kind"] for d in demos} == {"step", "answer"} and all(d["kept"] for d in demos)
    examples = annotate(train, demos)
    assert all(e["completion"].count("[Calculator(") == 2 for e in examples[::2])
    assert all("[" not in e["completion"] for e in examples[1::2])
    assert seed_demos(cands, train, 0) == ([], set()) and len(seed_demos(cands, train, 3)[1]) == 3


def test_a_run_of_the_larger_model_alone_has_no_verdict(tmp_path):
    q = tmp_path / "q.jsonl"
    q.write_text("\n".join(json.dumps({"question": f"Dax has {a} bliks. How many now?", "answer": a})
                           for a in (3, 12, 7, 20)) + "\n")
    recipe = ToolsRecipe(out=str(tmp_path / "run"), questions=str(q), test_fraction=0.5, compare_model="builtin",
                         arms=["large"], lanes=1, max_new_tokens=8, large_train={"max_steps": 1, "batch_size": 2})
    res = run(recipe, log=lambda m: None)
    assert res["verdict"] is None and "large/accuracy" in res["metrics"] and "small/accuracy" not in res["metrics"]
    assert "Verdict: not computed." in (tmp_path / "run" / "report.md").read_text()
