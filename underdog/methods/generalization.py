"""The generalization study (Lampinen et al. 2025): how does knowledge generalize when it is put in the
prompt (ICL) versus trained into the weights?

setup: a world (generated from a seed, or a user's ``documents.jsonl`` + ``questions.jsonl``) and a model.
Each method is one cached, resumable stage that answers every test question by scoring its choices:
``none`` (no documents: the floor), ``icl`` (documents in context; see ``methods.icl``), ``ft`` / ``ft-lora``
(fine-tuned on the documents, nothing in context; ``methods.finetune``), ``aug-local`` / ``aug-global`` /
``aug-both`` (fine-tuned on documents + the model's own in-context augmentations; ``methods.augment``, whose
generations are stages of their own, saved as JSONL). The fine-tuned arms are independent stages, trained
two at a time on a CPU (``lanes``); the augmented ones train on ``augmented_budget`` times ``ft``'s tokens,
so an augmented arm's gain is not bought with more training. evaluate: accuracy
per method and split with 95% bootstrap CIs into ``results.json`` (metrics ``<method>/<split>``),
``report.md`` and a grouped bar plot with the chance line.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from underdog.config import Strict, TrainSettings, check_known
from underdog.eval.metrics import mean_with_ci
from underdog.runs import Run, atomic_write_text, hash_inputs
from underdog.tasks.choice import ChoiceItem, evaluate_choices
from underdog.world.questions import SPLITS

METHODS = ("none", "icl", "ft", "ft-lora", "aug-local", "aug-global", "aug-both")
AUGMENTS = {"aug-local": ("local",), "aug-global": ("global",), "aug-both": ("local", "global")}


class FinetuneSettings(TrainSettings):
    """Full fine-tuning on the documents: enough updates for a small model to memorise most sentences (seed-7
    world, builtin: forward 0.72 after 20 epochs, 0.825 after 40)."""

    lr: float = 3e-3
    epochs: float = 30
    batch_size: int = 8
    max_length: int = 128
    packing: bool = True
    completion_only: bool = False
    warmup_ratio: float = 0.05


class LoraSettings(FinetuneSettings):
    adapter: Literal["full", "lora", "prompt"] = "lora"
    lr: float = 1e-2
    lora_r: int = 16
    lora_alpha: int = 32


class GeneralizationRecipe(Strict):
    model: str = "builtin"
    seed: int | None = 0  # world seed (evaluation pool); ignored when `world` is given
    world: str | None = None  # a folder with documents.jsonl and questions.jsonl
    methods: list[str] = ["none", "icl"]
    out: str = "runs/generalization"
    max_per_split: int | None = Field(None, gt=0)  # subsample questions per split (seeded)
    icl_budget: int | None = Field(None, gt=0)  # tokens for documents + question; default: model window - 64
    # what ICL puts in context (methods.icl); "support" (the support facts' sentences alone) is a diagnostic
    icl_context: Literal["retrieved", "documents", "support"] = "retrieved"
    batch_size: int = Field(16, gt=0)
    generate_batch_size: int = Field(64, gt=0)  # prompts per augmentation batch (x beams rows): 2x faster than 16
    device: str = "auto"
    dtype: str = "auto"  # weights' dtype: "auto" is bf16 on a GPU that has it, else float32
    split_sentences: str = "independent"  # off | independent | cumulative
    train: FinetuneSettings = FinetuneSettings()
    lora: LoraSettings = LoraSettings()
    augmenter: str | None = None  # model that writes augmentations (default: the model itself)
    global_context: Literal["linked", "documents"] = "linked"  # aug-global: premise pairs found by shared
    # words (augment.linked_prompts) or the paper's documents-in-context layout (augment.global_prompts)
    global_links: int = Field(2, gt=0)  # linked: partner sentences per training sentence
    global_rounds: int = Field(2, gt=0)  # linked: later rounds pair each conclusion so far with its best partner
    global_per_document: int = Field(4, gt=0)  # documents: inferences asked per document
    global_beams: int = Field(3, gt=0)  # beams per aug-global prompt; the best non-junk candidate is kept (seed 7,
    # 256 linked prompts: 4 beams 134 true conclusions, 3 beams 132 in 0.65x the time, 2 beams 123)
    lanes: int | None = Field(None, gt=0)  # fine-tuning arms trained at once (worker processes); None: 2 on CPU, 1 on GPU
    augmented_budget: float | None = Field(2.0, gt=0)  # aug-* arms train on this many times ft's tokens (their
    # epochs scaled down to fit: equal compute, so a gain is the augmentations', not more training); None: ft's epochs

    @field_validator("methods")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return check_known(v, METHODS, "method")


def load_study_world(recipe: GeneralizationRecipe) -> tuple[list[dict], list[dict], dict, list | None]:
    """(documents, questions, source, facts); facts (for checking augmentations) when the world's are known."""
    from underdog.world import load_facts, load_world, make_world

    if recipe.world:
        documents, questions = load_world(recipe.world)
        source = {"world": str(recipe.world)}
        facts = load_facts(recipe.world)
    else:
        world = make_world(recipe.seed if recipe.seed is not None else 0, pool="eval")
        documents, questions, facts = world.documents, world.questions, world.facts
        source = {"seed": recipe.seed, "pool": "eval"}
    if recipe.max_per_split:  # a generator per split: one split's sample does not depend on another's size
        kept = []
        for split in sorted({q["split"] for q in questions}):
            qs = [q for q in questions if q["split"] == split]
            kept += random.Random(f"subsample-{recipe.seed}-{split}").sample(qs, min(recipe.max_per_split, len(qs)))
        questions = kept
    return documents, questions, source, facts


def answer_questions(lm, questions: list[dict], contexts: list[str], batch_size: int) -> list[dict]:
    items = [ChoiceItem(q["id"], c, q["choices"], q["answer"], {}) for q, c in zip(questions, contexts)]
    results = evaluate_choices(lm, items, batch_size=batch_size, progress=True)
    return [{"id": q["id"], "split": q["split"], "pred": r.pred, "correct": r.correct}
            for q, r in zip(questions, results)]


def run_none(lm, documents, questions, recipe) -> dict:
    return {"answers": answer_questions(lm, questions, [q["question"] for q in questions], recipe.batch_size)}


def run_icl(lm, documents, questions, recipe) -> dict:
    from underdog.methods.icl import RETRIEVED_SENTENCES, default_budget, icl_contexts
    from underdog.world.retrieve import split_sentences

    budget = recipe.icl_budget or default_budget(lm.max_length)
    contexts = icl_contexts(recipe.icl_context, lm.tokenizer, documents, questions, budget, seed=recipe.seed or 0)
    answers = answer_questions(lm, questions, [c.text for c in contexts], recipe.batch_size)
    for a, c in zip(answers, contexts):
        a["context"] = c.parts
    n_parts = [len(c.parts) for c in contexts]
    complete = all(c.complete for c in contexts)
    unit = "sentences" if recipe.icl_context in ("retrieved", "support") and not complete else "documents"
    in_world = (sum(len(split_sentences(d["text"])) for d in documents) if unit == "sentences"
                else len(documents))
    if complete:
        note = "every prompt holds every document"
    elif recipe.icl_context == "support":
        note = "each prompt holds only the sentences stating the question's support facts (a diagnostic)"
    elif recipe.icl_context == "retrieved":
        note = (f"each prompt holds the question's {RETRIEVED_SENTENCES}-sentence lexical neighbourhood, "
                "nearest first")
    else:
        note = "each prompt holds the question's support documents plus random others up to the budget"
    return {"answers": answers, "context": {
        "mode": recipe.icl_context, "budget_tokens": budget, "unit": unit, "in_world": in_world,
        "mean_in_context": sum(n_parts) / len(n_parts), "mean_tokens": sum(c.n_tokens for c in contexts) / len(contexts),
        "fraction_complete": sum(c.complete for c in contexts) / len(contexts), "note": note}}


def run_finetuned(method: str, documents, questions, recipe, augmentations: list[dict], workdir: Path) -> dict:
    from underdog.lm import load
    from underdog.methods.finetune import finetune, training_examples

    settings = recipe.lora if method == "ft-lora" else recipe.train
    examples = training_examples(documents, recipe.split_sentences, [a["text"] for a in augmentations])
    lm = load(recipe.model, device=recipe.device, dtype=recipe.dtype)
    if augmentations and recipe.augmented_budget is not None:
        plain = training_examples(documents, recipe.split_sentences)
        settings = settings.model_copy(update={"epochs": augmented_epochs(
            settings.epochs, plain, examples, recipe.augmented_budget, lm.tokenizer)})
    lm, training = finetune(lm, examples, settings, seed=recipe.seed or 0)
    answers = answer_questions(lm, questions, [q["question"] for q in questions], recipe.batch_size)
    return {"answers": answers, "training": {**training, "epochs": settings.epochs}}


def augmented_epochs(epochs: float, plain: list[dict], examples: list[dict], budget: float, tokenizer) -> float:
    """Epochs over ``examples`` (documents + augmentations) that train on ``budget`` times the tokens of
    ``epochs`` over ``plain`` (the documents alone, as ``ft`` trains)."""
    def tokens(rows: list[dict]) -> int:
        texts = [r.get("text", "") + r.get("prompt", "") + r.get("completion", "") for r in rows]
        return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) + len(rows)

    return epochs * budget * tokens(plain) / tokens(examples)


def augment_settings(kind: str, recipe: GeneralizationRecipe) -> dict:
    """The recipe settings that shape ``kind``'s augmentations (and key its stage)."""
    from underdog.methods.augment import MAX_NEW_TOKENS

    if kind == "local":
        return {"beams": 1, "max_new_tokens": MAX_NEW_TOKENS}
    return {"beams": recipe.global_beams, "max_new_tokens": MAX_NEW_TOKENS, "context": recipe.global_context,
            "links": recipe.global_links, "rounds": recipe.global_rounds,
            "per_document": recipe.global_per_document, "budget": recipe.icl_budget}


def run_augment(kind: str, documents, recipe, lm, facts, tmp: Path) -> dict:
    from underdog.methods import augment
    from underdog.methods.finetune import split_sentences
    from underdog.methods.icl import default_budget
    from underdog.tasks.io import write_jsonl

    seed, beams = recipe.seed or 0, augment_settings(kind, recipe)["beams"]
    kept, counts = [], Counter()
    if kind == "global" and recipe.global_context == "linked":
        for round_ in range(recipe.global_rounds):  # round 2 on: last rounds' conclusions as premises
            if round_ and not kept:
                break
            prompts = augment.linked_prompts(documents, 1 if round_ else recipe.global_links, seed=seed,
                                             conclusions=[a["text"] for a in kept])
            new, new_counts = augment.generate_augmentations(lm, prompts, batch_size=recipe.generate_batch_size,
                                                             beams=beams, exclude=kept)
            kept += new
            counts.update(new_counts)
    else:
        if kind == "local":
            sentences = [s for d in documents for s in split_sentences(d["text"])]
            prompts = augment.local_prompts(sentences, seed=seed)
        else:
            budget = recipe.icl_budget or default_budget(lm.max_length)
            prompts = augment.global_prompts(lm.tokenizer, documents, budget, recipe.global_per_document, seed=seed)
        kept, new_counts = augment.generate_augmentations(lm, prompts, batch_size=recipe.generate_batch_size,
                                                          beams=beams)
        counts.update(new_counts)
    truth = augment.truth_rate(kept, facts) if facts else None
    write_jsonl(tmp / f"augmentations_{kind}.jsonl", kept)
    return {"augmentations": kept, "counts": dict(counts), "truth": truth}


RUNNERS: dict[str, Callable] = {"none": run_none, "icl": run_icl}


def fine_tuning_lanes(recipe: GeneralizationRecipe) -> int:
    """How many fine-tuning arms train at once: ``recipe.lanes``, else 2 on a CPU with 2+ cores (two 1-thread
    trainings of the built-in model run 1.33x faster than one 2-thread training on 2 cores:
    ``benchmarks/lanes.py``), 1 on a GPU."""
    import torch

    from underdog.lm.load import resolve_device

    if recipe.lanes:
        return recipe.lanes
    on_gpu = resolve_device(recipe.device).type == "cuda"
    return 1 if on_gpu or torch.get_num_threads() < 2 else 2


def run_generalization(recipe: GeneralizationRecipe, log=print) -> dict:
    from underdog.lm import load
    from underdog.lm.load import weights_stamp

    documents, questions, source, facts = load_study_world(recipe)
    lm = load(recipe.model, device=recipe.device, dtype=recipe.dtype)
    run = Run(recipe.out, recipe.model_dump(), log=log)
    data_key = hash_inputs([documents, questions])
    model_key = hash_inputs([recipe.model, lm.info, weights_stamp(lm.path)])
    outputs, augmented = {}, {}
    for kind in sorted({k for m in recipe.methods for k in AUGMENTS.get(m, ())}):
        writer = load(recipe.augmenter, device=recipe.device, dtype=recipe.dtype) if recipe.augmenter else lm
        inputs = {"augment": kind, "data": data_key, "model": hash_inputs([recipe.augmenter, model_key]),
                  "seed": recipe.seed, **augment_settings(kind, recipe)}
        augmented[kind] = run.stage(f"augment-{kind}", inputs,
                                    lambda tmp, k=kind, w=writer: run_augment(k, documents, recipe, w, facts, tmp))
        c = augmented[kind]["counts"]
        log(f"augment-{kind}: kept {c.get('kept', 0)} of {c['generated']}"
            + (f", {augmented[kind]['truth']['true_fraction']:.0%} true"
               if (augmented[kind]["truth"] or {}).get("true_fraction") is not None else ""))
    jobs = []
    for method in recipe.methods:
        inputs = {"method": method, "data": data_key, "model": model_key, "budget": recipe.icl_budget,
                  "seed": recipe.seed}
        if method in RUNNERS:  # in this process: they read the model already loaded
            if method == "icl":
                inputs["context"] = recipe.icl_context
            start = time.time()
            outputs[method] = run.stage(method, inputs, lambda tmp, m=method: RUNNERS[m](lm, documents, questions,
                                                                                         recipe))
            log(f"{method}: {time.time() - start:.1f}s")
            continue
        extra = [a for k in AUGMENTS.get(method, ()) for a in augmented[k]["augmentations"]]
        inputs.update(train=(recipe.lora if method == "ft-lora" else recipe.train).model_dump(),
                      split=recipe.split_sentences, augmentations=hash_inputs(extra))
        if extra:
            inputs["augmented_budget"] = recipe.augmented_budget
        jobs.append((len(extra), method, inputs, partial(run_finetuned, method, documents, questions, recipe, extra)))
    jobs.sort(key=lambda job: -job[0])  # most augmentations (longest training) first
    outputs.update(run.stages_in_lanes([job[1:] for job in jobs], fine_tuning_lanes(recipe)))
    outputs = {m: outputs[m] for m in recipe.methods}
    summaries = {kind: {"counts": aug["counts"], "truth": aug["truth"], "sample": aug["augmentations"][:6],
                        "file": str(run.stage_dir(f"augment-{kind}") / f"augmentations_{kind}.jsonl")}
                 for kind, aug in augmented.items()}
    return write_generalization_results(run, recipe, outputs, source, lm, summaries, questions)


def augmentation_report(summaries: dict) -> str:
    if not summaries:
        return ""
    lines = ["\n## Augmentations written by the model\n",
             "| kind | prompts | kept | dropped (reason: count) | true (checked against the world) |",
             "|---|---|---|---|---|"]
    for kind, s in summaries.items():
        c = dict(s["counts"])
        generated, kept = c.pop("generated"), c.pop("kept", 0)
        truth = s["truth"] or {}
        true = f"{truth['true_fraction']:.0%}" if truth.get("true_fraction") is not None else "unknown"
        lines.append(f"| {kind} | {generated} | {kept} | {', '.join(f'{k}: {v}' for k, v in c.items()) or '–'} "
                     f"| {true} |")
    for kind, s in summaries.items():
        lines.append(f"\nSample ({kind}; file `{s['file']}`):\n")
        lines += [f"- {a['source']} → **{a['text']}**" + ("" if "true" not in a else (" ✓" if a["true"] else " ✗"))
                  for a in s["sample"]]
    return "\n".join(lines) + "\n"


def accuracy_by_kind(outputs: dict, questions: list[dict]) -> tuple[dict, str]:
    """Accuracy (95% CI) of every method on every split and knowledge kind (comparison, family, ...), keyed
    ``"<split>:<kind>/<method>"``, and the Markdown table of them: which kind of fact a split's score hides."""
    from underdog.report import grid_table

    kind_of = {q["id"]: q.get("kind", "unknown") for q in questions}
    metrics: dict = {}
    n: dict[str, int] = {}  # questions in each split:kind cell, the most any method answered
    for method, out in outputs.items():
        cells: dict[str, list[bool]] = {}
        for a in out["answers"]:
            cells.setdefault(f"{a['split']}:{kind_of.get(a['id'], 'unknown')}", []).append(a["correct"])
        metrics.update({f"{cell}/{method}": {**mean_with_ci(c), "n": len(c)} for cell, c in cells.items()})
        n.update({cell: max(n.get(cell, 0), len(c)) for cell, c in cells.items()})
    order = {s: i for i, s in enumerate(SPLITS)}
    rows = sorted(n, key=lambda r: (order.get(r.split(":")[0], len(order)), r))
    return metrics, grid_table(metrics, rows, list(outputs), row_label="split:kind (questions)",
                               shown_as={r: f"{r} ({n[r]})" for r in rows})


def write_generalization_results(run: Run, recipe, outputs: dict, source: dict, lm, summaries: dict,
                                 questions: list[dict]) -> dict:
    from underdog.report import grid_table, grouped_bars

    metrics, per_split = {}, {}
    splits = [s for s in SPLITS if any(a["split"] == s for o in outputs.values() for a in o["answers"])]
    for method, out in outputs.items():
        for split in splits:
            correct = [a["correct"] for a in out["answers"] if a["split"] == split]
            if correct:
                metrics[f"{method}/{split}"] = mean_with_ci(correct)
                per_split.setdefault(split, {})[method] = metrics[f"{method}/{split}"]["value"]
    extra = {"world": source, "model_info": lm.info,
             "icl_context": outputs.get("icl", {}).get("context"),
             "questions_per_split": {s: sum(a["split"] == s for a in next(iter(outputs.values()))["answers"])
                                     for s in splits}}
    extra["augmentations"] = summaries
    extra["by_kind"], kind_table = accuracy_by_kind(outputs, questions)
    extra["training"] = {m: out["training"] for m, out in outputs.items() if "training" in out}
    results = run.write_results("generalization", recipe.model, f"world {source}", metrics, per_split, extra)
    grouped_bars(metrics, splits, list(outputs), run.dir / "generalization.png",
                 title=f"Generalization by split ({recipe.model})", chance=0.25)
    table = grid_table(metrics, list(outputs), splits)
    ctx = extra["icl_context"]
    ctx_line = (f"\nICL prompts ({ctx['mode']}): budget {ctx['budget_tokens']} tokens, on average "
                f"{ctx['mean_in_context']:.1f} of {ctx['in_world']} {ctx['unit']} ({ctx['mean_tokens']:.0f} tokens; "
                f"{ctx['note']}).\n") if ctx else ""
    report = (f"# Generalization study\n\nModel `{recipe.model}` ({lm.info['parameters']:,} parameters); world "
              f"{source}; questions per split: {extra['questions_per_split']}. Accuracy with 95% bootstrap CI; "
              f"4 choices, chance 0.25.\n\n{table}\n{ctx_line}\n![accuracy by split](generalization.png)\n"
              f"\n## By knowledge kind\n\n{kind_table}\n{augmentation_report(summaries)}")
    atomic_write_text(run.dir / "report.md", report)
    return results
