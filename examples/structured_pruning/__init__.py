"""Structured 2:4 pruning tutorial on digits (python -m examples.structured_pruning)."""
