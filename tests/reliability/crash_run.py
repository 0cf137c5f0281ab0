"""A two-stage run for the kill -9 campaign: stage ``score`` scores items, stage ``train`` fine-tunes on them
(through ``methods.parts.finetune``, so with trainer checkpoints) and scores again; then ``results.json``.

Usage: python crash_run.py MODEL_DIR OUT_DIR [KILL_POINT]   (one run)
       python crash_run.py --server                        (a fork server, see ``serve``)

With ``KILL_POINT`` the run stops at that point of its progress: it writes the point's name to
``OUT_DIR.reached`` and waits there to be killed (the test sends SIGKILL as soon as the file appears, so kills
follow the run's progress, not a clock). Each stage appends its name to ``OUT_DIR.computed`` when it actually
computes. The points: ``score-started`` (inside stage 1, a partial file in its temp folder), ``score-commit``
(stage 1's result written, its ``stage.json`` not yet), ``train-started`` (stage 2 begun), ``train-ckpt-2`` and
``train-ckpt-6`` (trainer checkpoint of step 2 / 6 complete), ``train-half-ckpt-4`` (checkpoint 4 half written),
``train-done`` (training finished, stage 2 not committed), ``results`` (stages done, results.json not written).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

import torch

import underdog.runs as runs
import underdog.train.trainer as trainer
from underdog.config import TrainConfig
from underdog.lm import load
from underdog.methods.parts.finetune import finetune
from underdog.runs import Run
from underdog.tasks.choice import ChoiceItem, evaluate_choices

CONTEXTS = ["the cat sat on the", "a big dog ran", "green house near the", "the red stone is"]
CHOICES = [["mat", "tree"], ["far", "near"], ["river", "tree"], ["big", "small"]]
ITEMS = [ChoiceItem(f"q{i}", c, ch, 0, {}) for i, (c, ch) in enumerate(zip(CONTEXTS, CHOICES))]
EXAMPLES = [{"prompt": c, "completion": " " + ch[0] + "."} for c, ch in zip(CONTEXTS, CHOICES)] * 2
SETTINGS = TrainConfig(lr=1e-2, max_steps=8, batch_size=2, save_every=2, max_length=64, log_every=1)


def main(model_dir: str, out: str, kill_at: str | None) -> None:
    torch.set_num_threads(1)
    reached, computed = Path(out + ".reached"), Path(out + ".computed")

    def point(name: str) -> None:
        if name == kill_at:
            reached.write_text(name)
            time.sleep(600)  # killed here

    write_json = runs.atomic_write_json

    def patched_write_json(path, obj, strict=True):
        if Path(path).name == "stage.json" and Path(path).parent.name.startswith(".score.tmp"):
            point("score-commit")
        if Path(path).name == "results.json":
            point("results")
        return write_json(path, obj, strict)

    runs.atomic_write_json = patched_write_json
    save_checkpoint = trainer._save_checkpoint

    def patched_save(accelerator, output_dir, state):
        if state["step"] == 4 and kill_at == "train-half-ckpt-4":
            accelerator.save_state(str(Path(output_dir) / "checkpoints" / ".tmp_step_4"))
            point("train-half-ckpt-4")
        save_checkpoint(accelerator, output_dir, state)
        point(f"train-ckpt-{state['step']}")

    trainer._save_checkpoint = patched_save

    lm = load(model_dir, device="cpu")
    run = Run(out, {"model": model_dir})

    def score_stage(tmp: Path) -> dict:
        with computed.open("a") as f:
            f.write("score\n")
        (tmp / "partial.txt").write_text("half")
        point("score-started")
        results = evaluate_choices(lm, ITEMS)
        return {"correct": [r.correct for r in results], "logprobs": [r.logprobs for r in results]}

    before = run.stage("score", {"items": CONTEXTS, "choices": CHOICES}, score_stage)

    def train_stage(tmp: Path) -> dict:
        with computed.open("a") as f:
            f.write("train\n")
        point("train-started")
        tuned, summary = finetune(load(model_dir, device="cpu"), EXAMPLES, SETTINGS, seed=3)
        point("train-done")
        return {"logprobs": [r.logprobs for r in evaluate_choices(tuned, ITEMS)], "steps": summary["steps"],
                "final_loss": summary["final_loss"]}

    after = run.stage("train", {"before": before, "settings": SETTINGS.stage_key()}, train_stage)
    gain = sum(a[0] - b[0] for a, b in zip(after["logprobs"], before["logprobs"])) / len(ITEMS)
    run.write_results("crash-test", model_dir, "toy", {
        "gain": runs.metric(gain), "final_loss": runs.metric(after["final_loss"]),
        "steps": runs.metric(after["steps"])}, per_split={"before": before, "after": after["logprobs"]})


def serve() -> None:
    """A fork server: with torch and underdog imported once (and no torch op run, so forking is safe), read
    ``run MODEL OUT [POINT]`` lines and answer with the pid of a forked child running ``main`` (its output goes
    to ``OUT.log``), and ``wait PID`` lines with the child's exit status (-9 when killed). Every run is still
    a process of its own that SIGKILL ends at once; only the seconds of importing are shared."""
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "run":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    fd = os.open(args[1] + ".log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                    os.dup2(fd, 1)
                    os.dup2(fd, 2)
                    main(args[0], args[1], args[2] if len(args) > 2 else None)
                    code = 0
                except BaseException:  # noqa: BLE001 - reported in the log, seen by the test as exit 1
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            print(pid, flush=True)
        elif cmd == "wait":
            _, status = os.waitpid(int(args[0]), 0)
            print(os.waitstatus_to_exitcode(status), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "--server":
        serve()
    else:
        main(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
