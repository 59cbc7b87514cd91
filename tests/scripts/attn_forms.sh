#!/usr/bin/env bash
# ctest: attention as other exporters write it (tests/gen/attn_forms.py:
# causal masks as a Where around the scores, as an additive bias from
# Range/Less/Where or from Trilu, KV-cache Concat with and without a causal
# offset, SDPA exports, Keras Einsum attention, padding and transformers'
# masking_utils masks as a Where (also one whose padding condition, of a
# batch broadcast with a per-key bias input's, falls back to a bias: layout
# 0's wcond_bk), ONNX Runtime's GPT-2 with past, and near misses).  For every
# form one `kiln check -O2 --stats --explain=attention --print-after=LAST`
# (lib/suite.sh's batch_check, 16 forms per process; each form's output
# under its "// ===== DIR =====" line) both matches the numpy references
# (NaN rows included) and gives the counts: -O2 fuses exactly the expected
# number of attentions (a near miss none, its Softmax left; no Einsum left
# where it fuses), its final -O2 IR shows the expected number of causal
# flags (and kv_num_heads, key-padding mask inputs, the plain ops left
# (`left OP N`), and for a near miss the reason --explain=attention gives,
# when expect says; how many replace the masked scores, mask_replace = 1);
# then `kiln check -O0` matches numpy too.  A form whose counts fail is
# reported as such ("FAIL NAME: expected ..."); one line per form for its
# counts ("PASS NAME: ..."), one per level checked ("PASS NAME -O2").
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every form is
# compiled, counted and checked at -O2, every third (by name) also at -O0.
#   bash attn_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/attn_forms
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
"$PY" -c "import onnx, numpy" 2>/dev/null || { echo "attn_forms: no python3 with onnx, skipping"; exit 77; }

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/attn_forms.py" "$OUT" || { echo "attn_forms: generating failed"; exit 1; }

# the last pass of -O2, whose IR --print-after prints: the final IR
LAST=$("$KILN" dump --list-passes | sed -n 's/^-O2: .* //p')
[ -n "$LAST" ] || { echo "attn_forms: no -O2 pipeline in kiln dump --list-passes"; exit 1; }
# form_counts DIR OPTS PASS|FAIL [MSG]: check_batch's REPORT at -O2, BLOCK
# the form's output of the `kiln check -O2 --stats --explain=attention
# --print-after=LAST` that checked it: the --explain=attention lines, the
# final IR (printed after the last pass, as `kiln dump -O2` prints it) and
# the --stats JSON line; one line for its counts, one for its numpy check
form_counts() {
	local d=$1 name why dump out verdict left causal kv mask rep
	name=$(basename "$d")
	if [ "$3" = PASS ]; then ok "$name -O2"; else bad "$name -O2: $4"; fi
	form_check "$d" && ok "$name: $verdict, $causal causal; checked at ${levels_of[$name]}"
}
# form_check DIR: the counts of DIR's BLOCK as its expect file says; a
# failure says which (one FAIL line) and returns 1
form_check() {
	local d=$1 want_att want_causal want_kv want_mask want_rep want_why want_left
	read -r _ want_att _ want_causal < "$d/expect"
	want_kv=$(sed -n 's/^kv //p' "$d/expect")
	want_mask=$(sed -n 's/^mask //p' "$d/expect")
	want_rep=$(sed -n 's/^replace //p' "$d/expect")
	want_why=$(sed -n 's/^explain //p' "$d/expect")
	want_left=$(sed -n 's/^left //p' "$d/expect")
	out=$(grep '^{"ops_in"' <<< "$BLOCK" | tail -n 1)
	[ -n "$out" ] || { bad "$name: no --stats line from kiln check: $(tail -n 2 <<< "$BLOCK" | tr '\n' ' ')"; return 1; }
	dump=$(awk '/^\/\/ ----- IR /{p=1} p && !/^explain / {print} p && /^}$/{exit}' <<< "$BLOCK")
	why=$(grep '^explain ' <<< "$BLOCK")
	if ! verdict=$(echo "$out" | "$PY" -c '
import json, sys
want = int(sys.argv[1])
j = json.loads(sys.stdin.read())
att = j["fusions"].get("attention", 0)
sm_in, sm_out = j["ops_in"].get("Softmax", 0), j["ops_out"].get("Softmax", 0)
ein = j["ops_out"].get("Einsum", 0)
print("attention %d of %d softmax, %d left, %d einsum left" % (att, sm_in, sm_out, ein))
sys.exit(0 if att == want and sm_out == sm_in - want and (want == 0 or ein == 0) else 1)
' "$want_att"); then
		bad "$name: expected attention $want_att: $verdict"; return 1
	fi
	if [ -n "$want_left" ] && ! left=$(echo "$out" | "$PY" -c '
import json, sys
op, n = sys.argv[1], int(sys.argv[2])
got = json.loads(sys.stdin.read())["ops_out"].get(op, 0)
print("%d %s left" % (got, op))
sys.exit(0 if got == n else 1)
' $want_left); then
		bad "$name: expected $want_left left: $left"; return 1
	fi
	causal=$(echo "$dump" | grep -c 'KlnAttention(.*causal = ')
	if [ "$causal" != "$want_causal" ]; then
		bad "$name: $causal causal attentions, expected $want_causal"; return 1
	fi
	kv=$(echo "$dump" | grep -c 'KlnAttention(.*kv_num_heads = ')
	if [ -n "$want_kv" ] && [ "$kv" != "$want_kv" ]; then
		bad "$name: $kv attentions with kv_num_heads, expected $want_kv"; return 1
	fi
	# a key-padding mask input: the fifth operand is a value, not _
	mask=$(echo "$dump" | grep -cE 'KlnAttention\(([^,)]*, ){4}%')
	if [ -n "$want_mask" ] && [ "$mask" != "$want_mask" ]; then
		bad "$name: $mask attentions with a key-padding mask, expected $want_mask"; return 1
	fi
	rep=$(echo "$dump" | grep -c ' = KlnAttention(.*mask_replace = 1')
	if [ -n "$want_rep" ] && [ "$rep" != "$want_rep" ]; then
		bad "$name: $rep attentions replace masked scores, expected $want_rep"; return 1
	fi
	if [ -n "$want_why" ] && ! grep -qF -- "$want_why" <<< "$why"; then
		bad "$name: --explain=attention does not say: $want_why"; return 1
	fi
}

declare -A levels_of=()
at_O0=() at_O2=()
for d in "$OUT"/*/; do
	d=${d%/}
	sample_levels   # for every form, so the sample is the same forms
	levels_of[$(basename "$d")]=$levels
	at_O2+=("$d")   # every form at -O2: its counts come from that compile
	case " $levels " in *" -O0 "*) at_O0+=("$d") ;; esac
done
# every form: counts and numpy at -O2 from one compile, then numpy at -O0
[ ${#at_O2[@]} -eq 0 ] || batch_check form_counts "-O2 --stats --explain=attention --print-after=$LAST" "${at_O2[@]}"
[ ${#at_O0[@]} -eq 0 ] || check_batch -O0 "${at_O0[@]}"
finish attn_forms
