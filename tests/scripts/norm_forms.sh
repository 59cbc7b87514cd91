#!/usr/bin/env bash
# ctest: GELU, QuickGELU, RMSNorm (also in fp16 between Casts) and
# SkipLayerNorm with a row bias in the forms exporters write, and near misses
# (tests/gen/norm_forms.py, numpy references): each model matches its
# reference with `kiln check` at -O0 and at -O2 (fused against unfused on the
# same data; the default tolerance --atol=1e-4 --rtol=1e-3 unless the case's
# `check` file gives others, e.g. exact f16 Casts); at -O2 the IR has / lacks
# the ops its `expect` file names (the fused op present, the primitive ones
# gone; a near miss keeps its primitive ops).  For the explain_* cases
# `kiln dump --explain=PATTERN` must print every fragment of the case's
# `explain` file (the node and the condition that failed).  Also: an
# unknown --explain pattern is bad usage (exit 2, one line).
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every case at
# -O2, every third also at -O0.
#   bash norm_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
KILN=$1 SRC=$2 BUILD=$3
PY=/usr/bin/python3
OUT=$BUILD/norm_forms
TIMEOUT=${KILN_TEST_TIMEOUT:-300}
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
"$PY" -c "import onnx, numpy" 2>/dev/null || { echo "norm_forms: python3-onnx or numpy missing: skipped"; exit 77; }

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/norm_forms.py" "$OUT" || { echo "norm_forms: generating failed"; exit 1; }

pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for d in "$OUT"/*/; do
	d=${d%/}
	name=$(basename "$d")
	opts=$(cat "$d/check" 2>/dev/null)   # tolerances other than the default, if any
	sample_levels
	for o in $levels; do
		# shellcheck disable=SC2086
		if out=$(timeout "$TIMEOUT" "$KILN" check "$d" "$o" $opts 2>&1); then
			ok "$name $o matches the reference"
		else
			bad "$name $o: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
		fi
	done
	ir=$("$KILN" dump "$d/model.onnx" -O2 2>&1)
	why=""
	while read -r verb op; do
		[ -n "$verb" ] || continue
		# an op as a node (the `// from:` comments name ONNX nodes, not ops)
		if grep -q "= $op(" <<<"$ir"; then has=1; else has=0; fi
		[ "$verb" = has ] && [ $has = 0 ] && why="$why; no $op"
		[ "$verb" = lacks ] && [ $has = 1 ] && why="$why; $op left"
	done <"$d/expect"
	if [ -z "$why" ]; then ok "$name -O2: $(tr '\n' ' ' <"$d/expect")"; else bad "$name -O2$why"; fi
	if [ -f "$d/explain" ]; then
		pat=$(head -n 1 "$d/explain")
		ex=$("$KILN" dump "$d/model.onnx" --explain="$pat" 2>&1 | grep '^explain ')
		why=""
		while IFS= read -r frag; do
			[ -n "$frag" ] && ! grep -qF -- "$frag" <<<"$ex" && why="$why; lacks '$frag'"
		done < <(tail -n +2 "$d/explain")
		if [ -z "$why" ]; then ok "$name --explain=$pat: $ex"; else bad "$name --explain=$pat$why: $ex"; fi
	fi
done

# --explain=<unknown>: usage error, one line naming it
err=$("$KILN" dump "$OUT/rmsnorm_t5/model.onnx" --explain=layer_norm 2>&1 >/dev/null)
rc=$?
if [ $rc -eq 2 ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -q "unknown pattern 'layer_norm'" <<<"$err"; then
	ok "--explain=layer_norm: exit 2: $err"
else
	bad "--explain=layer_norm: exit $rc: $err"
fi

echo "norm_forms: $pass passed, $fail failed"
[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
