#!/usr/bin/env bash
# A compiled model records the CPU features its code may use, and
# kiln_model_load refuses a CPU that lacks one (instead of SIGILL in the
# first run).  KILN_CPU_MASK=a,b makes the loader treat a and b as missing,
# so the refusal is tested on any machine:
#   - a default (this machine's CPU) build loads and matches; with its
#     features masked it is refused, one line naming them;
#   - an x86-64-v4 build names the AVX-512 features when they are masked
#     (or missing);
#   - a baseline x86-64 build records nothing, so it loads with everything
#     masked, and matches its references.
# usage: target_cpu.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
case "$(uname -m)" in x86_64) ;; *) echo "skip: not x86-64"; exit 77 ;; esac
d="$build/target_cpu_test"
rm -rf "$d" && mkdir -p "$d"
gen_models "$src" "$d" bert_qa
m="$d/bert_qa/model.onnx" ds="$d/bert_qa/test_data_set_0"
all=$(sed -n 's/X("\([^"]*\)")/\1\n/gp' "$src/runtime/cpu_features.def" | tr -d ' ' | grep . | paste -sd,)

"$kiln" compile "$m" -o "$d/host.so" || exit 1
"$kiln" run "$d/host.so" --inputs "$ds" --outputs "$d/o1" >/dev/null && ok "default build runs" || bad "default build does not run"
KILN_CPU_MASK=$all "$kiln" run "$d/host.so" --inputs "$ds" --outputs "$d/o2" >/dev/null 2>"$d/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q "which this CPU lacks" "$d/err"; then
  ok "default build refused with its features masked: $(cut -c1-120 "$d/err")"
else
  bad "default build with features masked: exit $rc: $(cat "$d/err")"
fi
[ ! -e "$d/o2" ] || bad "a refused model wrote outputs"

"$kiln" compile "$m" -o "$d/v4.so" --target-cpu=x86-64-v4 || exit 1
KILN_CPU_MASK=avx512f,avx512bw "$kiln" run "$d/v4.so" --inputs "$ds" --outputs "$d/o3" >/dev/null 2>"$d/err"
rc=$?
if [ $rc -eq 1 ] && grep -q "avx512f, .*avx512bw" "$d/err" && grep -q "x86-64-v4" "$d/err"; then
  ok "x86-64-v4 build refused naming avx512f, avx512bw"
else
  bad "x86-64-v4 build with AVX-512 masked: exit $rc: $(cat "$d/err")"
fi
if grep -q avx512f /proc/cpuinfo; then
  "$kiln" run "$d/v4.so" --inputs "$ds" --outputs "$d/o4" >/dev/null && ok "x86-64-v4 build runs on this AVX-512 CPU" || bad "x86-64-v4 build does not run here"
else
  "$kiln" run "$d/v4.so" --inputs "$ds" --outputs "$d/o4" >/dev/null 2>"$d/err" && bad "x86-64-v4 build ran on a CPU without AVX-512" ||
    ok "x86-64-v4 build refused on this CPU without AVX-512: $(cut -c1-100 "$d/err")"
fi

"$kiln" check "$d/bert_qa" --target-cpu=x86-64 >/dev/null && ok "baseline x86-64 build matches its references" || bad "baseline x86-64 build"
"$kiln" compile "$m" -o "$d/base.so" --target-cpu=x86-64 || exit 1
KILN_CPU_MASK=$all "$kiln" run "$d/base.so" --inputs "$ds" --outputs "$d/o5" >/dev/null && ok "baseline build loads with every feature masked" || bad "baseline build refused"
finish target_cpu
