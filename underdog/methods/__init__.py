"""Methods: one file per method (icl, finetune, augment, explain, aspire, ...), built on the layers below."""
