import pytest
import torch
from transformers import LlamaForCausalLM

from tests.tiny_models import build_model, make_tokenizer
from underdog.pretrain.grow import (
    collapsed_tokens,
    deepen_state_dict,
    perturb,
    separate_embeddings,
    widen_factor,
    widen_state_dict,
)
from underdog.pretrain.recipe import token_groups


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


def test_deepened_model_computes_the_same_logits_and_its_new_layers_can_learn():
    tok = make_tokenizer()
    small = build_model("llama", tok, seed=4, num_hidden_layers=2)
    deep = LlamaForCausalLM(type(small.config)(**{**small.config.to_dict(), "num_hidden_layers": 3})).eval()
    deep.load_state_dict(deepen_state_dict(small.state_dict(), 3))
    layers = deep.model.layers
    assert torch.equal(layers[1].self_attn.q_proj.weight, layers[0].self_attn.q_proj.weight)  # 0, 0', 1
    assert not layers[1].mlp.down_proj.weight.any() and layers[2].mlp.down_proj.weight.any()
    ids = torch.randint(3, len(tok), (2, 17))
    with torch.no_grad():
        expected = small(ids).logits
    torch.testing.assert_close(deep(ids).logits, expected, atol=1e-5, rtol=1e-5)
    deep(ids, labels=ids).loss.backward()
    assert layers[1].self_attn.o_proj.weight.grad.abs().sum() > 0  # the silent layer gets a gradient
    with pytest.raises(ValueError, match="only deepen"):
        deepen_state_dict(small.state_dict(), 1)


def test_widen_factor_refuses_shapes_it_cannot_grow():
    small = {"hidden_size": 32, "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 64,
             "num_hidden_layers": 2, "vocab_size": 300}
    with pytest.raises(ValueError, match="integer factor"):
        widen_factor(small, {**small, "hidden_size": 64, "num_attention_heads": 4})  # head size would change
    with pytest.raises(ValueError, match="integer factor"):
        widen_factor(small, {**small, "hidden_size": 48, "num_attention_heads": 6, "intermediate_size": 96})


def test_collapsed_embeddings_are_redrawn_apart_around_their_mean_and_the_rest_kept():
    tok = make_tokenizer()
    model = build_model("llama", tok, seed=3, tie_word_embeddings=True)  # as the built-in models
    weight = model.get_input_embeddings().weight
    [[a, b]] = token_groups(tok, [[" green", " tree"]])
    with torch.no_grad():
        weight[b] = weight[a] + 1e-4  # collapsed, as stage 7 left " more" and " less"
    before = weight.detach().clone()
    separate_embeddings(model, [[a, b]], scale=0.5, seed=1)
    after = model.get_input_embeddings().weight.detach()
    assert torch.nn.functional.cosine_similarity(after[a], after[b], dim=0) < 0.9
    spread = (after[[a, b]] - (before[a] + before[b]) / 2).norm(dim=1)
    expected = 0.5 * before.std() * before.shape[1] ** 0.5  # norm of the added noise
    assert ((spread > expected / 2) & (spread < expected * 2)).all()
    others = [i for i in range(len(tok)) if i not in (a, b)]
    assert torch.equal(after[others], before[others])
    assert torch.equal(model.get_output_embeddings().weight, after)  # the output side moves with it (tied)
    again = build_model("llama", tok, seed=3, tie_word_embeddings=True)
    with torch.no_grad():
        again.get_input_embeddings().weight.copy_(before)
    separate_embeddings(again, [[a, b]], scale=0.5, seed=1)
    assert torch.equal(again.get_input_embeddings().weight, after)  # seeded


def test_an_untied_output_embedding_is_redrawn_with_the_same_noise_so_its_rows_stay_aligned():
    tok = make_tokenizer()
    model = build_model("llama", tok, seed=3, tie_word_embeddings=False)
    with torch.no_grad():
        model.get_output_embeddings().weight.copy_(model.get_input_embeddings().weight)  # as an untied stage starts
    [[a, b]] = token_groups(tok, [[" green", " tree"]])
    separate_embeddings(model, [[a, b]], scale=1.0, seed=2)
    inp, out = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert inp is not out and torch.allclose(inp[[a, b]], out[[a, b]])
    assert torch.nn.functional.cosine_similarity(inp[a], inp[b], dim=0) < 0.9


def test_token_groups_name_strings_that_are_not_one_token():
    tok = make_tokenizer()
    with pytest.raises(ValueError, match="single tokens"):
        token_groups(tok, [[" green", " green tree"]])
    with pytest.raises(ValueError, match="single tokens"):
        token_groups(tok, [[" green"]])


def test_collapsed_tokens_reports_frequent_tokens_with_coinciding_embeddings():
    tok = make_tokenizer()
    model = build_model("llama", tok, seed=3, tie_word_embeddings=True)
    [[green, tree]] = token_groups(tok, [[" green", " tree"]])
    texts = ["a green tree and a tree ."] * 40 + ["the green one ."] * 10
    assert collapsed_tokens(model, tok, texts) == []  # random embeddings: nothing coincides
    with torch.no_grad():
        weight = model.get_input_embeddings().weight
        weight[tree] = weight[green] * 2  # same direction, other norm: cosine 1
    assert collapsed_tokens(model, tok, texts) == [(" green", " tree", 1.0)]
    assert collapsed_tokens(model, tok, texts, min_count=51) == []  # " green" is seen 50 times
    assert collapsed_tokens(model, tok, texts, min_count=50) == [(" green", " tree", 1.0)]


def test_interpolated_weights_lie_between_the_start_and_the_trained_ones():
    from underdog.pretrain.grow import interpolate_state_dicts

    start, trained = {"w": torch.zeros(2, 3), "b": torch.ones(3)}, {"w": torch.full((2, 3), 4.0), "b": torch.zeros(3)}
    mid = interpolate_state_dicts(start, trained, 0.25)
    torch.testing.assert_close(mid["w"], torch.full((2, 3), 1.0))
    torch.testing.assert_close(mid["b"], torch.full((3,), 0.75))
    with pytest.raises(ValueError, match="differ in names"):
        interpolate_state_dicts(start, {"w": trained["w"]}, 0.5)
