"""In-context learning: put a world's training knowledge in the prompt, then ask the question.

When every document fits the token budget, every prompt holds every document. The whole set rarely fits a
small model's window, though (the seed-7 world is ~11k tokens; ``builtin`` reads 1024), so then each
question sees a part of it, chosen one of two ways. ``retrieved`` (the default): the question's
lexical neighbourhood among all training sentences (``world.retrieve``: sentences sharing its words, then
sentences sharing theirs, 24 in all, nearest first, one a line); it needs no knowledge of which facts answer the
question, and on the seed-7 world it holds every premise of 94-100% of the questions, split by split.
``documents``: whole documents, the ones holding the question's support facts (known for built-in worlds)
plus others drawn at random (seeded) until the token budget is full, shuffled; the paper's layout, which an
earlier 0.27M-parameter stage of the built-in model read at ~0.5 accuracy because every document states many
facts about the same kind of entities. Either way, what was put in context is recorded per question (document
ids, or "doc:sentence" ids), so a report can say exactly how much of the world each answer could see. ``support``
is a diagnostic, not a method: only the sentences stating the question's support facts (gold retrieval), so
that reading the right facts can be told apart from finding them among their neighbours. ``none`` is the
question alone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from underdog.world.retrieve import SentenceIndex, split_sentences

DOC_SEPARATOR = "\n"  # one document a line, then a blank line, then the question (as in pretraining)
QUESTION_SEPARATOR = "\n"


@dataclass
class IclContext:
    text: str
    parts: list[str]  # what is in context: document ids, or "<document id>:<sentence number>" ids
    n_tokens: int
    complete: bool  # the whole training set is in context


RETRIEVED_SENTENCES = 24
ANSWER_ROOM = 16  # tokens kept free after the question for the longest scored choice
WINDOW_MARGIN = 64  # the default prompt budget is the model's window less this (default_budget)


def default_budget(window: int) -> int:
    """Tokens of documents + question an ICL prompt gets when no budget is set: the window less a margin."""
    return window - WINDOW_MARGIN


def question_tokens(tokenizer, question: dict) -> int:
    return len(tokenizer.encode(question["question"], add_special_tokens=False))


def knowledge_room(budget: int, question_len: int) -> int:
    """Tokens of ``budget`` left for knowledge once a question of ``question_len`` tokens and its answer have
    their room."""
    return budget - question_len - ANSWER_ROOM


def retrieved_contexts(tokenizer, documents: Sequence[dict], questions: Sequence[dict], budget: int,
                       k: int = RETRIEVED_SENTENCES) -> list[IclContext]:
    """One prompt per question: its ``k``-sentence neighbourhood in the training set, nearest first, one sentence a
    line (the farthest are dropped when over ``budget`` tokens), a blank line, then the question."""

    sentences, ids = [], []
    for doc in documents:
        for j, s in enumerate(split_sentences(doc["text"])):
            sentences.append(s)
            ids.append(f"{doc['id']}:{j}")
    index = SentenceIndex(sentences)
    lengths = [len(tokenizer.encode(s + "\n", add_special_tokens=False)) for s in sentences]
    out = []
    for q in questions:
        q_len = question_tokens(tokenizer, q)
        room = knowledge_room(budget, q_len)
        chosen, used = [], 0
        for i in index.neighbourhood(q["question"], k):
            if used + lengths[i] > room:
                break
            chosen.append(i)
            used += lengths[i]
        text = "".join(sentences[i] + "\n" for i in chosen) + QUESTION_SEPARATOR + q["question"]
        out.append(IclContext(text, [ids[i] for i in chosen], used + q_len, len(chosen) == len(sentences)))
    return out


def support_doc_ids(question: dict, fact_to_docs: dict[str, list[str]]) -> list[str]:
    ids: list[str] = []
    for fact in question.get("support", []):
        for d in fact_to_docs.get(fact, [])[:1]:
            if d not in ids:
                ids.append(d)
    return ids


def fact_index(documents: Sequence[dict]) -> dict[str, list[str]]:
    index: dict[str, list[str]] = {}
    for doc in documents:
        for fact in doc.get("facts", []):
            index.setdefault(fact, []).append(doc["id"])
    return index


def document_lengths(tokenizer, documents: Sequence[dict]) -> dict[str, int]:
    """Tokens each document takes in a prompt, separator included, by document id."""
    return {d["id"]: len(tokenizer.encode(d["text"] + DOC_SEPARATOR, add_special_tokens=False)) for d in documents}


def document_contexts(tokenizer, documents: Sequence[dict], questions: Sequence[dict], budget: int,
                      seed: int = 0, lengths: Mapping[str, int] | None = None) -> list[IclContext]:
    """One in-context prompt per question: support documents first in priority, then random fill to
    ``budget`` tokens, shuffled; the question follows the documents. ``lengths``: ``document_lengths``, if
    the caller already has them."""
    by_id = {d["id"]: d for d in documents}
    lengths = document_lengths(tokenizer, documents) if lengths is None else lengths
    total = sum(lengths.values())
    index = fact_index(documents)
    out = []
    for k, q in enumerate(questions):
        rng = random.Random(f"{seed}-{q['id']}-{k}")
        q_len = question_tokens(tokenizer, q)
        room = knowledge_room(budget, q_len)
        if total <= room:
            chosen = [d["id"] for d in documents]
        else:
            chosen, used = [], 0
            for d in support_doc_ids(q, index):
                chosen.append(d)
                used += lengths[d]
            others = [d["id"] for d in documents if d["id"] not in chosen]
            rng.shuffle(others)
            for d in others:
                if used + lengths[d] <= room:
                    chosen.append(d)
                    used += lengths[d]
        rng.shuffle(chosen)
        text = "".join(by_id[d]["text"] + DOC_SEPARATOR for d in chosen) + QUESTION_SEPARATOR + q["question"]
        out.append(IclContext(text, chosen, sum(lengths[d] for d in chosen) + q_len,
                              len(chosen) == len(documents)))
    return out


def support_contexts(tokenizer, documents: Sequence[dict], questions: Sequence[dict]) -> list[IclContext]:
    """One prompt per question: the sentences that state its support facts (a document's ``facts`` name its
    sentences in order, as built-in worlds write them), one a line in support order, then the question."""

    where: dict[str, tuple[str, str]] = {}
    for doc in documents:
        sentences = split_sentences(doc["text"])
        if len(sentences) != len(doc.get("facts", [])):
            continue  # facts not one per sentence: their sentences cannot be told apart
        for j, (s, fact) in enumerate(zip(sentences, doc["facts"])):
            where.setdefault(fact, (f"{doc['id']}:{j}", s))
    out = []
    for q in questions:
        support = list(dict.fromkeys(q.get("support") or []))
        missing = [f for f in support if f not in where]
        if missing or not support:
            raise ValueError(f"question {q.get('id')}: support fact(s) {missing or '(none listed)'} are not "
                             "stated one per sentence in any document; the support context needs them")
        parts = [where[f] for f in support]
        text = "".join(s + "\n" for _, s in parts) + QUESTION_SEPARATOR + q["question"]
        out.append(IclContext(text, [p for p, _ in parts], len(tokenizer.encode(text, add_special_tokens=False)),
                              False))
    return out


CONTEXTS = ("retrieved", "documents", "support")


def icl_contexts(mode: str, tokenizer, documents: Sequence[dict], questions: Sequence[dict], budget: int,
                 seed: int = 0) -> list[IclContext]:
    """The in-context prompts of ``mode`` (``retrieved``, ``documents`` or ``support``; see the module
    docstring)."""
    if mode == "retrieved":
        lengths = document_lengths(tokenizer, documents)
        total = sum(lengths.values())
        if all(total <= knowledge_room(budget, question_tokens(tokenizer, q)) for q in questions):
            # the knowledge fits the window: all of it, as the paper does
            return document_contexts(tokenizer, documents, questions, budget, seed=seed, lengths=lengths)
        return retrieved_contexts(tokenizer, documents, questions, budget)
    if mode == "documents":
        return document_contexts(tokenizer, documents, questions, budget, seed=seed)
    if mode == "support":
        return support_contexts(tokenizer, documents, questions)
    raise ValueError(f"unknown ICL context {mode!r}; allowed: {', '.join(CONTEXTS)}")
