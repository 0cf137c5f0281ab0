"""Surface text for facts: phrasing templates, lead-ins, documents, and a parser back to facts.

Every relation has at least two phrasings (the trained relations three or more). A template marks with "|"
where a cloze question splits it: the prefix before the bar is the question, the rest is the continuation
that the choices vary (``cloze``). Each training fact gets one trained phrasing (``assign_phrasings``);
documents use only that phrasing, so a rephrasing question can use another one. Documents are short
articles of ``doc_min``-``doc_max`` sentences packed from clusters of related training facts (a comparison
chain, a syllogism's premises, a category with its properties, a family) with lead-ins such as "Did you know
that ...?". ``Parser`` maps a statement (or document sentence) back to a ``Fact`` over the world's
vocabulary, so tests can check what a piece of text claims.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence

from underdog.world.knowledge import ADJECTIVES, REL_KIND, Fact, Knowledge

PHRASINGS: dict[str, tuple[str, ...]] = {
    "more": ("{a} are | more {attr} than {b}", "compared to {b}, {a} are | more {attr}",
             "{a} are | more {attr} when compared with {b}"),
    "less": ("{a} are | less {attr} than {b}", "compared to {b}, {a} are | less {attr}",
             "{a} are | less {attr} when compared with {b}"),
    "all": ("all {a} are | {b}", "{a} are always | {b}", "without exception, {a} are | {b}"),
    "some": ("some {a} are | {b}", "{a} are sometimes | {b}", "there are {a} that are | {b}"),
    "no": ("no {a} are | {b}", "{a} are never | {b}", "there are no {a} that are | {b}"),
    "isa": ("{a} are a kind of | {b_sg}", "{a} are a type of | {b_sg}", "each {a_sg} is | a {b_sg}"),
    "include": ("{a} include | {b}", "among the {a} are | the {b}"),
    "has": ("{a} | {prop}", "every {a_sg} | {prop_sg}", "any {a_sg} | {prop_sg}"),
    "parent": ("{a} is the parent of | {b}", "{a} has a child named | {b}", "one child of {a} is | {b}"),
    "child": ("{a} is the child of | {b}", "{a} has a parent named | {b}", "one parent of {a} is | {b}"),
    "grandparent": ("{a} is the grandparent of | {b}", "{a} has a grandchild named | {b}"),
    "grandchild": ("{a} is the grandchild of | {b}", "{a} has a grandparent named | {b}"),
    "sibling": ("{a} is a sibling of | {b}", "{a} and | {b} are siblings"),
}
"""Templates per relation; "|" splits question prefix from answer continuation. Phrasing 0 is canonical."""

LEADINS: tuple[str, ...] = ("{s}.", "{s}.", "{s}.", "{s}.", "Did you know that {s}?", "It is known that {s}.",
                            "In fact, {s}.", "It is true that {s}.", "Note that {s}.", "Remember that {s}.")
_IRREGULAR = {"have": "has", "are": "is", "can": "can"}


def singular_property(prop: str) -> str:
    """ "have fur" -> "has fur", "can swim" -> "can swim", "live near X" -> "lives near X"."""
    verb, _, rest = prop.partition(" ")
    return f"{_IRREGULAR.get(verb, verb + 's')} {rest}".strip()


def _slots(f: Fact) -> dict[str, str]:
    noun = f.kind != "family"
    s = {"a": f.a + "s" if noun else f.a, "a_sg": f.a, "attr": f.attr}
    if f.rel == "has":
        s.update(prop=f.b, prop_sg=singular_property(f.b))
    else:
        s.update(b=f.b + "s" if noun else f.b, b_sg=f.b)
    return s


def capitalize(s: str) -> str:
    return s[:1].upper() + s[1:]


def cloze(f: Fact, phrasing: int = 0) -> tuple[str, str]:
    """(question prefix, continuation) of a statement; the scored text is ``prefix + " " + continuation``."""
    pre, cont = PHRASINGS[f.rel][phrasing].format(**_slots(f)).split(" | ")
    return capitalize(pre), cont


def statement(f: Fact, phrasing: int = 0) -> str:
    """The statement as text (no final period), first letter lower case unless it is a name."""
    return PHRASINGS[f.rel][phrasing].format(**_slots(f)).replace(" | ", " ")


def sentence(f: Fact, phrasing: int, leadin: int = 0) -> str:
    """A document sentence: the statement wrapped in a lead-in, capitalised, with final punctuation."""
    return capitalize(LEADINS[leadin].format(s=statement(f, phrasing)))


def assign_phrasings(facts: Iterable[Fact], rng: random.Random) -> dict[str, int]:
    """The one phrasing each training fact is written in, uniformly over its relation's templates."""
    return {f.id: rng.randrange(len(PHRASINGS[f.rel])) for f in facts}


def fact_clusters(kn: Knowledge) -> list[list[Fact]]:
    """Training facts grouped so that facts needed together for an inference share a document."""
    by_id = {f.id: f for f in kn.facts}
    out: list[list[Fact]] = []
    for kind in ("comparison", "syllogism", "hierarchy", "family"):
        out.extend(_kind_clusters(kn, kind, by_id))
    return out


def _kind_clusters(kn: Knowledge, kind: str, by_id: dict[str, Fact]) -> list[list[Fact]]:
    facts = [f for f in kn.facts if f.kind == kind]
    if kind == "comparison":
        return [[f for f in facts if f.attr == adj] for adj, _ in kn.chains]
    if kind == "syllogism":
        return [list(prem) for _, _, prem, _ in kn.groups]
    if kind == "family":
        return [[f for f in facts if f.a in fam] for fam in kn.families]
    isa = {f.a: f for f in facts if f.rel == "isa"}
    out = []
    for c in kn.categories:
        if c in kn.holdout:
            continue
        cl = [isa[c]] if c in isa else []
        cl += [f for f in facts if f.rel == "has" and f.a == c]
        cl += [isa[h] for h in kn.holdout if kn.parent_of[h] == c]
        out.append(cl)
    return out


def make_documents(kn: Knowledge, phrasing: dict[str, int], rng: random.Random, doc_min: int = 4,
                   doc_max: int = 12) -> list[dict]:
    """Pack fact clusters of one kind into short documents; returns ``{"id", "text", "facts"}`` dicts."""
    docs: list[list[Fact]] = []
    for kind in ("comparison", "syllogism", "hierarchy", "family"):
        clusters = [c for c in fact_clusters(kn) if c and c[0].kind == kind]
        rng.shuffle(clusters)
        cur: list[Fact] = []
        target = rng.randint(doc_min, doc_max)
        for cl in clusters:
            if cur and len(cur) + len(cl) > doc_max:
                docs.append(cur)
                cur, target = [], rng.randint(doc_min, doc_max)
            cur = cur + cl
            if len(cur) >= target:
                docs.append(cur)
                cur, target = [], rng.randint(doc_min, doc_max)
        if cur:
            if docs and docs[-1][0].kind == kind and len(docs[-1]) + len(cur) <= max(doc_max, 20):
                docs[-1] = docs[-1] + cur
            else:
                docs.append(cur)
    rng.shuffle(docs)
    out = []
    for i, facts in enumerate(docs):
        facts = list(facts)
        rng.shuffle(facts)
        text = " ".join(sentence(f, phrasing[f.id], rng.randrange(len(LEADINS))) for f in facts)
        out.append({"id": f"d{i:04d}", "text": text, "facts": [f.id for f in facts]})
    return out


_SLOT_RE = re.compile(r"\{(\w+)\}")
_LEADIN_RES = [re.compile("^" + re.escape(t).replace(re.escape("{s}"), "(?P<s>.+)") + "$", re.I)
               for t in sorted(set(LEADINS), key=len, reverse=True)]


def _template_regex(template: str, noun: bool) -> re.Pattern:
    def slot(m: re.Match) -> str:
        name = m.group(1)
        if name in ("a", "b"):
            return f"(?P<{name}>[a-z]+)s" if noun else f"(?P<{name}>[a-z]+)"
        if name in ("a_sg", "b_sg"):
            return f"(?P<{name[0]}>[a-z]+)"
        if name == "attr":
            return "(?P<attr>[a-z]+)"
        return "(?P<b>[a-z ]+?)" if name == "prop" else "(?P<bsg>[a-z ]+?)"

    parts = _SLOT_RE.split(template.replace(" | ", " "))
    rx = "".join(re.escape(p) if i % 2 == 0 else slot(re.match(r"(\w+)", p)) for i, p in enumerate(parts))
    return re.compile(rx)


_REGEXES = [(rel, i, _template_regex(t, REL_KIND[rel] != "family"))
            for rel, ts in PHRASINGS.items() for i, t in enumerate(ts)]


def comparison_order(line: str) -> tuple[str, str, str] | None:
    """(higher, lower, adjective) of a comparison statement in any of its phrasings (names plural, lower-cased);
    None for any other line. "Taklods are less busy than rislos." -> ("rislos", "taklods", "busy")."""
    s = line.strip().lower()
    if not s.endswith("."):
        return None
    for rel, _, rx in _REGEXES:
        m = rx.fullmatch(s[:-1]) if rel in ("more", "less") else None
        if m:
            a, b = m["a"] + "s", m["b"] + "s"
            return (a, b, m["attr"]) if rel == "more" else (b, a, m["attr"])
    return None


def strip_leadin(text: str) -> str:
    """"Did you know that X?" / "Note that X." -> "X." (capitalised); other sentences unchanged."""
    s = text.strip()
    for rx in _LEADIN_RES:
        m = rx.match(s)
        if m and m.group("s") and m.group("s") != s.rstrip(".?!"):
            return capitalize(m.group("s").rstrip(".?!")) + "."
    return s


class Parser:
    """Reads statements back into facts, over the vocabulary of the given facts."""

    def __init__(self, facts: Iterable[Fact], extra_properties: Sequence[str] = ()) -> None:
        self.nouns: set[str] = set()
        self.names: dict[str, str] = {}
        self.props: dict[str, str] = {}
        for f in facts:
            if f.kind == "family":
                self.names.update({f.a.lower(): f.a, f.b.lower(): f.b})
            elif f.rel == "has":
                self.nouns.add(f.a)
                self.props[f.b] = f.b
            else:
                self.nouns.update((f.a, f.b))
        for p in list(self.props) + list(extra_properties):
            self.props[p] = self.props[singular_property(p)] = p

    def parse(self, text: str) -> Fact | None:
        """The fact a statement or document sentence states, or None when it matches no template."""
        s = text.strip()
        for rx in _LEADIN_RES:
            m = rx.match(s)
            if m and m.group("s"):
                s = m.group("s")
                break
        s = s.rstrip(".?!").strip().lower()
        for rel, _, rx in _REGEXES:
            m = rx.fullmatch(s)
            if m:
                f = self._check(rel, m.groupdict())
                if f is not None:
                    return f
        return None

    def _check(self, rel: str, g: dict[str, str]) -> Fact | None:
        kind = REL_KIND[rel]
        if kind == "family":
            if g["a"] in self.names and g["b"] in self.names:
                return Fact("", kind, rel, self.names[g["a"]], self.names[g["b"]])
            return None
        if rel == "has":
            said = g["bsg"] if "bsg" in g else g["b"]
            prop = self.props.get(said)
            ok = prop is not None and said == (singular_property(prop) if "bsg" in g else prop)
            return Fact("", kind, rel, g["a"], prop) if ok and g["a"] in self.nouns else None
        attr = g.get("attr", "")
        if g["a"] in self.nouns and g["b"] in self.nouns and (kind != "comparison" or attr in ADJECTIVES):
            return Fact("", kind, rel, g["a"], g["b"], attr)
        return None
