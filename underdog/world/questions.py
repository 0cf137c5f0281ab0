"""Multiple-choice cloze test questions over a world, in six generalization splits.

A question is ``{"id", "split", "kind", "question", "choices", "answer", "support"}``: ``question`` is a
statement prefix, each choice a continuation, and the scored text is ``question + " " + choice``. Splits:
``forward`` (a training fact in its trained phrasing), ``rephrasing`` (another phrasing), ``reversal``
(arguments swapped: "zints are less heavy than glorps", "Mil is the child of Dax", "zorps include bliks",
"Some B are A"), ``syllogism`` (a conclusion from two premises, or a property inherited through "is a kind
of"), ``holdout`` (an inherited property of a category known only through its "kind of" fact) and
``two_hop`` (a comparison across two links, a grandparent, grandchild or sibling). Distractors are hard where
possible (the contradictory reversal, the same relation to another entity of the same chain, group, tree or
family; for a property, properties with the same verb, English or made-up like the answer, so that no option
stands out by its form) and are checked with ``knowledge.closure``: the answer follows from the support facts,
no distractor follows from the whole world. Answer positions are shuffled with the world's seeded generator.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence

from underdog.world.knowledge import (
    ADJECTIVES,
    ENGLISH_PROPERTIES,
    REVERSE,
    Fact,
    Key,
    Knowledge,
    closure,
    derived,
)
from underdog.world.render import PHRASINGS, cloze

SPLITS: tuple[str, ...] = ("forward", "rephrasing", "reversal", "syllogism", "holdout", "two_hop")
Item = tuple[str, Fact, int, list[Fact]]  # (split, statement, phrasing, support facts)
Ancestry = dict[str, list[tuple[str, list[Fact]]]]  # category -> [(ancestor, "kind of" chain reaching it)]
Inherited = dict[str, list[tuple[Fact, list[Fact]]]]  # category -> [(inherited property statement, support)]
Pair = tuple[tuple[Fact, Fact], list[Fact]]  # (a two-hop statement both ways round, its two support facts)
_ENGLISH = frozenset(p for p, _ in ENGLISH_PROPERTIES)
_VERB_COUNT = Counter(p.split(" ")[0] for p in _ENGLISH)


def open_question(q: dict, options: bool = False) -> str:
    """A cloze question asked as an open one: "<prefix> ...?", and " Options: a; b; c; d." with ``options``
    (the question text of world QA and of the pretraining QA lines)."""
    return f"{q['question']} ...?" + (f" Options: {'; '.join(q['choices'])}." if options else "")


def make_questions(kn: Knowledge, phrasing: dict[str, int], rng: random.Random, documents: Sequence[dict] = (),
                   n_choices: int = 4, max_inherited: int = 4, max_holdout: int = 6,
                   min_per_split: int = 0) -> list[dict]:
    """All test questions of a world, grouped by split (shuffled within a split), ids ``q00000``...
    Entities mentioned in the same ``documents`` as the target make the hardest distractors.

    ``min_per_split`` tops up the holdout and two-hop splits, which the first pass leaves smallest, to that
    many questions where the world has them: more inherited properties of holdout categories, their "kind of"
    each ancestor above the parent, and the other direction of two-hop pairs. The top-up draws from a
    generator of its own, after the first pass, so the other splits do not depend on it."""
    full = closure(kn.facts)
    pools = _pools(kn, documents)
    frames = {p: property_frame(p) for p in pools["property"]}  # once a world, not once a question
    by_split: dict[str, list[dict]] = {s: [] for s in SPLITS}
    ancestry = _ancestry(kn)
    inherited, pairs = _inherited(kn, ancestry), _two_hop_pairs(kn)  # both passes draw from these
    items = _items(kn, phrasing, rng, inherited, pairs, max_inherited, max_holdout)
    for split, target, ph, support in items:
        q = _question(kn, split, target, ph, support, full, pools, frames, rng, n_choices)
        if q is not None:
            by_split[split].append(q)
    for split in SPLITS:
        rng.shuffle(by_split[split])
    top_up = random.Random(rng.random())
    asked = {(split, t.key) for split, t, _, _ in items}
    extra = [item for item in _top_up_items(kn, ancestry, inherited, pairs) if (item[0], item[1].key) not in asked]
    top_up.shuffle(extra)
    for split, target, ph, support in extra:
        if len(by_split[split]) < min_per_split:
            q = _question(kn, split, target, ph, support, full, pools, frames, top_up, n_choices)
            if q is not None:
                by_split[split].append(q)
    for split in ("holdout", "two_hop"):
        top_up.shuffle(by_split[split])
    out = [q for split in SPLITS for q in by_split[split]]
    for i, q in enumerate(out):
        q["id"] = f"q{i:05d}"
    return out


def _items(kn: Knowledge, phrasing: dict[str, int], rng: random.Random, inherited: Inherited, pairs: list[Pair],
           max_inherited: int, max_holdout: int) -> list[Item]:
    """The first pass: every training fact forward, rephrased and reversed; every syllogism; a sample of the
    inherited properties of each category; one direction of each two-hop pair."""
    items: list[Item] = []
    for f in kn.facts:  # forward, rephrasing, reversal of every training fact
        items.append(("forward", f, phrasing[f.id], [f]))
        others = [i for i in range(len(PHRASINGS[f.rel])) if i != phrasing[f.id]]
        items.append(("rephrasing", f, rng.choice(others), [f]))
        if f.rel in REVERSE:
            items.append(("reversal", f.reversed(), 0, [f]))
    for _, _, premises, conclusions in kn.groups:
        items += [("syllogism", c, 0, list(premises)) for c in conclusions]
    for c, props in inherited.items():  # syllogism (categories with own facts) or holdout
        limit = max_holdout if c in kn.holdout else max_inherited
        split = "holdout" if c in kn.holdout else "syllogism"
        items += [(split, t, 0, support) for t, support in rng.sample(props, min(limit, len(props)))]
    for pair, support in pairs:
        items.append(("two_hop", pair[0] if rng.random() < 0.5 else pair[1], 0, support))
    return items


def _top_up_items(kn: Knowledge, ancestry: Ancestry, inherited: Inherited, pairs: list[Pair]) -> list[Item]:
    """Holdout and two-hop items beyond the first pass (which ones were asked is the caller's to exclude)."""
    items: list[Item] = []
    for c in kn.holdout:
        items += [("holdout", t, 0, support) for t, support in inherited[c]]
        items += [("holdout", derived("isa", c, anc), 0, chain) for anc, chain in ancestry[c][1:]]
    items += [("two_hop", t, 0, support) for pair, support in pairs for t in pair]
    return items


def _ancestry(kn: Knowledge) -> Ancestry:
    """Each category's ancestors, nearest first, with the chain of "kind of" facts that reaches each."""
    isa = {f.a: f for f in kn.facts if f.rel == "isa"}
    out: Ancestry = {}
    for c in kn.categories:
        out[c] = []
        for anc in kn.ancestors(c):
            chain = out[c][-1][1] if out[c] else []
            out[c].append((anc, chain + [isa[chain[-1].b if chain else c]]))
    return out


def _inherited(kn: Knowledge, ancestry: Ancestry) -> Inherited:
    """Each category's inherited properties as (statement, support: the "kind of" chain and the ancestor's
    property fact), in category order."""
    has = {(f.a, f.b): f for f in kn.facts if f.rel == "has"}
    return {c: [(derived("has", c, p), chain + [has[(anc, p)]]) for anc, chain in chains
                for p in kn.props.get(anc, [])] for c, chains in ancestry.items()}


def _two_hop_pairs(kn: Knowledge) -> list[Pair]:
    """Every two-hop inference in both directions, with its two support facts: a comparison across two links
    ("more" of the top, "less" of the bottom), grandparent / grandchild, and a sibling pair either way round."""
    pairs: list[Pair] = []
    link = {(frozenset((f.a, f.b)), f.attr): f for f in kn.facts if f.kind == "comparison"}
    for adj, ents in kn.chains:
        for hi, mid, lo in zip(ents, ents[1:], ents[2:]):
            pairs.append(((derived("more", hi, lo, adj), derived("less", lo, hi, adj)),
                          [link[(frozenset((hi, mid)), adj)], link[(frozenset((mid, lo)), adj)]]))
    par = {(f.a, f.b): f for f in kn.facts if f.rel == "parent"}
    for fam in kn.families:
        for p, kids in fam.items():
            for k in kids:
                for g in fam[k]:
                    pairs.append(((derived("grandparent", p, g), derived("grandchild", g, p)),
                                  [par[(p, k)], par[(k, g)]]))
            for i, x in enumerate(kids):
                for y in kids[i + 1:]:
                    pairs.append(((derived("sibling", x, y), derived("sibling", y, x)), [par[(p, x)], par[(p, y)]]))
    return pairs


def _pools(kn: Knowledge, documents: Sequence[dict]) -> dict[str, list[str]]:
    """Entity lists: all of a kind, ``kind:cluster`` (same chain/group/tree/family), ``doc:entity`` (named in
    the same documents) and ``docprop:category`` (properties named in the category's documents)."""
    by_id = {f.id: f for f in kn.facts}
    pools: dict[str, list[str]] = {}
    for d in documents:
        facts = [by_id[i] for i in d["facts"]]
        ents = list(dict.fromkeys(e for f in facts for e in ((f.a,) if f.rel == "has" else (f.a, f.b))))
        props = [f.b for f in facts if f.rel == "has"]
        for e in ents:
            pools.setdefault(f"doc:{e}", []).extend(x for x in ents if x != e)
            pools.setdefault(f"docprop:{e}", []).extend(props)
    pools |= {"comparison": [e for _, ents in kn.chains for e in ents],
                                   "syllogism": [t for _, terms, _, _ in kn.groups for t in terms],
                                   "hierarchy": list(kn.categories),
                                   "family": [p for fam in kn.families for p in fam],
                                   "property": [p for c in kn.categories for p in kn.props.get(c, [])]}
    for kind, ents in list(pools.items()):
        for e in ents:
            pools.setdefault(f"{kind}:{kn.cluster(e)}", []).append(e)
    return pools


def property_frame(prop: str) -> tuple[str, bool]:
    """(verb, is English) of a property: "can swim" -> ("can", True), "hunt glorps" -> ("hunt", False); the
    verbs of fewer than three English properties ("lay eggs", "make honey") count as one verb, ""."""
    verb, english = prop.split(" ")[0], prop in _ENGLISH
    return ("" if english and _VERB_COUNT[verb] < 3 else verb), english


def candidates(kn: Knowledge, t: Fact, pools: dict[str, list[str]], frames: Mapping[str, tuple[str, bool]],
               rng: random.Random) -> tuple[list[Fact], list[Fact]]:
    """(hard, other) candidate distractor statements for target ``t`` in the order tried, before filtering;
    ``frames`` is ``property_frame`` of every property of the world."""
    if t.rel == "has":  # alike first, so that no option stands out by its verb or by being English
        verb, english = property_frame(t.b)
        rank = {f: (f[0] != verb) + 2 * (f[1] != english) for f in set(frames.values())}
        unlike = {p: rank[f] for p, f in frames.items()}  # 0 same verb and kind, 1 same kind, 2 same verb, 3 neither
        near = pools.get(f"docprop:{t.a}", []) + pools[f"property:{kn.cluster(t.a)}"]
        anywhere = sorted(rng.sample(pools["property"], len(pools["property"])), key=unlike.__getitem__)
        hard = [p for p in near if unlike[p] == 0]
        rest = anywhere[:12] + sorted(near, key=unlike.__getitem__)
        return [derived("has", t.a, p) for p in hard], [derived("has", t.a, p) for p in rest]
    near = pools.get(f"doc:{t.a}", []) + pools.get(f"doc:{t.b}", []) + pools[f"{t.kind}:{kn.cluster(t.b)}"]
    same = [e for e in dict.fromkeys(near) if e != t.a]
    other = [e for e in rng.sample(pools[t.kind], min(12, len(pools[t.kind]))) if e != t.a]
    hard = [derived(t.rel, t.a, e, t.attr) for e in same]
    rest = [derived(t.rel, t.a, e, t.attr) for e in other]
    if t.kind == "comparison":  # the contradiction ("less" for "more") always comes first
        flip = REVERSE[t.rel]
        rng.shuffle(hard)
        hard = [derived(flip, t.a, t.b, t.attr)] + hard + [derived(flip, t.a, e, t.attr) for e in same]
        rest += [derived(r, t.a, t.b, adj) for adj in rng.sample(ADJECTIVES, 6) for r in (t.rel, flip)]
    else:
        rng.shuffle(hard)
    rng.shuffle(rest)
    return hard, rest


def _question(kn: Knowledge, split: str, t: Fact, ph: int, support: list[Fact], full: set[Key],
              pools: dict[str, list[str]], frames: Mapping[str, tuple[str, bool]], rng: random.Random,
              n_choices: int) -> dict | None:
    if t.key not in closure(support):
        raise AssertionError(f"bug: {t} does not follow from its support {support}")
    prefix, answer = cloze(t, ph)
    hard, rest = candidates(kn, t, pools, frames, rng)
    chosen: list[str] = []

    def take(cands: list[Fact], limit: int) -> None:
        for c in cands:
            if len(chosen) >= limit:
                return
            if c.key in full:
                continue
            pre, cont = cloze(c, ph)
            if pre == prefix and cont != answer and cont not in chosen:
                chosen.append(cont)

    take(hard, max(1, n_choices - 2))
    take(rest + hard, n_choices - 1)
    if len(chosen) < n_choices - 1:
        return None
    pos = rng.randrange(n_choices)
    choices = chosen[:pos] + [answer] + chosen[pos:]
    return {"id": "", "split": split, "kind": t.kind, "question": prefix, "choices": choices, "answer": pos,
            "support": [f.id for f in support]}
