"""Alignment study: preference pairs from sampled answers (kinds, balance), DPO through TRL on a tiny GPT-2
(reward margin and accuracy rise; full and LoRA models load back through underdog.lm.load) and on `builtin`,
and the study end to end on a tiny model with a finished ASPIRE run (same questions checked), resumed from its
stages; a malformed preference file stops the CLI with exit 2 before anything runs."""

import json

import pytest

from tests.tiny_models import build_model, make_tokenizer
from underdog import UnderdogError
from underdog.io import write_jsonl
from underdog.lm import load
from underdog.methods.align import Recipe, is_abstention, run
from underdog.methods.parts.preference import DPOSettings, build_pairs, count_pairs, train_dpo

BASELINES = ("perplexity", "predictive_entropy", "semantic_entropy", "ptrue", "selfeval")
WORDS = "cat dog mat red blue tree river stone house green".split()


def _samples(*marks):
    return {"samples": [{"text": t, "correct": ok} for t, ok in marks]}


def test_build_pairs_kinds_and_balance():
    items = [{"id": "a", "question": "who?", "answers": ["Ann"]}, {"id": "b", "question": "what?", "answers": ["Bo"]},
             {"id": "c", "question": "why?", "answers": ["Cy"]}]
    sampled = [_samples(("Ann", True), ("Bob", False), ("Bob", False), ("Dee", False)),  # mostly wrong
               _samples(("Bo", True), ("Bo", True), ("Xi", False)),  # mostly right
               _samples(("Zed", False), ("I don't know", False), ("", False))]  # all wrong, no right answer
    pairs = build_pairs(items, sampled, per_question=2)
    assert count_pairs(pairs) == {"correct>wrong": 3, "abstain>wrong": 3, "correct>abstain": 1}
    a = [p for p in pairs if p["id"] == "a"]
    assert a[0]["chosen"] == " Ann." and a[0]["rejected"] == " Bob."  # the most frequent wrong answer first
    assert {p["rejected"] for p in a if p["kind"] == "abstain>wrong"} == {" Bob.", " Dee."}
    assert all(p["chosen"] == " I don't know." for p in pairs if p["kind"] == "abstain>wrong")
    assert not any(p["rejected"] == " I don't know." and p["kind"] == "abstain>wrong" for p in pairs)
    assert count_pairs(build_pairs(items, sampled, abstain_text=None, per_question=2)) == \
        {"correct>wrong": 3, "abstain>wrong": 0, "correct>abstain": 0}
    balanced = build_pairs(items, sampled, per_question=2, balance=True)
    assert count_pairs(balanced)["correct>abstain"] == 3 and sum(p.get("repeat", False) for p in balanced) == 2
    with_ref = build_pairs(items, sampled, abstain_text=None, reference=True, per_question=1)
    assert {"prompt": with_ref[-1]["prompt"], "chosen": " Cy.", "rejected": " Zed."}.items() <= with_ref[-1].items()
    assert is_abstention("I don't know", "I don't know") and is_abstention("i dont know really", "I don't know")
    assert not is_abstention("Ann", "I don't know")


def _tiny_pairs(n=24):
    """The tiny task: after any prompt, " yes the cat." is preferred to " no the dog." (a random model has no
    preference between them)."""
    return [{"prompt": f"the {WORDS[i % 10]} is {WORDS[(i * 3) % 10]} :", "chosen": " yes the cat.",
             "rejected": " no the dog."} for i in range(n)]


def test_dpo_through_trl_margin_and_reward_accuracy_rise_tiny_gpt2(tmp_path):
    tok = make_tokenizer(add_bos=False)
    model = build_model("gpt2", tok, seed=0)
    out = train_dpo(model, tok, _tiny_pairs(), DPOSettings(lr=5e-3, epochs=4, batch_size=8, logging_steps=1,
                                                           warmup_ratio=0.0), tmp_path, device="cpu")
    h = out["history"]
    assert out["steps"] == 12 and len(h) >= 10
    first, last = h[0], h[-3:]
    assert first["margin"] == pytest.approx(0.0, abs=1e-6)  # step 1: the policy is still the reference
    assert min(x["margin"] for x in last) > first["margin"] + 0.2
    assert sum(x["accuracy"] for x in last) / 3 >= 0.8 > first["accuracy"]
    back = load(tmp_path / "model", device="cpu")  # saved with save_pretrained, loads through underdog.lm.load
    assert back.model.config.model_type == "gpt2"
    for p, q in zip(back.model.parameters(), out["model"].parameters()):
        assert p.shape == q.shape and (p - q).abs().max() < 1e-6


def test_dpo_lora_adapter_loads_back_on_its_base(tmp_path):
    tok = make_tokenizer(add_bos=False)
    build_model("gpt2", tok, seed=1).save_pretrained(tmp_path / "base")
    tok.save_pretrained(tmp_path / "base")
    base = load(tmp_path / "base", device="cpu")
    out = train_dpo(base.model, base.tokenizer, _tiny_pairs(8), DPOSettings(adapter="lora", lr=1e-2, max_steps=3,
                                                                            batch_size=4, logging_steps=1),
                    tmp_path / "dpo", device="cpu")
    assert (tmp_path / "dpo" / "model" / "adapter_config.json").is_file()
    assert out["history"][-1]["margin"] != 0.0  # the adapter moved away from its implicit reference
    back = load(tmp_path / "dpo" / "model", device="cpu")
    assert back.info.get("adapter") == "lora"


def test_dpo_runs_on_builtin_cpu(tmp_path):
    lm = load("builtin", device="cpu")
    pairs = [{"prompt": "Question: Who owns the red cup? Answer:", "chosen": " Mira.", "rejected": " I don't know."},
             {"prompt": "Question: Where is the lake? Answer:", "chosen": " I don't know.", "rejected": " Tova."}]
    out = train_dpo(lm.model, lm.tokenizer, pairs, DPOSettings(max_steps=2, batch_size=2, logging_steps=1),
                    tmp_path, device="cpu")
    assert out["steps"] == 2 and len(out["history"]) == 2
    assert load(tmp_path / "model", device="cpu").info["architecture"] == "llama"


def _qa(n, start=0):
    return [{"id": f"q{start + i}", "question": f"the {WORDS[i % 10]} is {WORDS[(i * 7) % 10]}?",
             "answers": [WORDS[(i * 3) % 10]]} for i in range(n)]


def _fake_aspire(path, test, seed=0):
    import random

    rng = random.Random(seed)
    row = lambda q: {"id": q["id"], "correct": rng.random() < 0.3, "judge": rng.random(),  # noqa: E731
                     **{b: rng.random() for b in BASELINES}}
    write_jsonl(path / "answers.jsonl", [row(q) for q in test])
    write_jsonl(path / "answers_compare.jsonl", [row(q) for q in test])
    (path / "results.json").write_text(json.dumps({"model": "tiny", "summary": {"alpha": 0.25},
                                                   "config": {"compare_model": "big"}}))


def test_study_end_to_end_with_a_finished_aspire_run(tmp_path, gpt2_dir):
    write_jsonl(tmp_path / "train.jsonl", _qa(6))
    write_jsonl(tmp_path / "test.jsonl", _qa(10, start=100))
    write_jsonl(tmp_path / "dev.jsonl", _qa(6, start=50))
    (tmp_path / "aspire").mkdir()
    _fake_aspire(tmp_path / "aspire", _qa(10, start=100))
    recipe = Recipe(model=str(gpt2_dir), task=None, train=str(tmp_path / "train.jsonl"),
                    test=str(tmp_path / "test.jsonl"), dev=str(tmp_path / "dev.jsonl"), out=str(tmp_path / "run"),
                    device="cpu", k=2,
                    max_new_tokens=4, reference=True, lanes=1, consistency_samples=2, n_boot=50,
                    aspire_run=str(tmp_path / "aspire"),
                    dpo=DPOSettings(max_steps=2, batch_size=4, logging_steps=1, max_length=128))
    logs = []
    res = run(recipe, log=logs.append)
    m = res["metrics"]
    for key in ("base/accuracy", "aligned/accuracy", "aligned/coverage", "aligned/accuracy_answered",
                "dpo/accuracy", "aligned/abstain_precision", "aligned/abstain_recall", "aligned-score/auroc",
                "self-consistency/auacc", "aspire/auacc", "aspire_at_coverage/accuracy_answered",
                "big/accuracy", "big_at_coverage/accuracy_answered"):
        assert key in m or (key.endswith("at_coverage/accuracy_answered") and res["summary"]["answered"] == 0), key
    assert 0 <= m["aligned/coverage"]["value"] <= 1 and m["aligned/coverage"]["ci95"] is not None
    assert res["summary"]["aligned_rule"].startswith("threshold") and m["aligned/coverage"]["rule"].startswith(
        "threshold") and 0 < res["summary"]["dev_coverage"] <= 1  # the headline names its rule, tuned on dev
    assert "aligned-greedy/coverage" in m and "aligned-greedy/abstain_recall" in m
    assert res["training"]["aligned"]["pairs"]["abstain>wrong"] > 0 and res["training"]["dpo"]["n_pairs"] > 0
    assert res["verdict"]["small_method"]["label"].endswith("aligned (abstains)")
    out = tmp_path / "run"
    assert (out / "report.md").read_text().startswith("# Alignment") and (out / "accuracy_coverage.png").is_file()
    assert (out / "pairs_aligned_trl.jsonl").is_file()
    again = run(recipe, log=logs.append)  # every stage cached
    assert set(again["timing"]["skipped_stages"]) >= {"eval-base", "sample", "dpo", "aligned", "eval-dpo",
                                                      "eval-aligned", "eval-aligned-dev"}
    assert again["metrics"]["aligned/accuracy"] == m["aligned/accuracy"]
    _fake_aspire(tmp_path / "aspire", _qa(10, start=200))  # ASPIRE answered other questions
    with pytest.raises(UnderdogError, match="test questions differ"):
        run(recipe, log=logs.append)


def test_malformed_preference_file_exits_2(tmp_path, capsys):
    from underdog.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": " a."}\n')
    assert main(["align", "--out", str(tmp_path / "run"), f"preferences={bad}"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:1: missing field 'rejected'" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run" / "stages").exists()
