#!/usr/bin/env bash
# ctest: attention as other exporters write it (tests/gen/attn_forms.py:
# causal masks as a Where around the scores, as an additive bias from
# Range/Less/Where or from Trilu, KV-cache Concat with and without a causal
# offset, SDPA exports, Keras Einsum attention, padding and transformers'
# masking_utils masks as a Where (also one whose padding condition, of a
# batch broadcast with a per-key bias input's, falls back to a bias: layout
# 0's wcond_bk), ONNX Runtime's GPT-2 with past, and near misses).  For every
# form: `kiln compile -O2 --stats` fuses exactly the expected number of
# attentions (a near miss none, its Softmax left; no Einsum left where it
# fuses), `kiln dump -O2` shows
# the expected number of causal flags (and kv_num_heads, key-padding mask inputs, the plain ops
# left (`left OP N`), and for a near
# miss the reason --explain=attention gives, when expect says; how many replace the masked scores,
# mask_replace = 1), and `kiln check` matches the numpy
# references at -O0 and at -O2 (NaN rows included).
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every form is
# compiled, dumped and checked at -O2, every third (by name) also at -O0.
#   bash attn_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2 BUILD=$3
PY=/usr/bin/python3
OUT=$BUILD/attn_forms
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
"$PY" -c "import onnx, numpy" 2>/dev/null || { echo "attn_forms: no python3 with onnx, skipping"; exit 77; }

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/attn_forms.py" "$OUT" || { echo "attn_forms: generating failed"; exit 1; }

pass=0 fail=0 nform=0
for d in "$OUT"/*/; do
	d=${d%/}
	name=$(basename "$d")
	nform=$((nform + 1))
	read -r _ want_att _ want_causal < "$d/expect"
	want_kv=$(sed -n 's/^kv //p' "$d/expect")
	want_mask=$(sed -n 's/^mask //p' "$d/expect")
	want_rep=$(sed -n 's/^replace //p' "$d/expect")
	want_why=$(sed -n 's/^explain //p' "$d/expect")
	want_left=$(sed -n 's/^left //p' "$d/expect")
	# the counts: -O2 up to LLVM IR (`kiln check -O2` below compiles it all)
	if ! out=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$OUT/$name.ll" --emit=llvm -O2 --stats 2>&1); then
		fail=$((fail + 1)); echo "FAIL $name: compile: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; continue
	fi
	if ! verdict=$(echo "$out" | tail -n 1 | "$PY" -c '
import json, sys
want = int(sys.argv[1])
j = json.loads(sys.stdin.read())
att = j["fusions"].get("attention", 0)
sm_in, sm_out = j["ops_in"].get("Softmax", 0), j["ops_out"].get("Softmax", 0)
ein = j["ops_out"].get("Einsum", 0)
print("attention %d of %d softmax, %d left, %d einsum left" % (att, sm_in, sm_out, ein))
sys.exit(0 if att == want and sm_out == sm_in - want and (want == 0 or ein == 0) else 1)
' "$want_att"); then
		fail=$((fail + 1)); echo "FAIL $name: expected attention $want_att: $verdict"; continue
	fi
	if [ -n "$want_left" ] && ! left=$(echo "$out" | tail -n 1 | "$PY" -c '
import json, sys
op, n = sys.argv[1], int(sys.argv[2])
got = json.loads(sys.stdin.read())["ops_out"].get(op, 0)
print("%d %s left" % (got, op))
sys.exit(0 if got == n else 1)
' $want_left); then
		fail=$((fail + 1)); echo "FAIL $name: expected $want_left left: $left"; continue
	fi
	# one dump: the IR, and the --explain=attention lines (kept apart)
	all=$("$KILN" dump "$d/model.onnx" -O2 --explain=attention 2>&1)
	dump=$(grep -v '^explain ' <<< "$all")
	why=$(grep '^explain ' <<< "$all")
	causal=$(echo "$dump" | grep -c 'KlnAttention(.*causal = ')
	if [ "$causal" != "$want_causal" ]; then
		fail=$((fail + 1)); echo "FAIL $name: $causal causal attentions, expected $want_causal"; continue
	fi
	kv=$(echo "$dump" | grep -c 'KlnAttention(.*kv_num_heads = ')
	if [ -n "$want_kv" ] && [ "$kv" != "$want_kv" ]; then
		fail=$((fail + 1)); echo "FAIL $name: $kv attentions with kv_num_heads, expected $want_kv"; continue
	fi
	# a key-padding mask input: the fifth operand is a value, not _
	mask=$(echo "$dump" | grep -cE 'KlnAttention\(([^,)]*, ){4}%')
	if [ -n "$want_mask" ] && [ "$mask" != "$want_mask" ]; then
		fail=$((fail + 1)); echo "FAIL $name: $mask attentions with a key-padding mask, expected $want_mask"; continue
	fi
	rep=$(echo "$dump" | grep -c ' = KlnAttention(.*mask_replace = 1')
	if [ -n "$want_rep" ] && [ "$rep" != "$want_rep" ]; then
		fail=$((fail + 1)); echo "FAIL $name: $rep attentions replace masked scores, expected $want_rep"; continue
	fi
	if [ -n "$want_why" ] && ! grep -qF -- "$want_why" <<< "$why"; then
		fail=$((fail + 1)); echo "FAIL $name: --explain=attention does not say: $want_why"; continue
	fi
	ok=1 levels="-O0 -O2" checked="-O0 and -O2 match numpy"
	if [ "$SAMPLED" = 1 ] && [ $((nform % 3)) != 1 ]; then
		levels=-O2 checked="-O2 matches numpy (sampled: not -O0)"
	fi
	for o in $levels; do
		if ! chk=$(timeout "$TIMEOUT" "$KILN" check "$d" "$o" 2>&1); then
			ok=0; echo "FAIL $name: check $o: $(echo "$chk" | tail -n 3 | tr '\n' ' ')"
		fi
	done
	if [ $ok = 1 ]; then
		pass=$((pass + 1)); echo "PASS $name: $verdict, $causal causal, $checked"
	else
		fail=$((fail + 1))
	fi
done
echo "attn_forms: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
