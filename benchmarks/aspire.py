"""Benchmark: ASPIRE's inference (answer + learned self-evaluation on the generation's KV cache) vs plain
generation, on the same world-QA test questions and model.

Baseline: ``underdog.lm.generate`` greedy (Hugging Face ``generate`` with a KV cache, stop at newline), i.e.
answering without any confidence score. ASPIRE: ``methods.parts.selfeval.decode`` (greedy with θp, every answer token
in the cache) followed by one short ``[θs] judgement`` pass on that cache. Also timed: the same judgement
without cache reuse (a second forward over prompt + answer + judgement), which is what a naive implementation
pays. θp and θs come from a finished ``underdog aspire`` run (``--run DIR``) or are random soft tokens (the
timing does not depend on their values). Goal: (generate + self-eval) / generate <= 1.3.

    python benchmarks/aspire.py [--model builtin] [--run runs/aspire] [--questions 300] [--batch-size 16]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from underdog.lm import load
from underdog.lm.generate import generate
from underdog.methods.parts.selfeval import SoftJudge, Tuned, decode, judge_tokens, suffix_logits, two_way
from underdog.tasks.qa import qa_prompt, world_qa


def timed(fn, repeat: int = 2) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="builtin")
    ap.add_argument("--run", help="a finished `underdog aspire` run directory (θp and θs); default: random")
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions; the fastest counts")
    ap.add_argument("--options", action="store_true", help="world-qa questions with their answer options")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    lm = load(args.model, device="cpu")
    hidden = lm.model.get_input_embeddings().weight.shape[1]
    torch.manual_seed(0)
    prefix, judge = torch.randn(8, hidden) * 0.02, SoftJudge(torch.randn(4, hidden) * 0.02)
    if args.run:
        from safetensors.torch import load_file

        prefix = load_file(str(Path(args.run, "stages/tune/prefix.safetensors")))["prefix"]
        judge = SoftJudge.load(Path(args.run, "stages/selfeval/theta_s.safetensors"))
    tuned = Tuned(lm.model, lm.tokenizer, prefix)
    items = world_qa(0, n_train=1, n_dev=0, n_test=args.questions, options=args.options)["test"]
    texts = [qa_prompt(q) for q in items]
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = [[texts[i] for i in order[s:s + args.batch_size]] for s in range(0, len(order), args.batch_size)]
    jp, yes, no = judge_tokens(lm.tokenizer, " Correct or incorrect?", " Correct", " Incorrect")

    # plain generation: the library's HF path; soft prompt as a PEFT-free equivalent is not possible there, so
    # the baseline runs without θp (8 extra positions would only make it slower)
    def plain():
        return [generate(lm, b, max_new_tokens=args.max_new_tokens, stop=["\n"], batch_size=args.batch_size)
                for b in batches]

    def aspire(with_judge: bool = True):
        out = []
        with torch.no_grad():
            for b in batches:
                ids = [tuned.encode(t, special=True) for t in b]
                answers, state = decode(tuned, ids, max_new_tokens=args.max_new_tokens)
                score = two_way(suffix_logits(tuned, state, [[judge.soft, jp]] * len(b)), yes, no) \
                    if with_judge else None
                out.append((answers, score))
        return out

    def naive():  # judge with a second full forward, no cache reuse
        with torch.no_grad():
            for b, (answers, _) in zip(batches, decoded):
                ids = [tuned.encode(t, special=True) + a[0].token_ids for t, a in zip(b, answers)]
                from underdog.methods.parts.selfeval import prefill

                state, _ = prefill(tuned, ids)
                suffix_logits(tuned, state, [[judge.soft, jp]] * len(b))

    t_plain, _ = timed(plain, args.repeat)
    t_decode, decoded = timed(lambda: aspire(False), args.repeat)
    t_aspire, _ = timed(aspire, args.repeat)
    t_naive, _ = timed(naive, args.repeat)
    n_tokens = sum(len(a[0].token_ids) for answers, _ in decoded for a in answers)
    result = {"model": args.model, "questions": len(items), "threads": torch.get_num_threads(),
              "answer_tokens": n_tokens, "plain_generate_s": t_plain, "aspire_decode_s": t_decode,
              "aspire_decode_plus_selfeval_s": t_aspire, "naive_selfeval_extra_s": t_naive,
              "ratio_vs_plain_generate": t_aspire / t_plain, "ratio_vs_own_decode": t_aspire / t_decode,
              "naive_ratio_vs_plain_generate": (t_decode + t_naive) / t_plain}
    print(f"plain generation (underdog.lm.generate, greedy): {t_plain:.2f}s for {len(items)} questions")
    print(f"ASPIRE decode with θp:                            {t_decode:.2f}s")
    print(f"ASPIRE decode + self-evaluation on the cache:     {t_aspire:.2f}s "
          f"(self-eval {t_aspire - t_decode:+.2f}s)")
    print(f"self-evaluation without cache reuse (extra pass): {t_naive:.2f}s")
    print(f"ratio (generate + self-eval) / generate: {result['ratio_vs_plain_generate']:.2f} (goal <= 1.3); "
          f"vs own decode {result['ratio_vs_own_decode']:.2f}; without cache reuse "
          f"{result['naive_ratio_vs_plain_generate']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
