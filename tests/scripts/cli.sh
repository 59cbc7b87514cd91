#!/usr/bin/env bash
# The command line: help and version, usage errors (exit 2), compile's emit
# kinds and targets, dump formats, compile --stats' JSON.
# usage: cli.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
kiln=$1 src=$2 build=$3
d="$build/cli_test"
rm -rf "$d" && mkdir -p "$d"
/usr/bin/python3 "$src/tests/gen/models.py" "$d" bert_qa >/dev/null || exit 1
m="$d/bert_qa/model.onnx"
fail=0
expect() {  # expect EXIT DESCRIPTION -- command...
  local want=$1 what=$2; shift 3
  "$@" >"$d/out" 2>"$d/err"; local rc=$?
  if [ $rc -ne "$want" ]; then echo "FAIL $what: exit $rc, wanted $want"; head -3 "$d/err"; fail=1; else echo "ok   $what"; fi
}
expect 0 "--help" -- "$kiln" --help
expect 0 "--version" -- "$kiln" --version
grep -q '^kiln [0-9]' "$d/out" || { echo "FAIL --version text"; fail=1; }
for c in dump compile run check bench; do expect 0 "$c --help" -- "$kiln" $c --help; done
expect 2 "no command" -- "$kiln"
expect 2 "unknown command" -- "$kiln" frobnicate
expect 2 "unknown option" -- "$kiln" dump --frob "$m"
expect 2 "compile without -o" -- "$kiln" compile "$m"
expect 2 "bad --emit" -- "$kiln" compile "$m" -o "$d/x" --emit=exe
expect 2 "bad --weights" -- "$kiln" compile "$m" -o "$d/x" --weights=cloud
expect 0 "dump --format=dot" -- "$kiln" dump --format=dot "$m"
grep -q '^digraph' "$d/out" || { echo "FAIL dot output"; fail=1; }
expect 0 "dump --print-after=fuse-attention" -- "$kiln" dump --print-after=fuse-attention "$m"
grep -q 'KlnAttention' "$d/out" || { echo "FAIL print-after shows no KlnAttention"; fail=1; }
expect 1 "unknown pass" -- "$kiln" dump --passes=nosuchpass "$m"
expect 0 "emit=llvm" -- "$kiln" compile "$m" -o "$d/m.ll" --emit=llvm
grep -q 'define .*@kiln__run' "$d/m.ll" || { echo "FAIL no kiln__run in .ll"; fail=1; }
expect 0 "emit=asm" -- "$kiln" compile "$m" -o "$d/m.s" --emit=asm
expect 0 "emit=obj for aarch64" -- "$kiln" compile "$m" -o "$d/a.o" --emit=obj --target-triple=aarch64-linux-gnu
od -An -tx1 -j18 -N2 "$d/a.o" | grep -q 'b7 00' || { echo "FAIL a.o is not an aarch64 ELF"; fail=1; }
expect 1 ".so for aarch64 refused" -- "$kiln" compile "$m" -o "$d/a.so" --target-triple=aarch64-linux-gnu
expect 0 "--target-cpu=x86-64" -- "$kiln" check "$d/bert_qa" --target-cpu=x86-64
expect 0 "compile --stats" -- "$kiln" compile "$m" -o "$d/m.so" --stats
tail -1 "$d/out" | /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
assert s["ops_in"]["Softmax"] == 2 and s["ops_in"].get("Constant", 0) > 0 and s["fusions"]["attention"] == 2, s
assert "Softmax" not in s["ops_out"] and s["arena_bytes"] > 0 and s["compile_ms"] > 0, s
' || { echo "FAIL --stats JSON"; fail=1; }
# kiln ops: the op schema, every op of ir/ops.def, as text and JSON
expect 0 "ops --help" -- "$kiln" ops --help
expect 0 "ops" -- "$kiln" ops
nops=$(grep -c '^X(' "$src/ir/ops.def")
[ "$(grep -c '^[A-Z]' "$d/out")" -eq "$nops" ] || { echo "FAIL kiln ops lists $(grep -c '^[A-Z]' "$d/out") ops, ops.def has $nops"; fail=1; }
grep -q '^Sqrt (unary)' "$d/out" && grep -A3 '^Sqrt ' "$d/out" | grep -q 'T *f32|f64$' ||
  { echo "FAIL kiln ops: Sqrt's dtypes"; fail=1; }
expect 0 "ops Softmax Gemm" -- "$kiln" ops Softmax Gemm
[ "$(grep -c '^[A-Z]' "$d/out")" -eq 2 ] && grep -q 'axis: int = -1' "$d/out" && grep -q 'transB: int = 0, 0 to 1' "$d/out" ||
  { echo "FAIL kiln ops Softmax Gemm"; cat "$d/out"; fail=1; }
expect 2 "ops unknown op" -- "$kiln" ops Frobnicate
expect 2 "ops unknown option" -- "$kiln" ops --frob
expect 0 "ops --json" -- "$kiln" ops --json
NOPS=$nops /usr/bin/python3 -c '
import json, os, sys
ops = {o["name"]: o for o in json.load(sys.stdin)["ops"]}
assert len(ops) == int(os.environ["NOPS"]), len(ops)
assert ops["Sqrt"]["types"] == {"T": ["f32", "f64"]}, ops["Sqrt"]
assert ops["MatMul"]["types"]["T"] == ["f32", "f64", "i32", "i64"], ops["MatMul"]
ax = ops["Softmax"]["attributes"][0]
assert (ax["name"], ax["type"], ax["default"], ax["required"]) == ("axis", "int", "-1", False), ax
tm = ops["Dropout"]["inputs"][2]
assert tm["name"] == "training_mode" and tm["constant_false"] and tm["optional"], tm
ge = [a for a in ops["Gelu"]["attributes"] if a["name"] == "approximate"][0]
assert ge["one_of"] == ["none", "tanh"], ge
nh = [a for a in ops["KlnAttention"]["attributes"] if a["name"] == "num_heads"][0]
assert nh["required"] and nh["type"] == "int", nh
assert ops["Concat"]["inputs"][0]["variadic"] and all("onnx_versions" in o for o in ops.values())
' <"$d/out" || { echo "FAIL kiln ops --json"; fail=1; }
exit $fail
