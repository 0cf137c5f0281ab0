"""Batched log-likelihood of continuations given contexts: the heart of every likelihood-based evaluation.

``score(lm, contexts, continuations)`` returns, for each pair, the summed and per-token log-probabilities of the
continuation tokens and whether greedy decoding would have produced them. Tokenization follows
lm-evaluation-harness exactly (trailing context whitespace moves to the continuation; the pair is encoded whole
and split at the context's token length), so numbers agree with ``HFLM.loglikelihood`` within 1e-4.

Speed comes from doing each thing once. Texts are tokenized in one batched call, each distinct context once.
Requests that share a context (the choices of one multiple-choice question) form a group that is one row of
one forward pass: the context, then every continuation (minus its last token) side by side, with a 4D
attention mask that lets each continuation see the context and its own earlier tokens only, and position ids
that restart after the context for each continuation. The context's last position predicts every
continuation's first token. Rows are length-sorted and left-padded, logits are computed only over each batch's
scored tail, and one log-softmax covers every target of a batch. Padding and packing never change a number
beyond float rounding. Models whose attention implementation takes no custom 4D mask (flash attention, flex)
score each request as its own row with an ordinary padding mask; so does ``share_context=False``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from underdog.lm.load import LM

# attention implementations that take a custom 4D mask: sdpa reads a boolean one, eager an additive float one
_MASK_KINDS = {"sdpa": "bool", "eager": "float"}


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


def _move_space(context: str, continuation: str) -> tuple[str, str]:
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of (context, continuation), split the way lm-evaluation-harness splits them."""
    return encode_pairs(tokenizer, [context], [continuation])[0]


def _encode_many(tokenizer, texts: list[str], add_special_tokens: bool = True) -> list[list[int]]:
    """``tokenizer.encode`` of each text, batched. A fast tokenizer whose backend pads and truncates nothing
    (the state ``tokenizer(...)`` puts it in when asked for neither) is called directly, skipping offsets."""
    if not texts:
        return []
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if (backend is not None and hasattr(backend, "encode_batch_fast") and backend.truncation is None
            and backend.padding is None
            and backend.encode_special_tokens == bool(getattr(tokenizer, "split_special_tokens", False))):
        return [e.ids for e in backend.encode_batch_fast(texts, add_special_tokens=add_special_tokens)]
    out = tokenizer(texts, add_special_tokens=add_special_tokens, return_attention_mask=False,
                    return_token_type_ids=False)
    return [list(ids) for ids in out["input_ids"]]


def encode_pairs(tokenizer, contexts: Sequence[str], continuations: Sequence[str]) -> list[tuple[list[int], list[int]]]:
    """``encode_pair`` of every pair, in one batched tokenizer call per kind of text, each distinct context
    tokenized once."""
    moved = [_move_space(c, x) for c, x in zip(contexts, continuations)]
    distinct = list(dict.fromkeys(c for c, _ in moved if c))
    ctx_ids = dict(zip(distinct, _encode_many(tokenizer, distinct)))
    wholes = _encode_many(tokenizer, [c + x for c, x in moved if c])
    bare = _encode_many(tokenizer, [x for c, x in moved if not c], add_special_tokens=False)
    prefix = [prefix_token_id(tokenizer)]
    pairs, w, b = [], 0, 0
    for c, x in moved:
        if c:
            ctx = ctx_ids[c]
            cont = wholes[w][len(ctx):]
            w += 1
        else:
            ctx, cont = prefix, bare[b]
            b += 1
        if not cont:
            raise ValueError(f"continuation {x!r} encodes to no tokens")
        pairs.append((list(ctx), cont))
    return pairs


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
    pairs = encode_pairs(lm.tokenizer, contexts, continuations)
    return score_tokens(lm, pairs, batch_size=batch_size, share_context=share_context, progress=progress)


def truncate_context(ctx: list[int], cont: list[int], max_length: int) -> list[int]:
    """The end of ``ctx`` that fits a ``max_length`` window before ``cont`` (the model reads ctx + cont[:-1]);
    every scorer of continuations (``score_tokens``, ``pretrain.choice``) cuts its contexts here."""
    if len(cont) > max_length:
        raise ValueError(f"continuation of {len(cont)} tokens exceeds the model's {max_length}-token window")
    keep = max_length + 1 - len(cont)  # the model reads ctx + cont[:-1]
    return ctx[-keep:]


def mask_kind(model) -> str | None:
    """How ``model``'s attention takes a custom 4D mask ("bool" or "float"), or None if it takes none."""
    return _MASK_KINDS.get(getattr(model.config, "_attn_implementation", None) or "eager")


@torch.no_grad()
def score_tokens(
    lm: LM,
    pairs: Sequence[tuple[list[int], list[int]]],
    batch_size: int = 32,
    share_context: bool = True,
    progress: bool = False,
) -> list[Score]:
    """Like ``score`` but on pre-tokenized (context ids, continuation ids) pairs. ``batch_size`` bounds the
    rows (sequences) of one forward pass, as in lm-eval; a row holds a context and all its continuations."""
    max_length = lm.max_length
    share_context = share_context and mask_kind(lm.model) is not None
    groups: dict[tuple, tuple[list[int], list[int]]] = {}
    for i, (ctx, cont) in enumerate(pairs):
        ctx = truncate_context(list(ctx), list(cont), max_length)
        key = tuple(ctx) if share_context else (i,)
        groups.setdefault(key, (ctx, []))[1].append(i)
    rows = [_Row(ctx, members, pairs) for ctx, members in groups.values()]
    rows.sort(key=lambda r: -len(r.tokens))
    results: list[Score | None] = [None] * len(pairs)
    bar = tqdm(total=len(pairs), desc="scoring", unit="req", disable=not progress)
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        _run_batch(lm, batch, pairs, results)
        bar.update(sum(len(r.members) for r in batch))
    bar.close()
    return results  # type: ignore[return-value]


class _Row:
    """One forward-pass row: a context, then each member's continuation minus its last token. ``segment``
    is 0 on the context and j + 1 on member j's tokens; ``targets`` lists, per member, the row positions whose
    logits predict its continuation tokens."""

    def __init__(self, ctx: list[int], members: list[int], pairs) -> None:
        self.members = members
        self.tokens, self.positions, self.segment = list(ctx), list(range(len(ctx))), [0] * len(ctx)
        self.targets: list[list[int]] = []
        for j, i in enumerate(members):
            cont = pairs[i][1]
            start = len(self.tokens)
            self.tokens += cont[:-1]
            self.positions += range(len(ctx), len(ctx) + len(cont) - 1)
            self.segment += [j + 1] * (len(cont) - 1)
            self.targets.append([len(ctx) - 1, *range(start, start + len(cont) - 1)])


def _run_batch(lm: LM, batch: list[_Row], pairs, results) -> None:
    model, device = lm.model, lm.device
    pad_id = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    width = max(len(r.tokens) for r in batch)
    ids, positions, segments = [], [], []
    for row in batch:  # left padding: every row's scored tail ends at the last column
        n_pad = width - len(row.tokens)
        ids += [pad_id] * n_pad + row.tokens
        positions += [0] * n_pad + row.positions
        segments += [-1] * n_pad + row.segment  # -1: padding
    shape = (len(batch), width)
    ids, positions, segment = (torch.tensor(x).view(shape) for x in (ids, positions, segments))
    if all(len(row.members) == 1 for row in batch):
        mask = (segment >= 0).long()  # one continuation per row: the ordinary causal + padding mask
    else:
        causal = torch.ones((width, width), dtype=torch.bool).tril()
        seg_q, seg_k = segment[:, :, None], segment[:, None, :]
        # a token sees the context and its own continuation, causally; padding (left) sees only padding
        mask = (causal & ((seg_k == 0) | (seg_k == seg_q)))[:, None]
        if mask_kind(model) == "float":
            dtype = next(model.parameters()).dtype
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
    # logits only over the columns that predict a target: from the earliest context end to the last column
    keep = max(len(row.tokens) - min(t[0] for t in row.targets) for row in batch)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                   use_cache=False, logits_to_keep=keep).logits
    row_idx, col_idx, target, owner = [], [], [], []
    for b, row in enumerate(batch):
        shift = keep - len(row.tokens)
        for i, cols in zip(row.members, row.targets):
            cont = pairs[i][1]
            row_idx += [b] * len(cont)
            col_idx += [c + shift for c in cols]
            target += cont
            owner.append((i, len(cont)))
    picked = logits[torch.tensor(row_idx, device=device), torch.tensor(col_idx, device=device)].float()
    target_t = torch.tensor(target, device=picked.device)
    token_lp = torch.log_softmax(picked, dim=-1).gather(1, target_t[:, None]).squeeze(1)
    hit = picked.argmax(-1) == target_t
    token_lp, hit = token_lp.tolist(), hit.tolist()
    at = 0
    for i, n in owner:
        lps = token_lp[at:at + n]
        results[i] = Score(sum(lps), lps, all(hit[at:at + n]))
        at += n
