"""Benchmark: building a pretraining mix in one process vs with its worlds built in worker processes
(``pretraining_texts(..., workers=N)``, which ``underdog pretrain`` uses with one worker per core).

Same seed, same mix (the stage-7 recipe's, ``recipes/lineage/pretrain-continue-7.yaml``), same number of texts; the
two lists of texts are checked to be identical. Prints both wall times, texts/s and the ratio.

    python benchmarks/pretrain_data.py [--texts 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json")
    args = ap.parse_args()

    from underdog.config import load_config
    from underdog.pretrain.recipe import PretrainRecipe
    from underdog.world.episodes import pretraining_texts

    recipe = Path(__file__).resolve().parents[1] / "recipes" / "pretrain-continue-7.yaml"
    mix = load_config(PretrainRecipe, recipe).mix
    seconds, texts = {}, {}
    for workers in (1, args.workers):
        start = time.perf_counter()
        texts[workers] = pretraining_texts(11, args.texts, mix, workers=workers)
        seconds[workers] = time.perf_counter() - start
    assert texts[1] == texts[args.workers], "worker processes changed the texts"
    figures = {"texts": args.texts, "workers": args.workers, "one_process_seconds": seconds[1],
               "workers_seconds": seconds[args.workers], "speedup": seconds[1] / seconds[args.workers]}
    print(f"{args.texts} texts of the stage-7 mix; identical either way")
    print(f"one process      : {args.texts / seconds[1]:7.1f} texts/s ({seconds[1]:.1f}s)")
    print(f"{args.workers} world workers : {args.texts / seconds[args.workers]:7.1f} texts/s "
          f"({seconds[args.workers]:.1f}s, including starting the workers)")
    print(f"speedup {figures['speedup']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
