"""Benchmark: supervised fine-tuning, ``underdog.train.train`` against TRL's ``SFTTrainer``.

Both sides train the same small Llama (built in code, ``common.build_lm``; fresh weights from the same file for
every run) on the same short prompt/completion examples with the same hyper-parameters: AdamW (torch's, not
fused: the same update), lr with a cosine decay to 0 and no warmup, weight decay 0, gradient clipping at 1.0,
per-device batch, epochs, seed, completion-only loss, and ``--packing`` on both (TRL's best-fit-decreasing
packing with position ids, underdog's first-fit packing with position ids) or padding on both. TRL's gradient
checkpointing (on by default in TRL 1.x) is turned off, as underdog does not checkpoint; TRL logs every step,
as underdog records every step's loss.

Tokens/s is the real (non-padding) tokens trained on, the same for both (checked), over the wall time of the
whole call: ``train(...)`` for underdog (tokenizing, packing, training); building the ``SFTTrainer`` (which
tokenizes and packs) plus ``.train()`` for TRL. Sides alternate ``--repeats`` times and the best time of each
is used (the least disturbed run on a shared machine); every time is printed, with the load average before and
after. Final-loss agreement: the mean training loss of each side's last 10% of steps, and the loss of both
trained models on the same held-out examples (one function, completion tokens only).

    python benchmarks/train.py [--examples 1500] [--epochs 1] [--batch-size 8] [--max-length 128] [--packing]
                               [--repeats 3] [--threads 1] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

os.environ.setdefault("TQDM_DISABLE", "1")  # no progress bars between the figures
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import build_lm, text  # noqa: E402


def examples(n: int, seed: int) -> list[dict]:
    """Short prompt/completion pairs: prompts of 4-24 words, completions of 1-8 words."""
    rng = random.Random(seed)
    return [{"prompt": text(rng, rng.randint(4, 24)) + " :", "completion": " " + text(rng, rng.randint(1, 8))}
            for _ in range(n)]


def fresh_model(path: str):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")


def run_underdog(path: str, tokenizer, data: list[dict], args) -> dict:
    from underdog.train import TrainConfig, train

    config = TrainConfig(lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, max_length=args.max_length,
                         packing=args.packing, completion_only=True, warmup_ratio=0.0, lr_schedule="cosine",
                         weight_decay=0.0, max_grad_norm=1.0, seed=args.seed, adapter="full", log_every=10**9,
                         bf16=False)
    model = fresh_model(path)
    start = time.perf_counter()
    result = train(model, tokenizer, data, config)
    wall = time.perf_counter() - start
    return {"wall": wall, "tokens": result.tokens_seen, "losses": result.losses, "model": result.model,
            "loop_tokens_per_s": result.tokens_per_s}


def run_trl(path: str, tokenizer, data: list[dict], args) -> dict:
    from datasets import Dataset
    from transformers.utils import logging as hf_logging
    from trl import SFTConfig, SFTTrainer

    hf_logging.set_verbosity_error()
    out = tempfile.mkdtemp(prefix="bench-trl-")
    config = SFTConfig(output_dir=out, learning_rate=args.lr, num_train_epochs=args.epochs,
                       per_device_train_batch_size=args.batch_size, max_length=args.max_length, packing=args.packing,
                       completion_only_loss=True, lr_scheduler_type="cosine", warmup_steps=0, weight_decay=0.0,
                       max_grad_norm=1.0, optim="adamw_torch", seed=args.seed, data_seed=args.seed,
                       gradient_checkpointing=False, logging_steps=1, save_strategy="no", report_to=[],
                       use_cpu=True, bf16=False, disable_tqdm=True, dataloader_num_workers=0,
                       dataset_num_proc=None)
    model = fresh_model(path)
    dataset = Dataset.from_list(data)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
        built = time.perf_counter()
        trainer.train()
    wall = time.perf_counter() - start
    per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    steps = trainer.state.global_step
    return {"wall": wall, "train_only": wall - (built - start), "tokens": int(per_epoch * args.epochs),
            "losses": losses, "steps": steps, "model": trainer.model}


@torch.no_grad()
def heldout_loss(model, tokenizer, data: list[dict]) -> float:
    """Mean next-token loss over the completion tokens of ``data`` (underdog's masking, one function for both)."""
    from underdog.train.data import IGNORE_INDEX, collate, tokenize_examples

    model.eval()
    rows = tokenize_examples(data, tokenizer, max_length=256)
    total, count = 0.0, 0
    for i in range(0, len(rows), 32):
        batch = collate(rows[i:i + 32], tokenizer.pad_token_id)
        labels = batch["labels"]
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                 labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX,
                                                 reduction="sum")
        total += float(loss)
        count += int((labels[:, 1:] != IGNORE_INDEX).sum())
    return total / count


def tail_mean(losses: list[float]) -> float:
    tail = losses[-max(1, len(losses) // 10):]
    return sum(tail) / len(tail)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=1500)
    ap.add_argument("--epochs", type=float, default=1)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--packing", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=2048)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared machine, more threads "
                    "than free cores make both sides several times slower)")
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    lm = build_lm(hidden=args.hidden, layers=args.layers, vocab=args.vocab, seed=args.seed)
    n_params = sum(p.numel() for p in lm.model.parameters())
    data = examples(args.examples, args.seed)
    heldout = examples(200, args.seed + 1)
    print(f"model: Llama {args.layers} layers x {args.hidden}, vocab {args.vocab}, {n_params / 1e6:.1f}M params; "
          f"{len(data)} examples, {args.epochs} epochs, batch {args.batch_size}, packing {args.packing}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"load average before: {os.getloadavg()}")
    runs: dict[str, list[dict]] = {"underdog": [], "trl": []}
    for r in range(args.repeats):
        for side, fn in (("underdog", run_underdog), ("trl", run_trl)):
            result = fn(lm.path, lm.tokenizer, data, args)
            result["heldout"] = heldout_loss(result.pop("model"), lm.tokenizer, heldout)
            runs[side].append(result)
            print(f"  repeat {r + 1} {side:8s}: {result['wall']:.1f}s, {result['tokens']} tokens, "
                  f"{result['tokens'] / result['wall']:.0f} tokens/s, {len(result['losses'])} steps, "
                  f"final loss {tail_mean(result['losses']):.4f}, held-out loss {result['heldout']:.4f}", flush=True)
    print(f"load average after: {os.getloadavg()}")
    best = {side: min(rs, key=lambda x: x["wall"]) for side, rs in runs.items()}
    if best["underdog"]["tokens"] != best["trl"]["tokens"]:
        print(f"note: tokens differ (underdog {best['underdog']['tokens']}, TRL {best['trl']['tokens']}); "
              "the ratio uses each side's own count")
    tps = {side: b["tokens"] / b["wall"] for side, b in best.items()}
    ratio = tps["underdog"] / tps["trl"]
    final = {side: tail_mean(b["losses"]) for side, b in best.items()}
    held = {side: b["heldout"] for side, b in best.items()}
    print(f"tokens/s: underdog {tps['underdog']:.0f}, TRL {tps['trl']:.0f} -> {ratio:.2f}x")
    print(f"final training loss (last 10% of steps): underdog {final['underdog']:.4f}, TRL {final['trl']:.4f} "
          f"({abs(final['underdog'] - final['trl']) / final['trl']:.1%} apart)")
    print(f"held-out loss: underdog {held['underdog']:.4f}, TRL {held['trl']:.4f} "
          f"({abs(held['underdog'] - held['trl']) / held['trl']:.1%} apart)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "args": vars(args), "params": n_params, "ratio": ratio, "tokens_per_s": tps, "final_loss": final,
            "heldout_loss": held, "walls": {s: [x["wall"] for x in rs] for s, rs in runs.items()},
            "steps": {s: len(b["losses"]) for s, b in best.items()}}, indent=1))


if __name__ == "__main__":
    main()
