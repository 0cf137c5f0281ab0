"""Recipe configs: pydantic models, read from YAML with ``key=value`` overrides, with one-line errors.

``load_config(Model, "recipe.yaml", ["train.lr=1e-4"])`` returns a validated model. An unknown key names the
key and the allowed ones; a bad value names the key, what was given and what is expected. Errors raise
``ConfigError`` (the CLI prints it and exits with code 2 before anything is written).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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


def check_known(values: Sequence[str], allowed: Sequence[str], what: str) -> list[str]:
    """For list-valued settings: the values, or a ValueError naming the first unknown one and the allowed ones."""
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ValueError(f"unknown {what} {bad[0]!r}; allowed: {', '.join(allowed)}")
    return list(values)


class TrainSettings(Strict):
    """Training-loop settings shared by every method that fine-tunes (mirrors ``underdog.train.TrainConfig``)."""

    adapter: Literal["full", "lora", "prompt"] = "full"
    lr: float = Field(1e-3, gt=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int | None = Field(None, gt=0)
    batch_size: int = Field(8, gt=0)
    grad_accum: int = Field(1, gt=0)
    max_length: int = Field(512, gt=0)
    packing: bool = False
    completion_only: bool = True
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    lora_r: int = Field(8, gt=0)
    lora_alpha: int = Field(16, gt=0)
    num_virtual_tokens: int = Field(16, gt=0)


class ScoreRecipe(Strict):
    """`underdog score`: multiple-choice scoring of a JSONL file."""

    model: str = "builtin"
    data: str
    out: str
    batch_size: int = Field(32, gt=0)
    dtype: str = "auto"
    device: str = "auto"
    seed: int = 0


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
        raise ConfigError(f"recipe '{path}' does not exist")
    try:
        data = yaml.safe_load(path.read_text()) or {}
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
