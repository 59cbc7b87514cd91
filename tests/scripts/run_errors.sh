#!/usr/bin/env bash
# Bad inputs at run time through `kiln run`: each must exit 1 with one line
# naming the input or node, never crash or write outputs.
# usage: run_errors.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
out="$build/run_errors"
rm -rf "$out" && mkdir -p "$out"
/usr/bin/python3 "$src/tests/gen/models.py" "$out" bert_qa >/dev/null || exit 1
"$kiln" compile "$out/bert_qa/model.onnx" -o "$out/m.so" || exit 1

# case NAME EXPECT-REGEX: inputs written by the python snippet on stdin
case_() {
  local name=$1 want=$2 d="$out/$1"
  mkdir -p "$d"
  /usr/bin/python3 - "$d" || { echo "FAIL $name: generator"; fail=1; return; }
  local msg rc
  msg=$("$kiln" run "$out/m.so" --inputs "$d" --outputs "$d/res" 2>&1 >/dev/null)
  rc=$?
  expect_refusal "$name" $rc "$msg" "$want" "$d/res"
}
PRE='import sys, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
def w(k, a): open(f"{d}/input_{k}.pb", "wb").write(numpy_helper.from_array(a).SerializeToString())
'
case_ mask_shorter "attention_mask.*dim 1" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 6), np.int64)); w(2, np.zeros((2, 8), np.int64))"
case_ batch_mismatch "token_type_ids.*dim 0" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((3, 8), np.int64))"
case_ wrong_dtype "input_ids.*(dtype|type)" <<<"$PRE
w(0, np.ones((2, 8), np.int32)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))"
case_ wrong_rank "input_ids.*rank" <<<"$PRE
w(0, np.ones((2, 8, 1), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))"
case_ token_out_of_range "node .*1024 .*of 'input_ids'.*out of range \\[0, 1024\\) of the table 'emb.word'$" <<<"$PRE
a = np.ones((2, 8), np.int64); a[1, 3] = 1024
w(0, a); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))"
case_ negative_token "node .*-5000 .*of 'input_ids'.*out of range" <<<"$PRE
a = np.ones((2, 8), np.int64); a[0, 0] = -5000
w(0, a); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))"
# longer than the position table (bert_qa's 512 rows): said as such,
# naming the position table (not the word table)
case_ longer_than_positions "sequence 600 is longer than the model's 512 positions .*the table 'emb.pos' has 512 rows" <<<"$PRE
w(0, np.ones((1, 600), np.int64)); w(1, np.ones((1, 600), np.int64)); w(2, np.zeros((1, 600), np.int64))"
case_ extra_input "input_3.pb: the model takes 3 inputs" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))
w(3, np.zeros((2, 8), np.int64))"
case_ missing_input "input_2.pb" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64))"
# input files read_inputs would not read: refused, not ignored
case_ negative_input_file "input_-1.pb: the model takes 3 inputs" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))
w(-1, np.zeros((2, 8), np.int64))"
case_ zero_padded_input_file "input_01.pb: the model takes 3 inputs" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))
w('01', np.ones((2, 8), np.int64))"
# run-time values and forms a deployed model meets (redteam): a token type
# past the 2-row table, a position past the table, a batch-0 run is fine
case_ token_type_out_of_range "node .*index 2 .*of 'token_type_ids'.*out of range \\[0, 2\\) of the table 'emb.type'$" <<<"$PRE
t = np.zeros((2, 8), np.int64); t[1, 5] = 2
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, t)"
case_ token_type_negative "node .*index -3 .*of 'token_type_ids'.*out of range \\[0, 2\\)" <<<"$PRE
t = np.zeros((2, 8), np.int64); t[0, 0] = -3
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, t)"
case_ mask_int32 "attention_mask.*(dtype|type)" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int32)); w(2, np.zeros((2, 8), np.int64))"
case_ mask_float "attention_mask.*(dtype|type)" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.float32)); w(2, np.zeros((2, 8), np.int64))"
# the same token ids at -O0, where the Gathers are inline loops and kernels:
# the graph input is named too
"$kiln" compile "$out/bert_qa/model.onnx" -o "$out/m0.so" -O0 || exit 1
for c in token_out_of_range token_type_out_of_range longer_than_positions; do
  msg=$("$kiln" run "$out/m0.so" --inputs "$out/$c" --outputs "$out/$c/res0" 2>&1 >/dev/null); rc=$?
  case $c in
    token_out_of_range) want="of 'input_ids' out of range \[0, 1024\) of table 'emb.word'$" ;;
    token_type_out_of_range) want="of 'token_type_ids' out of range \[0, 2\) of table 'emb.type'$" ;;
    # the Add of the embeddings: the position lookup named by its table
    *) want="input 1 \(rows of 'emb.pos'\) dim 512 does not broadcast to output dim 600" ;;
  esac
  expect_refusal "$c -O0" $rc "$msg" "$want" "$out/$c/res0"
done
d0="$out/batch0" && mkdir -p "$d0"
/usr/bin/python3 - "$d0" <<<"$PRE
for k in range(3): w(k, np.zeros((0, 8), np.int64))" || fail=1
if "$kiln" run "$out/m.so" --inputs "$d0" --outputs "$d0/res" >"$d0/out" 2>&1 && grep -q '^start_logits f32\[0, 8\]' "$d0/out"; then
  echo "ok   batch 0: empty outputs"
else
  echo "FAIL batch 0: $(head -2 "$d0/out")"; fail=1
fi
# --outputs that cannot be a folder: one line, exit 1, said before the run
# (a file there was found after it); a new folder in an existing one is fine
touch "$out/afile"
for o in "$out/afile" "$out/afile/sub" /proc/version "$out/no/such/dir"; do
  msg=$("$kiln" run "$out/m.so" --inputs "$d0" --outputs "$o" 2>&1 >/dev/null); rc=$?
  expect_refusal "--outputs $o" $rc "$msg" "^kiln: $o: (--outputs is not a folder|cannot create folder)" "$o"
done
k=$(realpath "$kiln")
(cd "$out" && "$k" run m.so --inputs batch0 --outputs fresh/ >/dev/null) && [ -d "$out/fresh" ] ||
  { echo "FAIL --outputs fresh/ (a new folder) refused"; fail=1; }

# a dynamo-style export whose inputs each have symbols of their own
# (tests/gen/models.py bert_dynamo_own_syms): both pipelines run it (its
# numpy reference is models.sh's); sizes that disagree at run time are one
# line, exit 1, at -O0 (the Add of the embeddings) and at -O2 (the fused
# embedding, which names both inputs)
own="$out/own"
/usr/bin/python3 "$src/tests/gen/models.py" "$own" bert_dynamo_own_syms >/dev/null || exit 1
for o in -O0 -O2; do
  "$kiln" compile "$own/bert_dynamo_own_syms/model.onnx" -o "$own/m$o.so" $o || exit 1
done
own_case() {   # NAME OPT WANT-REGEX, inputs from the python snippet on stdin
  local d="$own/$1$2" msg rc
  mkdir -p "$d"
  /usr/bin/python3 - "$d" || { echo "FAIL own $1 $2: generator"; fail=1; return; }
  msg=$("$kiln" run "$own/m$2.so" --inputs "$d" --outputs "$d/res" 2>&1 >/dev/null); rc=$?
  expect_refusal "own $1 $2" $rc "$msg" "$3" "$d/res"
}
for o in -O0 -O2; do
  [ $o = -O2 ] && want_b="input_ids.*\[2, 8\].*does not broadcast with.*token_type_ids.*\[3, 8\]" || want_b="dim 3"
  own_case tt_batch $o "$want_b" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((3, 8), np.int64))"
  [ $o = -O2 ] && want_s="token_type_ids.*\[2, 6\].*input_ids.*\[2, 8\]" || want_s="dim 8"
  own_case tt_seq $o "$want_s" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 6), np.int64))"
  [ $o = -O2 ] && want_m="bias \(computed from 'attention_mask'\) dim 0 is 3" || want_m="dim 3"
  own_case mask_batch $o "$want_m" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((3, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))"
done
d1="$own/same" && mkdir -p "$d1"
/usr/bin/python3 - "$d1" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))" || fail=1
"$kiln" run "$own/m-O2.so" --inputs "$d1" --outputs "$d1/res" >/dev/null ||
  { echo "FAIL own: equal sizes refused at -O2"; fail=1; }
# -O2 fuses the embedding and both attentions despite the symbols of their own
ops=$("$kiln" dump "$own/bert_dynamo_own_syms/model.onnx" -O2 2>/dev/null)
if [ "$(grep -c ' = KlnEmbedLayerNorm(' <<<"$ops")" -ne 1 ] || [ "$(grep -c ' = KlnAttention(' <<<"$ops")" -ne 2 ]; then
  echo "FAIL own: -O2 did not fuse the embedding and the 2 attentions"; fail=1
else
  echo "ok   own: -O2 fuses the embedding and the 2 attentions"
fi
# input_ids of batch 1 with token_type_ids of batch 2 is ONNX broadcasting
# in the embeddings' Add: -O2's fused embedding broadcasts as -O0 does
d1="$own/bcast" && mkdir -p "$d1"
/usr/bin/python3 - "$d1" <<<"$PRE
w(0, np.ones((1, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.array([[0] * 8, [1] * 8], np.int64))" || fail=1
for o in -O0 -O2; do
  "$kiln" run "$own/m$o.so" --inputs "$d1" --outputs "$d1/res$o" >/dev/null ||
    { echo "FAIL own bcast: $o refused input_ids [1, 8] with token_type_ids [2, 8]"; fail=1; }
done
if /usr/bin/python3 - "$d1" <<'PY'
import sys, numpy as np, onnx
from onnx import numpy_helper
d = sys.argv[1]
for k in (0, 1):
    a, b = (numpy_helper.to_array(onnx.load_tensor(f"{d}/res{o}/output_{k}.pb")) for o in ("-O0", "-O2"))
    assert a.shape == b.shape and a.shape[0] == (2, 16)[k], (k, a.shape, b.shape)
    assert np.allclose(a, b, atol=1e-4, rtol=1e-3), (k, float(np.abs(a - b).max()))
PY
then echo "ok   own bcast: -O0 and -O2 broadcast input_ids [1, 8] alike"
else echo "FAIL own bcast: -O0 and -O2 differ"; fail=1; fi

# the head splits take [B, S] from Shape(token_type_ids) with the head count
# -1 (tests/gen/models.py bert_dynamo_tt_heads, as the real export): -O2
# assumes the embeddings' broadcast extent is token_type_ids' (checked when
# a run starts) and fuses both attentions; a run that breaks the assumption
# (input_ids of batch 2, token_type_ids of batch 1) is one line naming both
/usr/bin/python3 "$src/tests/gen/models.py" "$own" bert_dynamo_tt_heads >/dev/null || exit 1
st=$("$kiln" compile "$own/bert_dynamo_tt_heads/model.onnx" -o "$own/tth.so" -O2 --stats | tail -1)
if ! grep -q '"attention": 2' <<<"$st"; then
  echo "FAIL tt_heads: -O2 did not fuse the 2 attentions: $st"; fail=1
else
  echo "ok   tt_heads: -O2 fuses the 2 attentions"
fi
d1="$own/tth_b21" && mkdir -p "$d1"
/usr/bin/python3 - "$d1" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((2, 8), np.int64)); w(2, np.zeros((1, 8), np.int64))" || fail=1
msg=$("$kiln" run "$own/tth.so" --inputs "$d1" --outputs "$d1/res" 2>&1 >/dev/null); rc=$?
expect_refusal "tt_heads b21" $rc "$msg" \
  "input sizes disagree: .*is 2 but .*is 1 .*'input_ids' dim 0.*'token_type_ids' dim 0" "$d1/res"
# the assumptions survive the text IR (`assume [a, b] @"node"` lines): a
# model compiled from the -O2 dump checks them too
"$kiln" dump "$own/bert_dynamo_tt_heads/model.onnx" -O2 >"$own/tth.ir" || fail=1
"$kiln" compile "$own/tth.ir" --weights-from="$own/bert_dynamo_tt_heads/model.onnx" -o "$own/tth_ir.so" || fail=1
msg2=$("$kiln" run "$own/tth_ir.so" --inputs "$d1" --outputs "$d1/res" 2>&1 >/dev/null)
if ! grep -q '^  assume \[max(s0, s4), s4\] @' "$own/tth.ir" || [ "${msg2#*.so: }" != "${msg#*.so: }" ]; then
  echo "FAIL tt_heads text IR: $msg2"; fail=1
else
  echo "ok   tt_heads text IR keeps the assumptions"
fi

# the fused attentions' mask is computed from attention_mask (a Cast, an
# Unsqueeze, a Sub, a Mul: tests/gen/models.py bert_qa_own_mask, whose mask
# has a batch symbol of its own): a mask of another batch is one line
# naming attention_mask at -O2 too, not "input 3"
/usr/bin/python3 "$src/tests/gen/models.py" "$own" bert_qa_own_mask >/dev/null || exit 1
for o in -O0 -O2; do
  "$kiln" compile "$own/bert_qa_own_mask/model.onnx" -o "$own/m$o.so" $o || exit 1
  [ $o = -O2 ] && want_m="KlnAttention\): bias \(computed from 'attention_mask'\) dim 0 is 3, expected 1 or 2" ||
    want_m="does not broadcast"
  own_case qa_mask_batch $o "$want_m" <<<"$PRE
w(0, np.ones((2, 8), np.int64)); w(1, np.ones((3, 8), np.int64)); w(2, np.zeros((2, 8), np.int64))"
done

# a model without inputs (its output is an initializer): the message says so
m0="$out/no_inputs"
mkdir -p "$m0/in"
/usr/bin/python3 - "$m0" <<'PY' || { echo "FAIL no_inputs: generator"; fail=1; }
import sys, numpy as np
from onnx import TensorProto, helper, numpy_helper
d = sys.argv[1]
w = numpy_helper.from_array(np.ones(2, np.float32), "w")
g = helper.make_graph([], "noin", [], [helper.make_tensor_value_info("w", TensorProto.FLOAT, [2])], [w])
open(d + "/m.onnx", "wb").write(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
open(d + "/in/input_0.pb", "wb").write(numpy_helper.from_array(np.ones(2, np.float32)).SerializeToString())
PY
"$kiln" compile "$m0/m.onnx" -o "$m0/m.so" || fail=1
msg=$("$kiln" run "$m0/m.so" --inputs "$m0/in" --outputs "$m0/res" 2>&1 >/dev/null)
if [ $? -ne 1 ] || [[ "$msg" != *"input_0.pb: the model takes no inputs" ]]; then
  echo "FAIL no_inputs: $msg"; fail=1
else
  echo "ok   no_inputs: $msg"
fi
rm "$m0/in/input_0.pb"
if ! "$kiln" run "$m0/m.so" --inputs "$m0/in" --outputs "$m0/res" >/dev/null; then
  echo "FAIL no_inputs: the model does not run without input files"; fail=1
fi

# kiln check must not call a wrong output a match: an infinite reference
# (rtol * inf passed any value), int64 values beyond 2^53 (compared as
# doubles), an output_K.pb the model has no output for (ignored)
ck="$out/check"
/usr/bin/python3 - "$ck" <<'PY' || { echo "FAIL check: generator"; fail=1; }
import os, sys, numpy as np
from onnx import TensorProto, helper, numpy_helper
d = sys.argv[1]
def model(name, op, dt, x, refs):
    s = os.path.join(d, name, "test_data_set_0")
    os.makedirs(s, exist_ok=True)
    g = helper.make_graph([helper.make_node(op, ["x"], ["y"], name="n")], name,
                          [helper.make_tensor_value_info("x", dt, [2])],
                          [helper.make_tensor_value_info("y", dt, [2])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    open(os.path.join(d, name, "model.onnx"), "wb").write(m.SerializeToString())
    open(os.path.join(s, "input_0.pb"), "wb").write(numpy_helper.from_array(x).SerializeToString())
    for k, r in enumerate(refs):
        open(os.path.join(s, "output_%d.pb" % k), "wb").write(numpy_helper.from_array(r).SerializeToString())
f32 = lambda *v: np.array(v, np.float32)
model("inf_ref", "Sqrt", TensorProto.FLOAT, f32(1, 4), [f32(np.inf, 2)])
model("neg_inf_ref", "Neg", TensorProto.FLOAT, f32(np.inf, 1), [f32(np.inf, -1)])
big = np.array([2**62, 5], np.int64)
model("int64_exact", "Identity", TensorProto.INT64, big, [big + np.array([1, 0], np.int64)])
model("extra_ref", "Sqrt", TensorProto.FLOAT, f32(1, 4), [f32(1, 2), f32(7)])
model("good", "Sqrt", TensorProto.FLOAT, f32(1, np.inf), [f32(1, np.inf)])
PY
for c in inf_ref neg_inf_ref int64_exact extra_ref; do
  msg=$("$kiln" check "$ck/$c" 2>&1)
  if [ $? -ne 1 ] || ! grep -q "MISMATCH in 1 of 1 test sets" <<<"$msg"; then
    echo "FAIL check_$c: a wrong output passed: $(tail -2 <<<"$msg" | tr '\n' ' ')"; fail=1
  else
    echo "ok   check_$c: $(grep -E 'MISMATCH \(|output_1.pb' <<<"$msg" | head -1)"
  fi
done
grep -q "output_1.pb: the model has 1 output" <<<"$("$kiln" check "$ck/extra_ref" 2>&1)" ||
  { echo "FAIL check_extra_ref: output_1.pb not named"; fail=1; }
"$kiln" check "$ck/good" >/dev/null 2>&1 || { echo "FAIL check_good: [1, inf] does not match itself"; fail=1; }
# more than 64 test sets: every one is checked (64 of them, in readdir
# order, were, and called "all 64 test sets match")
/usr/bin/python3 - "$ck/many" "$ck/good/model.onnx" <<'PY' || { echo "FAIL check_many: generator"; fail=1; }
import os, shutil, sys, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
os.makedirs(d, exist_ok=True)
shutil.copy(sys.argv[2], d)
for i in range(70):
    s = os.path.join(d, "test_data_set_%d" % i)
    os.makedirs(s, exist_ok=True)
    for name, v in (("input_0.pb", [1, 4]), ("output_0.pb", [1, 2 if i != 67 else 3])):
        open(os.path.join(s, name), "wb").write(numpy_helper.from_array(np.array(v, np.float32)).SerializeToString())
PY
msg=$("$kiln" check "$ck/many" 2>&1)
if [ $? -ne 1 ] || ! grep -q "MISMATCH in 1 of 70 test sets" <<<"$msg"; then
  echo "FAIL check_many: $(tail -1 <<<"$msg")"; fail=1
else
  echo "ok   check_many: $(tail -1 <<<"$msg")"
fi
exit $((fail > 0))
