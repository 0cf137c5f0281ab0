"""Training FLOPs per token against torch's own FLOP counter (``torch.utils.flop_counter``) on models built here."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from tests.tiny_models import make_tokenizer, varied_examples
from underdog.config import TrainConfig
from underdog.train import apply_adapter, train
from underdog.train.flops import flops_per_token, matmul_params, mfu, peak_flops


def llama(tied: bool = True):
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=176, num_hidden_layers=3,
                                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied,
                                        attn_implementation="eager"))


def gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=300, n_embd=64, n_layer=3, n_head=4, n_positions=256,
                                      bos_token_id=1, eos_token_id=2, attn_implementation="eager"))


def counted_per_token(model, context: int) -> float:
    """FLOPs torch counts for one forward + backward of a 2 x ``context`` batch, per token (eager attention, so
    the attention matrix products are visible to the counter)."""
    x = torch.randint(0, 300, (2, context))
    with FlopCounterMode(display=False) as counter:
        model(input_ids=x, labels=x).loss.backward()
    return counter.get_total_flops() / (2 * context)


@pytest.mark.parametrize("build", [llama, lambda: llama(tied=False), gpt2], ids=["llama", "llama-untied", "gpt2"])
@pytest.mark.parametrize("context", [16, 96])
def test_full_training_flops_match_torch_counter(build, context):
    model = build()
    assert flops_per_token(model, context) == counted_per_token(model, context)


def test_lora_counts_no_weight_gradients_for_frozen_weights():
    model = apply_adapter(llama(), "lora", r=4)
    n, trainable = matmul_params(model)
    assert 0 < trainable < n / 10
    # 2.3% high here: the first layer's frozen projections read the embedding, which needs no gradient, so
    # autograd skips their input gradient too; one layer of three here, one of dozens in a real model
    assert flops_per_token(model, 32) == pytest.approx(counted_per_token(model, 32), rel=0.03)
    assert flops_per_token(model, 32) < flops_per_token(llama(), 32) * 0.8  # no 2N of weight gradients


def test_mfu_needs_a_known_peak():
    assert peak_flops("cpu") is None
    assert mfu(1000.0, 6e6, None) is None
    assert mfu(1000.0, 6e6, 1.2e10) == pytest.approx(0.5)


def test_the_trainer_reports_mfu_only_on_a_known_card(tmp_path):
    seen = []
    train(llama(), make_tokenizer(), varied_examples(8), TrainConfig(adapter="full", max_steps=2, batch_size=4),
          callback=seen.append)
    assert [info["step"] for info in seen] == [1, 2]
    assert all("mfu" in info and info["mfu"] is None for info in seen)  # a CPU has no peak to divide by
