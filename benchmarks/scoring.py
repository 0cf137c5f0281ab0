"""Benchmark: multiple-choice scoring, underdog against lm-evaluation-harness ``HFLM.loglikelihood``.

Two cases, measured in one run, each on the same model, requests and batch size for both:

- ``20M``: a ~20M-parameter Llama with a BPE tokenizer, N items x 4 choices, contexts of ~60-200 tokens (as in
  in-context evaluation), scored with ``underdog.lm.score``.
- ``small``: a 3-layer, 96-wide Llama with a word-level tokenizer, N items of 2-5 choices of 1-4 tokens after
  contexts of 3-60 tokens, scored with ``tasks.choice.evaluate_choices`` (what ``underdog score`` runs, so its
  time is the command's minus start-up).

Each side runs ``--repeats`` times, alternating; the ratio is lm-eval's best time over underdog's best (the
least disturbed run on a shared machine), and every time is printed. Both sides' log-probs must agree within
1e-4. The load average is printed before and after: on a busy machine the figures are noisier and lower.

    python benchmarks/scoring.py [--items 500] [--batch-size 32] [--repeats 3] [--threads T] [--cases 20M,small]
                                 [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_lm, build_small_lm, text  # noqa: E402


def _case_20m(items: int, rng: random.Random):
    """(lm, contexts, choices, label) of the ~20M-parameter case: 4 choices after a long context."""
    lm = build_lm()
    contexts = [text(rng, rng.randint(40, 150)) for _ in range(items)]
    choices = [[text(rng, rng.randint(1, 4)) for _ in range(4)] for _ in range(items)]
    return lm, contexts, choices


def _case_small(items: int, rng: random.Random):
    """The small-model, short-item case: one word is one token, so lengths below are in tokens (BOS included)."""
    lm = build_small_lm()
    contexts = [text(rng, rng.randint(2, 59)) for _ in range(items)]
    choices = [[text(rng, rng.randint(1, 4)) for _ in range(rng.randint(2, 5))] for _ in range(items)]
    return lm, contexts, choices


CASES = {"20M": _case_20m, "small": _case_small}


def run_case(name: str, items: int, batch_size: int, repeats: int) -> dict:
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    from underdog.lm import score
    from underdog.tasks.choice import ChoiceItem, evaluate_choices

    lm, contexts, choices = CASES[name](items, random.Random(0))
    flat_ctx = [c for c, opts in zip(contexts, choices) for _ in opts]
    flat_cont = [" " + o for opts in choices for o in opts]
    n_tokens = sum(len(lm.tokenizer.encode(c + x)) for c, x in zip(flat_ctx, flat_cont))
    print(f"[{name}] {lm.info['parameters'] / 1e6:.2f}M parameters (Llama, built in code); {len(flat_ctx)} "
          f"requests ({items} items), {n_tokens} tokens; batch size {batch_size}; torch threads "
          f"{torch.get_num_threads()}", flush=True)

    hflm = HFLM(pretrained=lm.model, tokenizer=lm.tokenizer, batch_size=batch_size, device="cpu")
    requests = [Instance("loglikelihood", {}, (c, x), i) for i, (c, x) in enumerate(zip(flat_ctx, flat_cont))]
    choice_items = [ChoiceItem(str(i), c, list(opts), 0, {}) for i, (c, opts) in enumerate(zip(contexts, choices))]

    def ours() -> list[float]:
        if name == "small":  # the `underdog score` path
            return [lp for r in evaluate_choices(lm, choice_items, batch_size=batch_size) for lp in r.logprobs]
        return [s.logprob for s in score(lm, flat_ctx, flat_cont, batch_size=batch_size)]

    t_theirs, t_ours = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        theirs = hflm.loglikelihood(requests, disable_tqdm=True)
        t_theirs.append(time.perf_counter() - start)
        start = time.perf_counter()
        mine = ours()
        t_ours.append(time.perf_counter() - start)
    delta = max(abs(o - t[0]) for o, t in zip(mine, theirs))
    best_theirs, best_ours = min(t_theirs), min(t_ours)
    figures = {"case": name, "requests": len(flat_ctx), "items": items, "tokens": n_tokens,
               "parameters": lm.info["parameters"], "lm_eval_seconds": t_theirs, "underdog_seconds": t_ours,
               "lm_eval_req_per_s": len(flat_ctx) / best_theirs, "underdog_req_per_s": len(flat_ctx) / best_ours,
               "speedup": best_theirs / best_ours, "max_abs_delta_logprob": delta}
    print(f"[{name}] lm-eval HFLM : {figures['lm_eval_req_per_s']:8.1f} req/s (runs "
          f"{', '.join(f'{t:.2f}' for t in t_theirs)} s)")
    print(f"[{name}] underdog     : {figures['underdog_req_per_s']:8.1f} req/s (runs "
          f"{', '.join(f'{t:.2f}' for t in t_ours)} s)")
    print(f"[{name}] speedup {figures['speedup']:.2f}x; max |delta log-prob| {delta:.2e}", flush=True)
    if delta > 1e-4:
        raise SystemExit(f"[{name}] underdog and lm-eval disagree by {delta:.2e} (> 1e-4)")
    return figures


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    ap.add_argument("--cases", default="20M,small", help=f"comma-separated, from {', '.join(CASES)}")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    names = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(names) - set(CASES))
    if unknown:
        ap.error(f"unknown case(s) {unknown}; choose from {list(CASES)}")

    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    results = [run_case(n, args.items, args.batch_size, args.repeats) for n in names]
    load_after = os.getloadavg()
    print(f"load average (1/5/15 min) before {'/'.join(f'{x:.1f}' for x in load_before)}, after "
          f"{'/'.join(f'{x:.1f}' for x in load_after)} on {os.cpu_count()} cores")
    print("speedup over lm-eval: " + ", ".join(f"{r['case']} {r['speedup']:.2f}x" for r in results))
    if args.json:
        Path(args.json).write_text(json.dumps({"cases": results, "load_before": load_before,
                                               "load_after": load_after, "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
