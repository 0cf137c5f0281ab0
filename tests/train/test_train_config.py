"""One training config: ``TrainConfig`` validates its values, gives the adapter's options, and keys cached stages
as the fourteen-field ``TrainSettings`` did, so stages cached before the two configs became one stay valid."""

import pytest
from pydantic import ValidationError

from underdog.config import ConfigError, Strict, TrainConfig, TrainSettings, build_config
from underdog.runs import hash_inputs


@pytest.mark.parametrize("bad", [{"lr": 0}, {"epochs": 0}, {"batch_size": 0}, {"grad_accum": 0},
                                 {"warmup_ratio": 1.0}, {"max_steps": 0}, {"lr_schedule": "linear"},
                                 {"adapter": "qlora"}, {"bf16": "sometimes"}, {"max_grad_norm": 0}, {"lrr": 1}])
def test_bad_values_are_refused(bad):
    with pytest.raises(ValidationError, match=next(iter(bad))):
        TrainConfig(**bad)


def test_recipe_sections_embed_it_and_errors_name_the_key():
    class Recipe(Strict):
        train: TrainConfig = TrainConfig(lr=3e-3, epochs=6, packing=True)

    cfg = build_config(Recipe, {}, ["train.batch_size=4"])
    assert (cfg.train.lr, cfg.train.epochs, cfg.train.packing, cfg.train.batch_size) == (3e-3, 6, True, 4)
    with pytest.raises(ConfigError, match="bad value for 'train.lr': -1"):
        build_config(Recipe, {}, ["train.lr=-1"])
    assert TrainSettings is TrainConfig


def test_adapter_options_come_from_the_typed_fields_and_adapter_options_override():
    assert TrainConfig(adapter="lora", lora_r=4).adapter_kwargs() == {"r": 4, "alpha": 16, "dropout": 0.0}
    assert TrainConfig(adapter="prompt", num_virtual_tokens=3, adapter_options={"init_text": "Q:"}).adapter_kwargs() \
        == {"num_virtual_tokens": 3, "init_text": "Q:"}
    assert TrainConfig(adapter="lora", adapter_options={"r": 2}).adapter_kwargs()["r"] == 2
    assert TrainConfig().adapter_kwargs() == {}


def test_stage_key_is_the_old_settings_hash_until_a_new_field_is_set():
    assert hash_inputs(TrainConfig().stage_key()) == "76a1644cbe4cf2da"  # TrainSettings().model_dump()
    explain = TrainConfig(lr=3e-3, epochs=6, batch_size=4, max_length=384, packing=True, warmup_ratio=0.05)
    assert hash_inputs(explain.stage_key()) == "e93d70cc3a6de14e"
    plumbing = TrainConfig(log_every=1, save_every=5, output_dir="x")
    assert plumbing.stage_key() == TrainConfig().stage_key()
    changed = TrainConfig(lr_schedule="constant", seed=3)
    assert changed.stage_key()["lr_schedule"] == "constant" and changed.stage_key()["seed"] == 3
