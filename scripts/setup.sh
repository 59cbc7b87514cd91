#!/usr/bin/env bash
# Installs everything kiln needs to build and test, from Debian's packages,
# and makes /usr/bin/python3 import kiln from this checkout (python_dev.sh).
# Used by the README's set-up commands and by .ci/run.
set -euo pipefail
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
PKGS="build-essential cmake llvm-19-dev clang-19 libclang-rt-19-dev libprotobuf-c-dev protobuf-c-compiler
      libonnx-dev libopenblas-dev libcmocka-dev python3-onnx python3-numpy python3-pytest graphviz pkg-config"
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
