"""Pretraining the built-in base model: a syllable-friendly tokenizer, a small Llama, a synthetic-world
mix, and an in-context-learning probe that logs how ICL emerges with training compute."""
