"""A two-stage run used by the kill -9 test: stage 1 scores items, stage 2 is slow and uses stage 1's output.

Usage: python two_stage_run.py MODEL_DIR OUT_DIR SLOW_SECONDS
Each stage appends its name to OUT_DIR/computed.log when it actually computes.
"""

import sys
import time
from pathlib import Path

from underdog.lm import load, score
from underdog.runs import Run


def main(model_dir: str, out: str, slow: float) -> None:
    lm = load(model_dir, device="cpu")
    run = Run(out, {"model": model_dir, "slow": slow})
    contexts = ["the cat sat on", "a big dog", "green house"] * 4
    conts = [" a mat", " ran far", " tree"] * 4

    def stage1(tmp: Path):
        with open(Path(out) / "computed.log", "a") as f:
            f.write("stage1\n")
        return [s.logprob for s in score(lm, contexts, conts)]

    lps = run.stage("score", {"contexts": contexts, "conts": conts}, stage1)

    def stage2(tmp: Path):
        with open(Path(out) / "computed.log", "a") as f:
            f.write("stage2\n")
        (Path(out) / "stage2.started").touch()
        time.sleep(slow)
        return {"total": sum(lps), "best": max(lps)}

    summary = run.stage("summarise", {"lps": lps}, stage2)
    run.write_results("two-stage", model_dir, "toy", {"total": {"value": summary["total"], "ci95": None}})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]))
