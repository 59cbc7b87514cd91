#!/usr/bin/env bash
# The test suite: installs dependencies, builds with -Werror, runs every test;
# then the same suite under AddressSanitizer + UndefinedBehaviorSanitizer,
# then the fuzzers (the ONNX loader, the -O2 pipeline, the text IR) for a bounded time
# (FUZZ_SECONDS in all, default 60; libFuzzer's seed FUZZ_SEED, default 1:
# the same mutations every run; FUZZ_SEED= draws one).
# Tests that need ../shared skip when it is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)
step() { echo "== [${SECONDS} s] $*"; }   # each stage, with the time since the start

step "build (-Werror)"
BUILD_DIR=build bash scripts/build.sh -DKILN_WERROR=ON
step "tests"
ctest --test-dir build --output-on-failure -j"$jobs"

if [ "${KILN_QUICK:-0}" != 1 ]; then
  # asserts on (no NDEBUG), which also makes every pipeline verify the IR
  # after each pass (passes/pipeline.c): the debug build of the suite
  step "build with ASan + UBSan, asserts on"
  BUILD_DIR=build-asan bash scripts/build.sh -DKILN_WERROR=ON -DKILN_SANITIZE=ON \
    -DCMAKE_C_FLAGS_RELWITHDEBINFO="-O2 -g"
  step "tests under ASan + UBSan, asserts on"
  # the node tests once (-O0) here; the three modes ran above.  The suites
  # that source tests/scripts/lib/sample.sh (ir_roundtrip, attn_forms,
  # foreign_graphs, norm_forms, einsum_forms, contrib_ops, op_forms, python,
  # ...) see the sanitizer build and check a sample (each script's header
  # says which): every code path still runs under the sanitizers, the full
  # set ran above
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 KILN_NODE_MODES=O0 \
    ctest --test-dir build-asan --output-on-failure -j"$jobs"
  step "fuzz the ONNX loader, the pipeline and the text IR (${FUZZ_SECONDS:-60} s)"
  FUZZ_SEED=${FUZZ_SEED-1} bash scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
step "all tests passed"
