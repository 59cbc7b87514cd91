#!/usr/bin/env bash
# ctest: Pad in the forms the ONNX node tests miss (tests/gen/pad_forms.py,
# numpy references): the four modes with pads known at compile time and
# fed at run time, wrap pads longer than the axis, negative pads, opset 18
# axes (negative, run-time), int64/bool/int8/f16/f64/u8 data, opset 2's
# attributes; each at -O0 and -O2, and baked (the run-time values as
# initializers).  Bad values (pads of the wrong length, reflect pads
# too long, crops past the axis, edge/wrap/reflect of an empty axis,
# repeated axes, overflowing or oversized extents) fail `kiln run` with one
# line naming the node; the same known at compile time fail `kiln compile`.
#   bash pad_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/pad_forms
need_onnx pad_forms

rm -rf "$OUT"
gen_cases pad_forms "$SRC/tests/gen/pad_forms.py" "$OUT/gen"
"$PY" "$SRC/tests/gen/node_bake.py" "$OUT/gen" "$OUT/baked" >/dev/null ||
	{ echo "pad_forms: generating failed (node_bake.py)"; exit 1; }

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
		refusal "$name $(basename "$s")" $rc "$err" "$s/expect"
	done
	for o in -O0 -O2; do
		so=$OUT/$name$o.so
		if ! err=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$so" "$o" 2>&1); then
			bad "$name $o: compile: $err"
			continue
		fi
		for b in "$d"/bad_*/; do
			[ -d "$b" ] || continue
			b=${b%/}
			mkdir -p "$OUT/outputs"
			err=$(timeout "$TIMEOUT" "$KILN" run "$so" --inputs "$b" --outputs "$OUT/outputs" 2>&1 >/dev/null)
			rc=$?
			refusal "$name $o $(basename "$b")" $rc "$err" "$b/expect"
		done
	done
	check_model "$name baked" "$OUT/baked/$name" -O2
}
check_cases pad_forms "$OUT/gen" refusals

finish pad_forms
