"""Self-consistency (Wang et al. 2022) as a confidence score for any QA study.

Sample ``n`` answers per question, answer with the majority, and take the agreement share (votes for the
majority / ``n``) as the confidence. Answers vote together when their normalised text (SQuAD normalisation:
case, punctuation, articles) is equal; ties go to the answer seen first, so the vote never depends on
anything but the samples' order. ``vote`` does one question, ``self_consistency`` a list of questions with
their references (correct = Rouge-L >= ``gamma`` against any, as in the QA studies), and ``sample_answers``
draws the answers with ``underdog.lm.generate`` for a study that has no sampler of its own. The rows feed
``eval.selective`` (``confidence`` as the score, ``correct`` as the label).
"""

from __future__ import annotations

from collections.abc import Sequence

from underdog.eval.metrics import normalize_answer, rouge_l
from underdog.lm.generate import generate


def ranked_answers(answers: Sequence[str]) -> list[tuple[str, int]]:
    """``(surface form, votes)`` per normalised answer, most votes first; among equal votes, and for an
    answer's surface form, the first seen wins."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for a in answers:
        key = normalize_answer(a)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, a)
    return [(first[k], counts[k]) for k in sorted(counts, key=lambda k: -counts[k])]  # sorted is stable


def vote(answers: Sequence[str]) -> tuple[str, float]:
    """The majority answer (its first-seen surface form) and its agreement share; ``("", 0.0)`` for none."""
    if not answers:
        return "", 0.0
    answer, votes = ranked_answers(answers)[0]
    return answer, votes / len(answers)


def self_consistency(samples: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
                     gamma: float = 0.7) -> list[dict]:
    """One row per question: ``{"answer", "confidence", "correct"}`` from its sampled answers. An empty
    majority answer is wrong."""
    if len(samples) != len(references):
        raise ValueError(f"{len(samples)} sample lists but {len(references)} reference lists")
    rows = []
    for answers, refs in zip(samples, references):
        answer, share = vote(answers)
        ok = bool(answer.strip()) and rouge_l(answer, list(refs)) >= gamma
        rows.append({"answer": answer, "confidence": share, "correct": ok})
    return rows


def sample_answers(lm, prompts: Sequence[str], n: int = 5, max_new_tokens: int = 16, temperature: float = 1.0,
                   seed: int = 0, stop: Sequence[str] = ("\n",)) -> list[list[str]]:
    """``n`` sampled answers per prompt through ``underdog.lm.generate`` (text up to a stop string, with a final
    "." dropped, as the QA studies read answers)."""

    out = generate(lm, list(prompts), n=n, method="sample", max_new_tokens=max_new_tokens, stop=stop,
                   temperature=temperature, seed=seed)
    return [[s.text.strip().split(".")[0].strip() if "." in s.text else s.text.strip() for s in row] for row in out]
