"""Loading a causal LM and its tokenizer into one ``LM`` object.

``load("builtin")`` gives the model shipped in ``underdog/assets/``; any other string is a local Hugging Face
model directory (Llama, GPT-2, OPT, Qwen2, ...). Loading is safe by default: safetensors only, no remote code,
no network. A missing, partial or corrupt directory raises ``ModelLoadError`` with one line saying what is wrong.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from underdog import UnderdogError

ASSETS = Path(__file__).resolve().parent.parent / "assets"
BUILTIN_MODELS = {"builtin": ASSETS / "builtin", "builtin-large": ASSETS / "builtin-large"}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "tokenizer_config.json")


class ModelLoadError(UnderdogError):
    """The model directory is missing, partial or corrupt."""


@dataclass
class LM:
    """A loaded causal LM: the model (eval mode), its tokenizer, and where it came from."""

    model: torch.nn.Module
    tokenizer: object
    name: str
    path: str | None = None
    info: dict = field(default_factory=dict)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def max_length(self) -> int:
        cfg = self.model.config
        for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(cfg, key, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype, device: torch.device) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise ModelLoadError(f"unknown dtype '{dtype}'; use auto, float32, bfloat16 or float16") from None


def resolve_model_path(model: str | os.PathLike) -> Path:
    """Map 'builtin' names to their asset folders and check that a model directory looks complete."""
    name = str(model)
    path = BUILTIN_MODELS.get(name, Path(name).expanduser())
    if name in BUILTIN_MODELS and not (path / "config.json").is_file():
        raise ModelLoadError(f"the built-in model '{name}' is not installed at {path}; run `underdog pretrain`")
    if not path.exists():
        raise ModelLoadError(f"model directory '{path}' does not exist (hub downloads are not used; pass a local dir)")
    if not path.is_dir():
        raise ModelLoadError(f"'{path}' is a file; pass the model directory that holds config.json")
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"'{path}' has no config.json: not a Hugging Face model directory")
    try:
        json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"'{path}/config.json' is not valid JSON ({e.msg}, line {e.lineno})") from None
    return path


def weights_stamp(model: str | os.PathLike | None) -> list:
    """(name, size, mtime) of a model directory's safetensors files: a cheap fingerprint of its weights, used
    in stage keys so that a cached stage is recomputed when the model's weights change."""
    if not model:
        return []
    path = resolve_model_path(model)
    return sorted((p.name, p.stat().st_size, int(p.stat().st_mtime)) for p in path.glob("*.safetensors"))


def _check_weights(path: Path, allow_pickle: bool) -> None:
    safetensors = sorted(path.glob("*.safetensors"))
    pickled = sorted(p for p in path.glob("*.bin") if p.name.startswith("pytorch_model"))
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = path / index_name
        if index.is_file():
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
            missing = sorted(s for s in shards if not (path / s).is_file())
            if missing:
                raise ModelLoadError(f"'{path}' is partial: {index_name} lists missing shard(s) {', '.join(missing)}")
    if not safetensors and not pickled:
        raise ModelLoadError(f"'{path}' has no weights (*.safetensors)")
    if not safetensors and pickled and not allow_pickle:
        raise ModelLoadError(
            f"'{path}' has only pickled weights ({pickled[0].name}); pass allow_pickle=True "
            "(--allow-pickle) to load them, only for files you trust"
        )


def load(
    model: str | os.PathLike = "builtin",
    dtype: str | torch.dtype = "auto",
    device: str = "auto",
    *,
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
) -> LM:
    """Load a causal LM and its tokenizer from a local directory (or a built-in name)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    path = resolve_model_path(model)
    _check_weights(path, allow_pickle)
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        raise ModelLoadError(f"'{path}' has no tokenizer files ({', '.join(_TOKENIZER_FILES)})")
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
        net = AutoModelForCausalLM.from_pretrained(
            path,
            dtype=torch_dtype,
            local_files_only=True,
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=trust_remote_code,
        )
    except (OSError, ValueError, RuntimeError, KeyError, SafetensorError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"could not load '{path}': {first}") from None
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    net.to(torch_device).eval()
    n_params = sum(p.numel() for p in net.parameters())
    return LM(net, tokenizer, name=str(model), path=str(path),
              info={"parameters": n_params, "dtype": str(torch_dtype).removeprefix("torch."),
                    "device": str(torch_device), "architecture": net.config.model_type})
