"""Benchmark: batched greedy ``generate`` vs a per-example ``model.generate`` loop (what a user writes first).

Same model (a ~20M-parameter Llama built in code), 256 prompts of 5-40 words, greedy, 32 new tokens. Prints
both throughputs, the ratio and how many outputs are token-for-token identical.

    python benchmarks/generate.py [--prompts 256] [--batch-size 64]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_lm, text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=int, default=256)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--json")
    args = ap.parse_args()

    from underdog.lm.generate import generate

    lm = build_lm()
    rng = random.Random(1)
    prompts = [text(rng, rng.randint(5, 40)) for _ in range(args.prompts)]
    print(f"model: {lm.info['parameters'] / 1e6:.1f}M parameters; {len(prompts)} prompts; greedy, "
          f"{args.max_new_tokens} new tokens; torch threads {torch.get_num_threads()}")

    tok, model = lm.tokenizer, lm.model
    start = time.perf_counter()
    loop_ids = []
    with torch.no_grad():
        for p in prompts:
            enc = tok(p, return_tensors="pt")
            out = model.generate(**enc, max_new_tokens=args.max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id)
            loop_ids.append(out[0, enc["input_ids"].shape[1]:].tolist())
    t_loop = time.perf_counter() - start

    start = time.perf_counter()
    ours = generate(lm, prompts, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    t_ours = time.perf_counter() - start

    eos = tok.eos_token_id

    def trim(ids):
        return ids[: ids.index(eos) + 1] if eos in ids else ids

    identical = sum(trim(a) == s[0].token_ids for a, s in zip(loop_ids, ours))
    new_tokens = sum(len(s[0].token_ids) for s in ours)
    figures = {"prompts": len(prompts), "loop_seconds": t_loop, "underdog_seconds": t_ours,
               "loop_tokens_per_s": new_tokens / t_loop, "underdog_tokens_per_s": new_tokens / t_ours,
               "speedup": t_loop / t_ours, "identical": identical, "identical_fraction": identical / len(prompts)}
    print(f"per-example model.generate loop: {figures['loop_tokens_per_s']:8.1f} new tok/s ({t_loop:.1f}s)")
    print(f"underdog batched generate      : {figures['underdog_tokens_per_s']:8.1f} new tok/s ({t_ours:.1f}s)")
    print(f"speedup {figures['speedup']:.2f}x; identical outputs {identical}/{len(prompts)}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
