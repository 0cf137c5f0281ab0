"""Facts of a synthetic world and the rules that derive new facts from them.

Four kinds of knowledge, all over nonsense words: ``comparison`` chains along English adjective dimensions
("glorps are more heavy than zints"), ``syllogism`` premises with all/some/no, a ``hierarchy`` of categories
with properties ("bliks are a kind of zorp", "zorps have fur") and ``family`` trees of names ("Dax is the
parent of Mil"). A ``Fact`` is one relation ``rel(a, b)`` (with ``attr`` naming the adjective of a
comparison); nouns are stored as singular stems, names capitalised. ``closure`` computes every statement the
rules entail (reversals, transitivity, syllogisms, inheritance, grandparents and siblings) and ``entails``
checks one statement against a set of facts: this is the checker behind the question invariant "the answer
follows from its support facts and no distractor follows from the whole world".
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from underdog.world.words import Lexicon

ADJECTIVES: tuple[str, ...] = (
    "heavy", "fast", "bright", "loud", "tall", "old", "warm", "cold", "sweet", "sour", "wide", "long",
    "thick", "smooth", "rough", "strong", "quiet", "dark", "wet", "dry", "sharp", "brave", "clever",
    "friendly", "lazy", "noisy", "rare", "calm", "fierce", "gentle", "busy", "proud",
)
"""Comparison dimensions: "X are more <adj> than Y" (never "heavier", for regularity)."""

# English properties of hierarchy categories; those sharing a group name exclude each other in one tree.
ENGLISH_PROPERTIES: tuple[tuple[str, str], ...] = tuple(
    (p, g) for g, ps in {
        "": ("have fur", "have feathers", "have scales", "have wings", "have horns", "have tails",
             "have stripes", "have spots", "have claws", "have shells", "have whiskers", "have hooves",
             "have fins", "have antlers", "have beaks", "have long necks", "have sharp teeth", "have big ears",
             "have thick skin", "have six legs", "can swim", "can fly", "can climb", "can dig", "can jump",
             "can sing", "can glow", "can hop", "can float", "can whistle", "can see in the dark",
             "eat grass", "eat fish", "eat seeds", "eat leaves", "eat insects", "eat fruit", "lay eggs",
             "build nests", "make honey", "like rain", "like snow", "are hairy", "are spiky", "are slimy"),
        "color": ("are green", "are red", "are blue", "are yellow", "are purple", "are orange"),
        "size": ("are tiny", "are huge"),
        "sleep": ("sleep in the day", "sleep at night"),
        "home": ("live in trees", "live in caves", "live underground", "live near rivers"),
    }.items() for p in ps
)
PROPERTY_FRAMES: tuple[str, ...] = ("eat", "hunt", "fear", "chase", "like", "live near", "play with", "have")
"""Verbs for nonsense properties: "fear <nonsense noun>s"."""

REL_KIND: dict[str, str] = {
    "more": "comparison", "less": "comparison", "all": "syllogism", "some": "syllogism", "no": "syllogism",
    "isa": "hierarchy", "include": "hierarchy", "has": "hierarchy", "parent": "family", "child": "family",
    "grandparent": "family", "grandchild": "family", "sibling": "family",
}
REVERSE: dict[str, str] = {"more": "less", "less": "more", "some": "some", "no": "no", "isa": "include",
                           "include": "isa", "parent": "child", "child": "parent", "grandparent": "grandchild",
                           "grandchild": "grandparent", "sibling": "sibling"}
"""Relations whose arguments can be swapped (valid reversals only: never "all")."""

Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Fact:
    """One statement ``rel(a, b)``; ``attr`` is the adjective of a comparison. Derived facts have id ""."""

    id: str
    kind: str
    rel: str
    a: str
    b: str
    attr: str = ""

    @property
    def key(self) -> Key:
        return (self.rel, self.a, self.b, self.attr)

    def reversed(self) -> Fact:
        return Fact("", self.kind, REVERSE[self.rel], self.b, self.a, self.attr)

    def text(self, phrasing: int = 0) -> str:
        """The statement in one of its surface templates (see ``render.PHRASINGS``)."""
        from underdog.world.render import statement

        return statement(self, phrasing)


def derived(rel: str, a: str, b: str, attr: str = "") -> Fact:
    return Fact("", REL_KIND[rel], rel, a, b, attr)


@dataclass
class Knowledge:
    """All facts of a world plus the structure they were built from (used to pick questions/distractors)."""

    facts: list[Fact] = field(default_factory=list)
    chains: list[tuple[str, list[str]]] = field(default_factory=list)  # (adjective, entities high -> low)
    groups: list[tuple[str, list[str], list[Fact], list[Fact]]] = field(default_factory=list)
    parent_of: dict[str, str] = field(default_factory=dict)  # category -> parent category
    tree_of: dict[str, int] = field(default_factory=dict)  # category -> tree index
    categories: list[str] = field(default_factory=list)
    holdout: list[str] = field(default_factory=list)
    props: dict[str, list[str]] = field(default_factory=dict)  # category -> its own properties
    families: list[dict[str, list[str]]] = field(default_factory=list)  # person -> children

    def add(self, kind: str, rel: str, a: str, b: str, attr: str = "") -> Fact:
        n = self._count = getattr(self, "_count", {})
        n[kind] = n.get(kind, 0) + 1
        f = Fact(f"{kind[:3]}-{n[kind] - 1:04d}", kind, rel, a, b, attr)
        self.facts.append(f)
        return f

    def cluster(self, entity: str) -> int:
        """An id for the chain/group/tree/family an entity belongs to (for picking hard distractors)."""
        return self._clusters().get(entity, -1)

    def _clusters(self) -> dict[str, int]:
        if not hasattr(self, "_cl"):
            cl: dict[str, int] = {}
            for i, (_, ents) in enumerate(self.chains):
                cl.update((e, i) for e in ents)
            for i, (_, terms, _, _) in enumerate(self.groups):
                cl.update((t, 1000 + i) for t in terms)
            for c, t in self.tree_of.items():
                cl[c] = 2000 + t
                cl.update((p, 2000 + t) for p in self.props.get(c, []))
            for i, fam in enumerate(self.families):
                cl.update((p, 3000 + i) for p in fam)
            self._cl = cl
        return self._cl

    def ancestors(self, cat: str) -> list[str]:
        out = []
        while cat in self.parent_of:
            cat = self.parent_of[cat]
            out.append(cat)
        return out


def add_comparisons(kn: Knowledge, lex: Lexicon, rng: random.Random, n_dimensions: int, chain_length: int,
                    p_more: float = 0.5) -> None:
    """Chains of ``chain_length`` entities per adjective, each link stated as "hi are more <adj> than lo" with
    probability ``p_more``, else as "lo are less <adj> than hi"."""
    if n_dimensions > len(ADJECTIVES):
        raise ValueError(f"n_dimensions is at most {len(ADJECTIVES)}")
    if not 0 <= p_more <= 1:
        raise ValueError(f"p_more is a probability (0 to 1), got {p_more}")
    for adj in rng.sample(ADJECTIVES, n_dimensions):
        ents = [lex.noun() for _ in range(chain_length)]
        kn.chains.append((adj, ents))
        for hi, lo in zip(ents, ents[1:]):
            if rng.random() < p_more:
                kn.add("comparison", "more", hi, lo, adj)
            else:
                kn.add("comparison", "less", lo, hi, adj)


SYLLOGISM_FORMS = ("all-all", "no-all", "all-some")


def add_syllogisms(kn: Knowledge, lex: Lexicon, rng: random.Random, n: int) -> None:
    """Groups of three terms A, B, C with two premises and their conclusions (both orders where symmetric)."""
    forms = [SYLLOGISM_FORMS[i % 3] for i in range(n)]
    rng.shuffle(forms)
    for form in forms:
        a, b, c = lex.noun(), lex.noun(), lex.noun()
        q1, q2 = form.split("-")
        premises = [(q1, a, b), (q2, c, a)]
        rng.shuffle(premises)
        facts = [kn.add("syllogism", q, x, y) for q, x, y in premises]
        concl = {"all-all": [("all", c, b)], "no-all": [("no", c, b), ("no", b, c)],
                 "all-some": [("some", c, b), ("some", b, c)]}[form]
        kn.groups.append((form, [a, b, c], facts, [derived(*x) for x in concl]))


def add_hierarchy(kn: Knowledge, lex: Lexicon, rng: random.Random, n_categories: int, n_roots: int,
                  max_depth: int, max_properties: int, holdout_fraction: float) -> None:
    """A forest of categories; holdout leaves get only their "is a kind of" fact, others 1..max properties."""
    depth: dict[str, int] = {}
    n_children: dict[str, int] = defaultdict(int)
    cats: list[str] = []
    for t in range(n_roots):
        r = lex.noun()
        cats.append(r)
        depth[r], kn.tree_of[r] = 0, t
    while len(cats) < n_categories:
        open_ = [c for c in cats if depth[c] < max_depth and n_children[c] < 4]
        weights = [1.0 / (1 + n_children[c]) for c in open_]
        parent = rng.choices(open_, weights)[0]
        c = lex.noun()
        cats.append(c)
        depth[c], kn.tree_of[c], kn.parent_of[c] = depth[parent] + 1, kn.tree_of[parent], parent
        n_children[parent] += 1
    leaves = [c for c in cats if n_children[c] == 0 and depth[c] >= 1]
    kn.holdout = sorted(rng.sample(leaves, min(len(leaves), round(holdout_fraction * len(cats)))),
                        key=cats.index)
    kn.categories = cats
    english = list(ENGLISH_PROPERTIES)
    used_groups: set[tuple[int, str]] = set()
    for c in cats:
        if c in kn.holdout:
            continue
        own = []
        for _ in range(rng.randint(1, max_properties)):
            t = kn.tree_of[c]
            ok = [(p, g) for p, g in english if not g or (t, g) not in used_groups]
            if ok and rng.random() < 0.5:
                p, g = rng.choice(ok)
                english.remove((p, g))
                used_groups.add((t, g))
            else:
                p = f"{rng.choice(PROPERTY_FRAMES)} {lex.noun()}s"
            own.append(p)
        kn.props[c] = own
    for c in cats:  # facts: each category's own "kind of" fact and properties, in tree order
        if c in kn.parent_of:
            kn.add("hierarchy", "isa", c, kn.parent_of[c])
        for p in kn.props.get(c, []):
            kn.add("hierarchy", "has", c, p)


def add_families(kn: Knowledge, lex: Lexicon, rng: random.Random, n_families: int) -> None:
    """Three-generation families: one elder, 2-3 children, each with 1-3 children."""
    for _ in range(n_families):
        elder = lex.name()
        fam: dict[str, list[str]] = {elder: [lex.name() for _ in range(rng.randint(2, 3))]}
        for child in list(fam[elder]):
            fam[child] = [lex.name() for _ in range(rng.randint(1, 3))]
        for kid in [k for ks in list(fam.values()) for k in ks if k not in fam]:
            fam[kid] = []
        kn.families.append(fam)
        for p, kids in fam.items():
            for k in kids:
                kn.add("family", "parent", p, k)


def closure(facts: Iterable[Fact]) -> set[Key]:
    """Every statement entailed by ``facts``: the facts, their valid reversals, transitive comparisons and
    kinds, all/no/some syllogisms (plus "all A are B" => "some A are B"), inherited properties, grandparents,
    grandchildren and siblings."""
    out: set[Key] = set()
    more: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    all_: dict[str, set[str]] = defaultdict(set)
    some: set[tuple[str, str]] = set()
    no: set[tuple[str, str]] = set()
    isa: dict[str, set[str]] = defaultdict(set)
    has: list[tuple[str, str]] = []
    parent: dict[str, set[str]] = defaultdict(set)
    for f in facts:
        r, a, b = f.rel, f.a, f.b
        if r in ("more", "less"):
            hi, lo = (a, b) if r == "more" else (b, a)
            more[f.attr][hi].add(lo)
        elif r == "all":
            all_[a].add(b)
        elif r == "some":
            some.add((a, b))
        elif r == "no":
            no.add((a, b))
        elif r in ("isa", "include"):
            isa[a if r == "isa" else b].add(b if r == "isa" else a)
        elif r == "has":
            has.append((a, b))
        elif r in ("parent", "child"):
            parent[a if r == "parent" else b].add(b if r == "parent" else a)
        else:  # grandparent/grandchild/sibling given as facts: keep them and their reversal
            out |= {f.key, f.reversed().key}
    for attr, graph in more.items():
        for hi, lo in _transitive(graph):
            out |= {("more", hi, lo, attr), ("less", lo, hi, attr)}
    up = _transitive(all_)
    sub: dict[str, set[str]] = defaultdict(set)  # term -> terms it is (transitively) all-included in
    for x, y in up:
        sub[x].add(y)
    no_all = {(c, d) for a, b in no | {(b, a) for a, b in no}
              for c in [a] + [x for x in sub if a in sub[x]] for d in [b] + [y for y in sub if b in sub[y]]}
    some_all = set(some) | {(b, a) for a, b in some} | up
    while True:
        new = {(c, b) for c, a in some_all for b in sub.get(a, ())} - some_all
        new |= {(b, a) for a, b in new}
        if not new:
            break
        some_all |= new
    out |= {("all", x, y, "") for x, y in up} | {("no", x, y, "") for x, y in no_all}
    out |= {("some", x, y, "") for x, y in some_all}
    kinds = _transitive(isa)
    out |= {("isa", c, p, "") for c, p in kinds} | {("include", p, c, "") for c, p in kinds}
    below: dict[str, set[str]] = defaultdict(set)
    for c, p in kinds:
        below[p].add(c)
    out |= {("has", d, p, "") for c, p in has for d in below[c] | {c}}
    child_of: dict[str, set[str]] = defaultdict(set)
    for p, kids in parent.items():
        for k in kids:
            child_of[k].add(p)
            out |= {("parent", p, k, ""), ("child", k, p, "")}
            out |= {("sibling", k, s, "") for s in kids if s != k}
            for g in parent.get(k, ()):
                out |= {("grandparent", p, g, ""), ("grandchild", g, p, "")}
    return out


def _transitive(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    pairs: set[tuple[str, str]] = set()
    for start in list(graph):
        stack, seen = list(graph[start]), set()
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(graph.get(n, ()))
        pairs |= {(start, n) for n in seen if n != start}
    return pairs


def entails(facts: Iterable[Fact] | set[Key], statement: Fact) -> bool:
    """Whether ``statement`` follows from ``facts`` (or from an already computed ``closure``)."""
    cl = facts if isinstance(facts, set) else closure(facts)
    return statement.key in cl
