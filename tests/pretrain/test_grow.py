import pytest
import torch
from transformers import LlamaForCausalLM

from tests.tiny_models import build_model, make_tokenizer
from underdog.pretrain.grow import perturb, widen_factor, widen_state_dict


@pytest.mark.parametrize("tied", [True, False])
def test_widened_model_computes_the_same_logits(tied):
    tok = make_tokenizer()
    small = build_model("llama", tok, seed=3, tie_word_embeddings=tied)
    with torch.no_grad():  # non-trivial norms, so tiling them is exercised
        for name, p in small.named_parameters():
            if name.endswith("norm.weight"):
                p.uniform_(0.5, 1.5)
    cfg = small.config.to_dict()
    large_cfg = type(small.config)(**{**cfg, "hidden_size": 64, "intermediate_size": 128,
                                      "num_attention_heads": 8, "num_key_value_heads": 4, "head_dim": 8})
    assert widen_factor(cfg, large_cfg.to_dict()) == 2
    large = LlamaForCausalLM(large_cfg).eval()
    missing, unexpected = large.load_state_dict(widen_state_dict(small.state_dict(), 2), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    assert sum(p.numel() for p in large.parameters()) > 2.5 * sum(p.numel() for p in small.parameters())
    ids = torch.randint(3, len(tok), (2, 17))
    with torch.no_grad():
        expected, got = small(ids).logits, large(ids).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    perturb(large, scale=1e-2)
    with torch.no_grad():
        moved = large(ids).logits
    assert 0 < (moved - expected).abs().max() < 0.5  # copies now differ, the function barely moves


def test_widen_factor_refuses_shapes_it_cannot_grow():
    small = {"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
             "num_hidden_layers": 2, "vocab_size": 300}
    with pytest.raises(ValueError, match="integer factor"):
        widen_factor(small, {**small, "hidden_size": 64, "num_attention_heads": 4})  # head size would change
    with pytest.raises(ValueError, match="integer factor"):
        widen_factor(small, {**small, "hidden_size": 48, "num_attention_heads": 6, "intermediate_size": 96})
