"""`underdog demo`: every study built so far, end to end, on the built-in model, offline, in minutes.

Each study runs in its own sub-run (``DIR/<study>/``, cached and resumable like any run); the demo then writes
``DIR/results.json`` (all metrics, prefixed by study) and ``DIR/report.md`` (each study's report in turn).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from underdog.runs import Run, atomic_write_text


def run_demo(out: str, model: str = "builtin", seed: int = 2026, quick: bool = False, log=print) -> dict:
    from underdog.methods.aspire import AspireRecipe, run_aspire
    from underdog.methods.explain import ExplainRecipe, run_explain
    from underdog.methods.generalization import GeneralizationRecipe, run_generalization

    out_dir = Path(out)
    run = Run(out_dir, {"model": model, "seed": seed, "quick": quick}, log=log)
    studies: dict[str, dict] = {}
    start = time.time()
    scale = 0.25 if quick else 1.0

    log(f"[demo 1/3] generalization: none, icl, ft, aug-both on `{model}`, fresh world seed {seed}")
    studies["generalization"] = run_generalization(GeneralizationRecipe(
        model=model, seed=seed, methods=["none", "icl", "ft", "aug-both"], out=str(out_dir / "generalization"),
        max_per_split=int(100 * scale), global_links=1), log=log)

    log("[demo 2/3] ASPIRE selective prediction on world QA")
    studies["aspire"] = run_aspire(AspireRecipe.model_validate({
        "model": model, "task": "world-qa", "seed": seed, "out": str(out_dir / "aspire"),
        "n_train": int(200 * scale), "n_dev": int(100 * scale), "n_test": int(300 * scale),
        "compare_model": "builtin-large" if model == "builtin" else None}), log=log)

    log("[demo 3/3] explanation tuning (Orca 2) with the programmatic world teacher")
    studies["explain"] = run_explain(ExplainRecipe.model_validate({
        "student": model, "teacher": "world", "seed": seed, "out": str(out_dir / "explain"),
        "sizes": {"train": int(150 * scale), "dev": int(20 * scale) or 4, "test": int(50 * scale)}}), log=log)

    metrics = {f"{study}/{name}": m for study, res in studies.items() for name, m in res["metrics"].items()}
    results = run.write_results("demo", model, "built-in world studies", metrics,
                                extra={"studies": {s: str(out_dir / s / "results.json") for s in studies},
                                       "wall_seconds": time.time() - start})
    parts = [f"# underdog demo\n\nModel `{model}`; every study below ran offline on this machine "
             f"({results['env']['device']}) in {time.time() - start:.0f}s.\n"]
    for study in studies:
        text = (out_dir / study / "report.md").read_text()
        parts.append(text.replace("](", f"]({study}/").replace("# ", "## ", 1))
    atomic_write_text(out_dir / "report.md", "\n".join(parts))
    log(f"[demo] report: {out_dir / 'report.md'}; results: {out_dir / 'results.json'}")
    return json.loads((out_dir / "results.json").read_text())
