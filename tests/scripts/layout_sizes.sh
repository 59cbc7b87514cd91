#!/usr/bin/env bash
# The code of an inline op does not grow with its tensor's static size
# (LLVM once fully unrolled the loops of a static Transpose of
# [2, 2, 128, 32] into ~20,000 lines of IR and a second of compile time):
# for each one-op model of tests/gen/layout_sizes.py (Transpose of several
# dtypes and permutations, Slice with positive and negative steps, Concat,
# Split, Expand, Gather on two axes, Tile, broadcast Add, Where, Softmax,
# ReduceSum), the `--emit=llvm` line count at n = 256 must be at most 10%
# (+ 20 lines) over the one at n = 48, both under 1500 lines; and
# `kiln check` must match numpy's outputs at both sizes.
# usage: layout_sizes.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 src=$2 build=$3
need_onnx layout_sizes
d="$build/layout_sizes_test"
rm -rf "$d" && mkdir -p "$d"
cases=$("$PY" "$src/tests/gen/layout_sizes.py" "$d") || { echo "FAIL tests/gen/layout_sizes.py"; exit 1; }
MAX_LINES=1500

# lines CASE SIZE: the line count of CASE_SIZE's LLVM IR (empty on failure)
lines() {
  local m="$d/$1_$2" t0 t1
  t0=$(date +%s%N)
  if ! timeout "$TIMEOUT" "$KILN" compile "$m/model.onnx" --emit=llvm -o "$m.ll" 2>"$d/err"; then
    bad "$1 n=$2: compile: $(cat "$d/err")"
    return
  fi
  t1=$(date +%s%N)
  echo "$1 $2: $(wc -l <"$m.ll") lines of IR, $(( (t1 - t0) / 1000000 )) ms" >&2
  wc -l <"$m.ll"
}

for c in $cases; do
  s=$(lines "$c" s) l=$(lines "$c" l)
  if [ -n "$s" ] && [ -n "$l" ]; then
    if [ "$l" -le $((s + s / 10 + 20)) ] && [ "$l" -lt $MAX_LINES ] && [ "$s" -lt $MAX_LINES ]; then
      ok "$c: IR $s lines at n=48, $l at n=256"
    else
      bad "$c: IR grows with the size: $s lines at n=48, $l at n=256 (limit $MAX_LINES)"
    fi
  fi
  check_model "$c n=48 matches numpy" "$d/${c}_s"
  check_model "$c n=256 matches numpy" "$d/${c}_l"
done
finish layout_sizes
