"""A run whose two stages sleep in worker lanes, used by the tests of ``Run.stages_in_lanes``'s clean-up.

Usage: python lanes_run.py OUT_DIR [fail]
Each stage writes its worker's pid to OUT_DIR/<stage>.pid, then sleeps 120 s; with ``fail`` the second stage
raises once the first has started.
"""

import functools
import os
import sys
import time
from pathlib import Path

from underdog.runs import Run


def sleeper(name: str, out: str, fail: bool, tmp: Path) -> int:
    (Path(out) / f"{name}.pid").write_text(str(os.getpid()))
    if fail and name == "b":
        while not (Path(out) / "a.pid").exists():
            time.sleep(0.1)
        raise RuntimeError("stage b failed")
    time.sleep(120)
    return 0


if __name__ == "__main__":
    out, fail = sys.argv[1], sys.argv[2:] == ["fail"]
    run = Run(Path(out) / "run", {"fail": fail})
    run.stages_in_lanes([(n, {"n": n}, functools.partial(sleeper, n, out, fail)) for n in ("a", "b")], lanes=2)
