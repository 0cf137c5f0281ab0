"""Loading a causal LM and its tokenizer into one ``LM`` object.

``load("builtin")`` gives the model shipped in ``underdog/assets/``; any other string is a local Hugging Face
model directory (Llama, GPT-2, OPT, Qwen2, ...), or a PEFT adapter directory (``adapter_config.json``, as
``underdog train`` saves), loaded onto the base model its config names. Loading is safe by default: safetensors only, no remote code,
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
ADAPTER_CONFIG = "adapter_config.json"


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


DEVICES = "auto, cpu, cuda, cuda:N or mps"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` (CUDA when there is a GPU, else CPU) or a torch device that exists here; anything else is a
    ``ModelLoadError`` naming the device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(str(device).strip().lower())
    except (RuntimeError, ValueError, TypeError):
        raise ModelLoadError(f"unknown device {device!r}; use {DEVICES}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {device!r}: no CUDA GPU is available here; use cpu or auto")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ModelLoadError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelLoadError(f"device {device!r}: MPS is not available here; use cpu or auto")
    elif dev.type != "cpu":
        raise ModelLoadError(f"unsupported device {device!r}; use {DEVICES}")
    return dev


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
    if not (path / "config.json").is_file() and (path / ADAPTER_CONFIG).is_file():
        return path  # a PEFT adapter: ``load`` puts it on its base model
    if not (path / "config.json").is_file():
        raise ModelLoadError(f"'{path}' has no config.json: not a Hugging Face model directory")
    try:
        json.loads((path / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"'{path}/config.json' is not valid JSON ({e.msg}, line {e.lineno})") from None
    return path


def tokenizer_dir(path: str | os.PathLike) -> Path:
    """The folder holding a model folder's tokenizer: the folder itself, or, for a built-in model that ships
    none, ``builtin``'s (the built-in models share one tokenizer, kept once)."""
    path = Path(path)
    if any((path / f).is_file() for f in _TOKENIZER_FILES):
        return path
    if path.resolve().parent == ASSETS.resolve():
        return BUILTIN_MODELS["builtin"]
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
    if (path / ADAPTER_CONFIG).is_file() and not (path / "config.json").is_file():
        return _load_adapter(path, str(model), dtype, device, allow_pickle, trust_remote_code)
    _check_weights(path, allow_pickle)
    if not any((tokenizer_dir(path) / f).is_file() for f in _TOKENIZER_FILES):
        raise ModelLoadError(f"'{path}' has no tokenizer files ({', '.join(_TOKENIZER_FILES)})")
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(path), local_files_only=True,
                                                  trust_remote_code=trust_remote_code)
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


def adapter_base(path: str | os.PathLike) -> str:
    """The base model an adapter directory's ``adapter_config.json`` names: a built-in name, an absolute
    directory, or one relative to the adapter directory (else to the working directory)."""
    path = Path(path)
    try:
        base = json.loads((path / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"'{path}/{ADAPTER_CONFIG}' is not valid JSON ({e.msg}, line {e.lineno})") from None
    if not base:
        raise ModelLoadError(f"'{path}/{ADAPTER_CONFIG}' names no base_model_name_or_path")
    if base in BUILTIN_MODELS:
        return base
    local = Path(base).expanduser()
    if not local.is_absolute() and (path / local / "config.json").is_file():
        return str(path / local)
    return str(local)


def _load_adapter(path: Path, name: str, dtype, device: str, allow_pickle: bool, trust_remote_code: bool) -> LM:
    """A PEFT adapter (safetensors only) on its base model; the tokenizer is the adapter's when it has one."""
    from peft import PeftModel
    from transformers import AutoTokenizer

    if not (path / "adapter_model.safetensors").is_file():
        raise ModelLoadError(f"'{path}' is an adapter without adapter_model.safetensors (only safetensors load)")
    base_name = adapter_base(path)
    base = load(base_name, dtype=dtype, device=device, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    tokenizer = base.tokenizer
    if any((path / f).is_file() for f in _TOKENIZER_FILES):
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
    try:
        net = PeftModel.from_pretrained(base.model, str(path), is_trainable=False)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"could not load the adapter '{path}': {first}") from None
    net.eval()
    peft_type = str(getattr(net.active_peft_config, "peft_type", "")).rsplit(".", 1)[-1].lower()
    return LM(net, tokenizer, name=name, path=str(path),
              info={**base.info, "base_model": base.path, "adapter": peft_type})
