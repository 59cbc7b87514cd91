#!/usr/bin/env bash
# ctest: differential testing against ONNX Runtime (tests/gen/difffuzz.py):
# with onnxruntime-node (bench/node_modules, or the node_modules folder
# KILN_ORT_NODE_MODULES names) and node, the fuzzer on a fixed seed: 60
# random graphs (KILN_DIFFFUZZ_COUNT) each at -O0, -O2 and baked (inputs
# as initializers, evaluated by constant folding), compared with ONNX
# Runtime's outputs; no finding may be left (differences that
# tests/gen/difffuzz_known.txt attributes to ONNX Runtime or the spec are
# printed as known).  Skipped (77) without onnxruntime-node or node.
# Sampled (a sanitizer build): 20 graphs at -O2 only.  The wrong answers
# it found are regression cases of their own (difffuzz_regress).  A
# longer run:
#   /usr/bin/python3 tests/gen/difffuzz.py OUT --kiln build/kiln --seed S --count N
#   bash difffuzz.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/difffuzz
need_onnx difffuzz
need_ort difffuzz "$SRC"
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"

count=${KILN_DIFFFUZZ_COUNT:-60} modes=O0,O2,baked
[ "$SAMPLED" = 1 ] && count=20 modes=O2
rm -rf "$OUT"
if out=$("$PY" "$SRC/tests/gen/difffuzz.py" "$OUT" --kiln "$KILN" --ort-modules "$ORT_MODULES" \
	--seed 7 --count "$count" --modes "$modes" --timeout "$TIMEOUT" 2>&1); then
	ok "seed 7, $count graphs at $modes: $(tail -n 1 <<<"$out")"
else
	echo "$out" | grep -v '^difffuzz: [0-9]'
	bad "seed 7, $count graphs at $modes: $(tail -n 1 <<<"$out")"
fi
grep -E '^(known|kiln refused): ' <<<"$out"
finish difffuzz
