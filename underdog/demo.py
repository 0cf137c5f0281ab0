"""`underdog demo`: every registered study's demo version, end to end, on the built-in model, offline.

Each study runs in its own sub-run (``DIR/<study>/``, cached and resumable like any run), with what it prints
and its progress bars going to ``DIR/demo.log``; the terminal shows one overall progress bar with an ETA
(from each study's measured ``DEMO_SECONDS``) and the current stage. The demo then writes ``DIR/results.json``
(every study's metrics, prefixed by study) and ``DIR/report.md``, which opens with the verdict page (small +
method vs larger, every study) followed by each study's report, and ends by printing the report's path.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import warnings
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from underdog import UnderdogError
from underdog.methods import STUDIES
from underdog.report.verdict import verdict_line, write_demo_report
from underdog.runs import Run

QUICK_SHARE = 0.3  # the quick demo's expected share of the full demo's time


def demo_studies(names: str | None = None) -> list[str]:
    chosen = [s.name for s in STUDIES.values() if s.demo]
    if names:
        asked = [n.strip() for n in names.split(",") if n.strip()]
        unknown = [n for n in asked if n not in chosen]
        if unknown:
            raise UnderdogError(f"--studies: unknown demo study {unknown[0]!r}; known: {', '.join(chosen)}")
        chosen = [n for n in chosen if n in asked]
    return chosen


class _Ticker:
    """Advances the overall bar with the clock inside a study, up to 97% of that study's budget."""

    def __init__(self, progress: Progress, task: int):
        self.progress, self.task = progress, task
        self.base, self.budget, self.started = 0.0, 0.0, time.time()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def study(self, base: float, budget: float) -> None:
        self.base, self.budget, self.started = base, budget, time.time()

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            done = min(time.time() - self.started, 0.97 * self.budget)
            self.progress.update(self.task, completed=self.base + done)

    def __enter__(self) -> _Ticker:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_demo(out: str, model: str = "builtin", seed: int = 2026, quick: bool = False,
             studies: str | None = None, console: Console | None = None) -> dict:
    names = demo_studies(studies)
    modules = {n: STUDIES[n].load() for n in names}
    out_dir = Path(out)
    run = Run(out_dir, {"model": model, "seed": seed, "quick": quick, "studies": names}, log=lambda m: None)
    budgets = {n: float(getattr(m, "DEMO_SECONDS", 60)) * (QUICK_SHARE if quick else 1.0) for n, m in modules.items()}
    console = console or Console()
    log_path = out_dir / "demo.log"
    results: dict[str, dict] = {}
    seconds: dict[str, float] = {}
    start = time.time()
    console.print(f"underdog demo: {len(names)} studies on `{model}` ({', '.join(names)}); "
                  f"details in {log_path}")
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[status]}"))
    with open(log_path, "a", encoding="utf-8") as log_file, \
            Progress(*columns, console=console, redirect_stdout=False, redirect_stderr=False) as progress:
        task = progress.add_task("demo", total=sum(budgets.values()), status="")

        def log(message: str) -> None:
            log_file.write(message + "\n")
            log_file.flush()
            progress.update(task, status=message[:60])

        done = 0.0
        with _Ticker(progress, task) as ticker:
            for k, name in enumerate(names, 1):
                ticker.study(done, budgets[name])
                progress.update(task, description=f"demo {k}/{len(names)} {name}", status="starting")
                log(f"[demo {k}/{len(names)}] {name}")
                recipe = modules[name].demo_recipe(str(out_dir / name), model, seed, quick)
                with contextlib.redirect_stdout(log_file), contextlib.redirect_stderr(log_file), \
                        warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)
                    began = time.time()
                    results[name] = modules[name].run(recipe, log=log)
                    seconds[name] = round(time.time() - began, 1)
                done += budgets[name]
                progress.update(task, completed=done)
                console.print(f"{name} ({seconds[name]:.0f} s): {verdict_line(results[name].get('verdict')) or 'done'}")
    metrics = {f"{study}/{k}": m for study, res in results.items() for k, m in res["metrics"].items()}
    run.write_results("demo", model, "built-in world studies", metrics,
                      extra={"studies": {s: str(out_dir / s / "results.json") for s in results},
                             "wall_seconds": time.time() - start, "study_seconds": seconds})
    write_demo_report(out_dir, rebuild=False)  # each study wrote its report as it finished
    console.print(f"demo finished in {time.time() - start:.0f} s. Report (the verdict first):")
    console.print(str(out_dir / "report.md"), soft_wrap=True)  # the last line: the path, never wrapped
    return json.loads((out_dir / "results.json").read_text())
