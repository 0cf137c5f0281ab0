"""Self-consistency: majority vote over normalised answers, agreement share as confidence, correctness of the
majority answer; sampling through underdog.lm.generate gives n answers per prompt."""

import pytest

from underdog.eval.consistency import sample_answers, self_consistency, vote
from underdog.eval.selective import auroc


def test_vote_majority_share_and_ties():
    assert vote(["The Cat.", "dog", "cat", "a cat"]) == ("The Cat.", 0.75)  # normalised: case, punctuation, articles
    assert vote(["x", "y"]) == ("x", 0.5)  # a tie goes to the first seen
    assert vote([]) == ("", 0.0)


def test_self_consistency_rows_and_score():
    rows = self_consistency([["Ann", "Ann", "Bob"], ["Bob", "Cy", "Dee"], ["", "", "Ann"]],
                            [["Ann"], ["Ann"], ["Ann"]])
    assert [r["answer"] for r in rows] == ["Ann", "Bob", ""]
    assert [r["correct"] for r in rows] == [True, False, False]  # an empty majority answer is wrong
    assert rows[0]["confidence"] == pytest.approx(2 / 3) and rows[1]["confidence"] == pytest.approx(1 / 3)
    assert auroc([r["confidence"] for r in rows], [r["correct"] for r in rows]) == 0.75  # ties count one half
    with pytest.raises(ValueError):
        self_consistency([["a"]], [])


def test_sample_answers_with_a_tiny_model(tiny_lm):
    out = sample_answers(tiny_lm, ["Question: who sat? Answer:", "Question: is it red? Answer:"], n=3,
                         max_new_tokens=6, seed=1)
    assert [len(r) for r in out] == [3, 3] and all(isinstance(a, str) and "." not in a for r in out for a in r)
    assert out == sample_answers(tiny_lm, ["Question: who sat? Answer:", "Question: is it red? Answer:"], n=3,
                                 max_new_tokens=6, seed=1)  # seeded
