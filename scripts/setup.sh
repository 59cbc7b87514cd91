#!/usr/bin/env bash
# Installs everything kiln needs to build and test, from Debian's packages,
# and makes /usr/bin/python3 import kiln from this checkout (python_dev.sh).
# Used by the README's set-up commands and by .ci/run.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
PKGS="build-essential cmake llvm-19-dev clang-19 libclang-rt-19-dev libprotobuf-c-dev protobuf-c-compiler
      libonnx-dev libopenblas-dev libcmocka-dev python3-onnx python3-numpy python3-pytest graphviz pkg-config
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user"
# the last three: the aarch64 cross runtime and its tests under emulation
# (tests/scripts/aarch64.sh; README "Deploy to another machine / architecture")
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
echo "setup: dependencies present"
bash "$(dirname "$0")/python_dev.sh"
# ONNX Runtime (npm's onnxruntime-node, its CPU library inside the package,
# no install scripts) for the tests that compare with it (difffuzz,
# contrib_ops) and for bench/.  Optional: without npm or the registry
# those tests skip.
if [ ! -d "$(dirname "$0")/../bench/node_modules/onnxruntime-node" ] && command -v npm >/dev/null; then
  (cd "$(dirname "$0")/../bench" &&
     timeout 600 npm install --ignore-scripts --no-audit --no-fund >/dev/null 2>&1) &&
    echo "setup: onnxruntime-node installed in bench/node_modules" ||
    echo "setup: onnxruntime-node not installed (npm failed): tests comparing with ONNX Runtime will skip"
fi
