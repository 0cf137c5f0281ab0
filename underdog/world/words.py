"""Nonsense words for synthetic worlds: pronounceable, 4-6 letters, built from a fixed syllable inventory.

A word is 2 (sometimes 3) syllables, each an onset (one consonant, or a cluster such as "gl" or "st" at the
start of a word or after an open syllable), a vowel and an optional coda consonant. The inventory is exposed
as ``SYLLABLES`` so a tokenizer can be trained to split unseen words into known pieces. The word space (about
a million words) is split in two disjoint pools by a stable CRC32 hash: ``pool="eval"`` words are never
``pool="pretrain"`` words, so pretraining worlds never share a word with an evaluation world. A ``Lexicon``
draws unique words for one world from a seeded ``random.Random``; common English words (``stopwords.txt``,
which includes every word the templates use) are never produced, as a stem or as a plural.
"""

from __future__ import annotations

import random
import zlib
from functools import lru_cache
from pathlib import Path

ONSETS: tuple[str, ...] = ("b", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z")
CLUSTERS: tuple[str, ...] = ("bl", "br", "dr", "fl", "fr", "gl", "gr", "kr", "pl", "pr", "sk", "sl", "sn",
                             "st", "tr", "sh", "ch", "th")
VOWELS: tuple[str, ...] = ("a", "e", "i", "o", "u")
CODAS: tuple[str, ...] = ("d", "k", "l", "m", "n", "p", "r", "t")
SYLLABLES: tuple[str, ...] = tuple(
    o + v + c for o in ONSETS + CLUSTERS for v in VOWELS for c in ("",) + CODAS
)
"""Every syllable a word can be made of (consonant-vowel and consonant-vowel-consonant)."""

POOLS: tuple[str, ...] = ("eval", "pretrain")
MIN_LEN, MAX_LEN = 4, 6


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """Common English words (lower case) that a nonsense word must never be."""
    text = Path(__file__).with_name("stopwords.txt").read_text(encoding="utf-8")
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and line[0] != "#")


def word_pool(word: str) -> str:
    """The pool ("eval" or "pretrain") a word belongs to: a stable hash, the same on every machine."""
    return POOLS[zlib.crc32(word.lower().encode("utf-8")) & 1]


def is_valid_word(word: str, pool: str | None = None) -> bool:
    """True when ``word`` could be drawn: right length, letters only, not English (nor its plural), in pool."""
    w = word.lower()
    if not (MIN_LEN <= len(w) <= MAX_LEN and w.isascii() and w.isalpha()):
        return False
    stop = stopwords()
    if w in stop or w + "s" in stop or w.endswith("s"):
        return False
    return pool is None or word_pool(w) == pool


def _draw(rng: random.Random) -> str:
    n_syll = 3 if rng.random() < 0.1 else 2
    parts, closed = [], False
    for i in range(n_syll):
        cluster = (i == 0 or not closed) and rng.random() < 0.35
        onset = rng.choice(CLUSTERS if cluster else ONSETS)
        closed = rng.random() < 0.65 and i < 2
        coda = rng.choice(CODAS) if closed else ""
        if parts and parts[-1][-1] == onset[0]:
            onset = rng.choice([o for o in ONSETS if o != onset[0]])
        parts.append(onset + rng.choice(VOWELS) + coda)
    return "".join(parts)


class Lexicon:
    """Unique nonsense words for one world, drawn deterministically from ``seed`` within ``pool``."""

    def __init__(self, seed: int, pool: str = "eval") -> None:
        if pool not in POOLS:
            raise ValueError(f"pool must be one of {POOLS}, got {pool!r}")
        self.pool = pool
        self.rng = random.Random(f"underdog-lexicon-{pool}-{seed}")
        self.used: set[str] = set()
        self.words: list[str] = []

    def noun(self) -> str:
        """A fresh lower-case noun stem (the plural adds "s")."""
        while True:
            w = _draw(self.rng)
            if w not in self.used and is_valid_word(w, self.pool):
                self.used.add(w)
                self.words.append(w)
                return w

    def name(self) -> str:
        """A fresh capitalised name."""
        return self.noun().capitalize()


def make_words(n: int, seed: int, pool: str = "eval") -> list[str]:
    """``n`` unique nonsense words (lower case) for ``seed`` in ``pool``."""
    lex = Lexicon(seed, pool)
    return [lex.noun() for _ in range(n)]
