"""google-research's import path of the examples: `model_pruning.examples`."""
