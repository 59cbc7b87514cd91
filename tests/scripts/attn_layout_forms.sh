#!/usr/bin/env bash
# ctest: attention with its heads folded into the batch, [B*N, S, D] 3-D
# views (tests/gen/attn_layout_forms.py: BART/Whisper eager attention in
# TorchScript and dynamo style, SDPA's math form with the scale split over
# Q and K, a time-major input folded batch-first, time-major attention
# with key-padding masks as Where, masked_fill or an added bias, and near
# misses whose folds are not the heads they claim).  For every form: `kiln compile -O2
# --stats` fuses exactly the expected number of attentions (a near miss
# none, its Softmax left), the fused op has the expected layout (and reads
# one packed Q/K/V projection where Q's scale was before its head split), a near
# miss's `--explain=attention` gives the expected reason, `--explain=qkv`
# prints one line per KlnAttention (a pack that fused in an earlier round
# of the fixpoint is not listed again), and `kiln check` matches the numpy
# references at -O0 and at -O2.
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every form at
# -O2, every third also at -O0.
#   bash attn_layout_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
OUT=$BUILD/attn_layout_forms
need_onnx attn_layout_forms

# a form's fusion checks (check_generated then matches it against numpy at
# -O0 and -O2; a failure here skips that)
fusion() {
	local name=$1 d=$2 want_att want_layout want_why want_packed out verdict dump natt why nq
	want_att=$(sed -n 's/^attention //p' "$d/expect")
	want_layout=$(sed -n 's/^layout //p' "$d/expect")
	want_why=$(sed -n 's/^explain //p' "$d/expect")
	want_packed=$(sed -n 's/^packed //p' "$d/expect")
	# the counts: -O2 up to LLVM IR (`kiln check -O2` below compiles it all)
	if ! out=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$OUT/$name.ll" --emit=llvm -O2 --stats 2>&1); then
		bad "$name: compile: $(echo "$out" | tail -n 2 | tr '\n' ' ')"; return 1
	fi
	if ! verdict=$(echo "$out" | tail -n 1 | "$PY" -c '
import json, sys
want = int(sys.argv[1])
j = json.loads(sys.stdin.read())
att = j["fusions"].get("attention", 0)
sm_in, sm_out = j["ops_in"].get("Softmax", 0), j["ops_out"].get("Softmax", 0)
print("attention %d of %d softmax, %d left" % (att, sm_in, sm_out))
sys.exit(0 if att == want and sm_out == sm_in - want else 1)
' "$want_att"); then
		bad "$name: expected attention $want_att: $verdict"; return 1
	fi
	dump=$("$KILN" dump "$d/model.onnx" -O2 2>&1)
	natt=$(grep -c '= KlnAttention(' <<<"$dump")
	if [ -n "$want_layout" ] &&
	   [ "$(grep -c "= KlnAttention(.*layout = $want_layout," <<<"$dump")" != "$natt" ]; then
		bad "$name: the KlnAttention's layout is not $want_layout: $(grep -o 'layout = [0-9]*' <<<"$dump" | tr '\n' ' ')"
		return 1
	fi
	# packed: KlnAttention(%p, %p, %p, ...) reads one projection three times
	if [ -n "$want_packed" ] && ! grep -qE '= KlnAttention\((%[^,]+), \1, \1[,)]' <<<"$dump"; then
		bad "$name: Q, K and V are not one packed projection: $(grep -o 'KlnAttention([^)]*)' <<<"$dump")"
		return 1
	fi
	if [ -n "$want_why" ]; then
		why=$("$KILN" dump "$d/model.onnx" -O2 --explain=attention 2>&1 | grep '^explain')
		if ! grep -qF -- "$want_why" <<<"$why"; then
			bad "$name: --explain=attention does not say: $want_why (it says: $why)"; return 1
		fi
	fi
	nq=$("$KILN" dump "$d/model.onnx" -O2 --explain=qkv 2>&1 | grep -c '^explain qkv: ')
	if [ "$nq" != "$natt" ]; then
		bad "$name: --explain=qkv printed $nq lines for $natt KlnAttention"; return 1
	fi
	ok "$name: $verdict${want_layout:+, layout $want_layout}"
}
check_generated attn_layout_forms "$SRC/tests/gen/attn_layout_forms.py" "$OUT" fusion
finish attn_layout_forms
