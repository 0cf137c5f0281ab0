"""The training loop: it learns, grad accumulation and DDP take the global-token-mean step, resume is exact."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import ddp_case
from torch.optim.optimizer import register_optimizer_step_pre_hook

from tests.tiny_models import build_model, make_tokenizer, varied_examples
from underdog.train import TrainConfig, latest_checkpoint, lr_at, train

HERE = Path(__file__).parent


def test_loss_falls_on_memorisation():
    tok = make_tokenizer(pad_is_eos=True)
    model = build_model("llama", tok)
    examples = varied_examples(8)
    config = TrainConfig(lr=1e-2, max_steps=30, batch_size=8, lr_schedule="constant", seed=0)
    result = train(model, tok, examples, config)
    assert len(result.losses) == result.final_step == 30
    assert result.losses[-1] < 0.5 * result.losses[0], result.losses
    assert result.tokens_seen > 0 and result.tokens_per_s > 0 and result.wall_time_s > 0
    assert not result.model.training


def test_packed_training_runs_and_learns():
    tok = make_tokenizer()
    result = train(build_model("llama", tok), tok, varied_examples(16),
                   TrainConfig(lr=1e-2, max_steps=20, batch_size=2, packing=True, max_length=48, lr_schedule="constant"))
    assert result.losses[-1] < 0.6 * result.losses[0]


def _capture_grads():
    grads = []

    def hook(optimizer, args, kwargs):
        grads.append([p.grad.detach().clone() for g in optimizer.param_groups for p in g["params"]])

    return grads, register_optimizer_step_pre_hook(hook)


def test_grad_accumulation_matches_one_big_batch():
    tok = make_tokenizer()
    examples = varied_examples(8)
    lengths = {len(tok(e["prompt"] + e["completion"])["input_ids"]) for e in examples}
    assert len(lengths) > 3  # different lengths, different numbers of target tokens per example
    runs = {}
    for batch_size, accum in [(8, 1), (1, 8), (2, 4)]:
        grads, handle = _capture_grads()
        try:
            config = TrainConfig(lr=1e-3, max_steps=2, batch_size=batch_size, grad_accum=accum, max_grad_norm=None)
            result = train(build_model("llama", tok), tok, examples, config)
        finally:
            handle.remove()
        runs[(batch_size, accum)] = (result.losses, grads, [p.detach() for p in result.model.parameters()])
    ref_losses, ref_grads, ref_params = runs[(8, 1)]
    for key, (losses, grads, params) in runs.items():
        assert losses == pytest.approx(ref_losses, rel=1e-6), key
        assert len(grads) == 2
        for step_grads, step_ref in zip(grads, ref_grads):
            for g, r in zip(step_grads, step_ref):
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
        # Adam divides by sqrt(v): on a near-zero gradient, float summation order moves the step a little
        # (2.3e-6 on one of 2048 weights with transformers 5.24), so parameters get 1% of one lr step (1e-5);
        # a wrong accumulation scale moves them by the whole step (1e-3).
        for p, r in zip(params, ref_params):
            torch.testing.assert_close(p, r, rtol=1e-4, atol=1e-5)


def test_aux_loss_adds_its_gradient_to_the_token_mean_step_whatever_the_accumulation():
    """The aux gradient joins the token-mean one unscaled: the same with batch 8 x 1 and 2 x 4, logged."""
    tok = make_tokenizer()
    examples = varied_examples(8)

    def aux(model, step):  # d/dE = (step + 1) * E on the first three embedding rows
        return 0.5 * (step + 1) * (model.get_input_embeddings().weight[:3] ** 2).sum()

    runs = {}
    for key in [(8, 1, False), (8, 1, True), (2, 4, True)]:
        batch_size, accum, with_aux = key
        grads, handle = _capture_grads()
        infos = []
        try:
            config = TrainConfig(lr=1e-3, max_steps=2, batch_size=batch_size, grad_accum=accum, max_grad_norm=None)
            model = build_model("llama", tok)
            start = model.get_input_embeddings().weight.detach().clone()
            train(model, tok, examples, config, aux_loss=aux if with_aux else None, callback=infos.append)
        finally:
            handle.remove()
        runs[key] = grads, infos
    plain, with_aux = runs[(8, 1, False)][0][0][0], runs[(8, 1, True)][0][0][0]  # step 0, embeddings
    expected = plain.clone()
    expected[:3] += start[:3]
    torch.testing.assert_close(with_aux, expected, rtol=1e-5, atol=1e-7)
    for (grads, infos), (ref, ref_infos) in [(runs[(2, 4, True)], runs[(8, 1, True)])]:
        for step_grads, step_ref in zip(grads, ref):
            for g, r in zip(step_grads, step_ref):
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)
        assert [i["aux_loss"] for i in infos] == pytest.approx([i["aux_loss"] for i in ref_infos])
    assert "aux_loss" not in runs[(8, 1, False)][1][0]
    assert runs[(8, 1, True)][1][0]["aux_loss"] == pytest.approx(0.5 * (start[:3] ** 2).sum().item(), rel=1e-5)


def test_lr_schedule():
    config = TrainConfig(lr=1.0, warmup_ratio=0.2, min_lr_ratio=0.1)
    lrs = [lr_at(s, 10, config) for s in range(10)]
    assert lrs[:2] == [0.5, 1.0] and lrs[2] == 1.0
    assert all(a >= b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] > 0.1
    assert lr_at(5, 10, TrainConfig(lr=0.3, lr_schedule="constant")) == 0.3
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="linear")


def test_resume_reproduces_the_uninterrupted_run(tmp_path):
    tok = make_tokenizer()
    examples = varied_examples(9)  # 5 batches of 2 per epoch: 6 steps cross an epoch, step 3 is mid-epoch

    def config(out):
        return TrainConfig(lr=5e-3, max_steps=6, batch_size=2, save_every=3, output_dir=str(out), seed=1,
                           adapter="lora", adapter_options={"r": 4, "dropout": 0.1})  # dropout: RNG restored

    full = train(build_model("llama", tok), tok, examples, config(tmp_path / "a"))
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["step_3", "step_6"]
    assert (tmp_path / "a" / "final" / "adapter_model.safetensors").is_file()

    class Killed(Exception):
        pass

    def die_at_4(info):
        if info["step"] == 4:
            raise Killed

    with pytest.raises(Killed):
        train(build_model("llama", tok), tok, examples, config(tmp_path / "b"), callback=die_at_4)
    ckpts = tmp_path / "b" / "checkpoints"
    (ckpts / ".tmp_step_5").mkdir()  # a checkpoint killed while being written...
    (ckpts / "step_9").mkdir()  # ...and a folder without its state file are both ignored
    assert latest_checkpoint(tmp_path / "b") == ckpts / "step_3"

    resumed = train(build_model("llama", tok, seed=5), tok, examples, config(tmp_path / "b"), resume=True)
    assert resumed.final_step == 6
    assert resumed.losses == pytest.approx(full.losses, rel=1e-6)
    for (name, p), (_, q) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)
    assert json.loads((ckpts / "step_6" / "trainer_state.json").read_text())["step"] == 6


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_matches_single_process(tmp_path):
    out = tmp_path / "ddp.json"
    env = dict(os.environ, HF_HOME=str(tmp_path / "hf"), OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="",
               ACCELERATE_USE_CPU="true")
    # `accelerate launch --cpu` starts a single process unless mpirun is set up; --multi_gpu with the CPU forced
    # by ACCELERATE_USE_CPU goes through torch.distributed.run and gives 2 gloo processes on this machine.
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(HERE / "ddp_script.py"), str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    ddp = json.loads(out.read_text())
    assert ddp["processes"] == 2

    model, tok, examples, kwargs = ddp_case()
    single = train(model, tok, examples, TrainConfig(batch_size=4, **kwargs))  # same global batch
    assert ddp["losses"] == pytest.approx(single.losses, rel=1e-5)
    checksum = sum(float(p.detach().double().abs().sum()) for p in single.model.parameters())
    assert ddp["checksum"] == pytest.approx(checksum, rel=1e-5)


def test_bf16_then_fp32_in_one_process_and_resume_guard(tmp_path):
    tok = make_tokenizer()
    examples = varied_examples(4)
    bf16 = train(build_model("llama", tok), tok, examples, TrainConfig(max_steps=2, batch_size=2, bf16=True))
    assert all(p.dtype == torch.float32 for p in bf16.model.parameters())  # autocast, fp32 master weights
    config = TrainConfig(max_steps=2, batch_size=2, bf16=False, output_dir=str(tmp_path))
    train(build_model("llama", tok), tok, examples, config)  # another precision: the accelerator state is reset
    with pytest.raises(ValueError, match="batch_size: 2 -> 4"):
        train(build_model("llama", tok), tok, examples, TrainConfig(max_steps=3, batch_size=4, output_dir=str(tmp_path)),
              resume=True)
