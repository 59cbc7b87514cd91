#!/usr/bin/env bash
# ctest: data-dependent shapes (tests/gen/dyn_shapes.py, numpy references):
# a Reshape's shape, an Expand's shape, a Slice's starts, a Range's limit,
# ConstantOfShape, Tile, Unsqueeze and Split fed as graph inputs, each
# model checked with several sets of values (one context, so buffers are
# re-bound and grown between runs) at -O0 and -O2, and baked (the values as
# initializers, evaluated by `fold`).  Bad values (a wrong element count,
# negative extents, an extent over the size limit, a contradiction with a
# static dim) make `kiln run` exit 1 with one line naming the node.
#   bash dyn_shapes.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2 BUILD=$3
PY=/usr/bin/python3
OUT=$BUILD/dyn_shapes
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
"$PY" -c "import onnx, numpy" 2>/dev/null || { echo "dyn_shapes: python3-onnx or numpy missing: skipped"; exit 77; }

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/dyn_shapes.py" "$OUT/gen" &&
	"$PY" "$SRC/tests/gen/node_bake.py" "$OUT/gen" "$OUT/baked" >/dev/null ||
	{ echo "dyn_shapes: generating failed"; exit 1; }

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for d in "$OUT"/gen/test_*/; do
	d=${d%/}
	name=$(basename "$d")
	for o in -O0 -O2; do
		if out=$(timeout "$TIMEOUT" "$KILN" check "$d" "$o" 2>&1); then
			ok "$name $o"
		else
			bad "$name $o: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		fi
		so=$OUT/$name$o.so
		if ! err=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$so" "$o" 2>&1); then
			bad "$name $o: compile: $err"
			continue
		fi
		for b in "$d"/bad_*/; do
			b=${b%/}
			mkdir -p "$OUT/outputs"
			err=$(timeout "$TIMEOUT" "$KILN" run "$so" --inputs "$b" --outputs "$OUT/outputs" 2>&1 >/dev/null)
			rc=$?
			why=""
			[ $rc -eq 1 ] || why="exit $rc, expected 1"
			[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || why="$why; not one line"
			while IFS= read -r frag; do
				[ -n "$frag" ] && ! grep -qF -- "$frag" <<<"$err" && why="$why; lacks '$frag'"
			done <"$b/expect"
			if [ -z "$why" ]; then ok "$name $o $(basename "$b"): $err"; else bad "$name $o $(basename "$b"): $why: $err"; fi
		done
	done
	if out=$(timeout "$TIMEOUT" "$KILN" check "$OUT/baked/$name" -O2 2>&1); then
		ok "$name baked"
	else
		bad "$name baked: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
done

echo "dyn_shapes: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
