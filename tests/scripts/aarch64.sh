#!/usr/bin/env bash
# ctest: aarch64 end to end, under emulation.  kiln's own test models
# (tests/gen/models.py) compiled with --target-triple=aarch64-linux-gnu,
# linked with the cross toolchain and the cross-built runtime
# (BUILD/aarch64-linux-gnu), run by kiln-runner under qemu-aarch64 and
# compared with their numpy references (kiln check, default tolerance) at
# -O0 and -O2; external weights and bf16 GEMMs on one of them; a wrong
# reference and a missing input found; the NEON
# kernels against double references (rt_kernels_check under qemu); the
# one-line errors when the emulator or the cross compiler is missing, and
# when this machine is asked to load the aarch64 .so.
# Skips (77) when gcc-aarch64-linux-gnu or qemu-user is not installed
# (scripts/setup.sh installs both; CI has them).
#   bash aarch64.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
X=$BUILD/aarch64-linux-gnu
OUT=$BUILD/aarch64_test
for t in aarch64-linux-gnu-gcc qemu-aarch64; do
	command -v $t >/dev/null || { echo "aarch64: $t not installed (apt-get install gcc-aarch64-linux-gnu qemu-user), skipping"; exit 77; }
done
[ -d /usr/aarch64-linux-gnu/lib ] || { echo "aarch64: /usr/aarch64-linux-gnu absent (libc6-dev-arm64-cross), skipping"; exit 77; }
# the toolchain is here, so the build must have made the cross runtime
for f in libkiln_rt.a libkiln.a kiln-runner rt_kernels_check; do
	[ -f "$X/$f" ] || { echo "FAIL $X/$f missing (the build did not cross-build the runtime)"; exit 1; }
done
t0=$(date +%s)
rm -rf "$OUT" && mkdir -p "$OUT"
gen_models "$SRC" "$OUT/models"
check() {  # check NAME DIR OPTIONS...: kiln check for aarch64 must pass
	local name=$1 dir=$2; shift 2
	if out=$(timeout "$TIMEOUT" "$KILN" check "$dir" --target-triple=aarch64-linux-gnu "$@" 2>&1) &&
	   grep -q "run for aarch64-linux-gnu" <<<"$out"; then
		ok "$name $*"
	else
		bad "$name $*: $(echo "$out" | tail -n 3 | tr '\n' ' ')"
	fi
}

# every model, both pipelines
for d in "$OUT"/models/*/; do
	d=${d%/}
	for o in -O0 -O2; do check "$(basename "$d")" "$d" "$o"; done
done
qa=$OUT/models/bert_qa
check bert_qa "$qa" --weights=external --threads=1
check bert_qa "$qa" --fpmath=bf16 --atol=3e-2 --rtol=3e-2
check bert_qa "$qa" --target-cpu=cortex-a72

# a mismatch is reported as one: a reference that is off
cp -r "$qa" "$OUT/qa_wrong"
"$PY" - "$OUT/qa_wrong/test_data_set_0/output_0.pb" <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper
t = onnx.load_tensor(sys.argv[1]); a = numpy_helper.to_array(t).copy(); a.flat[0] += 1.0
open(sys.argv[1], "wb").write(numpy_helper.from_array(a, t.name).SerializeToString())
PY
out=$("$KILN" check "$OUT/qa_wrong" --target-triple=aarch64-linux-gnu 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "MISMATCH in 1 of 2" <<<"$out" && ok "wrong reference found" || bad "wrong reference: exit $rc: $out"

# a set without one of the model's inputs: one line naming the file
cp -r "$qa" "$OUT/qa_missing" && rm "$OUT/qa_missing/test_data_set_1/input_2.pb"
"$KILN" check "$OUT/qa_missing" --target-triple=aarch64-linux-gnu >/dev/null 2>"$OUT/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$OUT/err")" -eq 1 ] && grep -q "test_data_set_1/input_2.pb" "$OUT/err" &&
	ok "missing input: one line" || bad "missing input: exit $rc: $(cat "$OUT/err")"

# the .so itself: an aarch64 ELF; this machine refuses it in one line
so=$OUT/qa.so
if "$KILN" compile "$qa/model.onnx" -o "$so" --target-triple=aarch64-linux-gnu 2>"$OUT/err" &&
   od -An -tx1 -j18 -N2 "$so" | grep -q 'b7 00'; then ok "compile: aarch64 ELF"; else bad "compile: $(cat "$OUT/err")"; fi
if [ "$(uname -m)" != aarch64 ]; then
	"$KILN" run "$so" --inputs "$qa/test_data_set_0" --outputs "$OUT" 2>"$OUT/err"; rc=$?
	[ $rc -eq 1 ] && [ "$(wc -l <"$OUT/err")" -eq 1 ] && grep -q "compiled for aarch64" "$OUT/err" &&
		ok "host refuses the aarch64 .so" || bad "host load: exit $rc: $(cat "$OUT/err")"
fi
# the runner directly, on that .so, with its own error for a missing input
mkdir -p "$OUT/empty"
timeout "$TIMEOUT" qemu-aarch64 -L /usr/aarch64-linux-gnu "$X/kiln-runner" "$so" 1 "$OUT/empty" 2>"$OUT/err"; rc=$?
[ $rc -eq 1 ] && grep -q "input_0.bin: cannot open" "$OUT/err" && ok "runner: missing input" || bad "runner: exit $rc: $(cat "$OUT/err")"

# missing tools: one line, exit 1
nobin=$OUT/nobin && mkdir -p "$nobin"
PATH=$nobin "$KILN" check "$qa" --target-triple=aarch64-linux-gnu >/dev/null 2>"$OUT/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$OUT/err")" -eq 1 ] && grep -q "qemu-aarch64 not found" "$OUT/err" &&
	ok "no qemu: one line" || bad "no qemu: exit $rc: $(cat "$OUT/err")"
PATH=$nobin "$KILN" compile "$qa/model.onnx" -o "$OUT/n.so" --target-triple=aarch64-linux-gnu 2>"$OUT/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$OUT/err")" -eq 1 ] && grep -q "aarch64-linux-gnu-gcc not found" "$OUT/err" &&
	[ ! -e "$OUT/n.so" ] && ok "no cross gcc: one line" || bad "no cross gcc: exit $rc: $(cat "$OUT/err")"
KILN_CROSS_DIR=$nobin "$KILN" compile "$qa/model.onnx" -o "$OUT/n.so" --target-triple=aarch64-linux-gnu 2>"$OUT/err"; rc=$?
[ $rc -eq 1 ] && [ "$(wc -l <"$OUT/err")" -eq 1 ] && grep -q "KILN_CROSS_DIR" "$OUT/err" &&
	ok "no cross runtime: one line" || bad "no cross runtime: exit $rc: $(cat "$OUT/err")"

# the NEON kernels against double references
if out=$(timeout "$TIMEOUT" qemu-aarch64 -L /usr/aarch64-linux-gnu "$X/rt_kernels_check" 2>&1) &&
   grep -q "gemm kernel neon" <<<"$out" && grep -q "fused kernels: SIMD and scalar" <<<"$out"; then
	ok "rt_kernels_check: $(tail -n 1 <<<"$out")"
else
	bad "rt_kernels_check: $(tail -n 5 <<<"$out" | tr '\n' ' ')"
fi

finish aarch64 "in $(( $(date +%s) - t0 )) s"
