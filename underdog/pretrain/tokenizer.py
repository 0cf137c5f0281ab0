"""The built-in tokenizer: byte-level BPE trained on world text with a small vocabulary.

A small vocabulary keeps nonsense words in pieces: any one nonsense word is rare across the many pretraining
worlds, while its syllables are frequent, so BPE learns syllables (and the frequent English words of the
templates) but not whole nonsense words. An unseen word from a fresh world therefore splits into known
syllable pieces, which is what lets a tiny model copy and reason over words it has never seen. Special tokens
cover ChatML (``<|im_start|>``, ``<|im_end|>``) so chat-formatted methods work on the built-in model.
"""

from __future__ import annotations

from collections.abc import Iterable

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]

# Plain English the methods need, made sure to be in the training text even if the world mix is light on it.
EXTRA_TEXT = [
    "Question: Answer: True or false? True. False. Yes. No. correct incorrect Correct Incorrect",
    "Is the proposed answer correct? The answer is correct. The answer is incorrect.",
    "You are a helpful assistant. Think step by step. First recall the relevant facts, then reason, then answer.",
    "system user assistant Let us think step by step. Therefore, the answer is",
    " ".join(str(i) for i in range(200)),
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024):
    """Train a byte-level BPE tokenizer and wrap it as a ``PreTrainedTokenizerFast`` (BOS added on encode)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts) + EXTRA_TEXT * 20, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"],
                                   model_max_length=1_000_000)
