#!/usr/bin/env bash
# ctest: ops in the forms the ONNX node tests miss, numpy references, one
# generator per op: Pad (tests/gen/pad_forms.py: the four modes with pads
# known at compile time and fed at run time, wrap pads longer than the
# axis, negative pads, opset 18 axes, other dtypes, opset 2's attributes),
# ScatterND (tests/gen/scatter_forms.py: index tuples of every length,
# negative indices, the reductions with repeated indices, indices fed at
# run time, other dtypes) and TopK (tests/gen/topk_forms.py: K static and
# fed at run time, largest/smallest, axes, ties, integer data, opsets 1
# and 10).  Each case at -O0 and -O2, and baked (the
# run-time values as initializers).  A case's bad_K values fail `kiln run`
# with one line naming the node; its static_K models fail `kiln compile`
# with one line.
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every case at
# -O2 and baked, every third also at -O0 (sample_levels); the refusals at
# -O2 only (the three ops run the same C kernels at both levels).
#   bash op_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/op_forms
GENS="pad_forms scatter_forms topk_forms"
need_onnx op_forms
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"

# a case's refusals: static models at compile time, bad values at run
# time at each level; its baked form (check_cases runs it at -O0 and -O2
# after this)
refusals() {
	local name=$1 d=$2 o so b s err rc
	for s in "$d"/static_*/; do
		[ -d "$s" ] || continue
		s=${s%/}
		err=$(timeout "$TIMEOUT" "$KILN" compile "$s/model.onnx" -o "$OUT/static.so" 2>&1 >/dev/null)
		rc=$?
		refusal "$gen/$name $(basename "$s")" $rc "$err" "$s/expect"
	done
	local lv="-O0 -O2"
	[ "$SAMPLED" = 1 ] && lv=-O2
	for o in $lv; do
		so=$OUT/$gen-$name$o.so
		if ! err=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$so" "$o" 2>&1); then
			bad "$gen/$name $o: compile: $err"
			continue
		fi
		for b in "$d"/bad_*/; do
			[ -d "$b" ] || continue
			b=${b%/}
			mkdir -p "$OUT/outputs"
			err=$(timeout "$TIMEOUT" "$KILN" run "$so" --inputs "$b" --outputs "$OUT/outputs" 2>&1 >/dev/null)
			rc=$?
			refusal "$gen/$name $o $(basename "$b")" $rc "$err" "$b/expect"
		done
	done
	check_model "$gen/$name baked" "$OUT/$gen/baked/$name" -O2
}

rm -rf "$OUT"
for gen in $GENS; do
	gen_cases "$gen" "$SRC/tests/gen/$gen.py" "$OUT/$gen/gen"
	"$PY" "$SRC/tests/gen/node_bake.py" "$OUT/$gen/gen" "$OUT/$gen/baked" >/dev/null ||
		{ echo "op_forms: generating failed (node_bake.py, $gen)"; exit 1; }
	check_cases "$gen" "$OUT/$gen/gen" refusals
done

finish op_forms
