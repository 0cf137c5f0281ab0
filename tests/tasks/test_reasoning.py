"""Built-in reasoning tasks: right counts and splits, answers that follow from the context (checked with the
world's parser and closure), teacher explanations in every style that extract to the answer, and answer
extraction from free text."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from underdog.io import DataError
from underdog.methods.parts.teachers import STYLES, render
from underdog.tasks.reasoning import (
    CATEGORIES,
    GROUPS,
    WORLD_SIZES,
    build_reasoning_tasks,
    extract_answer,
    is_correct,
    read_reasoning_file,
)
from underdog.world import Parser, make_world
from underdog.world.knowledge import closure, derived

SIZES = {"train": 6, "dev": 2, "test": 6}


@pytest.fixture(scope="module")
def items():
    return build_reasoning_tasks(3, SIZES)


def test_counts_ids_groups_and_disjoint_worlds(items):
    counts = Counter((it["split"], it["category"]) for it in items)
    assert counts == {(s, c): n for s, n in SIZES.items() for c in CATEGORIES}
    assert len({it["id"] for it in items}) == len(items)
    assert all(it["group"] == GROUPS[it["category"]] for it in items)
    seeds = {s: {it["world_seed"] for it in items if it["split"] == s} for s in SIZES}
    assert not (seeds["train"] & seeds["test"]) and not (seeds["dev"] & seeds["test"])
    assert 3 in seeds["test"]  # the test items come from make_world(seed) first
    assert build_reasoning_tasks(3, SIZES) == items  # deterministic


def _context(prompt: str) -> tuple[list[str], str]:
    facts, question = prompt.split("\nQuestion: ")
    return re.split(r"(?<=\.) ", facts.removeprefix("Facts: ")), question


def test_answers_follow_from_the_context_and_recall_is_verbatim(items):
    worlds, closures = {}, {}
    for it in items:
        sentences, question = _context(it["prompt"])
        for r in it["reasoning"]["recall"]:
            assert r in sentences, f"{it['id']}: recalled {r!r} is not in the context"
        if it["category"].startswith("arithmetic"):
            value = None
            for step in it["reasoning"]["steps"]:
                a, op, b, _, c = step.rstrip(".").split()
                assert (int(a) + int(b) if op == "+" else int(a) - int(b)) == int(c)
                value = int(c)
            assert str(value) == it["answer"] and 1 <= value <= 9
            continue
        seed = it["world_seed"]
        if seed not in worlds:
            worlds[seed] = make_world(seed, pool="eval", **WORLD_SIZES)
            closures[seed] = closure(worlds[seed].facts)
        world = worlds[seed]
        parser = Parser(world.facts)
        parsed = [parser.parse(s) for s in sentences]
        assert all(parsed), f"{it['id']}: unparsable context"
        known = closure(parsed)
        if it["category"].startswith("family"):
            x = question.rstrip("?").split()[-1]
            rel = "grandparent" if "grandparent" in question else "parent"
            assert derived(rel, it["answer"], x).key in known
            assert sum(f.rel == "parent" and f.b == x for f in parsed) == 1
        elif it["category"].startswith("comparison"):
            adj, x, y = re.match(r"Which are more (\w+), (\w+)s or (\w+)s\?", question).groups()
            hi, lo = (x, y) if it["answer"] == x + "s" else (y, x)
            assert it["answer"] in (x + "s", y + "s")
            assert derived("more", hi, lo, adj).key in known and derived("more", lo, hi, adj).key not in known
        else:
            statement = question.removeprefix("Is it true that ").rstrip("?")
            claim = parser.parse(statement)
            assert claim is not None and it["answer"] in ("Yes", "No")
            assert (claim.key in known) == (it["answer"] == "Yes"), it["id"]
            assert (claim.key in closures[seed]) == (it["answer"] == "Yes")  # true in the whole world too


def test_every_style_extracts_to_the_answer(items):
    for it in items:
        for style in STYLES:
            text = render(it["reasoning"], it["answer"], style)
            assert is_correct(extract_answer(text), it["answer"], it["aliases"]), (style, text)
    answers = Counter(it["answer"] for it in items if it["category"] in ("inherited", "property"))
    assert answers["Yes"] >= 8 and answers["No"] >= 8


@pytest.mark.parametrize("text, expected", [
    ("Answer: Dax.", "Dax"),
    ("Let us think step by step. 3 + 4 = 7. Therefore, the answer is 7.", "7"),
    ("Answer: Mil. Wait, no. Answer: Dax.", "Dax"),
    ("the answer is: glorps\nmore text", "glorps"),
    ("**Answer:** Yes", "Yes"),
    ("I do not know.", None),
    ("Answer:", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_is_correct_normalises_and_accepts_aliases():
    assert is_correct("Glorps.", "glorps")
    assert is_correct("glorp", "glorps", ["glorp"])
    assert is_correct("the yes", "Yes")
    assert not is_correct(None, "x") and not is_correct("12", "2")


def test_user_task_file(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [f'{{"id": "q{i}", "prompt": "What is {i} + 1?", "answer": "{i + 1}", "category": "add"}}' for i in range(40)]
    path.write_text("\n".join(rows) + "\n")
    items = read_reasoning_file(path, seed=1)
    assert {it["split"] for it in items} == {"train", "dev", "test"} and items[0]["group"] == "add"
    path.write_text(rows[0] + "\n" + rows[0] + "\n")
    with pytest.raises(DataError, match=r"tasks.jsonl:2: field 'id': duplicate"):
        read_reasoning_file(path)
    path.write_text('{"id": "a", "prompt": "x"}\n')
    with pytest.raises(DataError, match=r":1: missing field 'answer'"):
        read_reasoning_file(path)
