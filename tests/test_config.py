"""Config: YAML + key=value overrides; unknown keys and bad values give one-line errors; CLI exits 2."""

import pytest

from underdog.cli import main
from underdog.config import ConfigError, ScoreRecipe, Strict, TrainSettings, build_config, load_config


class Recipe(Strict):
    model: str = "builtin"
    train: TrainSettings = TrainSettings()


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("# underdog run r.yaml\nmodel: m\ntrain:\n  lr: 0.01\n")
    cfg = load_config(Recipe, path, ["train.batch_size=4", "train.packing=true"])
    assert (cfg.model, cfg.train.lr, cfg.train.batch_size, cfg.train.packing) == ("m", 0.01, 4, True)


def test_partial_section_keeps_the_sections_other_defaults():
    class Tuned(Strict):
        train: TrainSettings = TrainSettings(adapter="prompt", lr=0.03, batch_size=4)

    cfg = build_config(Tuned, {}, ["train.epochs=5"])
    assert (cfg.train.adapter, cfg.train.lr, cfg.train.batch_size, cfg.train.epochs) == ("prompt", 0.03, 4, 5)
    assert build_config(Tuned, {}, ["train.lr=0.1"]).train.lr == 0.1


def test_unknown_key_names_key_and_allowed(tmp_path):
    with pytest.raises(ConfigError) as err:
        build_config(Recipe, {}, ["train.lrr=1"])
    msg = str(err.value)
    assert "unknown key 'train.lrr'" in msg and "lr" in msg and "batch_size" in msg and "\n" not in msg
    with pytest.raises(ConfigError, match="unknown key 'modle'.*allowed: model, train"):
        build_config(Recipe, {"modle": "x"})


def test_bad_value_names_key():
    with pytest.raises(ConfigError, match="bad value for 'train.lr': 'fast'"):
        build_config(Recipe, {}, ["train.lr=fast"])
    with pytest.raises(ConfigError, match="train.adapter"):
        build_config(Recipe, {}, ["train.adapter=qlora"])
    with pytest.raises(ConfigError, match="missing required key 'data'"):
        build_config(ScoreRecipe, {"out": "x"})


def test_invalid_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model: m\ntrain: [\n")
    with pytest.raises(ConfigError, match="bad.yaml:"):
        load_config(Recipe, path)


def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, llama_dir, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "context": "x", "choices": ["a", "b"], "answer": 0}\n{"id": 2, "context": "x"\n')
    out = tmp_path / "out"
    assert main(["score", "--model", str(llama_dir), "--data", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2: invalid JSON" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["score", "--model", str(tmp_path / "none"), "--data", str(bad), "--out", str(out)]) == 2
    assert not out.exists()


def test_every_shipped_recipe_validates_and_starts_with_its_command():
    from pathlib import Path

    from underdog.config import build_config, read_yaml
    from underdog.methods import get_study
    from underdog.pretrain.recipe import PretrainRecipe

    root = Path(__file__).resolve().parent.parent / "recipes"
    studies = sorted(root.glob("*.yaml"))
    assert studies
    for path in studies:  # a study recipe names its method and is run by `underdog run`
        data = read_yaml(path)
        build_config(get_study(data.pop("method")).Recipe, data)
        assert path.read_text().startswith(f"# underdog run recipes/{path.name}"), path.name
    for path in sorted((root / "lineage").glob("*.yaml")):  # the shipped models' pretraining stages
        load_config(PretrainRecipe, path, [])
        assert path.read_text().startswith(f"# underdog pretrain recipes/lineage/{path.name}"), path.name
