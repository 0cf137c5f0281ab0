"""The generalization study (Lampinen et al. 2025): how does knowledge generalize when it is put in the
prompt (ICL) versus trained into the weights?

setup: a world (generated from a seed, or a user's ``documents.jsonl`` + ``questions.jsonl``) and a model.
Each method is one cached, resumable stage that answers every test question by scoring its choices:
``none`` (no documents: the floor), ``icl`` (documents in context; see ``tasks.icl``), ``ft`` / ``ft-lora``
(fine-tuned on the documents, nothing in context; ``methods.parts.finetune``), ``aug-local`` / ``aug-global`` /
``aug-both`` (fine-tuned on documents + the model's own in-context augmentations; ``methods.parts.augment``, whose
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

from underdog.config import Strict, TrainConfig, check_known
from underdog.eval.metrics import mean_with_ci
from underdog.eval.verdict import verdict
from underdog.io import write_jsonl
from underdog.lm import load
from underdog.lm.load import resolve_device, weights_stamp
from underdog.report import write_report
from underdog.runs import Run, hash_inputs
from underdog.tasks.choice import ChoiceItem, evaluate_choices
from underdog.tasks.icl import RETRIEVED_SENTENCES, default_budget, icl_contexts
from underdog.train.save import keep_model, save_model, stage_model_card
from underdog.world import load_facts, load_world, make_world
from underdog.world.questions import SPLITS
from underdog.world.retrieve import split_sentences

METHODS = ("none", "icl", "ft", "ft-lora", "aug-local", "aug-global", "aug-both")
AUGMENTS = {"aug-local": ("local",), "aug-global": ("global",), "aug-both": ("local", "global")}


# Full fine-tuning on the documents: enough updates for a small model to memorise most sentences (why 30
# epochs: docs/studies.md, "Defaults"); the LoRA arm trains the same way at a higher lr.
FINETUNE = TrainConfig(lr=3e-3, epochs=30, batch_size=8, max_length=128, packing=True, completion_only=False,
                       warmup_ratio=0.05)
LORA = TrainConfig(**{**FINETUNE.model_dump(exclude_unset=True), "adapter": "lora", "lr": 1e-2, "lora_r": 16,
                      "lora_alpha": 32})


class GeneralizationRecipe(Strict):
    model: str = "builtin"
    seed: int | None = 0  # world seed (evaluation pool); ignored when `world` is given
    world: str | None = None  # a folder with documents.jsonl and questions.jsonl
    methods: list[str] = ["none", "icl"]
    out: str = "runs/generalization"
    max_per_split: int | None = Field(None, gt=0)  # subsample questions per split (seeded)
    icl_budget: int | None = Field(None, gt=0)  # tokens for documents + question; default: model window - 64
    # what ICL puts in context (tasks.icl); "support" (the support facts' sentences alone) is a diagnostic
    icl_context: Literal["retrieved", "documents", "support"] = "retrieved"
    batch_size: int = Field(16, gt=0)
    generate_batch_size: int = Field(64, gt=0)  # prompts per augmentation batch (x beams rows)
    device: str = "auto"
    dtype: str = "auto"  # weights' dtype: "auto" is bf16 on a GPU that has it, else float32
    split_sentences: str = "independent"  # off | independent | cumulative
    train: TrainConfig = FINETUNE
    lora: TrainConfig = LORA
    augmenter: str | None = None  # model that writes augmentations (default: the model itself)
    global_context: Literal["linked", "documents"] = "linked"  # aug-global: premise pairs found by shared
    # words (augment.linked_prompts) or the paper's documents-in-context layout (augment.global_prompts)
    global_links: int = Field(2, gt=0)  # linked: partner sentences per training sentence
    global_rounds: int = Field(2, gt=0)  # linked: later rounds pair each conclusion so far with its best partner
    global_per_document: int = Field(4, gt=0)  # documents: inferences asked per document
    global_beams: int = Field(3, gt=0)  # beams per aug-global prompt; the best non-junk candidate is kept
    lanes: int | None = Field(None, gt=0)  # fine-tuning arms trained at once (worker processes); None: 2 on CPU, 1 on GPU
    save_model: bool = False  # keep the best fine-tuned arm's model in <out>/model (underdog.lm.load-able)
    compare_model: str | None = None  # a larger model answering the same questions with `compare_methods`
    compare_methods: list[str] = ["none", "icl"]  # methods that train nothing (run in this process)
    augmented_budget: float | None = Field(2.0, gt=0)  # aug-* arms train on this many times ft's tokens (their
    # epochs scaled down to fit: equal compute, so a gain is the augmentations', not more training); None: ft's epochs

    @field_validator("methods")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return check_known(v, METHODS, "method")

    @field_validator("compare_methods")
    @classmethod
    def _untrained(cls, v: list[str]) -> list[str]:
        return check_known(v, ("none", "icl"), "compare method")


def load_study_world(recipe: GeneralizationRecipe) -> tuple[list[dict], list[dict], dict, list | None]:
    """(documents, questions, source, facts); facts (for checking augmentations) when the world's are known."""

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
    from underdog.methods.parts.finetune import finetune, training_examples

    settings = recipe.lora if method == "ft-lora" else recipe.train
    examples = training_examples(documents, recipe.split_sentences, [a["text"] for a in augmentations])
    lm = load(recipe.model, device=recipe.device, dtype=recipe.dtype)
    if augmentations and recipe.augmented_budget is not None:
        plain = training_examples(documents, recipe.split_sentences)
        settings = settings.model_copy(update={"epochs": augmented_epochs(
            settings.epochs, plain, examples, recipe.augmented_budget, lm.tokenizer)})
    lm, training = finetune(lm, examples, settings, seed=recipe.seed or 0)
    answers = answer_questions(lm, questions, [q["question"] for q in questions], recipe.batch_size)
    if recipe.save_model:

        card = stage_model_card(recipe.model, settings.adapter, "generalization", method,
                                settings.model_dump(exclude={"output_dir"}), training)
        save_model(lm.model, lm.tokenizer, workdir / "model", base_model=recipe.model, card=card)
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
    from underdog.methods.parts.augment import MAX_NEW_TOKENS

    if kind == "local":
        return {"beams": 1, "max_new_tokens": MAX_NEW_TOKENS}
    return {"beams": recipe.global_beams, "max_new_tokens": MAX_NEW_TOKENS, "context": recipe.global_context,
            "links": recipe.global_links, "rounds": recipe.global_rounds,
            "per_document": recipe.global_per_document, "budget": recipe.icl_budget}


def run_augment(kind: str, documents, recipe, lm, facts, tmp: Path) -> dict:
    from underdog.methods.parts import augment
    from underdog.methods.parts.finetune import split_sentences

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


    if recipe.lanes:
        return recipe.lanes
    on_gpu = resolve_device(recipe.device).type == "cuda"
    return 1 if on_gpu or torch.get_num_threads() < 2 else 2


def run_generalization(recipe: GeneralizationRecipe, log=print) -> dict:
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
        inputs.update(train=(recipe.lora if method == "ft-lora" else recipe.train).stage_key(),
                      split=recipe.split_sentences, augmentations=hash_inputs(extra))
        if extra:
            inputs["augmented_budget"] = recipe.augmented_budget
        if recipe.save_model:
            inputs["save_model"] = True
        jobs.append((len(extra), method, inputs, partial(run_finetuned, method, documents, questions, recipe, extra)))
    jobs.sort(key=lambda job: -job[0])  # most augmentations (longest training) first
    outputs.update(run.stages_in_lanes([job[1:] for job in jobs], fine_tuning_lanes(recipe)))
    outputs = {m: outputs[m] for m in recipe.methods}
    compare = run_compare(recipe, run, documents, questions, data_key, log) if recipe.compare_model else {}
    if recipe.save_model:
        keep_best_model(recipe, run, outputs, log)
    summaries = {kind: {"counts": aug["counts"], "truth": aug["truth"], "sample": aug["augmentations"][:6],
                        "file": str(run.stage_dir(f"augment-{kind}") / f"augmentations_{kind}.jsonl")}
                 for kind, aug in augmented.items()}
    return write_generalization_results(run, recipe, outputs, source, lm, summaries, questions, compare)


def keep_best_model(recipe: GeneralizationRecipe, run: Run, outputs: dict, log) -> None:
    """``save_model``: the fine-tuned arm with the most test questions right, copied to ``<out>/model``."""

    trained = [m for m in outputs if "training" in outputs[m]]
    if not trained:
        log("save_model: no fine-tuned arm in `methods`, nothing to keep")
        return
    best = max(trained, key=lambda m: sum(a["correct"] for a in outputs[m]["answers"]))
    keep_model(run.stage_dir(best) / "model", run.dir / "model")
    log(f"save_model: the {best} model -> {run.dir / 'model'}")


def run_compare(recipe: GeneralizationRecipe, run: Run, documents, questions, data_key: str, log) -> dict:
    """The larger model's answers to the same questions, by each of ``compare_methods`` (stages
    ``compare-<method>``)."""

    big = load(recipe.compare_model, device=recipe.device, dtype=recipe.dtype)
    model_key = hash_inputs([recipe.compare_model, big.info, weights_stamp(big.path)])
    out = {}
    for method in recipe.compare_methods:
        inputs = {"method": method, "data": data_key, "model": model_key, "budget": recipe.icl_budget,
                  "seed": recipe.seed, **({"context": recipe.icl_context} if method == "icl" else {})}
        out[method] = run.stage(f"compare-{method}", inputs,
                                lambda tmp, m=method: RUNNERS[m](big, documents, questions, recipe))
    return out


def generalization_verdict(recipe: GeneralizationRecipe, outputs: dict, compare: dict) -> dict | None:
    """Pooled accuracy over every test question: the small model's best method (not ``none``) vs ``none`` vs
    the larger model's best method (all chosen on these questions, the same rule for both models)."""

    def pooled(out: dict) -> list[float]:
        return [float(a["correct"]) for a in out["answers"]]

    def best(outs: dict) -> str:
        return max(outs, key=lambda m: sum(pooled(outs[m])))

    methods = {m: o for m, o in outputs.items() if m != "none"}
    if not methods:
        return None
    m = best(methods)
    base = ("none", pooled(outputs["none"])) if "none" in outputs else None
    large = None
    if compare:
        b = best(compare)
        large = (f"{recipe.compare_model} + {b}", pooled(compare[b]))
    return verdict("accuracy (all splits)", (f"{recipe.model} + {m}", pooled(outputs[m])),
                   (f"{recipe.model} + none", base[1]) if base else None, large, seed=recipe.seed or 0)


def accuracy_by_kind(outputs: dict, questions: list[dict]) -> dict:
    """Accuracy (95% CI, and ``n``) of every method on every split and knowledge kind (comparison, family,
    ...), keyed ``"<split>:<kind>/<method>"``: which kind of fact a split's score hides."""
    kind_of = {q["id"]: q.get("kind", "unknown") for q in questions}
    metrics: dict = {}
    for method, out in outputs.items():
        cells: dict[str, list[bool]] = {}
        for a in out["answers"]:
            cells.setdefault(f"{a['split']}:{kind_of.get(a['id'], 'unknown')}", []).append(a["correct"])
        metrics.update({f"{cell}/{method}": {**mean_with_ci(c), "n": len(c)} for cell, c in cells.items()})
    return metrics


def write_generalization_results(run: Run, recipe, outputs: dict, source: dict, lm, summaries: dict,
                                 questions: list[dict], compare: dict | None = None) -> dict:
    compare = compare or {}
    arms = {**outputs, **{f"{recipe.compare_model}:{m}": o for m, o in compare.items()}}
    metrics, per_split = {}, {}
    splits = [s for s in SPLITS if any(a["split"] == s for o in arms.values() for a in o["answers"])]
    for method, out in arms.items():
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
    extra["by_kind"] = accuracy_by_kind(arms, questions)
    extra["training"] = {m: out["training"] for m, out in outputs.items() if "training" in out}
    extra["verdict"] = generalization_verdict(recipe, outputs, compare)
    results = run.write_results("generalization", recipe.model, f"world {source}", metrics, per_split, extra)
    write_report(run.dir)
    return results


NAME = "generalization"
Recipe = GeneralizationRecipe
run = run_generalization
DEMO_SECONDS = 58


def demo_recipe(out: str, model: str, seed: int, quick: bool) -> GeneralizationRecipe:
    scale = 0.25 if quick else 1.0
    return GeneralizationRecipe(model=model, seed=seed, methods=["none", "icl", "ft", "aug-local"], out=out,
                                max_per_split=int(80 * scale), global_links=1,
                                compare_model="builtin-large" if model == "builtin" else None)
