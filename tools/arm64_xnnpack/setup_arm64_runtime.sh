#!/bin/bash
# Sets up an aarch64 Python with the aarch64 LiteRT runtime, run under
# qemu user-mode emulation, in $1 (default /tmp/arm64_litert). Needs root
# and the Debian and PyPI registries; no binfmt_misc needed (qemu is called
# directly with -L). See docs/xnnpack_latency.md, "Checking on ARM64".
set -euo pipefail
ROOT_DIR=${1:-/tmp/arm64_litert}
mkdir -p "$ROOT_DIR" && cd "$ROOT_DIR"
apt-get update -q
apt-get install -y -q qemu-user-static debootstrap
# First stage only: downloads and unpacks an arm64 Debian without running
# its (arm64) configure scripts.
debootstrap --foreign --arch=arm64 --variant=minbase \
  --include=python3,python3-numpy bookworm root http://deb.debian.org/debian
# --include'd packages are only downloaded by the first stage: unpack them.
for deb in root/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" root; done
# What update-alternatives would have linked.
ln -sf blas/libblas.so.3 root/usr/lib/aarch64-linux-gnu/libblas.so.3
ln -sf lapack/liblapack.so.3 root/usr/lib/aarch64-linux-gnu/liblapack.so.3
pip download --no-deps --platform manylinux_2_17_aarch64 --only-binary=:all: \
  --python-version 3.11 ai-edge-litert -d wheels
mkdir -p site && (cd site && unzip -q -o ../wheels/ai_edge_litert-*.whl)
qemu-aarch64-static -L root -E PYTHONPATH="$ROOT_DIR/site" \
  root/usr/bin/python3.11 -c \
  'import platform; from ai_edge_litert import interpreter; print("ok", platform.machine())'
