#!/usr/bin/env bash
# ctest: the wrong answers the differential fuzzer (tests/gen/difffuzz.py,
# the difffuzz test) found in kiln, as regression cases with numpy
# references written from the ONNX spec (tests/gen/difffuzz_regress.py):
# each must match at -O0 and -O2 (some forms are baked: their inputs are
# initializers, so constant folding computes them).  No ONNX Runtime needed.
#   bash difffuzz_regress.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/difffuzz_regress
need_onnx difffuzz_regress

check_generated difffuzz_regress "$SRC/tests/gen/difffuzz_regress.py" "$OUT"
finish difffuzz_regress
