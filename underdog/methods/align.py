"""Alignment study: preference tuning (DPO through TRL) and learned abstention, side by side with ASPIRE.

Data: world QA of ``seed`` cut exactly as ASPIRE cuts it (same ``n_train``/``n_dev``/``n_test``, so the same
test questions; ``extra_questions`` more world questions after those, for pairs only), or QA JSONL files.
Stages (cached, resumable): ``aspire`` (ASPIRE run into ``OUT/aspire`` unless ``aspire_run`` names a
finished one on the same questions, checked by question ids), an optional ``sft`` stage (``underdog.train`` on
prompt -> reference answer, or R-Tuning's refusal-aware targets), ``sample`` (the greedy and k sampled answers
per pair question, marked correct at Rouge-L >= ``gamma``), ``dpo`` (TRL's ``DPOTrainer`` on correct > wrong
pairs only) and ``aligned`` (the same plus the abstention pairs: "I don't know." > wrong for unknown questions,
correct > "I don't know." for known ones, by greedy correctness or sample majority;
``methods.parts.preference``), each saved with ``save_pretrained`` and loaded back through
``underdog.lm.load``; ``eval-*`` answers the test questions greedily (base, dpo: an answer equal to the
abstention text is an abstention). The aligned model answers dev and test questions with the abstention's
first token banned and abstains by ``rule`` (``align_results.apply_rule``): P(that token) above a threshold
chosen on dev, or that token being its greedy choice; ``1 - P`` is its confidence score. Self-consistency
(``eval.consistency``) runs on the base model's samples. Results: accuracy, coverage, accuracy on answered
questions, abstention precision and recall (abstained on questions the base model got wrong), selective
metrics where a score exists, ASPIRE and ``builtin-large``'s best baseline read at the aligned model's coverage
(paired bootstrap differences), and the verdict. Extra preference pairs from a user's file (``preferences``,
TRL format) join the aligned arm.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from underdog import UnderdogError
from underdog.config import Strict, TrainSettings, build_config
from underdog.eval.metrics import normalize_answer, rouge_l
from underdog.io import read_jsonl, write_jsonl
from underdog.lm import load
from underdog.lm.load import weights_stamp
from underdog.methods.align_results import apply_rule
from underdog.methods.parts.preference import DPOSettings, build_pairs, count_pairs, train_dpo
from underdog.report import write_report
from underdog.runs import Run, hash_inputs
from underdog.tasks.preference import read_preferences, write_preferences
from underdog.tasks.qa import qa_completion, qa_prompt, read_qa, world_qa
from underdog.train import TrainConfig, train

NAME = "align"
DEMO_SECONDS = 37
BASELINES = ("perplexity", "predictive_entropy", "semantic_entropy", "ptrue", "selfeval")


class Recipe(Strict):
    model: str = "builtin"
    compare_model: str | None = "builtin-large"  # the larger model, answered by ASPIRE's stage here
    task: Literal["world-qa"] | None = "world-qa"
    seed: int = 0
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    n_train: int = Field(400, gt=0)  # world-qa sizes: ASPIRE's defaults, so its test questions
    n_dev: int = Field(200, ge=0)
    n_test: int = Field(600, gt=0)
    world_options: bool = True
    out: str = "runs/align"
    device: str = "auto"
    pair_questions: int = Field(400, gt=0)  # training questions for preference pairs (the first ones)
    extra_questions: int = Field(400, ge=0)  # world-qa only: more pair questions, the world's next after the test
    k: int = Field(4, gt=1)  # sampled answers per pair question
    temperature: float = Field(1.0, gt=0)
    batch_size: int = Field(16, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    gamma: float = Field(0.7, gt=0, le=1)  # Rouge-L threshold of a correct answer
    abstain_text: str = "I don't know"
    # abstention labels: "greedy" (R-Tuning: a question is unknown when the greedy answer is wrong) or "samples"
    # (unknown below ``majority`` share of correct samples)
    labels: Literal["greedy", "samples"] = "greedy"
    majority: float = Field(0.25, gt=0, le=1)
    per_question: int = Field(1, gt=0)  # pairs of each kind per question
    reference: bool = False  # the reference answer as "correct" for questions with no correct sample
    balance: bool = False  # repeat correct > abstain pairs up to the abstain > wrong count (preference.build_pairs)
    # the aligned model's abstention: "threshold" (P(abstention's first token) above a threshold tuned on dev;
    # otherwise it answers with that token banned) or "greedy" (abstain when that token is the argmax)
    rule: Literal["threshold", "greedy"] = "threshold"
    min_coverage: float = Field(0.3, gt=0, le=1)  # the threshold's floor on dev coverage
    preferences: str | None = None  # extra preference JSONL (TRL format) for the aligned arm
    sft: TrainSettings | None = None  # optional SFT stage before DPO (underdog.train)
    # the SFT targets: "reference" answers of the training questions (before sampling; both arms start from it),
    # or "refusal" (R-Tuning): per pair question its greedy answer when right, else the abstention (after
    # sampling the base model; only the aligned arm starts from it)
    sft_targets: Literal["reference", "refusal"] = "reference"
    # LoRA (PEFT's implicit reference), DPO + the chosen answers' likelihood (RPO); why: docs/studies.md
    dpo: DPOSettings = DPOSettings(adapter="lora", lr=1e-3, beta=0.3, epochs=1, sft_weight=1.0)
    lanes: int = Field(2, ge=1)  # DPO arms trained side by side in worker processes
    consistency_samples: int = Field(5, gt=1)
    aspire_run: str | None = None  # a finished ASPIRE run on the same questions; None: run ASPIRE here
    aspire: bool = True  # run ASPIRE here when aspire_run is not given
    aspire_overrides: dict = {}  # ASPIRE recipe keys for the run made here (e.g. smaller tune epochs)
    n_boot: int = Field(1000, gt=0)

    @model_validator(mode="after")
    def _data(self) -> Recipe:
        if self.task is None and not (self.train and self.test):
            raise ValueError("give task world-qa or both train and test files")
        if self.task is not None and (self.train or self.test or self.dev):
            raise ValueError("give either task or train/test/dev files, not both")
        if not self.abstain_text.strip():
            raise ValueError("abstain_text is empty")
        if self.rule == "threshold" and (not self.dev if self.task is None else self.n_dev == 0):
            raise ValueError("rule threshold tunes its threshold on dev questions: give dev (or n_dev > 0), or "
                             "rule greedy")
        return self


def demo_recipe(out: str, model: str, seed: int, quick: bool) -> Recipe:
    """The demo's part: ASPIRE's demo questions (its sizes), read from the demo's finished ASPIRE run beside
    ``out`` when there is one (no second ASPIRE run), up to 120 of its training questions (no extra ones) for
    pairs, 3 self-consistency samples."""
    aspire, _, _ = _aspire_module()
    sibling = Path(out).parent / "aspire"
    a = aspire.demo_recipe(str(sibling), model, seed, quick)
    done = (sibling / "results.json").is_file() and (sibling / "answers.jsonl").is_file()
    return Recipe(out=out, model=model, seed=seed, n_train=a.n_train, n_dev=a.n_dev, n_test=a.n_test,
                  world_options=a.world_options, compare_model=a.compare_model,
                  pair_questions=min(a.n_train, 120), extra_questions=0, k=4, consistency_samples=3,
                  aspire_run=str(sibling) if done else None, aspire=False,
                  n_boot=300 if quick else 1000)


def load_data(recipe: Recipe) -> dict[str, list[dict]]:
    """train/dev/test (and ``extra``: world questions after the test ones, for preference pairs only)."""
    if recipe.task == "world-qa":
        data = world_qa(recipe.seed, recipe.n_train, recipe.n_dev, recipe.n_test + recipe.extra_questions,
                        options=recipe.world_options)
        return {**data, "test": data["test"][:recipe.n_test], "extra": data["test"][recipe.n_test:]}
    return {"train": read_qa(recipe.train), "dev": read_qa(recipe.dev) if recipe.dev else [],
            "test": read_qa(recipe.test)}


def is_abstention(text: str, abstain_text: str) -> bool:
    return normalize_answer(text).startswith(normalize_answer(abstain_text))


# ---- ASPIRE on the same questions -----------------------------------------------------------------------------
def _aspire_module():
    from underdog.methods import aspire

    return aspire, getattr(aspire, "Recipe", None) or aspire.AspireRecipe, \
        getattr(aspire, "run", None) or aspire.run_aspire


def run_aspire_here(recipe: Recipe, out: Path, log: Callable[[str], None]) -> Path:
    _, aspire_recipe, aspire_run = _aspire_module()
    data = {"model": recipe.model, "compare_model": recipe.compare_model, "task": recipe.task, "seed": recipe.seed,
            "train": recipe.train, "dev": recipe.dev, "test": recipe.test, "n_train": recipe.n_train,
            "n_dev": recipe.n_dev, "n_test": recipe.n_test, "world_options": recipe.world_options,
            "out": str(out), "device": recipe.device, "n_boot": recipe.n_boot, **recipe.aspire_overrides}
    aspire_run(build_config(aspire_recipe, data), log=log)
    return out


def read_aspire(run_dir: str | Path, test: list[dict]) -> dict:
    """ASPIRE's test rows, its α, and the compare model's rows, checked to be on ``test`` (ids, in order)."""
    run_dir = Path(run_dir)
    if not (run_dir / "results.json").is_file() or not (run_dir / "answers.jsonl").is_file():
        raise UnderdogError(f"aspire_run {run_dir}: not a finished ASPIRE run (results.json, answers.jsonl)")
    results = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))
    rows = read_jsonl(run_dir / "answers.jsonl")
    if [r["id"] for r in rows] != [q["id"] for q in test]:
        raise UnderdogError(f"aspire_run {run_dir}: its test questions differ from this study's (same seed, "
                            f"n_train, n_dev, n_test and world_options as that run?)")
    compare = read_jsonl(run_dir / "answers_compare.jsonl") if (run_dir / "answers_compare.jsonl").is_file() else []
    return {"rows": rows, "alpha": results["summary"]["alpha"], "compare": compare,
            "compare_model": results["config"].get("compare_model"), "model": results["model"]}


# ---- training stages -------------------------------------------------------------------------------------------
def run_sft(model_path: str, items: list[dict], recipe: Recipe, tmp: Path, targets: list[str] | None = None) -> dict:
    """SFT on prompt -> ``targets`` (default: each item's reference answer); the merged model lands in
    ``tmp/model``."""
    lm, s = load(model_path, device=recipe.device), recipe.sft
    options = {"r": s.lora_r, "alpha": s.lora_alpha} if s.adapter == "lora" else {}
    config = TrainConfig(lr=s.lr, epochs=s.epochs, max_steps=s.max_steps, batch_size=s.batch_size,
                         grad_accum=s.grad_accum, max_length=s.max_length, warmup_ratio=s.warmup_ratio,
                         weight_decay=s.weight_decay, adapter=s.adapter, adapter_options=options, seed=recipe.seed)
    targets = targets or [q["answers"][0] for q in items]
    examples = [{"prompt": qa_prompt(q), "completion": qa_completion(t)} for q, t in zip(items, targets)]
    result = train(lm.model, lm.tokenizer, examples, config)
    model = result.model.merge_and_unload() if s.adapter == "lora" else result.model
    model.save_pretrained(tmp / "model", safe_serialization=True)
    lm.tokenizer.save_pretrained(tmp / "model")
    return {"steps": result.final_step, "first_loss": result.losses[0], "last_loss": float(np.mean(result.losses[-5:]))}


def run_dpo_arm(model_path: str, pairs: list[dict], recipe_json: str, tmp: Path) -> dict:
    """One DPO arm (module level, so that it can run in a worker process)."""
    recipe = Recipe.model_validate_json(recipe_json)
    lm = load(model_path, device=recipe.device)
    out = train_dpo(lm.model, lm.tokenizer, pairs, recipe.dpo, tmp, seed=recipe.seed, device=recipe.device)
    return {"steps": out["steps"], "history": out["history"], "pairs": count_pairs(pairs), "n_pairs": len(pairs)}


# ---- answering ---------------------------------------------------------------------------------------------------
def _batches(items: list[dict], size: int) -> list[list[int]]:
    order = sorted(range(len(items)), key=lambda i: -len(qa_prompt(items[i])))
    return [order[i:i + size] for i in range(0, len(order), size)]


@torch.no_grad()
def answer(lm, items: list[dict], recipe: Recipe, samples: int = 0, temperature: float = 1.0,
           greedy: bool = True, ban_abstain: bool = False) -> list[dict]:
    """Per item: the greedy answer (correct, abstained, confidence = 1 - P(first abstention token)) and
    ``samples`` sampled answers (text, correct), from one prefill per batch. ``ban_abstain``: the greedy answer
    is decoded with the abstention's first token banned at the first step (the answer given when the model does
    not abstain), ``abstained`` is False and ``abstained_greedy`` says whether that token was the argmax."""
    from underdog.methods.parts.selfeval import Tuned, decode, prefill

    tuned = Tuned(lm.model, lm.tokenizer)
    first = lm.tokenizer.encode(qa_completion(recipe.abstain_text), add_special_tokens=False)[0]
    gen = torch.Generator().manual_seed(recipe.seed + 7)
    out: list[dict | None] = [None] * len(items)
    for idx in _batches(items, recipe.batch_size):
        prompts = [tuned.encode(qa_prompt(items[i]), special=True) for i in idx]
        state, logits = prefill(tuned, prompts)
        p_abstain = torch.softmax(logits, -1)[:, first].tolist()
        top = logits.argmax(-1).tolist()
        greedy_answers = sampled = None
        if greedy:
            fork = (state.copy(), logits.clone()) if samples else None
            start = logits.clone() if ban_abstain else logits
            if ban_abstain:
                start[:, first] = float("-inf")
            greedy_answers, _ = decode(tuned, prompts, max_new_tokens=recipe.max_new_tokens, start=(state, start))
            state, logits = fork if samples else (None, None)
        if samples:
            sampled, _ = decode(tuned, prompts, n=samples, method="sample", temperature=temperature, generator=gen,
                                max_new_tokens=recipe.max_new_tokens, start=(state, logits))
        for r, i in enumerate(idx):
            refs = items[i]["answers"]
            row: dict = {"id": items[i]["id"], "split": items[i].get("split")}
            if greedy_answers is not None:
                text = greedy_answers[r][0].text
                abstained = is_abstention(text, recipe.abstain_text)
                row.update({"answer": text, "abstained": abstained and not ban_abstain,
                            "confidence": 1.0 - p_abstain[r], "p_abstain": p_abstain[r],
                            "correct": (not abstained) and bool(text.strip()) and rouge_l(text, refs) >= recipe.gamma})
                if ban_abstain:
                    row["abstained_greedy"] = top[r] == first
            if sampled is not None:
                row["samples"] = [{"text": a.text, "correct": bool(a.text.strip()) and rouge_l(a.text, refs)
                                   >= recipe.gamma} for a in sampled[r]]
            out[i] = row
    return out  # type: ignore[return-value]


def run(recipe: Recipe, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the study; returns the results dict written to ``results.json``."""
    from underdog.methods.align_results import write_results

    extra_pairs = read_preferences(recipe.preferences) if recipe.preferences else []
    if extra_pairs and isinstance(extra_pairs[0]["prompt"], list):
        raise UnderdogError(f"{recipe.preferences}: conversational pairs need a chat model; this study's QA "
                            f"prompts are plain text (give plain pairs)")
    data = load_data(recipe)
    log(f"data: {', '.join(f'{k} {len(v)}' for k, v in data.items())} questions")
    run_ = Run(recipe.out, recipe.model_dump(), log=log)
    if recipe.aspire_run:
        aspire = read_aspire(recipe.aspire_run, data["test"])
    elif recipe.aspire:
        aspire = read_aspire(run_aspire_here(recipe, run_.dir / "aspire", log), data["test"])
    else:
        aspire = None
    base = load(recipe.model, device=recipe.device)
    key = {"model": recipe.model, "weights": weights_stamp(base.path), "seed": recipe.seed, "gamma": recipe.gamma,
           "max_new_tokens": recipe.max_new_tokens, "abstain": recipe.abstain_text}
    test_key = {**key, "test": hash_inputs(data["test"]), "n": recipe.consistency_samples}
    base_rows = run_.stage("eval-base", test_key, lambda tmp: answer(base, data["test"], recipe,
                                                                      samples=recipe.consistency_samples))
    policy = recipe.model
    train_items = data["train"][:recipe.pair_questions] + data.get("extra", [])
    if recipe.sft is not None and recipe.sft_targets == "reference":
        key = {**key, "sft": recipe.sft.model_dump(), "train": hash_inputs(data["train"])}
        run_.stage("sft", key, functools.partial(run_sft, recipe.model, data["train"], recipe))
        policy = str(run_.stage_dir("sft") / "model")
    sample_key = {**key, "items": hash_inputs(train_items), "k": recipe.k, "temperature": recipe.temperature,
                  "greedy": True}
    pol = load(policy, device=recipe.device) if policy != recipe.model else base
    sampled = run_.stage("sample", sample_key, lambda tmp: answer(pol, train_items, recipe, samples=recipe.k,
                                                                  temperature=recipe.temperature))
    shared = {"abstain_text": recipe.abstain_text, "majority": recipe.majority, "per_question": recipe.per_question,
              "reference": recipe.reference, "balance": recipe.balance, "labels": recipe.labels}
    arms = {"dpo": build_pairs(train_items, sampled, **{**shared, "abstain_text": None}),
            "aligned": build_pairs(train_items, sampled, **shared) + [{**p, "kind": "user"} for p in extra_pairs]}
    if not arms["dpo"] and not recipe.reference:  # no question had both a correct and a wrong sample
        arms["dpo"] = build_pairs(train_items, sampled, **{**shared, "abstain_text": None, "reference": True})
        log("dpo: no question with both a correct and a wrong sample; the reference answers stand in as correct")
    for arm, pairs in arms.items():
        log(f"{arm}: {len(pairs)} preference pairs {count_pairs(pairs)}")
        write_jsonl(run_.dir / f"pairs_{arm}.jsonl", pairs)
        write_preferences(run_.dir / f"pairs_{arm}_trl.jsonl", pairs)
        if not pairs:
            raise UnderdogError(f"{arm}: no preference pairs from {len(train_items)} questions (raise pair_questions "
                                f"or k)")
    policies = {arm: policy for arm in arms}
    if recipe.sft is not None and recipe.sft_targets == "refusal":
        targets = [s["answer"] if s["correct"] else recipe.abstain_text for s in sampled]
        sft_key = {"sample": hash_inputs(sample_key), "sft": recipe.sft.model_dump(), "targets": targets}
        result = run_.stage("sft", sft_key, functools.partial(run_sft, policy, train_items, recipe, targets=targets))
        log(f"sft (refusal targets, {sum(t == recipe.abstain_text for t in targets)} of {len(targets)} abstain): "
            f"loss {result['first_loss']:.3f} -> {result['last_loss']:.3f}")
        policies["aligned"] = str(run_.stage_dir("sft") / "model")
    recipe_json = recipe.model_dump_json()
    dpo_key = {"sample": hash_inputs(sample_key), "dpo": recipe.dpo.model_dump()}
    jobs = [(arm, {**dpo_key, "pairs": hash_inputs(pairs), "policy": policies[arm]},
             functools.partial(run_dpo_arm, policies[arm], pairs, recipe_json)) for arm, pairs in arms.items()]
    training = run_.stages_in_lanes(jobs, lanes=recipe.lanes)
    evals, dev_rows = {}, []
    for arm in arms:
        tuned = load(run_.stage_dir(arm) / "model", device=recipe.device)  # round trip through save_pretrained
        if hasattr(tuned.model, "merge_and_unload"):  # a LoRA adapter on its base
            tuned.model = tuned.model.merge_and_unload().eval()
        ban = arm == "aligned"
        arm_key = {**test_key, "arm": hash_inputs(training[arm]), "ban_abstain": ban}
        evals[arm] = run_.stage(f"eval-{arm}", arm_key,
                                lambda tmp, t=tuned, b=ban: answer(t, data["test"], recipe, ban_abstain=b))
        if ban and data["dev"]:
            dev_rows = run_.stage("eval-aligned-dev", {**arm_key, "dev": hash_inputs(data["dev"])},
                                  lambda tmp, t=tuned: answer(t, data["dev"], recipe, ban_abstain=True))
    rule = apply_rule(evals["aligned"], dev_rows, recipe.rule, recipe.min_coverage)
    log(f"aligned: {rule['name']}")
    write_jsonl(run_.dir / "answers.jsonl", [{**b, "dpo": d["answer"],
                                              "aligned": recipe.abstain_text if a["abstained"] else a["answer"],
                                              "aligned_abstained": a["abstained"], "aligned_p_abstain": a["p_abstain"]}
                                             for b, d, a in zip(base_rows, evals["dpo"], evals["aligned"])])
    results = write_results(run_, recipe, data["test"], base_rows, evals, training, aspire, base.info, rule)
    write_report(run_.dir)
    return results
