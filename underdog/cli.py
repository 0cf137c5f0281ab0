"""The ``underdog`` command line: parses arguments, validates configs, and dispatches to the layers below.

Every user error (bad file, bad config, missing model) is an ``UnderdogError``: printed as one line on stderr,
exit code 2, nothing written.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from underdog import UnderdogError, __version__


def cmd_score(args: argparse.Namespace) -> int:
    from underdog.config import ScoreRecipe, build_config
    from underdog.eval.metrics import mean_with_ci
    from underdog.lm import load
    from underdog.runs import Run, seed_everything
    from underdog.tasks.choice import evaluate_choices, read_choice_file
    from underdog.tasks.io import write_jsonl

    cfg = build_config(ScoreRecipe, {"model": args.model, "data": args.data, "out": args.out,
                                     "batch_size": args.batch_size, "device": args.device, "dtype": args.dtype})
    items = read_choice_file(cfg.data)  # validate before anything is written
    lm = load(cfg.model, dtype=cfg.dtype, device=cfg.device, allow_pickle=args.allow_pickle)
    seed_everything(cfg.seed)
    run = Run(cfg.out, cfg.model_dump())
    start = time.time()
    results = evaluate_choices(lm, items, batch_size=cfg.batch_size, progress=True)
    elapsed = time.time() - start
    write_jsonl(run.dir / "items.jsonl", [r.as_dict() for r in results])
    acc = mean_with_ci([r.correct for r in results], seed=cfg.seed)
    run.timing["score"] = round(elapsed, 3)
    run.write_results("score", cfg.model, str(cfg.data), {"accuracy": acc},
                      extra={"timing": {"seconds": elapsed, "items_per_second": len(items) / max(elapsed, 1e-9)}})
    print(f"accuracy {acc['value']:.4f} (95% CI {acc['ci95'][0]:.4f}-{acc['ci95'][1]:.4f}) on {len(items)} items "
          f"in {elapsed:.1f}s -> {run.dir / 'results.json'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="underdog", description="Make small language models rival big ones.")
    parser.add_argument("--version", action="version", version=f"underdog {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("score", help="score a multiple-choice JSONL file and report accuracy")
    p.add_argument("--model", default="builtin", help="model directory or 'builtin' (default)")
    p.add_argument("--data", required=True, help='JSONL: {"id", "context", "choices": [...], "answer": index}')
    p.add_argument("--out", required=True, help="output directory (results.json, items.jsonl)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--allow-pickle", action="store_true", help="allow loading pickled (.bin) weights you trust")
    p.set_defaults(func=cmd_score)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UnderdogError as e:
        print(f"underdog {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


def _path(p: str) -> Path:
    return Path(p).expanduser()


if __name__ == "__main__":
    sys.exit(main())
