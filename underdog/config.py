"""Recipe configs: pydantic models, read from YAML with ``key=value`` overrides, with one-line errors.

``load_config(Model, "recipe.yaml", ["train.lr=1e-4"])`` returns a validated model. An unknown key names the
key and the allowed ones; a bad value names the key, what was given and what is expected. Errors raise
``ConfigError`` (the CLI prints it and exits with code 2 before anything is written).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from underdog import UnderdogError


class ConfigError(UnderdogError):
    """A recipe or override is invalid."""


class Strict(BaseModel):
    """Base for all config models: unknown keys are errors, and a partial section (``train.lr=1e-4``) is
    merged into that section's default instead of replacing it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    @model_validator(mode="before")
    @classmethod
    def _merge_section_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        merged = dict(data)
        for name, info in cls.model_fields.items():
            if isinstance(info.default, BaseModel) and isinstance(merged.get(name), dict):
                merged[name] = {**info.default.model_dump(exclude_unset=True), **merged[name]}
        return merged


M = TypeVar("M", bound=BaseModel)
MAX_RECIPE_BYTES = 1 << 20  # a recipe is a few hundred bytes; anything over 1 MiB is the wrong file


def check_known(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """For list-valued settings: the values, or a ValueError naming the first unknown one and the allowed ones."""
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}; allowed: {', '.join(allowed)}")
    return list(values)


class TrainConfig(Strict):
    """Everything that shapes a training run of ``underdog.train.train``: the one training config, embedded as a
    section by every recipe that fine-tunes (``train: TrainConfig = TrainConfig(lr=3e-3, ...)``) and passed to
    the loop as it is (``config.model_copy(update={"seed": ..., "output_dir": ...})`` for per-call values).

    ``batch_size`` is per device; the global batch is ``batch_size * processes * grad_accum``. ``max_steps``
    (optimizer steps), when set, overrides ``epochs``. The adapter's options come from ``lora_*`` /
    ``num_virtual_tokens``; ``adapter_options`` adds or overrides any option ``train.apply_adapter`` takes
    (``target_modules``, ``init_text``). ``save_every`` is in optimizer steps (0: a checkpoint only at the end,
    when ``output_dir`` is set); ``bf16: auto`` is bf16 autocast on a CUDA device that supports it."""

    adapter: Literal["full", "lora", "prompt"] = "full"
    lr: float = Field(1e-3, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    batch_size: int = Field(8, gt=0)
    grad_accum: int = Field(1, gt=0)
    max_length: int = Field(512, gt=0)
    packing: bool = False
    completion_only: bool = True
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    lora_r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    num_virtual_tokens: int = Field(16, gt=0)
    # fields below joined after the ones above; stage_key leaves them out while they are at their defaults
    lora_dropout: float = Field(0.0, ge=0, lt=1)
    adapter_options: dict[str, Any] = {}
    # cosine: down to min_lr_ratio * lr; wsd (warmup-stable-decay): constant, then linear down to min_lr_ratio * lr
    # over the last decay_ratio of the steps
    lr_schedule: Literal["cosine", "constant", "wsd"] = "cosine"
    min_lr_ratio: float = Field(0.0, ge=0, le=1)
    max_grad_norm: float | None = Field(1.0, gt=0)
    bf16: bool | Literal["auto"] = "auto"
    seed: int = 0
    log_every: int = Field(10, gt=0)
    save_every: int = Field(0, ge=0)
    output_dir: str | None = None
    decay_ratio: float = Field(0.2, gt=0, le=1)  # lr_schedule "wsd": the share of the steps that decays

    def adapter_kwargs(self) -> dict[str, Any]:
        """The keyword options of ``underdog.train.apply_adapter`` for this config's adapter."""
        typed: dict[str, Any] = {
            "full": {},
            "lora": {"r": self.lora_r, "alpha": self.lora_alpha, "dropout": self.lora_dropout},
            "prompt": {"num_virtual_tokens": self.num_virtual_tokens},
        }[self.adapter]
        return {**typed, **self.adapter_options}

    def stage_key(self) -> dict[str, Any]:
        """This config as part of a stage's cache key: every field that shapes the trained weights (not
        ``log_every``, ``save_every``, ``output_dir``), those added after the first fourteen only when set away
        from their defaults, so that stages cached before they existed stay valid."""
        dump = self.model_dump(exclude={"log_every", "save_every", "output_dir"})
        later = list(TrainConfig.model_fields)[list(TrainConfig.model_fields).index("lora_dropout"):]
        return {k: v for k, v in dump.items()
                if k not in later or v != TrainConfig.model_fields[k].default}


TrainSettings = TrainConfig  # the name recipes used before the two configs became one


def _device(value: str) -> str:
    import re

    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", value.strip().lower()):
        raise ValueError("unknown device; use auto, cpu, cuda, cuda:N or mps")
    return value.strip().lower()


def _output_path(value: str) -> str:
    if not value.strip():
        raise ValueError("an output path cannot be empty")
    if "\x00" in value:
        raise ValueError("an output path cannot hold a NUL character")
    return value


# Field types for recipes: ``device: Device = "auto"`` checks the spelling (whether the device exists here is
# ``lm.load.resolve_device``'s check); ``out: OutputPath`` refuses an empty path. Whether the folder can be
# written is checked on the file system by ``files.check_output_dir`` before any work starts.
Device = Annotated[str, AfterValidator(_device)]
OutputPath = Annotated[str, AfterValidator(_output_path)]
DTYPES = ("auto", "float32", "fp32", "bfloat16", "bf16", "float16", "fp16")


class ScoreRecipe(Strict):
    """`underdog score`: multiple-choice scoring of a JSONL file. ``max_line_bytes`` bounds one line of the
    data file (``underdog.io.MAX_LINE_BYTES``: 1 MiB, about a hundred 2048-token windows); a context longer than
    the model's window is cut to its end and counted in ``results.json`` (``truncated_contexts``)."""

    model: str = "builtin"
    data: str
    out: OutputPath
    batch_size: int = Field(32, gt=0)
    dtype: Literal[DTYPES] = "auto"  # type: ignore[valid-type]
    device: Device = "auto"
    seed: int = 0
    max_line_bytes: int = Field(1 << 20, gt=0)


def _allowed_keys(model: type[BaseModel], loc: Sequence[Any]) -> list[str]:
    """Field names allowed at ``loc[:-1]`` inside ``model``."""
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if fields is None or part not in fields:
            return []
        annotation = fields[part].annotation
        current = next((a for a in getattr(annotation, "__args__", (annotation,)) if hasattr(a, "model_fields")),
                       annotation)
    return sorted(getattr(current, "model_fields", {}))


def format_validation_error(model: type[BaseModel], err: ValidationError) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"]]
    key = ".".join(loc) or "(root)"
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, first["loc"])
        return f"unknown key '{key}' (allowed: {', '.join(allowed)})"
    if first["type"] == "missing":
        return f"missing required key '{key}'"
    given = first.get("input")
    return f"bad value for '{key}': {given!r} ({first['msg'].lower()})"


def parse_overrides(overrides: Sequence[str]) -> dict:
    """``["a.b=1", "c=x"]`` -> ``{"a": {"b": 1}, "c": "x"}``; values are parsed as YAML scalars."""
    tree: dict = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' must look like key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        node = tree
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{item}': '{part}' is not a section")
        node[parts[-1]] = value
    return tree


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe '{path}' does not exist" if not path.exists() else f"recipe '{path}' is not a file")
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_RECIPE_BYTES else None
    except OSError as e:
        raise ConfigError(f"recipe '{path}': cannot read ({e.strerror or e})") from None
    if raw is None:
        raise ConfigError(f"recipe '{path}' is over {MAX_RECIPE_BYTES} bytes: not a recipe")
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise ConfigError(f"recipe '{path}': binary data (a NUL byte at byte offset {nul})")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[e.start]:02x} at byte offset {e.start})") from None
    try:
        data = yaml.safe_load(text) or {}
    except RecursionError:
        raise ConfigError(f"{path}: invalid YAML (nested too deeply)") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: invalid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a YAML mapping of keys to values")
    return data


def build_config(model: type[M], data: dict, overrides: Sequence[str] = ()) -> M:
    try:
        return model.model_validate(_merge(data, parse_overrides(overrides)))
    except ValidationError as e:
        raise ConfigError(format_validation_error(model, e)) from None


def load_config(model: type[M], path: str | os.PathLike | None = None, overrides: Sequence[str] = ()) -> M:
    """Validate a YAML recipe (optional) plus ``key=value`` overrides into ``model``."""
    data = read_yaml(path) if path else {}
    return build_config(model, data, overrides)
