#!/usr/bin/env bash
# ctest: differential testing against ONNX Runtime (tests/gen/difffuzz.py).
# Always: the wrong answers the fuzzer found, as regression cases with numpy
# references (tests/gen/difffuzz_regress.py), at -O0 and -O2.  With
# onnxruntime-node (bench/node_modules, or the node_modules folder
# KILN_ORT_NODE_MODULES names) and node: the fuzzer on a fixed seed, 60
# random graphs (KILN_DIFFFUZZ_COUNT) each at -O0, -O2 and baked (inputs
# as initializers, evaluated by constant folding), compared with ONNX
# Runtime's outputs; no finding may be left (the ones tests/gen/
# difffuzz_known.txt attributes to ONNX Runtime or the spec are printed).
# Without onnxruntime-node that part is skipped (one line says so), and
# the suite is skipped (77) if nothing else ran.  Sampled (a sanitizer
# build): 20 graphs at -O2 only.  A longer run:
#   /usr/bin/python3 tests/gen/difffuzz.py OUT --kiln build/kiln --seed S --count N
#   bash difffuzz.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/difffuzz
need_onnx difffuzz
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/difffuzz_regress.py" "$OUT/regress" || { echo "difffuzz: generating the regressions failed"; exit 1; }
for d in "$OUT"/regress/*/; do
	d=${d%/}
	for o in -O0 -O2; do
		check_model "$(basename "$d") $o" "$d" "$o"
	done
done

ORT_MODULES=${KILN_ORT_NODE_MODULES:-$SRC/bench/node_modules}
if [ -d "$ORT_MODULES/onnxruntime-node" ] && command -v node >/dev/null; then
	count=${KILN_DIFFFUZZ_COUNT:-60} modes=O0,O2,baked
	[ "$SAMPLED" = 1 ] && count=20 modes=O2
	if out=$("$PY" "$SRC/tests/gen/difffuzz.py" "$OUT/fuzz" --kiln "$KILN" --ort-modules "$ORT_MODULES" \
		--seed 7 --count "$count" --modes "$modes" --timeout "$TIMEOUT" 2>&1); then
		ok "difffuzz seed 7, $count graphs: $(tail -n 1 <<<"$out")"
	else
		echo "$out" | grep -v '^difffuzz: [0-9]'
		bad "difffuzz seed 7, $count graphs: $(tail -n 1 <<<"$out")"
	fi
	grep '^known: ' <<<"$out"
else
	echo "difffuzz: no onnxruntime-node in $ORT_MODULES (or no node): the fuzzer is skipped"
fi
finish difffuzz
