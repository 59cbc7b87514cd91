#!/usr/bin/env bash
# ctest: Keras Einsum attention (tf2onnx and Keras 3 / dynamo-style) with
# its projections packed into one QKV KlnGemm, and the norm/GELU forms as the
# dynamo exporter writes them, with near misses (tests/gen/einsum_forms.py,
# numpy references).  For every case: `kiln check` matches the reference at
# -O0 and at -O2; `kiln compile -O2 --stats` reports the op counts, the ops
# present and absent and the fusion counts of the case's expect.json; where
# the case has an `explain` file, --explain=PATTERN (on that compile) prints each
# of its fragments ("fused as ..." or the node and condition that failed).
# A case whose expect.json has "xfail" (a form known not to fuse yet) must
# still match its reference; its fusion counts are reported, not failed.
# The reference checks: lib/suite.sh's check_batch, 16 cases per `kiln
# check` process, after the counts of every case; the counts from -O2 up to
# LLVM IR (--emit=llvm: `kiln check -O2` compiles it all).
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every case at
# -O2, every third also at -O0.
#   bash einsum_forms.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/einsum_forms
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
need_onnx einsum_forms

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/einsum_forms.py" "$OUT" >/dev/null || { echo "einsum_forms: generating failed"; exit 1; }

at_O0=() at_O2=()
for d in "$OUT"/*/; do
	d=${d%/}
	name=$(basename "$d")
	sample_levels
	case " $levels " in *" -O0 "*) at_O0+=("$d") ;; esac
	at_O2+=("$d")
	# one compile: the --explain=PATTERN lines of a case with an explain
	# file, then the --stats line
	pat=
	[ -f "$d/explain" ] && pat=$(head -n 1 "$d/explain")
	if ! out=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$OUT/$name.ll" --emit=llvm -O2 --stats \
		${pat:+"--explain=$pat"} 2>&1); then
		bad "$name: compile -O2: $(echo "$out" | tail -n 2 | tr '\n' ' ')"
		continue
	fi
	if verdict=$(echo "$out" | tail -n 1 | "$PY" -c '
import json, sys
stats = json.loads(sys.stdin.read())
want = json.load(open(sys.argv[1]))
ops, fus = stats["ops_out"], stats["fusions"]
why = []
for op, n in want.get("count", {}).items():
    if ops.get(op, 0) != n:
        why.append("%d %s, expected %d" % (ops.get(op, 0), op, n))
why += ["%s left" % op for op in want.get("lacks", []) if ops.get(op, 0)]
why += ["no %s" % op for op in want.get("has", []) if not ops.get(op, 0)]
for p, n in want.get("fusions", {}).items():
    if fus.get(p, 0) != n:
        why.append("%s fired %d times, expected %d" % (p, fus.get(p, 0), n))
got = "ops %s, fusions %s" % (json.dumps(ops), json.dumps(fus))
if "xfail" in want:   # a known miss: reported, not failed
    print("XPASS (remove its xfail)" if not why else "XFAIL (%s): %s" % (want["xfail"], "; ".join(why)))
    sys.exit(0)
print("; ".join(why) if why else got)
sys.exit(1 if why else 0)
' "$d/expect.json"); then
		ok "$name -O2: $verdict"
	else
		bad "$name -O2: $verdict"
	fi
	if [ -n "$pat" ]; then
		ex=$(grep '^explain ' <<<"$out")
		why=""
		while IFS= read -r frag; do
			[ -n "$frag" ] && ! grep -qF -- "$frag" <<<"$ex" && why="$why; lacks '$frag'"
		done < <(tail -n +2 "$d/explain")
		if [ -z "$why" ]; then ok "$name --explain=$pat: $(head -n 1 <<<"$ex")"; else bad "$name --explain=$pat$why: $ex"; fi
	fi
done

[ ${#at_O0[@]} -eq 0 ] || check_batch -O0 "${at_O0[@]}"
[ ${#at_O2[@]} -eq 0 ] || check_batch -O2 "${at_O2[@]}"
finish einsum_forms
