"""Explanation tuning (Orca 2, Mitra et al. 2023): a student learns *how* to reason, and *which* way to
reason for which task, from a stronger teacher.

setup: reasoning tasks (the built-in multi-step and one-step questions of ``underdog.tasks.reasoning``, or a
user's JSONL) split into train/dev/test, a teacher (``world``: programmatic; a local HF model; or ``api``: an
OpenAI-compatible endpoint) and a student. Stages, each cached and resumable: ``tasks``; ``select``
(*cautious reasoning*: per task category, a strategy — step-by-step, recall-then-generate,
recall-reason-generate, extract-generate, direct answer, Orca 1 explanation — from accuracy on the dev split,
measured on the teacher's answers or on the student's after a short trial on all strategies: the first
strategy listed is the default, and the most accurate one replaces it only when its 95% CI lies wholly above
the default's; the choice and its evidence are recorded); ``teacher`` (the teacher answers the train and test prompts under the
chosen strategy's system instruction); then one stage per compared variant: ``base`` (the untuned student),
``answers`` (tuned on the teacher's final answers only), ``explanations`` (tuned on the teacher's full
responses with *prompt erasure*: a generic system message replaces the strategy instruction, so the student
must learn when to reason how; loss on the response only, packed, in the student's chat template or ChatML)
and ``teacher``. evaluate: accuracy on held-out questions from the final answer in free text, per group
(``multi_step``, ``one_step``) and category with 95% bootstrap CIs into ``results.json`` (metrics
``<variant>/<group>/accuracy``), ``report.md`` and a bar plot.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from underdog.config import Strict, TrainConfig, check_known
from underdog.eval.metrics import mean_with_ci
from underdog.eval.verdict import verdict
from underdog.io import write_jsonl
from underdog.lm import load
from underdog.lm.chat import chat_end_marker, format_chat
from underdog.lm.generate import generate
from underdog.lm.load import resolve_model_path, weights_stamp
from underdog.methods.parts.teachers import Job, Strategy, Teacher, TeacherError, read_strategy
from underdog.report import write_report
from underdog.runs import Run, hash_inputs
from underdog.tasks.reasoning import (
    CATEGORIES,
    GROUPS,
    build_reasoning_tasks,
    extract_answer,
    is_correct,
    read_reasoning_file,
)
from underdog.train.save import keep_model, save_model, stage_model_card

STRATEGY_DIR = Path(__file__).resolve().parent / "strategies"
DEFAULT_STRATEGIES = ["step_by_step", "direct", "recall_generate", "recall_reason_generate", "extract_generate",
                      "explain"]  # the first is the default that cautious selection departs from only on evidence
VARIANTS = ("base", "answers", "explanations", "teacher")
GROUP_ORDER = ("multi_step", "one_step")


class ApiSettings(Strict):
    """An OpenAI-compatible chat endpoint. The key is read from the environment variable ``key_env``
    (null: send none, e.g. a local server); it is never stored."""

    base_url: str = "https://api.openai.com/v1"
    model: str = "gpt-4o-mini"
    key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = Field(4, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(6, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    temperature: float = Field(0.0, ge=0)
    max_tokens: int = Field(256, gt=0)
    cache_dir: str | None = None  # default: <out>/teacher_cache


class TaskSizes(Strict):
    """Items per category and split (built-in tasks)."""

    train: int = Field(300, ge=0)
    dev: int = Field(40, ge=0)
    test: int = Field(100, gt=0)


class ExplainRecipe(Strict):
    teacher: str = "world"  # world | api | builtin | a local HF model directory
    student: str = "builtin"
    compare_model: str | None = None  # a larger model answering the test questions untuned (the verdict's arm)
    save_model: bool = False  # keep the explanation-tuned student in <out>/model (underdog.lm.load-able)
    tasks: str = "builtin"  # builtin | a JSONL file of {id, prompt, answer, category?, group?, split?, aliases?}
    seed: int = 0
    out: str = "runs/explain"
    sizes: TaskSizes = TaskSizes()
    categories: list[str] = list(CATEGORIES)
    n_distractors: int = Field(2, ge=0)
    strategies: list[str] = list(DEFAULT_STRATEGIES)
    strategies_dir: str | None = None  # your own <name>.txt strategies (added to, or replacing, the shipped ones)
    system_message: str = "You are a helpful assistant."  # the generic message the student trains under
    select_by: Literal["student", "teacher", "fixed"] = "student"
    fixed: dict[str, str] = {}  # category -> strategy, for select_by: fixed
    trial_fraction: float = Field(0.5, gt=0, le=1)  # share of the train split used by the student trial
    trial: TrainConfig = TrainConfig(lr=3e-3, epochs=3, batch_size=4, max_length=384, packing=True,
                                     warmup_ratio=0.05)
    train: TrainConfig = TrainConfig(lr=3e-3, epochs=6, batch_size=4, max_length=384, packing=True,
                                     warmup_ratio=0.05)
    filter_incorrect: bool = True  # drop training items whose teacher answer is wrong
    variants: list[str] = list(VARIANTS)
    max_new_tokens: int = Field(128, gt=0)
    batch_size: int = Field(64, gt=0)
    device: str = "auto"
    teacher_max_new_tokens: int = Field(256, gt=0)
    api: ApiSettings = ApiSettings()

    @field_validator("variants")
    @classmethod
    def _known_variants(cls, v: list[str]) -> list[str]:
        return check_known(v, VARIANTS, "variant")

    @field_validator("categories")
    @classmethod
    def _known_categories(cls, v: list[str]) -> list[str]:
        return check_known(v, CATEGORIES, "category")


def load_strategies(names: Sequence[str], folder: str | None = None) -> dict[str, Strategy]:
    """The named strategies (``folder/<name>.txt`` when it exists, else the shipped file), then every other
    ``*.txt`` in ``folder``: a user's own strategies join the selection."""
    if folder and not Path(folder).is_dir():
        raise TeacherError(f"strategies_dir '{folder}' is not a folder")
    names = list(dict.fromkeys(list(names) + (sorted(p.stem for p in Path(folder).glob("*.txt")) if folder else [])))
    out = {}
    for name in names:
        path = Path(folder) / f"{name}.txt" if folder else None
        if path is None or not path.is_file():
            path = STRATEGY_DIR / f"{name}.txt"
        if not path.is_file():
            where = f"{folder} or {STRATEGY_DIR}" if folder else str(STRATEGY_DIR)
            raise TeacherError(f"strategy {name!r} not found: no {name}.txt in {where}")
        out[name] = read_strategy(path)
    return out


def make_teacher(recipe: ExplainRecipe, run_dir: Path, log: Callable[[str], None] = print) -> Teacher:
    from underdog.methods.parts.teachers import ApiTeacher, ChatClient, HFTeacher, WorldTeacher

    if recipe.teacher == "world":
        return WorldTeacher()
    if recipe.teacher == "api":
        a = recipe.api
        client = ChatClient(a.base_url, a.model, a.cache_dir or run_dir / "teacher_cache", a.key_env, a.concurrency,
                            a.timeout_s, a.max_retries, a.backoff_s, a.max_backoff_s,
                            {"temperature": a.temperature, "max_tokens": a.max_tokens}, log=log)
        return ApiTeacher(client)
    return HFTeacher(recipe.teacher, recipe.device, recipe.teacher_max_new_tokens, recipe.batch_size)


def load_items(recipe: ExplainRecipe) -> list[dict]:
    if recipe.tasks == "builtin":
        return build_reasoning_tasks(recipe.seed, recipe.sizes.model_dump(), recipe.categories, recipe.n_distractors)
    return read_reasoning_file(recipe.tasks, seed=recipe.seed)


def scored(item: dict, text: str, **extra) -> dict:
    pred = extract_answer(text)
    return {"id": item["id"], "category": item["category"], "group": item["group"], "text": text, "pred": pred,
            "correct": is_correct(pred, item["answer"], item.get("aliases") or ()), **extra}


def chat_examples(items: Sequence[dict], texts: Sequence[str], system: str | dict[str, str]) -> list[dict]:
    """Training conversations; ``system`` is one message for all, or one per item id (the trial)."""
    return [{"messages": [{"role": "system", "content": system if isinstance(system, str) else system[it["id"]]},
                          {"role": "user", "content": it["prompt"]}, {"role": "assistant", "content": t}]}
            for it, t in zip(items, texts)]


def student_answers(lm, items: Sequence[dict], systems: Sequence[str], recipe: ExplainRecipe) -> list[dict]:
    """Greedy answers of a student to ``items`` under the given system messages, scored."""

    prompts = [format_chat(lm.tokenizer, [{"role": "system", "content": s}, {"role": "user", "content": it["prompt"]}])
               for it, s in zip(items, systems)]
    samples = generate(lm, prompts, max_new_tokens=recipe.max_new_tokens, batch_size=recipe.batch_size,
                       stop=[chat_end_marker(lm.tokenizer)], progress=True)
    return [scored(it, s[0].text.strip()) for it, s in zip(items, samples)]


def accuracy_table(records: Sequence[dict], key: str) -> dict[str, dict[str, dict]]:
    """``{category: {records[key]: mean_with_ci(correct)}}``."""
    table: dict[str, dict[str, list]] = {}
    for r in records:
        table.setdefault(r["category"], {}).setdefault(r[key], []).append(r["correct"])
    return {c: {k: mean_with_ci(v) for k, v in row.items()} for c, row in table.items()}


def choose(evidence: dict[str, dict[str, dict]], order: Sequence[str]) -> dict[str, str]:
    """Per category, cautiously: the default strategy (``order[0]``) unless the strategy with the highest dev
    accuracy (ties: the earlier one in ``order``) beats it clearly, its 95% CI lying wholly above the default's."""
    out = {}
    for c, row in evidence.items():
        best = max(order, key=lambda s: (row.get(s, {}).get("value", -1.0), -order.index(s)))
        default = row.get(order[0])
        clear = default is None or (row[best]["ci95"][0] > default["ci95"][1] if "ci95" in row[best] and
                                    "ci95" in default else row[best]["value"] > default["value"])
        out[c] = best if clear else order[0]
    return out


def run_select(recipe: ExplainRecipe, items: list[dict], strategies: dict[str, Strategy], teacher: Teacher,
               tmp: Path, log: Callable[[str], None]) -> dict:
    """Cautious reasoning: pick a strategy per category from measured dev accuracy, with the evidence."""
    categories = sorted({it["category"] for it in items}, key=lambda c: (list(GROUPS) + [c]).index(c))
    order = list(strategies)
    if recipe.select_by == "fixed":
        missing = [c for c in categories if recipe.fixed.get(c) not in strategies]
        if missing:
            raise TeacherError(f"select_by: fixed needs a strategy from {order} for categories {missing}")
        return {"by": "fixed", "choice": {c: recipe.fixed[c] for c in categories}, "evidence": {}}
    dev = [it for it in items if it["split"] == "dev"]
    if not dev:
        raise TeacherError("cautious strategy selection needs dev items (sizes.dev > 0 or split: dev in the file)")
    if recipe.select_by == "teacher":
        jobs = [Job(f"{it['id']}|{s}", it, strategies[s]) for it in dev for s in order]
        texts = teacher.respond(jobs, log=log)
        records = [scored(j.item, t, strategy=j.strategy.name) for j, t in zip(jobs, texts)]
        training = None
    else:  # the student after a short trial on every strategy, with the instructions kept
        from underdog.methods.parts.finetune import finetune

        rng = random.Random(f"trial-{recipe.seed}")
        trial_items: list[dict] = []
        for c in categories:
            pool = [it for it in items if it["split"] == "train" and it["category"] == c]
            trial_items += rng.sample(pool, max(1, round(recipe.trial_fraction * len(pool)))) if pool else []
        assigned = {it["id"]: order[k % len(order)] for k, it in enumerate(trial_items)}
        jobs = [Job(it["id"], it, strategies[assigned[it["id"]]]) for it in trial_items]
        texts = teacher.respond(jobs, log=log)
        systems = {it["id"]: strategies[assigned[it["id"]]].instruction for it in trial_items}
        lm, training = finetune(recipe.student, chat_examples(trial_items, texts, systems), recipe.trial,
                                seed=recipe.seed, device=recipe.device)
        probe = [(it, s) for it in dev for s in order]
        answers = student_answers(lm, [p[0] for p in probe], [strategies[p[1]].instruction for p in probe], recipe)
        records = [dict(a, strategy=s) for a, (_, s) in zip(answers, probe)]
    write_jsonl(tmp / "selection_records.jsonl", records)
    evidence = accuracy_table(records, "strategy")
    choice = choose(evidence, order)
    for c in categories:
        row = ", ".join(f"{s} {evidence[c][s]['value']:.2f}" for s in order if s in evidence.get(c, {}))
        log(f"select ({recipe.select_by}): {c}: {choice.get(c)}  [{row}]")
    return {"by": recipe.select_by, "choice": choice, "evidence": evidence, "training": training}


def run_teacher(items: list[dict], choice: dict[str, str], strategies: dict[str, Strategy], teacher: Teacher,
                splits: Sequence[str], tmp: Path, log: Callable[[str], None]) -> dict:
    """The teacher answers every item of ``splits`` under its category's chosen strategy."""
    todo = [it for it in items if it["split"] in splits]
    jobs = [Job(it["id"], it, strategies[choice[it["category"]]]) for it in todo]
    texts = teacher.respond(jobs, log=log)
    if len(texts) != len(jobs):
        raise TeacherError(f"the teacher returned {len(texts)} responses for {len(jobs)} prompts")
    records = [scored(it, t, split=it["split"], strategy=j.strategy.name) for it, j, t in zip(todo, jobs, texts)]
    write_jsonl(tmp / "teacher_responses.jsonl", records)
    return {"records": records, "stats": dict(teacher.stats)}


def run_student(variant: str, recipe: ExplainRecipe, items: list[dict], teacher_records: list[dict],
                tmp: Path, model: str | None = None) -> dict:
    """Train (``answers``/``explanations``) or take (``base``) the student (or ``model``, untuned), then answer
    the test items."""
    from underdog.methods.parts.finetune import finetune

    test = [it for it in items if it["split"] == "test"]
    training = None
    if variant == "base":
        lm = load(model or recipe.student, device=recipe.device)
    else:
        by_id = {it["id"]: it for it in items}
        kept = [r for r in teacher_records if r["split"] == "train" and r["pred"] is not None
                and (r["correct"] or not recipe.filter_incorrect)]
        if not kept:
            raise TeacherError("no usable teacher responses to train on (every one was wrong or had no answer)")
        texts = [f"Answer: {r['pred']}." if variant == "answers" else r["text"] for r in kept]
        examples = chat_examples([by_id[r["id"]] for r in kept], texts, recipe.system_message)
        write_jsonl(tmp / "train_examples.jsonl", examples)
        lm, training = finetune(recipe.student, examples, recipe.train, seed=recipe.seed, device=recipe.device)
        if recipe.save_model and variant == "explanations":

            card = stage_model_card(recipe.student, recipe.train.adapter, "explain", variant,
                                    recipe.train.model_dump(exclude={"output_dir"}), training)
            save_model(lm.model, lm.tokenizer, tmp / "model", base_model=recipe.student, card=card)
    records = student_answers(lm, test, [recipe.system_message] * len(test), recipe)
    write_jsonl(tmp / "predictions.jsonl", records)
    return {"records": records, "training": training}


def check_inputs(recipe: ExplainRecipe, strategies: Sequence[str]) -> None:
    """Raise the one-line error of a missing model, task file or API key."""

    resolve_model_path(recipe.student)
    if recipe.teacher not in ("world", "api"):
        resolve_model_path(recipe.teacher)
    if recipe.teacher == "api" and recipe.api.key_env and not os.environ.get(recipe.api.key_env):
        raise TeacherError(f"teacher: api needs the API key in the environment variable {recipe.api.key_env} "
                           "(or set api.key_env: null for a server without one)")
    if recipe.tasks != "builtin":
        read_reasoning_file(recipe.tasks, seed=recipe.seed)
    if recipe.select_by == "fixed":
        bad = {c: s for c, s in recipe.fixed.items() if s not in strategies}
        if bad or (recipe.tasks == "builtin" and set(recipe.categories) - set(recipe.fixed)):
            raise TeacherError(f"select_by: fixed needs `fixed: {{category: strategy}}` with a strategy from "
                               f"{list(strategies)} for every category {recipe.categories}")


def run_explain(recipe: ExplainRecipe, log: Callable[[str], None] = print) -> dict:
    """The whole study; returns the results dict (also written to ``<out>/results.json``)."""
    start = time.time()
    strategies = load_strategies(recipe.strategies, recipe.strategies_dir)
    check_inputs(recipe, list(strategies))  # user errors before anything is written
    student_key = [recipe.student, weights_stamp(recipe.student)]
    run = Run(recipe.out, recipe.model_dump(), log=log)
    task_key = {k: getattr(recipe, k) for k in ("tasks", "seed", "categories", "n_distractors")}
    task_key.update(sizes=recipe.sizes.model_dump(), file=_file_hash(recipe.tasks))

    def build(tmp: Path) -> list[dict]:
        items = load_items(recipe)
        write_jsonl(tmp / "items.jsonl", items)
        return items

    items = run.stage("tasks", task_key, build)
    teacher = make_teacher(recipe, run.dir, log)
    strat_key = {n: [s.instruction, s.style] for n, s in strategies.items()}
    select_key = {"tasks": hash_inputs(items), "teacher": teacher.key(), "by": recipe.select_by, "fixed": recipe.fixed,
                  "strategies": strat_key}
    if recipe.select_by == "student":
        select_key.update(student=student_key, trial=recipe.trial.stage_key(), fraction=recipe.trial_fraction,
                          gen=[recipe.max_new_tokens, recipe.seed])
    selection = run.stage("select", select_key,
                          lambda tmp: run_select(recipe, items, strategies, teacher, tmp, log))
    splits = (["train"] if {"answers", "explanations"} & set(recipe.variants) else []) + \
             (["test"] if "teacher" in recipe.variants else [])
    taught = run.stage("teacher", {"tasks": select_key["tasks"], "teacher": teacher.key(), "splits": splits,
                                   "choice": selection["choice"], "strategies": strat_key},
                       lambda tmp: run_teacher(items, selection["choice"], strategies, teacher, splits, tmp, log))
    outputs: dict[str, dict] = {}
    for variant in [v for v in VARIANTS if v in recipe.variants]:
        if variant == "teacher":
            outputs[variant] = {"records": [r for r in taught["records"] if r["split"] == "test"]}
            continue
        key = {"variant": variant, "tasks": select_key["tasks"], "student": student_key, "system": recipe.system_message,
               "gen": [recipe.max_new_tokens, recipe.seed]}
        if variant != "base":
            key.update(teacher=hash_inputs(taught["records"]), train=recipe.train.stage_key(),
                       filter=recipe.filter_incorrect)
        if recipe.save_model and variant == "explanations":
            key["save_model"] = True
        outputs[variant] = run.stage(f"student-{variant}", key,
                                     lambda tmp, v=variant: run_student(v, recipe, items, taught["records"], tmp))
        log(f"{variant}: accuracy {sum(r['correct'] for r in outputs[variant]['records']) / len(outputs[variant]['records']):.3f}")
    if recipe.save_model and "explanations" in outputs:

        keep_model(run.stage_dir("student-explanations") / "model", run.dir / "model")
        log(f"save_model: the explanation-tuned student -> {run.dir / 'model'}")
    if recipe.compare_model:
        key = {"variant": "compare", "tasks": select_key["tasks"], "model": recipe.compare_model,
               "weights": weights_stamp(recipe.compare_model), "system": recipe.system_message,
               "gen": [recipe.max_new_tokens, recipe.seed]}
        outputs[f"{recipe.compare_model}:base"] = run.stage(
            "compare-base", key, lambda tmp: run_student("base", recipe, items, [], tmp, model=recipe.compare_model))
    return write_explain_results(run, recipe, items, selection, taught, outputs, time.time() - start)


def _file_hash(path: str) -> str | None:
    p = Path(path)
    return hash_inputs(p.read_text(encoding="utf-8")) if path != "builtin" and p.is_file() else None


def explain_verdict(recipe: ExplainRecipe, outputs: dict[str, dict]) -> dict | None:
    """Accuracy on the test questions: explanation-tuned student vs untuned student vs the larger model."""

    method = next((v for v in ("explanations", "answers") if v in outputs), None)
    if method is None:
        return None
    order = [r["id"] for r in outputs[method]["records"]]

    def arm(name: str) -> list[float] | None:
        if name not in outputs:
            return None
        by_id = {r["id"]: float(r["correct"]) for r in outputs[name]["records"]}
        return [by_id[i] for i in order]

    large = f"{recipe.compare_model}:base"
    return verdict("accuracy", (f"{recipe.student} + {method}-tuned", arm(method)),
                   (f"{recipe.student} (untuned)", arm("base")) if "base" in outputs else None,
                   (f"{recipe.compare_model} (untuned)", arm(large)) if large in outputs else None, seed=recipe.seed)


def write_explain_results(run: Run, recipe: ExplainRecipe, items: list[dict], selection: dict, taught: dict,
                          outputs: dict[str, dict], wall: float) -> dict:
    test = [it for it in items if it["split"] == "test"]
    groups = [g for g in GROUP_ORDER if any(it["group"] == g for it in test)]
    groups += sorted({it["group"] for it in test} - set(groups))
    categories = [c for c in list(GROUPS) + sorted({it["category"] for it in test}) if any(it["category"] == c for it in test)]
    categories = list(dict.fromkeys(categories))
    metrics, per_split = {}, {}
    for variant, out in outputs.items():
        for name, field in [(g, "group") for g in groups] + [(c, "category") for c in categories]:
            correct = [r["correct"] for r in out["records"] if r[field] == name]
            if correct:
                m = mean_with_ci(correct, seed=recipe.seed)
                metrics[f"{variant}/{name}/accuracy"] = m
                per_split.setdefault(name, {})[variant] = m["value"]
    trained = {v: o.get("training") for v, o in outputs.items() if o.get("training")}
    samples = {}
    for c in categories:
        rec = next((r for r in outputs.get("explanations", {}).get("records", []) if r["category"] == c), None)
        if rec:
            item = next(it for it in test if it["id"] == rec["id"])
            samples[c] = {"prompt": item["prompt"], "answer": item["answer"], "student": rec["text"],
                          "teacher": next((r["text"] for r in taught["records"] if r["id"] == rec["id"]), None)}
    extra = {"selection": selection, "teacher_stats": taught.get("stats"), "training": trained, "samples": samples,
             "items_per_split": {s: sum(it["split"] == s for it in items) for s in ("train", "dev", "test")},
             "wall_seconds": round(wall, 1), "stage_seconds": _stage_seconds(run),
             "student_weights": weights_stamp(recipe.student), "groups": groups, "categories": categories,
             "variants": list(outputs), "verdict": explain_verdict(recipe, outputs)}
    results = run.write_results("explain", recipe.student, f"reasoning tasks ({recipe.tasks}); teacher "
                                f"{recipe.teacher}", metrics, per_split, extra)
    write_report(run.dir)
    return results


def _stage_seconds(run: Run) -> dict[str, float]:
    """Seconds each finished stage took when it was computed (also when this call skipped it)."""
    out = {}
    for meta in sorted(run.dir.glob("stages/*/stage.json")):
        out[meta.parent.name] = round(json.loads(meta.read_text()).get("seconds", 0.0), 1)
    return out


NAME = "explain"
Recipe = ExplainRecipe
run = run_explain
DEMO_SECONDS = 53


def demo_recipe(out: str, model: str, seed: int, quick: bool) -> ExplainRecipe:
    """The demo's part: the strategy per category chosen on the teacher's dev answers (no student trial),
    and the explanation-tuned student against the untuned one and the larger model."""
    scale = 0.25 if quick else 1.0
    return ExplainRecipe.model_validate({
        "student": model, "teacher": "world", "seed": seed, "out": out, "select_by": "teacher",
        "variants": ["base", "explanations", "teacher"],
        "sizes": {"train": int(100 * scale), "dev": int(20 * scale) or 4, "test": int(40 * scale)},
        "compare_model": "builtin-large" if model == "builtin" else None})
