"""Tiny Llama and GPT-2 models with a BPE tokenizer, built in code (nothing downloaded), for every test.

``make_tokenizer`` trains a byte-level BPE on a toy corpus in milliseconds (with ChatML markers as special
tokens, and options for a GPT-2-like tokenizer without BOS or one whose pad is EOS); ``build_model`` builds a
randomly initialised 2-layer Llama or GPT-2 (no dropout) for it; ``varied_examples`` makes prompt/completion
pairs of different lengths for training tests.
"""

from __future__ import annotations

import functools
import random

import torch

WORDS = ("the cat dog sat on a mat red blue green big small ran far near house tree river stone "
         "question answer yes no true false correct incorrect more less than all some are is of").split()
CHAT_MARKERS = ["<|im_start|>", "<|im_end|>"]


def make_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + "." for _ in range(n)]


@functools.cache
def _trained_bpe(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<s>", "</s>", *CHAT_MARKERS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(make_corpus(), trainer)
    return tok.to_str()


def make_tokenizer(add_bos: bool = True, vocab_size: int = 300, pad_is_eos: bool = False,
                   chat_template: str | None = None):
    """A byte-level BPE tokenizer wrapped as a PreTrainedTokenizerFast; ``add_bos`` prepends ``<s>`` like
    Llama (``False`` behaves like GPT-2); ``pad_is_eos`` makes ``</s>`` the pad token too."""
    from tokenizers import Tokenizer, processors
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer.from_str(_trained_bpe(vocab_size))
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                                   pad_token="</s>" if pad_is_eos else "<pad>",
                                   additional_special_tokens=CHAT_MARKERS)
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def build_model(arch: str, tokenizer, seed: int = 0, **overrides):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    common = dict(vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    if arch == "llama":
        cfg = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                          num_key_value_heads=2, max_position_embeddings=256, **common)
        cfg.update(overrides)
        return LlamaForCausalLM(cfg).eval()
    cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, resid_pdrop=0.0, embd_pdrop=0.0,
                     attn_pdrop=0.0, **common)
    cfg.update(overrides)
    return GPT2LMHeadModel(cfg).eval()


def save_model_dir(path, arch: str, seed: int = 0):
    tokenizer = make_tokenizer(add_bos=(arch == "llama"))
    model = build_model(arch, tokenizer, seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def varied_examples(n: int, seed: int = 0) -> list[dict]:
    """``n`` prompt/completion pairs of different lengths."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        k, m = 1 + i % 4, 1 + (i * 3) % 5
        idx = torch.randint(len(WORDS), (k + m,), generator=g).tolist()
        out.append({"prompt": " ".join(WORDS[j] for j in idx[:k]) + " :",
                    "completion": " " + " ".join(WORDS[j] for j in idx[k:])})
    return out
