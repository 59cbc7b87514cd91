#!/usr/bin/env bash
# ctest: the real exports in ../shared/models (ONNX Runtime references),
# each run as `kiln check DIR -O0`.  Skips (77) without ../shared.
#   bash shared_models.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2
MODELS=$SRC/../shared/models
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
[ -d "$SRC/../shared" ] || { echo "shared_models: $SRC/../shared absent, skipping"; exit 77; }
[ -d "$MODELS" ] || { echo "shared_models: $MODELS absent"; exit 1; }

pass=0 fail=0
for d in "$MODELS"/*/; do
	d=${d%/}
	[ -f "$d/model.onnx" ] || continue   # perf/: graphs without test sets
	if out=$(timeout "$TIMEOUT" "$KILN" check "$d" -O0 2>&1); then
		pass=$((pass + 1))
		echo "PASS $(basename "$d")"
	else
		fail=$((fail + 1))
		echo "FAIL $(basename "$d"): $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
done
echo "shared models: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
