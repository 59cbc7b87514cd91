#!/usr/bin/env bash
# kiln compile --quantize=int8 end to end:
#   - a BERT-like encoder (tests/gen/quant_bert.py: 4 layers, hidden 256,
#     FFN 1024, one padded row) compiled in fp32 and int8 and run by kiln on
#     the same inputs: every one of its 16 KlnGemms became a KlnGemmQ
#     (--stats), the int8 final hidden states have a cosine similarity
#     >= 0.999 to the fp32 ones (overall and for every token), they differ
#     from them (the int8 path ran), and 1 and 2 threads give the same bits;
#   - the shared BERT export (../shared/models/bert-legacy14) the same way on
#     its test inputs, when ../shared is there;
#   - the same encoder in the int8 form of ONNX tools (quantize_dynamic.py):
#     all 24 MatMulIntegers fuse into KlnGemmQ and give the unfused graph's
#     bits, cosine >= 0.995 to fp32 (per-tensor activations: coarser);
#   - --quantize-weight-bits=7 (weights in [-64, 64], the AVX2 u8 x s8
#     kernel where the CPU has no VNNI): all 16 KlnGemmQ carry wbits 7 (none
#     without the option), cosine >= 0.999 to fp32 on quant_bert and the
#     shared BERT, not the 8-bit outputs (the 7-bit weights ran), 1 and 2
#     threads the same bits;
#   - a GEMM whose weights hold a NaN or an infinity stays fp32, with a
#     one-line warning naming it and its weights (no scale quantizes such
#     weights: they once became zeros, silently), and gives the fp32
#     model's bits, NaN and infinities where fp32 has them; the GEMM beside
#     it with finite weights is still quantized;
#   - a bad --quantize value is a usage error (exit 2, one line), as are a
#     bad --quantize-weight-bits and --quantize-weight-bits without
#     --quantize=int8.
#   bash quantize.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
kiln=$1 src=$2 build=$3
d="$build/quantize_test"
rm -rf "$d" && mkdir -p "$d"
py=/usr/bin/python3
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

$py "$src/tests/gen/quant_bert.py" "$d/qb" >/dev/null || { echo "FAIL generating quant_bert"; exit 1; }

# compare DIR_FP32 DIR_INT8 MIN_COS: cosine overall and per token (last axis)
compare() {
	$py - "$1" "$2" "$3" <<'EOF'
import os, sys
import numpy as np
import onnx
from onnx import numpy_helper
a_dir, b_dir, lim = sys.argv[1], sys.argv[2], float(sys.argv[3])
def rd(p):
    t = onnx.TensorProto()
    with open(p, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t).astype(np.float64)
a, b = rd(os.path.join(a_dir, "output_0.pb")), rd(os.path.join(b_dir, "output_0.pb"))
if a.shape != b.shape or not np.isfinite(b).all():
    sys.exit("shape %s vs %s or non-finite int8 output" % (a.shape, b.shape))
cos = float((a * b).sum() / np.linalg.norm(a) / np.linalg.norm(b))
ra, rb = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
tok = (ra * rb).sum(1) / np.linalg.norm(ra, axis=1) / np.linalg.norm(rb, axis=1)
diff = np.abs(a - b).max()
print("cosine %.6f, lowest per token %.6f, max |int8 - fp32| %.3g (scale: max |fp32| %.3g)"
      % (cos, tok.min(), diff, np.abs(a).max()))
sys.exit(0 if cos >= lim and tok.min() >= lim and diff > 1e-4 else 1)
EOF
}

# build MODEL NAME: fp32 and int8 .so, stats of the int8 one
build() {
	"$kiln" compile "$1" -o "$d/$2-fp32.so" >/dev/null 2>"$d/err" || { bad "compile $2 fp32: $(head -3 "$d/err")"; return 1; }
	"$kiln" compile "$1" -o "$d/$2-int8.so" --quantize=int8 --stats >"$d/$2.stats" 2>"$d/err" \
		|| { bad "compile $2 int8: $(head -3 "$d/err")"; return 1; }
	ok "compile $2 fp32 and --quantize=int8"
}

# gemms NAME: KlnGemmQ count and the KlnGemm left, from --stats
gemms() {
	tail -n 1 "$d/$1.stats" | $py -c '
import json, sys
s = json.loads(sys.stdin.read())
print(s["ops_out"].get("KlnGemmQ", 0), s["ops_out"].get("KlnGemm", 0), s["int8_gemms"])'
}

# run NAME INPUTS THREADS TAG
run() {
	mkdir -p "$d/$4"
	"$kiln" run "$d/$1.so" --inputs "$2" --outputs "$d/$4" --threads "$3" >/dev/null 2>"$d/err" \
		|| { bad "run $1: $(head -3 "$d/err")"; return 1; }
}

if build "$d/qb/model.onnx" qb; then
	read -r nq nf ni <<<"$(gemms qb)"
	[ "$nq" = 16 ] && [ "$nf" = 0 ] && [ "$ni" = 16 ] && ok "quant_bert: 16 KlnGemmQ, no KlnGemm left" \
		|| bad "quant_bert: $nq KlnGemmQ, $nf KlnGemm, int8_gemms $ni (wanted 16, 0, 16)"
	run qb-fp32 "$d/qb/in" 2 qb_fp32 && run qb-int8 "$d/qb/in" 2 qb_int8 && run qb-int8 "$d/qb/in" 1 qb_int8_t1
	if r=$(compare "$d/qb_fp32" "$d/qb_int8" 0.999); then ok "quant_bert int8 vs fp32: $r"
	else bad "quant_bert int8 vs fp32 (cosine >= 0.999 overall and per token, and not identical): $r"; fi
	cmp -s "$d/qb_int8/output_0.pb" "$d/qb_int8_t1/output_0.pb" && ok "quant_bert int8: 1 and 2 threads same bits" \
		|| bad "quant_bert int8: 1 and 2 threads differ"
fi

# 7-bit weights: the IR says so (wbits 7 on every KlnGemmQ), the outputs
# stay within the int8 bound of fp32, and they are not the 8-bit ones
if [ -f "$d/qb_int8/output_0.pb" ]; then
	n7=$("$kiln" dump "$d/qb/model.onnx" --quantize=int8 --quantize-weight-bits=7 | grep -c 'KlnGemmQ(.*wbits = 7')
	n8=$("$kiln" dump "$d/qb/model.onnx" --quantize=int8 | grep -c 'wbits')
	[ "$n7" = 16 ] && [ "$n8" = 0 ] && ok "quant_bert 7-bit: 16 KlnGemmQ with wbits 7 (8-bit: none)" \
		|| bad "quant_bert 7-bit: $n7 KlnGemmQ with wbits 7 (wanted 16), $n8 with 8-bit weights (wanted 0)"
	if "$kiln" compile "$d/qb/model.onnx" -o "$d/qb-w7.so" --quantize=int8 --quantize-weight-bits=7 2>"$d/err"; then
		run qb-w7 "$d/qb/in" 2 qb_w7 && run qb-w7 "$d/qb/in" 1 qb_w7_t1
		if r=$(compare "$d/qb_fp32" "$d/qb_w7" 0.999); then ok "quant_bert 7-bit vs fp32: $r"
		else bad "quant_bert 7-bit vs fp32 (cosine >= 0.999 overall and per token): $r"; fi
		cmp -s "$d/qb_w7/output_0.pb" "$d/qb_int8/output_0.pb" && bad "quant_bert: 7-bit outputs are the 8-bit ones" \
			|| ok "quant_bert: 7-bit outputs differ from the 8-bit ones"
		cmp -s "$d/qb_w7/output_0.pb" "$d/qb_w7_t1/output_0.pb" && ok "quant_bert 7-bit: 1 and 2 threads same bits" \
			|| bad "quant_bert 7-bit: 1 and 2 threads differ"
	else
		bad "compile quant_bert 7-bit: $(head -3 "$d/err")"
	fi
fi

# the int8 form ONNX tools write (DynamicQuantizeLinear + MatMulInteger + Cast
# + scale Muls; shared/tools/quantize_dynamic.py, or its copy here when
# ../shared is absent): fuse-qgemm puts every MatMulInteger on KlnGemmQ with
# per-tensor activations, bit for bit what the unfused graph computes
qd="$src/../shared/tools/quantize_dynamic.py"
[ -f "$qd" ] || qd="$(dirname "$src")/shared/tools/quantize_dynamic.py"
if [ -f "$qd" ] && [ -f "$d/qb_fp32/output_0.pb" ]; then
	$py "$qd" "$d/qb" "$d/qb8" >/dev/null || bad "quantize_dynamic.py on quant_bert"
	"$kiln" compile "$d/qb8/model.onnx" -o "$d/qb8.so" --stats >"$d/qb8.stats" 2>"$d/err" \
		&& "$kiln" compile "$d/qb8/model.onnx" -o "$d/qb8-nofuse.so" --disable-pattern=qgemm 2>"$d/err" \
		|| bad "compile the onnx int8 form: $(head -3 "$d/err")"
	n=$(tail -n 1 "$d/qb8.stats" | $py -c 'import json,sys; s=json.loads(sys.stdin.read()); print(s["fusions"].get("qgemm", 0), s["ops_out"].get("MatMulInteger", 0))')
	[ "$n" = "24 0" ] && ok "onnx int8 form: 24 MatMulIntegers fused into KlnGemmQ" || bad "onnx int8 form: qgemm fusions / MatMulIntegers left: $n (wanted 24 0)"
	run qb8 "$d/qb/in" 2 qb8 && run qb8-nofuse "$d/qb/in" 2 qb8_nofuse
	cmp -s "$d/qb8/output_0.pb" "$d/qb8_nofuse/output_0.pb" && ok "onnx int8 form: fused = unfused, bit for bit" \
		|| bad "onnx int8 form: fused and unfused outputs differ"
	if r=$(compare "$d/qb_fp32" "$d/qb8" 0.995); then ok "onnx int8 form vs fp32: $r"
	else bad "onnx int8 form vs fp32 (cosine >= 0.995): $r"; fi
else
	echo "skip the onnx int8 form (no quantize_dynamic.py)"
fi

shared="$src/../shared/models/bert-legacy14"
[ -d "$shared" ] || shared="$(dirname "$src")/shared/models/bert-legacy14"
if [ -f "$shared/model.onnx" ]; then
	if build "$shared/model.onnx" sb; then
		run sb-fp32 "$shared/test_data_set_0" 2 sb_fp32 && run sb-int8 "$shared/test_data_set_0" 2 sb_int8
		if r=$(compare "$d/sb_fp32" "$d/sb_int8" 0.999); then ok "shared bert-legacy14 int8 vs fp32: $r"
		else bad "shared bert-legacy14 int8 vs fp32: $r"; fi
		if "$kiln" compile "$shared/model.onnx" -o "$d/sb-w7.so" --quantize=int8 --quantize-weight-bits=7 2>"$d/err" \
			&& run sb-w7 "$shared/test_data_set_0" 2 sb_w7; then
			if r=$(compare "$d/sb_fp32" "$d/sb_w7" 0.999); then ok "shared bert-legacy14 7-bit vs fp32: $r"
			else bad "shared bert-legacy14 7-bit vs fp32: $r"; fi
		else
			bad "shared bert-legacy14 7-bit: $(head -3 "$d/err")"
		fi
	fi
else
	echo "skip shared BERT (no ../shared)"
fi

# weights with a NaN and an infinity: y1 = x W1 + b1 (W1 not finite), y2 = x W2 + b2
if $py - "$d/nf" <<'EOF'
import os, sys
import numpy as np
from onnx import TensorProto, helper, numpy_helper
out = sys.argv[1]
os.makedirs(out + "/in", exist_ok=True)
rng = np.random.default_rng(7)
w1 = rng.standard_normal((8, 16)).astype(np.float32)
w1[0, 3], w1[1, 5] = np.nan, np.inf
w2 = rng.standard_normal((8, 16)).astype(np.float32)
init = [numpy_helper.from_array(a, n) for a, n in ((w1, "w_bad"), (w2, "w_ok"),
        (np.zeros(16, np.float32), "b1"), (np.ones(16, np.float32), "b2"))]
nodes = [helper.make_node("MatMul", ["x", "w_bad"], ["m1"], name="mm_bad"),
         helper.make_node("Add", ["m1", "b1"], ["y1"], name="gemm_bad"),
         helper.make_node("MatMul", ["x", "w_ok"], ["m2"], name="mm_ok"),
         helper.make_node("Add", ["m2", "b2"], ["y2"], name="gemm_ok")]
g = helper.make_graph(nodes, "nonfinite", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
                      [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["n", 16]) for y in ("y1", "y2")], init)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
with open(out + "/model.onnx", "wb") as f:
    f.write(m.SerializeToString())
x = rng.standard_normal((4, 8)).astype(np.float32)
with open(out + "/in/input_0.pb", "wb") as f:
    f.write(numpy_helper.from_array(x, "x").SerializeToString())
EOF
then
	if build "$d/nf/model.onnx" nf; then
		read -r nq nf ni <<<"$(gemms nf)"
		[ "$nq" = 1 ] && [ "$nf" = 1 ] && ok "non-finite weights: that GEMM stays KlnGemm, the other is KlnGemmQ" \
			|| bad "non-finite weights: $nq KlnGemmQ, $nf KlnGemm (wanted 1 and 1)"
		# the warning: one line naming the GEMM and its weights
		"$kiln" compile "$d/nf/model.onnx" -o "$d/nf-w.so" --quantize=int8 2>"$d/nf.err" >/dev/null
		[ "$(wc -l <"$d/nf.err")" = 1 ] && grep -q "warning: --quantize=int8 left KlnGemm '.*' in fp32: its weights 'w_bad' hold a NaN or an infinity" "$d/nf.err" \
			&& ok "non-finite weights: one warning line: $(cat "$d/nf.err")" || bad "non-finite weights: the warning: $(cat "$d/nf.err")"
		if run nf-fp32 "$d/nf/in" 2 nf_fp32 && run nf-int8 "$d/nf/in" 2 nf_int8; then
			if ! cmp -s "$d/nf_fp32/output_0.pb" "$d/nf_int8/output_0.pb"; then
				bad "non-finite weights: y1 is not the fp32 model's bits"
			elif r=$($py - "$d/nf_fp32" "$d/nf_int8" <<'EOF'
import sys
import numpy as np
import onnx
from onnx import numpy_helper
def rd(p):
    t = onnx.TensorProto()
    with open(p, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)
y1 = rd(sys.argv[1] + "/output_0.pb")
a, b = rd(sys.argv[1] + "/output_1.pb"), rd(sys.argv[2] + "/output_1.pb")
ok = np.isnan(y1[:, 3]).all() and np.isinf(y1[:, 5]).all() and np.isfinite(b).all()
print("y1: NaN in column 3, infinity in column 5; y2 max |int8 - fp32| %.3g" % np.abs(a - b).max())
sys.exit(0 if ok and np.abs(a - b).max() < 0.1 else 1)
EOF
			); then ok "non-finite weights: the fp32 GEMM's bits; $r"
			else bad "non-finite weights: y1 not NaN / infinity where fp32 has them, or y2 not near fp32: $r"; fi
		fi
	fi
else
	bad "generating the non-finite weights model"
fi

"$kiln" compile "$d/qb/model.onnx" -o "$d/x.so" --quantize=int4 >/dev/null 2>"$d/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q -- "--quantize" "$d/err" \
	&& ok "bad --quantize: exit 2, one line" || bad "bad --quantize: exit $rc: $(cat "$d/err")"

"$kiln" compile "$d/qb/model.onnx" -o "$d/x.so" --quantize=int8 --quantize-weight-bits=6 >/dev/null 2>"$d/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q -- "--quantize-weight-bits" "$d/err" \
	&& ok "bad --quantize-weight-bits: exit 2, one line" || bad "bad --quantize-weight-bits: exit $rc: $(cat "$d/err")"
"$kiln" compile "$d/qb/model.onnx" -o "$d/x.so" --quantize-weight-bits=7 >/dev/null 2>"$d/err"; rc=$?
[ $rc -eq 2 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q -- "--quantize=int8" "$d/err" \
	&& ok "--quantize-weight-bits without --quantize=int8: exit 2, one line" \
	|| bad "--quantize-weight-bits without --quantize=int8: exit $rc: $(cat "$d/err")"

[ $fail -eq 0 ] && echo "quantize: all ok" || echo "quantize: FAILED"
exit $fail
