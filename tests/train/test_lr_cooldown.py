"""The warmup-stable-decay schedule, and a cooldown branch resumed from a constant-rate trunk's checkpoint."""

import pytest
import torch

from tests.tiny_models import build_model, make_tokenizer, varied_examples
from underdog.train import TrainConfig, lr_at, train


def test_wsd_is_constant_then_linear_down_to_the_floor():
    config = TrainConfig(lr=1.0, warmup_ratio=0.1, lr_schedule="wsd", decay_ratio=0.4, min_lr_ratio=0.1)
    lrs = [lr_at(s, 10, config) for s in range(10)]
    assert lrs[0] == 1.0  # one warmup step: 1/1
    assert lrs[:6] == [1.0] * 6  # stable until the last 40% of the steps
    assert lrs[6:] == pytest.approx([0.775, 0.55, 0.325, 0.1])  # linear, reaching the floor at the last step
    assert lr_at(3, 10, config.model_copy(update={"decay_ratio": 1.0})) == pytest.approx(0.64)


def test_cooldown_branch_from_a_constant_trunk_equals_one_wsd_run(tmp_path):
    """A constant-rate run checkpointed at step 3 (stopped by its callback) and resumed with "wsd" to step 5 takes
    the same steps as one uninterrupted "wsd" run of 5 steps decaying over its last 2."""
    tok = make_tokenizer()
    examples = varied_examples(12)
    base = TrainConfig(lr=5e-3, max_steps=5, batch_size=2, seed=1, weight_decay=0.01, log_every=1)
    wsd = {"lr_schedule": "wsd", "decay_ratio": 0.4}
    whole = train(build_model("llama", tok, seed=2), tok, examples, base.model_copy(update=wsd))

    trunk = base.model_copy(update={"lr_schedule": "constant", "max_steps": 8, "output_dir": str(tmp_path / "t")})
    stopped = train(build_model("llama", tok, seed=2), tok, examples, trunk, callback=lambda i: i["step"] >= 3)
    assert stopped.final_step == 3 and (tmp_path / "t" / "checkpoints" / "step_3").is_dir()
    lrs: list[float] = []
    branch = train(build_model("llama", tok, seed=7), tok, examples,  # weights come from the checkpoint
                   base.model_copy(update={**wsd, "output_dir": str(tmp_path / "t")}), resume=True,
                   callback=lambda i: lrs.append(i["lr"]))
    assert lrs == pytest.approx([5e-3 * 0.5, 0.0])
    assert branch.losses == pytest.approx(whole.losses, rel=1e-6)
    for (name, p), (_, q) in zip(whole.model.named_parameters(), branch.model.named_parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7, msg=name)
