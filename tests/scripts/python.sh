#!/usr/bin/env bash
# ctest: the Python package's pytest suite (tests/python) against this
# build: python/kiln on PYTHONPATH, the build's libkiln.so and kiln.  Run
# with Debian's /usr/bin/python3 (numpy, onnx, python3-pytest).  Under a
# sanitizer build the instrumented libkiln.so needs the sanitizer runtimes
# preloaded into Python.
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every test but
# the two on ../shared's exports (test_every_shared_model,
# test_ort_style_script_on_shared_models): they compile and run each export
# through the same kiln compile, loader and kiln_run that shared_models
# checks under the sanitizers; the C API from Python (bad inputs, threads,
# layouts, lifetimes, profiling, the cache) runs on the bundled models.
#   bash python.sh KILN_BIN SRC_DIR BUILD_DIR [PYTEST_ARG...]
set -uo pipefail
KILN=$(realpath "$1") SRC=$(realpath "$2") BUILD=$(realpath "$3")
shift 3
PY=/usr/bin/python3
"$PY" -c "import pytest, numpy, onnx" 2>/dev/null || {
  echo "python: $PY lacks pytest, numpy or onnx (bash scripts/setup.sh installs python3-pytest, python3-numpy, python3-onnx)"; exit 1; }
[ -f "$BUILD/libkiln.so" ] || { echo "python: $BUILD/libkiln.so not built"; exit 1; }
export PYTHONPATH=$SRC/python KILN_LIB=$BUILD/libkiln.so KILN_CLI=$KILN
export KILN_CACHE_DIR=$(mktemp -d /tmp/kiln-pycache-XXXXXX)
trap 'rm -rf "$KILN_CACHE_DIR"' EXIT
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
sample=()
if [ "$SAMPLED" = 1 ]; then
  sample=(-k "not test_every_shared_model and not test_ort_style_script_on_shared_models")
fi
if grep -q '^KILN_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  export LD_PRELOAD="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
  # Python itself is not instrumented and keeps its memory at exit
  export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
fi
# a hang (a thread that never returns) fails the test instead of stopping ctest
cd "$SRC/tests/python" && timeout "${KILN_PY_TIMEOUT:-1800}" "$PY" -m pytest -q -p no:cacheprovider -o addopts="" \
  "${sample[@]}" "$@" .
