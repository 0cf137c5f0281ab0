"""Shared pieces for the benchmarks: a ~20M-parameter Llama with a BPE tokenizer and a small (3-layer, 96-wide)
Llama with a word-level tokenizer, built in code, and a text generator for prompts. Nothing is downloaded. The model's weights are random (scaled up so logits are not
near-uniform, which would make greedy ties a coin flip); speed and agreement do not depend on training."""

from __future__ import annotations

import random
import tempfile

import torch

WORDS = ("the of and to in is was for on are with as by at from this that have more less than all some no "
         "cat dog bird tree river stone house red blue green big small fast slow heavy light bright dark "
         "question answer yes no true false correct incorrect because therefore first then finally").split()


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) + (rng.choice(["", "s", "ed", "ing"]) if rng.random() < 0.2 else "")
                    for _ in range(n_words))


def _save_and_load(model, tokenizer):
    from underdog.lm import load

    path = tempfile.mkdtemp(prefix="underdog-bench-")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return load(path, device="cpu", dtype="float32")


def _llama(tokenizer, hidden: int, layers: int, head_dim: int, seed: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                      num_hidden_layers=layers, num_attention_heads=hidden // head_dim,
                      num_key_value_heads=hidden // head_dim, max_position_embeddings=1024, bos_token_id=1,
                      eos_token_id=2, pad_token_id=0, initializer_range=0.08)
    return LlamaForCausalLM(cfg)


def build_small_lm(hidden: int = 96, layers: int = 3, seed: int = 0):
    """A random 3-layer, 96-wide Llama (~0.37M parameters) with a word-level tokenizer over ``WORDS`` and their
    suffixed forms (one token per word, BOS prepended), like the built-in models' scale."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3}
    for word in WORDS:
        for suffix in ("", "s", "ed", "ing"):
            vocab.setdefault(word + suffix, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                        unk_token="<unk>")
    return _save_and_load(_llama(tokenizer, hidden, layers, head_dim=32, seed=seed), tokenizer)


def build_lm(hidden: int = 384, layers: int = 8, vocab: int = 8192, seed: int = 0):
    """Save a random Llama (~20M parameters at the defaults) and its tokenizer to a temp dir and load it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(seed)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    corpus = [text(rng, 50) for _ in range(4000)] + ["".join(rng.choice("abcdefghijklmnop") for _ in range(8))
                                                       for _ in range(20000)]
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    return _save_and_load(_llama(tokenizer, hidden, layers, head_dim=64, seed=seed), tokenizer)
