"""Evaluation metrics: exact match, F1, Rouge-L, edit distance, Brier, selective prediction, emergence, and
paired comparison of two models on the same questions."""
