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
    from underdog.files import check_output_dir
    from underdog.io import write_jsonl
    from underdog.lm import load
    from underdog.runs import Run, seed_everything
    from underdog.tasks.choice import check_choices_fit, evaluate_choices, read_choice_file

    cfg = build_config(ScoreRecipe, {"model": args.model, "data": args.data, "out": args.out,
                                     "batch_size": args.batch_size, "device": args.device, "dtype": args.dtype})
    check_output_dir(cfg.out)  # every input checked before anything is written
    items = read_choice_file(cfg.data, max_line_bytes=cfg.max_line_bytes)
    lm = load(cfg.model, dtype=cfg.dtype, device=cfg.device, allow_pickle=args.allow_pickle)
    check_choices_fit(lm, items)
    seed_everything(cfg.seed)
    run = Run(cfg.out, cfg.model_dump())
    start = time.time()
    results = evaluate_choices(lm, items, batch_size=cfg.batch_size, progress=True)
    elapsed = time.time() - start
    write_jsonl(run.dir / "items.jsonl", [r.as_dict() for r in results])
    acc = mean_with_ci([r.correct for r in results], seed=cfg.seed)
    run.timing["score"] = round(elapsed, 3)
    run.write_results("score", cfg.model, str(cfg.data), {"accuracy": acc},
                      extra={"timing": {"seconds": elapsed, "items_per_second": len(items) / max(elapsed, 1e-9)},
                             "truncated_contexts": sum(r.truncated for r in results)})
    print(f"accuracy {acc['value']:.4f} (95% CI {acc['ci95'][0]:.4f}-{acc['ci95'][1]:.4f}) on {len(items)} items "
          f"in {elapsed:.1f}s -> {run.dir / 'results.json'}")
    return 0


def cmd_pretrain(args: argparse.Namespace) -> int:
    from underdog.config import load_config
    from underdog.files import check_output_dir
    from underdog.pretrain.recipe import PretrainRecipe, run_pretrain

    overrides = list(args.overrides)
    if args.recipe and "=" in args.recipe and not Path(args.recipe).is_file():
        overrides.insert(0, args.recipe)  # `underdog pretrain tokens=1000000`: no recipe, only overrides
        args.recipe = None
    recipe = load_config(PretrainRecipe, args.recipe, overrides)
    check_output_dir(recipe.out)
    run_pretrain(recipe, command=" ".join(["underdog pretrain", *([args.recipe] if args.recipe else []), *overrides]))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:

    from underdog.files import atomic_write_json, check_output_file
    from underdog.lm import load
    from underdog.pretrain.probe import ComparatorProbe, IclProbe, LookupProbe, name_probes
    from underdog.world import SPLITS

    lo, _, hi = args.lines.partition("-")
    if not (lo.isdigit() and (hi or lo).isdigit() and 1 <= int(lo) <= int(hi or lo)):
        raise UnderdogError(f"--lines takes N or LO-HI stated lines a unit (1 or more), got {args.lines!r}")
    lines = (int(lo), int(hi or lo))
    if args.out:
        check_output_file(args.out)
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
        atomic_write_json(args.out, report)
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
    from underdog.files import check_output_dir
    from underdog.world import make_world, write_world

    check_output_dir(args.out)
    try:
        world = make_world(args.seed, pool=args.pool, **world_sizes(args.size))
    except ValueError as e:
        raise UnderdogError(f"--size: {e}") from None
    out = write_world(world, args.out)
    print(f"world seed {args.seed}: {len(world.documents)} documents, questions per split {world.counts()} -> {out}")
    return 0


def _kinds(annotation) -> list:
    """The types a field admits: the members of a union (None left out), or the annotation itself."""
    import types
    import typing

    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [a for a in typing.get_args(annotation) if a is not type(None)]
    return [annotation]


def study_flags(parser: argparse.ArgumentParser, recipe_class) -> None:
    """One ``--field`` flag per top-level field of a study's recipe (nested sections: ``section.key=value``).
    A flag is shorthand for the override ``field=value``: both go through the same parser and validation."""
    import typing

    for name, info in recipe_class.model_fields.items():
        if info.exclude:
            continue  # not a setting of this study (e.g. train's output_dir: its run folder is `out`)
        kinds = _kinds(info.annotation)
        if any(hasattr(k, "model_fields") for k in kinds) or any(typing.get_origin(k) is dict for k in kinds):
            continue  # a section or a mapping: key=value overrides only
        flag = "--" + name.replace("_", "-")
        default = info.default if info.default is not None else "none"
        if kinds == [bool]:
            parser.add_argument(flag, dest=f"field:{name}", action=argparse.BooleanOptionalAction, default=None,
                                help=f"(default {default})")
        else:
            is_list = any(typing.get_origin(k) is list for k in kinds)
            parser.add_argument(flag, dest=f"field:{name}", metavar="A,B" if is_list else "VALUE",
                                help=f"(default {default})" + (" comma-separated" if is_list else ""))


def flag_overrides(args: argparse.Namespace, recipe_class) -> list[str]:
    """The ``--field`` flags given on the command line as ``field=value`` overrides."""
    import typing

    out = []
    for key, value in vars(args).items():
        if not key.startswith("field:") or value is None:
            continue
        name = key.split(":", 1)[1]
        is_list = any(typing.get_origin(k) is list for k in _kinds(recipe_class.model_fields[name].annotation))
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif is_list and not value.startswith("["):
            value = "[" + value + "]"  # "none,icl" -> the YAML list [none, icl]
        out.append(f"{name}={value}")
    return out


def run_study(name: str, data: dict, overrides: list[str]) -> dict:
    """Validate a study's recipe (YAML mapping + overrides), check its output folder, run it."""
    from underdog.config import build_config
    from underdog.files import check_output_dir
    from underdog.methods import get_study

    study = get_study(name)
    recipe = build_config(study.Recipe, data, overrides)
    if getattr(recipe, "out", None):
        check_output_dir(recipe.out)
    return study.run(recipe, log=print)


def print_outcome(results: dict, out: str | None) -> None:
    """A study's last lines: its verdict, and the path of its report (last, so it does not scroll away)."""
    from underdog.report.verdict import verdict_line

    line = verdict_line(results.get("verdict"))
    if line:
        print(line)
    if out:
        print(f"report: {Path(out, 'report.md')}  results: {Path(out, 'results.json')}")


def cmd_study(args: argparse.Namespace) -> int:
    from underdog.config import read_yaml
    from underdog.methods import get_study

    recipe_class = get_study(args.command).Recipe
    data = read_yaml(args.recipe) if args.recipe else {}
    method = data.pop("method", args.command)
    if method != args.command:
        raise UnderdogError(f"{args.recipe}: recipe is for method {method!r}, not {args.command!r} "
                            f"(run it with `underdog run {args.recipe}`)")
    results = run_study(args.command, data, flag_overrides(args, recipe_class) + list(args.overrides))
    print_outcome(results, results.get("config", {}).get("out"))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from underdog.config import read_yaml
    from underdog.methods import STUDIES

    data = read_yaml(args.recipe)
    method = data.pop("method", None)
    if method is None:
        raise UnderdogError(f"{args.recipe}: no `method:` key; known methods: {', '.join(STUDIES)}")
    results = run_study(str(method), data, list(args.overrides))
    print_outcome(results, results.get("config", {}).get("out"))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from underdog.report.verdict import rebuild_reports

    for path in rebuild_reports(args.dirs):
        print(f"report: {path}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from underdog.eval.paired import compare_runs, comparison_table
    from underdog.files import atomic_write_json, check_output_file

    if args.out:
        check_output_file(args.out)
    result = compare_runs(args.a, args.b, args.method)
    print(f"B - A, method {args.method}, paired over the same questions of {len(args.a)} world(s)")
    print(comparison_table(result))
    if args.out:
        atomic_write_json(args.out, result)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from underdog.tasks.qa import convert

    n = convert(args.format, args.input, args.output)
    print(f"{n} questions -> {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from underdog.demo import run_demo
    from underdog.files import check_output_dir

    check_output_dir(args.out)
    run_demo(args.out, model=args.model, seed=args.seed, quick=args.quick, studies=args.studies)
    return 0


def study_subcommand(argv: list[str]) -> int | None:
    """``underdog <study> <action> ...`` for a study's own ``COMMANDS`` (e.g. ``underdog scale fit``); None when
    argv is not such a call."""
    from underdog.methods import STUDIES

    if len(argv) < 2 or argv[0] not in STUDIES or argv[1].startswith("-") or "=" in argv[1]:
        return None
    commands = getattr(STUDIES[argv[0]].load(), "COMMANDS", {})
    if argv[1] not in commands:
        return None
    try:
        return commands[argv[1]](argv[2:])
    except UnderdogError as e:
        print(f"underdog {argv[0]} {argv[1]}: error: {e}", file=sys.stderr)
        return 2


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; ``command`` (the first argument) decides which study's flags are built (importing it)."""
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
    p.add_argument("--studies", help="comma-separated subset of the studies (default: every study in the demo)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("pretrain", help="pretrain the built-in base model from scratch (resumable)")
    p.add_argument("recipe", nargs="?", help="recipe YAML (default: recipes/lineage/pretrain.yaml)")
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

    p = sub.add_parser("compare", help="paired accuracy difference of two models' generalization runs, by split")
    p.add_argument("--a", nargs="+", required=True, help="run folders of model A, one per world")
    p.add_argument("--b", nargs="+", required=True, help="run folders of model B, the same worlds in the same order")
    p.add_argument("--method", default="icl", help="which method's answers to compare (default icl)")
    p.add_argument("--out", help="also write the comparison as JSON here")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("data", help="data tools: convert SQuAD / TriviaQA / CoQA files to QA JSONL")
    data_sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    c = data_sub.add_parser("convert", help="convert a local SQuAD v1.1 / TriviaQA rc / CoQA JSON file")
    c.add_argument("--format", required=True, choices=["squad", "triviaqa", "coqa"])
    c.add_argument("input", help="the source JSON file")
    c.add_argument("output", help="the QA JSONL file to write")
    c.set_defaults(func=cmd_data_convert)

    p = sub.add_parser("run", help="run a study from its recipe: the YAML's `method:` key names it")
    p.add_argument("recipe", help="recipe YAML, e.g. recipes/aspire.yaml")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. seed=3 selfeval.epochs=6")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("report", help="rebuild report.md and plots of runs from their results.json; the verdict page")
    p.add_argument("dirs", nargs="+", help="run folders (a demo folder, a study run, or a folder of runs)")
    p.set_defaults(func=cmd_report)

    from underdog.methods import STUDIES

    for study in STUDIES.values():
        p = sub.add_parser(study.name, help=study.help, description=study.help + ". Every recipe field is a flag "
                           "(--field VALUE) or an override (field=VALUE, section.key=VALUE); --recipe loads a YAML.")
        if study.name == command:  # the study's own flags (importing it) only when it is the command
            p.add_argument("--recipe", help="recipe YAML (optional; e.g. recipes/<study>.yaml)")
            study_flags(p, study.load().Recipe)
            p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="overrides, e.g. train.lr=1e-3")
        p.set_defaults(func=cmd_study)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        command = next((a for a in argv if not a.startswith("-")), None)
        study_command = study_subcommand(argv)
        if study_command is not None:
            return study_command
        parser = build_parser(command)
    except UnderdogError as e:
        print(f"underdog: error: {e}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except UnderdogError as e:
        from underdog.runs import discard_unfinished_runs

        discard_unfinished_runs()  # a bad input leaves nothing behind
        print(f"underdog {args.command}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file system problem no check caught: still one line, named
        print(f"underdog {args.command}: error: {e.strerror or e} ({e.filename or 'file system'})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
