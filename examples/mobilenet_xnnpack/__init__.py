"""Pruning a MobileNet-style model for XNNPACK's sparse path (digits data).

data.py (scikit-learn's bundled digits, upsampled), model.py (masked
layers), pipeline.py (train, prune with latency_policy, strip, export, check,
time), __main__.py (the absl binary: python -m examples.mobilenet_xnnpack).
See docs/xnnpack_latency.md.
"""
