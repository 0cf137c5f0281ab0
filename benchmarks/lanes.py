"""Benchmark: the generalization study's fine-tuning arms one after another (all threads each) vs two at a time
in worker processes (``Run.stages_in_lanes``, threads split between them).

Same model (the built-in one), same data (the seed-7 world's training sentences), four arms of
``--steps`` steps each, as ``underdog generalization`` trains them (batch 8 x 128 packed tokens). Prints both
wall times, the ratio, and the largest difference in final loss between the two ways (threads change float
summation order, nothing else).

    python benchmarks/lanes.py [--steps 150] [--arms 4]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

import torch


def train_arm(examples: list[dict], steps: int, seed: int, tmp: Path) -> dict:
    from underdog.methods.generalization import FINETUNE
    from underdog.methods.parts.finetune import finetune

    _, summary = finetune("builtin", examples, FINETUNE.model_copy(update={"max_steps": steps}), seed=seed, device="cpu")
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--arms", type=int, default=4)
    ap.add_argument("--json")
    args = ap.parse_args()

    from underdog.methods.parts.finetune import training_examples
    from underdog.runs import Run
    from underdog.world import make_world

    examples = training_examples(make_world(7, pool="eval").documents, "independent")
    jobs = [(f"arm{i}", {"arm": i}, partial(train_arm, examples, args.steps, i)) for i in range(args.arms)]
    print(f"{args.arms} arms x {args.steps} steps of 8x128 tokens, builtin; torch threads {torch.get_num_threads()}")
    seconds, summaries = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for lanes in (1, 2):
            start = time.perf_counter()
            summaries[lanes] = Run(Path(tmp) / f"lanes{lanes}", log=lambda m: None).stages_in_lanes(jobs, lanes)
            seconds[lanes] = time.perf_counter() - start
    tokens = sum(s["tokens"] for s in summaries[1].values())
    loss_gap = max(abs(summaries[1][n]["final_loss"] - summaries[2][n]["final_loss"]) for n, _, _ in jobs)
    figures = {"arms": args.arms, "steps": args.steps, "tokens": tokens, "sequential_seconds": seconds[1],
               "lanes_seconds": seconds[2], "sequential_tokens_per_s": tokens / seconds[1],
               "lanes_tokens_per_s": tokens / seconds[2], "speedup": seconds[1] / seconds[2],
               "max_final_loss_difference": loss_gap}
    print(f"one at a time ({torch.get_num_threads()} threads): {figures['sequential_tokens_per_s']:8.0f} tok/s "
          f"({seconds[1]:.1f}s)")
    print(f"two lanes (worker processes)  : {figures['lanes_tokens_per_s']:8.0f} tok/s ({seconds[2]:.1f}s, "
          "including starting the workers)")
    print(f"speedup {figures['speedup']:.2f}x; largest final-loss difference {loss_gap:.2e}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
