"""The chain probe: its items name an inner name's two neighbours, and its scores follow the model's choice."""

from tests.tiny_models import build_model, make_tokenizer
from underdog.lm.load import LM
from underdog.lm.score import Score
from underdog.pretrain import probe as probe_module
from underdog.pretrain.probe import ChainProbe
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
