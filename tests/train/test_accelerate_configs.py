"""The shipped ``configs/accelerate/`` files: each loads as the backend it names, and ``underdog train`` under
``accelerate launch --config_file ...`` with 2 CPU processes (gloo) trains the same steps as one process with the
same global batch, with one run folder written by the main process.

On a CPU, accelerate (1.16) turns FSDP on only for accelerator devices (``MULTI_GPU``-like states), so the FSDP
config launched here trains as 2-process DDP: the test says so and checks that, plus the config's FSDP2 settings.
DeepSpeed needs CUDA and the ``deepspeed`` package: its config is only loaded and checked."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType

from underdog.config import build_config
from underdog.methods import sft

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _data(path: Path) -> Path:
    rows = [{"prompt": f"Question {i}: what is {i} plus one?", "completion": f" {i + 1}."} for i in range(12)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_configs_load_as_their_backends():
    ddp = load_config_from_file(str(CONFIGS / "ddp.yaml"))
    assert ddp.distributed_type == DistributedType.MULTI_GPU and ddp.num_processes == 2
    fsdp = load_config_from_file(str(CONFIGS / "fsdp.yaml"))
    assert fsdp.distributed_type == DistributedType.FSDP
    assert fsdp.fsdp_config["fsdp_version"] == 2
    assert fsdp.fsdp_config["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT"
    zero = load_config_from_file(str(CONFIGS / "deepspeed_zero2.yaml"))
    assert zero.distributed_type == DistributedType.DEEPSPEED
    assert zero.deepspeed_config["zero_stage"] == 2
    assert zero.deepspeed_config["gradient_clipping"] == 1.0  # underdog's max_grad_norm default
    for path in CONFIGS.glob("*.yaml"):
        assert "accelerate launch --config_file configs/accelerate/" in path.read_text(), path.name


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="gloo launch tested on Linux")
@pytest.mark.parametrize("config", ["ddp", "fsdp"])
def test_underdog_train_under_accelerate_launch_with_2_cpu_processes(tmp_path, llama_dir, config):
    data = _data(tmp_path / "data.jsonl")
    settings = ["max_steps=3", "lr=1e-2", "save_every=2", "max_length=64", "adapter=full", "log_every=1"]
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="", ACCELERATE_USE_CPU="true",
               HF_HOME=str(tmp_path / "hf"))
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIGS / f"{config}.yaml"),
           "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(_free_port()),
           "-m", "underdog.cli", "train", "--model", str(llama_dir), "--data", str(data), "--out", str(tmp_path / "D"),
           "--device", "cpu", "batch_size=2", *settings]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    launched = json.loads((tmp_path / "D" / "results.json").read_text())
    assert json.loads((tmp_path / "D" / "checkpoints" / "step_2" / "trainer_state.json").read_text())["processes"] == 2
    assert (tmp_path / "D" / "final" / "model.safetensors").is_file()
    if config == "fsdp":
        print("FSDP cannot run on CPU: accelerate enables it only on GPU-like devices, so this launch ran as "
              "2-process DDP (gloo); the FSDP settings are checked in test_configs_load_as_their_backends")

    overrides = dict(s.split("=") for s in settings)
    single = sft.run(build_config(sft.Recipe, {"model": str(llama_dir), "data": str(data), "out": str(tmp_path / "one"),
                                               "device": "cpu", "batch_size": 4, **overrides}), log=lambda _: None)
    assert launched["training"]["losses"] == pytest.approx(single["training"]["losses"], rel=1e-5)
    assert launched["training"]["steps"] == 3
