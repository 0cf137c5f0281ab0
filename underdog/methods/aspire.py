"""ASPIRE (Chen et al., Findings of EMNLP 2023): selective prediction with learned self-evaluation.

setup: QA splits (JSONL files, or ``world-qa`` from a fresh world) and a frozen base model. Stage 1 (``tune``)
trains a soft prompt θp (PEFT prompt tuning through ``underdog.train``; LoRA as an option) on
prompt -> " answer.". Stage 2 (``sample-NNN``, one cached stage per chunk of training questions, so a killed
run resumes mid-stage) draws k answers per question by beam search or sampling with their log-likelihoods and
labels each correct when its Rouge-L against a reference is >= γ̂. Stage 3 (``selfeval``) trains θs, soft
tokens placed after the answer and before a judgement prompt, so that the next token is " Correct" for the
reference and the top correct samples and " Incorrect" for the top wrong ones (the empty answer when none was
wrong); see ``methods.parts.selfeval``. Inference (``infer-*``) answers greedily with θp and judges on the
generation's own KV cache: g = (1 - α) · mean answer log-prob + α · log P(correct) / (P(correct) +
P(incorrect)), α tuned on dev. The same answers get the baselines (perplexity, predictive and lexical semantic
entropy from sampled answers, P(True), untrained self-evaluation), and a second, larger model answers the
same test set with its baselines. evaluate: selective metrics with bootstrap CIs (``eval.selective``),
``results.json``, ``report.md`` and an accuracy-coverage plot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator

from underdog.config import Strict, TrainConfig
from underdog.eval.metrics import normalize_answer, rouge_l
from underdog.eval.selective import auacc, selective_metrics
from underdog.eval.verdict import verdict
from underdog.io import write_jsonl
from underdog.lm import load
from underdog.lm.load import weights_stamp
from underdog.methods.parts.selfeval import (
    SoftJudge,
    Tuned,
    decode,
    judge_tokens,
    prefill,
    suffix_logits,
    two_way,
)
from underdog.report import write_report
from underdog.runs import Run, hash_inputs
from underdog.tasks.qa import qa_completion, qa_prompt, read_qa, world_qa
from underdog.train import load_adapter, save_trained, train
from underdog.train.save import keep_model, save_model, stage_model_card

BASELINES = ("perplexity", "predictive_entropy", "semantic_entropy", "ptrue", "selfeval")
PTRUE = "\nProposed answer: {answer}. Is the proposed answer: (A) True (B) False? The proposed answer is"


class SampleSettings(Strict):
    method: Literal["beam", "sample"] = "beam"
    k: int = Field(4, gt=0)  # answers per training question
    temperature: float = Field(1.0, gt=0)
    chunk: int = Field(100, gt=0)  # training questions per resumable stage


class SelfEvalSettings(Strict):
    soft_tokens: int = Field(16, gt=0)  # θs length
    lr: float = Field(0.05, gt=0)
    epochs: float = Field(6.0, gt=0)
    batch_questions: int = Field(8, gt=0)
    top_correct: int = Field(2, ge=0)
    top_wrong: int = Field(2, gt=0)
    # the reference answer as a "correct" example: always | if_none_correct | never (see judge_examples)
    reference: Literal["always", "if_none_correct", "never"] = "never"
    prompt: str = " Correct or incorrect?"
    correct_word: str = " Correct"  # the judgement token for a correct answer
    incorrect_word: str = " Incorrect"
    init_text: str = " Correct or incorrect?"


class AspireRecipe(Strict):
    model: str = "builtin"
    compare_model: str | None = "builtin-large"  # answered without ASPIRE (its baselines); "" or null: none
    task: Literal["world-qa"] | None = None
    seed: int = 0
    train: str | None = None
    dev: str | None = None
    test: str | None = None
    n_train: int = Field(400, gt=0)  # world-qa sizes
    n_dev: int = Field(200, ge=0)
    n_test: int = Field(600, gt=0)
    world_options: bool = True  # world-qa: list the answer choices in the question (the built-in model
    # answers only ~4% of the open questions; with options ~11%)
    out: str = "runs/aspire"
    device: str = "auto"
    batch_size: int = Field(16, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    stop_at_period: bool = True  # an answer ends with its first "."-final token (else: at the newline)
    gamma: float = Field(0.7, gt=0, le=1)  # Rouge-L threshold of a correct answer (evaluation)
    gamma_hat: float = Field(0.9, gt=0, le=1)  # stricter threshold for self-evaluation training labels
    tune: TrainConfig = TrainConfig(adapter="prompt", lr=0.03, epochs=2, batch_size=8, max_length=1024,
                                    num_virtual_tokens=8, warmup_ratio=0.05)
    samples: SampleSettings = SampleSettings()
    selfeval: SelfEvalSettings = SelfEvalSettings()
    alpha: float | None = Field(None, ge=0, le=1)  # None: tuned on dev (0.25 without a dev split)
    baseline_samples: int = Field(5, gt=1)  # sampled answers per test question for the entropy baselines
    n_boot: int = Field(1000, gt=0)
    save_model: bool = False  # keep θp (PEFT adapter) + θs (theta_s.safetensors) in <out>/model

    @model_validator(mode="after")
    def _data(self) -> AspireRecipe:
        if self.task is None and not (self.train and self.test):
            raise ValueError("give --task world-qa or both --train and --test files")
        if self.task is not None and (self.train or self.test or self.dev):
            raise ValueError("give either --task or --train/--test/--dev files, not both")
        return self


def load_data(recipe: AspireRecipe) -> dict[str, list[dict]]:
    if recipe.task == "world-qa":
        return world_qa(recipe.seed, recipe.n_train, recipe.n_dev, recipe.n_test, options=recipe.world_options)
    return {"train": read_qa(recipe.train), "dev": read_qa(recipe.dev) if recipe.dev else [],
            "test": read_qa(recipe.test)}


def is_correct(text: str, answers: list[str], gamma: float) -> tuple[float, bool]:
    r = rouge_l(text, answers) if text.strip() else 0.0
    return r, r >= gamma


# ---- stage 1: θp ---------------------------------------------------------------------------------------------
def run_tune(lm, items: list[dict], recipe: AspireRecipe, tmp: Path) -> dict:
    from safetensors.torch import save_file


    s = recipe.tune
    init = {"init_text": "Question: Answer:"} if s.adapter == "prompt" else {}
    config = s.model_copy(update={"seed": recipe.seed, "log_every": 5,
                                  "adapter_options": {**init, **s.adapter_options}})
    examples = [{"prompt": qa_prompt(q), "completion": qa_completion(q["answers"][0])} for q in items]
    result = train(lm.model, lm.tokenizer, examples, config)
    model = result.model
    if recipe.save_model:  # θp as a PEFT adapter that underdog.lm.load and plain PEFT read

        card = stage_model_card(recipe.model, s.adapter, "aspire", "θp (task-tuned)",
                                s.model_dump(exclude={"output_dir"}), {"steps": result.final_step,
                                                                        "losses": result.losses})
        save_model(model, lm.tokenizer, tmp / "model", base_model=recipe.model, card=card)
    if s.adapter == "prompt":
        prefix = model.get_prompt_embedding_to_save(model.active_adapter).detach().float().cpu()
        save_file({"prefix": prefix.contiguous()}, str(tmp / "prefix.safetensors"))
    else:
        save_trained(model, tmp / "adapter")
    lm.model = (model.get_base_model() if s.adapter == "prompt" else model.unload()).eval()  # the clean base
    return {"adapter": s.adapter, "steps": result.final_step, "first_loss": result.losses[0],
            "last_loss": float(np.mean(result.losses[-5:])), "seconds": result.wall_time_s,
            "tokens_per_s": result.tokens_per_s}


def load_tuned(lm, stage: Path) -> Tuned:
    from safetensors.torch import load_file


    if (stage / "prefix.safetensors").is_file():
        return Tuned(lm.model, lm.tokenizer, load_file(str(stage / "prefix.safetensors"))["prefix"].to(lm.device))
    merged = load_adapter(lm.model, stage / "adapter").merge_and_unload().eval()
    return Tuned(merged, lm.tokenizer, None)


# ---- stage 2: answer sampling --------------------------------------------------------------------------------
def _batches(items: list[dict], size: int) -> list[list[int]]:
    """Index batches of similar prompt length."""
    order = sorted(range(len(items)), key=lambda i: -len(qa_prompt(items[i])))
    return [order[i:i + size] for i in range(0, len(order), size)]


def run_samples(tuned: Tuned, items: list[dict], recipe: AspireRecipe) -> list[dict]:
    from underdog.methods.parts.selfeval import beam_answers

    s, out = recipe.samples, [None] * len(items)
    gen = torch.Generator().manual_seed(recipe.seed)
    for idx in _batches(items, max(1, recipe.batch_size // s.k)):
        prompts = [tuned.encode(qa_prompt(items[i]), special=True) for i in idx]
        if s.method == "beam":
            answers = beam_answers(tuned, prompts, s.k, recipe.max_new_tokens, recipe.stop_at_period)
        else:
            answers = decode(tuned, prompts, n=s.k, method="sample", max_new_tokens=recipe.max_new_tokens,
                             temperature=s.temperature, stop_at_period=recipe.stop_at_period, generator=gen)[0]
        for i, samples in zip(idx, answers):
            rows = []
            for a in samples:
                r, ok = is_correct(a.text, items[i]["answers"], recipe.gamma_hat)
                rows.append({"text": a.text, "token_ids": a.token_ids, "logprob": a.logprob, "rouge": r, "correct": ok})
            out[i] = {"id": items[i]["id"], "samples": rows}
    return out


def judge_examples(tuned: Tuned, items: list[dict], sampled: list[dict], cfg: SelfEvalSettings) -> list[dict]:
    """Top correct and top wrong samples by likelihood (the empty answer when none is wrong), and the reference
    answer as a correct one: always, only for questions with no correct sample (``if_none_correct``), or never.

    The reference is text the model did not choose, usually less likely than its own (wrong) answers: as a
    positive for every question it teaches the judge that the model's likely answers are the wrong ones."""
    examples = []
    for q, s in zip(items, sampled):
        prompt = tuned.encode(qa_prompt(q), special=True)
        ranked = sorted(s["samples"], key=lambda a: -a["logprob"])
        right = [a for a in ranked if a["correct"]]
        wrong = [a for a in ranked if not a["correct"]] or [{"token_ids": []}]
        use_reference = cfg.reference == "always" or (cfg.reference == "if_none_correct" and not right)
        if use_reference:
            examples.append({"prompt_ids": prompt, "answer_ids": tuned.encode(qa_completion(q["answers"][0])),
                             "label": 1})
            ref = normalize_answer(q["answers"][0])
            right = [a for a in right if normalize_answer(a["text"]) != ref]  # not the reference twice
        examples += [{"prompt_ids": prompt, "answer_ids": a["token_ids"], "label": 1} for a in right[:cfg.top_correct]]
        examples += [{"prompt_ids": prompt, "answer_ids": a["token_ids"], "label": 0} for a in wrong[:cfg.top_wrong]]
    return examples


# ---- inference: answers, ASPIRE's judgement and the baselines on one cache ------------------------------------
EMPTY_LOGPROB = -100.0  # the mean log-prob given to an empty answer (no tokens, so no likelihood of its own)


def mean_logprob(sample) -> float:
    return sample.mean_logprob if sample.token_ids else EMPTY_LOGPROB


def _entropies(samples: list, gamma: float) -> tuple[float, float]:
    """Length-normalised predictive entropy, and discrete semantic entropy over lexical clusters (normalised
    exact match or Rouge-L >= gamma with a cluster's first member)."""
    pe = -float(np.mean([mean_logprob(a) for a in samples]))
    clusters: list[list[str]] = []
    for a in samples:
        for c in clusters:
            if normalize_answer(a.text) == normalize_answer(c[0]) or (a.text.strip() and c[0].strip() and
                                                                      rouge_l(a.text, [c[0]]) >= gamma):
                c.append(a.text)
                break
        else:
            clusters.append([a.text])
    p = np.array([len(c) for c in clusters], dtype=float) / len(samples)
    return pe, float(-(p * np.log(p)).sum())


@torch.no_grad()
def infer(tuned: Tuned, items: list[dict], recipe: AspireRecipe, judge: SoftJudge | None, log=print) -> list[dict]:
    """Greedy answers plus every confidence score, per item (in input order)."""
    cfg, tok = recipe.selfeval, tuned.tokenizer
    jp, yes, no = judge_tokens(tok, cfg.prompt, cfg.correct_word, cfg.incorrect_word)
    gen = torch.Generator().manual_seed(recipe.seed + 1)
    out: list[dict | None] = [None] * len(items)
    seconds = {"generate": 0.0, "judge": 0.0, "sample": 0.0}
    for idx in _batches(items, recipe.batch_size):
        prompts = [tuned.encode(qa_prompt(items[i]), special=True) for i in idx]
        t0 = time.perf_counter()
        start = prefill(tuned, prompts)
        fork = (start[0].copy(), start[1].clone())
        answers, state = decode(tuned, prompts, max_new_tokens=recipe.max_new_tokens, start=start,
                                stop_at_period=recipe.stop_at_period)
        t1 = time.perf_counter()
        scores = {"selfeval": two_way(suffix_logits(tuned, state, [[jp]] * len(idx)), yes, no)}
        if judge is not None:
            scores["judge"] = two_way(suffix_logits(tuned, state, [[judge.soft, jp]] * len(idx)), yes, no)
        t2 = time.perf_counter()
        pt = [judge_tokens(tok, PTRUE.format(answer=a[0].text), " (A)", " (B)") for a in answers]
        logits = suffix_logits(tuned, state, [[p[0]] for p in pt])
        scores["ptrue"] = torch.stack([two_way(logits[r:r + 1], p[1], p[2])[0] for r, p in enumerate(pt)])
        t3 = time.perf_counter()
        sampled, _ = decode(tuned, prompts, n=recipe.baseline_samples, method="sample", generator=gen,
                            max_new_tokens=recipe.max_new_tokens, stop_at_period=recipe.stop_at_period, start=fork)
        seconds["generate"] += t1 - t0
        seconds["judge"] += t2 - t1
        seconds["sample"] += time.perf_counter() - t3
        for r, i in enumerate(idx):
            a = answers[r][0]
            rouge, ok = is_correct(a.text, items[i]["answers"], recipe.gamma)
            pe, se = _entropies(sampled[r], recipe.gamma)
            row = {"id": items[i]["id"], "answer": a.text, "rouge": rouge, "correct": ok,
                   "split": items[i].get("split"), "n_tokens": len(a.token_ids),
                   "perplexity": mean_logprob(a), "predictive_entropy": -pe, "semantic_entropy": -se}
            row.update({k: float(v[r]) for k, v in scores.items()})
            out[i] = row
    log(f"inference on {len(items)} questions: " + ", ".join(f"{k} {v:.1f}s" for k, v in seconds.items()))
    return out  # type: ignore[return-value]


def aspire_scores(rows: list[dict], alpha: float) -> np.ndarray:
    return np.array([(1 - alpha) * r["perplexity"] + alpha * r["judge"] for r in rows])


def tune_alpha(rows: list[dict]) -> float:
    """α in {0, 0.05, ..., 1} with the best dev AUACC (ties: closest to ASPIRE's default 0.25)."""

    correct = [r["correct"] for r in rows]
    grid = np.round(np.arange(0, 1.0001, 0.05), 2)
    best = max(grid, key=lambda a: (round(auacc(aspire_scores(rows, a), correct), 6), -abs(a - 0.25)))
    return float(best)


def run_aspire(recipe: AspireRecipe, log: Callable[[str], None] = print) -> dict:
    """Run (or resume) the whole study; returns the results dict written to ``results.json``."""
    from underdog.methods.parts.selfeval import train_judge

    data = load_data(recipe)
    log(f"data: {', '.join(f'{k} {len(v)}' for k, v in data.items())} questions")
    lm = load(recipe.model, device=recipe.device)
    run = Run(recipe.out, recipe.model_dump(), log=log)
    base_key = {"model": recipe.model, "info": lm.info, "weights": weights_stamp(lm.path), "seed": recipe.seed,
                "max_new_tokens": recipe.max_new_tokens, "stop_at_period": recipe.stop_at_period}
    tune_key = {**base_key, "tune": recipe.tune.stage_key(), "train": hash_inputs(data["train"])}
    run.stage("tune", {**tune_key, **({"save_model": True} if recipe.save_model else {})},  # later stages: same θp
              lambda tmp: run_tune(lm, data["train"], recipe, tmp))
    tuned = load_tuned(lm, run.stage_dir("tune"))
    sample_key = {"tune": hash_inputs(tune_key), "samples": recipe.samples.model_dump(), "gamma_hat": recipe.gamma_hat}
    sampled = []
    chunk = recipe.samples.chunk
    for c in range(0, len(data["train"]), chunk):
        part = data["train"][c:c + chunk]
        sampled += run.stage(f"sample-{c // chunk:03d}", {**sample_key, "items": hash_inputs(part)},
                             lambda tmp, p=part: run_samples(tuned, p, recipe))
    n_right = sum(a["correct"] for s in sampled for a in s["samples"])
    log(f"stage 2: {n_right} of {sum(len(s['samples']) for s in sampled)} sampled answers correct (Rouge-L >= "
        f"{recipe.gamma_hat})")
    judge_key = {"samples": hash_inputs([sample_key, sampled]), "selfeval": recipe.selfeval.model_dump()}

    def learn(tmp: Path) -> dict:
        cfg = recipe.selfeval
        jp, yes, no = judge_tokens(tuned.tokenizer, cfg.prompt, cfg.correct_word, cfg.incorrect_word)
        examples = judge_examples(tuned, data["train"], sampled, cfg)
        judge = SoftJudge.from_text(tuned, cfg.soft_tokens, cfg.init_text)
        start = time.time()
        losses = train_judge(tuned, examples, judge, jp, yes, no, epochs=cfg.epochs, lr=cfg.lr,
                             batch_questions=cfg.batch_questions, seed=recipe.seed)
        judge.save(tmp / "theta_s.safetensors")
        return {"examples": len(examples), "positives": sum(e["label"] for e in examples), "steps": len(losses),
                "first_loss": losses[0], "last_loss": float(np.mean(losses[-10:])), "seconds": time.time() - start}

    judge_info = run.stage("selfeval", judge_key, learn)
    judge = SoftJudge.load(run.stage_dir("selfeval") / "theta_s.safetensors", lm.device)
    if recipe.save_model:
        import shutil


        kept = keep_model(run.stage_dir("tune") / "model", run.dir / "model")
        shutil.copy(run.stage_dir("selfeval") / "theta_s.safetensors", kept / "theta_s.safetensors")
        log(f"save_model: θp adapter + θs -> {kept}")
    infer_key = {**judge_key, "infer": [recipe.gamma, recipe.baseline_samples, recipe.batch_size,
                                        recipe.max_new_tokens, recipe.stop_at_period]}
    main = {split: run.stage(f"infer-{split}", {**infer_key, "items": hash_inputs(data[split])},
                             lambda tmp, s=split: infer(tuned, data[s], recipe, judge, log))
            for split in ("dev", "test") if data[split]}
    compare = None
    if recipe.compare_model:
        try:
            big = load(recipe.compare_model, device=recipe.device)
        except Exception as e:  # noqa: BLE001 - a missing compare model only drops that part of the study
            log(f"compare model {recipe.compare_model!r} skipped: {e}")
        else:
            key = {"model": recipe.compare_model, "info": big.info, "weights": weights_stamp(big.path),
                   "items": hash_inputs(data["test"]), "infer": infer_key["infer"], "seed": recipe.seed,
                   "selfeval": recipe.selfeval.model_dump()}
            compare = run.stage("infer-compare", key,
                                lambda tmp: infer(Tuned(big.model, big.tokenizer), data["test"], recipe, None, log))
    alpha = recipe.alpha if recipe.alpha is not None else (tune_alpha(main["dev"]) if "dev" in main else 0.25)
    log(f"alpha = {alpha}")
    return write_results(run, recipe, main["test"], compare, alpha, judge_info, lm)


# ---- evaluate ------------------------------------------------------------------------------------------------



def _half_width(entry: dict) -> float:
    lo, hi = entry["ci95"] or (entry["value"], entry["value"])
    return (hi - lo) / 2


def _auacc_rows(rows) -> float:
    return auacc(rows[:, 0], rows[:, 1])


def write_results(run: Run, recipe: AspireRecipe, rows: list[dict], compare: list[dict] | None, alpha: float,
                  judge_info: dict, lm) -> dict:
    correct = [r["correct"] for r in rows]
    scores = {"aspire": aspire_scores(rows, alpha), "aspire-judge-only": aspire_scores(rows, 1.0),
              **{b: [r[b] for r in rows] for b in BASELINES}}
    probability_of_correct = {"aspire-judge-only": "judge", "ptrue": "ptrue", "selfeval": "selfeval"}
    metrics, curves, calibration = {}, {}, {}
    for name, s in scores.items():
        column = probability_of_correct.get(name)
        if column:  # a log-probability of "correct": as a probability (same ranking) it also has an ECE
            s = np.exp([r[column] for r in rows])
            calibration[f"{recipe.model}: {name}"] = {"probs": [float(x) for x in s],
                                                       "correct": [int(c) for c in correct]}
        for m, entry in selective_metrics(s, correct, n_boot=recipe.n_boot, seed=recipe.seed,
                                          probability=column is not None).items():
            metrics[f"{name}/{m}"] = entry
    best_main = max(BASELINES, key=lambda b: metrics[f"{b}/auacc"]["value"])
    for name in ("aspire", best_main):
        curves[f"{recipe.model}: {name}" + (" (best baseline)" if name != "aspire" else "")] = \
            {"scores": [float(x) for x in scores[name]], "correct": [int(c) for c in correct]}
    best_compare, large = None, None
    if compare:
        c_correct = [r["correct"] for r in compare]
        for b in BASELINES:
            for m, entry in selective_metrics([r[b] for r in compare], c_correct, n_boot=recipe.n_boot,
                                              seed=recipe.seed).items():
                metrics[f"{recipe.compare_model}:{b}/{m}"] = entry
        best_compare = max(BASELINES, key=lambda b: metrics[f"{recipe.compare_model}:{b}/auacc"]["value"])
        large_scores = [float(r[best_compare]) for r in compare]
        curves[f"{recipe.compare_model}: {best_compare} (best baseline)"] = {"scores": large_scores,
                                                                             "correct": [int(c) for c in c_correct]}
        large = (f"{recipe.compare_model} + {best_compare}", np.c_[large_scores, c_correct])
    margins = {m: {b: metrics[f"aspire/{m}"]["value"] - metrics[f"{b}/{m}"]["value"] for b in BASELINES}
               for m in ("auroc", "auacc")}
    summary = {
        "alpha": alpha, "best_baseline": best_main, "compare_best_baseline": best_compare,
        "aspire_minus_baseline": margins,
        "aspire_beats_every_baseline": {m: all(d > 0 for d in margins[m].values()) for m in margins},
        # the goal: ahead of each baseline by more than that baseline's 95% CI half-width
        "aspire_ahead_beyond_ci": {m: all(margins[m][b] > _half_width(metrics[f"{b}/{m}"]) for b in BASELINES)
                                   for m in margins},
        "auacc_gap_vs_compare": (metrics["aspire/auacc"]["value"]
                                 - metrics[f"{recipe.compare_model}:{best_compare}/auacc"]["value"])
        if compare else None}
    per_split = {}
    for name, rs in (("main", rows), ("compare", compare or [])):
        for split in sorted({r.get("split") for r in rs if r.get("split")}):
            per_split.setdefault(split, {})[name] = float(np.mean([r["correct"] for r in rs if r["split"] == split]))
    write_jsonl(run.dir / "answers.jsonl", rows)
    if compare:
        write_jsonl(run.dir / "answers_compare.jsonl", compare)
    the_verdict = verdict(
        "AUACC", (f"{recipe.model} + ASPIRE", np.c_[scores["aspire"], correct]),
        (f"{recipe.model} + {best_main}", np.c_[scores[best_main], correct]), large, statistic=_auacc_rows,
        n_boot=recipe.n_boot, seed=recipe.seed)
    extra = {"summary": summary, "selfeval_training": judge_info, "model_info": lm.info, "n_test": len(rows),
             "curves": curves, "calibration": calibration, "stage_seconds": dict(run.timing), "verdict": the_verdict}
    results = run.write_results("aspire", recipe.model, recipe.task or str(recipe.test), metrics, per_split, extra)
    write_report(run.dir)
    return results


NAME = "aspire"
Recipe = AspireRecipe
run = run_aspire
DEMO_SECONDS = 42


def demo_recipe(out: str, model: str, seed: int, quick: bool) -> AspireRecipe:
    scale = 0.25 if quick else 1.0
    return AspireRecipe.model_validate({
        "model": model, "task": "world-qa", "seed": seed, "out": out,
        "n_train": int(200 * scale), "n_dev": int(80 * scale), "n_test": int(240 * scale),
        "compare_model": "builtin-large" if model == "builtin" else None})
