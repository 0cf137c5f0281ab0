"""Loading: local dirs load offline; missing, partial, corrupt or pickled-only dirs give one-line errors."""

import json
import shutil

import pytest
import torch

from underdog.lm import ModelLoadError, load
from underdog.lm.chat import format_chat


def test_loads_llama_and_gpt2(llama_dir, gpt2_dir):
    for d, arch in [(llama_dir, "llama"), (gpt2_dir, "gpt2")]:
        lm = load(d, device="cpu")
        assert lm.info["architecture"] == arch
        assert lm.tokenizer.pad_token_id is not None
        assert not lm.model.training


def _copy(src, tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("damage, message", [
    ("missing", "does not exist"),
    ("no_config", "no config.json"),
    ("bad_config", "not valid JSON"),
    ("no_weights", "no weights"),
    ("corrupt", "could not load"),
    ("pickle_only", "allow_pickle"),
    ("partial", "missing shard"),
    ("no_tokenizer", "no tokenizer"),
])
def test_bad_dirs_give_one_line_errors(llama_dir, tmp_path, damage, message):
    d = _copy(llama_dir, tmp_path, damage)
    if damage == "missing":
        d = tmp_path / "nowhere"
    elif damage == "no_config":
        (d / "config.json").unlink()
    elif damage == "bad_config":
        (d / "config.json").write_text("{not json")
    elif damage == "no_weights":
        (d / "model.safetensors").unlink()
    elif damage == "corrupt":
        (d / "model.safetensors").write_bytes(b"\x00" * 64)
    elif damage == "pickle_only":
        lm = load(llama_dir, device="cpu")
        (d / "model.safetensors").unlink()
        torch.save(lm.model.state_dict(), d / "pytorch_model.bin")
    elif damage == "partial":
        (d / "model.safetensors.index.json").write_text(json.dumps(
            {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    elif damage == "no_tokenizer":
        for f in d.glob("tokenizer*"):
            f.unlink()
    with pytest.raises(ModelLoadError) as err:
        load(d, device="cpu")
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_pickle_loads_only_when_allowed(llama_dir, tmp_path):
    d = _copy(llama_dir, tmp_path, "pickled")
    lm = load(llama_dir, device="cpu")
    (d / "model.safetensors").unlink()
    torch.save(lm.model.state_dict(), d / "pytorch_model.bin")
    again = load(d, device="cpu", allow_pickle=True)
    x = torch.tensor([[1, 2, 3]])
    assert torch.allclose(lm.model(x).logits, again.model(x).logits, atol=1e-6)


def test_chat_falls_back_to_chatml(tiny_lm):
    text = format_chat(tiny_lm.tokenizer, [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "hi"}])
    assert text == "<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_chat_uses_tokenizer_template(llama_dir):
    lm = load(llama_dir, device="cpu")
    lm.tokenizer.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    assert format_chat(lm.tokenizer, [{"role": "user", "content": "hi"}]) == "[user] hi\n"
