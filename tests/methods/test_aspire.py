"""ASPIRE: decoding with a soft prefix matches Hugging Face generation, judgements on the reused cache equal a
full forward, θs learns and round-trips through safetensors, and the study runs end to end, resumes stage 2
after a kill and writes metrics, report and plot."""

import json

import pytest
import torch

from underdog.config import ConfigError, build_config
from underdog.io import write_jsonl
from underdog.lm import load
from underdog.lm.generate import generate
from underdog.methods.aspire import AspireRecipe, judge_examples, run_aspire
from underdog.methods.parts.selfeval import (
    SoftJudge,
    Tuned,
    beam_answers,
    decode,
    judge_tokens,
    suffix_logits,
    train_judge,
    two_way,
)

PROMPTS = ["the cat sat on a mat.\n\nQuestion: who sat? Answer:", "Question: is the dog big? Answer:",
           "red blue green house tree river stone.\n\nQuestion: what is red? Answer:"]


def _ids(lm, texts):
    return [lm.tokenizer.encode(t) for t in texts]


def test_greedy_decode_matches_hf_generate(tiny_lm):
    answers, _ = decode(Tuned(tiny_lm.model, tiny_lm.tokenizer), _ids(tiny_lm, PROMPTS), max_new_tokens=8)
    reference = generate(tiny_lm, PROMPTS, max_new_tokens=8, stop=["\n"])
    for (mine,), (ref,) in zip(answers, reference):
        n = len(mine.token_ids)
        assert ref.token_ids[:n] == mine.token_ids  # HF goes on past a final "." until the newline
        assert torch.allclose(torch.tensor(mine.token_logprobs), torch.tensor(ref.token_logprobs[:n]), atol=1e-4)


def test_judgement_on_the_reused_cache_equals_a_full_forward(tiny_lm):
    torch.manual_seed(0)
    hidden = tiny_lm.model.get_input_embeddings().weight.shape[1]
    tuned = Tuned(tiny_lm.model, tiny_lm.tokenizer, torch.randn(3, hidden) * 0.1)
    prompts = _ids(tiny_lm, PROMPTS)
    answers, state = decode(tuned, prompts, max_new_tokens=6)
    soft, judge = torch.randn(2, hidden), tiny_lm.tokenizer.encode(" correct or incorrect?", add_special_tokens=False)
    first = suffix_logits(tuned, state, [[soft, judge]] * 3)
    again = suffix_logits(tuned, state, [[soft, judge]] * 3)  # the cache was cropped back
    per_row = suffix_logits(tuned, state, [[soft, judge[:k]] for k in (1, 2, len(judge))])  # ragged suffixes
    emb = tiny_lm.model.get_input_embeddings()
    for i, ((a,), p) in enumerate(zip(answers, prompts)):
        full = torch.cat([tuned.prefix, emb(torch.tensor(p + a.token_ids)), soft, emb(torch.tensor(judge))])
        with torch.no_grad():
            logits = tiny_lm.model(inputs_embeds=full[None]).logits[0]
        assert torch.allclose(logits[-1], first[i], atol=1e-4)
        assert torch.allclose(first[i], again[i], atol=1e-5)
        assert torch.allclose(logits[-1 - len(judge) + (1, 2, len(judge))[i]], per_row[i], atol=1e-4)
        lp = torch.log_softmax(logits.float(), -1)
        start = tuned.prefix.shape[0] + len(p) - 1
        expected = sum(lp[start + j, t].item() for j, t in enumerate(a.token_ids))
        assert a.logprob == pytest.approx(expected, abs=1e-4)


def test_sampling_and_beams_share_the_interface(tiny_lm):
    tuned = Tuned(tiny_lm.model, tiny_lm.tokenizer)
    prompts = _ids(tiny_lm, PROMPTS[:2])
    g = torch.Generator().manual_seed(0)
    samples, state = decode(tuned, prompts, n=3, method="sample", max_new_tokens=5, generator=g)
    assert [len(s) for s in samples] == [3, 3] and state.mask.shape[0] == 6
    beams = beam_answers(tuned, prompts, k=3, max_new_tokens=5)
    for b in beams:
        assert 1 <= len(b) <= 3 and [s.logprob for s in b] == sorted((s.logprob for s in b), reverse=True)
        assert len({s.text for s in b}) == len(b)


def test_judge_tokens_split_multi_token_words(tiny_lm):
    prompt, yes, no = judge_tokens(tiny_lm.tokenizer, " Is it right?", " Correct", " Incorrect")
    assert yes != no
    assert tiny_lm.tokenizer.decode(prompt + [yes]).startswith(" Is it right?")


def test_soft_judge_learns_and_round_trips(tmp_path):
    from tests.tiny_models import build_model, make_tokenizer
    from underdog.methods.parts.selfeval import prefill

    tokenizer = make_tokenizer()
    model = build_model("llama", tokenizer, initializer_range=0.3)  # large weights: soft tokens matter
    lm = type("LM", (), {"model": model, "tokenizer": tokenizer})
    tuned = Tuned(model, tokenizer)
    prompt, yes, no = judge_tokens(lm.tokenizer, " correct or incorrect?", " correct", " incorrect")
    answer = lm.tokenizer.encode(" the cat.", add_special_tokens=False)
    examples = [{"prompt_ids": p, "answer_ids": answer, "label": 1} for p in _ids(lm, PROMPTS)]
    judge = SoftJudge.from_text(tuned, 2, " check")
    untrained = judge.soft.detach().clone()
    losses = train_judge(tuned, examples, judge, prompt, yes, no, epochs=20, lr=0.3, batch_questions=2,
                         progress=False)
    assert losses[-1] < 0.5 * losses[0]  # a random model cannot tell answers apart, but θs moves the verdict
    assert all(not p.requires_grad for p in lm.model.parameters())
    judge.save(tmp_path / "s.safetensors")
    back = SoftJudge.load(tmp_path / "s.safetensors")
    assert torch.equal(back.soft, judge.soft.detach())
    with torch.no_grad():
        scores = []
        for soft in (untrained, back.soft):
            state, _ = prefill(tuned, [e["prompt_ids"] for e in examples])
            scores.append(two_way(suffix_logits(tuned, state, [[answer, soft, prompt]] * 3), yes, no))
    assert (scores[1] > scores[0]).all()


def test_training_examples_top_correct_and_wrong_and_the_reference_when_asked(llama_dir):
    lm = load(llama_dir, device="cpu")
    tuned = Tuned(lm.model, lm.tokenizer)
    recipe = AspireRecipe(task="world-qa")
    items = [{"id": "a", "question": "who?", "answers": ["the cat"]}, {"id": "b", "question": "what?", "answers": ["red"]}]
    sampled = [{"samples": [{"text": "the cat", "token_ids": [5], "logprob": -1, "correct": True},
                            {"text": "a cat", "token_ids": [6], "logprob": -2, "correct": False},
                            {"text": "the dog", "token_ids": [7], "logprob": -3, "correct": False},
                            {"text": "dog", "token_ids": [8], "logprob": -4, "correct": False}]},
               {"samples": [{"text": "red", "token_ids": [9], "logprob": -1, "correct": True}]}]
    ex = judge_examples(tuned, items, sampled, recipe.selfeval)  # default: no reference answers
    assert [(e["answer_ids"], e["label"]) for e in ex] == [([5], 1), ([6], 0), ([7], 0), ([9], 1), ([], 0)]
    always = judge_examples(tuned, items, sampled, recipe.selfeval.model_copy(update={"reference": "always"}))
    assert len(always) == 5 and always[0]["label"] == 1 and always[3]["label"] == 1  # the references
    assert [(e["answer_ids"], e["label"]) for e in always[1:3]] == [([6], 0), ([7], 0)]  # not the reference twice
    assert (always[4]["answer_ids"], always[4]["label"]) == ([], 0)  # the empty answer when no sample was wrong
    sampled[0]["samples"][0]["correct"] = False  # now no correct sample for "a": the reference stands in
    fallback = judge_examples(tuned, items, sampled, recipe.selfeval.model_copy(update={"reference": "if_none_correct"}))
    assert fallback[0]["label"] == 1 and fallback[0]["answer_ids"] == tuned.encode(" the cat.")
    assert [e["label"] for e in fallback] == [1, 0, 0, 1, 0]


def test_recipe_needs_one_data_source():
    with pytest.raises(ConfigError, match="give --task world-qa or both"):
        build_config(AspireRecipe, {"train": "x.jsonl"})
    with pytest.raises(ConfigError, match="not both"):
        build_config(AspireRecipe, {"task": "world-qa", "train": "a", "test": "b"})


def _qa_files(tmp_path):
    words = "cat dog mat red blue tree river stone house".split()
    rows = []
    for i in range(30):
        a, b = words[i % 9], words[(i * 4 + 1) % 9]
        rows.append({"id": f"q{i}", "context": f"the {a} sat on a {b}.", "question": f"where did the {a} sit?",
                     "answers": [f"on a {b}"]})
    for name, part in (("train", rows[:12]), ("dev", rows[12:18]), ("test", rows[18:])):
        write_jsonl(tmp_path / f"{name}.jsonl", part)


def test_study_runs_end_to_end_and_resumes_stage_two(llama_dir, gpt2_dir, tmp_path):
    _qa_files(tmp_path)
    out = tmp_path / "run"
    recipe = build_config(AspireRecipe, {
        "model": str(llama_dir), "compare_model": str(gpt2_dir), "train": str(tmp_path / "train.jsonl"),
        "dev": str(tmp_path / "dev.jsonl"), "test": str(tmp_path / "test.jsonl"), "out": str(out), "device": "cpu",
        "max_new_tokens": 4, "n_boot": 20, "baseline_samples": 2, "batch_size": 4,
        "tune": {"adapter": "prompt", "epochs": 1, "batch_size": 4, "num_virtual_tokens": 2, "max_length": 128},
        "samples": {"k": 2, "chunk": 5}, "selfeval": {"epochs": 1, "soft_tokens": 2}, "save_model": True})
    logs: list[str] = []
    results = run_aspire(recipe, log=logs.append)
    assert (out / "model" / "adapter_config.json").is_file() and (out / "model" / "theta_s.safetensors").is_file()
    for name in ("aspire-judge-only", "ptrue", "selfeval"):  # the probability scores carry their ECE
        assert 0 <= results["metrics"][f"{name}/ece"]["value"] <= 1
    assert (out / "reliability.png").stat().st_size > 1000 and (out / "results_lm_eval.json").is_file()
    metrics = results["metrics"]
    for method in ("aspire", "perplexity", "predictive_entropy", "semantic_entropy", "ptrue", "selfeval"):
        for m in ("accuracy", "auroc", "auacc", "acc@50", "acc@80", "acc@90", "prr"):
            assert {"value", "ci95"} <= set(metrics[f"{method}/{m}"])
        assert f"{gpt2_dir}:{method}/auacc" in metrics or method == "aspire"
    summary = results["summary"]
    assert 0 <= summary["alpha"] <= 1
    for m in ("auroc", "auacc"):  # "ahead" is strict: a tie (e.g. alpha 0 = perplexity) is not a win
        diffs = summary["aspire_minus_baseline"][m]
        expected = metrics[f"aspire/{m}"]["value"] - metrics[f"perplexity/{m}"]["value"]
        assert diffs["perplexity"] == pytest.approx(expected, nan_ok=True)  # nan: one class only in a tiny test
        assert summary["aspire_beats_every_baseline"][m] == all(d > 0 for d in diffs.values())
        assert not summary["aspire_ahead_beyond_ci"][m] or summary["aspire_beats_every_baseline"][m]
    assert "ASPIRE minus each baseline" in (out / "report.md").read_text()
    assert (out / "accuracy_coverage.png").is_file() and "| method |" in (out / "report.md").read_text()
    assert len((out / "answers.jsonl").read_text().splitlines()) == 12
    assert json.loads((out / "results.json").read_text())["method"] == "aspire"
    # a kill during stage 2: the second chunk never finished
    import shutil
    shutil.rmtree(out / "stages" / "sample-001")
    logs.clear()
    again = run_aspire(recipe, log=logs.append)
    done = [line for line in logs if line.startswith("stage ")]
    assert "stage tune: finished earlier, skipped" in done and "stage sample-000: finished earlier, skipped" in done
    assert any(line.startswith("stage sample-001: done") for line in done)
    assert again["metrics"]["aspire/auacc"]["value"] == pytest.approx(metrics["aspire/auacc"]["value"])


def test_cli_rejects_bad_invocations_before_writing(tmp_path, capsys):
    from underdog.cli import main

    assert main(["aspire", "--train", str(tmp_path / "t.jsonl"), "--out", str(tmp_path / "r")]) == 2
    assert "give --task world-qa or both --train and --test" in capsys.readouterr().err
    (tmp_path / "t.jsonl").write_text('{"id": "a", "question": "q?"}\n')
    assert main(["aspire", "--train", str(tmp_path / "t.jsonl"), "--test", str(tmp_path / "t.jsonl"),
                 "--out", str(tmp_path / "r")]) == 2
    assert "t.jsonl:1: missing field 'answers'" in capsys.readouterr().err
    assert main(["aspire", "--task", "world-qa", "selfeval.soft_tokens=0"]) == 2
    assert not (tmp_path / "r").exists()


def test_lora_option_tunes_and_merges(llama_dir, tmp_path):
    from underdog.methods.aspire import load_tuned, run_tune

    lm = load(llama_dir, device="cpu")
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    recipe = build_config(AspireRecipe, {"task": "world-qa", "tune": {"adapter": "lora", "epochs": 1, "batch_size": 2,
                                                                      "lr": 0.05, "max_length": 64}})
    items = [{"id": str(i), "question": "who sat?", "context": "the cat sat.", "answers": ["the cat"]} for i in range(4)]
    info = run_tune(lm, items, recipe, tmp_path)
    assert info["adapter"] == "lora" and (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert all(torch.equal(before[k], v) for k, v in lm.model.state_dict().items())  # the base is left clean
    tuned = load_tuned(lm, tmp_path)
    assert tuned.prefix is None
    assert any(not torch.equal(before[k], v) for k, v in tuned.model.state_dict().items())  # LoRA merged in
