"""Shared, flag-free pieces of the real-data pruning studies."""
