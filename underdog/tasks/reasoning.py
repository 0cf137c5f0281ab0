"""Reasoning tasks for explanation tuning: built-in multi-step vs one-step questions, a JSONL reader, and
free-text answer extraction.

``build_reasoning_tasks(seed, sizes)`` makes train/dev/test items from synthetic worlds (``make_world``,
evaluation pool; the test items come from worlds ``seed, seed+1, ...``, dev and train from disjoint seed
ranges). Every item is a user prompt holding its context (the support facts plus distractor facts, as
sentences) and an open question with one right answer, in one of eight categories: ``multi_step``
(``family_2hop``: a grandparent through two parent facts; ``comparison_2hop``: two links of a comparison
chain; ``inherited``: a property inherited through "is a kind of" facts, yes/no; ``arithmetic_2step``: a
two-operation word problem) and ``one_step`` (``family_1hop``, ``comparison_1hop``, ``property``,
``arithmetic_1step``: the same with one fact or operation). Each item carries a ``reasoning`` record
(``recall``: the relevant context sentences; ``steps``: a derivation that ends in the answer; ``extract``: the
key entities or numbers) from which the programmatic teacher writes correct explanations in any style.
``extract_answer`` reads the final answer out of free text (the last "Answer: X" or "the answer is X"), and
``is_correct`` compares it with the gold answer after SQuAD normalisation.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Mapping, Sequence

from underdog.eval.metrics import normalize_answer
from underdog.io import DataError, check, read_jsonl
from underdog.world import World, make_world
from underdog.world.knowledge import Fact, closure, derived
from underdog.world.render import capitalize, singular_property, statement

GROUPS: dict[str, str] = {
    "family_2hop": "multi_step", "comparison_2hop": "multi_step", "inherited": "multi_step",
    "arithmetic_2step": "multi_step",
    "family_1hop": "one_step", "comparison_1hop": "one_step", "property": "one_step",
    "arithmetic_1step": "one_step",
}
CATEGORIES: tuple[str, ...] = tuple(GROUPS)
SPLIT_SEED_OFFSETS = {"test": 0, "dev": 100_000, "train": 200_000}
WORLD_SIZES = {"n_syllogisms": 3}  # no syllogism questions here: smaller, faster worlds
ITEM_FIELDS = {"id": str, "prompt": str, "answer": str}


def sent(text: str) -> str:
    """A statement as a sentence: capitalised, with a final period."""
    return capitalize(text.strip()) + "."


def _prompt(context: Sequence[str], question: str) -> str:
    return "Facts: " + " ".join(context) + "\nQuestion: " + question


def _item(category: str, context_facts: list[Fact], distractors: list[Fact], question: str, answer: str,
          recall: list[str], steps: list[str], extract: list[str], support: list[Fact], rng: random.Random,
          aliases: Sequence[str] = (), world_split: str = "") -> dict:
    facts = list(dict.fromkeys(context_facts + distractors))
    rng.shuffle(facts)
    return {"category": category, "group": GROUPS[category], "world_split": world_split,
            "prompt": _prompt([sent(statement(f)) for f in facts], question), "answer": answer,
            "aliases": list(aliases), "support": [f.id for f in support],
            "reasoning": {"recall": recall, "steps": steps, "extract": extract}}


def _distractors(world: World, exclude_kind: str, rng: random.Random, n: int) -> list[Fact]:
    pool = [f for f in world.facts if f.kind != exclude_kind]
    return rng.sample(pool, min(n, len(pool)))


def family_items(world: World, rng: random.Random, hops: int, n_distractors: int) -> list[dict]:
    """Who is the parent (1 hop) or grandparent (2 hops) of X? Context: X's family tree (<= 8 facts)."""
    by_pair = {(f.a, f.b): f for f in world.facts if f.rel == "parent"}
    out = []
    for fam in world.knowledge.families:
        parent = {k: p for p, kids in fam.items() for k in kids}
        fam_facts = [by_pair[(p, k)] for p, kids in fam.items() for k in kids]
        for x in [k for k in parent if hops == 1 or parent[k] in parent]:
            chain = [by_pair[(parent[x], x)]]
            if hops == 2:
                chain.append(by_pair[(parent[parent[x]], parent[x])])
            others = [f for f in fam_facts if f not in chain]
            context = chain + rng.sample(others, min(len(others), 8 - len(chain)))
            answer = chain[-1].a
            recall = [sent(statement(f)) for f in chain]
            steps = [sent(statement(derived("child", f.b, f.a))) for f in chain]
            if hops == 2:
                steps.append(f"So {answer} is the grandparent of {x}.")
                question = f"Who is the grandparent of {x}?"
            else:
                question = f"Who is the parent of {x}?"
            out.append(_item(f"family_{hops}hop", context, _distractors(world, "family", rng, n_distractors),
                             question, answer, recall, steps, [x] + [f.a for f in chain], chain, rng,
                             world_split="two_hop" if hops == 2 else "forward"))
    return out


def _more(x: str, y: str, adj: str, x_higher: bool) -> str:
    return f"{x}s are {'more' if x_higher else 'less'} {adj} than {y}s"


def comparison_items(world: World, rng: random.Random, hops: int, n_distractors: int) -> list[dict]:
    """Which are more ADJ, Xs or Ys (1 or 2 links apart)? Context: the whole chain of that adjective."""
    link = {(frozenset((f.a, f.b)), f.attr): f for f in world.facts if f.kind == "comparison"}
    out = []
    for adj, ents in world.knowledge.chains:
        chain_facts = [link[(frozenset(p), adj)] for p in zip(ents, ents[1:])]
        for i in range(len(ents) - hops):
            hi, lo = ents[i], ents[i + hops]
            x, y = (hi, lo) if rng.random() < 0.5 else (lo, hi)
            path = ents[i: i + hops + 1] if x == hi else ents[i: i + hops + 1][::-1]
            support = [link[(frozenset(p), adj)] for p in zip(path, path[1:])]
            steps = [sent(_more(a, b, adj, x == hi)) for a, b in zip(path, path[1:])]
            if hops == 2:
                steps.append(f"So {_more(x, y, adj, x == hi)}.")
            out.append(_item(f"comparison_{hops}hop", chain_facts, _distractors(world, "comparison", rng,
                                                                              n_distractors),
                             f"Which are more {adj}, {x}s or {y}s?", f"{hi}s", [sent(statement(f)) for f in support],
                             steps, [f"{e}s" for e in path], support, rng, aliases=[hi], world_split="two_hop" if hops == 2 else "forward"))
    return out


def property_items(world: World, rng: random.Random, inherited: bool, n_distractors: int) -> list[dict]:
    """Is it true that Xs P? Yes when X or (``inherited``) an ancestor of X has P, else No; balanced."""
    kn = world.knowledge
    isa = {f.a: f for f in world.facts if f.rel == "isa"}
    has = {(f.a, f.b): f for f in world.facts if f.rel == "has"}
    full = closure(world.facts)
    out = []
    for c in kn.categories:
        ancestors = kn.ancestors(c)
        chain_isa = [isa[x] for x in [c] + ancestors[:-1]] if ancestors else []
        lineage = [c] + ancestors
        own = [(c, p) for p in kn.props.get(c, [])]
        above = [(a, p) for a in ancestors for p in kn.props.get(a, [])]
        candidates = above if inherited else own
        if not candidates:
            continue
        tree = [x for x in kn.categories if kn.tree_of[x] == kn.tree_of[c] and x not in lineage and x in kn.props]
        foreign = [(x, p) for x in tree for p in kn.props[x] if ("has", c, p, "") not in full]
        positive = len(out) % 2 == 0 or not foreign
        owner, prop = rng.choice(candidates) if positive else rng.choice(foreign)
        # context: the lineage with up to 2 properties each, plus 2 properties of other categories of the tree
        context = list(chain_isa) if inherited else []
        for a in (lineage if inherited else [c]):
            props = kn.props.get(a, [])
            keep = [p for p in props if (a, p) == (owner, prop)]
            keep += rng.sample([p for p in props if p not in keep], min(len(props) - len(keep), 2 - len(keep)))
            context += [has[(a, p)] for p in keep]
        lineage_facts = list(context)
        rest = [has[k] for k in foreign if has[k] not in context]
        context += ([has[(owner, prop)]] if not positive else []) + rng.sample(rest, min(len(rest), 2))
        q_text = f"Is it true that {statement(derived('has', c, prop))}?"
        if positive:
            support = ([isa[x] for x in lineage[:lineage.index(owner)]] if inherited else []) + [has[(owner, prop)]]
            recall = [sent(statement(f)) for f in support]
            steps = list(recall) + ([f"So every {c} {singular_property(prop)}."] if inherited else [])
        else:
            support = chain_isa if inherited else []
            recall = [sent(statement(f)) for f in (support if inherited else lineage_facts)]
            steps = list(recall) + ([f"None of them {prop}."] if inherited else [f"No fact says that {c}s {prop}."])
        out.append(_item("inherited" if inherited else "property", context,
                         _distractors(world, "hierarchy", rng, n_distractors), q_text, "Yes" if positive else "No",
                         recall, steps, (lineage if inherited else [c]) + [prop], support, rng,
                         world_split=("holdout" if c in kn.holdout else "syllogism") if inherited else "forward"))
    return out


_GAIN = ("finds {n} more {o}", "gets {n} more {o}", "buys {n} more {o}")
_LOSS = ("gives away {n} {o}", "loses {n} {o}", "eats {n} {o}")


MAX_NUMBER = 9  # every number in a word problem is one digit (one token for byte-level BPE vocabularies)


def arithmetic_items(world: World, rng: random.Random, steps_n: int, count: int) -> list[dict]:
    """Word problems with one or two operations on one-digit numbers (every value stays within 1..9)."""
    names = sorted({f.a for f in world.facts if f.kind == "family"})
    nouns = sorted({e for _, ents in world.knowledge.chains for e in ents})
    out = []
    for _ in range(count):
        name, obj = rng.choice(names), rng.choice(nouns) + "s"
        value = rng.randint(2, MAX_NUMBER - 1)
        story, steps, extract = [f"{name} has {value} {obj}."], [], [str(value)]
        for k in range(steps_n):
            gain = value < 2 or (value < MAX_NUMBER and rng.random() < 0.5)
            n = rng.randint(1, MAX_NUMBER - value) if gain else rng.randint(1, value - 1)
            template = rng.choice(_GAIN if gain else _LOSS).format(n=n, o=obj)
            story.append(("Then " if k else "") + f"{name} {template}.")
            new = value + n if gain else value - n
            steps.append(f"{value} {'+' if gain else '-'} {n} = {new}.")
            extract.append(f"{'+' if gain else '-'}{n}")
            value = new
        item = {"category": f"arithmetic_{steps_n}step", "group": GROUPS[f"arithmetic_{steps_n}step"],
                "world_split": "", "prompt": "Facts: " + " ".join(story) + f"\nQuestion: How many {obj} does "
                f"{name} have now?", "answer": str(value), "aliases": [], "support": [],
                "reasoning": {"recall": list(story), "steps": steps, "extract": extract}}
        out.append(item)
    return out


def world_items(world: World, category: str, rng: random.Random, n_distractors: int, count: int) -> list[dict]:
    """Candidate items of one category from one world (shuffled; arithmetic makes ``count``)."""
    if category.startswith("arithmetic"):
        return arithmetic_items(world, rng, 2 if category.endswith("2step") else 1, count)
    if category.startswith("family"):
        items = family_items(world, rng, 2 if "2hop" in category else 1, n_distractors)
    elif category.startswith("comparison"):
        items = comparison_items(world, rng, 2 if "2hop" in category else 1, n_distractors)
    else:
        items = property_items(world, rng, category == "inherited", n_distractors)
    rng.shuffle(items)
    return items


def build_reasoning_tasks(seed: int, sizes: Mapping[str, int], categories: Sequence[str] = CATEGORIES,
                          n_distractors: int = 2, max_worlds: int = 40) -> list[dict]:
    """Items for ``sizes`` ({"train": n, "dev": n, "test": n} per category), each with ``id`` and ``split``.

    Worlds are drawn per split from disjoint seed ranges, so no train item shares a world with a test item;
    each world gives at most half of a split's quota per category, so several worlds are always mixed."""
    unknown = [c for c in categories if c not in GROUPS]
    if unknown:
        raise ValueError(f"unknown categories {unknown}; known: {', '.join(CATEGORIES)}")
    out: list[dict] = []
    for split, n in sizes.items():
        if n <= 0:
            continue
        need = {c: n for c in categories}
        cap = max(1, (n + 1) // 2)
        for k in range(max_worlds):
            if not any(need.values()):
                break
            wseed = seed + SPLIT_SEED_OFFSETS[split] + k
            world = make_world(wseed, pool="eval", **WORLD_SIZES)
            for c in categories:
                if need[c]:
                    rng = random.Random(f"reasoning-{wseed}-{c}")
                    got = world_items(world, c, rng, n_distractors, min(cap, need[c]))[: min(cap, need[c])]
                    for item in got:
                        item["world_seed"] = wseed
                    out += [dict(it, split=split) for it in got]
                    need[c] -= len(got)
        if any(need.values()):
            raise ValueError(f"could not make enough {split} items in {max_worlds} worlds: missing {need}")
    counters: dict[tuple[str, str], int] = {}
    for item in out:
        key = (item["split"], item["category"])
        counters[key] = counters.get(key, 0) + 1
        item["id"] = f"{item['split']}-{item['category']}-{counters[key] - 1:04d}"
    return out


def read_reasoning_file(path: str | os.PathLike, seed: int = 0, dev_fraction: float = 0.1,
                        test_fraction: float = 0.3) -> list[dict]:
    """A user's task file: JSONL with ``id``, ``prompt`` (the user message), ``answer``, and optional
    ``category`` (default "all"), ``group`` (default: the category), ``split`` (train/dev/test; missing ones
    are drawn with the seed) and ``aliases`` (other accepted answers)."""
    rows = read_jsonl(path, required=ITEM_FIELDS,
                      optional={"category": str, "group": str, "split": str, "aliases": list})
    seen: set[str] = set()
    rng = random.Random(f"reasoning-split-{seed}")
    for r in rows:
        check(r["id"] not in seen, path, r, f"field 'id': duplicate id {r['id']!r}")
        seen.add(r["id"])
        check(bool(r["prompt"].strip()), path, r, "field 'prompt' is empty")
        check(r.get("split", "train") in ("train", "dev", "test"), path, r,
              f"field 'split' must be train, dev or test, got {r.get('split')!r}")
        r.setdefault("category", "all")
        r.setdefault("group", r["category"])
        r.setdefault("aliases", [])
        if "split" not in r:
            u = rng.random()
            r["split"] = "test" if u < test_fraction else "dev" if u < test_fraction + dev_fraction else "train"
        r.pop("_line", None)
    for split in ("train", "test"):
        if not any(r["split"] == split for r in rows):
            raise DataError(f"{path}: no {split} items (set 'split' or add more lines)")
    return rows


_ANSWER_RE = re.compile(r"(?:\banswer\s*:|\banswer\s+is\b:?)\s*(.+?)\s*(?:\.(?:\s|$)|\n|$)", re.IGNORECASE)


def extract_answer(text: str) -> str | None:
    """The final answer in free text: what follows the last "Answer:" or "the answer is", up to the end of
    its sentence or line; None when the text states no answer."""
    matches = list(_ANSWER_RE.finditer(text or ""))
    if not matches:
        return None
    answer = matches[-1].group(1).strip().strip("*\"'`").rstrip(".").strip()
    return answer or None


def is_correct(prediction: str | None, answer: str, aliases: Sequence[str] = ()) -> bool:
    """Normalised exact match (case, punctuation and articles ignored) against the answer or an alias."""
    if prediction is None:
        return False
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(a) for a in [answer, *aliases] if a)
