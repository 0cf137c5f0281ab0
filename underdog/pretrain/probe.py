"""The in-context-learning probes run during pretraining: accuracy on a fresh evaluation-pool world, its
knowledge in context (``IclProbe``), the lookup that binding rests on (``LookupProbe``), the comparator
flip a comparison reversal needs (``ComparatorProbe``), and the names the comparator (``ChainProbe``) and the
reversed lookup (``PairProbe``) pick.

The probe world's words come from the evaluation pool, which pretraining never sees, so the only way to beat
chance (0.25) is to read the documents in context. It is the same code path as ``underdog generalization
--methods icl``, on a fixed subsample of questions per split, so it is cheap enough to run during training.
The lookup probe asks for the word after "<Name> are" in swapped-recall units (``drills.recall_swap_unit``)
of evaluation-pool words: ``copied`` when the name starts the line that holds the word, ``swapped`` when it
ends that line, the lookup a reversal needs ("Glamba are" -> "Rulbud are less gentle than glamba." -> more).
The comparator probe asks only that flip, "more" or "less" after "<Name> are", in one-line units split into four
cells, the asked name's role (``copied``/``swapped``) by the comparator stated (``less``/``more``): balanced, the
right answer is the XOR of the two (docs/builtin-model.md), and a model that has learnt one bit alone passes two
cells and fails the other two. The chain probe (``ChainProbe``) asks the name after the comparator: in
comparison chains (``drills.chain_compare_unit``) an inner name stands above one neighbour and below the other,
so only the comparator of "<Name> are more <adj> than" says which neighbour follows. The pair probe
(``PairProbe``) asks the lookup under every reversal with nothing else to weigh: among disjoint pairs, the
subject of the asked name's line ("B are less <adj> than" -> A) against another line's subject.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from underdog.lm.load import LM
from underdog.lm.score import encode_pair, score_tokens
from underdog.tasks.choice import ChoiceItem, evaluate_choices
from underdog.tasks.icl import icl_contexts
from underdog.world import make_world
from underdog.world.drills import FLIP, biased_swap_unit, chain_compare_unit, pair_unit, recall_swap_unit
from underdog.world.render import comparison_order

PROBE_SPLITS = ("forward", "reversal", "syllogism", "two_hop")


class IclProbe:
    """A fixed set of questions from world ``seed`` (evaluation pool), ``per_split`` of each split."""

    def __init__(self, seed: int = 99_000, per_split: int = 50, splits: Sequence[str] = PROBE_SPLITS,
                 budget: int = 768, context: str = "retrieved") -> None:
        world = make_world(seed, pool="eval")
        rng = random.Random(seed)
        self.questions = []
        for split in splits:
            qs = [q for q in world.questions if q["split"] == split]
            self.questions += rng.sample(qs, min(per_split, len(qs)))
        self.documents = world.documents
        self.budget = budget
        self.context = context  # "retrieved" or "documents" (tasks.icl)

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


def first_token(tokenizer, word: str) -> int:
    """The first token of `` word`` as it continues a line ("<Name> are" + `` word``), whatever the tokenizer's
    normalizer does to a text's start."""
    return encode_pair(tokenizer, "x are", " " + word)[1][0]


class LookupProbe:
    """``units`` fixed swapped-recall units of world ``seed`` (evaluation pool): right after each asked line's
    "<Name> are", is the right slot word's first token the likeliest of the unit's slot words' and more/less's?"""

    def __init__(self, seed: int = 99_002, units: int = 24) -> None:
        world = make_world(seed, pool="eval")
        rng = random.Random(seed)
        self.items: list[tuple[str, str, list[str], str]] = []  # (kind, context, candidates, answer)
        for _ in range(units):
            stated, asked = recall_swap_unit(world, rng)
            starts = {line.split()[0] for line in stated}
            candidates = sorted({line.split()[2] for line in stated} | {"more", "less"})
            for line in asked:
                name, _, slot = line.split()[:3]
                kind = "copied" if name in starts else "swapped"
                self.items.append((kind, "\n".join(stated) + f"\n\n{name} are", candidates, slot))

    def __call__(self, lm: LM, batch_size: int = 32) -> dict[str, float]:
        """Accuracy per kind, ``copied`` and ``swapped``."""
        tok = lm.tokenizer
        first = {c: first_token(tok, c) for _, _, candidates, _ in self.items for c in candidates}
        pairs, spans = [], []  # one request per distinct first token of an item's candidates
        for _, context, candidates, _ in self.items:
            ids = tok(context).input_ids
            tokens = sorted({first[c] for c in candidates})
            spans.append((len(pairs), tokens))
            pairs += [(ids, [t]) for t in tokens]
        scores = score_tokens(lm, pairs, batch_size=batch_size)
        hits: dict[str, list[bool]] = {}
        for (kind, _, _, answer), (start, tokens) in zip(self.items, spans):
            best = max(range(len(tokens)), key=lambda j: scores[start + j].logprob)
            hits.setdefault(kind, []).append(tokens[best] == first[answer])
        return {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}


class ComparatorProbe:
    """``units`` fixed one-line comparison units of world ``seed`` (evaluation pool), more/less stated and
    asked as stated or swapped with even odds: after "<Name> are", is the right comparator likelier than the
    other? Accuracy per ``<role>/<stated comparator>`` cell and ``all``."""

    def __init__(self, seed: int = 99_003, units: int = 100, lines: tuple[int, int] = (1, 1)) -> None:
        world = make_world(seed, pool="eval")
        rng = random.Random(seed)
        self.items: list[tuple[str, str, str]] = []  # (cell, context, right comparator)
        for _ in range(units):
            stated, asked = biased_swap_unit(world, rng, p_more=0.5, p_stated=0.5, lines=lines)
            said = {line.split()[0]: line.split()[2] for line in stated}
            for line in asked:
                name, _, comparator = line.split()[:3]
                cell = f"copied/{said[name]}" if name in said else f"swapped/{FLIP[comparator]}"
                self.items.append((cell, "\n".join(stated) + f"\n\n{name} are", comparator))

    def __call__(self, lm: LM, batch_size: int = 32) -> dict[str, float]:
        tok = lm.tokenizer
        first = {c: first_token(tok, c) for c in FLIP}
        pairs = []
        for _, context, right in self.items:
            ids = tok(context).input_ids
            pairs += [(ids, [first[right]]), (ids, [first[FLIP[right]]])]
        scores = score_tokens(lm, pairs, batch_size=batch_size)
        hits: dict[str, list[bool]] = {}
        for i, (cell, _, _) in enumerate(self.items):
            ok = scores[2 * i].logprob > scores[2 * i + 1].logprob
            hits.setdefault(cell, []).append(ok)
            hits.setdefault("all", []).append(ok)
        return {cell: sum(v) / len(v) for cell, v in sorted(hits.items())}


class _NameProbe:
    """Items (kind, prefix, right name, other name): is the right name likelier after the prefix? Accuracy per
    kind."""

    items: list[tuple[str, str, str, str]]

    def __call__(self, lm: LM, batch_size: int = 32) -> dict[str, float]:
        pairs = [encode_pair(lm.tokenizer, prefix, " " + name) for _, prefix, right, other in self.items
                 for name in (right, other)]
        scores = score_tokens(lm, pairs, batch_size=batch_size)
        hits: dict[str, list[bool]] = {}
        for i, (kind, _, _, _) in enumerate(self.items):
            hits.setdefault(kind, []).append(scores[2 * i].logprob > scores[2 * i + 1].logprob)
        return {kind: sum(v) / len(v) for kind, v in sorted(hits.items())}


class ChainProbe(_NameProbe):
    """``units`` fixed comparison chains of world ``seed`` (evaluation pool, no unrelated lines; ``more_only``
    for the drill's first step): for every asked line "X are C <adj> than Y" whose X is an inner name, is Y
    likelier after "X are C <adj> than" than X's other neighbour? Accuracy for ``repeated`` lines (the line
    was stated word for word) and ``other`` ones (stated the other way round, or in another phrasing); 0.5 is
    a comparator ignored."""

    def __init__(self, seed: int = 99_004, units: int = 200, more_only: bool = False) -> None:
        world = make_world(seed, pool="eval")
        rng = random.Random(seed)
        self.items = []
        for _ in range(units):
            stated, asked = chain_compare_unit(world, rng, others=(0, 0), more_only=more_only)
            orders = [comparison_order(line) for line in stated]
            for line in asked:
                words = line.rstrip(".").split()
                if len(words) != 6 or words[4] != "than":
                    continue
                name = words[0].lower()
                partners = {hi if lo == name else lo for hi, lo, _ in orders if name in (hi, lo)} - {words[5]}
                if len(partners) == 1:
                    kind = "repeated" if line in stated else "other"
                    self.items.append((kind, "\n".join(stated) + "\n\n" + " ".join(words[:5]), words[5],
                                       partners.pop()))


class PairProbe(_NameProbe):
    """The lookup under every reversal, with nothing else to weigh: ``units`` fixed units of 2-5 disjoint pairs
    (``drills.pair_unit``: "A are more <adj> than B", or with ``family`` "A is the parent of B", evaluation-pool
    words of world ``seed``), each pair asked once, as stated (``copied``: the name after "A are more <adj>
    than") or the other way round (``swapped``: the name after "B are less <adj> than", the subject of B's
    line). The right name is scored against the name in the same role of another line; chance 0.5."""

    def __init__(self, seed: int = 99_005, units: int = 300, family: bool = False) -> None:
        world = make_world(seed, pool="eval")
        rng = random.Random(seed)
        self.items = []
        for _ in range(units):
            stated, asked = pair_unit(world, rng, family=family)
            for line in asked:
                *prefix, answer = line.rstrip(".").split()
                others = [s for s in stated if answer.lower() not in s.lower().rstrip(".").split()]
                other = rng.choice(others).rstrip(".").split()
                context = "\n".join(stated) + "\n\n" + " ".join(prefix)
                if line in stated:
                    self.items.append(("copied", context, answer, other[-1]))
                else:
                    self.items.append(("swapped", context, answer, other[0] if family else other[0].lower()))


def name_probes(chain_units: int, pair_units: int) -> dict[str, _NameProbe]:
    """The chain and pair probes by report key: ``chain``, ``chain_more``, ``pairs``, ``pairs_family``."""
    return {"chain": ChainProbe(units=chain_units), "chain_more": ChainProbe(units=chain_units, more_only=True),
            "pairs": PairProbe(units=pair_units), "pairs_family": PairProbe(units=pair_units, family=True)}
