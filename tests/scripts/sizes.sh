#!/usr/bin/env bash
# Sizes that overflow 64 bits or exceed the size limit (issue #10): valid
# models whose tensors grow with the input (Shape -> Concat -> Expand /
# ConstantOfShape) must fail at run time with one line naming the node,
# never crash or return a wrong value; static ones are refused at compile
# time naming the node (also with --stats); --max-tensor-bytes sets the
# limit; --stats measures the arena from the plan, the same bytes a run at
# batch 1, sequence 128 plans.
# usage: sizes.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
d="$build/sizes_test"
rm -rf "$d" && mkdir -p "$d"
"$PY" "$src/tests/gen/make_size_models.py" "$d" || exit 1

# one_line_error NAME EXIT REGEX -- command...: exit EXIT, one stderr line matching REGEX
one_line_error() {
  local name=$1 want=$2 re=$3; shift 4
  "$@" >"$d/out" 2>"$d/err"; local rc=$?
  local msg; msg=$(cat "$d/err")
  if [ $rc -ne "$want" ] || [ "$(wc -l <"$d/err")" -ne 1 ] || ! grep -Eq "$re" <<<"$msg"; then
    bad "$name: exit $rc: $msg"
  else
    ok "$name: $msg"
  fi
}

# value SO N WANT: run on in_N, the scalar output must be WANT
value() {
  local so=$1 n=$2 want=$3 res="$d/res_$(basename "$1" .so)_$2"
  rm -rf "$res"
  if ! "$kiln" run "$d/$so" --inputs "$d/in_$n" --outputs "$res" 2>"$d/err"; then
    bad "$so on n=$n: $(cat "$d/err")"; return
  fi
  /usr/bin/python3 - "$res/output_0.pb" "$want" <<'PY' && ok "$so on n=$n gives $want" || bad "$so on n=$n: wrong value"
import sys, onnx
from onnx import numpy_helper
v = numpy_helper.to_array(onnx.load_tensor(sys.argv[1]))
sys.exit(0 if abs(float(v) - float(sys.argv[2])) <= 1e-4 * abs(float(sys.argv[2])) else 1)
PY
}

# run_refused SO N REGEX: kiln run exits 1 with one line, writes no output
run_refused() {
  local so=$1 n=$2 re=$3 res="$d/res_refused"
  rm -rf "$res"
  one_line_error "$so on n=$n refused" 1 "$re" -- "$kiln" run "$d/$so" --inputs "$d/in_$n" --outputs "$res"
  [ -e "$res/output_0.pb" ] && bad "$so on n=$n wrote an output"
}

# symbolic sizes: checked at run time
for m in expand_sum_4 expand_sum_3 cos_max; do
  "$kiln" compile "$d/$m.onnx" -o "$d/$m.so" 2>"$d/err" || bad "compile $m: $(cat "$d/err")"
done
"$kiln" compile "$d/expand_sum_2.onnx" -o "$d/expand_sum_2.so" --max-tensor-bytes=1G 2>"$d/err" ||
  bad "compile expand_sum_2: $(cat "$d/err")"
LIMIT="over the limit of [0-9]+ bytes"
run_refused expand_sum_4.so 65536 "node 'expand' \(Expand\): output 'big' of shape \[n, n, n, n\].*$LIMIT"
run_refused expand_sum_3.so 65536 "node 'expand' \(Expand\).*2\.81e\+14 elements.*$LIMIT"
run_refused expand_sum_2.so 65536 "node 'expand' \(Expand\).*over the limit of 1073741824 bytes"
run_refused cos_max.so 65536 "node 'fill' \(ConstantOfShape\): output 'big'.*$LIMIT"
value expand_sum_4.so 3 27      # sum over [3,3,3,3] of x = (0, 1/3, 2/3) expanded
value expand_sum_3.so 3 9
value expand_sum_2.so 3 3
value cos_max.so 3 1            # ones: max is 1, not -inf
# a refused run leaves the context usable: the same .so, a small input, then the big one again
value cos_max.so 3 1

# static sizes: refused at compile time, with and without --stats
for spec in "static_expand:expand:Expand:4294967296, 4294967296" \
            "static_cos:fill:ConstantOfShape:2147483648, 2147483648" \
            "static_range:range:Range:4611686018427387904"; do
  IFS=: read -r m node op shape <<<"$spec"
  for stats in "" --stats; do
    one_line_error "compile $m $stats refused" 1 \
      "$m\.onnx: node '$node' \($op\): output 'big' has shape \[$shape\]: .*over the limit" \
      -- "$kiln" compile "$d/$m.onnx" -o "$d/$m.so" $stats
  done
done
one_line_error "dump static_expand refused" 1 "node 'expand' \(Expand\)" -- "$kiln" dump "$d/static_expand.onnx"
one_line_error "bad --max-tensor-bytes" 2 "max-tensor-bytes" -- "$kiln" compile "$d/expand_sum_2.onnx" -o "$d/x.so" --max-tensor-bytes=lots

# --stats never runs the model; its arena is the plan's at batch 1, sequence 128
for m in expand_sum_4 cos_max; do
  if "$kiln" compile "$d/$m.onnx" -o "$d/$m.so" --stats >"$d/stats" 2>"$d/err" &&
     tail -1 "$d/stats" | /usr/bin/python3 -c 'import json,sys; assert json.loads(sys.stdin.read())["arena_bytes"] >= 0'; then
    ok "compile --stats $m"
  else
    bad "compile --stats $m: $(cat "$d/err")"
  fi
done
gen_models "$src" "$d" bert_qa vilbert
# a lower limit refuses what the default allows: [batch, sequence, 64] f32 has 256 static bytes
one_line_error "--max-tensor-bytes=100 on bert_qa" 1 "model\.onnx: node '[^']+' \([A-Za-z]+\): output '[^']+' has shape \[.*64\]: 64 elements of 4 bytes in its static dims alone, over the limit of 100 bytes" \
  -- "$kiln" compile "$d/bert_qa/model.onnx" -o "$d/x.so" --max-tensor-bytes=100
for m in bert_qa vilbert; do
  "$kiln" compile "$d/$m/model.onnx" -o "$d/$m.so" --stats >"$d/stats" 2>"$d/err" || { bad "compile --stats $m: $(cat "$d/err")"; continue; }
  "$kiln" bench "$d/$m.so" --batch 1 --seq 128 --regions 36 --runs 1 --vocab 1024 >"$d/bench" 2>"$d/err" || { bad "bench $m: $(cat "$d/err")"; continue; }
  s=$(tail -1 "$d/stats" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["arena_bytes"])')
  r=$(tail -1 "$d/bench" | /usr/bin/python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["arena_bytes"])')
  if [ -n "$s" ] && [ "$s" -gt 0 ] && [ "$s" = "$r" ]; then
    ok "--stats arena of $m: $s bytes, as planned by a run"
  else
    bad "--stats arena of $m: $s bytes, a run at batch 1, sequence 128 plans $r"
  fi
done
finish sizes
