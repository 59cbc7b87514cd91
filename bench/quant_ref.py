#!/usr/bin/env python3
"""quant_ref.py SRC_DIR DST_DIR BITS: a reference for kiln compile
--quantize=int8 (BITS 8) or --quantize=int8 --quantize-weight-bits=7 (BITS
7) that involves no kiln code: the model of SRC_DIR (model.onnx + its
weights, as bench/bench.sh prepares them under bench/out) written to
DST_DIR as an fp32 ONNX graph in which every MatMul / Gemm with a 2-D f32
initializer weight W (kiln's quantized GEMMs) computes with kiln's
quantization (runtime/gemm_int8.h): W rounded per output column,
symmetric, qmax 127 (or 64 for BITS 7), ties to even; its activation A
rounded per row as ops (uint8 asymmetric: s = (max(0, max A) - min(0, min
A)) / 255, zp = rne(-min / s), q = clamp(rne(A * (1/s)) + zp, 0, 255), A'
= (q - zp) s).  Run it with ONNX Runtime (bench/ort_run.mjs) on the same
inputs as kiln and compare both with io.py accuracy: kiln's integer sums
are exact, this graph's fp32 ones are not, and a rounding that flips at a
.5 boundary in one layer moves the next, so the two agree to a cosine of
~0.9999, not bit for bit; what the quantization itself costs against fp32
is what this graph's outputs show.  /usr/bin/python3 (Debian's onnx)."""
import os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper

src, dst, bits = sys.argv[1], sys.argv[2], int(sys.argv[3])
qmax = 64.0 if bits == 7 else 127.0
m = onnx.load(os.path.join(src, "model.onnx"))
g = m.graph
inits = {t.name: t for t in g.initializer}
new_nodes, new_inits, cnt = [], [], 0
c = lambda name, v: new_inits.append(numpy_helper.from_array(np.array(v, np.float32), name))
c("fq_zero", 0.0); c("fq_255", 255.0); c("fq_one", 1.0)
for n in g.node:
    wname = n.input[1] if len(n.input) > 1 else None
    ok = n.op_type in ("MatMul", "Gemm") and wname in inits and len(inits[wname].dims) == 2
    if ok and n.op_type == "Gemm":
        at = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        ok = not at.get("transA", 0)
        tb = at.get("transB", 0)
    else:
        tb = 0
    if not ok:
        new_nodes.append(n); continue
    W = numpy_helper.to_array(inits[wname]).astype(np.float32)
    Wk = W.T if tb else W                      # [K, N]
    mx = np.abs(Wk).max(axis=0)
    s = np.where(mx > 0, mx / np.float32(qmax), np.float32(1)).astype(np.float32)
    q = np.clip(np.rint(Wk / s), -qmax, qmax)
    Wd = (q * s).astype(np.float32)
    wn = f"fq_w{cnt}"
    new_inits.append(numpy_helper.from_array(Wd.T.copy() if tb else Wd, wn))
    a, p = n.input[0], f"fq{cnt}_"
    N = lambda op, ins, outs, **kw: new_nodes.append(helper.make_node(op, ins, outs, **kw))
    N("ReduceMin", [a], [p+"mn0"], axes=[-1], keepdims=1)
    N("ReduceMax", [a], [p+"mx0"], axes=[-1], keepdims=1)
    N("Min", [p+"mn0", "fq_zero"], [p+"mn"])
    N("Max", [p+"mx0", "fq_zero"], [p+"mx"])
    N("Sub", [p+"mx", p+"mn"], [p+"rg"])
    N("Div", [p+"rg", "fq_255"], [p+"s0"])
    # all-zero row: s = 1 (kiln), nothing changes
    N("Equal", [p+"s0", "fq_zero"], [p+"z"])
    N("Where", [p+"z", "fq_one", p+"s0"], [p+"s"])
    N("Div", ["fq_one", p+"s"], [p+"inv"])
    N("Neg", [p+"mn"], [p+"nmn"])
    N("Mul", [p+"nmn", p+"inv"], [p+"zp0"])
    N("Round", [p+"zp0"], [p+"zp1"])
    N("Clip", [p+"zp1", "fq_zero", "fq_255"], [p+"zp"])
    N("Mul", [a, p+"inv"], [p+"x"])
    N("Round", [p+"x"], [p+"xr"])
    N("Add", [p+"xr", p+"zp"], [p+"xz"])
    N("Clip", [p+"xz", "fq_zero", "fq_255"], [p+"q"])
    N("Sub", [p+"q", p+"zp"], [p+"qc"])
    N("Mul", [p+"qc", p+"s"], [p+"aq"])
    ins = [p+"aq", wn] + list(n.input[2:])
    new_nodes.append(helper.make_node(n.op_type, ins, list(n.output), name=n.name, **{a.name: helper.get_attribute_value(a) for a in n.attribute}))
    cnt += 1
del g.node[:]
g.node.extend(new_nodes)
g.initializer.extend(new_inits)
used = {i for nd in g.node for i in nd.input}
keep = [t for t in g.initializer if t.name in used]
del g.initializer[:]
g.initializer.extend(keep)
os.makedirs(dst, exist_ok=True)
onnx.save(m, os.path.join(dst, "model.onnx"), save_as_external_data=True, location="weights.bin")
print(f"{cnt} GEMMs fake-quantized to {bits}-bit weights")
