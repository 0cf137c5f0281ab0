"""The training loop: masked next-token loss on accelerate, with grad accumulation, packing and checkpoints.

``train(model, tokenizer, examples, TrainConfig(...))`` (the one training config, ``underdog.config.TrainConfig``,
which recipes embed as their training section) tokenizes the examples (``data.py``), optionally packs
them, puts an adapter on the model (``adapters.py``), and runs AdamW with warmup and a cosine or constant
schedule. The loss of an optimizer step is the mean over every target token of the *global* batch (all
micro-batches of the accumulation, on all processes): each micro-batch backpropagates its *summed* token loss,
and just before the optimizer step the gradients are multiplied by ``processes * grad_accum / target_tokens``,
which undoes accelerate's ``1/grad_accum`` and DDP's ``1/processes`` and divides by the gathered token count.
So batch 8 x accum 1, batch 1 x accum 8 and batch 2 x 2 processes x accum 2 take the same step. Data order
comes from a ``torch.Generator`` seeded with ``seed + epoch``. Checkpoints (``accelerator.save_state`` plus
``trainer_state.json``) are written to a temporary folder renamed to ``output_dir/checkpoints/step_N``, so a
killed run never leaves a half checkpoint that looks complete; ``resume=True`` loads the latest one and skips
the micro-batches already consumed in its epoch, reproducing the uninterrupted loss curve. Under FSDP the model
stays sharded and every process helps gather its full state dict (``TrainResult.state_dict``, for saving);
DeepSpeed, whose engine owns the gradients the token-mean scaling must reach, is refused.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from accelerate.utils import DistributedType, set_seed
from tqdm.auto import tqdm

from underdog.config import TrainConfig
from underdog.train.adapters import apply_adapter, is_peft, is_prompt_learning, save_trained
from underdog.train.data import IGNORE_INDEX, collate, pack_examples, tokenize_examples
from underdog.train.flops import flops_per_token, mfu, peak_flops

log = logging.getLogger(__name__)
STATE_FILE = "trainer_state.json"
_DATA_ORDER_FIELDS = ("batch_size", "grad_accum", "seed", "packing", "max_length", "completion_only")


@dataclass
class TrainResult:
    losses: list[float]  # one per optimizer step, over the whole run (resumed runs included)
    tokens_seen: int  # real (non-padding) input tokens, all processes
    tokens_per_s: float  # in this call
    wall_time_s: float  # in this call
    final_step: int
    model: Any = field(default=None, repr=False)  # the trained model (a PeftModel for adapters), in eval mode
    # FSDP / DeepSpeed: ``model`` stays sharded; this is its full state dict (on the main process; None elsewhere)
    state_dict: dict[str, torch.Tensor] | None = field(default=None, repr=False)


class EpochSampler(torch.utils.data.Sampler):
    """A seeded permutation per epoch (``seed + epoch``), identical on every process."""

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def lr_at(step: int, total: int, config: TrainConfig) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total``: linear warmup, then cosine, constant, or
    warmup-stable-decay ("wsd": constant, then linear down to ``min_lr_ratio * lr`` over the last ``decay_ratio``
    of the steps; Hägele et al. 2024). A run resumed with "wsd" and a larger ``max_steps`` from a checkpoint of a
    constant-rate run is a cooldown branch of it: an annealed model at any token count, from one trunk."""
    warmup = int(round(config.warmup_ratio * total))
    if step < warmup:
        return config.lr * (step + 1) / warmup
    if config.lr_schedule == "constant":
        return config.lr
    low = config.lr * config.min_lr_ratio
    if config.lr_schedule == "wsd":
        decay = max(1, int(round(config.decay_ratio * total)))
        into = step - (total - decay) + 1  # 1 .. decay inside the decay
        return config.lr if into <= 0 else config.lr - (config.lr - low) * min(into, decay) / decay
    progress = (step - warmup) / max(1, total - warmup)
    return low + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.lr - low)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint with the highest step under ``output_dir/checkpoints``, if any."""
    root = Path(output_dir) / "checkpoints"
    done = [d for d in root.glob("step_*") if d.name[5:].isdigit() and (d / STATE_FILE).is_file()]
    return max(done, key=lambda d: int(d.name[5:]), default=None)


def _save_checkpoint(accelerator: Accelerator, output_dir: str, state: dict) -> None:
    root = Path(output_dir) / "checkpoints"
    final, tmp = root / f"step_{state['step']}", root / f".tmp_step_{state['step']}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)  # atomic: a step_N folder is always complete
    accelerator.wait_for_everyone()


def _check_resumable(state: dict, config: TrainConfig, processes: int, checkpoint: Path) -> None:
    """The batches to skip only mean the same data if everything that shapes the data order is unchanged."""
    saved = dict(state.get("config", {}), processes=state.get("processes"))
    now = {f: getattr(config, f) for f in _DATA_ORDER_FIELDS} | {"processes": processes}
    changed = [f"{k}: {saved.get(k)!r} -> {v!r}" for k, v in now.items() if saved.get(k) != v]
    if changed:
        raise ValueError(f"cannot resume from {checkpoint}: the data order would change ({'; '.join(changed)})")


def mixed_precision(config: TrainConfig) -> str:
    """accelerate's ``mixed_precision`` for ``config.bf16`` ("auto": bf16 on a CUDA device that supports it)."""
    if config.bf16 == "auto":
        return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"
    return "bf16" if config.bf16 else "no"


def _make_accelerator(config: TrainConfig) -> Accelerator:
    kwargs = {"gradient_accumulation_steps": config.grad_accum, "mixed_precision": mixed_precision(config)}
    try:
        return Accelerator(**kwargs)
    except ValueError as err:  # a single-process state initialised earlier with another mixed precision
        if "already been initialized" not in str(err) or AcceleratorState().num_processes > 1:
            raise
        AcceleratorState._reset_state()
        return Accelerator(**kwargs)


def _optimizer(model: Any, config: TrainConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    decay = [p for p in params if p.ndim >= 2]  # nanoGPT: no decay on biases and norms
    no_decay = [p for p in params if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.lr)


def _summed_loss(model: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum of next-token cross-entropies over labelled positions, and their number."""
    labels = batch.pop("labels")
    logits = model(**batch, use_cache=False).logits
    logits = logits[:, -labels.shape[1] :]  # prompt tuning prepends virtual tokens
    targets = labels[:, 1:]
    loss = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return loss, (targets != IGNORE_INDEX).sum()


def train(
    model: Any,
    tokenizer: Any,
    examples: Sequence[Any],
    config: TrainConfig,
    *,
    accelerator: Accelerator | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    resume: bool = False,
    aux_loss: Callable[[Any, int], torch.Tensor] | None = None,
) -> TrainResult:
    """Train ``model`` on ``examples`` (any shape ``data.py`` accepts) and return a ``TrainResult``.

    ``callback(info)`` runs on every process after each optimizer step with ``step``, ``loss``, ``lr``,
    ``tokens_seen``, ``tokens_per_s``, ``epoch`` and ``mfu`` (``train.flops``; None off a known GPU); returning
    True stops training (decide the same on every process). ``resume=True`` continues from the latest complete checkpoint in ``config.output_dir``.
    ``aux_loss(model, step)``, when given, is a second loss added to each optimizer step's mean token loss
    (its gradient joins after the token-mean scaling, before clipping; ``info["aux_loss"]`` logs it); it
    should pick its data by ``step`` so that a resumed run repeats it."""
    if resume and not config.output_dir:
        raise ValueError("resume=True needs config.output_dir")
    own_accelerator = accelerator is None
    accelerator = accelerator or _make_accelerator(config)
    if accelerator.gradient_accumulation_steps != config.grad_accum:
        raise ValueError(
            f"accelerator has gradient_accumulation_steps={accelerator.gradient_accumulation_steps}, "
            f"config.grad_accum={config.grad_accum}"
        )
    set_seed(config.seed)

    if not is_peft(model):
        options = config.adapter_kwargs()
        if config.adapter == "prompt" and options.get("init_text"):
            options.setdefault("tokenizer", tokenizer)
        model = apply_adapter(model, config.adapter, **options)
    packing = config.packing
    if packing and is_prompt_learning(model):
        log.warning("packing is not possible with prompt tuning (PEFT drops position_ids); padding instead")
        packing = False
    rows = tokenize_examples(
        examples, tokenizer, max_length=config.max_length, completion_only=config.completion_only
    )
    if packing:
        rows = pack_examples(rows, config.max_length)
    if not rows:
        raise ValueError("no training examples")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampler = EpochSampler(len(rows), config.seed)
    loader = torch.utils.data.DataLoader(  # own generator: starting an epoch must not draw from the global RNG
        rows, batch_size=config.batch_size, sampler=sampler, collate_fn=partial(collate, pad_token_id=pad_id),
        generator=torch.Generator().manual_seed(config.seed),
    )
    optimizer = _optimizer(model, config)
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        raise NotImplementedError(
            "DeepSpeed keeps the gradients inside its engine, where the loop's global token-mean scaling cannot "
            "reach them; use the DDP or FSDP config (configs/accelerate/)")
    per_token = flops_per_token(model, config.max_length)  # before FSDP shards it; contexts up to max_length
    peak = peak_flops(accelerator.device)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)

    steps_per_epoch = math.ceil(len(loader) / config.grad_accum)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    state = {"step": 0, "epoch": 0, "batches_in_epoch": 0, "losses": [], "tokens_seen": 0}
    checkpoint = latest_checkpoint(config.output_dir) if resume else None
    if checkpoint is not None:
        state = json.loads((checkpoint / STATE_FILE).read_text())
        _check_resumable(state, config, accelerator.num_processes, checkpoint)
        accelerator.load_state(str(checkpoint))
        accelerator.print(f"resuming from {checkpoint} (step {state['step']})")
    elif resume:
        accelerator.print(f"no checkpoint in {config.output_dir}; starting from scratch")
    state["config"] = config.model_dump(mode="json", exclude={"adapter_options"})
    state["config"]["adapter_options"] = repr(config.adapter_options)
    state["processes"] = accelerator.num_processes

    model.train()
    bar = tqdm(total=total_steps, initial=state["step"], desc="train", disable=not accelerator.is_local_main_process)
    t0, tokens_at_start = time.perf_counter(), state["tokens_seen"]
    acc_dtype = torch.float32 if accelerator.device.type == "mps" else torch.float64
    acc = torch.zeros(3, device=accelerator.device, dtype=acc_dtype)  # loss sum, target tokens, tokens
    stop = state["step"] >= total_steps
    last_saved = state["step"] if checkpoint is not None else -1
    while not stop:
        skip = state["batches_in_epoch"]
        batches = accelerator.skip_first_batches(loader, skip) if skip else loader
        batches.set_epoch(state["epoch"])  # accelerate's loaders pass their epoch on to our sampler
        for batch in batches:
            with accelerator.accumulate(model):
                n_tokens = batch.pop("num_tokens")
                loss_sum, n_targets = _summed_loss(model, batch)
                accelerator.backward(loss_sum)
                acc += torch.stack([loss_sum.detach(), n_targets, n_tokens]).to(acc_dtype)
                if accelerator.sync_gradients:
                    # mean over the global batch's target tokens: see the module docstring
                    totals = accelerator.reduce(acc, "sum")
                    scale = accelerator.num_processes * config.grad_accum / max(totals[1].item(), 1.0)
                    for p in model.parameters():
                        if p.grad is not None:
                            p.grad.mul_(scale)
                    if aux_loss is not None:
                        aux = aux_loss(model, state["step"])
                        accelerator.backward(aux * config.grad_accum)  # accelerate divides by grad_accum
                        aux_value = aux.item()
                    if config.max_grad_norm:
                        accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    lr = lr_at(state["step"], total_steps, config)
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            state["batches_in_epoch"] += 1
            if not accelerator.sync_gradients:
                continue
            loss = totals[0].item() / max(totals[1].item(), 1.0)
            state["step"] += 1
            state["losses"].append(loss)
            state["tokens_seen"] += int(totals[2].item())
            acc.zero_()
            if state["batches_in_epoch"] == len(loader):
                state["epoch"], state["batches_in_epoch"] = state["epoch"] + 1, 0
            elapsed = time.perf_counter() - t0
            tps = (state["tokens_seen"] - tokens_at_start) / max(elapsed, 1e-9)
            info = {"step": state["step"], "loss": loss, "lr": lr, "tokens_seen": state["tokens_seen"],
                    "tokens_per_s": tps, "epoch": state["epoch"], "mfu": mfu(tps, per_token, peak)}
            if aux_loss is not None:
                info["aux_loss"] = aux_value
            bar.update(1)
            if state["step"] % config.log_every == 0 or state["step"] == total_steps:
                shown = {"mfu": f"{info['mfu']:.1%}"} if info["mfu"] is not None else {}
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", tok_s=f"{tps:.0f}", **shown)
                log.info("step %d loss %.4f lr %.2e tokens/s %.0f%s", state["step"], loss, lr, tps,
                         f" MFU {info['mfu']:.1%}" if info["mfu"] is not None else "")
            stop = bool(callback and callback(info)) or state["step"] >= total_steps  # the last step too
            if config.output_dir and config.save_every and state["step"] % config.save_every == 0:
                _save_checkpoint(accelerator, config.output_dir, state)
                last_saved = state["step"]
            if stop:
                break
        else:
            if state["batches_in_epoch"]:  # the epoch's last batch always syncs, so this is a safety net
                state["epoch"], state["batches_in_epoch"] = state["epoch"] + 1, 0
    bar.close()
    wall = time.perf_counter() - t0

    if config.output_dir and last_saved != state["step"]:
        _save_checkpoint(accelerator, config.output_dir, state)
    sharded = accelerator.distributed_type in (DistributedType.FSDP, DistributedType.DEEPSPEED)
    full_state = accelerator.get_state_dict(model) if sharded else None  # a collective: every process gathers
    model = accelerator.unwrap_model(model, keep_fp32_wrapper=False)
    model.eval()
    if config.output_dir and accelerator.is_main_process:
        save_trained(model, Path(config.output_dir) / "final", tokenizer, state_dict=full_state)
    accelerator.wait_for_everyone()
    if own_accelerator:
        accelerator.free_memory()
    return TrainResult(
        losses=list(state["losses"]),
        tokens_seen=int(state["tokens_seen"]),
        tokens_per_s=(state["tokens_seen"] - tokens_at_start) / max(wall, 1e-9),
        wall_time_s=wall,
        final_step=state["step"],
        model=model,
        state_dict=full_state if accelerator.is_main_process else None,
    )
