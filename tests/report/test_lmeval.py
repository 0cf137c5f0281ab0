"""lm-evaluation-harness results layout: underdog -> lm-eval -> underdog is exact, the export has lm-eval's
shape (its own table printer reads it), and a file saved by lm-eval itself reads into underdog's schema."""

import json
import math
from pathlib import Path

import pytest

from underdog import UnderdogError
from underdog.report.lmeval import Z95, from_lm_eval, is_lm_eval, to_lm_eval

REAL = Path(__file__).parent / "data" / "lm_eval_results.json"  # saved by lm-eval 0.4.13's EvaluationTracker


def _results(method="generalization", metrics=None):
    metrics = metrics or {
        "none/forward": {"value": 0.36, "ci95": [0.2, 0.56], "n": 25},
        "ft/forward": {"value": 0.6, "ci95": [0.4, 0.76], "n": 25},
        "ft/two_hop": {"value": 0.24, "ci95": [0.08, 0.4], "n": 25},
        "aspire/auroc": {"value": None, "ci95": None, "n": 75},
        "base/one_step/accuracy": {"value": 0.5, "ci95": [0.25, 0.75], "n": 12, "note": "kept"},
    }
    return {"method": method, "model": "/models/tiny", "task": "world", "config": {"seed": 5, "batch_size": 8},
            "metrics": metrics, "per_split": {"forward": {"none": 0.36, "ft": 0.6}},
            "env": {"versions": {"underdog": "0.1.0", "transformers": "5.25.0"}, "git": "a05e806"},
            "timing": {"stages_seconds": {"ft": 50.0, "none": 0.25}, "skipped_stages": []},
            "verdict": {"beats": "yes"}}


def test_round_trip_is_exact_through_json():
    for results in (_results(), _results("score", {"accuracy": {"value": 0.75, "ci95": [0.6, 0.9], "n": 40}})):
        exported = json.loads(json.dumps(to_lm_eval(results)))
        assert is_lm_eval(exported) and not is_lm_eval(results)
        assert from_lm_eval(exported) == results


def test_export_has_lm_eval_layout_and_mapping():
    out = to_lm_eval(_results())
    real = json.loads(REAL.read_text())
    for key in ("results", "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples",
                "config", "git_hash", "model_name", "model_name_sanitized"):
        assert key in out and isinstance(out[key], type(real[key]) if real[key] is not None else object)
    assert set(out["results"]) == {"none", "ft", "aspire", "base/one_step"}
    ft = out["results"]["ft"]
    assert ft["forward,none"] == 0.6 and ft["two_hop,none"] == 0.24
    assert ft["forward_stderr,none"] == pytest.approx((0.76 - 0.4) / (2 * Z95))
    assert out["results"]["aspire"]["auroc_stderr,none"] == "N/A"
    assert out["results"]["base/one_step"]["accuracy,none"] == 0.5
    assert ft["name"] == ft["alias"] == "ft" and ft["sample_len"] == 25
    assert out["n-samples"]["ft"] == {"original": 25, "effective": 25}
    assert out["higher_is_better"]["aspire"] == {"auroc": True}
    assert out["model_name_sanitized"] == "__models__tiny"
    assert to_lm_eval(_results("score", {"accuracy": {"value": 0.7, "ci95": None}}))["results"]["score"][
        "accuracy,none"] == 0.7  # a name without '/' goes under the method's task


def test_lm_eval_prints_the_export():
    pytest.importorskip("lm_eval", reason="lm-eval is in the dev extra")
    from lm_eval.utils import make_table

    table = make_table(to_lm_eval(_results()))
    assert "two_hop" in table and "0.24" in table and "base/one_step" in table


def test_a_real_lm_eval_file_reads_into_underdog_schema():
    real = json.loads(REAL.read_text())
    r = from_lm_eval(real)
    assert set(r) >= {"method", "model", "task", "config", "metrics", "per_split", "env", "timing"}
    assert r["method"] == "lm-eval" and r["task"] == "toy_group"  # subtasks are under their group
    acc = r["metrics"]["toy_choice/acc"]
    assert acc["value"] == 0.4 and acc["n"] == 20
    se = real["results"]["toy_choice"]["acc_stderr,none"]
    assert acc["ci95"] == pytest.approx([0.4 - Z95 * se, 0.4 + Z95 * se])
    assert r["metrics"]["toy_choice_two/acc_norm"]["value"] == pytest.approx(0.2)
    assert r["metrics"]["toy_group/acc"]["n"] == 50
    assert len(r["metrics"]) == 5  # acc and acc_norm of two tasks, acc of the group; no stderr rows
    assert r["env"]["versions"]["lm_eval"] == "0.4.13"
    assert r["timing"]["stages_seconds"]["evaluate"] > 0
    # and back out: lm-eval's values and (to rounding) its stderrs
    again = to_lm_eval(r)["results"]
    for task, row in real["results"].items():
        for key, value in row.items():
            if "," in key and key != "sample_count":
                assert again[task][key] == pytest.approx(value, rel=1e-12), (task, key)


def test_filters_survive_and_bad_input_is_refused():
    gsm = {"results": {"gsm8k": {"alias": "gsm8k", "exact_match,strict-match": 0.1,
                                 "exact_match_stderr,strict-match": 0.01, "exact_match,flexible-extract": 0.2,
                                 "exact_match_stderr,flexible-extract": "N/A", "acc,none": float("nan")}}}
    r = from_lm_eval(gsm)
    assert r["metrics"]["gsm8k/exact_match,strict-match"]["value"] == 0.1
    assert r["metrics"]["gsm8k/exact_match,flexible-extract"]["ci95"] is None
    assert math.isnan(r["metrics"]["gsm8k/acc"]["value"])
    back = to_lm_eval(r)["results"]["gsm8k"]
    assert back["exact_match,strict-match"] == 0.1 and back["exact_match_stderr,strict-match"] == pytest.approx(0.01)
    with pytest.raises(UnderdogError, match="no 'results'"):
        from_lm_eval({"metrics": {}})
    with pytest.raises(UnderdogError, match="no 'metrics'"):
        to_lm_eval({"results": {}})
    with pytest.raises(UnderdogError, match="same lm-eval key"):
        to_lm_eval(_results("score", {"accuracy": {"value": 1.0}, "score/accuracy": {"value": 0.0}}))
