"""The lookup tool: the best-matching sentence of a knowledge source for a query, by shared content words.

The knowledge source is a built-in world's training sentences (``from_world``) or a user's JSONL of passages,
one ``{"text": ...}`` a line (``from_jsonl``; long passages are split into sentences). Retrieval is
``underdog.world.retrieve.SentenceIndex``: the sentences sharing the most content words with the query come
first; ``lookup_tool`` returns the top ``k`` joined, or raises ``LookupError`` ("nothing found") when no
sentence shares a word. Queries are cut to ``max_query_chars``; the answer is plain text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from underdog.io import read_jsonl
from underdog.tools.registry import Tool
from underdog.world.retrieve import SentenceIndex, content_words, split_sentences


class Lookup:
    """A query -> top sentences function over fixed sentences."""

    def __init__(self, sentences: Sequence[str], k: int = 1, max_query_chars: int = 200):
        self.index = SentenceIndex(list(sentences))
        self.k, self.max_query_chars = k, max_query_chars

    def __call__(self, query: str) -> str:
        query = query[: self.max_query_chars]
        words = content_words(query)
        if not words:
            raise LookupError("no content words in query")
        # one hop only: sentences sharing the most query words first (ties: earlier sentence)
        shared: dict[int, int] = {}
        for w in words:
            for i in self.index.by_word.get(w, ()):
                shared[i] = shared.get(i, 0) + 1
        if not shared:
            raise LookupError("nothing found")
        best = sorted(shared, key=lambda i: (-shared[i], i))[: self.k]
        return " ".join(self.index.sentences[i] for i in best)


def from_world(world, k: int = 1) -> Lookup:
    """Over a ``underdog.world.World``'s training sentences."""
    return Lookup(world.sentence_index[0].sentences, k)


def from_jsonl(path: str | os.PathLike, k: int = 1) -> Lookup:
    """Over a user's passages file, one ``{"text"}`` a line (errors name file and line)."""

    rows = read_jsonl(path, required={"text": str}, optional={"id": str})
    return Lookup([s for r in rows for s in split_sentences(r["text"])], k)


def lookup_tool(source: Lookup, name: str = "Lookup") -> Tool:
    return Tool(name, source, "the best-matching sentence of the knowledge source", "Dax parent", bounded=True)
