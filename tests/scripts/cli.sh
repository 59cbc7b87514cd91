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
exit $fail
