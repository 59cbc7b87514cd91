#!/usr/bin/env bash
# ctest: the fusion passes on the real exports in ../shared/models.  For
# every model, `kiln compile -O2 --stats` must report fusions.attention
# equal to the number of Softmax nodes of the source (ops_in.Softmax), and
# none of Softmax, ReduceMean, Erf, Pow, Sqrt, LayerNormalization, Gelu or
# Einsum left in ops_out; `kiln check -O2` must still match the ONNX Runtime
# references.  A model with unfused attention also gets the first reasons
# of `kiln dump --explain=attention`.  Skips (77) without ../shared.
#   bash fusions_shared.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2
PY=/usr/bin/python3
MODELS=$SRC/../shared/models
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
[ -d "$SRC/../shared" ] || { echo "fusions_shared: $SRC/../shared absent, skipping"; exit 77; }
[ -d "$MODELS" ] || { echo "fusions_shared: $MODELS absent"; exit 1; }
"$PY" -c "import json" 2>/dev/null || { echo "fusions_shared: no python3, skipping"; exit 77; }

TMP=$(mktemp -d /tmp/kiln_fusions.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
pass=0 fail=0
for d in "$MODELS"/*/; do
	d=${d%/}
	name=$(basename "$d")
	[ -f "$d/model.onnx" ] || continue
	if ! out=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$TMP/m.so" -O2 --stats 2>&1); then
		fail=$((fail + 1)); echo "FAIL $name: compile: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; continue
	fi
	if ! verdict=$(echo "$out" | tail -n 1 | "$PY" -c '
import json, sys
j = json.loads(sys.stdin.read())
sm = j["ops_in"].get("Softmax", 0)
att = j["fusions"].get("attention", 0)
left = {k: v for k, v in j["ops_out"].items()
        if k in ("Softmax", "ReduceMean", "Erf", "Pow", "Sqrt", "LayerNormalization", "Gelu", "Einsum")}
print("softmax %d attention %d fusions %s" % (sm, att, j["fusions"]))
if att != sm or left:
    print("left: %s" % left)
    sys.exit(1)
'); then
		fail=$((fail + 1)); echo "FAIL $name: $verdict"
		# why (with a kiln that has --explain): the first misses, node and condition
		"$KILN" dump "$d/model.onnx" -O2 --explain=attention 2>/dev/null | grep 'not fused' | head -n 3
		continue
	fi
	if ! chk=$(timeout "$TIMEOUT" "$KILN" check "$d" -O2 2>&1); then
		fail=$((fail + 1)); echo "FAIL $name: check -O2: $(echo "$chk" | tail -n 3 | tr '\n' ' ')"; continue
	fi
	pass=$((pass + 1))
	echo "PASS $name: $verdict"
done
echo "fusions on shared models: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
