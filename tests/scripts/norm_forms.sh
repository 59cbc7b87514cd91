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
# The reference checks: lib/suite.sh's check_batch, 16 cases per `kiln
# check` process (a case with its own tolerances alone), after the IR checks
# of every case.
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every case at
# -O2, every third also at -O0.
#   bash norm_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/norm_forms
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
need_onnx norm_forms

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/norm_forms.py" "$OUT" || { echo "norm_forms: generating failed"; exit 1; }

at_O0=() at_O2=()
for d in "$OUT"/*/; do
	d=${d%/}
	name=$(basename "$d")
	opts=$(cat "$d/check" 2>/dev/null)   # tolerances other than the default, if any
	sample_levels
	for o in $levels; do
		if [ -n "$opts" ]; then
			# shellcheck disable=SC2086
			check_model "$name $o $opts" "$d" "$o" $opts
		elif [ "$o" = -O0 ]; then
			at_O0+=("$d")
		else
			at_O2+=("$d")
		fi
	done
	# one -O2 dump: the IR, and the --explain=PATTERN lines of an explain_* case
	pat=
	[ -f "$d/explain" ] && pat=$(head -n 1 "$d/explain")
	all=$("$KILN" dump "$d/model.onnx" -O2 ${pat:+"--explain=$pat"} 2>&1)
	ir=$(grep -v '^explain ' <<<"$all")
	why=""
	while read -r verb op; do
		[ -n "$verb" ] || continue
		# an op as a node (the `// from:` comments name ONNX nodes, not ops)
		if grep -q "= $op(" <<<"$ir"; then has=1; else has=0; fi
		[ "$verb" = has ] && [ $has = 0 ] && why="$why; no $op"
		[ "$verb" = lacks ] && [ $has = 1 ] && why="$why; $op left"
	done <"$d/expect"
	if [ -z "$why" ]; then ok "$name -O2: $(tr '\n' ' ' <"$d/expect")"; else bad "$name -O2$why"; fi
	if [ -n "$pat" ]; then
		ex=$(grep '^explain ' <<<"$all")
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

[ ${#at_O0[@]} -eq 0 ] || check_batch -O0 "${at_O0[@]}"
[ ${#at_O2[@]} -eq 0 ] || check_batch -O2 "${at_O2[@]}"
finish norm_forms
