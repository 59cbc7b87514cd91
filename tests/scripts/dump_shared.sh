#!/usr/bin/env bash
# Integration: `kiln dump` reads every real export in ../shared/models and
# ../shared/models/perf (whose weights fill_weights.py regenerates into the
# build folder), infers every shape, and prints the IR.  Skips without ../shared.
# usage: dump_shared.sh KILN_BIN SRC_DIR BUILD_DIR
set -u
kiln=$1 src=$2 build=$3
shared="$src/../shared/models"
[ -d "$shared" ] || { echo "skip: $shared not found"; exit 77; }
fail=0 n=0
dump() {  # model.onnx
  local out
  n=$((n + 1))
  if ! out=$("$kiln" dump -O0 "$1" 2>&1); then
    echo "FAIL $1: $out" | head -3; fail=$((fail + 1)); return
  fi
  # every value printed with a known shape: no '?' rank left after inference
  if grep -q ': ?' <<<"$out" || ! grep -q '^ *return' <<<"$out"; then
    echo "FAIL $1: incomplete IR"; fail=$((fail + 1)); return
  fi
  echo "ok   $1 ($(grep -c ' = ' <<<"$out") lines)"
}
for m in "$shared"/*/model.onnx; do dump "$m"; done
for d in "$shared"/perf/*/; do
  name=$(basename "$d") w="$build/perf/$name"
  if [ ! -f "$w/weights.bin" ]; then
    # filled beside it and renamed when complete: a run killed half-way
    # must not leave a short weights.bin that later runs take as done
    t="$w.tmp.$$"; rm -rf "$t" "$w"
    mkdir -p "$t" && cp "$d/model.onnx" "$t/" && chmod u+w "$t/model.onnx"
    /usr/bin/python3 "$src/../shared/tools/fill_weights.py" "$t" >/dev/null && mv "$t" "$w" ||
      { rm -rf "$t"; echo "FAIL fill_weights $name"; fail=$((fail + 1)); continue; }
  fi
  dump "$w/model.onnx"
done
echo "dump_shared: $((n - fail)) of $n models dumped"
[ "$fail" = 0 ]
