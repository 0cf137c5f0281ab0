"""Optional vLLM backend for ``generate`` (install ``underdog[vllm]``; needs a GPU). Imported lazily.

The engine is created once per model path and reused. Log-probs are vLLM's per-token log-probs of the sampled
tokens; finish reasons map to underdog's ``stop`` / ``eos`` / ``length``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from underdog.lm.generate import Sample
from underdog.lm.load import LM


@lru_cache(maxsize=2)
def _engine(path: str):
    from vllm import LLM

    return LLM(model=path, trust_remote_code=False)


def generate_vllm(lm: LM, prompts: Sequence[str], n: int, method: str, max_new_tokens: int,
                  stop: Sequence[str], temperature: float, top_p: float, seed: int,
                  num_beams: int | None) -> list[list[Sample]]:
    try:
        from vllm import SamplingParams
    except ImportError as e:
        raise ImportError("the vLLM backend needs `pip install underdog[vllm]` on a GPU machine") from e
    if method == "beam":
        raise ValueError("beam search with the vLLM backend is not supported; use backend='hf'")
    params = SamplingParams(n=n, temperature=0.0 if method == "greedy" else temperature, top_p=top_p,
                            max_tokens=max_new_tokens, stop=list(stop) or None, logprobs=0, seed=seed)
    outputs = _engine(lm.path).generate(list(prompts), params)
    results = []
    for out in outputs:
        samples = []
        for c in out.outputs:
            lps = [next(iter(d.values())).logprob if d else 0.0 for d in (c.logprobs or [])]
            reason = {"stop": "stop" if c.stop_reason else "eos", "length": "length"}.get(c.finish_reason, "eos")
            samples.append(Sample(c.text, list(c.token_ids), lps, reason))
        results.append(samples)
    return results
