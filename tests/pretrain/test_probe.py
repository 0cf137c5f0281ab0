"""The chain and pair probes: their items name the right name and a rival, and their scores follow the model's
choice."""

import pytest

from tests.tiny_models import build_model, make_tokenizer
from underdog.lm.load import LM
from underdog.lm.score import Score
from underdog.pretrain import probe as probe_module
from underdog.pretrain.probe import ChainProbe, PairProbe
from underdog.world.render import comparison_order


def test_chain_probe_asks_an_inner_name_between_its_two_neighbours():
    for more_only in (False, True):
        probe = ChainProbe(units=60, more_only=more_only)
        assert {kind for kind, *_ in probe.items} == {"repeated", "other"}
        for kind, prefix, right, other in probe.items:
            context, asked = prefix.split("\n\n")
            stated = context.split("\n")
            orders = {comparison_order(line) for line in stated}
            line = f"{asked} {right}."
            assert comparison_order(line) in orders and (kind == "repeated") == (line in stated)
            name = asked.split()[0].lower()
            assert {tuple(sorted((name, n))) for n in (right, other)} <= {tuple(sorted(o[:2])) for o in orders}
            if more_only:  # "more" asked repeats its line, "less" asks it the other way round
                assert kind == ("repeated" if asked.split()[2] == "more" else "other")


def test_chain_probe_scores_a_model_that_knows_the_order_right_and_its_opposite_wrong(monkeypatch):
    tokenizer = make_tokenizer()
    probe = ChainProbe(units=30)
    lm = LM(build_model("llama", tokenizer).eval(), tokenizer, name="tiny")

    def true_line(ctx: list[int], cont: list[int]) -> bool:
        context, asked = tokenizer.decode(ctx, skip_special_tokens=True).split("\n\n")
        completed = comparison_order(f"{asked}{tokenizer.decode(cont)}.")
        return completed in {comparison_order(line) for line in context.split("\n")}

    def model(knows: bool):
        def score_tokens(lm, pairs, batch_size):
            return [Score(0.0 if true_line(ctx, cont) == knows else -1.0, [0.0], False) for ctx, cont in pairs]
        return score_tokens

    monkeypatch.setattr(probe_module, "score_tokens", model(knows=True))
    assert probe(lm) == {"other": 1.0, "repeated": 1.0}
    monkeypatch.setattr(probe_module, "score_tokens", model(knows=False))
    assert probe(lm) == {"other": 0.0, "repeated": 0.0}


def _pair(line: str) -> tuple[str, str] | None:
    """(higher or parent, lower or child) of a pair line, or None."""
    words = line.rstrip(".").split()
    if words[1:4] == ["is", "the", "parent"]:
        return words[0], words[-1]
    if words[1:4] == ["is", "the", "child"]:
        return words[-1], words[0]
    order = comparison_order(line)
    return order[:2] if order else None


@pytest.mark.parametrize("family", [False, True])
def test_pair_probe_asks_each_pair_as_stated_or_swapped_against_a_name_of_the_same_role(family):
    probe = PairProbe(units=40, family=family)
    assert {kind for kind, *_ in probe.items} == {"copied", "swapped"}
    for kind, prefix, right, other in probe.items:
        context, asked = prefix.split("\n\n")
        stated = context.split("\n")
        pairs = [_pair(line) for line in stated]
        assert f"{asked} {right}." in stated if kind == "copied" else _pair(f"{asked} {right}.") in pairs
        assert _pair(f"{asked} {other}.") not in pairs
        role = 1 if kind == "copied" else 0  # the right name is a line's object, or its subject when swapped
        assert right in {p[role] for p in pairs} and other in {p[role] for p in pairs}


def test_pair_probe_scores_a_model_that_knows_the_pairs_right_and_its_opposite_wrong(monkeypatch):
    tokenizer = make_tokenizer()
    probe = PairProbe(units=20, family=True)
    lm = LM(build_model("llama", tokenizer).eval(), tokenizer, name="tiny")

    def model(knows: bool):
        def score_tokens(lm, pairs, batch_size):
            scores = []
            for ctx, cont in pairs:
                context, asked = tokenizer.decode(ctx, skip_special_tokens=True).split("\n\n")
                true = _pair(f"{asked}{tokenizer.decode(cont)}.") in {_pair(line) for line in context.split("\n")}
                scores.append(Score(0.0 if true == knows else -1.0, [0.0], False))
            return scores
        return score_tokens

    monkeypatch.setattr(probe_module, "score_tokens", model(knows=True))
    assert probe(lm) == {"copied": 1.0, "swapped": 1.0}
    monkeypatch.setattr(probe_module, "score_tokens", model(knows=False))
    assert probe(lm) == {"copied": 0.0, "swapped": 0.0}
