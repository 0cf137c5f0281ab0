"""LoRA and prompt tuning train only their own parameters and round-trip through safetensors."""

import pytest
import torch

from tests.tiny_models import build_model, make_tokenizer, varied_examples
from underdog.train import TrainConfig, apply_adapter, load_adapter, save_trained, train, trainable_parameters


@pytest.mark.parametrize(
    "arch, adapter, options",
    [
        ("llama", "lora", {"r": 4, "alpha": 8}),
        ("gpt2", "lora", {"r": 4}),
        ("llama", "prompt", {"num_virtual_tokens": 4, "init_text": "question : answer"}),
    ],
)
def test_adapter_trains_only_itself_and_reloads(tmp_path, arch, adapter, options):
    tok = make_tokenizer(add_bos=arch == "llama")
    base = build_model(arch, tok)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    config = TrainConfig(lr=1e-2, max_steps=3, batch_size=4, adapter=adapter, adapter_options=options,
                         packing=True, max_length=64)  # packing falls back to padding for prompt tuning
    result = train(base, tok, varied_examples(8), config)
    model = result.model
    trained = trainable_parameters(model)
    assert trained and all(("lora_" in n) or ("prompt_encoder" in n) for n in trained)
    after = model.get_base_model().state_dict()
    for k, v in before.items():  # base weights unchanged (LoRA layers wrap them as base_layer)
        key = k if k in after else k.replace(".weight", ".base_layer.weight").replace(".bias", ".base_layer.bias")
        torch.testing.assert_close(after[key], v, rtol=0, atol=0, msg=k)

    out = save_trained(model, tmp_path / "adapter")
    files = sorted(p.name for p in out.iterdir())
    assert "adapter_model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pkl")) for f in files)

    ids = torch.tensor([tok("zorp is bigger than")["input_ids"]])
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        reloaded = load_adapter(build_model(arch, tok), out)
        reloaded.eval()
        torch.testing.assert_close(reloaded(input_ids=ids).logits, expected)
        assert not torch.allclose(build_model(arch, tok)(input_ids=ids).logits, expected[:, -ids.shape[1]:])


def test_prompt_init_text_uses_token_embeddings():
    tok = make_tokenizer()
    base = build_model("llama", tok)
    model = apply_adapter(base, "prompt", num_virtual_tokens=3, init_text="alpha", tokenizer=tok)
    ids = tok("alpha", add_special_tokens=False)["input_ids"]
    expected = base.get_input_embeddings().weight[(ids * 3)[:3]]
    torch.testing.assert_close(model.prompt_encoder["default"].embedding.weight, expected)


def test_full_and_bad_options(tmp_path):
    tok = make_tokenizer()
    model = apply_adapter(build_model("llama", tok), "full")
    assert all(p.requires_grad for p in model.parameters())
    out = save_trained(model, tmp_path / "full", tok)
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    with pytest.raises(ValueError, match="unknown options"):
        apply_adapter(build_model("llama", tok), "lora", rank=4)
    with pytest.raises(ValueError, match="adapter kind"):
        apply_adapter(build_model("llama", tok), "ia3")
    with pytest.raises(ValueError, match="no adapter"):
        load_adapter(build_model("llama", tok), out)
