"""Alignment study's abstention rule and R-Tuning labels: the dev threshold (coverage floor, ties), the rule
applied to test rows (threshold and greedy), greedy-correctness labels for preference pairs, and answering with
the abstention's first token banned (the answer given when the aligned model does not abstain)."""

import json

import pytest
import torch

from underdog.lm import load
from underdog.methods.align import Recipe, answer
from underdog.methods.align_results import apply_rule, choose_threshold
from underdog.methods.parts.preference import build_pairs, count_pairs


def test_choose_threshold_maximises_answered_accuracy_above_the_coverage_floor():
    p = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95]
    ok = [1, 0, 1, 1, 0, 0, 0, 0, 1, 0]
    assert choose_threshold(p, ok, 0.1) == (0.1, 0.1, 1.0)  # the most confident question alone is right
    t, cov, acc = choose_threshold(p, ok, 0.3)
    assert (t, cov) == (0.4, 0.4) and acc == pytest.approx(0.75)  # 0.3 also has 2/3 < 3/4
    assert choose_threshold(p, ok, 1.0)[:2] == (0.95, 1.0)
    t, cov, _ = choose_threshold([0.2, 0.2, 0.5, 0.5], [1, 1, 0, 0], 0.25)  # equal p answered together
    assert (t, cov) == (0.2, 0.5)
    assert choose_threshold([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], 0.1)[:2] == (0.1, 0.25)
    assert choose_threshold([0.1, 0.2, 0.3, 0.4], [0, 1, 1, 0], 0.1)[:2] == (0.3, 0.75)  # tie at 2/3: more coverage


def test_threshold_rule_needs_dev_questions():
    from underdog.config import ConfigError, build_config

    with pytest.raises(ConfigError, match="rule threshold"):
        build_config(Recipe, {"task": None, "train": "a.jsonl", "test": "b.jsonl"})
    with pytest.raises(ConfigError, match="rule threshold"):
        build_config(Recipe, {"n_dev": 0})
    assert build_config(Recipe, {"n_dev": 0, "rule": "greedy"}).rule == "greedy"


def test_apply_rule_threshold_and_greedy():
    dev = [{"p_abstain": p, "correct": ok} for p, ok in ((0.1, True), (0.2, True), (0.7, False), (0.8, False))]
    test = [{"p_abstain": p, "abstained_greedy": g} for p, g in ((0.05, False), (0.3, False), (0.6, True))]
    rule = apply_rule(test, dev, "threshold", 0.3)
    assert rule["threshold"] == 0.2 and rule["dev_coverage"] == 0.5 and "0.2" in rule["name"]
    assert [r["abstained"] for r in test] == [False, True, True]
    assert apply_rule(test, dev, "greedy", 0.3)["rule"] == "greedy"
    assert [r["abstained"] for r in test] == [False, False, True]


def test_greedy_labels_make_pairs_from_the_greedy_answer():
    items = [{"id": "a", "question": "who?", "answers": ["Ann"]}, {"id": "b", "question": "what?", "answers": ["Bo"]}]
    sampled = [{"answer": "Dee", "correct": False, "samples": [{"text": "Ann", "correct": True},
                                                             {"text": "Ann", "correct": True},
                                                             {"text": "Bob", "correct": False}]},
               {"answer": "Bo", "correct": True, "samples": [{"text": "Xi", "correct": False},
                                                            {"text": "Xi", "correct": False}]}]
    by_samples = build_pairs(items, sampled, per_question=1, majority=0.5)
    assert count_pairs(by_samples) == {"correct>wrong": 1, "abstain>wrong": 1, "correct>abstain": 1}
    assert {p["kind"]: p["id"] for p in by_samples} == {"correct>wrong": "a", "correct>abstain": "a", "abstain>wrong": "b"}
    pairs = build_pairs(items, sampled, per_question=1, labels="greedy")
    assert count_pairs(pairs) == {"correct>wrong": 2, "abstain>wrong": 1, "correct>abstain": 1}
    a = {p["kind"]: p for p in pairs if p["id"] == "a"}
    assert a["abstain>wrong"]["rejected"] == " Dee." and a["correct>wrong"]["rejected"] == " Dee."  # what it says
    b = {p["kind"]: p for p in pairs if p["id"] == "b"}
    assert b["correct>abstain"]["chosen"] == " Bo." and b["correct>wrong"] == {**b["correct>wrong"],
                                                                              "chosen": " Bo.", "rejected": " Xi."}


def test_answer_with_the_abstention_banned(gpt2_dir):
    lm = load(gpt2_dir, device="cpu")
    items = [{"id": f"q{i}", "question": f"the cat is {w}?", "answers": [w]} for i, w in enumerate(["red", "blue"])]
    recipe = Recipe(task=None, train="x", test="x", dev="x", abstain_text="the", max_new_tokens=3, device="cpu")
    first = lm.tokenizer.encode(" the", add_special_tokens=False)[0]
    bias = torch.zeros(lm.model.config.vocab_size)
    bias[first] = 50.0  # the abstention's first token becomes every step's argmax
    hook = lm.model.get_output_embeddings().register_forward_hook(lambda m, i, o: o + bias)
    try:
        plain = answer(lm, items, recipe)
        banned = answer(lm, items, recipe, ban_abstain=True)
    finally:
        hook.remove()
    assert all(r["abstained"] and not r["correct"] for r in plain)
    assert all(not r["abstained"] and r["abstained_greedy"] and r["p_abstain"] > 0.99 for r in banned)
    assert all(r["answer"] and not r["answer"].startswith("the") for r in banned)


def test_refusal_sft_stage_trains_the_aligned_arm_only(tmp_path, gpt2_dir):
    from underdog.config import TrainConfig
    from underdog.io import write_jsonl
    from underdog.methods.align import run
    from underdog.methods.parts.preference import DPOSettings

    qa = lambda n, s: [{"id": f"q{s + i}", "question": f"the cat is {w}?", "answers": [w]}  # noqa: E731
                       for i, w in enumerate(["red", "blue", "green", "big"][:n])]
    for name, rows in (("train", qa(4, 0)), ("dev", qa(4, 10)), ("test", qa(4, 20))):
        write_jsonl(tmp_path / f"{name}.jsonl", rows)
    recipe = Recipe(model=str(gpt2_dir), task=None, **{n: str(tmp_path / f"{n}.jsonl") for n in ("train", "dev", "test")},
                    out=str(tmp_path / "run"), device="cpu", k=2, max_new_tokens=3, reference=True, lanes=1,
                    consistency_samples=2, n_boot=20, aspire=False, sft_targets="refusal",
                    sft=TrainConfig(max_steps=1, batch_size=4, max_length=128),
                    dpo=DPOSettings(adapter="lora", max_steps=1, batch_size=4, max_length=128))
    logs = []
    res = run(recipe, log=logs.append)
    assert any(m.startswith("sft (refusal targets, ") and "of 4 abstain" in m for m in logs)
    stages = tmp_path / "run" / "stages"
    assert (stages / "sft" / "model").is_dir()
    base_of = lambda arm: json.loads((stages / arm / "model" / "adapter_config.json").read_text())[  # noqa: E731
        "base_model_name_or_path"]
    assert base_of("aligned") == str(stages / "sft" / "model") and base_of("dpo") == str(gpt2_dir)
    assert res["training"]["aligned"]["pairs"]["abstain>wrong"] > 0
