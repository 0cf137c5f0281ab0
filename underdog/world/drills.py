"""Drills: pretraining exercises of the mechanisms that reading a context rests on, with no world knowledge in
them; the world supplies only its nonsense words. ``copy_text`` ("list : a b c . again : a b c ."),
``copy_mixed_text`` (lists that mix in the templates' English words), ``recall_text`` ("Name link word." lines
sharing one link, then the same lines shuffled), ``recall_slot_text`` (the recalled word mid-line, where a
comparison's comparator sits), ``recall_swap_text`` (lines asked as stated or with their names swapped,
more/less flipped; one unit is ``recall_swap_unit``, which ``pretrain.probe.LookupProbe`` asks too),
``swap_role_text`` and ``swap_xor_text`` (swapped units biased so that the role of the asked name, and then
its XOR with the comparator, can be learnt; ``biased_swap_unit``; ``swap_xor_settings`` checks a recipe's
knobs), ``chain_compare_text`` (comparison chains whose inner names stand in two lines, so the comparator
decides the name that follows it; ``more_only``, every pair stated with "more", is its first step) and
``numbers_text`` (counting, addition, comparison). ``fill`` joins units into one pretraining text of a random
length; ``episodes`` builds its texts with it too.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from underdog.world import World
from underdog.world.knowledge import ADJECTIVES, Fact
from underdog.world.render import PHRASINGS, capitalize, sentence

MAX_WORDS = 600


def fill(rng: random.Random, unit: Callable[[], str], sep: str = "\n\n", lo: int = 100, hi: int = 400) -> str:
    """Join units until the text reaches a random length in [lo, hi] words (never over ``MAX_WORDS``)."""
    target, parts, words = rng.randint(lo, hi), [], 0
    for _ in range(200):
        if words >= target:
            break
        u = unit()
        w = len(u.split())
        if not u or (parts and words + w > MAX_WORDS):
            break
        parts.append(u)
        words += w
    return sep.join(parts)


def context_and_answers(text: str) -> list[tuple[str, str]]:
    """A pretraining text's units (three blank lines apart, as ``fill`` joins episodes and recall units) as
    (context, answers): a unit up to and including its last blank line, and the rest. A unit with no blank line
    (a document, copy lists, numbers) is all answers. ``pretrain`` uses it to take no loss on contexts."""
    out = []
    for unit in text.split("\n\n\n"):
        context, blank, answers = unit.rpartition("\n\n")
        out.append((context + blank, answers))
    return out


def _recall_units(rng: random.Random, unit: Callable[[], tuple[list[str], list[str]]]) -> str:
    """Recall units from ``unit``'s (stated, asked) lines: the stated lines, a blank line, the asked ones; units
    three blank lines apart."""
    def text() -> str:
        stated, asked = unit()
        return "\n".join(stated) + "\n\n" + "\n".join(asked)
    return fill(rng, text, sep="\n\n\n")


def _copy_lists(rng: random.Random, word: Callable[[], str]) -> str:
    def unit() -> str:
        words = " ".join(word() for _ in range(rng.randint(3, 12)))
        return f"list : {words} . again : {words} ."
    return fill(rng, unit, sep="\n")


def copy_text(world: World, rng: random.Random) -> str:
    return _copy_lists(rng, lambda: rng.choice(world.words))


def back_pairs_text(world: World, rng: random.Random, gap: tuple[int, int] = (0, 0)) -> str:
    """Word pairs, then half of them asked back to front: "pairs : a b , c d . back : d c ." The answer is
    the word before the asked one, the plainest reversed lookup (a swapped name is the subject several tokens
    before it). ``gap`` puts that many template words between a pair's two words ("a are more b"), a step
    towards a sentence."""
    def unit() -> str:
        words = rng.sample(world.words, 2 * rng.randint(2, 6))
        pairs = list(zip(words[::2], words[1::2]))
        fillers = [" ".join(rng.choice(COPY_ENGLISH) for _ in range(rng.randint(*gap))) for _ in pairs]
        stated = " , ".join(" ".join(w for w in (a, f, b) if w) for (a, b), f in zip(pairs, fillers))
        asked = " , ".join(f"{b} {a}" for a, b in rng.sample(pairs, len(pairs) // 2))  # none told by elimination
        return f"pairs : {stated} . back : {asked} ."
    return fill(rng, unit, sep="\n")


COPY_ENGLISH: tuple[str, ...] = (
    "more", "less", "all", "some", "no", "are", "is", "than", "of", "the", "a", "include", "parent", "child",
    "sibling", "grandparent", "grandchild", "have", "can", "eat", "like", *ADJECTIVES)
"""The template words a copy exercise mixes in: a copy circuit trained on nonsense words alone skips them."""


def _english_or_nonsense(world: World, rng: random.Random, p_english: float) -> str:
    return rng.choice(COPY_ENGLISH) if rng.random() < p_english else rng.choice(world.words)


def copy_mixed_text(world: World, rng: random.Random) -> str:
    return _copy_lists(rng, lambda: _english_or_nonsense(world, rng, 0.4))


def recall_text(world: World, rng: random.Random) -> str:
    def unit() -> tuple[list[str], list[str]]:
        names = rng.sample(world.words, rng.randint(3, 9))
        link = rng.choice(("are", "is", "has", "can", "are a kind of"))  # one link a unit: "are" alone names no line
        lines = [f"{capitalize(n)} {link} {_english_or_nonsense(world, rng, 0.5)}." for n in names]
        return lines, rng.sample(lines, len(lines))
    return _recall_units(rng, unit)


def recall_slot_text(world: World, rng: random.Random) -> str:
    """Recall units whose recalled word sits mid-line ("Virsams are zorp thick than pedids."): the word after
    "<Name> are" is decided by the line that starts with that name, not by being the line's last word, as the
    comparator of a comparison is ("Virsams are | more thick than pedids")."""
    def unit() -> tuple[list[str], list[str]]:
        names = rng.sample(world.words, rng.randint(3, 9))
        values = rng.choice((("more", "less"), None))
        lines = []
        for n in names:
            value = rng.choice(values) if values else _english_or_nonsense(world, rng, 0.5)
            tail = rng.choice((f"{rng.choice(ADJECTIVES)} than {rng.choice(world.words)}s",
                               f"{rng.choice(ADJECTIVES)}", f"{rng.choice(world.words)} {rng.choice(world.words)}"))
            lines.append(f"{capitalize(n)} are {value} {tail}.")
        return lines, rng.sample(lines, len(lines))
    return _recall_units(rng, unit)


FLIP: dict[str, str] = {"more": "less", "less": "more"}
"""The comparator a swapped comparison takes."""


def _line_and_swap(a: str, b: str, slot: str, adj: str) -> tuple[str, str]:
    """"A are <slot> <adj> than b." and its swap, "B are <slot'> <adj> than a.", more/less flipped, any other
    slot word kept."""
    return (f"{capitalize(a)} are {slot} {adj} than {b}.",
            f"{capitalize(b)} are {FLIP.get(slot, slot)} {adj} than {a}.")


def recall_swap_unit(world: World, rng: random.Random, lines: tuple[int, int] = (3, 7)) -> tuple[list[str], list[str]]:
    """(stated, asked) lines of a swapped-recall unit: "A are <slot> <adj> than b." lines, then each asked
    as stated or swapped ("B are <slot'> <adj> than a."). Keyed by a name that ended its line, the slot is found
    in that line and, for more/less, flipped ("less" for "more"); an open slot word is kept, so the lookup is
    learnt apart from the flip. Every name is named in one line only; ``lines`` is the range of stated lines."""
    names = rng.sample(world.words, 2 * rng.randint(*lines))
    stated, asked = [], []
    for a, b in zip(names[::2], names[1::2]):
        value = rng.choice(("more", "less")) if rng.random() < 0.5 else _english_or_nonsense(world, rng, 0.3)
        line, swapped = _line_and_swap(a, b, value, rng.choice(ADJECTIVES))
        stated.append(line)
        asked.append(swapped if rng.random() < 0.5 else line)
    return stated, rng.sample(asked, len(asked))


def recall_swap_text(world: World, rng: random.Random) -> str:
    return _recall_units(rng, lambda: recall_swap_unit(world, rng))


def biased_swap_unit(world: World, rng: random.Random, p_more: float, p_stated: float,
                     lines: tuple[int, int] = (1, 1)) -> tuple[list[str], list[str]]:
    """(stated, asked) lines of a swapped-recall unit with more/less slots only, "more" stated with probability
    ``p_more`` and each line asked as stated with probability ``p_stated`` (else swapped, the comparator
    flipped). Balanced (0.5, 0.5), the right comparator is the XOR of two bits, the one stated and whether the
    asked name began its line or ended it, and neither alone predicts it: a parity, which gradient descent gets
    almost no signal for. Biased, each bit predicts it on its own, so each can be learnt (docs/builtin-model.md)."""
    names = rng.sample(world.words, 2 * rng.randint(*lines))
    stated, asked = [], []
    for a, b in zip(names[::2], names[1::2]):
        line, swapped = _line_and_swap(a, b, "more" if rng.random() < p_more else "less", rng.choice(ADJECTIVES))
        stated.append(line)
        asked.append(line if rng.random() < p_stated else swapped)
    return stated, rng.sample(asked, len(asked))


def chain_compare_unit(world: World, rng: random.Random, length: tuple[int, int] = (3, 5),
                       others: tuple[int, int] = (0, 3), more_only: bool = False) -> tuple[list[str], list[str]]:
    """(stated, asked) lines of a comparison chain: names ordered by one adjective, each neighbouring pair stated
    once, with "more" or "less" and any comparison phrasing, among ``others`` unrelated comparisons; then
    pairs asked in either order. An inner name stands in two lines, once above and once below, so what follows
    "<Name> are more <adj> than" is decided by the comparator: the binding the ``icl_pairs`` units (every
    name in one line) never ask for. ``more_only`` is the first step of that: every pair stated "A are more
    <adj> than B", no other comparisons, asked as stated or as "B are less <adj> than A"."""
    n_others = 0 if more_only else rng.randint(*others)
    names = rng.sample(world.words, rng.randint(*length) + 2 * n_others)
    chain, spare = names[: len(names) - 2 * n_others], names[len(names) - 2 * n_others:]
    adjective = rng.choice(ADJECTIVES)
    other_adjectives = [a for a in ADJECTIVES if a != adjective]
    pairs = [(hi, lo, adjective) for hi, lo in zip(chain, chain[1:])]
    extra = [(spare[2 * i], spare[2 * i + 1], rng.choice(other_adjectives)) for i in range(n_others)]

    def say(hi: str, lo: str, adj: str, stated: bool) -> str:
        a, b, comparator = (hi, lo, "more") if rng.random() < 0.5 or (more_only and stated) else (lo, hi, "less")
        phrasing = 0 if more_only else rng.randrange(len(PHRASINGS[comparator]))
        return sentence(Fact("", "comparison", comparator, a, b, adj), phrasing)

    stated = [say(*p, stated=True) for p in rng.sample(pairs + extra, len(pairs) + len(extra))]
    asked = [say(*p, stated=False) for p in rng.sample(pairs, len(pairs))]
    return stated, asked


def chain_compare_text(world: World, rng: random.Random, more_only: bool = False) -> str:
    return _recall_units(rng, lambda: chain_compare_unit(world, rng, more_only=more_only))


def pair_unit(world: World, rng: random.Random, family: bool = False,
              pairs: tuple[int, int] = (2, 5)) -> tuple[list[str], list[str]]:
    """(stated, asked) lines of disjoint pairs, each stated one way, "A are more <adj> than B" (one adjective a
    unit) or with ``family`` "A is the parent of B", and half of them asked as stated or the other way round ("B
    are less <adj> than A", "B is the child of A"). Every name stands in one line, so the name after the asked
    words is the other name of the asked name's line: the plain lookup a reversal rests on, with no comparator to
    weigh (the asked words say the role) and no shortcut (every other line offers a name of the same role). Family
    names are capitalised everywhere, so a reversed answer repeats its context tokens; a comparison's subject is
    capitalised at its line's start and not in the answer."""
    names = rng.sample(world.words, 2 * rng.randint(*pairs))
    if family:
        names = [n.capitalize() for n in names]
    kind, rel, flipped, adjective = (("family", "parent", "child", "") if family else
                                     ("comparison", "more", "less", rng.choice(ADJECTIVES)))
    facts = [Fact("", kind, rel, a, b, adjective) for a, b in zip(names[::2], names[1::2])]

    def say(fact: Fact, flip: bool) -> str:
        if flip:
            fact = Fact("", kind, flipped, fact.b, fact.a, adjective)
        return sentence(fact, 0)

    # at most half the pairs asked, so that the last answers cannot be told by elimination
    return [say(f, False) for f in facts], [say(f, rng.random() < 0.5) for f in rng.sample(facts, len(facts) // 2)]


def pair_text(world: World, rng: random.Random, family: bool = False) -> str:
    return _recall_units(rng, lambda: pair_unit(world, rng, family))


def swap_role_text(world: World, rng: random.Random) -> str:
    """One-line swapped units that always state "more": the asked name's role alone decides the comparator."""
    return _recall_units(rng, lambda: biased_swap_unit(world, rng, p_more=1.0, p_stated=0.5))


def swap_xor_text(world: World, rng: random.Random, p_more: float = 0.75, p_stated: float = 0.75,
                  lines: tuple[int, int] = (1, 1)) -> str:
    """Swapped units with 75% "more" and 75% asked as stated (role and comparator each predictive), one stated
    line a unit; a recipe's ``drill`` (``swap_xor_settings``) sets the bias and the line range."""
    return _recall_units(rng, lambda: biased_swap_unit(world, rng, p_more, p_stated, lines))


def swap_xor_settings(settings: dict) -> dict:
    """``settings`` checked as ``swap_xor_text``'s keyword arguments (``p_more``, ``p_stated`` in 0..1;
    ``lines`` [lo, hi], 1 <= lo <= hi), ``lines`` as a tuple; a bad key or value raises ``ValueError``."""
    unknown = sorted(set(settings) - {"p_more", "p_stated", "lines"})
    if unknown:
        raise ValueError(f"unknown drill key(s) {unknown}; allowed: ['lines', 'p_more', 'p_stated']")
    out = dict(settings)
    for key in ("p_more", "p_stated"):
        if key in out and not (isinstance(out[key], (int, float)) and 0 <= out[key] <= 1):
            raise ValueError(f"drill {key} is a probability (0 to 1), got {out[key]!r}")
    if "lines" in out:
        lines = out["lines"]
        if not (isinstance(lines, (list, tuple)) and len(lines) == 2 and all(isinstance(n, int) for n in lines)
                and 1 <= lines[0] <= lines[1]):
            raise ValueError(f"drill lines is [lo, hi] stated lines a unit, 1 <= lo <= hi, got {lines!r}")
        out["lines"] = tuple(lines)
    return out


def numbers_text(world: World, rng: random.Random) -> str:
    def unit() -> str:
        kind = rng.randrange(4)
        a, b = rng.randint(10, 99), rng.randint(1, 99)
        if kind == 0:
            return f"{a} + {b} = {a + b} ."
        if kind == 1:
            a, b = max(a, b), min(a, b)
            return f"{a} - {b} = {a - b} ."
        if kind == 2:
            words = [rng.choice(world.words) for _ in range(rng.randint(1, 9))]
            return f"count : {' '.join(words)} = {len(words)} ."
        if a == b:
            b += 1
        return rng.choice([f"Is {a} more than {b}? {'Yes' if a > b else 'No'}.",
                           f"Which is more, {a} or {b}? {max(a, b)}."])
    return fill(rng, unit, sep="\n", lo=60, hi=200)
