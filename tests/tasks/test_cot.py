"""Chain-of-thought prompting on the world's step questions, with the built-in model."""

import pytest

from underdog.lm import load
from underdog.tasks.choice import score_choices
from underdog.tasks.cot import MARK, STEP_SPLITS, choice_logprobs, demonstrations, steps_text
from underdog.world import make_world


@pytest.fixture(scope="module")
def world():
    return make_world(0, pool="eval")


def test_steps_are_the_supporting_facts_as_the_documents_state_them(world):
    text = " ".join(d["text"] for d in world.documents).lower()
    for q in [q for q in world.questions if q["split"] in STEP_SPLITS][:40]:
        steps = steps_text(world, q)
        sentences = [s.strip() for s in steps.split(".") if s.strip()]
        assert len(sentences) == len(q["support"]) >= 2
        assert all(s.lower() in text for s in sentences), steps


def test_demonstrations_end_on_the_right_answer(world):
    demos = [q for q in world.questions if q["split"] == "two_hop"][:3]
    lines = demonstrations(world, demos).splitlines()
    assert len(lines) == 3
    for line, d in zip(lines, demos):
        assert line.endswith(f"{MARK} {d['question']} {d['choices'][d['answer']]}.")


def test_the_choices_are_scored_after_the_steps_the_model_wrote(world):
    lm = load("builtin", device="cpu")
    split = [q for q in world.questions if q["split"] == "syllogism"]
    questions, demos = split[:3], split[3:6]
    prompts = [demonstrations(world, demos)] * 3
    logprobs, steps = choice_logprobs(lm, prompts, questions, max_new_tokens=24)
    assert len(steps) == 3 and all("\n" not in s and "So," not in s for s in steps)
    again = score_choices(lm, [f"{p}{s}{MARK} {q['question']}" for p, s, q in zip(prompts, steps, questions)],
                          [q["choices"] for q in questions])
    assert logprobs == again
    assert [len(lp) for lp in logprobs] == [len(q["choices"]) for q in questions]
