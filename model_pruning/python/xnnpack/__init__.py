"""Pruning for TFLite's XNNPACK sparse inference: the policy and the checker.

  latency_policy  prune only the 1x1 convolutions XNNPACK's sparse path runs
  check           would the sparse path engage on a .tflite? (check_sparsity
                  --xnnpack); graph and rules are its parts
"""
