"""In-context learning: put a world's training documents in the prompt, then ask the question.

The whole document set rarely fits a small model's window, so each question gets the documents holding its
support facts plus other documents of the world drawn at random (seeded) until the token budget is full, in a
shuffled order. What was put in context is recorded per question, so a report can say exactly how much of
the world each answer could see. ``none`` is the same question with no documents at all.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

DOC_SEPARATOR = "\n"  # one document a line, then a blank line, then the question (as in pretraining)
QUESTION_SEPARATOR = "\n"


@dataclass
class IclContext:
    text: str
    doc_ids: list[str]
    n_tokens: int
    complete: bool  # every document of the world is in context


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


def build_contexts(tokenizer, documents: Sequence[dict], questions: Sequence[dict], budget: int,
                   seed: int = 0) -> list[IclContext]:
    """One in-context prompt per question: support documents first in priority, then random fill to
    ``budget`` tokens, shuffled; the question follows the documents."""
    by_id = {d["id"]: d for d in documents}
    lengths = {d["id"]: len(tokenizer.encode(d["text"] + DOC_SEPARATOR, add_special_tokens=False))
               for d in documents}
    total = sum(lengths.values())
    index = fact_index(documents)
    out = []
    for k, q in enumerate(questions):
        rng = random.Random(f"{seed}-{q['id']}-{k}")
        q_len = len(tokenizer.encode(q["question"], add_special_tokens=False)) + 16
        room = budget - q_len
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
        out.append(IclContext(text, chosen, sum(lengths[d] for d in chosen) + q_len - 16,
                              len(chosen) == len(documents)))
    return out
