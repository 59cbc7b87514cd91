#!/usr/bin/env bash
# ctest: the fusion fuzzer (tests/gen/fusefuzz.py) on a fixed seed: random
# instances of the forms the -O2 fusions rewrite (attention with every
# projection, scale, mask and layout form; LayerNorm / RMSNorm op and
# decomposed; the GELU forms; MatMul+Add and Gemm; embeddings with their
# position ids; then the dynsym form alone) compiled at -O0, -O2 and -O2 --remove-padding (right-padded
# key masks) and compared with ONNX Runtime;
# no finding may be left, and the fusions must fire (at least half of the
# instances made to fuse, per form that has any).  Skipped (77) without
# onnxruntime-node (bench/node_modules or KILN_ORT_NODE_MODULES) or node.
# Sampled (a sanitizer build): 12 cases (KILN_FUSEFUZZ_COUNT, default 40).
# A longer run:
#   /usr/bin/python3 tests/gen/fusefuzz.py OUT --kiln build/kiln --seed S --count N
#   bash fusefuzz.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/fusefuzz
need_onnx fusefuzz
need_ort fusefuzz "$SRC"
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"

count=${KILN_FUSEFUZZ_COUNT:-40}
[ "$SAMPLED" = 1 ] && count=12
rm -rf "$OUT"
if out=$("$PY" "$SRC/tests/gen/fusefuzz.py" "$OUT" --kiln "$KILN" --ort-modules "$ORT_MODULES" \
	--seed 3 --count "$count" --timeout "$TIMEOUT" 2>&1); then
	ok "seed 3, $count cases at O0,O2,rp: $(tail -n 1 <<<"$out")"
else
	echo "$out" | grep -v '^fusefuzz: [0-9]'
	bad "seed 3, $count cases at O0,O2,rp: $(tail -n 1 <<<"$out")"
fi
grep -E '^(kiln refused|--remove-padding): ' <<<"$out"
# the embeddings + attention of a dynamo export whose inputs have symbols
# of their own (form dynsym, made only when named), each symbol resized
# alone in the second data set: -O2 broadcasts as -O0 and fuses
dcount=$(( count / 4 ))
[ "$SAMPLED" = 1 ] && dcount=4
if dout=$("$PY" "$SRC/tests/gen/fusefuzz.py" "$OUT/dynsym" --kiln "$KILN" --ort-modules "$ORT_MODULES" \
	--seed 3 --count "$dcount" --only dynsym --timeout "$TIMEOUT" 2>&1); then
	ok "dynsym: seed 3, $dcount cases: $(tail -n 1 <<<"$dout")"
else
	echo "$dout" | grep -v '^fusefuzz: [0-9]'
	bad "dynsym: seed 3, $dcount cases: $(tail -n 1 <<<"$dout")"
fi
# the fuzzer tests the fusions only where they fire
while read -r form cases compared tofuse fused _; do
	[ "$tofuse" -gt 0 ] || continue
	if [ $((fused * 2)) -ge "$tofuse" ] || [ "$SAMPLED" = 1 ]; then
		ok "$form: fused in $fused of $tofuse"
	else
		bad "$form: fused in only $fused of $tofuse"
	fi
done < <(sed -n '/^form /,/^$/p' <<<"$out" | sed '1d;/^$/d'; sed -n '/^form /,/^$/p' <<<"$dout" | sed '1d;/^$/d')
finish fusefuzz
