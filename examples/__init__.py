"""Examples for model_pruning (not part of the installed package)."""
