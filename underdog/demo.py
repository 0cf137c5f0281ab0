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
    from underdog.methods.generalization import GeneralizationRecipe, run_generalization

    out_dir = Path(out)
    run = Run(out_dir, {"model": model, "seed": seed, "quick": quick}, log=log)
    studies: dict[str, dict] = {}
    start = time.time()
    log(f"[demo] generalization study: none vs icl on `{model}`, fresh world seed {seed}")
    recipe = GeneralizationRecipe(model=model, seed=seed, methods=["none", "icl"],
                                  out=str(out_dir / "generalization"), max_per_split=40 if quick else 200)
    studies["generalization"] = run_generalization(recipe, log=log)
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
