#!/usr/bin/env bash
# Compile time against graph size: `kiln compile` of Add/Relu chains
# (tests/gen/chain.py: x f32 [batch, 64] -> Add(c_0) -> Relu -> Add(c_1)
# -> ...) of 1,000, 3,000 and 10,000 ops, each compiled and checked
# against its numpy reference once; prints a markdown table.
#   bash bench/compile_chain.sh [BUILD_DIR] [N...]    (default build, 1000 3000 10000)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
shift || true
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(1000 3000 10000)
case $build in /*) ;; *) build="$root/$build" ;; esac
kiln="$build/kiln"
[ -x "$kiln" ] || { echo "compile_chain: $kiln not found (build first)"; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/kiln-chain-XXXXXX")
trap 'rm -rf "$out"' EXIT

echo "| ops | compile s | s per 1000 ops | output |"
echo "|---|---|---|---|"
for n in "${sizes[@]}"; do
  /usr/bin/python3 "$root/tests/gen/chain.py" "$out/c$n" "$n" >/dev/null
  t0=$(date +%s.%N)
  "$kiln" compile "$out/c$n/model.onnx" -o "$out/c$n.so"
  t1=$(date +%s.%N)
  # the same model through `kiln check` (compiles again, then runs)
  "$kiln" check "$out/c$n" >/dev/null && ok=ok || ok=MISMATCH
  awk -v n="$n" -v a="$t0" -v b="$t1" -v ok="$ok" \
    'BEGIN { s = b - a; printf "| %d | %.2f | %.2f | %s |\n", n, s, s * 1000 / n, ok }'
done
