"""The drills of the pretraining mix: copy lists, recall units (line-end, mid-line, swapped), comparison chains,
disjoint pairs and pairs asked back to front."""

from __future__ import annotations

import random
import re

import pytest

from underdog.world.drills import (
    COPY_ENGLISH,
    back_pairs_text,
    chain_compare_unit,
    pair_unit,
    recall_swap_unit,
)
from underdog.world.episodes import pretrain_world, pretraining_texts
from underdog.world.render import comparison_order


def test_mixed_copy_exercises_repeat_lists_of_nonsense_and_template_words():

    units = [u for t in pretraining_texts(5, 4, mix={"copy_mixed": 1.0}) for u in t.split("\n")]
    english = nonsense = 0
    for unit in units:
        first, again = unit.removeprefix("list : ").removesuffix(" .").split(" . again : ")
        assert first == again
        english += sum(w in COPY_ENGLISH for w in first.split())
        nonsense += sum(w not in COPY_ENGLISH for w in first.split())
    assert english > 0.25 * (english + nonsense) and nonsense > 0.45 * (english + nonsense)


def test_recall_units_repeat_their_lines_shuffled_and_share_one_link():
    for unit in pretraining_texts(6, 3, mix={"recall": 1.0})[0].split("\n\n\n"):
        stated, asked = (block.split("\n") for block in unit.split("\n\n"))
        assert sorted(stated) == sorted(asked) and len(stated) >= 3
        names = [line.split()[0] for line in stated]
        assert len(set(names)) == len(names)  # only the name tells which word follows the link
        links = {" ".join(line.split()[1:-1]) for line in stated}
        assert len(links) == 1


def test_slot_recall_units_recall_a_mid_line_word_that_only_the_name_decides():
    for unit in pretraining_texts(6, 3, mix={"recall_slot": 1.0})[0].split("\n\n\n"):
        stated, asked = (block.split("\n") for block in unit.split("\n\n"))
        assert sorted(stated) == sorted(asked) and len(stated) >= 3
        names = [line.split()[0] for line in stated]
        assert len(set(names)) == len(names)
        assert all(line.split()[1] == "are" and len(line.split()) >= 4 for line in stated)  # the slot is mid-line


def test_swapped_recall_units_flip_more_and_less_and_keep_other_slot_words():
    flip = {"more": "less", "less": "more"}
    swapped_ml = swapped_open = 0
    for text in pretraining_texts(6, 3, mix={"recall_swap": 1.0}):
        for unit in text.split("\n\n\n"):
            stated, asked = (block.split("\n") for block in unit.split("\n\n"))
            by_subject = {line.split()[0]: line for line in stated}
            by_object = {line.split()[-1].rstrip(".").capitalize(): line for line in stated}
            assert len(by_subject) == len(by_object) == len(stated) == len(asked)
            for line in asked:
                name, _, slot, adj, than, other = line.rstrip(".").split()
                if name in by_subject:
                    assert line == by_subject[name]
                    continue
                a, _, was, adj0, _, b = by_object[name].rstrip(".").split()
                assert (slot, adj, than, other, b.capitalize()) == (flip.get(was, was), adj0, "than", a.lower(), name)
                swapped_ml += was in flip
                swapped_open += was not in flip
    assert swapped_ml and swapped_open
    world = pretrain_world(6, 0)
    assert [len(recall_swap_unit(world, random.Random(i), lines=(1, 1))[0]) for i in range(3)] == [1, 1, 1]


def test_biased_swap_units_state_more_as_biased_and_flip_exactly_when_swapped():
    def cells(kind: str) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for text in pretraining_texts(7, 4, mix={kind: 1.0}):
            for unit in text.split("\n\n\n"):
                (line,), (asked,) = (block.split("\n") for block in unit.split("\n\n"))
                a, _, value, adj, _, b = line.rstrip(".").split()
                flipped = {"more": "less", "less": "more"}[value]
                role = "stated" if asked == line else "swapped"
                if role == "swapped":
                    assert asked == f"{b.capitalize()} are {flipped} {adj} than {a.lower()}."
                counts[(role, value)] = counts.get((role, value), 0) + 1
        return counts

    role = cells("swap_role")
    assert set(role) == {("stated", "more"), ("swapped", "more")}
    xor = cells("swap_xor")
    assert set(xor) == {(r, v) for r in ("stated", "swapped") for v in ("more", "less")}
    n = sum(xor.values())
    assert 0.6 < (xor["stated", "more"] + xor["swapped", "more"]) / n < 0.9
    assert 0.6 < (xor["stated", "more"] + xor["stated", "less"]) / n < 0.9


def test_swap_xor_drill_knobs_set_bias_and_lines_and_bad_knobs_are_named():
    plain = pretraining_texts(3, 3, mix={"swap_xor": 1.0})
    assert pretraining_texts(3, 3, mix={"swap_xor": 1.0}, drill={"p_more": 0.75, "p_stated": 0.75, "lines": [1, 1]}) == plain
    texts = pretraining_texts(3, 6, mix={"swap_xor": 1.0}, drill={"p_more": 0.0, "p_stated": 0.0, "lines": [2, 4]})
    units = [u for t in texts for u in t.split("\n\n\n")]
    for unit in units:
        stated, asked = (block.split("\n") for block in unit.split("\n\n"))
        assert 2 <= len(stated) <= 4 and len(asked) == len(stated)
        assert all(" less " in line for line in stated) and all(" more " in line for line in asked)
        assert not set(stated) & set(asked)  # p_stated 0: every line is asked swapped
    assert {len(u.split("\n\n")[0].split("\n")) for u in units} == {2, 3, 4}
    for bad, message in (({"p_mor": 0.5}, "unknown drill key"), ({"p_more": 1.5}, "p_more is a probability"),
                         ({"lines": [3, 2]}, "lo <= hi"), ({"lines": 2}, "lo <= hi")):
        with pytest.raises(ValueError, match=message):
            pretraining_texts(3, 1, mix={"swap_xor": 1.0}, drill=bad)


def _above(line: str) -> tuple[str, str, str]:
    order = comparison_order(line)
    assert order is not None, line
    return order


def test_chain_units_ask_true_comparisons_whose_comparator_decides_the_name_that_follows():
    world, inner = pretrain_world(8, 0), 0
    for i in range(200):
        stated, asked = chain_compare_unit(world, random.Random(i))
        facts = [_above(line) for line in stated]
        assert {_above(line) for line in asked} <= set(facts) and len(asked) >= 2
        chain_adj = _above(asked[0])[2]
        chain = [f for f in facts if f[2] == chain_adj]
        highs, lows = {h for h, _, _ in chain}, {lo for _, lo, _ in chain}
        inner += len(highs & lows)  # above one neighbour, below the other
        assert len(chain) == len(asked) and len(highs) == len(lows) == len(chain)
    assert inner >= 200
    assert {"more", "less"} <= {w for i in range(5) for line in chain_compare_unit(world, random.Random(i))[1]
                                for w in line.split()}


def test_more_only_chains_state_every_pair_with_more_and_ask_it_either_way():
    world, asked_less = pretrain_world(8, 0), 0
    for i in range(50):
        stated, asked = chain_compare_unit(world, random.Random(i), more_only=True)
        assert all(re.fullmatch(r"[A-Z]\w+ are more \w+ than \w+\.", line) for line in stated)
        assert sorted(_above(line) for line in asked) == sorted(_above(line) for line in stated)
        asked_less += sum(" less " in line for line in asked)
    assert asked_less > 40


def test_context_and_answers_splits_each_unit_at_its_last_blank_line():
    from underdog.world.drills import context_and_answers

    text = "A are x.\nB are y.\n\nB are y.\nA are x.\n\n\nC is z.\n\nC is z.\n\n\nlist : a b . again : a b ."
    assert context_and_answers(text) == [("A are x.\nB are y.\n\n", "B are y.\nA are x."),
                                         ("C is z.\n\n", "C is z."), ("", "list : a b . again : a b .")]


def test_every_context_kind_writes_units_of_a_context_then_answers():
    from underdog.world.drills import context_and_answers
    from underdog.world.episodes import CONTEXT_KINDS

    assert {"icl_near", "recall_swap", "judge"} <= CONTEXT_KINDS and not {"document", "copy", "rewrite"} & CONTEXT_KINDS
    for kind in sorted(CONTEXT_KINDS):
        for _, text in pretraining_texts(5, 2, {kind: 1.0}, labelled=True):
            units = context_and_answers(text)
            # a context of one or more lines, then answer lines, with no blank line among the answers
            assert all(c.endswith("\n\n") and c.strip() and a.strip() and "\n\n" not in a for c, a in units), kind


def test_pair_units_name_each_word_once_and_ask_half_the_pairs_either_way():
    world, asked_less = pretrain_world(8, 0), 0
    for i in range(50):
        stated, asked = pair_unit(world, random.Random(i))
        assert all(re.fullmatch(r"[A-Z]\w+ are more \w+ than \w+\.", line) for line in stated)
        facts = [_above(line) for line in stated]
        names = [n for hi, lo, _ in facts for n in (hi, lo)]
        assert len(set(names)) == len(names) and 2 <= len(facts) <= 5 and len({f[2] for f in facts}) == 1
        assert set(map(_above, asked)) <= set(facts) and len(set(map(_above, asked))) == len(asked) == len(facts) // 2
        asked_less += sum(" less " in line for line in asked)
    assert asked_less > 20


@pytest.mark.parametrize("gap", [(0, 0), (1, 3)])
def test_back_pairs_ask_half_the_stated_pairs_back_to_front(gap):
    world = pretrain_world(8, 0)
    for line in back_pairs_text(world, random.Random(3), gap=gap).split("\n"):
        stated, asked = line.removeprefix("pairs : ").removesuffix(" .").split(" . back : ")
        pairs = [(p.split()[0], p.split()[-1]) for p in stated.split(" , ")]
        fillers = [len(p.split()) - 2 for p in stated.split(" , ")]
        back = [(a, b) for b, a in (p.split() for p in asked.split(" , "))]
        assert set(back) <= set(pairs) and len(set(back)) == len(back) == len(pairs) // 2
        assert len({w for p in pairs for w in p}) == 2 * len(pairs) and all(gap[0] <= f <= gap[1] for f in fillers)
