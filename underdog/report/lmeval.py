"""underdog's ``results.json`` in lm-evaluation-harness's results layout, and back.

``to_lm_eval(results)`` writes the layout that lm-eval's ``simple_evaluate`` returns and its
``EvaluationTracker`` saves (``results``, ``group_subtasks``, ``configs``, ``versions``, ``n-shot``,
``higher_is_better``, ``n-samples``, ``config`` and the run metadata), so tools that read lm-eval files read
underdog's. Names map as follows. An underdog metric ``"<arm>/<metric>"`` (``"ft/forward"``,
``"aspire/auroc"``, ``"base/one_step/accuracy"``) is split at its last ``/``: everything before it is the
lm-eval task, the last part the metric, under lm-eval's ``none`` filter: ``results["ft"]["forward,none"]``.
A name without ``/`` (``"accuracy"`` of ``underdog score``) goes under a task named after the run's method
(``results["score"]["accuracy,none"]``). A last part that already holds a filter (``"gsm8k/exact_match,
strict-match"``, as ``from_lm_eval`` writes one) keeps it. Metric names are not renamed (``accuracy`` stays
``accuracy``, not lm-eval's ``acc``). lm-eval has a standard error where underdog has a 95% interval:
``<metric>_stderr,<filter>`` is the interval's width / (2 x 1.96), or ``"N/A"`` without one, as in lm-eval.
The exact intervals, counts and every other field of ``results.json`` ride along under an ``underdog`` key that
lm-eval's readers ignore, so ``from_lm_eval(to_lm_eval(r))`` gives ``r`` back.

``from_lm_eval(obj)`` reads any lm-eval results file (its own or ours) into underdog's schema for
``underdog report``: each ``results[<task>]["<metric>,<filter>"]`` becomes the metric ``"<task>/<metric>"``
(``"<task>/<metric>,<filter>"`` for a filter other than ``none``), with ``n`` from the task's ``sample_len`` and
a normal-approximation 95% interval (value +- 1.96 stderr, not clipped) where lm-eval gives a stderr. Group rows
(which lm-eval puts in ``results`` too) are read like tasks.
"""

from __future__ import annotations

import math
import re
from typing import Any

from underdog import UnderdogError

FILTER = "none"
Z95 = 1.959963984540054  # the normal quantile of a two-sided 95% interval
METHOD = "lm-eval"  # the method of a run read from a plain lm-eval file
_TASK_FIELDS = {"name", "alias", "sample_len", "sample_count"}  # keys of results[<task>] that are not metrics
_LOWER_IS_BETTER = ("ece", "loss", "perplexity", "error", "brier", "nll", "bits_per_byte", "byte_perplexity",
                    "word_perplexity")


def _higher_is_better(metric: str) -> bool | None:
    """lm-eval's ``higher_is_better`` for an underdog metric name: False for losses and errors, True for
    accuracies and the selective metrics, None (unknown, as lm-eval allows) otherwise."""
    base = metric.partition(",")[0].lower()
    if any(base == w or base.endswith("_" + w) for w in _LOWER_IS_BETTER):
        return False
    if base in {"accuracy", "acc", "acc_norm", "auroc", "auacc", "prr", "exact_match", "f1"} or base.startswith(
            "acc@"):
        return True
    return None


def _sanitize(name: str) -> str:
    """lm-eval's ``model_name_sanitized``."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", name)


def _split_name(name: str, method: str) -> tuple[str, str, str]:
    """(task, metric, filter) of an underdog metric name."""
    head, _, last = name.rpartition("/")
    metric, comma, filt = last.partition(",")
    if not metric or (comma and not filt) or "," in filt:
        raise UnderdogError(f"metric name {name!r} does not map to lm-eval's '<metric>,<filter>' key")
    return (head or method), metric, (filt or FILTER)


def _stderr(entry: dict) -> float | str:
    ci = entry.get("ci95")
    if not ci or None in ci:
        return "N/A"
    return (float(ci[1]) - float(ci[0])) / (2 * Z95)


def to_lm_eval(results: dict) -> dict:
    """underdog's results.json (``{"method", "model", "task", "config", "metrics": {name: {"value", "ci95",
    ...}}, ...}``) in lm-evaluation-harness's results layout (see the module docstring for the mapping)."""
    if not isinstance(results, dict) or not isinstance(results.get("metrics"), dict):
        raise UnderdogError("not an underdog results.json: no 'metrics' object")
    method = str(results.get("method") or "underdog")
    env = results.get("env") or {}
    versions = env.get("versions") or {}
    config = results.get("config") or {}
    tasks: dict[str, dict[str, Any]] = {}
    seen: dict[tuple[str, str, str], str] = {}
    extras: dict[str, dict] = {}
    for name, entry in results["metrics"].items():
        if not isinstance(entry, dict) or "value" not in entry:
            raise UnderdogError(f"metric {name!r} is not a {{'value', 'ci95'}} entry")
        task, metric, filt = _split_name(name, method)
        if (task, metric, filt) in seen:
            raise UnderdogError(f"metrics {seen[(task, metric, filt)]!r} and {name!r} map to the same lm-eval "
                                f"key {task!r}: '{metric},{filt}'")
        seen[(task, metric, filt)] = name
        row = tasks.setdefault(task, {"name": task, "alias": task})
        if isinstance(entry.get("n"), int):
            row["sample_len"] = max(row.get("sample_len", 0), entry["n"])
        row[f"{metric},{filt}"] = entry["value"]
        row[f"{metric}_stderr,{filt}"] = _stderr(entry)
        extras[name] = {k: v for k, v in entry.items() if k != "value"}
    version = versions.get("underdog")
    out: dict[str, Any] = {
        "results": tasks,
        "group_subtasks": {},
        "configs": {
            task: {"task": task, "dataset_path": results.get("task"), "output_type": None,
                   "metric_list": [{"metric": key.partition(",")[0], "higher_is_better":
                                    _higher_is_better(key.partition(",")[0])}
                                   for key in row if key not in _TASK_FIELDS and "_stderr," not in key],
                   "metadata": {"version": version, "underdog_method": method}}
            for task, row in tasks.items()},
        "versions": {task: version for task in tasks},
        "n-shot": {},
        "higher_is_better": {task: {key.partition(",")[0]: _higher_is_better(key.partition(",")[0])
                                    for key in row if key not in _TASK_FIELDS and "_stderr," not in key}
                             for task, row in tasks.items()},
        "n-samples": {task: {"original": row["sample_len"], "effective": row["sample_len"]}
                      for task, row in tasks.items() if "sample_len" in row},
        "config": {"model": "underdog", "model_args": f"pretrained={results.get('model')}",
                   "batch_size": config.get("batch_size"), "device": config.get("device"),
                   "random_seed": config.get("seed")},
        "git_hash": env.get("git"),
        "transformers_version": versions.get("transformers"),
        "model_source": "underdog",
        "model_name": results.get("model"),
        "model_name_sanitized": _sanitize(str(results.get("model"))),
    }
    stages = (results.get("timing") or {}).get("stages_seconds")
    if isinstance(stages, dict) and stages:
        out["total_evaluation_time_seconds"] = str(sum(float(v) for v in stages.values()))
    out["underdog"] = {"format": 1, "method": method, "metric_names": {v: list(k) for k, v in seen.items()},
                       "metric_extras": extras,
                       "results": {k: v for k, v in results.items() if k != "metrics"}}
    return out


def is_lm_eval(obj: Any) -> bool:
    """Whether a loaded JSON object is an lm-eval results file (rather than an underdog results.json)."""
    return isinstance(obj, dict) and isinstance(obj.get("results"), dict) and "metrics" not in obj


def _metric_keys(task: str, row: Any):
    """(metric, filter, value, stderr) of each '<metric>,<filter>' key of one lm-eval task row."""
    if not isinstance(row, dict):
        raise UnderdogError(f"lm-eval results: task {task!r} is not an object")
    for key, value in row.items():
        if key in _TASK_FIELDS or "," not in key:
            continue
        metric, _, filt = key.partition(",")
        if metric.endswith("_stderr"):
            continue
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            continue  # lm-eval allows non-numeric aggregates; underdog's metrics are numbers
        yield metric, filt, value, row.get(f"{metric}_stderr,{filt}")


def _from_export(obj: dict, block: dict) -> dict:
    """Invert ``to_lm_eval`` exactly, taking the values from ``results`` (the file's figures)."""
    names = {tuple(v): k for k, v in (block.get("metric_names") or {}).items()}
    extras = block.get("metric_extras") or {}
    metrics = {}
    for task, row in obj["results"].items():
        for metric, filt, value, _ in _metric_keys(task, row):
            name = names.get((task, metric, filt))
            if name is None:  # a key added by hand: read it like a plain lm-eval one
                name = f"{task}/{metric}" if filt == FILTER else f"{task}/{metric},{filt}"
            metrics[name] = {"value": value, **extras.get(name, {"ci95": None})}
    out = dict(block.get("results") or {})
    order = list(out)
    out["metrics"] = metrics
    # results.json's own key order: metrics after config, as run.write_results writes them
    head = [k for k in ("method", "model", "task", "config") if k in out]
    return {k: out[k] for k in head + ["metrics"] + [k for k in order if k not in head]}


def from_lm_eval(obj: dict) -> dict:
    """An lm-evaluation-harness results file (as loaded JSON) in underdog's results.json schema."""
    if not is_lm_eval(obj):
        raise UnderdogError("not an lm-evaluation-harness results file: no 'results' object")
    block = obj.get("underdog")
    if isinstance(block, dict) and block.get("format") == 1:
        return _from_export(obj, block)
    metrics: dict[str, dict] = {}
    for task, row in obj["results"].items():
        n = row.get("sample_len") if isinstance(row, dict) else None
        for metric, filt, value, stderr in _metric_keys(task, row):
            ci = None
            if isinstance(stderr, (int, float)) and not isinstance(stderr, bool) and value is not None \
                    and math.isfinite(stderr) and math.isfinite(value):
                ci = [value - Z95 * stderr, value + Z95 * stderr]
            entry: dict[str, Any] = {"value": value, "ci95": ci}
            if isinstance(n, int):
                entry["n"] = n
            metrics[f"{task}/{metric}" if filt == FILTER else f"{task}/{metric},{filt}"] = entry
    config = obj.get("config") if isinstance(obj.get("config"), dict) else {}
    model = obj.get("model_name") or config.get("model_args") or config.get("model")
    subtasks = {t for subs in (obj.get("group_subtasks") or {}).values() for t in subs}
    top = [t for t in obj["results"] if t not in subtasks]
    seconds = obj.get("total_evaluation_time_seconds")
    try:
        stages = {"evaluate": float(seconds)} if seconds is not None else {}
    except (TypeError, ValueError):
        stages = {}
    return {
        "method": METHOD, "model": model, "task": ", ".join(top), "config": config, "metrics": metrics,
        "per_split": None,
        "env": {"versions": {k: v for k, v in (("lm_eval", obj.get("lm_eval_version")),
                                                ("transformers", obj.get("transformers_version"))) if v},
                "git": obj.get("git_hash")},
        "timing": {"stages_seconds": stages, "skipped_stages": []},
        "lm_eval": {k: obj[k] for k in ("versions", "n-shot", "higher_is_better", "n-samples", "group_subtasks",
                                        "date", "model_source") if k in obj},
    }
