"""Generation with tool calls on one KV cache: greedy, sampling and beam search.

``generate_with_tools(lm, prompts, registry, method=...)`` decodes token by token with its own loop over the
model's forward (left-padded batch, ``lm.kv`` cache keyword). When a row's text ends a call
(``[Calculator(37*48) ->``, see ``underdog.tools.runtime``), the tool runs and its answer (`` 1776]``) is
queued as *forced* tokens: the row takes them on the same cache (all at once when every live row of the batch
is inside a result, else one per step), so the prefix is never encoded again; then the model decodes on. Calls per answer are bounded (``max_calls``; one more gets
`` error: call limit]``); every tool failure is error text in the generation. Forced tokens carry log-prob
0 (they are not the model's), ``max_new_tokens`` counts only the model's tokens, and stop strings match only
in text the model wrote (a result "3.5" does not trip a "." stop). Beam search keeps ``num_beams`` beams per
prompt (sum of log-probs, no length penalty, as ``lm.generate``); a beam inside a tool result has a single
continuation. Returns, per prompt, ``n`` ``ToolSample``s (``lm.generate.Sample`` plus the calls made).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from underdog.lm.generate import Sample, _eos_ids, check_method
from underdog.lm.kv import cache_kwargs, returned_cache
from underdog.lm.load import LM
from underdog.tools.grounding import is_grounded, numbers_in, open_call_input
from underdog.tools.registry import ToolRegistry
from underdog.tools.runtime import ToolCall, pending_call, result_text, run_call


@dataclass
class ToolSample(Sample):
    """A ``Sample`` whose text includes its tool calls and results; ``calls`` lists what ran."""

    calls: list[dict] = field(default_factory=list)


@dataclass
class _Row:
    prompt: int
    ids: list[int] = field(default_factory=list)
    lps: list[float] = field(default_factory=list)
    forced: list[int] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)
    text: str = ""
    safe_from: int = 0  # stop strings are searched only from here (after the last tool result)
    n_model: int = 0
    score: float = 0.0
    done: bool = False
    reason: str = "length"
    cut: int | None = None  # text length at a stop string

    def copy(self) -> _Row:
        return _Row(self.prompt, list(self.ids), list(self.lps), list(self.forced), list(self.calls), self.text,
                    self.safe_from, self.n_model, self.score, self.done, self.reason, self.cut)


def token_surfaces(tokenizer) -> list[str]:
    """Each token's text as it reads after other text: decoded behind an anchor token, so a SentencePiece
    ``▁2`` reads `` 2`` (decoded alone it loses its space and would seem to continue a number)."""
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1:]
    base = tokenizer.decode(anchor)
    return [tokenizer.decode(anchor + [i])[len(base):] for i in range(len(tokenizer))]


class _Decoder:
    """Shared per-call state: tokenizer, tools, limits, memoized tool results."""

    def __init__(self, lm: LM, registry: ToolRegistry, stop: Sequence[str], max_new_tokens: int, max_calls: int,
                 timeout_s: float, ground_numbers: bool = False):
        self.lm, self.tok, self.registry = lm, lm.tokenizer, registry
        self.stop = [s for s in stop if s]
        self.max_new_tokens, self.max_calls, self.timeout_s = max_new_tokens, max_calls, timeout_s
        self.eos = _eos_ids(lm)
        self.memo: dict[str, tuple[ToolCall, list[int]]] = {}
        self.ground = ground_numbers
        self.context_numbers: list[set[str]] = []  # per prompt of the batch being decoded (grounding)
        if ground_numbers:  # tokens that can write part of a number, and the mask of all the others
            self.numeric = [(i, s) for i, s in enumerate(token_surfaces(self.tok))
                            if any(ch.isdigit() or ch == "." for ch in s)]
            self.other = torch.ones(len(self.tok), dtype=torch.bool, device=lm.device)
            self.other[[i for i, _ in self.numeric]] = False

    def begin(self, prompts: Sequence[str]) -> None:
        """Start a batch: the numbers each prompt offers to grounded calls."""
        if self.ground:
            self.context_numbers = [numbers_in(p) for p in prompts]

    def constrain(self, rows: Sequence[_Row], logits: torch.Tensor) -> None:
        """With grounding on, set to -inf the logits of tokens that would put a number into an open call that is
        not in the row's context (its prompt and its earlier tool results); see ``tools.grounding``."""
        if not self.ground:
            return
        for r, row in enumerate(rows):
            if row.done or row.forced or row.score == -math.inf:
                continue
            arg = open_call_input(row.text[row.safe_from:])
            if arg is None:
                continue
            allowed = self.context_numbers[row.prompt] | {n for c in row.calls for n in numbers_in(c.output)}
            bad = [i for i, s in self.numeric if not is_grounded(arg + s, allowed)]
            close_ok = is_grounded(arg + " ", allowed)
            if len(bad) == len(self.numeric) and not close_ok:
                continue  # nothing grounded can follow (the call opened on a token with digits): leave it free
            logits[r, bad] = -math.inf
            if not close_ok:
                logits[r, : len(self.other)].masked_fill_(self.other, -math.inf)

    def call(self, segment: str, n_calls: int) -> tuple[ToolCall, list[int]]:
        if n_calls >= self.max_calls:
            call = ToolCall("", segment[:80], "error: call limit", False, 0.0)
            return call, self.tok.encode(result_text(call), add_special_tokens=False)
        if segment not in self.memo:
            call = run_call(self.registry, segment, self.timeout_s)
            self.memo[segment] = (call, self.tok.encode(result_text(call), add_special_tokens=False))
        return self.memo[segment]

    def advance(self, row: _Row, token: int, lp: float, forced: bool) -> None:
        """Append one token to ``row`` and update its state (finish, stop string, tool call)."""
        before = len(row.text)
        row.ids.append(token)
        row.lps.append(0.0 if forced else lp)
        row.score += 0.0 if forced else lp
        if forced:
            row.text = self.tok.decode(row.ids, skip_special_tokens=True)
            if not row.forced:
                row.safe_from = len(row.text)
            return
        row.n_model += 1
        if token in self.eos:
            row.done, row.reason = True, "eos"
            return
        row.text = self.tok.decode(row.ids, skip_special_tokens=True)
        if self.stop:
            start = max(row.safe_from, before - max(len(s) for s in self.stop) + 1)
            hits = [row.text.find(s, start) for s in self.stop]
            hits = [h for h in hits if h >= 0]
            if hits:
                row.done, row.reason, row.cut = True, "stop", min(hits)
                return
        segment = pending_call(row.text[row.safe_from:])
        if segment is not None:
            call, ids = self.call(segment, len(row.calls))
            row.calls.append(call)
            row.forced = list(ids)
            return
        if row.n_model >= self.max_new_tokens:
            row.done, row.reason = True, "length"

    def sample(self, row: _Row) -> ToolSample:
        ids, lps, text = row.ids, row.lps, row.text
        if row.reason == "stop" and row.cut is not None:
            text = text[: row.cut]
            for k in range(1, len(ids) + 1):
                if len(self.tok.decode(ids[:k], skip_special_tokens=True)) >= row.cut:
                    ids, lps = ids[:k], lps[:k]
                    break
        return ToolSample(text, list(ids), list(lps), row.reason, calls=[c.to_dict() for c in row.calls])


def _forward(model, tokens: torch.Tensor, attn: torch.Tensor, cache):
    pos = (attn.long().cumsum(-1) - 1).clamp(min=0)[:, -tokens.shape[1]:]
    out = model(input_ids=tokens, attention_mask=attn, position_ids=pos, use_cache=True, **cache_kwargs(cache))
    return out.logits[:, -1, :].float(), returned_cache(out)


def _choose(logits: torch.Tensor, method: str, temperature: float, top_p: float, gen: torch.Generator):
    """Token and its log-prob (raw logits, temperature 1) per row, for greedy or sampling."""
    logp = torch.log_softmax(logits, -1)
    if method == "greedy":
        token = logits.argmax(-1)
    else:
        probs = torch.softmax(logits / max(temperature, 1e-6), -1)
        if top_p < 1.0:
            sorted_p, order = probs.sort(-1, descending=True)
            keep = sorted_p.cumsum(-1) - sorted_p < top_p
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p * keep)
        token = torch.multinomial(probs, 1, generator=gen).squeeze(-1)
    return token.tolist(), logp.gather(-1, token.unsqueeze(-1)).squeeze(-1).tolist()


def _run_rows(dec: _Decoder, rows: list[_Row], prompts: list[str], method: str, temperature: float, top_p: float,
              gen: torch.Generator) -> None:
    """Greedy or sampling for one batch of rows (one row per sample)."""
    tok, model = dec.tok, dec.lm.model
    enc = tok(prompts, return_tensors="pt", padding=True).to(dec.lm.device)
    attn = enc["attention_mask"]
    logits, cache = _forward(model, enc["input_ids"], attn, None)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    while True:
        live = [row for row in rows if not row.done]
        if live and all(row.forced for row in live):  # every live row is inside a tool result: feed it at once
            m = min(len(row.forced) for row in live)
            chunk = []
            for row in rows:
                if row.done:
                    chunk.append([pad] * m)
                    continue
                part, row.forced = row.forced[:m], row.forced[m:]
                for t in part:
                    dec.advance(row, t, 0.0, forced=True)
                chunk.append(part)
            attn = torch.cat([attn, attn.new_ones(len(rows), m)], 1)
            logits, cache = _forward(model, torch.tensor(chunk, device=attn.device), attn, cache)
            continue
        dec.constrain(rows, logits)
        chosen, lps = _choose(logits, method, temperature, top_p, gen)
        step = []
        for r, row in enumerate(rows):
            if row.done:
                step.append(pad)
            elif row.forced:
                t = row.forced.pop(0)
                dec.advance(row, t, 0.0, forced=True)
                step.append(t)
            else:
                dec.advance(row, chosen[r], lps[r], forced=False)
                step.append(chosen[r])
        if all(row.done for row in rows):
            return
        attn = torch.cat([attn, attn.new_ones(len(rows), 1)], 1)
        logits, cache = _forward(model, torch.tensor([step], device=attn.device).T, attn, cache)


def _run_beams(dec: _Decoder, prompts: list[str], beams: int, n: int) -> list[list[_Row]]:
    """Beam search for a batch of prompts; returns the ``n`` best finished rows per prompt, best first."""
    tok, model = dec.tok, dec.lm.model
    P = len(prompts)
    enc = tok([p for p in prompts for _ in range(beams)], return_tensors="pt", padding=True).to(dec.lm.device)
    attn = enc["attention_mask"]
    logits, cache = _forward(model, enc["input_ids"], attn, None)
    rows = [_Row(p, score=0.0 if b == 0 else -math.inf) for p in range(P) for b in range(beams)]
    finished: list[list[_Row]] = [[] for _ in range(P)]
    closed = [False] * P
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    while True:
        dec.constrain(rows, logits)
        logp = torch.log_softmax(logits, -1)
        top_lp, top_ids = logp.topk(min(2 * beams, logp.shape[-1]), -1)
        new_rows, src, step = [], [], []
        for p in range(P):
            base = p * beams
            if closed[p]:
                new_rows += [_Row(p, score=-math.inf, done=True) for _ in range(beams)]
                src += [base] * beams
                step += [pad] * beams
                continue
            cands = []
            for b in range(beams):
                row = rows[base + b]
                if row.done or row.score == -math.inf:
                    continue
                if row.forced:
                    cands.append((row.score, b, row.forced[0], 0.0, True))
                else:
                    cands += [(row.score + lp, b, t, lp, False)
                              for lp, t in zip(top_lp[base + b].tolist(), top_ids[base + b].tolist())]
            cands.sort(key=lambda c: -c[0])
            live = []
            for rank, (_, b, t, lp, forced) in enumerate(cands):
                row = rows[base + b].copy()
                if forced:
                    row.forced.pop(0)
                dec.advance(row, t, lp, forced)
                if row.done:
                    if rank < beams:
                        finished[p].append(row)
                    continue
                live.append((row, base + b, t))
                if len(live) == beams:
                    break
            finished[p].sort(key=lambda r: -r.score)
            best_live = max((r.score for r, _, _ in live), default=-math.inf)
            if not live or (len(finished[p]) >= n and finished[p][n - 1].score >= best_live):
                closed[p] = True
                finished[p] += [r for r, _, _ in live]
                live = []
            while len(live) < beams:
                live.append((_Row(p, score=-math.inf, done=True), base, pad))
            new_rows += [r for r, _, _ in live]
            src += [s for _, s, _ in live]
            step += [t for _, _, t in live]
        if all(closed):
            break
        rows = new_rows
        index = torch.tensor(src, device=attn.device)
        cache.reorder_cache(index)
        attn = torch.cat([attn[index], attn.new_ones(len(rows), 1)], 1)
        logits, cache = _forward(model, torch.tensor([step], device=attn.device).T, attn, cache)
    out = []
    for p in range(P):
        ranked = sorted((r for r in finished[p] if r.score > -math.inf), key=lambda r: -r.score)
        out.append(ranked[:n])
    return out


@torch.no_grad()
def generate_with_tools(
    lm: LM,
    prompts: Sequence[str],
    registry: ToolRegistry,
    n: int = 1,
    method: str = "greedy",
    max_new_tokens: int = 48,
    max_calls: int = 3,
    stop: Sequence[str] = (),
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    num_beams: int | None = None,
    timeout_s: float = 1.0,
    ground_numbers: bool = False,
) -> list[list[ToolSample]]:
    """``n`` samples per prompt, in input order, with tool calls run and their results in the text. With
    ``ground_numbers`` a call's input may only contain numbers of the prompt or of earlier results
    (``tools.grounding``); log-probs are then those of the constrained distribution."""
    check_method(method, n)
    dec = _Decoder(lm, registry, stop, max_new_tokens, max_calls, timeout_s, ground_numbers)
    tok = lm.tokenizer
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[list[ToolSample]] = [[] for _ in prompts]
    beams = max(num_beams or n, n) if method == "beam" else 1
    per_prompt = beams if method == "beam" else n
    step = max(1, batch_size // per_prompt)
    gen = torch.Generator(device=lm.device).manual_seed(seed)
    padding_side, tok.padding_side = tok.padding_side, "left"
    try:
        for start in range(0, len(order), step):
            idx = order[start: start + step]
            dec.begin([prompts[i] for i in idx])
            if method == "beam":
                for i, rows in zip(idx, _run_beams(dec, [prompts[i] for i in idx], beams, n)):
                    results[i] = [dec.sample(r) for r in rows]
                continue
            rows = [_Row(k) for k in range(len(idx)) for _ in range(n)]
            _run_rows(dec, rows, [prompts[i] for i in idx for _ in range(n)], method, temperature, top_p, gen)
            for row in rows:
                results[idx[row.prompt]].append(dec.sample(row))
    finally:
        tok.padding_side = padding_side
    return results
