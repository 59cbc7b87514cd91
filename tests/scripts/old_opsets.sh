#!/usr/bin/env bash
# ctest: models in the old forms of kiln's ops (opsets 1-12, made by
# tests/gen/old_opsets.py with numpy references), each run as
# `kiln check DIR` at -O0 and -O2: the frontend's upgrades (Clip-6 min/max
# attributes, attribute-form Unsqueeze/Squeeze/Split/Slice/Reduce*, the 2-D
# coercion of Softmax before 13, legacy broadcasting, ...).  Also: the
# opset-11 BERT attention block still fuses into KlnAttention at -O2, an
# unsorted copy of it compiles and matches, and the refusals (a cycle, three
# unsupported ops) are one line each naming what is wrong.
#   bash old_opsets.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2 BUILD=$3
PY=/usr/bin/python3
OUT=$BUILD/old_opsets
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
"$PY" -c "import onnx, numpy" 2>/dev/null || { echo "old_opsets: python3-onnx or numpy missing: skipped"; exit 77; }

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/old_opsets.py" "$OUT" || { echo "old_opsets: generating failed"; exit 1; }

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for d in "$OUT"/*/; do
	d=${d%/}
	[ -f "$d/model.onnx" ] || continue
	for o in -O0 -O2; do
		if out=$(timeout "$TIMEOUT" "$KILN" check "$d" "$o" 2>&1); then
			ok "$(basename "$d") $o"
		else
			bad "$(basename "$d") $o: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		fi
	done
done

# the opset-11 attention block fuses as the newer exports do
dump=$("$KILN" dump "$OUT/bert_attention_11/model.onnx" -O2 2>&1)
if grep -q KlnAttention <<<"$dump" && grep -q KlnSkipLayerNorm <<<"$dump"; then
	ok "bert_attention_11 fuses KlnAttention and KlnSkipLayerNorm at -O2"
else
	bad "bert_attention_11: no KlnAttention/KlnSkipLayerNorm at -O2"
fi
# Softmax before 13 with the last axis stays one Softmax (no Flatten/Reshape)
dump=$("$KILN" dump "$OUT/softmax_11_last/model.onnx" -O0 2>&1)
if grep -q Softmax <<<"$dump" && ! grep -q Flatten <<<"$dump"; then
	ok "softmax_11_last imports as one Softmax"
else
	bad "softmax_11_last: $dump"
fi

# refusals: exit 1, one line, every expected fragment
for m in "$OUT"/refuse/*.onnx; do
	name=$(basename "$m" .onnx)
	err=$("$KILN" dump "$m" 2>&1 >/dev/null)
	rc=$?
	why=""
	[ $rc -eq 1 ] || why="exit $rc, expected 1"
	[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || why="$why; not one line"
	while IFS= read -r frag; do
		[ -n "$frag" ] && ! grep -qF -- "$frag" <<<"$err" && why="$why; lacks '$frag'"
	done <"$OUT/refuse/$name.expect"
	if [ -z "$why" ]; then ok "refuse $name: $err"; else bad "refuse $name: $why: $err"; fi
done

echo "old_opsets: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
