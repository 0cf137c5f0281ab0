"""`underdog scale`: a model family, sharp vs smooth metrics, and Chinchilla's law fitted to it.

Stages (cached, resumable): ``data`` (pretraining-mix texts to train on and held-out ones for the loss, and the
fixed evaluation questions of a fresh world), ``train-<size>`` (one per size of the default family,
``methods.scale_family.train_size``, two at a time in worker processes), ``eval-<model>`` (every model of
the family: loss and every task x metric per question, ``scale_family.evaluate_model``). A user's family
(``models``: local HF directories, ``tokens``: what each saw, else read from its pretraining logs) replaces the
trained one; ``join`` adds shipped models (``builtin``, ``builtin-large``), which are evaluated but kept out of
the law fit (another recipe and data). Then the analysis (``eval.emergence``): every point carries N (both
non-embedding and total parameters; the law and C = 6 N D use ``fit_params``), D and C; per task and metric the
sharpness score, the first scale above chance with a bootstrap CI, the p^L check on the names task, the gain of
k-shot over zero-shot prompting per model and of chain of thought over k-shot on the splits whose questions take
steps (``tasks.cot``), the law with bootstrap CIs, its compute-optimal frontier and the
leave-largest-out prediction. The verdict: ``small`` (default ``builtin``) with k-shot prompting vs it zero-shot
vs the largest model's best, on multiple-choice accuracy. ``COMMANDS["fit"]`` is ``underdog scale fit``.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, field_validator

from underdog import UnderdogError
from underdog.config import Strict
from underdog.eval import emergence as em
from underdog.eval.metrics import bootstrap_ci, mean_with_ci
from underdog.eval.verdict import verdict
from underdog.files import atomic_write_json
from underdog.io import check, read_jsonl
from underdog.lm.load import resolve_model_path
from underdog.methods import scale_family as fam
from underdog.report import write_report
from underdog.runs import Run, metric
from underdog.world.episodes import pretraining_texts

NAME = "scale"
DEMO_SECONDS = 32
MC_METRICS = {"accuracy": True, "logprob": True, "brier": False}  # name: higher is better
NAMES_METRICS = {"exact_match": True, "token_accuracy": True, "token_edit_distance": False, "logprob": True,
                 "token_prob": True}
DISCONTINUOUS = ("accuracy", "exact_match")


class Recipe(Strict):
    out: str = "runs/scale"
    seed: int = 0
    model: str = "builtin"  # tokenizer and architecture of the trained family
    device: str = "auto"
    quick: bool = False  # the demo's quick version (overrides sizes, budgets and question counts: QUICK)
    sizes: list[str] = ["16x1", "32x2", "48x2", "64x3", "96x4"]  # <hidden>x<layers> of the trained family
    train_tokens: int = Field(1_600_000, gt=0)  # the largest token budget
    budgets: int = Field(4, ge=1)  # checkpoints on a geometric grid (factor 2) up to train_tokens
    seq_len: int = Field(256, gt=16)  # training window (and the trained models' context)
    batch_size: int = Field(4, gt=0)  # 4 x 256: ~900 tokens a step, ~900 optimizer steps to the largest budget
    lr: float = Field(3e-3, gt=0)
    # Adam's learning rate scaled as 1/width above this hidden size (lr * lr_width / hidden); null: one lr for all
    lr_width: int | None = Field(None, gt=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    # > 0: each budget's model is annealed (a linear cooldown over this share of its steps, branched from the
    # constant-rate trunk: warmup-stable-decay); 0: the constant-rate run's model as it passes the budget
    cooldown: float = Field(0.2, ge=0, lt=1)
    models: list[str] = []  # a user's family of local HF directories instead of training one
    tokens: list[int] = []  # training tokens of each of `models` (else read from the model's pretraining logs)
    join: list[str] = ["builtin", "builtin-large"]  # shipped models evaluated with the family (not in the fit)
    small: str = "builtin"  # the verdict's small model (else the second-largest of the family)
    per_split: int = Field(40, gt=0)  # multiple-choice questions per split
    names: int = Field(40, gt=0)  # questions of the multi-token names task
    shots: int = Field(3, gt=0)  # k of k-shot
    icl_budget: int = Field(448, gt=32)  # prompt tokens (cut to the smallest window of the family less 64)
    eval_tokens: int = Field(40_000, gt=0)  # held-out tokens for the loss
    fit_params: Literal["non_embedding", "total"] = "non_embedding"
    n_boot: int = Field(100, ge=0)
    lanes: int = Field(2, gt=0)  # stages side by side in worker processes

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if not re.fullmatch(r"\d+x\d+", s) or fam.parse_size(s)[0] < 4]
        if bad:
            raise ValueError(f"size {bad[0]!r} is not <hidden>x<layers> (e.g. 64x3, hidden >= 4)")
        return v

    @field_validator("tokens")
    @classmethod
    def _tokens(cls, v: list[int]) -> list[int]:
        if any(t <= 0 for t in v):
            raise ValueError("tokens must be positive")
        return v


QUICK = {"sizes": ["16x1", "32x1", "48x2"], "train_tokens": 120_000, "budgets": 3, "per_split": 10, "names": 12,
         "eval_tokens": 8_000, "join": ["builtin"], "n_boot": 30, "seq_len": 256}


def demo_recipe(out: str, model: str, seed: int, quick: bool) -> Recipe:
    base = {"out": out, "model": model, "seed": seed, "small": model}
    if quick:
        return Recipe(**base, quick=True)
    return Recipe(**base, sizes=["16x1", "32x1", "32x2", "48x2"], train_tokens=200_000, budgets=3,
                  per_split=16, names=16, eval_tokens=10_000, join=["builtin"], n_boot=50, seq_len=256)


def _size_lr(recipe: Recipe, size: str) -> float:
    hidden = fam.parse_size(size)[0]
    return recipe.lr * min(1.0, recipe.lr_width / hidden) if recipe.lr_width else recipe.lr


def _budgets(recipe: Recipe) -> list[int]:
    return [int(recipe.train_tokens / 2 ** (recipe.budgets - 1 - i)) for i in range(recipe.budgets)]


def _history_tokens(path: Path) -> int | None:
    """Tokens a model saw: from its pretraining logs (every stage of a staged run), else its model card's total,
    else its pretraining summary (the last stage only)."""
    total = 0
    for log in sorted(path.glob("pretrain_log*.jsonl")):
        rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        total += max((r.get("tokens_seen", 0) for r in rows), default=0)
    if total:
        return total
    card = path / "MODEL_CARD.md"  # pretrain.card: "Training: 181,952,941 tokens in 16 stage(s)"
    found = re.search(r"Training: ([\d,]+) tokens", card.read_text(encoding="utf-8")) if card.is_file() else None
    if found:
        return int(found.group(1).replace(",", ""))
    summary = path / "pretrain_summary.json"
    return int(json.loads(summary.read_text())["tokens_seen"]) if summary.is_file() else None


def _short(tokens: int) -> str:
    """4096 -> "4.1k", 1600000 -> "1.6M": a checkpoint's name (3 significant figures)."""
    for unit, scale_ in (("M", 1e6), ("k", 1e3)):
        if tokens >= scale_:
            return f"{tokens / scale_:.3g}{unit}"
    return str(tokens)


def _members(recipe: Recipe, trained: dict) -> list[dict]:
    """Every model of the family: id, where it loads from, its training tokens and whether it joins the fit."""
    out = []
    for size, res in trained.items():
        for ck in res["checkpoints"]:
            out.append({"id": f"{size}@{_short(ck['tokens'])}", "model": ck["path"], "source": "trained",
                        "size": size, "tokens": ck["tokens"], "in_fit": True})
    if recipe.models and recipe.tokens and len(recipe.tokens) != len(recipe.models):
        raise UnderdogError(f"tokens: {len(recipe.tokens)} values for {len(recipe.models)} models")
    for i, model in enumerate(recipe.models):
        path = resolve_model_path(model)
        tokens = recipe.tokens[i] if recipe.tokens else _history_tokens(path)
        if tokens is None:
            raise UnderdogError(f"models: {model} has no pretraining log to count its tokens; give tokens=...")
        out.append({"id": path.name, "model": str(path), "source": "user", "size": None, "tokens": tokens,
                    "in_fit": True})
    for model in recipe.join:
        tokens = _history_tokens(resolve_model_path(model))
        out.append({"id": model, "model": model, "source": "shipped", "size": None, "tokens": tokens or 1,
                    "in_fit": False})
    ids = [m["id"] for m in out]
    if len(set(ids)) != len(ids):
        raise UnderdogError(f"two models of the family share the name {next(i for i in ids if ids.count(i) > 1)!r}")
    return out


def _chunks(text: str, tok, limit: int) -> list[str]:
    """``text`` cut at line ends into pieces of < ``limit`` tokens (a longer single line stays whole and is cut by
    the training loop), so that no training text is lost to the window."""
    out, lines, used = [], [], 0
    for line in text.split("\n"):
        n = len(tok.encode(line + "\n", add_special_tokens=False))
        if lines and used + n >= limit:
            out.append("\n".join(lines))
            lines, used = [], 0
        lines.append(line)
        used += n
    if lines and "".join(lines).strip():
        out.append("\n".join(lines))
    return out


def _data(tmp: Path, recipe: Recipe, tokenizer_model: str, budget: int) -> dict:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path(tokenizer_model))
    sample = pretraining_texts(recipe.seed + 500, 40)
    per_text = sum(len(tok.encode(t)) for t in sample) / len(sample)

    def workers(n: int) -> int:  # world-building processes pay off only for many texts
        return min(2, os.cpu_count() or 1) if n >= 1000 else 1

    rows = {}
    if not recipe.models:
        n = int(recipe.train_tokens / per_text * 1.1) + 8
        texts = pretraining_texts(recipe.seed, n, workers=workers(n))
        rows["train_texts"] = [c for t in texts for c in _chunks(t, tok, recipe.seq_len - 2)]
    n = int(recipe.eval_tokens / per_text) + 4
    held = pretraining_texts(recipe.seed + 77_777, n, workers=workers(n))
    rows["loss_texts"] = held  # each cut to budget + 64 tokens when scored (scale_family.held_out_loss)
    for name, texts in rows.items():
        (tmp / f"{name}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    questions = fam.eval_questions(90_000 + recipe.seed, recipe.per_split, recipe.names, recipe.shots)
    atomic_write_json(tmp / "questions.json", questions)
    return {name: len(texts) for name, texts in rows.items()}


def _window(model: str) -> int:
    cfg = json.loads((resolve_model_path(model) / "config.json").read_text())
    return int(next((cfg[k] for k in ("max_position_embeddings", "n_positions", "n_ctx") if k in cfg), 2048))


def _summaries(rows: Sequence[float], seed: int) -> dict:
    return mean_with_ci(rows, seed=seed)


def _point(member: dict, ev: dict, fit_params: str, seed: int) -> dict:
    n_fit = ev["params"][fit_params]
    metrics: dict = {}
    for shots, rows in ev["mc"].items():
        for split in fam.MC_SPLITS:
            mask = [s == split for s in ev["mc_split"]]
            for name, values in rows.items():
                vals = [v for v, m in zip(values, mask) if m]
                metrics.setdefault(f"{split}/{shots}", {})[name] = _summaries(vals, seed)
    if "cot" in ev:  # k-shot chain of thought, on the splits whose questions take steps
        splits = [ev["mc_split"][i] for i in ev["cot"]["index"]]
        for split in sorted(set(splits)):
            for name, values in ev["cot"]["rows"].items():
                vals = [v for v, s in zip(values, splits) if s == split]
                metrics.setdefault(f"{split}/k-shot-cot", {})[name] = _summaries(vals, seed)
    for name, values in ev["names"]["rows"].items():
        metrics.setdefault("names", {})[name] = _summaries(values, seed)
    return {**{k: member[k] for k in ("id", "source", "size", "tokens", "in_fit")},
            "params_total": ev["params"]["total"], "params_non_embedding": ev["params"]["non_embedding"],
            "train_flops": em.train_flops(n_fit, member["tokens"]),
            "train_flops_total_params": em.train_flops(ev["params"]["total"], member["tokens"]),
            "eval_flops": em.eval_flops(ev["params"]["total"], ev["eval_tokens"]), "loss": ev["loss"],
            "metrics": metrics}


def _task_rows(evals: list[dict], task: str, name: str) -> list[list[float]]:
    if task == "names":
        return [ev["names"]["rows"].get(name, []) for ev in evals]
    split, shots = task.split("/")
    return [[v for v, s in zip(ev["mc"][shots][name], ev["mc_split"]) if s == split] for ev in evals]


def _emergence(points: list[dict], evals: list[dict], seed: int, n_boot: int) -> dict:
    compute = [p["train_flops"] for p in points]
    out: dict = {}
    tasks = [f"{s}/0-shot" for s in fam.MC_SPLITS] + (["names"] if evals[0]["names"]["ids"] else [])
    for task in tasks:
        names = NAMES_METRICS if task == "names" else MC_METRICS
        out[task] = {}
        for name, higher in names.items():
            rows = _task_rows(evals, task, name)
            values = [float(np.mean(r)) for r in rows]
            disc = name in DISCONTINUOUS
            entry = em.emergence_score(compute, values, higher, margin=0.1 if disc else 0.0)
            entry["kind"] = "discontinuous" if disc else "continuous"
            if disc and len({len(r) for r in rows}) == 1 and rows[0]:
                chance = 0.25 if name == "accuracy" else 0.0
                entry["first_above_chance"] = em.first_above_chance(compute, rows, chance, 0.05,
                                                                    n_boot=max(n_boot, 100), seed=seed)
                idx = entry["first_above_chance"]["index"]
                entry["first_above_chance"]["model"] = None if idx is None else points[idx]["id"]
            out[task][name] = entry
        disc_name = "exact_match" if task == "names" else "accuracy"
        smooth = [n for n, e in out[task].items() if e["kind"] == "continuous" and e["emergent"] == "no"]
        out[task]["summary"] = {"emergent_discontinuous": out[task][disc_name]["emergent"],
                                "smooth_continuous": smooth}
    return out


def _prompting(points: list[dict], evals: list[dict], seed: int) -> dict:
    out: dict = {}
    for split in fam.MC_SPLITS:
        out[split] = []
        for p, ev in zip(points, evals):
            zero = np.array(_task_rows([ev], f"{split}/0-shot", "accuracy")[0])
            k = np.array(_task_rows([ev], f"{split}/k-shot", "accuracy")[0])
            gain = k - zero
            out[split].append({"id": p["id"], "compute": p["train_flops"], "gain": float(gain.mean()),
                               "ci95": list(bootstrap_ci(gain, seed=seed))})
    for split in fam.MC_SPLITS:  # chain of thought: k-shot with the steps written out minus plain k-shot
        if not all("cot" in ev and split in {ev["mc_split"][i] for i in ev["cot"]["index"]} for ev in evals):
            continue
        out[f"{split} CoT"] = []
        for p, ev in zip(points, evals):
            gain = np.array([a - ev["mc"]["k-shot"]["accuracy"][i]
                             for a, i in zip(ev["cot"]["rows"]["accuracy"], ev["cot"]["index"])
                             if ev["mc_split"][i] == split])
            out[f"{split} CoT"].append({"id": p["id"], "compute": p["train_flops"], "gain": float(gain.mean()),
                                        "ci95": list(bootstrap_ci(gain, seed=seed))})
    return out


def _law(points: list[dict], fit_params: str, n_boot: int, seed: int) -> dict | None:
    fit_pts = [p for p in points if p["in_fit"]]
    n = [p[f"params_{fit_params}"] for p in fit_pts]
    if len(fit_pts) < 5 or len(set(n)) < 2:
        return {"skipped": f"{len(fit_pts)} points from {len(set(n))} sizes: the law needs >= 5 points and 2 sizes"}
    d, loss = [p["tokens"] for p in fit_pts], [p["loss"] for p in fit_pts]
    fit = em.fit_law(n, d, loss, n_boot=n_boot, seed=seed)
    out: dict = {"fit": fit.as_dict(), "params_used": fit_params, "points": len(fit_pts)}
    out["fitted"] = [{"id": p["id"], "predicted": float(fit.predict(p[f"params_{fit_params}"], p["tokens"]))}
                     for p in fit_pts]
    rest = [x for x in n if x < max(n)]
    if len(rest) >= 5 and len(set(rest)) >= 2:
        out["holdout"] = em.leave_largest_out(n, d, loss, seed=seed)
    c = [p["train_flops"] for p in fit_pts]
    try:
        out["frontier"] = [em.compute_optimal(fit, x) for x in np.geomspace(min(c), 100 * max(c), 8)]
    except ValueError as e:
        out["frontier"], out["frontier_note"] = [], str(e)
    return out


def _verdict(recipe: Recipe, points: list[dict], evals: list[dict]) -> dict | None:
    ids = [p["id"] for p in points]
    if len(points) < 2:
        return None
    small = ids.index(recipe.small) if recipe.small in ids else len(points) - 2
    large = len(points) - 1
    if small == large:
        small = large - 1

    def rows(i: int, shots: str) -> list[float]:
        return list(evals[i]["mc"][shots]["accuracy"])

    best = max(("0-shot", "k-shot"), key=lambda s: np.mean(rows(large, s)))
    return verdict("accuracy", (f"{ids[small]} + {recipe.shots}-shot", rows(small, "k-shot")),
                   (f"{ids[small]} 0-shot", rows(small, "0-shot")), (f"{ids[large]} {best}", rows(large, best)),
                   seed=recipe.seed)


def run(recipe: Recipe, log: Callable[[str], None] = print) -> dict:
    if recipe.quick:
        recipe = recipe.model_copy(update=QUICK)
    run_ = Run(recipe.out, recipe.model_dump(), log=log)
    if not recipe.models and not recipe.sizes:
        raise UnderdogError("sizes: empty, and no models given: the family has no member")
    tokenizer_model = recipe.models[0] if recipe.models else recipe.model
    windows = [_window(m) for m in recipe.models + recipe.join] + ([] if recipe.models else [recipe.seq_len])
    budget = max(32, min([recipe.icl_budget] + [w - 64 for w in windows]))
    data_inputs = {k: getattr(recipe, k) for k in ("seed", "train_tokens", "seq_len", "per_split", "names",
                                                   "shots", "eval_tokens", "models")} | {"budget": budget,
                                                                                          "tok": tokenizer_model}
    run_.stage("data", data_inputs, functools.partial(_data, recipe=recipe, tokenizer_model=tokenizer_model,
                                                      budget=budget))
    data = run_.stage_dir("data")
    trained: dict = {}
    if not recipe.models:
        jobs = []
        for size in sorted(recipe.sizes, key=lambda s: -np.prod(fam.parse_size(s))):  # longest first
            args = dict(size=size, texts_path=str(data / "train_texts.jsonl"),
                        tokenizer_dir=str(resolve_model_path(recipe.model)), budgets=_budgets(recipe),
                        seq_len=recipe.seq_len, batch_size=recipe.batch_size, lr=_size_lr(recipe, size),
                        warmup_ratio=recipe.warmup_ratio, seed=recipe.seed,
                        **({"cooldown": recipe.cooldown} if recipe.cooldown else {}))
            inputs = {k: v for k, v in args.items() if k not in ("texts_path", "tokenizer_dir")} | {
                "data": data_inputs}
            jobs.append((f"train-{size}", inputs, functools.partial(fam.train_size, **args)))
        results = run_.stages_in_lanes(jobs, recipe.lanes)
        for size in recipe.sizes:
            res = results[f"train-{size}"]
            for ck in res["checkpoints"]:
                ck["path"] = str(run_.stage_dir(f"train-{size}") / ck["dir"])
            trained[size] = res
    members = _members(recipe, trained)
    jobs = []
    for m in members:
        args = dict(model=m["model"], questions_path=str(data / "questions.json"),
                    loss_texts_path=str(data / "loss_texts.jsonl"), budget=budget, names=recipe.names,
                    device=recipe.device)
        inputs = {"member": m, "data": data_inputs, "train": trained.get(m["size"], {}).get("checkpoints")}
        jobs.append((f"eval-{m['id']}", inputs, functools.partial(fam.evaluate_model, **args)))
    evals_by_id = run_.stages_in_lanes(jobs, recipe.lanes)
    evals = [evals_by_id[f"eval-{m['id']}"] for m in members]
    points = [_point(m, ev, recipe.fit_params, recipe.seed) for m, ev in zip(members, evals)]
    order = np.argsort([p["train_flops"] for p in points], kind="stable")
    points, evals = [points[i] for i in order], [evals[i] for i in order]

    emergence = _emergence(points, evals, recipe.seed, recipe.n_boot)
    own = [i for i, p in enumerate(points) if p["in_fit"]]
    emergence_own = (_emergence([points[i] for i in own], [evals[i] for i in own], recipe.seed, recipe.n_boot)
                     if 3 <= len(own) < len(points) else None)
    names = [ev["names"] for ev in evals]
    pl = None
    if names[0]["ids"] and all(n["ids"] == names[0]["ids"] for n in names):
        pl = em.pl_check([n["rows"]["exact_match"] for n in names], [n["rows"]["token_prob"] for n in names],
                         names[0]["length"])
        pl["ids"] = [p["id"] for p in points]
    law = _law(points, recipe.fit_params, recipe.n_boot, recipe.seed)
    metrics: dict = {}
    if law and "fit" in law:
        for k in em.PARAMS:
            metrics[f"fit/{k}"] = metric(law["fit"][k], (law["fit"]["ci95"] or {}).get(k))
        if "holdout" in law:
            h = law["holdout"]["headline"]
            metrics["fit/holdout_rel_error"] = metric(h["rel_error"])
            metrics["fit/holdout_predicted_loss"] = metric(h["predicted"])
            metrics["fit/holdout_observed_loss"] = metric(h["observed"])
    top = points[-1]
    for task, cells in top["metrics"].items():
        for name, entry in cells.items():
            metrics[f"{task}/{name}@largest"] = metric(entry["value"], entry["ci95"])
    extra = {"family": points, "emergence": emergence, "emergence_own_family": emergence_own, "prompting": _prompting(points, evals, recipe.seed),
             "pl_check": pl, "law": law, "icl_budget": budget, "verdict": _verdict(recipe, points, evals),
             "train": {s: {k: v for k, v in r.items() if k != "checkpoints"} for s, r in trained.items()},
             "tasks": {"mc": list(fam.MC_SPLITS), "mc_metrics": MC_METRICS, "names_metrics": NAMES_METRICS,
                       "discontinuous": list(DISCONTINUOUS), "shots": recipe.shots}}
    family = "user models" if recipe.models else f"trained sizes {','.join(recipe.sizes)}"
    results = run_.write_results("scale", recipe.model, f"world tasks over a family ({family}; joined: "
                                 f"{','.join(recipe.join) or 'none'})", metrics, per_split=None, extra=extra)
    write_report(run_.dir)
    return results


# --------------------------------------------------------------------------------------- underdog scale fit
def read_points(path: str) -> list[dict]:
    """Rows ``{"params", "tokens", "loss"}`` (extra keys kept) of a JSONL file; a bad line names file:line."""
    rows = read_jsonl(path, required={"params": float, "tokens": float, "loss": float})
    for row in rows:
        for key in ("params", "tokens", "loss"):
            check(row[key] > 0, path, row, f"field '{key}' must be positive, got {row[key]!r}")
    return rows


def _parse_predict(text: str) -> tuple[float, float]:
    try:
        n, d = (float(x) for x in text.split(","))
    except ValueError:
        raise UnderdogError(f"--predict {text!r}: expected N,D (e.g. 1e9,2e10)") from None
    if n <= 0 or d <= 0:
        raise UnderdogError(f"--predict {text!r}: N and D must be positive")
    return n, d


def fit_command(argv: list[str]) -> int:
    """`underdog scale fit --points FILE.jsonl [--out DIR] [--predict N,D] [--n-boot K] [--seed S]`."""
    parser = argparse.ArgumentParser(prog="underdog scale fit", description="fit Chinchilla's law "
                                     "L = E + A/N^alpha + B/D^beta to your runs (Huber on log-loss, L-BFGS)")
    parser.add_argument("--points", required=True, help='JSONL: {"params": N, "tokens": D, "loss": L} a line')
    parser.add_argument("--out", help="write DIR/results.json (and report.md)")
    parser.add_argument("--predict", help="N,D: also predict the loss there")
    parser.add_argument("--n-boot", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    predict = _parse_predict(args.predict) if args.predict else None
    rows = read_points(args.points)
    if len(rows) < 5:
        raise UnderdogError(f"{args.points}: {len(rows)} points; the law has 5 parameters and needs at least 5")
    n, d, loss = ([r[k] for r in rows] for k in ("params", "tokens", "loss"))
    fit = em.fit_law(n, d, loss, n_boot=args.n_boot, seed=args.seed)
    metrics = {f"fit/{k}": metric(getattr(fit, k), (fit.ci95 or {}).get(k)) for k in em.PARAMS}
    for k in em.PARAMS:
        ci = (fit.ci95 or {}).get(k)
        print(f"{k:>6} = {getattr(fit, k):.6g}" + (f"  [95% CI {ci[0]:.4g}, {ci[1]:.4g}]" if ci else ""))
    if predict:
        value = float(fit.predict(*predict))
        metrics["fit/predicted_loss"] = metric(value)
        print(f"predicted loss at N={predict[0]:.4g}, D={predict[1]:.4g}: {value:.6g}")
    if args.out:
        run_ = Run(args.out, {"points": args.points, "predict": args.predict, "n_boot": args.n_boot,
                              "seed": args.seed})
        points = [{**{k: v for k, v in r.items() if k != "_line"},
                   "predicted": float(fit.predict(r["params"], r["tokens"]))} for r in rows]
        largest = max(r["params"] * r["tokens"] for r in rows) * 6
        try:
            frontier = [em.compute_optimal(fit, c) for c in np.geomspace(largest / 1e3, largest * 1e2, 8)]
        except ValueError:
            frontier = []
        extra = {"law": {"fit": fit.as_dict(), "points": len(rows), "params_used": "as given", "frontier": frontier},
                 "fit_points": points, "predict": list(predict) if predict else None}
        run_.write_results("scale", "-", f"law fit to {args.points}", metrics, extra=extra)
        write_report(run_.dir)
        print(f"wrote {Path(args.out) / 'results.json'}")
    return 0


COMMANDS = {"fit": fit_command}
