"""The multiple-choice ranking loss: its scores are the evaluation's, it trains, its questions are seeded."""

import pytest
import torch

from tests.tiny_models import build_model, make_tokenizer
from underdog.lm.load import LM
from underdog.pretrain.choice import ChoiceLoss, ChoiceQuestion, choice_logprobs, choice_questions
from underdog.tasks.choice import score_choices


@pytest.fixture(scope="module")
def tokenizer():
    return make_tokenizer()


@pytest.fixture(scope="module")
def questions(tokenizer):
    return choice_questions(tokenizer, seed=5, n_worlds=2, per_world=6, budget=120)


def test_choice_logprobs_equal_the_evaluations_scores_even_when_truncated(tokenizer, questions):
    """The reference is ``tasks.choice.score_choices`` (KV-cached, lm-eval's split): same numbers, with a
    window so short that long prompts lose their first tokens."""
    model = build_model("llama", tokenizer, seed=2)
    for window in (256, 48):
        model.config.max_position_embeddings = window
        lm = LM(model, tokenizer, name="tiny")
        assert lm.max_length == window
        with torch.no_grad():
            ours = [s.tolist() for s in choice_logprobs(model, tokenizer, questions, window)]
        ref = score_choices(lm, [q.context for q in questions], [q.choices for q in questions])
        assert len(ours) == len(ref) == len(questions)
        for a, b in zip(ours, ref):
            assert a == pytest.approx(b, abs=1e-4)


def test_choice_loss_has_gradients_and_training_on_it_ranks_the_answers_first(tokenizer):
    words = ["cat", "dog", "mat", "tree"]
    fixed = [ChoiceQuestion(f"the {w} sat on a", [f"{o}." for o in words], i, f"forward:{w}")
             for i, w in enumerate(words)]
    model = build_model("llama", tokenizer, seed=0).train()
    loss_fn = ChoiceLoss(tokenizer, fixed, per_step=4, max_length=256)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for step in range(60):
        loss = loss_fn(model, step)
        first = first if first is not None else (loss.item(), loss_fn.last_accuracy)
        opt.zero_grad()
        loss.backward()
        assert step or any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
        opt.step()
    assert first[0] > 1.0 and loss.item() < 0.1 * first[0]
    assert loss_fn.last_accuracy == 1.0 > first[1]


def test_a_step_takes_its_own_slice_of_the_questions_and_wraps(tokenizer, questions):
    loss_fn = ChoiceLoss(tokenizer, questions, per_step=5, max_length=256)
    assert loss_fn.batch(0) == questions[:5] and loss_fn.batch(1) == questions[5:10]
    n = len(questions)
    assert loss_fn.batch(n) == loss_fn.batch(0)  # n steps of 5 questions: five times round, back at the start


def test_choice_questions_are_seeded_labelled_and_weighted_by_kind(tokenizer, questions):
    again = choice_questions(tokenizer, seed=5, n_worlds=2, per_world=6, budget=120)
    assert again == questions and len(questions) == 12
    splits = {q.label.split(":")[0] for q in questions}
    assert splits <= {"forward", "rephrasing", "reversal", "syllogism", "holdout", "two_hop"} and len(splits) > 2
    for q in questions:
        assert 0 <= q.answer < len(q.choices) >= 4 and q.context.endswith(q.context.split("\n")[-1])
    plain = choice_questions(tokenizer, seed=9, n_worlds=3, per_world=30, budget=120)
    leaning = choice_questions(tokenizer, seed=9, n_worlds=3, per_world=30, budget=120,
                               kind_weights={"comparison": 50})
    share = [sum(q.label.endswith(":comparison") for q in qs) / len(qs) for qs in (plain, leaning)]
    assert share[1] > share[0] + 0.2, share
    flipped = choice_questions(tokenizer, seed=9, n_worlds=3, per_world=30, budget=120,
                               split_weights={"reversal": 20})
    share = [sum(q.label.startswith("reversal:") for q in qs) / len(qs) for qs in (plain, flipped)]
    assert share[1] > share[0] + 0.3, share
    with pytest.raises(ValueError, match="allowed:.*two_hop"):
        choice_questions(tokenizer, seed=9, n_worlds=1, per_world=1, budget=120, split_weights={"reverse": 2})
    with pytest.raises(ValueError, match="allowed:.*comparison"):
        choice_questions(tokenizer, seed=9, n_worlds=1, per_world=1, budget=120, kind_weights={"comparisons": 2})
