"""The in-context-learning probe: accuracy on a fresh evaluation-pool world, its knowledge in context.

The probe world's words come from the evaluation pool, which pretraining never sees, so the only way to beat
chance (0.25) is to read the documents in context. It is the same code path as ``underdog generalization
--methods icl``, on a fixed subsample of questions per split, so it is cheap enough to run during training.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from underdog.lm.load import LM
from underdog.methods.icl import icl_contexts
from underdog.tasks.choice import ChoiceItem, evaluate_choices

PROBE_SPLITS = ("forward", "reversal", "syllogism", "two_hop")


class IclProbe:
    """A fixed set of questions from world ``seed`` (evaluation pool), ``per_split`` of each split."""

    def __init__(self, seed: int = 99_000, per_split: int = 50, splits: Sequence[str] = PROBE_SPLITS,
                 budget: int = 768, context: str = "retrieved") -> None:
        from underdog.world import make_world

        world = make_world(seed, pool="eval")
        rng = random.Random(seed)
        self.questions = []
        for split in splits:
            qs = [q for q in world.questions if q["split"] == split]
            self.questions += rng.sample(qs, min(per_split, len(qs)))
        self.documents = world.documents
        self.budget = budget
        self.context = context  # "retrieved" or "documents" (methods.icl)

    def answers(self, lm: LM, with_context: bool = True, batch_size: int = 32) -> list[bool]:
        """Whether each probe question was answered correctly (in ``self.questions`` order)."""
        if with_context:
            contexts = [c.text for c in icl_contexts(self.context, lm.tokenizer, self.documents, self.questions,
                                                     self.budget)]
        else:
            contexts = [q["question"] for q in self.questions]
        items = [ChoiceItem(q["id"], ctx, q["choices"], q["answer"], {}) for q, ctx in zip(self.questions, contexts)]
        return [r.correct for r in evaluate_choices(lm, items, batch_size=batch_size)]

    def accuracy(self, correct: list[bool], by_kind: bool = False) -> dict[str, float]:
        """Accuracy per split, or per ``"<split>:<kind>"`` cell (comparison, family, hierarchy, syllogism)."""
        acc: dict[str, list[bool]] = {}
        for q, ok in zip(self.questions, correct):
            acc.setdefault(f"{q['split']}:{q['kind']}" if by_kind else q["split"], []).append(ok)
        return {key: sum(v) / len(v) for key, v in acc.items()}

    def __call__(self, lm: LM, with_context: bool = True, batch_size: int = 32) -> dict[str, float]:
        return self.accuracy(self.answers(lm, with_context, batch_size))
