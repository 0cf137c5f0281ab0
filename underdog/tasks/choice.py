"""Multiple-choice tasks: read a file of items, score every choice, pick the most likely, report accuracy.

An item is ``{"id", "context", "choices": [...], "answer": index}``. The scored continuation of a choice is
``" " + choice`` (lm-evaluation-harness's default target delimiter), so contexts and choices are written
without the joining space. World question files use ``question`` in place of ``context``; both are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from underdog.lm.load import LM
from underdog.lm.score import score
from underdog.tasks.io import check, read_jsonl

DELIMITER = " "


@dataclass
class ChoiceItem:
    id: str
    context: str
    choices: list[str]
    answer: int
    extra: dict


@dataclass
class ChoiceResult:
    id: str
    logprobs: list[float]
    pred: int
    correct: bool

    def as_dict(self) -> dict:
        return {"id": self.id, "logprobs": self.logprobs, "pred": self.pred, "correct": self.correct}


def read_choice_file(path: str | os.PathLike) -> list[ChoiceItem]:
    rows = read_jsonl(path, required={"choices": list, "answer": int},
                      optional={"id": (str, int), "context": str, "question": str})
    items = []
    for row in rows:
        context = row.get("context", row.get("question"))
        check(isinstance(context, str), path, row, "missing field 'context' (or 'question')")
        check(len(row["choices"]) >= 2, path, row, "field 'choices' needs at least 2 options")
        check(all(isinstance(c, str) and c for c in row["choices"]), path, row,
              "field 'choices' must hold non-empty strings")
        check(0 <= row["answer"] < len(row["choices"]), path, row,
              f"field 'answer' is {row['answer']}, outside 0..{len(row['choices']) - 1}")
        item_id = str(row.get("id", row["_line"]))
        extra = {k: v for k, v in row.items() if k not in {"id", "context", "question", "choices", "answer", "_line"}}
        items.append(ChoiceItem(item_id, context, list(row["choices"]), row["answer"], extra))
    return items


def score_choices(lm: LM, contexts: Sequence[str], choices: Sequence[Sequence[str]], batch_size: int = 32,
                  progress: bool = False) -> list[list[float]]:
    """Summed log p(" " + choice | context) for every choice of every item."""
    flat_ctx = [c for c, opts in zip(contexts, choices) for _ in opts]
    flat_cont = [DELIMITER + o for opts in choices for o in opts]
    scores = score(lm, flat_ctx, flat_cont, batch_size=batch_size, progress=progress)
    out, k = [], 0
    for opts in choices:
        out.append([s.logprob for s in scores[k: k + len(opts)]])
        k += len(opts)
    return out


def evaluate_choices(lm: LM, items: Sequence[ChoiceItem], contexts: Sequence[str] | None = None,
                     batch_size: int = 32, progress: bool = False) -> list[ChoiceResult]:
    """Score ``items`` (optionally with replaced contexts, e.g. with documents prepended)."""
    contexts = contexts if contexts is not None else [it.context for it in items]
    logprobs = score_choices(lm, contexts, [it.choices for it in items], batch_size=batch_size, progress=progress)
    results = []
    for it, lps in zip(items, logprobs):
        pred = max(range(len(lps)), key=lambda j: lps[j])
        results.append(ChoiceResult(it.id, lps, pred, pred == it.answer))
    return results
