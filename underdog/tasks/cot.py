"""Chain-of-thought prompting for the world's multiple-choice questions whose answer takes steps.

Questions of the ``syllogism`` and ``two_hop`` splits follow from two or more supporting facts
(``question["support"]``). A chain-of-thought demonstration states those facts, then the answer:
``"<fact 1>. <fact 2>. So, <question> <answer>.\\n"`` (Wei et al. 2022, "Chain-of-thought prompting elicits
reasoning in large language models": worked steps in the exemplars, and the model writes its own before
answering). For a test question the model reads the same kind of demonstrations, writes its steps greedily up
to "So," or the end of the line, and its choices are scored after ``"<its steps> So, <question>"``. The
demonstrations of a question are solved questions of its own split; ``choice_logprobs`` returns what the model
wrote beside the scores.
"""

from __future__ import annotations

from collections.abc import Sequence

from underdog.lm.generate import generate
from underdog.lm.load import LM
from underdog.tasks.choice import score_choices
from underdog.world import World
from underdog.world.render import capitalize, statement

STEP_SPLITS = ("syllogism", "two_hop")
MARK = " So,"
MAX_STEP_TOKENS = 48  # room for the steps a model writes: two or three facts


def steps_text(world: World, question: dict) -> str:
    """The question's supporting facts as sentences, in the world's phrasing of each."""
    return " ".join(capitalize(statement(world.facts_by_id[s], world.phrasing.get(s, 0))) + "."
                    for s in question["support"])


def demonstrations(world: World, demos: Sequence[dict]) -> str:
    """Solved questions with their steps, one a line."""
    return "".join(f"{steps_text(world, d)}{MARK} {d['question']} {d['choices'][d['answer']]}.\n" for d in demos)


def choice_logprobs(lm: LM, prompts: Sequence[str], questions: Sequence[dict],
                    max_new_tokens: int = MAX_STEP_TOKENS,
                    batch_size: int = 32) -> tuple[list[list[float]], list[str]]:
    """Each prompt ends where the steps begin (after its demonstrations, at the start of a line). The model writes
    its steps; returns the choices' log-probs after them and the steps written."""
    samples = generate(lm, list(prompts), max_new_tokens=max_new_tokens, stop=[MARK.strip(), "\n"],
                       batch_size=batch_size)
    steps = [s[0].text.strip() for s in samples]
    contexts = [f"{p}{s}{MARK} {q['question']}" for p, s, q in zip(prompts, steps, questions)]
    return score_choices(lm, contexts, [q["choices"] for q in questions], batch_size=batch_size), steps
