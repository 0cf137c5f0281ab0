"""Batched text generation with per-token log-probs: greedy, sampling and beam search behind one call.

``generate(lm, prompts, n=...)`` runs Hugging Face ``model.generate`` on left-padded batches (KV cache on), and
returns, for every prompt, ``n`` ``Sample``s with text, token ids, per-token log-probs under the model (raw
logits, temperature 1) and a finish reason (``stop``, ``eos`` or ``length``). Stop strings cut the text and the
tokens at the first match. Beam search returns the ``n`` best beams, best first, with their summed log-probs.
With ``backend="vllm"`` (extra ``underdog[vllm]``, GPU) the same call goes through vLLM.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from underdog.lm.load import LM

METHODS = ("greedy", "sample", "beam")


@dataclass
class Sample:
    """One generated continuation."""

    text: str
    token_ids: list[int]
    token_logprobs: list[float]
    finish_reason: str  # "stop" | "eos" | "length"
    logprob: float = field(init=False)

    def __post_init__(self) -> None:
        self.logprob = float(sum(self.token_logprobs))

    @property
    def mean_logprob(self) -> float:
        return self.logprob / max(1, len(self.token_logprobs))


def _cut(tokenizer, ids: list[int], logprobs: list[float], eos_ids: set[int], stop: Sequence[str],
         max_new_tokens: int) -> Sample:
    """Trim a raw generated sequence at EOS or the first stop string; decide the finish reason."""
    reason = "length"
    for k, t in enumerate(ids):
        if t in eos_ids:
            ids, logprobs, reason = ids[: k + 1], logprobs[: k + 1], "eos"
            break
    text = tokenizer.decode(ids, skip_special_tokens=True)
    hits = [text.find(s) for s in stop if s and s in text]
    if hits:
        cut = min(hits)
        text = text[:cut]
        # keep the shortest token prefix whose decoding covers the text up to the stop string
        for k in range(1, len(ids) + 1):
            if len(tokenizer.decode(ids[:k], skip_special_tokens=True)) >= cut:
                ids, logprobs = ids[:k], logprobs[:k]
                break
        reason = "stop"
    elif reason == "length" and len(ids) < max_new_tokens:
        reason = "eos"  # stopped early by the model's own end-of-sequence handling
    return Sample(text, list(ids), list(logprobs), reason)


def _eos_ids(lm: LM) -> set[int]:
    eos = lm.model.generation_config.eos_token_id
    eos = eos if isinstance(eos, list) else [eos]
    ids = {e for e in eos if e is not None}
    if lm.tokenizer.eos_token_id is not None:
        ids.add(lm.tokenizer.eos_token_id)
    return ids


def check_method(method: str, n: int) -> None:
    """A known decoding method, and one sample per prompt for greedy (ValueError otherwise)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "greedy" and n != 1:
        raise ValueError("greedy decoding gives one sample per prompt; use method='sample' or 'beam' for n > 1")


@torch.no_grad()
def generate(
    lm: LM,
    prompts: Sequence[str],
    n: int = 1,
    method: str = "greedy",
    max_new_tokens: int = 32,
    stop: Sequence[str] = (),
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    num_beams: int | None = None,
    progress: bool = False,
    backend: str = "hf",
) -> list[list[Sample]]:
    """Generate ``n`` samples for each prompt; returns one list of ``Sample`` per prompt, in input order."""
    check_method(method, n)
    if backend == "vllm":
        from underdog.lm.vllm_backend import generate_vllm

        return generate_vllm(lm, prompts, n, method, max_new_tokens, stop, temperature, top_p, seed, num_beams)
    if backend != "hf":
        raise ValueError(f"backend must be 'hf' or 'vllm', got {backend!r}")
    tok, model = lm.tokenizer, lm.model
    eos_ids = _eos_ids(lm)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    results: list[list[Sample]] = [[] for _ in prompts]
    beams = max(num_beams or n, n) if method == "beam" else 1
    rows_per_batch = max(1, batch_size // (n * beams if method != "greedy" else 1))
    padding_side = tok.padding_side
    tok.padding_side = "left"
    try:
        with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
            torch.manual_seed(seed)
            for start in tqdm(range(0, len(order), rows_per_batch), desc=f"generate ({method})",
                              disable=not progress):
                idx = order[start: start + rows_per_batch]
                enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True).to(lm.device)
                kwargs = dict(max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id,
                              eos_token_id=sorted(eos_ids), return_dict_in_generate=True, output_logits=True)
                if method == "greedy":
                    kwargs.update(do_sample=False, num_beams=1)
                elif method == "sample":
                    kwargs.update(do_sample=True, temperature=temperature, top_p=top_p, top_k=0,
                                  num_return_sequences=n)
                else:
                    kwargs.update(do_sample=False, num_beams=beams, num_return_sequences=n, length_penalty=0.0,
                                  early_stopping=True, output_logits=False, output_scores=True)
                if stop:
                    kwargs.update(stop_strings=list(stop), tokenizer=tok)
                out = model.generate(**enc, **kwargs)
                new = out.sequences[:, enc["input_ids"].shape[1]:]
                if method == "beam":
                    token_lp = model.compute_transition_scores(out.sequences, out.scores, out.beam_indices,
                                                               normalize_logits=False)
                else:
                    logits = torch.stack(out.logits, dim=1).float()
                    token_lp = torch.log_softmax(logits, -1).gather(2, new.unsqueeze(-1)).squeeze(-1)
                per_prompt = n if method != "greedy" else 1
                for r in range(new.shape[0]):
                    sample = _cut(tok, new[r].tolist(), token_lp[r].tolist(), eos_ids, stop, max_new_tokens)
                    results[idx[r // per_prompt]].append(sample)
    finally:
        tok.padding_side = padding_side
    if method == "beam":
        for samples in results:
            samples.sort(key=lambda s: -s.logprob)
    return results
