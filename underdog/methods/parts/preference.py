"""Preference pairs from a model's own answers, and DPO on them through TRL.

``build_pairs`` turns k sampled answers per training question (each marked correct or wrong) into preference
pairs in TRL's plain format (``prompt`` = the QA prompt, ``chosen``/``rejected`` = answer completions ``" x."``):
*correct > wrong* for every question with both kinds of answer, and, for learned abstention (R-Tuning, Zhang
et al. 2024; Yang et al. 2023), *abstain > wrong* for questions the model gets wrong in most samples and
*correct > abstain* for the questions it gets right in most. Each pair carries its ``kind``; ``count_pairs``
tallies them. ``train_dpo`` runs ``trl.DPOTrainer`` (``DPOConfig``; the DPO loss is TRL's) with LoRA (PEFT's
implicit reference: the adapter switched off) or full tuning (a frozen copy as the reference), saves the result
with ``save_pretrained`` and returns the training curve (TRL's logged reward margins and accuracies).
"""

from __future__ import annotations

import copy
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from underdog.config import Strict
from underdog.eval.consistency import ranked_answers
from underdog.eval.metrics import normalize_answer
from underdog.tasks.qa import qa_completion, qa_prompt

KINDS = ("correct>wrong", "abstain>wrong", "correct>abstain")


class DPOSettings(Strict):
    """``trl.DPOTrainer`` settings (``DPOConfig``) and the adapter trained."""

    adapter: Literal["lora", "full"] = "full"
    beta: float = Field(0.1, gt=0)
    lr: float = Field(5e-4, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    batch_size: int = Field(8, gt=0)
    grad_accum: int = Field(1, gt=0)
    max_length: int = Field(1024, gt=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)  # DPOConfig warmup_steps < 1: a share of the steps
    lora_r: int = Field(16, gt=0)
    lora_alpha: int = Field(32, gt=0)
    logging_steps: int = Field(5, gt=0)
    # > 0: TRL's loss_type ["sigmoid", "sft"] weighted [1, sft_weight] (DPO plus the chosen answers' NLL, RPO,
    # Pang et al. 2024), which keeps DPO from lowering the chosen answers' likelihood along with the rejected ones
    sft_weight: float = Field(0.0, ge=0)


def _unique(texts: Sequence[str]) -> list[str]:
    """Texts by decreasing frequency (first seen first among equals), one per normalised form."""
    return [text for text, _ in ranked_answers(texts)]


def _first(text: str, texts: Sequence[str]) -> list[str]:
    """``text`` then ``texts`` without its normalised form."""
    return [text, *(t for t in texts if normalize_answer(t) != normalize_answer(text))]


def build_pairs(items: Sequence[dict], sampled: Sequence[dict], abstain_text: str | None = "I don't know",
                majority: float = 0.5, per_question: int = 2, reference: bool = False,
                balance: bool = False, labels: Literal["samples", "greedy"] = "samples") -> list[dict]:
    """Preference pairs from sampled answers: ``sampled[i]["samples"]`` lists ``{"text", "correct"}`` for
    ``items[i]``. ``abstain_text=None`` gives only correct > wrong pairs (plain preference tuning). A question
    is *mostly wrong* when its share of correct samples is below ``majority``. ``reference``: the reference
    answer stands in as the correct answer of a question with no correct sample. At most ``per_question``
    pairs of each kind per question; wrong answers are taken most frequent first. ``balance``: the correct >
    abstain pairs are repeated (cycled, marked ``"repeat": True``) up to the number of abstain > wrong pairs, so
    that a weak model, wrong on most questions, does not learn to abstain everywhere. ``labels="greedy"``
    (R-Tuning's labels): a question is known when the model's greedy answer (``sampled[i]["answer"]``,
    ``["correct"]``) is right; an unknown question's greedy answer is its first rejected answer (the one the
    model would give), and a known question's greedy answer is the chosen one of correct > abstain."""
    pairs = []
    for q, s in zip(items, sampled):
        prompt = qa_prompt(q)
        texts = [a for a in s["samples"] if a["text"].strip()]
        right = _unique([a["text"] for a in texts if a["correct"]])
        wrong = _unique([a["text"] for a in texts if not a["correct"]])
        share = sum(a["correct"] for a in s["samples"]) / max(1, len(s["samples"]))
        if labels == "greedy":
            greedy = s["answer"].strip()
            known = bool(s["correct"])
            if greedy and known:
                right = _first(greedy, right)
            elif greedy:
                wrong = _first(greedy, wrong)
        else:
            known = share >= majority
        if abstain_text is not None:
            wrong = [w for w in wrong if normalize_answer(w) != normalize_answer(abstain_text)]
        good = right or ([q["answers"][0]] if reference else [])
        for k, (c, w) in enumerate((c, w) for c in good for w in wrong):
            if k >= per_question:
                break
            pairs.append({"prompt": prompt, "chosen": qa_completion(c), "rejected": qa_completion(w),
                          "kind": "correct>wrong", "id": q["id"]})
        if abstain_text is None:
            continue
        if not known:
            pairs += [{"prompt": prompt, "chosen": qa_completion(abstain_text), "rejected": qa_completion(w),
                       "kind": "abstain>wrong", "id": q["id"]} for w in wrong[:per_question]]
        elif right:
            pairs.append({"prompt": prompt, "chosen": qa_completion(right[0]),
                          "rejected": qa_completion(abstain_text), "kind": "correct>abstain", "id": q["id"]})
    if balance:
        keep = [p for p in pairs if p["kind"] == "correct>abstain"]
        gap = sum(p["kind"] == "abstain>wrong" for p in pairs) - len(keep)
        pairs += [{**keep[i % len(keep)], "repeat": True} for i in range(gap)] if keep and gap > 0 else []
    return pairs


def count_pairs(pairs: Sequence[dict]) -> dict[str, int]:
    return {k: sum(p.get("kind") == k for p in pairs) for k in KINDS}


def _is_cpu(device: str) -> bool:
    import torch

    return device == "cpu" or (device == "auto" and not torch.cuda.is_available())


def train_dpo(model, tokenizer, pairs: Sequence[dict], settings: DPOSettings, out_dir: str | os.PathLike,
              seed: int = 0, device: str = "auto", log: Callable[[str], None] = print) -> dict:
    """DPO through ``trl.DPOTrainer`` on ``pairs`` (TRL format; extra keys are dropped). The trained model
    (or LoRA adapter) and the tokenizer are saved with ``save_pretrained`` into ``out_dir/model``; returns
    ``{"steps", "history": [{step, loss, margin, accuracy, chosen, rejected}], "model": <the trained module>}``
    (``history`` from TRL's logs; the module is a ``PeftModel`` for LoRA)."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import PrinterCallback
    from transformers.utils import logging as hf_logging
    from trl import DPOConfig, DPOTrainer

    if not pairs:
        raise ValueError("no preference pairs to train on")
    out_dir = Path(out_dir)
    rows = [{k: p[k] for k in ("prompt", "chosen", "rejected")} for p in pairs]
    s = settings
    args = DPOConfig(output_dir=str(out_dir / "trl"), beta=s.beta, learning_rate=s.lr, num_train_epochs=s.epochs,
                     max_steps=s.max_steps or -1, per_device_train_batch_size=s.batch_size,
                     gradient_accumulation_steps=s.grad_accum, max_length=s.max_length, warmup_steps=float(s.warmup_ratio),
                     lr_scheduler_type="cosine", logging_steps=s.logging_steps, save_strategy="no", report_to=[],
                     seed=seed, use_cpu=_is_cpu(device), bf16=False, fp16=False, disable_tqdm=True,
                     dataloader_num_workers=0, remove_unused_columns=False,
                     gradient_checkpointing=False,  # TRL's default recomputes activations: slower, no need here
                     **({"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, s.sft_weight]} if s.sft_weight else {}))
    peft_config = None
    ref_model = None
    for p in model.parameters():
        p.requires_grad_(True)
    if s.adapter == "lora":
        peft_config = LoraConfig(task_type="CAUSAL_LM", r=s.lora_r, lora_alpha=s.lora_alpha, lora_dropout=0.0,
                                 target_modules="all-linear", bias="none")
    else:
        ref_model = copy.deepcopy(model).eval()
        for p in ref_model.parameters():
            p.requires_grad_(False)
    model.train()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        trainer = DPOTrainer(model=model, ref_model=ref_model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, peft_config=peft_config)
        trainer.remove_callback(PrinterCallback)  # TRL's logs go to the history, not to stdout
        trainer.train()
    finally:
        hf_logging.set_verbosity(verbosity)
    history = [{"step": h["step"], "loss": h.get("loss"), "margin": h["rewards/margins"],
                "accuracy": h["rewards/accuracies"], "chosen": h["rewards/chosen"],
                "rejected": h["rewards/rejected"]}
               for h in trainer.state.log_history if "rewards/margins" in h and "loss" in h]  # not the final summary
    trained = trainer.model.eval()
    trained.save_pretrained(out_dir / "model", safe_serialization=True)
    tokenizer.save_pretrained(out_dir / "model")
    shutil.rmtree(out_dir / "trl", ignore_errors=True)  # TRL's output_dir: nothing is saved there
    log(f"DPO ({s.adapter}, beta {s.beta}): {len(rows)} pairs, {trainer.state.global_step} steps; reward margin "
        + (f"{history[0]['margin']:+.3f} -> {history[-1]['margin']:+.3f}, accuracy {history[0]['accuracy']:.2f} "
           f"-> {history[-1]['accuracy']:.2f}" if history else "not logged"))
    return {"steps": trainer.state.global_step, "history": history, "model": trained}
