"""Batched log-likelihood of continuations given contexts: the heart of every likelihood-based evaluation.

``score(lm, contexts, continuations)`` returns, for each pair, the summed and per-token log-probabilities of the
continuation tokens and whether greedy decoding would have produced them. Tokenization follows
lm-evaluation-harness exactly (trailing context whitespace moves to the continuation; the pair is encoded whole
and split at the context's token length), so numbers agree with ``HFLM.loglikelihood`` within 1e-4.

Speed comes from two things: requests that share a context (the choices of one multiple-choice question) run
the context once and reuse its KV cache for every continuation, and logits are computed only where a target
token is scored. Batches are length-sorted; the context batch is left-padded with explicit position ids, the
continuation batch right-padded, so padding never changes a number.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from underdog.lm.kv import cache_kwargs, returned_cache
from underdog.lm.load import LM


@dataclass
class Score:
    """Log-likelihood of one continuation: summed, per token, and whether it is the greedy continuation."""

    logprob: float
    token_logprobs: list[float]
    is_greedy: bool

    @property
    def n_tokens(self) -> int:
        return len(self.token_logprobs)

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, self.n_tokens)


def prefix_token_id(tokenizer) -> int:
    """The token that stands in for an empty context (BOS, else EOS), as lm-evaluation-harness does."""
    return tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation), split the way lm-evaluation-harness splits them."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    if not context:
        ctx = [prefix_token_id(tokenizer)]
        cont = tokenizer.encode(continuation, add_special_tokens=False)
    else:
        whole = tokenizer.encode(context + continuation)
        ctx = tokenizer.encode(context)
        cont = whole[len(ctx):]
    if not cont:
        raise ValueError(f"continuation {continuation!r} encodes to no tokens")
    return ctx, cont


@torch.no_grad()
def score(
    lm: LM,
    contexts: Sequence[str],
    continuations: Sequence[str],
    batch_size: int = 32,
    share_context: bool = True,
    progress: bool = False,
) -> list[Score]:
    """Score each ``continuation`` given its ``context``; results are in input order."""
    if len(contexts) != len(continuations):
        raise ValueError(f"{len(contexts)} contexts but {len(continuations)} continuations")
    pairs = [encode_pair(lm.tokenizer, c, x) for c, x in zip(contexts, continuations)]
    return score_tokens(lm, pairs, batch_size=batch_size, share_context=share_context, progress=progress)


def truncate_context(ctx: list[int], cont: list[int], max_length: int) -> list[int]:
    """The end of ``ctx`` that fits a ``max_length`` window before ``cont`` (the model reads ctx + cont[:-1]);
    every scorer of continuations (``score_tokens``, ``pretrain.choice``) cuts its contexts here."""
    if len(cont) > max_length:
        raise ValueError(f"continuation of {len(cont)} tokens exceeds the model's {max_length}-token window")
    keep = max_length + 1 - len(cont)  # the model reads ctx + cont[:-1]
    return ctx[-keep:]


@torch.no_grad()
def score_tokens(
    lm: LM,
    pairs: Sequence[tuple[list[int], list[int]]],
    batch_size: int = 32,
    share_context: bool = True,
    progress: bool = False,
) -> list[Score]:
    """Like ``score`` but on pre-tokenized (context ids, continuation ids) pairs."""
    max_length = lm.max_length
    # A row reads [last context token] + cont[:-1] on top of the cached prefix ctx[:-1].
    # Requests with the same (truncated) context form a group; without sharing, each request is its own group
    # and its whole sequence is one row with no cached prefix.
    groups: dict[tuple, tuple[list[int], list[int]]] = {}
    for i, (ctx, cont) in enumerate(pairs):
        ctx = truncate_context(list(ctx), list(cont), max_length)
        key = tuple(ctx) if share_context else (i,)
        groups.setdefault(key, (ctx, []))[1].append(i)
    order = sorted(groups.values(), key=lambda g: -(len(g[0]) + max(len(pairs[i][1]) for i in g[1])))
    results: list[Score | None] = [None] * len(pairs)
    bar = tqdm(total=len(pairs), desc="scoring", unit="req", disable=not progress)
    # ``batch_size`` bounds the sequences in the context pass (as in lm-eval); the continuation pass, whose rows
    # are only a few tokens long, takes every continuation of those contexts (at most 4x as many rows).
    batch: list[tuple[list[int], list[int]]] = []
    n_rows = 0
    for ctx, members in order:
        if batch and (len(batch) >= batch_size or n_rows + len(members) > 4 * batch_size):
            _run_batch(lm, batch, pairs, results, share_context)
            bar.update(n_rows)
            batch, n_rows = [], 0
        batch.append((ctx, members))
        n_rows += len(members)
    if batch:
        _run_batch(lm, batch, pairs, results, share_context)
        bar.update(n_rows)
    bar.close()
    return results  # type: ignore[return-value]


def _run_batch(lm: LM, batch, pairs, results, share_context: bool) -> None:
    model, device = lm.model, lm.device
    pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    if share_context:
        prefixes = [ctx[:-1] for ctx, _ in batch]
        row_inputs = [[ctx[-1]] + pairs[i][1][:-1] for ctx, members in batch for i in members]
    else:
        prefixes = [[] for _ in batch]
        row_inputs = [ctx + pairs[i][1][:-1] for ctx, members in batch for i in members]
    row_group = [g for g, (_, members) in enumerate(batch) for _ in members]
    row_ids = [i for _, members in batch for i in members]

    past, prefix_mask, prefix_len = None, None, torch.zeros(len(batch), dtype=torch.long)
    p_max = max(len(p) for p in prefixes)
    if p_max:
        ids = torch.full((len(batch), p_max), pad_id, dtype=torch.long)
        prefix_mask = torch.zeros((len(batch), p_max), dtype=torch.long)
        for g, p in enumerate(prefixes):
            if p:
                ids[g, p_max - len(p):] = torch.tensor(p)
                prefix_mask[g, p_max - len(p):] = 1
        prefix_len = prefix_mask.sum(1)
        positions = (prefix_mask.cumsum(1) - 1).clamp(min=0)
        out = model(input_ids=ids.to(device), attention_mask=prefix_mask.to(device),
                    position_ids=positions.to(device), use_cache=True, logits_to_keep=1)
        past = returned_cache(out)
        index = torch.tensor(row_group, device=device)
        past.batch_select_indices(index)
        prefix_mask = prefix_mask[torch.tensor(row_group)]

    r_max = max(len(r) for r in row_inputs)
    ids = torch.full((len(row_inputs), r_max), pad_id, dtype=torch.long)
    mask = torch.zeros((len(row_inputs), r_max), dtype=torch.long)
    for r, toks in enumerate(row_inputs):
        ids[r, : len(toks)] = torch.tensor(toks)
        mask[r, : len(toks)] = 1
    positions = prefix_len[torch.tensor(row_group)].unsqueeze(1) + torch.arange(r_max).unsqueeze(0)
    full_mask = mask if prefix_mask is None else torch.cat([prefix_mask, mask], dim=1)
    logits = model(input_ids=ids.to(device), attention_mask=full_mask.to(device), position_ids=positions.to(device),
                   **cache_kwargs(past), use_cache=past is not None).logits
    for r, i in enumerate(row_ids):
        cont = pairs[i][1]
        n_in = len(row_inputs[r])
        row_logits = logits[r, n_in - len(cont): n_in].float()
        logprobs = torch.log_softmax(row_logits, dim=-1)
        target = torch.tensor(cont, device=logprobs.device)
        token_lp = logprobs.gather(1, target.unsqueeze(1)).squeeze(1)
        greedy = bool((row_logits.argmax(-1) == target).all())
        results[i] = Score(float(token_lp.sum()), token_lp.tolist(), greedy)
