"""Tiny tokenizers and models built in code for the training tests (nothing is downloaded).

``make_tokenizer`` trains a byte-level BPE on a few sentences in a few milliseconds and wraps it in a
``PreTrainedTokenizerFast``; ``tiny_llama`` and ``tiny_gpt2`` build randomly initialised 2-layer models.
"""

from __future__ import annotations

import functools

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CORPUS = [
    "the capital of france is paris . the capital of italy is rome .",
    "question : what is two plus two ? answer : four",
    "<|im_start|>user\nhello there<|im_end|>\n<|im_start|>assistant\nhi , how can i help ?<|im_end|>\n",
    "zorp is bigger than blick . blick is bigger than quan . so zorp is bigger than quan .",
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu",
]
SPECIALS = ["<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"]


@functools.cache
def _trained_bpe() -> str:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return tok.to_str()


def make_tokenizer(*, bos: bool = True, pad_is_eos: bool = False, chat_template: str | None = None):
    """A fast byte-level BPE tokenizer; ``bos=True`` adds ``<s>`` like Llama, ``False`` behaves like GPT-2."""
    tok = Tokenizer.from_str(_trained_bpe())
    if bos:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))]
        )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="</s>" if pad_is_eos else "<pad>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    if chat_template is not None:
        fast.chat_template = chat_template
    return fast


def tiny_llama(vocab_size: int, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, bos_token_id=0, eos_token_id=1, pad_token_id=2,
    )
    return LlamaForCausalLM(cfg)


def tiny_gpt2(vocab_size: int, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=256,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=0, eos_token_id=1,
    )
    return GPT2LMHeadModel(cfg)


WORDS = CORPUS[-1].split()


def varied_examples(n: int, seed: int = 0) -> list[dict]:
    """``n`` prompt/completion pairs of different lengths."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        k, m = 1 + i % 4, 1 + (i * 3) % 5
        idx = torch.randint(len(WORDS), (k + m,), generator=g).tolist()
        out.append({"prompt": " ".join(WORDS[j] for j in idx[:k]) + " :", "completion": " " + " ".join(WORDS[j] for j in idx[k:])})
    return out


def ddp_case():
    """The model, data and config shared by the DDP script and the single-process reference."""
    tokenizer = make_tokenizer()
    model = tiny_llama(len(tokenizer), seed=1)
    config = {"lr": 3e-3, "max_steps": 4, "grad_accum": 1, "seed": 3, "max_length": 64, "log_every": 1,
              "max_grad_norm": 1.0, "weight_decay": 0.01, "warmup_ratio": 0.25}
    return model, tokenizer, varied_examples(8), config
