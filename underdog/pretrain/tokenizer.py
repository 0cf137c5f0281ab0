"""The built-in tokenizer: byte-level BPE trained on world text with a small vocabulary, and two options.

A small vocabulary keeps nonsense words in pieces: any one nonsense word is rare across the many pretraining
worlds while its letter groups are frequent, so BPE learns those groups and the template's English words, not
whole nonsense words, and an unseen word from a fresh world splits into known pieces (at vocabulary 1024 most
names start with a lone capital letter: " K|oms|an"). ``syllables`` cuts every non-English word at its
syllables before BPE; ``caseless`` gives every word one token form wherever it stands. Special tokens cover
ChatML (``<|im_start|>``, ``<|im_end|>``) so chat-formatted methods work on the built-in model.
"""

from __future__ import annotations

import json
import re
import string
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


_CONSONANT = "[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z]"
_VOWEL = "[aeiouAEIOU]"
# one syllable: an onset, a vowel, and a coda when another consonant follows (or the word ends in consonants)
_SYLLABLE = f" ?{_CONSONANT}*{_VOWEL}(?:{_CONSONANT}(?={_CONSONANT})|{_CONSONANT}+(?![A-Za-z]))?"


def syllable_pattern(texts: Iterable[str]) -> str:
    """The pre-tokenizer regex of a ``syllables`` tokenizer: the English words of ``texts`` (words of the
    stop list, so every template word) whole, any other word cut into syllables."""
    from underdog.world.words import stopwords

    english = stopwords()
    seen = {w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)} & english
    words = "|".join(sorted(seen, key=lambda w: (-len(w), w)))
    return f" ?(?<![A-Za-z])(?i:{words})(?![A-Za-z])|{_SYLLABLE}"


def caseless_normalizer():
    """Every line starts with a space and every capital becomes ``^ `` and its lower case, so a word takes
    the same tokens at a line's start, inside a line, and capitalized or not (" ^ rislos are" / "than rislos")."""
    from tokenizers import normalizers

    capitals = [normalizers.Replace(c, f"^ {c.lower()}") for c in string.ascii_uppercase]
    return normalizers.Sequence([normalizers.Prepend(" "), normalizers.Replace("\n", "\n "), *capitals])


def caseless_decoder():
    """The inverse of ``caseless_normalizer`` on byte-level tokens (a text that itself held ``^ x`` decodes
    with a capital there; a decoded span loses one leading space)."""
    from tokenizers import decoders

    capitals = [decoders.Replace(f"^ {c.lower()}", c) for c in string.ascii_uppercase]
    return decoders.Sequence([decoders.ByteLevel(), decoders.Fuse(), *capitals, decoders.Replace("\n ", "\n"),
                              decoders.Strip(" ", 1, 0)])


def tokenizer_options(tokenizer) -> list[str]:
    """Which of ``train_tokenizer``'s options a (saved, reloaded) tokenizer was trained with."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    pre, norm = spec.get("pre_tokenizer") or {}, json.dumps(spec.get("normalizer"))
    syllables = any(p.get("type") == "Split" for p in pre.get("pretokenizers", []))
    return ["syllables"] * syllables + ["caseless"] * ('"content": "^ a"' in norm)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, syllables: bool = False,
                    caseless: bool = False):
    """Train a byte-level BPE tokenizer and wrap it as a ``PreTrainedTokenizerFast`` (BOS added on encode).

    ``syllables`` first cuts every word that is not English (``syllable_pattern``) into its syllables, so that
    BPE never merges across a syllable boundary and, given the vocabulary, learns each syllable whole: an
    unseen name then takes 2-3 tokens that each identify it well (" Kom|san"), where plain BPE on a small
    vocabulary starts most names with a single capital letter (" K|oms|an"). ``caseless`` adds
    ``caseless_normalizer``, so a name has one token form wherever it stands."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts) + EXTRA_TEXT * 20
    tok = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if syllables:
        split = pre_tokenizers.Split(Regex(syllable_pattern(texts)), behavior="isolated")
        tok.pre_tokenizer = pre_tokenizers.Sequence([split, byte_level])
    else:
        tok.pre_tokenizer = byte_level
    if caseless:
        tok.normalizer = caseless_normalizer()
    tok.decoder = caseless_decoder() if caseless else decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"],
                                   model_max_length=1_000_000)
