"""Benchmark: multiple-choice scoring, underdog ``score`` vs lm-evaluation-harness ``HFLM.loglikelihood``.

Same model (a ~20M-parameter Llama built in code), same requests (N items x 4 choices, contexts of ~60-200
tokens, as in in-context evaluation), same batch size. Prints both throughputs (requests/s), the speed ratio
and the max |delta log-prob| between the two.

    python benchmarks/scoring.py [--items 500] [--batch-size 32]
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
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--choices", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()

    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from underdog.lm import score

    lm = build_lm()
    rng = random.Random(0)
    contexts, conts = [], []
    for _ in range(args.items):
        ctx = text(rng, rng.randint(40, 150))
        for _ in range(args.choices):
            contexts.append(ctx)
            conts.append(" " + text(rng, rng.randint(1, 4)))
    n_tokens = sum(len(lm.tokenizer.encode(c + x)) for c, x in zip(contexts, conts))
    print(f"model: {lm.info['parameters'] / 1e6:.1f}M parameters (Llama, built in code); "
          f"{len(contexts)} requests ({args.items} items x {args.choices} choices), {n_tokens} tokens; "
          f"torch threads {torch.get_num_threads()}")

    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=args.batch_size, device="cpu")
    requests = [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(zip(contexts, conts))]
    start = time.perf_counter()
    theirs = hflm.loglikelihood(requests, disable_tqdm=True)
    t_theirs = time.perf_counter() - start

    start = time.perf_counter()
    ours = score(lm, contexts, conts, batch_size=args.batch_size)
    t_ours = time.perf_counter() - start

    delta = max(abs(o.logprob - t[0]) for o, t in zip(ours, theirs))
    greedy_agree = sum(o.is_greedy == bool(t[1]) for o, t in zip(ours, theirs)) / len(ours)
    figures = {"requests": len(contexts), "items": args.items, "lm_eval_req_per_s": len(contexts) / t_theirs,
               "underdog_req_per_s": len(contexts) / t_ours, "speedup": t_theirs / t_ours,
               "max_abs_delta_logprob": delta, "is_greedy_agreement": greedy_agree,
               "lm_eval_seconds": t_theirs, "underdog_seconds": t_ours}
    print(f"lm-eval HFLM : {figures['lm_eval_req_per_s']:8.1f} req/s ({t_theirs:.1f}s)")
    print(f"underdog     : {figures['underdog_req_per_s']:8.1f} req/s ({t_ours:.1f}s)")
    print(f"speedup {figures['speedup']:.2f}x; max |delta log-prob| {delta:.2e}; is_greedy agreement "
          f"{greedy_agree:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
