#!/usr/bin/env bash
# Runs the Bazel tests as CI does: every py_test target, slow tests excluded.
#
# The slow end-to-end tests (@pytest.mark.slow, and whole files listed in
# SLOW_TESTS in BUILD) already run in CI's pytest pass; here Bazel checks that
# the BUILD graph is complete, so each test file runs with -m "not slow".
# Extra arguments go to `bazel test` as flags.
#   tools/run_bazel_tests.sh                      # //... minus slow
#   RUN_SLOW=1 tools/run_bazel_tests.sh           # everything
#   BAZEL_TARGETS="//:learning_test //:pruning_hook_test" tools/run_bazel_tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup_bazel.sh

SLOW_FLAGS=(--test_tag_filters=-slow --test_arg=-m --test_arg="not slow")
if [ "${RUN_SLOW:-0}" = 1 ]; then SLOW_FLAGS=(); fi

# Sized for a 2-core, 24 GiB machine: two test processes at a time (each a
# TensorFlow process), a small Bazel server heap, plain CI-friendly output.
status=0
# shellcheck disable=SC2086  # BAZEL_TARGETS is a space-separated list.
bazel --host_jvm_args=-Xmx2g test ${BAZEL_TARGETS:-//...} \
  --test_output=errors \
  --local_test_jobs=2 \
  --jobs=2 \
  --local_cpu_resources=2 \
  --local_ram_resources=HOST_RAM*.5 \
  --test_timeout=300,900,1800,3600 \
  --curses=no --color=no --show_progress_rate_limit=30 \
  "${SLOW_FLAGS[@]}" "$@" || status=$?
bazel --host_jvm_args=-Xmx2g shutdown || true
exit "${status}"
