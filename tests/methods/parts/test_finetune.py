"""Fine-tuning on statements: a model given by name and the same model given already loaded train to the
same weights (the loaded one in place), and training data is the documents' sentences plus extra statements."""

import torch

from underdog.config import TrainSettings
from underdog.lm import load
from underdog.methods.parts.finetune import finetune, training_examples


def test_a_loaded_model_trains_in_place_to_the_same_weights_as_one_loaded_by_name(llama_dir):
    documents = [{"id": "d0", "text": "Blicks are more tall than wugs. Every dax likes fep."}]
    examples = training_examples(documents, "independent", ["Wugs are less tall than blicks."])
    assert [e["text"] for e in examples][-1] == "Wugs are less tall than blicks."
    settings = TrainSettings(max_steps=3, batch_size=2, lr=1e-2)
    by_name, summary = finetune(str(llama_dir), examples, settings, seed=3, device="cpu")
    loaded = load(llama_dir, device="cpu")
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    tuned, _ = finetune(loaded, examples, settings, seed=3)
    assert tuned.model is loaded.model and summary["steps"] == 3
    after = tuned.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
    for k, v in by_name.model.state_dict().items():
        torch.testing.assert_close(v, after[k])
