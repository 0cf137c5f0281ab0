"""The built-in tokenizer: byte-level BPE trained on world text with a small vocabulary, and its options.

A small vocabulary keeps nonsense words in pieces: any one nonsense word is rare across the many pretraining
worlds while its letter groups are frequent, so BPE learns those groups and the template's English words, not
whole nonsense words, and an unseen word from a fresh world splits into known pieces (at vocabulary 1024 most
names start with a lone capital letter: " K|oms|an"). ``syllables`` cuts every non-English word at its
syllables before BPE; ``caseless`` gives every word one token form wherever it stands; ``line_space`` starts
every line with a space, so a word at a line's start takes its in-line tokens, and can be added to a trained
tokenizer (``with_line_space``). Special tokens cover
ChatML (``<|im_start|>``, ``<|im_end|>``) so chat-formatted methods work on the built-in model.
"""

from __future__ import annotations

import copy
import json
import re
import string
from collections.abc import Iterable

from underdog.world.words import stopwords

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

    english = stopwords()
    seen = {w.lower() for t in texts for w in re.findall(r"[A-Za-z]+", t)} & english
    words = "|".join(sorted(seen, key=lambda w: (-len(w), w)))
    return f" ?(?<![A-Za-z])(?i:{words})(?![A-Za-z])|{_SYLLABLE}"


# every option a trained tokenizer can carry, with the words a model card uses for it
OPTIONS = {"syllables": "words cut into syllables first", "caseless": "caseless: one token form per word",
           "line_space": "every line starts with a space"}


def line_space_normalizer(caseless: bool = False):
    """Every line starts with a space, so a word at a line's start takes the tokens it takes inside a line
    ("Rislos are" encodes as " Rislos are"); ``caseless`` also writes each capital as ``^ `` and its lower
    case, so a word takes one form capitalized or not (" ^ rislos are" / "than rislos")."""
    from tokenizers import normalizers

    capitals = [normalizers.Replace(c, f"^ {c.lower()}") for c in string.ascii_uppercase] if caseless else []
    return normalizers.Sequence([normalizers.Prepend(" "), normalizers.Replace("\n", "\n "), *capitals])


def line_space_decoder(caseless: bool = False):
    """The inverse of ``line_space_normalizer`` on byte-level tokens (a text that itself held ``^ x`` decodes
    with a capital there; a decoded span loses one leading space)."""
    from tokenizers import decoders

    capitals = [decoders.Replace(f"^ {c.lower()}", c) for c in string.ascii_uppercase] if caseless else []
    return decoders.Sequence([decoders.ByteLevel(), decoders.Fuse(), *capitals, decoders.Replace("\n ", "\n"),
                              decoders.Strip(" ", 1, 0)])


def tokenizer_options(tokenizer) -> list[str]:
    """Which of ``OPTIONS`` a (saved, reloaded) tokenizer carries."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    pre, norm = spec.get("pre_tokenizer") or {}, spec.get("normalizer") or {}
    steps = norm.get("normalizers", [norm])
    syllables = any(p.get("type") == "Split" for p in pre.get("pretokenizers", []))
    line_space = any(n.get("type") == "Prepend" and n.get("prepend") == " " for n in steps)
    caseless = any(n.get("type") == "Replace" and n.get("pattern") == {"String": "A"} for n in steps)
    return ["syllables"] * syllables + ["caseless"] * caseless + ["line_space"] * (line_space and not caseless)


def with_line_space(tokenizer):
    """A copy of a trained plain byte-level tokenizer that starts every line with a space. The vocabulary and
    every in-line token stay as they were, so a model trained with ``tokenizer`` can continue with the copy
    (it then only has to learn its line starts anew)."""
    if tokenizer_options(tokenizer):
        raise ValueError(f"with_line_space wants a plain tokenizer; this one has {tokenizer_options(tokenizer)}")
    spaced = copy.deepcopy(tokenizer)
    spaced.backend_tokenizer.normalizer = line_space_normalizer()
    spaced.backend_tokenizer.decoder = line_space_decoder()
    return spaced


def train_tokenizer(texts: Iterable[str], vocab_size: int = 1024, syllables: bool = False,
                    caseless: bool = False, line_space: bool = False):
    """Train a byte-level BPE tokenizer and wrap it as a ``PreTrainedTokenizerFast`` (BOS added on encode).

    ``syllables`` first cuts every word that is not English (``syllable_pattern``) into its syllables, so that
    BPE never merges across a syllable boundary and, given the vocabulary, learns each syllable whole: an
    unseen name then takes 2-3 tokens that each identify it well (" Kom|san"), where plain BPE on a small
    vocabulary starts most names with a single capital letter (" K|oms|an"). ``caseless`` adds
    ``line_space_normalizer(caseless=True)``, so a name has one token form wherever it stands; ``line_space``
    its first half, a space before every line."""
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
    if caseless or line_space:
        tok.normalizer, tok.decoder = line_space_normalizer(caseless), line_space_decoder(caseless)
    else:
        tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(texts, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   additional_special_tokens=["<|im_start|>", "<|im_end|>"],
                                   model_max_length=1_000_000)
