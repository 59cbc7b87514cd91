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
grep -Eq '^kiln [0-9.]+ \(commit ([0-9a-f]+|unknown), LLVM [0-9]+\.[0-9.]+\)$' "$d/out" || { echo "FAIL --version text: $(cat "$d/out")"; fail=1; }
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
expect 0 "dump --list-passes (named by the unknown-pass message)" -- "$kiln" dump --list-passes
grep -q '^fold ' "$d/out" && grep -q 'fusion patterns' "$d/out" || { echo "FAIL --list-passes output"; fail=1; }
expect 0 "emit=llvm" -- "$kiln" compile "$m" -o "$d/m.ll" --emit=llvm
grep -q 'define .*@kiln__run' "$d/m.ll" || { echo "FAIL no kiln__run in .ll"; fail=1; }
expect 0 "emit=asm" -- "$kiln" compile "$m" -o "$d/m.s" --emit=asm
expect 0 "emit=obj for aarch64" -- "$kiln" compile "$m" -o "$d/a.o" --emit=obj --target-triple=aarch64-linux-gnu
od -An -tx1 -j18 -N2 "$d/a.o" | grep -q 'b7 00' || { echo "FAIL a.o is not an aarch64 ELF"; fail=1; }
# a .so for aarch64 links with the cross toolchain (tests/scripts/aarch64.sh);
# for an architecture kiln has no runtime for, one line and exit 1
expect 1 ".so for riscv64 refused" -- "$kiln" compile "$m" -o "$d/a.so" --target-triple=riscv64-linux-gnu
[ "$(wc -l <"$d/err")" -eq 1 ] && grep -q "aarch64-linux-gnu only" "$d/err" || { echo "FAIL riscv64 .so message: $(cat "$d/err")"; fail=1; }
[ ! -e "$d/a.so" ] || { echo "FAIL a refused .so left a file"; fail=1; }
expect 0 "--target-cpu=x86-64" -- "$kiln" check "$d/bert_qa" --target-cpu=x86-64 --atol 1e-4 --rtol=.001 --threads 1
expect 0 "compile --stats" -- "$kiln" compile "$m" -o "$d/m.so" --stats
tail -1 "$d/out" | /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
assert s["ops_in"]["Softmax"] == 2 and s["ops_in"].get("Constant", 0) > 0 and s["fusions"]["attention"] == 2, s
assert "Softmax" not in s["ops_out"] and s["arena_bytes"] > 0 and s["compile_ms"] > 0, s
' || { echo "FAIL --stats JSON"; fail=1; }

# Strict option values: a bad number is bad usage (exit 2) with one line
# naming the option, never accepted, truncated or wrapped around.
usage() {  # usage DESCRIPTION -- command...
  expect 2 "$@"
  [ "$(wc -l <"$d/err")" -eq 1 ] || { echo "FAIL $1: stderr is not one line"; fail=1; }
}
for bad in abc -1 nan inf 1e999 0x 1e-3x "" " 1"; do
  usage "check --atol='$bad'" -- "$kiln" check "$d/bert_qa" "--atol=$bad"
  usage "check --rtol='$bad'" -- "$kiln" check "$d/bert_qa" "--rtol=$bad"
done
grep -q -- '--rtol' "$d/err" || { echo "FAIL --rtol message does not name the option"; fail=1; }
usage "check --atol without value" -- "$kiln" check "$d/bert_qa" --atol
for bad in 0 -1 257 99999999999999999999 2x 1.5 ""; do
  usage "check --threads='$bad'" -- "$kiln" check "$d/bert_qa" "--threads=$bad"
  usage "run --threads='$bad'" -- "$kiln" run "$d/m.so" --inputs "$d" --outputs "$d/o" "--threads=$bad"
  usage "bench --threads='$bad'" -- "$kiln" bench "$d/m.so" "--threads=$bad"
done
usage "bench --runs 99999999999" -- "$kiln" bench "$d/m.so" --runs 99999999999
grep -q -- '--runs' "$d/err" || { echo "FAIL --runs message does not name the option"; fail=1; }
for opt in --runs --batch --seq --regions --vocab; do
  for bad in 0 -3 abc 12abc 9223372036854775808; do
    usage "bench $opt=$bad" -- "$kiln" bench "$d/m.so" "$opt=$bad"
  done
done
usage "unknown command with ESC and CR LF" -- "$kiln" $'frob\e[2J\r\nx'
grep -q 'frob\\x1b\[2J\\r\\nx' "$d/err" || { echo "FAIL control bytes of an argument not escaped"; fail=1; }
usage "--atol with ESC" -- "$kiln" check "$d/bert_qa" $'--atol=\e]0;x\a'
LC_ALL=C grep -q -P '[\x00-\x09\x0b-\x1f\x7f]' "$d/err" && { echo "FAIL raw control bytes on stderr"; fail=1; }
usage "run --inputs=" -- "$kiln" run "$d/m.so" --inputs= --outputs "$d/o"
usage "-O3" -- "$kiln" compile "$m" -o "$d/x.so" -O3
usage "bad --fpmath" -- "$kiln" compile "$m" -o "$d/x.so" --fpmath=fp8
usage "bad --format" -- "$kiln" dump "$m" --format=svg
expect 0 "bench --runs=2 --vocab=1024" -- "$kiln" bench "$d/m.so" --runs=2 --batch=1 --seq=8 --vocab=1024
# without --vocab: the ids stay below the word table's 1024 rows, which the
# model records; 30522 (BERT's) is out of range for it, and said so
expect 0 "bench without --vocab (the vocabulary from the model)" -- "$kiln" bench "$d/m.so" --runs=2 --batch=1 --seq=64
expect 1 "bench --vocab=30522 on a 1024-row table" -- "$kiln" bench "$d/m.so" --runs=2 --batch=1 --seq=64 --vocab=30522
grep -q "out of range \[0, 1024)" "$d/err" || { echo "FAIL bench --vocab=30522: $(cat "$d/err")"; fail=1; }

# compile must not overwrite its input: -o (or the OUT.h / OUT.weights
# beside it) naming the model by the same path, another path or a link
cp "$m" "$d/orig.onnx"
unchanged() { cmp -s "$1" "$d/orig.onnx" || { echo "FAIL $1 was overwritten"; fail=1; cp "$d/orig.onnx" "$1"; }; }
usage "-o MODEL" -- "$kiln" compile "$m" -o "$m"
unchanged "$m"
usage "-o MODEL (other path)" -- "$kiln" compile "$m" -o "$d/bert_qa/../bert_qa/model.onnx" --emit=obj
unchanged "$m"
ln -f "$m" "$d/hard.onnx" && ln -sf "$(realpath "$m")" "$d/soft.onnx"
usage "-o hard link to MODEL" -- "$kiln" compile "$m" -o "$d/hard.onnx" --emit=llvm
usage "-o symlink to MODEL" -- "$kiln" compile "$m" -o "$d/soft.onnx" --emit=asm
unchanged "$m"
cp "$m" "$d/side.h" && cp "$m" "$d/side.weights"
usage "OUT.h is MODEL" -- "$kiln" compile "$d/side.h" -o "$d/side.so"
cp "$d/side.h" "$d/orig.onnx"; unchanged "$d/side.h"
usage "OUT.weights is MODEL" -- "$kiln" compile "$d/side.weights" -o "$d/side.so" --weights=external
cp "$d/side.weights" "$d/orig.onnx"; unchanged "$d/side.weights"
expect 0 "MODEL.weights beside embedded OUT" -- "$kiln" compile "$d/side.weights" -o "$d/side.so" --emit=obj
# kiln check DIR DIR...: every folder in turn, one result line each (in
# order, after a failure too), exit 1 if any fails; one folder prints no
# such line
cp -r "$d/bert_qa" "$d/wrong" && ls "$d/wrong"/test_data_set_*/output_0.pb >/dev/null 2>&1 || { echo "FAIL copying bert_qa"; fail=1; }
for f in "$d/wrong"/test_data_set_*/output_0.pb; do   # its last float's high bytes: ~3e38
  printf '\x7f\x7f' | dd of="$f" bs=1 seek=$(( $(stat -c %s "$f") - 2 )) conv=notrunc status=none
done
expect 0 "check of two folders" -- "$kiln" check "$d/bert_qa" "$d/bert_qa" -O0
[ "$(grep -c "^$d/bert_qa: ok\$" "$d/out")" = 2 ] && grep -qx 'check: 2 of 2 folders pass' "$d/out" ||
  { echo "FAIL check of two folders: $(tr '\n' ' ' < "$d/out")"; fail=1; }
expect 1 "check of four folders, two failing" -- "$kiln" check "$d/bert_qa" "$d/wrong" "$d/absent" "$d/bert_qa"
got=$(grep -E ': (ok|FAILED)$' "$d/out" | tr '\n' ' ')
want="$d/bert_qa: ok $d/wrong: FAILED $d/absent: FAILED $d/bert_qa: ok "
[ "$got" = "$want" ] && grep -qx 'check: 2 of 4 folders pass' "$d/out" && grep -q "$d/wrong: MISMATCH" "$d/out" &&
  grep -q "absent/model.onnx" "$d/err" || { echo "FAIL check of four folders: '$got' $(tail -n 1 "$d/out") $(head -c 300 "$d/err")"; fail=1; }
expect 1 "check of one wrong folder" -- "$kiln" check "$d/wrong"
grep -qE ': (ok|FAILED)$' "$d/out" && { echo "FAIL one folder printed a batch line: $(tr '\n' ' ' < "$d/out")"; fail=1; }
# --stats, --explain and --print-*: each folder's block under "// ===== DIR
# =====" (its prints, explain lines, the --stats JSON line, its test sets),
# in order, a failing folder's too; the JSON the same as compile --stats'
expect 1 "check --stats --explain --print-after of three folders" -- "$kiln" check "$d/bert_qa" "$d/wrong" "$d/bert_qa" \
  --stats --explain=attention --print-after=dce -O1
got=$(grep '^// ===== ' "$d/out" | tr '\n' ' ')
[ "$got" = "// ===== $d/bert_qa ===== // ===== $d/wrong ===== // ===== $d/bert_qa ===== " ] &&
  [ "$(grep -c '^{"ops_in"' "$d/out")" = 3 ] && [ "$(grep -c '^// ----- IR after dce' "$d/out")" = 6 ] &&
  [ "$(grep -c '^explain attention' "$d/out")" = 6 ] &&
  awk '/^\/\/ ===== /{n++} /^{"ops_in"/{s[n]++} /: (ok|FAILED)$/{r[n]++} END {exit !(n == 3 && s[1] s[2] s[3] == "111" && r[1] r[2] r[3] == "111")}' "$d/out" ||
  { echo "FAIL check --stats blocks: '$got' $(grep -c '^{"ops_in"' "$d/out") JSON lines"; fail=1; }
grep '^{"ops_in"' "$d/out" | head -n 1 | /usr/bin/python3 -c '
import json, sys
s = json.loads(sys.stdin.read())
assert s["ops_in"]["Softmax"] == 2 and "attention" not in s["fusions"] and s["arena_bytes"] > 0, s
' || { echo "FAIL check --stats JSON (-O1: no fusion)"; fail=1; }
expect 0 "check without --stats prints no block" -- "$kiln" check "$d/bert_qa" "$d/bert_qa" -O0
grep -q '^// ===== \|^{"ops_in"' "$d/out" && { echo "FAIL check without --stats printed a block"; fail=1; }
expect 1 "check --print-after=nosuchpass (a folder fails, one line each)" -- "$kiln" check "$d/bert_qa" --print-after=nosuchpass
[ "$(wc -l < "$d/err")" = 1 ] && grep -q "unknown pass 'nosuchpass'" "$d/err" || { echo "FAIL check --print-after=nosuchpass: $(cat "$d/err")"; fail=1; }
usage "check --explain=nosuchpattern" -- "$kiln" check "$d/bert_qa" --explain=nosuchpattern
# kiln dump X.ir --graph=all: every graph of a multi-graph dump in one
# process, each under "// ===== X.ir graph K =====" (ir_roundtrip reads
# every dump back so); a graph that fails is one line on stderr, the others
# still print, exit 1; bad --graph values are bad usage
"$kiln" dump "$m" -O1 --print-after-all > "$d/all.ir" 2>/dev/null
n=$(grep -c '^graph ' "$d/all.ir")
expect 0 "dump --graph=all" -- "$kiln" dump "$d/all.ir" --weights-from="$m" --graph=all --passes=
[ "$n" -gt 2 ] && [ "$(grep -c '^// ===== ' "$d/out")" = "$n" ] && [ "$(grep -c '^graph ' "$d/out")" = "$n" ] &&
  grep -qx "// ===== $d/all.ir graph $n =====" "$d/out" &&
  cmp -s <("$kiln" dump "$d/all.ir" --weights-from="$m" --graph=2 --passes=) \
    <(awk -v h="// ===== $d/all.ir graph 2 =====" '$0 == h {p = 1; next} /^\/\/ ===== /{p = 0} p' "$d/out") ||
  { echo "FAIL dump --graph=all: $n graphs, $(grep -c '^// ===== ' "$d/out") blocks"; fail=1; }
awk '/^graph /{n++} {print} /^graph / && n == 2 {print "  junk"}' "$d/all.ir" > "$d/bad2.ir"
expect 1 "dump --graph=all, graph 2 broken" -- "$kiln" dump "$d/bad2.ir" --weights-from="$m" --graph=all --passes=
[ "$(wc -l < "$d/err")" = 1 ] && grep -q "bad2.ir:[0-9]*:[0-9]*: " "$d/err" && [ "$(grep -c '^graph ' "$d/out")" = $((n - 1)) ] &&
  [ "$(grep -c '^// ===== ' "$d/out")" = "$n" ] || { echo "FAIL dump --graph=all with graph 2 broken: $(head -c 300 "$d/err")"; fail=1; }
expect 1 "dump --graph=all of a missing file" -- "$kiln" dump "$d/absent.ir" --weights-from="$m" --graph=all
[ "$(wc -l < "$d/err")" = 1 ] && [ "$(grep -c '^// ===== ' "$d/out")" = 1 ] || { echo "FAIL dump --graph=all of a missing file: $(cat "$d/err")"; fail=1; }
for bad in 0 -1 1000001 alll All "" " 1" +1 1x; do
  usage "--graph='$bad'" -- "$kiln" dump "$d/all.ir" --weights-from="$m" "--graph=$bad"
  grep -q -- "--graph needs a graph number from 1 to 1000000, or all" "$d/err" || { echo "FAIL --graph='$bad' message: $(cat "$d/err")"; fail=1; }
done
usage "compile --graph=all" -- "$kiln" compile "$d/all.ir" --weights-from="$m" --graph=all -o "$d/g.so"
usage "dump --graph=all of an ONNX model" -- "$kiln" dump "$m" --graph=all
usage "check without a folder" -- "$kiln" check -O2
usage "check --nonsense" -- "$kiln" check "$d/bert_qa" --nonsense
# --target-cpu: checked before compiling (an unknown or 32-bit CPU used to
# abort inside LLVM with exit 134); help lists LLVM's CPUs
usage "--target-cpu=nonsense" -- "$kiln" compile "$m" -o "$d/tc.so" --target-cpu=nonsense
grep -q "not a CPU LLVM knows" "$d/err" || { echo "FAIL --target-cpu=nonsense message: $(cat "$d/err")"; fail=1; }
usage "--target-cpu=pentium4 (32-bit)" -- "$kiln" compile "$m" -o "$d/tc.so" --target-cpu=pentium4
usage "check --target-cpu=nonsense" -- "$kiln" check "$d/bert_qa" --target-cpu=nonsense
usage "--target-cpu=znver3 for aarch64" -- "$kiln" compile "$m" -o "$d/tc.o" --emit=obj --target-triple=aarch64-linux-gnu --target-cpu=znver3
expect 0 "--target-cpu=help" -- "$kiln" compile "$m" -o "$d/tc.so" --target-cpu=help
grep -q "x86-64-v3" "$d/out" || { echo "FAIL --target-cpu=help lists no x86-64-v3"; fail=1; }
[ ! -e "$d/tc.so" ] || { echo "FAIL --target-cpu=help compiled something"; fail=1; }
expect 0 "--target-cpu=x86-64-v2 compiles" -- "$kiln" compile "$m" -o "$d/tc.so" --target-cpu=x86-64-v2
expect 0 "aarch64 --target-cpu=cortex-a72 obj" -- "$kiln" compile "$m" -o "$d/tc.o" --emit=obj --target-triple=aarch64-linux-gnu --target-cpu=cortex-a72
# kiln info: what a compiled model is, as text and JSON
"$kiln" compile "$m" -o "$d/info.so" --fpmath=bf16 --target-cpu=x86-64-v2 --weights=external >/dev/null 2>&1
expect 0 "info" -- "$kiln" info "$d/info.so"
for want in "model bert_qa" "(ABI " "cpu x86-64-v2" "cpu features sse3,ssse3,sse4.1,sse4.2,popcnt" "fpmath bf16" "weights info.weights" "input input_ids i64[batch, sequence]" "output end_logits f32[batch, sequence]"; do
  grep -qF "$want" "$d/out" || { echo "FAIL info lacks '$want'"; fail=1; }
done
expect 0 "info --json" -- "$kiln" info "$d/info.so" --json
/usr/bin/python3 - "$d/out" "$d/info.weights" <<'PY' || fail=1
import json, os, sys
j = json.load(open(sys.argv[1]))
assert j["fpmath"] == "bf16" and j["target_cpu"] == "x86-64-v2", j
assert j["weights_file"] == "info.weights" and j["weights_bytes"] == os.path.getsize(sys.argv[2]), j
assert len(j["weights_hash"]) == 16 and [i["name"] for i in j["inputs"]] == ["input_ids", "attention_mask", "token_type_ids"], j
assert j["outputs"][0]["dims"] == ["batch", "sequence"], j
print("ok   info --json fields")
PY
expect 1 "info on a file that is not a model" -- "$kiln" info "$m"
usage "info without a model" -- "$kiln" info


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
expect 0 "ops Clip" -- "$kiln" ops Clip
grep -q "onnx    1 (clip_v6), 6 (clip_v6), 11, 12, 13" "$d/out" || { echo "FAIL ops Clip: no ONNX versions line: $(cat "$d/out")"; fail=1; }
# the com.microsoft ops the frontend imports (frontend/onnx_contrib.def),
# after kiln's own, with their domain and what each becomes
ncontrib=$(grep -c '^CX(' "$src/frontend/onnx_contrib.def")
expect 0 "ops (contrib)" -- "$kiln" ops
[ "$(grep -c '^com\.microsoft\.[A-Za-z]* (contrib)$' "$d/out")" -eq "$ncontrib" ] ||
  { echo "FAIL kiln ops lists $(grep -c '^com\.microsoft\.' "$d/out") contrib ops, onnx_contrib.def has $ncontrib"; fail=1; }
expect 0 "ops com.microsoft.Attention SkipLayerNormalization LayerNormalization" -- \
  "$kiln" ops com.microsoft.Attention SkipLayerNormalization LayerNormalization
# a bare name is kiln's op when the IR has one (LayerNormalization), else the contrib op
[ "$(grep -c '^[A-Za-z]' "$d/out")" -eq 3 ] && grep -q '^LayerNormalization (' "$d/out" &&
  grep -q '^com\.microsoft\.SkipLayerNormalization (contrib)$' "$d/out" &&
  grep -q 'past (refused): T' "$d/out" && grep -q '^  becomes one KlnGemm' "$d/out" ||
  { echo "FAIL kiln ops com.microsoft.Attention SkipLayerNormalization LayerNormalization"; cat "$d/out"; fail=1; }
expect 2 "ops unknown contrib op" -- "$kiln" ops com.microsoft.Softmax
expect 2 "ops unknown op" -- "$kiln" ops Frobnicate
expect 2 "ops unknown option" -- "$kiln" ops --frob
expect 0 "ops --json" -- "$kiln" ops --json
NOPS=$nops NCONTRIB=$ncontrib /usr/bin/python3 -c '
import json, os, sys
j = json.load(sys.stdin)
ops = {o["name"]: o for o in j["ops"]}
assert len(ops) == int(os.environ["NOPS"]), len(ops)
co = {o["name"]: o for o in j["contrib_ops"]}
assert len(co) == int(os.environ["NCONTRIB"]) and all(o["domain"] == "com.microsoft" for o in co.values()), co.keys()
past = co["Attention"]["inputs"][4]
assert past["name"] == "past" and past["refused"] and past["optional"], past
assert co["FusedGemm"]["becomes"].startswith("ONNX") and co["QuickGelu"]["attributes"][0]["default"] == "1.702", co
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
# dynamo's dim symbols (s0, s1) get readable parameter names in OUT.h, or
# the ones --dim-name gives
/usr/bin/python3 "$src/tests/gen/models.py" "$d" bert_cls_dynamo >/dev/null || exit 1
expect 0 "compile dynamo model" -- "$kiln" compile "$d/bert_cls_dynamo/model.onnx" -o "$d/dyn.so"
grep -q "int64_t batch,\$" "$d/dyn.h" && grep -q "int64_t sequence,\$" "$d/dyn.h" ||
  { echo "FAIL dyn.h: no batch/sequence parameters: $(grep int64_t "$d/dyn.h" | head -5)"; fail=1; }
expect 0 "compile --dim-name" -- "$kiln" compile "$d/bert_cls_dynamo/model.onnx" -o "$d/dyn2.so" --dim-name=s0=b,s1=seq_len
grep -q "int64_t seq_len,\$" "$d/dyn2.h" && grep -q "int64_t b,\$" "$d/dyn2.h" ||
  { echo "FAIL dyn2.h: --dim-name not applied"; fail=1; }
printf '#include "dyn.h"\n#include "dyn2.h"\n' > "$d/dyn_both.c"
cc -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$src/runtime" -I"$d" "$d/dyn_both.c" ||
  { echo "FAIL dyn.h and dyn2.h do not compile together"; fail=1; }
usage "bad --dim-name" -- "$kiln" compile "$m" -o "$d/x.so" --dim-name=s0=1x
usage "bad --dim-name (no =)" -- "$kiln" compile "$m" -o "$d/x.so" --dim-name=s0
# kiln run prints each output's name, dtype, shape and first values
expect 0 "run prints outputs" -- "$kiln" run "$d/info.so" --inputs "$d/bert_qa/test_data_set_0" --outputs "$d/run_out"
grep -Eq '^start_logits f32\[[0-9]+, [0-9]+\]( -?[0-9.e+-]+){6} \.\.\.$' "$d/out" &&
  grep -q '^end_logits f32\[' "$d/out" || { echo "FAIL run output lines: $(head -3 "$d/out")"; fail=1; }

# Outputs are written beside their name and renamed over it: a process that
# has the model loaded keeps running it (its cold weights stay mapped from
# the old OUT.weights, which used to be truncated and rewritten in place:
# SIGBUS or other weights) while the same -o is compiled again, and two
# compiles to one -o at once each leave a whole model (one used to find the
# other's half-linked .so, say "the linker left no output" and delete it).
/usr/bin/python3 "$src/tests/gen/models.py" "$d" ops_zoo >/dev/null || exit 1
zoo="$d/ops_zoo/model.onnx"
expect 0 "compile --weights=external (a loaded model)" -- "$kiln" compile "$m" -o "$d/live.so" --weights=external
rm -f "$d/live.go" "$d/live.ready"
pre=""   # an instrumented libkiln.so needs the sanitizer runtimes first (as python.sh)
grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null &&
  pre="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
LD_PRELOAD="$pre" ASAN_OPTIONS=detect_leaks=0 PYTHONPATH="$src/python" KILN_LIB="$build/libkiln.so" \
  /usr/bin/python3 - "$d" "$d/bert_qa/test_data_set_0" <<'PY' &
import os, sys, time
import numpy as np
import kiln
from onnx import TensorProto, numpy_helper
d, ds = sys.argv[1:]
def pb(p):
    t = TensorProto(); t.ParseFromString(open(p, "rb").read()); return numpy_helper.to_array(t)
m = kiln.load(os.path.join(d, "live.so"))
s = m.session(threads=1)
feeds = {io.name: pb(os.path.join(ds, "input_%d.pb" % k)) for k, io in enumerate(m.inputs)}
want = s.run(None, feeds)
open(os.path.join(d, "live.ready"), "w").close()
for _ in range(600):
    if os.path.exists(os.path.join(d, "live.go")):
        break
    time.sleep(0.1)
got = s.run(None, feeds)
assert all(np.array_equal(a, b) for a, b in zip(got, want)), "outputs changed"
PY
py=$!
for _ in $(seq 600); do [ -e "$d/live.ready" ] && break; sleep 0.1; done
expect 0 "compile another model to the loaded -o" -- "$kiln" compile "$zoo" -o "$d/live.so" --weights=external
touch "$d/live.go"
if wait $py; then echo "ok   a loaded model runs on while its -o is compiled again"
else echo "FAIL a loaded model broke when its -o was compiled again"; fail=1; fi
"$kiln" info "$d/live.so" | grep -q "^model ops_zoo" || { echo "FAIL live.so is not the new model"; fail=1; }
ls "$d" | grep -q 'kiln-tmp' && { echo "FAIL staging files left: $(ls "$d" | grep kiln-tmp)"; fail=1; }
for round in 1 2 3; do
  "$kiln" compile "$m" -o "$d/race.so" --weights=external 2>"$d/race1" & p1=$!
  "$kiln" compile "$zoo" -o "$d/race.so" --weights=external 2>"$d/race2" & p2=$!
  wait $p1; r1=$?; wait $p2; r2=$?
  if [ $r1 != 0 ] || [ $r2 != 0 ] || ! "$kiln" info "$d/race.so" >/dev/null 2>&1; then
    echo "FAIL two compiles to one -o, round $round: exits $r1 $r2: $(cat "$d/race1" "$d/race2")"; fail=1
  fi
done
[ $fail = 0 ] && echo "ok   two compiles to one -o at once: both succeed, a whole model is left"
ln -sf race.so "$d/link.so"
expect 0 "compile to a symlinked -o" -- "$kiln" compile "$m" -o "$d/link.so"
[ -L "$d/link.so" ] && "$kiln" info "$d/race.so" | grep -q "^model bert_qa" ||
  { echo "FAIL -o symlink: replaced the link instead of its target"; fail=1; }
# an -o (or a side file OUT.h, OUT.weights, or a staging file) longer than
# the path limit: one line that says so with a shortened path, no file left
long="$d/$(printf 'p%.0s' $(seq 1 4100)).so"
for w in embed external; do
  expect 1 "-o of 4,100 characters (--weights=$w)" -- "$kiln" compile "$m" -o "$long" --weights=$w
  if [ "$(wc -l <"$d/err")" -ne 1 ] || ! grep -Eq 'path too long \([0-9]+ bytes, limit 4095\)$' "$d/err" ||
     [ "$(wc -c <"$d/err")" -gt 300 ]; then
    echo "FAIL long -o ($w): not one short line: $(head -c 300 "$d/err")"; fail=1
  fi
done
# 4,093 characters: OUT fits, OUT.weights (OUT less .so, plus .weights) does not
# (folders of 200 characters: none longer than a file name may be)
long=$d
while [ ${#long} -lt $((4093 - 3 - 201)) ]; do long="$long/$(printf 'q%.0s' $(seq 1 200))"; done
long="$long/$(printf 'q%.0s' $(seq 1 $((4093 - 3 - ${#long} - 1)))).so"
[ ${#long} -eq 4093 ] || { echo "FAIL long -o of ${#long} characters, not 4093"; fail=1; }
expect 1 "-o whose OUT.weights is too long" -- "$kiln" compile "$m" -o "$long" --weights=external
grep -q 'qqq.weights: path too long' "$d/err" ||
  { echo "FAIL long OUT.weights: $(head -c 300 "$d/err")"; fail=1; }
exit $fail
