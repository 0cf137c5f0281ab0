"""A multiple-choice ranking loss for pretraining: lift the true answer's log-prob above its distractors'.

Next-token loss on true text never pushes a false continuation down: after "Pedids are", a context stating
"Virsams are more thick than pedids" can leave "less thick than virsams" no likelier than "more thick than
virsams", and the evaluation picks the choice with the highest summed log-prob. ``ChoiceLoss`` draws questions
of pretraining-pool worlds (never an evaluation word), puts each in the evaluation's own prompt (its retrieved
neighbourhood, ``tasks.icl.retrieved_contexts``), scores every choice as ``tasks.choice.score_choices`` does
(" " + choice, split the lm-evaluation-harness way) but with gradients, and returns the cross-entropy of the
softmax over each question's summed choice log-probs. ``underdog pretrain`` adds ``choice_loss`` times it to
every optimizer step (``train(aux_loss=...)``).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from underdog.lm.score import encode_pair, truncate_context
from underdog.tasks.choice import DELIMITER
from underdog.tasks.icl import retrieved_contexts
from underdog.world.episodes import pretrain_worlds

KINDS = ("comparison", "family", "hierarchy", "syllogism")
SPLITS = ("forward", "rephrasing", "reversal", "syllogism", "holdout", "two_hop")


@dataclass
class ChoiceQuestion:
    context: str  # the whole prompt: retrieved sentences, a blank line, the question
    choices: list[str]
    answer: int
    label: str  # "<split>:<kind>", e.g. "reversal:comparison"


def check_weights(kind_weights: Mapping[str, float], split_weights: Mapping[str, float]) -> None:
    """Raise, naming the allowed keys, if a kind or split weight names neither a kind nor a split."""
    for name, given, allowed in (("kind", kind_weights, KINDS), ("split", split_weights, SPLITS)):
        unknown = sorted(set(given) - set(allowed))
        if unknown:
            raise ValueError(f"unknown {name}(s) {unknown} in choice {name} weights; allowed: {list(allowed)}")


def choice_questions(tokenizer, seed: int, n_worlds: int, per_world: int, budget: int,
                     kind_weights: Mapping[str, float] | None = None, world_sizes: Mapping[str, float] | None = None,
                     workers: int = 1, split_weights: Mapping[str, float] | None = None) -> list[ChoiceQuestion]:
    """``per_world`` questions from each of ``n_worlds`` pretraining-pool worlds, shuffled: a split drawn
    uniformly (or by ``split_weights``, default 1, over the world's splits), then a question of it, a kind
    weighted by ``kind_weights`` (default 1)."""

    weights_of, split_weights = dict(kind_weights or {}), dict(split_weights or {})
    check_weights(weights_of, split_weights)
    rng = random.Random(seed)
    out: list[ChoiceQuestion] = []
    for world in pretrain_worlds(seed, n_worlds, workers, world_sizes):
        by_split: dict[str, list[dict]] = {}
        for q in world.questions:
            by_split.setdefault(q["split"], []).append(q)
        splits = sorted(by_split)
        picked = []
        for _ in range(per_world):
            if split_weights:
                split = rng.choices(splits, [split_weights.get(x, 1.0) for x in splits])[0]
            else:  # the same draws as before split weights existed, so earlier recipes reproduce
                split = rng.choice(splits)
            pool = by_split[split]
            picked.append(rng.choices(pool, [weights_of.get(q["kind"], 1.0) for q in pool])[0])
        for q, ctx in zip(picked, retrieved_contexts(tokenizer, world.documents, picked, budget)):
            out.append(ChoiceQuestion(ctx.text, list(q["choices"]), q["answer"], f"{q['split']}:{q['kind']}"))
    rng.shuffle(out)
    return out


def choice_logprobs(model, tokenizer, questions: Sequence[ChoiceQuestion], max_length: int) -> list[torch.Tensor]:
    """Summed log p(" " + choice | context) of every choice, one tensor per question, with gradients."""
    rows, spans = [], []
    for q in questions:
        for choice in q.choices:
            ctx, cont = encode_pair(tokenizer, q.context, DELIMITER + choice)
            rows.append(truncate_context(ctx, cont, max_length) + cont)
            spans.append(len(cont))
    device = next(model.parameters()).device
    width = max(len(r) for r in rows) - 1  # the model reads every row but its last token
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r) - 1] = torch.tensor(r[:-1])
        mask[i, :len(r) - 1] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), use_cache=False).logits
    sums = []
    for i, (r, k) in enumerate(zip(rows, spans)):
        n = len(r) - 1  # positions read; the last k predict the continuation
        logp = F.log_softmax(logits[i, n - k:n].float(), dim=-1)
        sums.append(logp.gather(-1, torch.tensor(r[n - k + 1:], device=device)[:, None]).sum())
    out, at = [], 0
    for q in questions:
        out.append(torch.stack(sums[at:at + len(q.choices)]))
        at += len(q.choices)
    return out


class ChoiceLoss:
    """``loss(model, step)``: the mean choice cross-entropy of ``per_step`` questions, the step's own slice of
    ``questions`` (so a resumed run sees the same ones); ``last_accuracy`` is that slice's accuracy."""

    def __init__(self, tokenizer, questions: Sequence[ChoiceQuestion], per_step: int, max_length: int) -> None:
        if not questions:
            raise ValueError("ChoiceLoss needs at least one question")
        self.tokenizer, self.questions = tokenizer, list(questions)
        self.per_step, self.max_length = per_step, max_length
        self.last_accuracy = float("nan")

    def batch(self, step: int) -> list[ChoiceQuestion]:
        n = len(self.questions)
        return [self.questions[(step * self.per_step + j) % n] for j in range(self.per_step)]

    def __call__(self, model, step: int) -> torch.Tensor:
        batch = self.batch(step)
        scores = choice_logprobs(model, self.tokenizer, batch, self.max_length)
        losses = [F.cross_entropy(s[None], torch.tensor([q.answer], device=s.device)) for q, s in zip(batch, scores)]
        self.last_accuracy = sum(int(s.argmax()) == q.answer for q, s in zip(batch, scores)) / len(batch)
        return torch.stack(losses).mean()
