"""Synthetic worlds of nonsense-word knowledge (after Lampinen et al. 2025): words, facts, documents, questions.

``make_world(seed, pool="eval", **sizes)`` builds a seeded world: comparison chains, syllogisms, a category
hierarchy and family trees over fresh nonsense words, short training documents stating only the training
facts, and cloze multiple-choice questions in six generalization splits (forward, rephrasing, reversal,
syllogism, holdout, two_hop) whose answers follow from their support facts. ``write_world`` saves
``documents.jsonl``, ``questions.jsonl``, ``facts.jsonl`` and ``world.json``; ``load_world`` reads and
validates those files (also a user's own), raising ``DataError`` that names file, line and field.
Same seed and sizes give byte-identical files; ``pool="pretrain"`` worlds never share a word with
``pool="eval"`` worlds.
"""

from __future__ import annotations

import functools
import json
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from underdog.files import check_output_dir
from underdog.io import DataError, check, read_jsonl, write_jsonl
from underdog.world.knowledge import (
    Fact,
    Knowledge,
    add_comparisons,
    add_families,
    add_hierarchy,
    add_syllogisms,
    closure,
    entails,
)
from underdog.world.questions import SPLITS, make_questions, open_question
from underdog.world.render import Parser, assign_phrasings, make_documents
from underdog.world.retrieve import SentenceIndex, split_sentences
from underdog.world.words import SYLLABLES, Lexicon

__all__ = ["DEFAULT_SIZES", "SPLITS", "DataError", "SYLLABLES", "Fact", "Parser", "World", "closure", "entails",
           "load_world", "make_world", "open_question", "support_documents", "write_world"]

DEFAULT_SIZES: dict[str, int | float] = {
    "n_dimensions": 28,  # comparison chains, one per adjective
    "chain_length": 5,  # entities per chain
    "n_syllogisms": 150,  # premise pairs (all-all, no-all, all-some in equal numbers)
    "n_categories": 100,  # hierarchy categories
    "n_roots": 4,  # trees in the hierarchy
    "max_depth": 3,
    "max_properties": 6,  # 1..max properties per (non-holdout) category
    "holdout_fraction": 0.4,  # share of categories that are holdout leaves
    "n_families": 30,
    "n_choices": 4,
    "doc_min": 4,  # sentences per document
    "doc_max": 12,
    "max_inherited": 4,  # syllogism questions per category
    "max_holdout": 6,  # holdout questions per holdout category in the first pass
    "min_per_split": 400,  # holdout and two-hop topped up to this many questions where the world has them
    "p_more": 0.5,  # share of comparisons stated with "more" (the rest "less"); pretraining can bias it
}


@dataclass
class World:
    """A generated world: its facts (``knowledge``), training documents and test questions."""

    seed: int
    pool: str
    sizes: dict
    knowledge: Knowledge
    phrasing: dict[str, int]
    documents: list[dict]
    questions: list[dict]
    words: list[str] = field(default_factory=list)

    @property
    def facts(self) -> list[Fact]:
        return self.knowledge.facts

    def counts(self) -> dict[str, int]:
        c = Counter(q["split"] for q in self.questions)
        return {s: c[s] for s in SPLITS}

    @functools.cached_property
    def facts_by_id(self) -> dict[str, Fact]:
        """Every fact by its id; built once per world."""
        return {f.id: f for f in self.facts}

    @functools.cached_property
    def facts_by_entity(self) -> dict[str, list[str]]:
        """Fact ids per lower-cased entity (either side of a fact), in fact order; built once per world."""
        index: dict[str, list[str]] = {}
        for f in self.facts:
            for e in {f.a.lower(), f.b.lower()}:
                index.setdefault(e, []).append(f.id)
        return index

    @functools.cached_property
    def sentence_index(self) -> tuple[SentenceIndex, list[str]]:
        """The training sentences (documents split, in order) as a ``SentenceIndex``, and each one's fact id."""
        sentences, fact_ids = [], []
        for doc in self.documents:
            sentences += split_sentences(doc["text"])
            fact_ids += doc["facts"]
        return SentenceIndex(sentences), fact_ids


_FRACTIONS = ("holdout_fraction", "p_more")
_AT_LEAST = {"chain_length": 2, "n_choices": 2, "doc_min": 1, "doc_max": 1, "n_roots": 1, "max_depth": 1,
             "max_properties": 1}
MAX_SIZE = 100_000  # any count above this is a typo, not a world that fits in memory


def check_sizes(sizes: Mapping[str, int | float]) -> None:
    """``ValueError`` naming the first world size out of range: counts are whole numbers from 0 (or the
    minimum that makes a world, e.g. ``n_choices`` >= 2) to ``MAX_SIZE``, fractions lie in [0, 1]."""
    for key, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"world size {key} must be a number, got {value!r}")
        if key in _FRACTIONS:
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"world size {key} is a probability: it must lie in [0, 1], got {value}")
            continue
        if value != int(value):
            raise ValueError(f"world size {key} must be a whole number, got {value}")
        low = _AT_LEAST.get(key, 0)
        if not low <= value <= MAX_SIZE:
            raise ValueError(f"world size {key} must be between {low} and {MAX_SIZE}, got {value}")
    if sizes.get("doc_min", 0) > sizes.get("doc_max", MAX_SIZE):
        raise ValueError(f"world size doc_min ({sizes['doc_min']}) exceeds doc_max ({sizes['doc_max']})")


def make_world(seed: int, pool: str = "eval", **sizes: int | float) -> World:
    """Build the world for ``seed`` (``pool`` "eval" or "pretrain"); ``sizes`` override ``DEFAULT_SIZES``
    (checked by ``check_sizes``)."""
    unknown = set(sizes) - set(DEFAULT_SIZES)
    if unknown:
        raise TypeError(f"unknown world size(s) {sorted(unknown)}; known: {sorted(DEFAULT_SIZES)}")
    s = {**DEFAULT_SIZES, **sizes}
    check_sizes(s)
    lex = Lexicon(seed, pool)
    rng = random.Random(f"underdog-world-{pool}-{seed}")
    kn = Knowledge()
    add_comparisons(kn, lex, rng, int(s["n_dimensions"]), int(s["chain_length"]), float(s["p_more"]))
    add_syllogisms(kn, lex, rng, int(s["n_syllogisms"]))
    if s["n_categories"]:
        add_hierarchy(kn, lex, rng, int(s["n_categories"]), int(s["n_roots"]), int(s["max_depth"]),
                      int(s["max_properties"]), float(s["holdout_fraction"]))
    add_families(kn, lex, rng, int(s["n_families"]))
    phrasing = assign_phrasings(kn.facts, rng)
    docs = make_documents(kn, phrasing, rng, int(s["doc_min"]), int(s["doc_max"]))
    questions = make_questions(kn, phrasing, rng, docs, int(s["n_choices"]), int(s["max_inherited"]),
                               int(s["max_holdout"]), int(s["min_per_split"]))
    return World(seed, pool, s, kn, phrasing, docs, questions, list(lex.words))


def write_world(world: World, out_dir: str | os.PathLike) -> Path:
    """Write ``documents.jsonl``, ``questions.jsonl``, ``facts.jsonl`` and ``world.json`` into ``out_dir``."""

    out = check_output_dir(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "documents.jsonl", world.documents)
    write_jsonl(out / "questions.jsonl", world.questions)
    write_jsonl(out / "facts.jsonl", [{**asdict(f), "text": f.text(world.phrasing[f.id])} for f in world.facts])
    meta = {"seed": world.seed, "pool": world.pool, "sizes": world.sizes, "n_words": len(world.words),
            "n_facts": len(world.facts), "n_documents": len(world.documents),
            "n_questions": len(world.questions), "questions_per_split": world.counts()}
    (out / "world.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out


DOC_FIELDS = {"id": str, "text": str}
QUESTION_FIELDS = {"id": str, "split": str, "question": str, "choices": list, "answer": int}


def load_facts(path: str | os.PathLike) -> list[Fact] | None:
    """The world's facts from ``facts.jsonl`` (written by ``write_world``), or None when the folder has none
    (a user's own knowledge set): used to check generated augmentations for truth."""
    fpath = Path(path) / "facts.jsonl"
    if not fpath.is_file():
        return None
    rows = read_jsonl(fpath, required={"id": str, "kind": str, "rel": str, "a": str, "b": str},
                      optional={"attr": str})
    return [Fact(r["id"], r["kind"], r["rel"], r["a"], r["b"], r.get("attr") or "") for r in rows]


def load_world(path: str | os.PathLike) -> tuple[list[dict], list[dict]]:
    """Read and validate ``documents.jsonl`` and ``questions.jsonl`` from a folder (a world written by
    ``write_world`` or a user's own files of this schema). Errors name the file, line and field."""
    root = Path(path)
    dpath, qpath = root / "documents.jsonl", root / "questions.jsonl"
    docs = read_jsonl(dpath, required=DOC_FIELDS, optional={"facts": list})
    questions = read_jsonl(qpath, required=QUESTION_FIELDS, optional={"kind": str, "support": list})
    doc_ids: set[str] = set()
    fact_ids: set[str] = set()
    for d in docs:
        check(d["id"] not in doc_ids, dpath, d, f"field 'id': duplicate id {d['id']!r}")
        check(bool(d["text"].strip()), dpath, d, "field 'text' is empty")
        check(all(isinstance(f, str) for f in d.get("facts") or []), dpath, d, "field 'facts' must hold strings")
        doc_ids.add(d["id"])
        fact_ids.update(d.get("facts") or [])
    q_ids: set[str] = set()
    for q in questions:
        check(q["id"] not in q_ids, qpath, q, f"field 'id': duplicate id {q['id']!r}")
        q_ids.add(q["id"])
        check(q["split"] in SPLITS, qpath, q, f"field 'split': unknown split {q['split']!r} (one of {SPLITS})")
        n = len(q["choices"])
        check(n >= 2, qpath, q, f"field 'choices' needs at least 2 options, got {n}")
        check(all(isinstance(c, str) and c.strip() for c in q["choices"]), qpath, q,
              "field 'choices' must hold non-empty strings")
        check(len(set(q["choices"])) == n, qpath, q, "field 'choices' has duplicate options")
        check(0 <= q["answer"] < n, qpath, q, f"field 'answer' is {q['answer']}, outside 0..{n - 1}")
        support = q.get("support") or []
        check(all(isinstance(s, str) for s in support), qpath, q, "field 'support' must hold fact id strings")
        missing = [s for s in support if fact_ids and s not in fact_ids]
        check(not missing, qpath, q, f"field 'support': fact(s) {missing[:3]} appear in no document")
    for row in docs + questions:
        row.pop("_line", None)
    return docs, questions


def support_documents(world_or_docs: World | Sequence[Mapping], question: Mapping) -> list[str]:
    """Ids of the documents stating any of ``question``'s support facts, in document order."""
    docs = world_or_docs.documents if isinstance(world_or_docs, World) else world_or_docs
    need = set(question.get("support") or [])
    return [d["id"] for d in docs if need & set(d.get("facts") or [])]

