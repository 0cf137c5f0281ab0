"""Tiny Llama and GPT-2 models with a BPE tokenizer, built in code (nothing downloaded), for every test."""

from __future__ import annotations

import random

import torch

WORDS = ("the cat dog sat on a mat red blue green big small ran far near house tree river stone "
         "question answer yes no true false correct incorrect more less than all some are is of").split()


def make_corpus(n: int = 400, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) + "." for _ in range(n)]


def make_tokenizer(add_bos: bool = True, vocab_size: int = 300):
    """A byte-level BPE tokenizer trained on a toy corpus, wrapped as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    special = ["<pad>", "<s>", "</s>"]
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(make_corpus(), trainer)
    if add_bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


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
    cfg = GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)
    cfg.update(overrides)
    return GPT2LMHeadModel(cfg).eval()


def save_model_dir(path, arch: str, seed: int = 0):
    tokenizer = make_tokenizer(add_bos=(arch == "llama"))
    model = build_model(arch, tokenizer, seed=seed)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
