"""Run by ``test_train_loop.py::test_ddp_matches_single_process`` under ``accelerate launch --num_processes 2``.

Trains a tiny Llama with a per-device batch of 2 and writes the loss curve (and a parameter checksum) as JSON
to the path given as the first argument.
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from helpers import ddp_case  # noqa: E402

from underdog.train import TrainConfig, train  # noqa: E402


def main() -> None:
    model, tokenizer, examples, config_kwargs = ddp_case()
    result = train(model, tokenizer, examples, TrainConfig(batch_size=2, **config_kwargs))
    from accelerate import PartialState

    if PartialState().is_main_process:
        checksum = sum(float(p.detach().double().abs().sum()) for p in result.model.parameters())
        Path(sys.argv[1]).write_text(json.dumps({"losses": result.losses, "checksum": checksum,
                                                 "processes": PartialState().num_processes}))


if __name__ == "__main__":
    main()
