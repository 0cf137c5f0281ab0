"""Property questions give no clue by the form of their options (the world's hierarchy splits); topping up
the holdout and two-hop splits adds questions without changing the others."""

from __future__ import annotations

from collections import Counter

import pytest

from underdog.world import make_world
from underdog.world.questions import property_frame


@pytest.mark.parametrize("seed", [1, 7])
def test_property_options_share_the_answers_form(seed):
    """Options of an inherited-property question have the answer's verb and kind (English or made-up), so a
    model cannot score above chance without the facts by preferring, say, "can ..." options. Before this
    rule, seed 1's holdout options starting "can" were the answer 17 of 29 times."""
    questions = [q for q in make_world(seed).questions
                 if q["split"] in ("syllogism", "holdout") and q["kind"] == "hierarchy"
                 and not q["question"].startswith(("All ", "Some ", "No "))]
    assert len(questions) > 300
    alike = sum(all(property_frame(c) == property_frame(q["choices"][q["answer"]]) for c in q["choices"])
                for q in questions)
    assert alike / len(questions) >= 0.9
    options, answers = Counter(), Counter()
    for q in questions:
        for i, choice in enumerate(q["choices"]):
            options[property_frame(choice)] += 1
            answers[property_frame(choice)] += i == q["answer"]
    for frame, n in options.items():
        if n >= 40:
            assert answers[frame] / n <= 0.3, (frame, answers[frame], n)


def test_property_frame():
    assert property_frame("can swim") == ("can", True)
    assert property_frame("hunt zorpas") == ("hunt", False)
    assert property_frame("lay eggs") == property_frame("make honey") == ("", True)


def test_top_up_adds_holdout_and_two_hop_only():
    """Without the top-up seed 7 has 236 holdout and 361 two-hop questions; with it, 400 each, and the other
    splits (and the first pass's holdout and two-hop questions) are the same questions, ids included."""
    first, topped = make_world(7, min_per_split=0).questions, make_world(7).questions

    def split(qs, names):
        return [q for q in qs if q["split"] in names]

    early = ("forward", "rephrasing", "reversal", "syllogism")
    assert split(topped, early) == split(first, early)
    assert Counter(q["split"] for q in first)["holdout"] < 400
    late = ("holdout", "two_hop")
    assert all(len(split(topped, [s])) == 400 for s in late)
    kept = {(q["question"], tuple(q["choices"]), q["answer"]) for q in split(topped, late)}
    assert {(q["question"], tuple(q["choices"]), q["answer"]) for q in split(first, late)} <= kept
    ancestors = [q for q in split(topped, ["holdout"]) if q["question"].endswith("are a kind of")]
    assert ancestors and all(len(q["support"]) >= 2 for q in ancestors)  # "kind of" a grandparent or above
