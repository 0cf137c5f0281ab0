"""Soft-prompted decoding and self-evaluation on a frozen causal LM, sharing one KV cache (ASPIRE's machinery).

A ``Tuned`` model is a frozen base LM plus an optional block of learned prefix embeddings (θp, the soft
prompt of stage 1), fed through ``inputs_embeds`` by hand rather than through PEFT, so every pass controls its
own cache. ``decode`` prefills left-padded prompts once (``[pad] [θp] prompt``; position ids from the attention
mask, as in training), copies the cache ``n`` times for sampling, and decodes greedily or by sampling; every
answer token is fed into the cache, a row stops at a newline or EOS (not fed) or after a token ending in "."
(fed), so afterwards the cache holds exactly ``[θp] prompt answer`` for every row. ``suffix_logits`` then runs
a short suffix on top of that cache (token ids and soft embeddings mixed, e.g. ``[θs] " Correct or
incorrect?"``), reads the next-token logits at each row's end and crops the cache back, so several
judgements (ASPIRE, plain self-evaluation, P(True)) reuse one generation. ``SoftJudge`` holds θs, trained by
``train_judge`` with a plain PyTorch loop (base and θp frozen) and saved with safetensors.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from underdog.lm.generate import Sample
from underdog.lm.kv import cache_kwargs, returned_cache

Segment = list[int] | torch.Tensor  # token ids, or (k, hidden) embeddings


@dataclass
class Tuned:
    """A frozen base model with an optional soft prefix θp of shape (n_virtual, hidden)."""

    model: torch.nn.Module
    tokenizer: object
    prefix: torch.Tensor | None = None
    _tables: tuple | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def embed(self, ids: Sequence[int] | torch.Tensor) -> torch.Tensor:
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
        return self.model.get_input_embeddings()(ids)

    def encode(self, text: str, special: bool = False) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=special)


@dataclass
class State:
    """The KV cache of a batch after ``decode``: attention mask over it and each row's next position."""

    past: object
    mask: torch.Tensor
    pos: torch.Tensor

    def copy(self) -> State:
        return State(copy.deepcopy(self.past), self.mask.clone(), self.pos.clone())


def _stop_table(tuned: Tuned) -> tuple[torch.Tensor, torch.Tensor]:
    """Per vocabulary id: does it stop a row unfed (newline, EOS), does it end an answer (ends with ".")."""
    if tuned._tables is not None:
        return tuned._tables
    tok = tuned.tokenizer
    n = tuned.model.get_input_embeddings().weight.shape[0]
    texts = tok.convert_ids_to_tokens(list(range(min(n, len(tok)))))
    stop, period = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    for i, t in enumerate(texts):
        s = tok.convert_tokens_to_string([t]) if t is not None else ""
        stop[i], period[i] = "\n" in s, s.rstrip().endswith(".") and bool(s.strip())
    for e in {tok.eos_token_id, getattr(tuned.model.generation_config, "eos_token_id", None)}:
        for i in e if isinstance(e, list) else [e]:
            if i is not None and i < n:
                stop[i] = True
    tuned._tables = (stop, period)
    return stop, period


def prefill(tuned: Tuned, prompts: Sequence[Sequence[int]]) -> tuple[State, torch.Tensor]:
    """Run ``[pad] [θp] prompt`` rows (left-padded) once; returns the state and the last logits (B, V)."""
    dev = tuned.device
    n_soft = 0 if tuned.prefix is None else tuned.prefix.shape[0]
    length = max(len(p) for p in prompts) + n_soft
    hidden = tuned.model.get_input_embeddings().weight.shape[1]
    embeds = torch.zeros(len(prompts), length, hidden, device=dev, dtype=tuned.model.dtype)
    mask = torch.zeros(len(prompts), length, dtype=torch.long, device=dev)
    for r, ids in enumerate(prompts):
        parts = ([tuned.prefix] if n_soft else []) + [tuned.embed(list(ids))]
        row = torch.cat(parts).to(embeds.dtype)
        embeds[r, length - len(row):] = row
        mask[r, length - len(row):] = 1
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    out = tuned.model(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True,
                      logits_to_keep=1)
    return State(returned_cache(out), mask, mask.sum(1)), out.logits[:, -1].float()


@torch.no_grad()
def decode(tuned: Tuned, prompts: Sequence[Sequence[int]], n: int = 1, method: str = "greedy",
           max_new_tokens: int = 16, temperature: float = 1.0, stop_at_period: bool = True,
           generator: torch.Generator | None = None,
           start: tuple[State, torch.Tensor] | None = None) -> tuple[list[list[Sample]], State]:
    """Answer each prompt (token ids) ``n`` times; returns Samples per prompt and the cache (rows ordered
    prompt-major: row ``i * n + j`` is sample ``j`` of prompt ``i``). Sample text drops a final ".".
    ``start`` is a ``prefill`` of the same prompts to begin from (it is used up)."""
    if method not in ("greedy", "sample"):
        raise ValueError(f"method must be 'greedy' or 'sample', got {method!r}")
    if method == "greedy" and n != 1:
        raise ValueError("greedy decoding gives one answer per prompt")
    stop, period = _stop_table(tuned)
    state, logits = start if start is not None else prefill(tuned, prompts)
    if n > 1:
        index = torch.arange(len(prompts), device=tuned.device).repeat_interleave(n)
        state.past.batch_select_indices(index)
        state.mask, state.pos, logits = state.mask[index], state.pos[index], logits[index]
    rows = logits.shape[0]
    ids: list[list[int]] = [[] for _ in range(rows)]
    lps: list[list[float]] = [[] for _ in range(rows)]
    reason = ["length"] * rows
    done = torch.zeros(rows, dtype=torch.bool)
    pad = tuned.tokenizer.pad_token_id or 0
    for step in range(max_new_tokens):
        logp = torch.log_softmax(logits, -1)
        if method == "greedy":
            y = logp.argmax(-1)
        else:
            probs = torch.softmax(logits / max(temperature, 1e-6), -1)
            y = torch.multinomial(probs.cpu(), 1, generator=generator).squeeze(1).to(logp.device)
        lp = logp.gather(1, y[:, None]).squeeze(1).tolist()
        y_cpu = y.cpu()
        stopped = stop[y_cpu] & ~done
        for r in torch.nonzero(stopped).flatten().tolist():
            reason[r] = "eos" if y_cpu[r].item() == tuned.tokenizer.eos_token_id else "stop"
        done |= stopped
        feed = ~done
        if not feed.any():
            break
        for r in torch.nonzero(feed).flatten().tolist():
            ids[r].append(int(y_cpu[r]))
            lps[r].append(lp[r])
        feed_dev = feed.to(tuned.device)
        tokens = torch.where(feed_dev, y, torch.full_like(y, pad))
        state.mask = torch.cat([state.mask, feed_dev.long()[:, None]], 1)
        out = tuned.model(inputs_embeds=tuned.embed(tokens)[:, None], attention_mask=state.mask,
                          position_ids=state.pos[:, None], **cache_kwargs(state.past), use_cache=True)
        state.past, logits = returned_cache(out), out.logits[:, -1].float()
        state.pos = state.pos + feed_dev.long()
        ended = feed & period[y_cpu] if stop_at_period else torch.zeros_like(feed)
        for r in torch.nonzero(ended).flatten().tolist():
            reason[r] = "stop"
        done |= ended
        if step == max_new_tokens - 1:
            break
    samples = []
    for r in range(rows):
        text = tuned.tokenizer.decode(ids[r], skip_special_tokens=True).strip()
        samples.append(Sample(text[:-1].rstrip() if text.endswith(".") else text, ids[r], lps[r], reason[r]))
    return [samples[i * n:(i + 1) * n] for i in range(len(prompts))], state


@torch.no_grad()
def beam_answers(tuned: Tuned, prompts: Sequence[Sequence[int]], k: int = 4, max_new_tokens: int = 16,
                 stop_at_period: bool = True) -> list[list[Sample]]:
    """The ``k`` best beams per prompt (Hugging Face beam search on ``[θp] prompt`` embeddings, no length
    penalty), cut like ``decode``'s answers (newline/EOS dropped, a final "." ends it), best first."""
    stop, period = _stop_table(tuned)
    n_soft = 0 if tuned.prefix is None else tuned.prefix.shape[0]
    length = max(len(p) for p in prompts) + n_soft
    hidden = tuned.model.get_input_embeddings().weight.shape[1]
    embeds = torch.zeros(len(prompts), length, hidden, device=tuned.device, dtype=tuned.model.dtype)
    mask = torch.zeros(len(prompts), length, dtype=torch.long, device=tuned.device)
    for r, ids in enumerate(prompts):
        row = torch.cat(([tuned.prefix] if n_soft else []) + [tuned.embed(list(ids))]).to(embeds.dtype)
        embeds[r, length - len(row):], mask[r, length - len(row):] = row, 1
    ends = stop | period if stop_at_period else stop  # newline and "."-final tokens end a beam like EOS
    eos = sorted(int(i) for i in torch.nonzero(ends).flatten())
    out = tuned.model.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens,
                               num_beams=k, num_return_sequences=k, do_sample=False, length_penalty=0.0,
                               early_stopping=True, eos_token_id=eos, pad_token_id=tuned.tokenizer.pad_token_id,
                               return_dict_in_generate=True, output_scores=True)
    token_lp = tuned.model.compute_transition_scores(out.sequences, out.scores, out.beam_indices,
                                                     normalize_logits=False)
    results: list[list[Sample]] = [[] for _ in prompts]
    for r in range(out.sequences.shape[0]):
        ids, lps, reason = [], [], "length"
        for t, lp in zip(out.sequences[r].tolist(), token_lp[r].tolist()):
            if stop[t]:
                reason = "stop"
                break
            ids.append(t)
            lps.append(lp)
            if stop_at_period and period[t]:
                reason = "stop"
                break
        text = tuned.tokenizer.decode(ids, skip_special_tokens=True).strip()
        results[r // k].append(Sample(text[:-1].rstrip() if text.endswith(".") else text, ids, lps, reason))
    unique = []
    for samples in results:
        samples.sort(key=lambda s: -s.logprob)
        unique.append(list({s.text: s for s in reversed(samples)}.values())[::-1])  # best of equal texts
    return unique


def suffix_logits(tuned: Tuned, state: State, suffixes: Sequence[Sequence[Segment]], rows: torch.Tensor | None = None,
                  keep_cache: bool = True) -> torch.Tensor:
    """Next-token logits (R, V) after appending each row's suffix segments to the cached rows ``rows`` (all by
    default). The cache is cropped back afterwards (``keep_cache``), so it can serve the next suffix."""
    dev = tuned.device
    parts = []
    for segs in suffixes:
        emb = [s.to(dev) if isinstance(s, torch.Tensor) else tuned.embed(list(s)) for s in segs if len(s)]
        parts.append(torch.cat(emb))
    length = max(p.shape[0] for p in parts)
    embeds = torch.zeros(len(parts), length, parts[0].shape[1], device=dev, dtype=parts[0].dtype)
    mask = torch.zeros(len(parts), length, dtype=torch.long, device=dev)
    for r, p in enumerate(parts):
        embeds[r, :len(p)] = p
        mask[r, :len(p)] = 1
    past, past_mask, pos = state.past, state.mask, state.pos
    if rows is not None:
        if keep_cache:
            raise ValueError("selecting rows changes the cache; pass keep_cache=False")
        past.batch_select_indices(rows.to(dev))
        past_mask, pos = past_mask[rows], pos[rows]
    positions = pos[:, None] + torch.arange(length, device=dev)[None]
    out = tuned.model(inputs_embeds=embeds, attention_mask=torch.cat([past_mask, mask], 1), position_ids=positions,
                      **cache_kwargs(past), use_cache=True)
    if keep_cache:
        past.crop(-length)  # drop the suffix again
    last = torch.tensor([p.shape[0] - 1 for p in parts], device=dev)
    return out.logits[torch.arange(len(parts), device=dev), last].float()


def two_way(logits: torch.Tensor, yes: int, no: int) -> torch.Tensor:
    """log P(yes) / (P(yes) + P(no)) per row."""
    return F.logsigmoid(logits[:, yes] - logits[:, no])


def judge_tokens(tokenizer, prompt: str, yes: str, no: str) -> tuple[list[int], int, int]:
    """Judgement prompt ids and the yes/no token ids: the first token where ``prompt + yes`` and ``prompt + no``
    differ, the shared tokens before it joining the prompt (so multi-token words still work)."""
    a = tokenizer.encode(prompt + yes, add_special_tokens=False)
    b = tokenizer.encode(prompt + no, add_special_tokens=False)
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if k is None:
        raise ValueError(f"{yes!r} and {no!r} do not differ in their first tokens after {prompt!r}")
    return a[:k], a[k], b[k]


class SoftJudge(torch.nn.Module):
    """θs: ``n_tokens`` learned embeddings inserted after the answer, before the judgement prompt."""

    def __init__(self, init: torch.Tensor) -> None:
        super().__init__()
        self.soft = torch.nn.Parameter(init.detach().clone().float())

    @classmethod
    def from_text(cls, tuned: Tuned, n_tokens: int, text: str) -> SoftJudge:
        ids = tuned.encode(text) or [tuned.tokenizer.eos_token_id]
        ids = (ids * (n_tokens // len(ids) + 1))[:n_tokens]
        with torch.no_grad():
            return cls(tuned.embed(ids))

    def save(self, path) -> None:
        from safetensors.torch import save_file

        save_file({"soft": self.soft.detach().cpu().contiguous()}, str(path))

    @classmethod
    def load(cls, path, device: torch.device | str = "cpu") -> SoftJudge:
        from safetensors.torch import load_file

        return cls(load_file(str(path))["soft"]).to(device)


def train_judge(tuned: Tuned, examples: Sequence[dict], judge: SoftJudge, prompt_ids: list[int], yes: int, no: int,
                epochs: float = 3, lr: float = 0.02, batch_questions: int = 8, seed: int = 0,
                progress: bool = True) -> list[float]:
    """Train θs on ``examples`` (``{"prompt_ids", "answer_ids", "label"}``; label 1 = correct) so that
    ``[θp] prompt answer [θs] judgement`` puts its mass on ``yes`` for correct answers and ``no`` for wrong ones;
    classes are weighted equally. Each step prefills a few questions once (no grad) and runs all their answers'
    suffixes on that cache. Returns the mean loss of each step."""
    for p in tuned.model.parameters():
        p.requires_grad_(False)
    groups: dict[tuple, list[dict]] = {}
    for ex in examples:
        groups.setdefault(tuple(ex["prompt_ids"]), []).append(ex)
    keys = list(groups)
    n_pos = sum(ex["label"] for ex in examples)
    n_neg = len(examples) - n_pos
    w_pos, w_neg = len(examples) / (2 * max(n_pos, 1)), len(examples) / (2 * max(n_neg, 1))
    optim = torch.optim.Adam(judge.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(keys) / batch_questions)
    total = max(1, round(epochs * steps_per_epoch))
    rng = random.Random(seed)
    losses: list[float] = []
    bar = tqdm(total=total, desc="self-eval (θs)", disable=not progress)
    order: list[tuple] = []
    for step in range(total):
        if not order:
            order = rng.sample(keys, len(keys))
        batch, order = order[:batch_questions], order[batch_questions:]
        with torch.no_grad():
            state, _ = prefill(tuned, [list(k) for k in batch])
        members = [(g, ex) for g, k in enumerate(batch) for ex in groups[k]]
        rows = torch.tensor([g for g, _ in members])
        suffixes = [[ex["answer_ids"], judge.soft, prompt_ids] for _, ex in members]
        for param_group in optim.param_groups:  # cosine decay
            param_group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / total))
        logits = suffix_logits(tuned, state, suffixes, rows=rows, keep_cache=False)
        margin = logits[:, yes] - logits[:, no]  # log P(yes) - log P(no)
        labels = torch.tensor([float(ex["label"]) for _, ex in members], device=margin.device)
        weights = torch.where(labels > 0.5, w_pos, w_neg)
        loss = (weights * F.binary_cross_entropy_with_logits(margin, labels, reduction="none")).mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
        losses.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{sum(losses[-10:]) / len(losses[-10:]):.4f}")
    bar.close()
    return losses
