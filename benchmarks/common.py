"""Shared pieces for the benchmarks: a ~20M-parameter Llama and a BPE tokenizer built in code, and a text
generator for prompts. Nothing is downloaded. The model's weights are random (scaled up so logits are not
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


def build_lm(hidden: int = 384, layers: int = 8, vocab: int = 8192, seed: int = 0):
    """Save a random Llama (~20M parameters at the defaults) and its tokenizer to a temp dir and load it."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from underdog.lm import load

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
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=hidden * 8 // 3,
                      num_hidden_layers=layers, num_attention_heads=hidden // 64, num_key_value_heads=hidden // 64,
                      max_position_embeddings=1024, bos_token_id=1, eos_token_id=2, pad_token_id=0,
                      initializer_range=0.08)
    model = LlamaForCausalLM(cfg)
    path = tempfile.mkdtemp(prefix="underdog-bench-")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return load(path, device="cpu", dtype="float32")
