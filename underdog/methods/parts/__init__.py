"""The building blocks studies share: ICL-free fine-tuning on documents (``finetune``), the model's own
augmentations (``augment``), learned self-evaluation on a generation's KV cache (``selfeval``) and teachers
for explanation tuning (``teachers``). A part never imports a study (``underdog.methods.<study>``)."""
