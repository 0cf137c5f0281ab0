"""`underdog train`: the saved model scores the same through underdog and plain transformers + PEFT, merged
weights score like the adapter, a killed run resumes to the uninterrupted result, bad data names file:line."""

import json

import pytest
import torch

from underdog.cli import main
from underdog.config import build_config
from underdog.io import DataError
from underdog.lm import load, score
from underdog.methods import sft

CONTEXTS = ["Question 3: what is 3 plus one?", "Question 7: what is 7 plus one?", "The cat sat on the"]
CONTINUATIONS = [" 4.", " 8.", " mat."]


def write_data(path, n=24):
    rows = [{"prompt": f"Question {i}: what is {i} plus one?", "completion": f" {i + 1}."} for i in range(n)]
    rows += [{"text": "The cat sat on the mat."},
             {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}]}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def recipe(model, data, out, **kw):
    settings = dict(model=str(model), data=str(data), out=str(out), device="cpu", max_steps=6, batch_size=4,
                    lr=1e-2, save_every=2, max_length=64)
    return build_config(sft.Recipe, {**settings, **kw})


def plain_logprobs(folder, merged=False):
    """Sum log-probabilities of CONTINUATIONS with transformers (+ PEFT) only, reading nothing of underdog."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    if merged:
        model = AutoModelForCausalLM.from_pretrained(folder)
    else:
        base = json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"]
        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), folder)
    model.eval()
    out = []
    with torch.no_grad():
        for context, continuation in zip(CONTEXTS, CONTINUATIONS):
            ctx, whole = tok(context)["input_ids"], tok(context + continuation)["input_ids"]
            logits = model(input_ids=torch.tensor([whole])).logits[0].float()
            lp = torch.log_softmax(logits[len(ctx) - 1:-1], -1).gather(1, torch.tensor(whole[len(ctx):])[:, None])
            out.append(float(lp.sum()))
    return out


def underdog_logprobs(folder):
    return [s.logprob for s in score(load(folder, device="cpu"), CONTEXTS, CONTINUATIONS)]


def test_cli_lora_on_builtin_saves_an_adapter_underdog_and_peft_score_alike(tmp_path):
    data, out = write_data(tmp_path / "data.jsonl"), tmp_path / "D"
    code = main(["train", "--model", "builtin", "--data", str(data), "--adapter", "lora", "--out", str(out),
                 "--device", "cpu", "max_steps=4", "batch_size=8", "lr=1e-2", "max_length=64"])
    assert code == 0
    final = out / "final"
    config = json.loads((final / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(sft.resolve_model_path("builtin").resolve())
    assert (final / "adapter_model.safetensors").is_file() and (final / "tokenizer.json").is_file()
    assert not list(final.glob("*.bin"))
    card = (final / "README.md").read_text()
    assert "builtin" in card and "final loss" in card and "tokens/s" in card and "prompt/completion (24)" in card
    ours, theirs = underdog_logprobs(final), plain_logprobs(final)
    assert ours == pytest.approx(theirs, abs=1e-5)
    choices = tmp_path / "choices.jsonl"  # `underdog score --model D/final` (it puts " " before each choice)
    choices.write_text("".join(json.dumps({"id": i, "context": c, "choices": [x.lstrip(), "no."], "answer": 0}) + "\n"
                               for i, (c, x) in enumerate(zip(CONTEXTS, CONTINUATIONS))))
    assert main(["score", "--model", str(final), "--data", str(choices), "--out", str(tmp_path / "S")]) == 0
    items = [json.loads(line) for line in (tmp_path / "S" / "items.jsonl").read_text().splitlines()]
    assert [it["logprobs"][0] for it in items] == pytest.approx(theirs, abs=1e-5)
    base = [s.logprob for s in score(load("builtin", device="cpu"), CONTEXTS, CONTINUATIONS)]
    assert max(abs(a - b) for a, b in zip(ours, base)) > 1e-3  # training changed the model
    results = json.loads((out / "results.json").read_text())
    assert results["method"] == "train" and results["training"]["steps"] == 4


def test_merged_weights_score_like_the_adapter(tmp_path, llama_dir):
    data = write_data(tmp_path / "data.jsonl")
    sft.run(recipe(llama_dir, data, tmp_path / "adapter"), log=lambda _: None)
    sft.run(recipe(llama_dir, data, tmp_path / "merged", merge=True), log=lambda _: None)
    merged = tmp_path / "merged" / "final"
    assert (merged / "model.safetensors").is_file() and not (merged / "adapter_config.json").exists()
    adapter = underdog_logprobs(tmp_path / "adapter" / "final")
    assert underdog_logprobs(merged) == pytest.approx(adapter, abs=1e-4)
    assert plain_logprobs(merged, merged=True) == pytest.approx(adapter, abs=1e-4)


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, llama_dir, monkeypatch):
    data = write_data(tmp_path / "data.jsonl")
    quiet = lambda _: None  # noqa: E731
    full = sft.run(recipe(llama_dir, data, tmp_path / "full", adapter="full"), log=quiet)

    class Killed(Exception):
        pass

    def die_at_3(info):
        if info["step"] == 3:
            raise Killed

    real_train = sft.train
    monkeypatch.setattr(sft, "train", lambda *a, **k: real_train(*a, **k, callback=die_at_3))
    with pytest.raises(Killed):
        sft.run(recipe(llama_dir, data, tmp_path / "b", adapter="full"), log=quiet)
    assert not (tmp_path / "b" / "final").exists() or not (tmp_path / "b" / "results.json").exists()
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").glob("step_*")) == ["step_2"]
    monkeypatch.setattr(sft, "train", real_train)
    messages = []
    resumed = sft.run(recipe(llama_dir, data, tmp_path / "b", adapter="full"), log=messages.append)
    assert resumed["training"]["losses"] == pytest.approx(full["training"]["losses"], rel=1e-6)
    ours = underdog_logprobs(tmp_path / "b" / "final")
    assert ours == pytest.approx(underdog_logprobs(tmp_path / "full" / "final"), abs=1e-5)

    again = []
    sft.run(recipe(llama_dir, data, tmp_path / "b", adapter="full"), log=again.append)
    assert any("skipped" in m for m in again)
    sft.run(recipe(llama_dir, data, tmp_path / "b", adapter="full", lr=2e-2), log=again.append)  # other settings
    assert any("training from the start" in m for m in again)


def test_bad_example_names_file_and_line(tmp_path, llama_dir):
    data = tmp_path / "bad.jsonl"
    data.write_text('{"prompt": "a", "completion": "b"}\n\n{"question": "a"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:3: unrecognised fields \['question'\]"):
        sft.run(recipe(llama_dir, data, tmp_path / "out"), log=lambda _: None)
    with pytest.raises(Exception, match="merge"):
        recipe(llama_dir, data, tmp_path / "out", adapter="prompt", merge=True)


def test_a_gathered_state_dict_rebuilds_the_trained_model_on_the_cpu(tmp_path, llama_dir):
    """What `underdog train` saves under FSDP, where the trained model stays sharded: base + adapter + state."""
    from underdog.train import apply_adapter

    r = recipe(llama_dir, write_data(tmp_path / "d.jsonl"), tmp_path / "out", lora_r=4)
    trained = apply_adapter(load(llama_dir, device="cpu").model, "lora", **r.train_config().adapter_kwargs())
    with torch.no_grad():
        for name, p in trained.named_parameters():
            if "lora_B" in name:
                p.normal_()
    rebuilt = sft.unsharded(r, r.train_config(), trained.state_dict(), None)
    ids = torch.tensor([[1, 5, 9, 12, 7]])
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(input_ids=ids).logits, trained.eval()(input_ids=ids).logits)


def test_output_dir_is_no_flag_and_refused_as_a_key(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--output-dir" not in capsys.readouterr().out
    data = write_data(tmp_path / "d.jsonl")
    assert main(["train", f"--data={data}", f"--out={tmp_path / 'run'}", "output_dir=elsewhere"]) == 2
    assert "set out, not output_dir" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
