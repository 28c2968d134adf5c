"""Size study: MLP, LSTM and CNN pruned under a grid (python -m examples.size_study)."""
