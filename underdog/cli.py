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


def cmd_pretrain(args: argparse.Namespace) -> int:
    from underdog.config import load_config
    from underdog.pretrain.recipe import PretrainRecipe, run_pretrain

    overrides = list(args.overrides)
    if args.recipe and "=" in args.recipe and not Path(args.recipe).is_file():
        overrides.insert(0, args.recipe)  # `underdog pretrain tokens=1000000`: no recipe, only overrides
        args.recipe = None
    recipe = load_config(PretrainRecipe, args.recipe, overrides)
    run_pretrain(recipe, command=" ".join(["underdog pretrain", *([args.recipe] if args.recipe else []), *overrides]))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    import json

    from underdog.lm import load
    from underdog.pretrain.probe import ComparatorProbe, IclProbe, LookupProbe, name_probes
    from underdog.world import SPLITS

    lo, _, hi = args.lines.partition("-")
    if not (lo.isdigit() and (hi or lo).isdigit() and 1 <= int(lo) <= int(hi or lo)):
        raise UnderdogError(f"--lines takes N or LO-HI stated lines a unit (1 or more), got {args.lines!r}")
    lines = (int(lo), int(hi or lo))
    lm = load(args.model, allow_pickle=args.allow_pickle)
    probe = IclProbe(seed=99_001, per_split=args.per_split, splits=SPLITS)
    correct = probe.answers(lm)
    report = {"model": args.model, "icl": probe.accuracy(correct), "icl_by_kind": probe.accuracy(correct, by_kind=True),
              "lookup": LookupProbe()(lm), "comparator": ComparatorProbe(units=args.units, lines=lines)(lm),
              "comparator_lines": list(lines)}
    names = name_probes(chain_units=args.chain_units, pair_units=300)
    report |= {key: name_probe(lm) for key, name_probe in names.items()}
    for key in ("icl", "lookup", "comparator", *names):
        print(f"{key:12s} " + " ".join(f"{k} {v:.3f}" for k, v in report[key].items()))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    return 0


def world_sizes(pairs: list[str]) -> dict[str, int | float]:
    """``--size KEY=VALUE`` pairs as world sizes, each value of its default's type (``p_more=1`` is 1.0)."""
    from underdog.world import DEFAULT_SIZES

    sizes: dict[str, int | float] = {}
    for pair in pairs:
        key, eq, value = pair.partition("=")
        if key not in DEFAULT_SIZES:
            raise UnderdogError(f"--size {pair!r}: unknown world size {key!r}; known: {', '.join(DEFAULT_SIZES)}")
        kind = type(DEFAULT_SIZES[key])
        try:
            sizes[key] = kind(value if eq else "")
        except ValueError:
            raise UnderdogError(f"--size {pair!r}: {key} takes a{'n integer' if kind is int else ' number'}, "
                                f"e.g. {key}={DEFAULT_SIZES[key]}") from None
    return sizes


def cmd_world(args: argparse.Namespace) -> int:
    from underdog.world import make_world, write_world

    try:
        world = make_world(args.seed, pool=args.pool, **world_sizes(args.size))
    except ValueError as e:
        raise UnderdogError(f"--size: {e}") from None
    out = write_world(world, args.out)
    print(f"world seed {args.seed}: {len(world.documents)} documents, questions per split {world.counts()} -> {out}")
    return 0


def _run_study(args: argparse.Namespace, recipe_class, runner, given: dict) -> int:
    """Validate ``--recipe`` + the given flags + ``--set`` overrides into ``recipe_class``, run it, print the
    report. Flags left unset (None) keep the recipe's values."""
    from underdog.config import load_config

    overrides = [f"{k}={v}" for k, v in given.items() if v is not None] + list(args.set)
    recipe = load_config(recipe_class, args.recipe, overrides)
    results = runner(recipe)
    print(Path(recipe.out, "report.md").read_text())
    return 0 if results else 1


def cmd_generalization(args: argparse.Namespace) -> int:
    from underdog.methods.generalization import GeneralizationRecipe, run_generalization

    methods = f"[{args.methods}]" if args.methods else None  # a YAML list: "none,icl" -> ["none", "icl"]
    return _run_study(args, GeneralizationRecipe, run_generalization, {
        "model": args.model, "seed": args.seed, "world": args.world, "out": args.out, "methods": methods,
        "max_per_split": args.max_per_split, "icl_budget": args.icl_budget, "icl_context": args.icl_context})


def cmd_compare(args: argparse.Namespace) -> int:
    from underdog.eval.paired import compare_runs, comparison_table
    from underdog.runs import atomic_write_json

    result = compare_runs(args.a, args.b, args.method)
    print(f"B - A, method {args.method}, paired over the same questions of {len(args.a)} world(s)")
    print(comparison_table(result))
    if args.out:
        atomic_write_json(args.out, result)
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from underdog.methods.explain import ExplainRecipe, run_explain

    return _run_study(args, ExplainRecipe, run_explain, {
        "teacher": args.teacher, "student": args.student, "tasks": args.tasks, "seed": args.seed, "out": args.out,
        "strategies_dir": args.strategies_dir, "select_by": args.select_by})


def cmd_aspire(args: argparse.Namespace) -> int:
    from underdog.methods.aspire import AspireRecipe, run_aspire

    return _run_study(args, AspireRecipe, run_aspire, {
        "model": args.model, "task": args.task, "seed": args.seed, "train": args.train, "dev": args.dev,
        "test": args.test, "out": args.out, "compare_model": args.compare_model})


def cmd_data_convert(args: argparse.Namespace) -> int:
    from underdog.tasks.qa import convert

    n = convert(args.format, args.input, args.output)
    print(f"{n} questions -> {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from underdog.demo import run_demo

    run_demo(args.out, model=args.model, seed=args.seed, quick=args.quick)
    print(Path(args.out, "report.md").read_text())
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

    p = sub.add_parser("demo", help="run every study on the built-in model, offline (minutes on a CPU)")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--model", default="builtin")
    p.add_argument("--seed", type=int, default=2026, help="seed of the fresh evaluation world")
    p.add_argument("--quick", action="store_true", help="fewer questions (for a smoke test)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("pretrain", help="pretrain the built-in base model from scratch (resumable)")
    p.add_argument("recipe", nargs="?", help="recipe YAML (default: recipes/pretrain.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. tokens=1000000 model.hidden=128")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("probe", help="the pretraining probes on any model: ICL by split, lookup, comparator flip, chain")
    p.add_argument("--model", default="builtin", help="model directory or builtin / builtin-large")
    p.add_argument("--per-split", type=int, default=40, dest="per_split", help="ICL probe questions per split")
    p.add_argument("--units", type=int, default=100, help="units of the comparator probe")
    p.add_argument("--lines", default="1", help="stated lines a comparator unit: N or LO-HI (default 1)")
    p.add_argument("--chain-units", type=int, default=400, dest="chain_units",
                   help="comparison chains of the chain probe (its plain first step too)")
    p.add_argument("--out", help="write the figures to this JSON file too")
    p.add_argument("--allow-pickle", action="store_true", help="allow loading pickled (.bin) weights you trust")
    p.set_defaults(func=cmd_probe)

    p = sub.add_parser("world", help="write a synthetic world: documents.jsonl and questions.jsonl")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pool", choices=["eval", "pretrain"], default="eval")
    p.add_argument("--size", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override world sizes, e.g. p_more=1.0 (every comparison stated with 'more') n_families=10")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_world)

    p = sub.add_parser("generalization", help="ICL vs fine-tuning vs augmented fine-tuning, by split")
    p.add_argument("--recipe", help="recipe YAML (optional)")
    p.add_argument("--model", help="model directory or builtin / builtin-large")
    p.add_argument("--seed", type=int, help="world seed (evaluation pool)")
    p.add_argument("--world", help="folder with documents.jsonl and questions.jsonl (your own knowledge)")
    p.add_argument("--methods", help="comma-separated, e.g. none,icl")
    p.add_argument("--max-per-split", type=int, dest="max_per_split")
    p.add_argument("--icl-budget", type=int, dest="icl_budget")
    p.add_argument("--icl-context", choices=["retrieved", "documents", "support"], dest="icl_context",
                   help="what icl puts in context: the question's retrieved sentences (default), whole documents, "
                        "or (a diagnostic) only the sentences stating its support facts")
    p.add_argument("--out", help="run directory")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides")
    p.set_defaults(func=cmd_generalization)

    p = sub.add_parser("compare", help="paired accuracy difference of two models' generalization runs, by split")
    p.add_argument("--a", nargs="+", required=True, help="run folders of model A, one per world")
    p.add_argument("--b", nargs="+", required=True, help="run folders of model B, the same worlds in the same order")
    p.add_argument("--method", default="icl", help="which method's answers to compare (default icl)")
    p.add_argument("--out", help="also write the comparison as JSON here")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("aspire", help="ASPIRE selective prediction: learned self-evaluation vs baselines")
    p.add_argument("--recipe", help="recipe YAML (optional; e.g. recipes/aspire.yaml)")
    p.add_argument("--model", help="model directory or builtin")
    p.add_argument("--task", choices=["world-qa"], help="built-in task (instead of --train/--test files)")
    p.add_argument("--seed", type=int, help="world seed for --task world-qa, and the run's seed")
    p.add_argument("--train", help='QA JSONL: {"id", "question", "answers": [...], "context"?}')
    p.add_argument("--dev", help="QA JSONL for tuning alpha (optional)")
    p.add_argument("--test", help="QA JSONL to evaluate on")
    p.add_argument("--compare-model", dest="compare_model", help="second model, baselines only ('' for none)")
    p.add_argument("--out", help="run directory")
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides, e.g. selfeval.epochs=6")
    p.set_defaults(func=cmd_aspire)

    p = sub.add_parser("data", help="data tools: convert SQuAD / TriviaQA / CoQA files to QA JSONL")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = data_sub.add_parser("convert", help="convert a local SQuAD v1.1 / TriviaQA rc / CoQA JSON file")
    c.add_argument("--format", required=True, choices=["squad", "triviaqa", "coqa"])
    c.add_argument("input", help="the source JSON file")
    c.add_argument("output", help="the QA JSONL file to write")
    c.set_defaults(func=cmd_data_convert)

    p = sub.add_parser("explain", help="Orca 2 explanation tuning: teacher -> student, cautious reasoning")
    p.add_argument("--recipe", help="recipe YAML (optional; e.g. recipes/explain.yaml)")
    p.add_argument("--teacher", help="world | api | builtin | a local HF model directory")
    p.add_argument("--student", help="model directory or builtin")
    p.add_argument("--tasks", help="builtin, or a JSONL file of {id, prompt, answer, category?, split?}")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="run directory")
    p.add_argument("--strategies-dir", dest="strategies_dir", help="folder of your own <name>.txt strategies")
    p.add_argument("--select-by", dest="select_by", choices=["student", "teacher", "fixed"])
    p.add_argument("--set", nargs="*", default=[], help="extra key=value overrides, e.g. api.model=gpt-4o")
    p.set_defaults(func=cmd_explain)
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


if __name__ == "__main__":
    sys.exit(main())
