"""`underdog scale`: the law fit command, a user's family of tiny HF models, and a tiny trained family."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from tests.tiny_models import save_model_dir
from underdog import UnderdogError
from underdog.methods import get_study, scale


def chinchilla(n, d):
    return 1.69 + 406.4 / np.power(n, 0.34) + 410.7 / np.power(d, 0.28)


def chinchilla_points(noise: float = 0.005, seed: int = 0, k: int = 10):
    """Points of Chinchilla's published law on our own grid (N 1e7..1e10, D 1e9..1e12), with 0.5% noise."""
    n, d = (a.ravel() for a in np.meshgrid(np.geomspace(1e7, 1e10, k), np.geomspace(1e9, 1e12, k)))
    return n, d, chinchilla(n, d) * (1 + noise * np.random.default_rng(seed).standard_normal(n.size))


def write_points(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_fit_command_recovers_chinchilla(tmp_path, capsys):
    n, d, loss = chinchilla_points()
    rows = [{"params": float(a), "tokens": float(b), "loss": float(c), "run": i}
            for i, (a, b, c) in enumerate(zip(n, d, loss))]
    points = write_points(tmp_path / "points.jsonl", rows)
    out = tmp_path / "fit"
    assert scale.COMMANDS["fit"](["--points", points, "--out", str(out), "--predict", "1e12,2e13",
                                  "--n-boot", "5"]) == 0
    assert "alpha" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    m = results["metrics"]
    assert abs(m["fit/alpha"]["value"] - 0.34) < 0.05 and abs(m["fit/beta"]["value"] - 0.28) < 0.05
    assert abs(m["fit/E"]["value"] / 1.69 - 1) < 0.05
    assert all(m[f"fit/{k}"]["ci95"] is not None for k in ("E", "A", "B", "alpha", "beta"))
    assert abs(m["fit/predicted_loss"]["value"] / chinchilla(1e12, 2e13) - 1) < 0.02
    assert results["fit_points"][0]["run"] == 0  # extra keys kept
    assert (out / "report.md").is_file() and (out / "scale_law.png").is_file()


@pytest.mark.parametrize("line, message", [
    ('{"params": -5, "tokens": 1e9, "loss": 3.0}', "points.jsonl:2: field 'params' must be positive"),
    ('{"params": 1e6, "loss": 3.0}', "points.jsonl:2"),
    ('not json', "points.jsonl:2"),
])
def test_fit_command_bad_line_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "points.jsonl"
    path.write_text('{"params": 1e6, "tokens": 1e9, "loss": 3.0}\n' + line + "\n")
    with pytest.raises(UnderdogError, match=message):
        scale.COMMANDS["fit"](["--points", str(path)])


def test_fit_command_bad_predict(tmp_path):
    with pytest.raises(UnderdogError, match="--predict"):
        scale.COMMANDS["fit"](["--points", str(tmp_path / "x.jsonl"), "--predict", "big"])


def test_recipe_checks_and_default_family():
    with pytest.raises(ValidationError, match="hidden"):
        scale.Recipe(sizes=["64-3"])
    with pytest.raises(ValidationError):
        scale.Recipe(train_tokens=0)
    r = scale.Recipe()
    assert len(r.sizes) >= 5 and r.budgets >= 4
    # the default sizes span >= 30x in non-embedding parameters (layers x (4 h^2 + 3 h * 2.75 h))
    n = [layers * (4 * h * h + 3 * h * round(2.75 * h)) for h, layers in map(scale.fam.parse_size, r.sizes)]
    assert max(n) / min(n) >= 30
    budgets = scale._budgets(r)
    assert budgets[-1] == r.train_tokens and all(b2 == 2 * b1 for b1, b2 in zip(budgets, budgets[1:]))
    assert scale.demo_recipe("o", "builtin", 1, quick=True).quick
    assert get_study("scale") is scale


def test_user_family_of_tiny_llama_and_gpt2_models(tmp_path):
    dirs = [str(save_model_dir(tmp_path / f"m{i}", arch, seed=i)) for i, arch in enumerate(("llama", "gpt2", "llama"))]
    recipe = scale.Recipe(out=str(tmp_path / "run"), models=dirs, tokens=[1000, 2000, 4000], join=[], per_split=2,
                          names=2, shots=1, eval_tokens=200, n_boot=0, lanes=1, small="m0")
    results = scale.run(recipe, log=lambda _: None)
    fam = results["family"]
    assert [p["id"] for p in fam] == ["m0", "m1", "m2"]  # ordered by training compute
    for p in fam:
        assert p["params_non_embedding"] < p["params_total"]
        assert p["train_flops"] == 6 * p["params_non_embedding"] * p["tokens"]
        assert p["eval_flops"] > 0 and p["loss"] > 0
        assert 0 <= p["metrics"]["forward/0-shot"]["accuracy"]["value"] <= 1
        assert {"syllogism/k-shot-cot", "two_hop/k-shot-cot"} <= set(p["metrics"])  # the splits that take steps
        assert "forward/k-shot-cot" not in p["metrics"]
    assert set(results["emergence"]) >= {"forward/0-shot", "two_hop/0-shot"}
    assert [len(results["prompting"][f"{s} CoT"]) for s in ("syllogism", "two_hop")] == [3, 3]
    assert results["law"]["skipped"]  # 3 points: no fit
    assert results["verdict"]["small_method"]["label"].startswith("m0")
    report = (tmp_path / "run" / "report.md").read_text()
    assert "Finding:" in report and "True" not in report and "False" not in report and "two_hop CoT" in report
    assert (tmp_path / "run" / "scale_forward_0-shot.png").is_file()


def test_tiny_trained_family_fits_the_law_and_resumes(tmp_path):
    recipe = scale.Recipe(out=str(tmp_path / "run"), sizes=["8x1", "16x1"], train_tokens=4096, budgets=3,
                          seq_len=256, batch_size=4, join=[], per_split=1, names=1, shots=1, eval_tokens=200,
                          n_boot=0, lanes=1)
    results = scale.run(recipe, log=lambda _: None)
    fam = results["family"]
    assert len(fam) == 6 and {p["size"] for p in fam} == {"8x1", "16x1"}
    for size in ("8x1", "16x1"):  # checkpoints at the budgets 1024, 2048, 4096 of one run
        tokens = sorted(p["tokens"] for p in fam if p["size"] == size)
        assert len(tokens) == 3 and tokens[0] >= 1024 and tokens[1] >= 2048 and tokens[2] >= 3000
    law = results["law"]
    assert law["points"] == 6 and np.isfinite(law["fit"]["E"])
    assert {"fit/E", "fit/alpha", "fit/beta"} <= set(results["metrics"])
    assert (tmp_path / "run" / "scale_law.png").is_file()
    assert (tmp_path / "run" / "scale_frontier.png").is_file() == bool(law["frontier"])  # none for a flat law
    logs: list[str] = []
    again = scale.run(recipe, log=logs.append)
    assert all("skipped" in line for line in logs if line.startswith("stage"))
    assert again["metrics"]["fit/E"] == results["metrics"]["fit/E"]
