"""Benchmark: training throughput and MFU of ``underdog.train`` vs Hugging Face ``Trainer``, same model and data.

A Llama built in code (``--preset 1b``: 22 layers x 2048, GQA 32/4 heads, MLP 5632, vocab 32,000, ~1.1B
parameters, TinyLlama's shape; ``--preset tiny`` for a CPU smoke run), full fine-tuning in bf16 autocast on
random-word texts packed into rows of ``--seq-len`` tokens, AdamW, batch ``--batch-size``, no gradient
checkpointing. Each side runs ``--warmup`` + ``--steps`` optimizer steps on a freshly initialised model (same
seed); the timed window is the last ``--steps``. FLOPs per token from ``underdog.train.flops`` (checked against
torch's FLOP counter in the tests); MFU against the card's dense bf16 peak. Prints and writes JSON.

    python benchmarks/mfu.py --preset 1b --json mfu.json          # on a GPU
    python benchmarks/mfu.py --preset tiny --device cpu            # smoke run
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import text  # noqa: E402

PRESETS = {
    "1b": {"hidden_size": 2048, "num_hidden_layers": 22, "num_attention_heads": 32, "num_key_value_heads": 4,
           "intermediate_size": 5632, "vocab_size": 32000},
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
             "intermediate_size": 176, "vocab_size": 1024},
}


def tokenizer_for(vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    rng = random.Random(0)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator([text(rng, 50) for _ in range(2000)], trainers.BpeTrainer(
        vocab_size=min(vocab, 4096), special_tokens=["<pad>", "<s>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def fresh_model(preset: str, seq_len: int, device: str):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(**PRESETS[preset], max_position_embeddings=seq_len, bos_token_id=1, eos_token_id=2,
                         pad_token_id=0, tie_word_embeddings=False, attn_implementation="sdpa")
    with torch.device(device):
        return LlamaForCausalLM(config)


def rows_for(tokenizer, seq_len: int, n_rows: int) -> list[list[int]]:
    """``n_rows`` rows of exactly ``seq_len`` token ids cut from one long random-word text."""
    rng = random.Random(1)
    ids: list[int] = []
    while len(ids) < seq_len * n_rows:
        ids += tokenizer(text(rng, 4000), add_special_tokens=False)["input_ids"]
    return [ids[i * seq_len:(i + 1) * seq_len] for i in range(n_rows)]


def run_underdog(args, tokenizer, rows) -> dict:
    from underdog.train import TrainConfig, train
    from underdog.train.flops import flops_per_token

    model = fresh_model(args.preset, args.seq_len, args.device)
    per_token = flops_per_token(model, args.seq_len)
    times: list[float] = []
    config = TrainConfig(adapter="full", lr=1e-4, max_steps=args.warmup + args.steps, batch_size=args.batch_size,
                         max_length=args.seq_len, packing=False, completion_only=False, warmup_ratio=0.0,
                         lr_schedule="constant", bf16=args.device != "cpu", log_every=10**9, seed=0)
    # the same rows as text (re-tokenized by the trainer: a few tokens more or less per row; counted exactly)
    examples = [{"text": tokenizer.decode(r)} for r in rows]

    def tick(info: dict) -> None:
        if args.device != "cpu":
            torch.cuda.synchronize()
        times.append(time.perf_counter())

    result = train(model, tokenizer, examples, config, callback=tick)
    tokens_per_step = result.tokens_seen / result.final_step
    del model, result
    return {"times": times, "tokens_per_step": tokens_per_step, "flops_per_token": per_token}


def run_hf_trainer(args, tokenizer, rows) -> dict:
    from datasets import Dataset
    from transformers import Trainer, TrainerCallback, TrainingArguments
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    model = fresh_model(args.preset, args.seq_len, args.device)
    times: list[float] = []

    class Tick(TrainerCallback):
        def on_step_end(self, *_, **__):
            if args.device != "cpu":
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    data = Dataset.from_list([{"input_ids": r, "labels": r} for r in rows])
    targs = TrainingArguments(output_dir=tempfile.mkdtemp(prefix="bench-mfu-"), max_steps=args.warmup + args.steps,
                              per_device_train_batch_size=args.batch_size, learning_rate=1e-4, warmup_steps=0,
                              lr_scheduler_type="constant", optim="adamw_torch", bf16=args.device != "cpu",
                              use_cpu=args.device == "cpu", save_strategy="no", report_to=[], logging_steps=10**9,
                              disable_tqdm=True, dataloader_num_workers=0, gradient_checkpointing=False, seed=0)
    Trainer(model=model, args=targs, train_dataset=data, callbacks=[Tick()]).train()
    tokens_per_step = args.batch_size * args.seq_len
    del model
    return {"times": times, "tokens_per_step": tokens_per_step}


def summarise(side: dict, args, per_token: float, peak: float | None) -> dict:
    from underdog.train.flops import mfu

    window = side["times"][-(args.steps + 1):]
    seconds = (window[-1] - window[0]) / (len(window) - 1)
    tps = side["tokens_per_step"] / seconds
    return {"seconds_per_step": seconds, "tokens_per_s": tps, "tflops": tps * per_token / 1e12,
            "mfu": mfu(tps, per_token, peak)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", choices=sorted(PRESETS), default="1b")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--seq-len", type=int, default=1024)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    from underdog.train.flops import peak_flops

    tokenizer = tokenizer_for(PRESETS[args.preset]["vocab_size"])
    rows = rows_for(tokenizer, args.seq_len, args.batch_size * (args.warmup + args.steps))
    peak = peak_flops(args.device)
    card = torch.cuda.get_device_name() if args.device != "cpu" else "cpu"
    ours = run_underdog(args, tokenizer, rows)
    if args.device != "cpu":
        torch.cuda.empty_cache()
    theirs = run_hf_trainer(args, tokenizer, rows)
    per_token = ours["flops_per_token"]
    out = {"preset": args.preset, "card": card, "peak_bf16_flops": peak, "args": vars(args),
           "flops_per_token": per_token, "underdog": summarise(ours, args, per_token, peak),
           "hf_trainer": summarise(theirs, args, per_token, peak)}
    out["ratio"] = out["underdog"]["tokens_per_s"] / out["hf_trainer"]["tokens_per_s"]
    for side in ("underdog", "hf_trainer"):
        s = out[side]
        mfu_text = f", MFU {s['mfu']:.1%}" if s["mfu"] is not None else ""
        print(f"{side:10s}: {s['tokens_per_s']:,.0f} tokens/s, {s['tflops']:.1f} TFLOP/s{mfu_text}")
    print(f"{card}, {args.preset}: underdog / HF Trainer = {out['ratio']:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
