"""`underdog scale`'s annealed family: one constant-rate trunk per size, a cooldown branch saved at every budget."""

import json

import torch

from underdog.lm.load import resolve_model_path
from underdog.methods import scale_family as fam


def _texts(tmp_path):
    words = "the red fox saw a blue bird near the old mill and ran home to tell Mira about it".split()
    lines = [" ".join(words[i % 7:] + words[: i % 7]) + f" number {i}." for i in range(120)]
    path = tmp_path / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in lines), encoding="utf-8")
    return str(path)


def _weights(folder):
    from transformers import AutoModelForCausalLM

    return {k: v.clone() for k, v in AutoModelForCausalLM.from_pretrained(folder).state_dict().items()}


def test_cooldown_saves_an_annealed_branch_at_every_budget(tmp_path):
    texts, tok = _texts(tmp_path), str(resolve_model_path("builtin"))
    args = dict(size="8x1", texts_path=texts, tokenizer_dir=tok, budgets=[300, 600, 1200], seq_len=64, batch_size=2,
                lr=3e-3, warmup_ratio=0.05, seed=0)
    (tmp_path / "c").mkdir()
    (tmp_path / "k").mkdir()
    cooled = fam.train_size(tmp_path / "c", cooldown=0.25, **args)
    constant = fam.train_size(tmp_path / "k", **args)
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["1200", "300", "600"]  # trunk and branch gone
    for ck, ref in zip(cooled["checkpoints"], constant["checkpoints"]):
        assert ck["tokens"] >= ck["budget"] and abs(ck["step"] - ref["step"]) <= 1  # about the constant run's steps
        assert ck["branch_step"] == ck["step"] - max(1, round(0.25 * ck["step"])) < ck["step"]
        a, b = _weights(tmp_path / "c" / ck["dir"]), _weights(tmp_path / "k" / ref["dir"])
        assert any(not torch.equal(a[k], b[k]) for k in a)  # the cooldown changed the model
    assert cooled["params"] == constant["params"] and cooled["seconds"] > 0
