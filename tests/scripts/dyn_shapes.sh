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
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/dyn_shapes
need_onnx dyn_shapes

rm -rf "$OUT"
gen_cases dyn_shapes "$SRC/tests/gen/dyn_shapes.py" "$OUT/gen"
"$PY" "$SRC/tests/gen/node_bake.py" "$OUT/gen" "$OUT/baked" >/dev/null ||
	{ echo "dyn_shapes: generating failed (node_bake.py)"; exit 1; }

# a case's bad values at each level and its baked form (check_cases runs
# it at -O0 and -O2 after this)
bad_values() {
	local name=$1 d=$2 o so b err rc
	for o in -O0 -O2; do
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
			refusal "$name $o $(basename "$b")" $rc "$err" "$b/expect"
		done
	done
	check_model "$name baked" "$OUT/baked/$name" -O2
}
check_cases dyn_shapes "$OUT/gen" bad_values

finish dyn_shapes
