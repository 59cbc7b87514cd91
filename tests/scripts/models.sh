#!/usr/bin/env bash
# ctest: kiln's own test models (tests/gen/models.py, numpy references),
# each run as `kiln check BUILD/models/NAME -O0`.
#   bash models.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/models
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
OPTS=("-O0" "-O2")

rm -rf "$OUT"
/usr/bin/python3 "$SRC/tests/gen/models.py" "$OUT" || { echo "models: generating failed"; exit 1; }

pass=0 fail=0
for d in "$OUT"/*/; do
	d=${d%/}
	for o in "${OPTS[@]}"; do
		if out=$(timeout "$TIMEOUT" "$KILN" check "$d" "$o" 2>&1); then
			pass=$((pass + 1))
			echo "PASS $(basename "$d") $o"
		else
			fail=$((fail + 1))
			echo "FAIL $(basename "$d") $o: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		fi
	done
done
echo "models: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
