"""The cache keyword underdog passes is the one the installed transformers' forward takes and returns."""

import inspect

import torch
from transformers import LlamaForCausalLM

from tests.tiny_models import build_model, make_tokenizer
from underdog.lm.kv import CACHE_ARG, cache_kwargs, returned_cache


def test_cache_keyword_is_a_forward_argument_of_the_installed_transformers():
    assert CACHE_ARG in inspect.signature(LlamaForCausalLM.forward).parameters


def test_a_reused_cache_gives_the_logits_of_the_whole_sequence():
    tokenizer = make_tokenizer()
    model = build_model("llama", tokenizer).eval()
    ids = torch.tensor([tokenizer.encode("the cat sat on the mat")])
    with torch.no_grad():
        whole = model(input_ids=ids).logits[0, -1]
        first = model(input_ids=ids[:, :-1], use_cache=True)
        last = model(input_ids=ids[:, -1:], **cache_kwargs(returned_cache(first)), use_cache=True).logits[0, -1]
    assert torch.allclose(whole, last, atol=1e-5)
