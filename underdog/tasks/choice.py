"""Multiple-choice tasks: read a file of items, score every choice, pick the most likely, report accuracy.

An item is ``{"id", "context", "choices": [...], "answer": index}``. The scored continuation of a choice is
``" " + choice`` (lm-evaluation-harness's default target delimiter), so contexts and choices are written
without the joining space. World question files use ``question`` in place of ``context``; both are accepted.
``read_choice_file`` streams the file (``underdog.io``) and refuses, naming file and line, an empty file, a
duplicate id, a choice longer than ``MAX_FIELD_CHARS`` and every wrong-typed field. Scoring bounds what a
long context costs: a context longer than the model's window can hold is first cut to its last
``(window + 64) * longest-token`` characters (nothing the model would read is lost), then to the window's
tokens by ``lm.score.truncate_context``; ``ChoiceResult.truncated`` says which items lost context. A choice
that does not fit the window at all is a ``DataError`` naming the item, raised before any scoring.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from underdog.io import MAX_FIELD_CHARS, DataError, check, check_unique_ids, iter_jsonl
from underdog.lm.load import LM
from underdog.lm.score import encode_pairs, score_tokens

DELIMITER = " "
_SLACK_TOKENS = 64  # tokens kept beyond the window when cutting a context by characters


@dataclass
class ChoiceItem:
    id: str
    context: str
    choices: list[str]
    answer: int
    extra: dict
    where: str = ""  # "file:line" of the item, for error messages


@dataclass
class ChoiceResult:
    id: str
    logprobs: list[float]
    pred: int
    correct: bool
    truncated: bool = field(default=False)  # the context was cut to fit the model's window

    def as_dict(self) -> dict:
        return {"id": self.id, "logprobs": self.logprobs, "pred": self.pred, "correct": self.correct,
                "truncated": self.truncated}


def read_choice_file(path: str | os.PathLike, max_line_bytes: int | None = None,
                     max_choice_chars: int = MAX_FIELD_CHARS) -> list[ChoiceItem]:
    """Read and check a multiple-choice JSONL file; errors name the file, the line and the field."""
    rows = []
    for row in iter_jsonl(path, required={"choices": list, "answer": int},
                          optional={"id": (str, int), "context": str, "question": str},
                          max_line_bytes=max_line_bytes):
        context = row.get("context", row.get("question"))
        check(isinstance(context, str), path, row, "missing field 'context' (or 'question')")
        check(len(row["choices"]) >= 2, path, row, "field 'choices' needs at least 2 options")
        check(all(isinstance(c, str) and c for c in row["choices"]), path, row,
              "field 'choices' must hold non-empty strings")
        longest = max(len(c) for c in row["choices"])
        check(longest <= max_choice_chars, path, row,
              f"field 'choices': a choice of {longest} characters, over the limit of {max_choice_chars}")
        check(0 <= row["answer"] < len(row["choices"]), path, row,
              f"field 'answer' is {row['answer']}, outside 0..{len(row['choices']) - 1}")
        row.setdefault("id", row["_line"])
        rows.append(row)
    check_unique_ids(rows, path)
    items = []
    for row in rows:
        extra = {k: v for k, v in row.items() if k not in {"id", "context", "question", "choices", "answer", "_line"}}
        items.append(ChoiceItem(str(row["id"]), row.get("context", row.get("question")), list(row["choices"]),
                                row["answer"], extra, where=f"{path}:{row['_line']}"))
    return items


def longest_token_chars(tokenizer) -> int:
    """An upper bound on the characters one token covers (its longest vocabulary entry), cached."""
    cached = getattr(tokenizer, "_underdog_longest_token", None)
    if cached is None:
        cached = max((len(t) for t in tokenizer.get_vocab()), default=16)
        try:
            tokenizer._underdog_longest_token = cached
        except AttributeError:
            pass
    return max(1, cached)


def cap_context(lm: LM, context: str) -> str:
    """``context`` cut to the characters that can reach the model's window (a no-op for all but huge ones)."""
    cap = (lm.max_length + _SLACK_TOKENS) * longest_token_chars(lm.tokenizer)
    return context[-cap:] if len(context) > cap else context


def _encode(lm: LM, contexts: Sequence[str], choices: Sequence[Sequence[str]], where: Sequence[str]):
    flat_ctx = [cap_context(lm, c) for c, opts in zip(contexts, choices) for _ in opts]
    flat_cont = [DELIMITER + o for opts in choices for o in opts]
    pairs = encode_pairs(lm.tokenizer, flat_ctx, flat_cont)
    window = lm.max_length
    truncated, k = [], 0
    for i, opts in enumerate(choices):
        cut = False
        for j, _ in enumerate(opts):
            ctx, cont = pairs[k + j]
            if len(cont) > window - 1:
                raise DataError(f"{where[i]}: choice {j} is {len(cont)} tokens, longer than the model's "
                                f"{window}-token window")
            cut = cut or len(ctx) + len(cont) > window + 1
        truncated.append(cut or len(contexts[i]) > len(flat_ctx[k]))
        k += len(opts)
    return pairs, truncated


def _score(lm: LM, contexts: Sequence[str], choices: Sequence[Sequence[str]], where: Sequence[str],
           batch_size: int, progress: bool) -> tuple[list[list[float]], list[bool]]:
    pairs, truncated = _encode(lm, contexts, choices, where)
    scores = score_tokens(lm, pairs, batch_size=batch_size, progress=progress)
    out, k = [], 0
    for opts in choices:
        out.append([s.logprob for s in scores[k: k + len(opts)]])
        k += len(opts)
    return out, truncated


def score_choices(lm: LM, contexts: Sequence[str], choices: Sequence[Sequence[str]], batch_size: int = 32,
                  progress: bool = False) -> list[list[float]]:
    """Summed log p(" " + choice | context) for every choice of every item."""
    where = [f"item {i + 1}" for i in range(len(contexts))]
    return _score(lm, contexts, choices, where, batch_size, progress)[0]


def check_choices_fit(lm: LM, items: Sequence[ChoiceItem]) -> None:
    """Raise ``DataError`` (naming file:line) for the first choice longer than the model's window; call it
    before creating any output, so that a bad file leaves nothing behind."""
    window = lm.max_length
    for it in items:
        for j, choice in enumerate(it.choices):
            if len(choice.encode()) + 2 < window:  # a token covers at least one byte: fits for sure
                continue
            n = len(lm.tokenizer(DELIMITER + choice, add_special_tokens=False)["input_ids"])
            if n > window - 1:
                raise DataError(f"{it.where or 'item ' + it.id}: choice {j} is {n} tokens, longer than the "
                                f"model's {window}-token window")


def evaluate_choices(lm: LM, items: Sequence[ChoiceItem], contexts: Sequence[str] | None = None,
                     batch_size: int = 32, progress: bool = False) -> list[ChoiceResult]:
    """Score ``items`` (optionally with replaced contexts, e.g. with documents prepended)."""
    contexts = contexts if contexts is not None else [it.context for it in items]
    where = [it.where or f"item {it.id!r}" for it in items]
    logprobs, truncated = _score(lm, contexts, [it.choices for it in items], where, batch_size, progress)
    results = []
    for it, lps, cut in zip(items, logprobs, truncated):
        pred = max(range(len(lps)), key=lambda j: lps[j])
        results.append(ChoiceResult(it.id, lps, pred, pred == it.answer, cut))
    return results
