#!/usr/bin/env python3
"""Benchmark helpers (Debian's python3-onnx, python3-numpy).

  io.py inputs MODEL BATCH SEQ REGIONS DIR [LO..HI]   write DIR/input_K.pb: the
        inputs shared/tools/ort_bench.mjs and `kiln bench` synthesize; with
        LO..HI the masks' rows have real lengths spread evenly from LO to HI
        (right padding), as `kiln bench --lengths LO..HI`
  io.py compare KILN_DIR ORT_DIR [ATOL RTOL [IN_DIR]] worst |kiln - ort| per
        output; exit 1 beyond ATOL + RTOL*|ort| (default 1e-4, 1e-3); with
        IN_DIR, outputs [batch, seq, ...] are compared where IN_DIR's
        attention_mask is 1 only (kiln --remove-padding: zeros at padding)
  io.py accuracy DIR REF_DIR                  max |out - ref| and the lowest
        cosine similarity over the outputs (reduced precision against fp32)
  io.py flops MODEL BATCH SEQ REGIONS [LO..HI]  GFLOP of the MatMul/Gemm/Einsum
        nodes at that shape (what the GFLOP/s column counts); with LO..HI
        scaled by the share of real tokens (the work a padding-free run does,
        counting attention as linear in the tokens: a slight overcount)
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper, shape_inference


def lengths(spec, batch, seq):
    """Real lengths spread evenly over LO..HI (row 0 LO, the last HI)."""
    lo, hi = (int(x) for x in spec.split(".."))
    if not 1 <= lo <= hi <= seq:
        sys.exit(f"lengths {spec}: need 1 <= LO <= HI <= {seq}")
    return [lo + (hi - lo) * b // (batch - 1) if batch > 1 else hi for b in range(batch)]


def input_arrays(model, batch, seq, regions, spec=None):
    """The values of ort_bench.mjs, by input name."""
    m = onnx.load(model, load_external_data=False)
    inits = {t.name for t in m.graph.initializer}
    out = []
    for inp in m.graph.input:
        if inp.name in inits:
            continue
        tt = inp.type.tensor_type
        name = inp.name
        if "ids" in name or "mask" in name:
            n = batch * seq
            i = np.arange(n, dtype=np.int64)
            if name == "input_ids":
                a = 100 + (i * 7919) % 20000
            elif name == "attention_mask":
                a = np.ones(n, np.int64)
                if spec:
                    lens = np.array(lengths(spec, batch, seq))
                    a = (np.arange(seq)[None] < lens[:, None]).astype(np.int64).ravel()
            else:
                a = (i % seq >= seq / 2).astype(np.int64)
            out.append((name, a.reshape(batch, seq)))
        else:
            dims = []
            for k, d in enumerate(tt.shape.dim):
                if d.HasField("dim_value") and d.dim_value > 0:
                    dims.append(d.dim_value)
                else:
                    dims.append([batch, regions][k] if k < 2 else seq)
            n = int(np.prod(dims))
            i = np.arange(n, dtype=np.uint64)
            a = ((i * np.uint64(2654435761)) % np.uint64(1000)).astype(np.float32) / 1000
            out.append((name, a.reshape(dims)))
    return out


def cmd_inputs(model, batch, seq, regions, d, spec=None):
    os.makedirs(d, exist_ok=True)
    for k, (name, a) in enumerate(input_arrays(model, int(batch), int(seq), int(regions), spec)):
        with open(os.path.join(d, f"input_{k}.pb"), "wb") as f:
            f.write(numpy_helper.from_array(a, name).SerializeToString())


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def real_mask(indir):
    """IN_DIR's attention_mask as bools, or None."""
    k = 0
    while os.path.exists(os.path.join(indir, f"input_{k}.pb")):
        t = onnx.TensorProto()
        with open(os.path.join(indir, f"input_{k}.pb"), "rb") as f:
            t.ParseFromString(f.read())
        if t.name == "attention_mask":
            return numpy_helper.to_array(t) != 0
        k += 1
    return None


def cmd_compare(kdir, odir, atol="1e-4", rtol="1e-3", indir=None):
    atol, rtol = float(atol), float(rtol)
    mask = real_mask(indir) if indir else None
    bad = 0
    k = 0
    while os.path.exists(os.path.join(odir, f"output_{k}.pb")):
        ref = load_pb(os.path.join(odir, f"output_{k}.pb"))
        got = load_pb(os.path.join(kdir, f"output_{k}.pb"))
        if got.shape != ref.shape:
            print(f"output {k}: shape {got.shape} vs {ref.shape}")
            bad += 1
        else:
            err = np.abs(got.astype(np.float64) - ref)
            if mask is not None and ref.ndim >= 2 and ref.shape[:2] == mask.shape:
                err = np.where(mask.reshape(mask.shape + (1,) * (ref.ndim - 2)), err, 0.0)
            ok = bool((err <= atol + rtol * np.abs(ref)).all())
            print(f"output {k}: max abs {err.max():.3g} {'ok' if ok else 'MISMATCH'}")
            bad += not ok
        k += 1
    sys.exit(1 if bad or k == 0 else 0)


def cmd_accuracy(d, rdir):
    worst, cos = 0.0, 1.0
    k = 0
    while os.path.exists(os.path.join(rdir, f"output_{k}.pb")):
        ref = load_pb(os.path.join(rdir, f"output_{k}.pb")).astype(np.float64).ravel()
        got = load_pb(os.path.join(d, f"output_{k}.pb")).astype(np.float64).ravel()
        worst = max(worst, float(np.abs(got - ref).max()) if ref.size else 0.0)
        den = np.linalg.norm(got) * np.linalg.norm(ref)
        cos = min(cos, float(got @ ref / den) if den > 0 else float(np.array_equal(got, ref)))
        k += 1
    print(f"{worst:.3g} {cos:.6f}")


def cmd_flops(model, batch, seq, regions, spec=None):
    """Fixes the input dims in a copy of the model, lets kiln infer every
    shape (`kiln dump -O0`), and counts 2*M*N*K for MatMul and Gemm."""
    import re
    import subprocess
    kiln = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "kiln")
    m = onnx.load(model, load_external_data=False)
    arrays = dict(input_arrays(model, int(batch), int(seq), int(regions)))
    for inp in m.graph.input:
        if inp.name in arrays:
            for d, v in zip(inp.type.tensor_type.shape.dim, arrays[inp.name].shape):
                d.Clear()
                d.dim_value = v
    fixed = os.path.join(os.path.dirname(os.path.abspath(model)), "model_fixed_dims.onnx")
    onnx.save(m, fixed)
    text = subprocess.run([kiln, "dump", "-O0", fixed], check=True, capture_output=True,
                          text=True).stdout
    os.unlink(fixed)
    shapes, total = {}, 0
    val = r'%("(?:[^"\\]|\\.)*"|[A-Za-z0-9_.:]+)'
    typ = r'[a-z0-9]+\[([0-9, ]*)\]'
    dims = lambda t: [int(x) for x in t.split(",") if x.strip()]
    for line in text.splitlines():
        for name, d in re.findall(val + r'(?::| = const) ' + typ, line):  # inputs, constants
            shapes[name] = dims(d)
        node = re.match(r'\s*' + val + r' = (\w+)\((.*)\)(?: \{.*\})? : ' + typ, line)
        if not node:
            continue
        out, op, args, d = node.groups()
        shapes[out] = dims(d)
        a = re.match(val, args)
        if op in ("MatMul", "Gemm") and a and shapes.get(a.group(1)):
            ash = shapes[a.group(1)]
            k = ash[0] if op == "Gemm" and "transA = 1" in line else ash[-1]
            total += 2 * int(np.prod(shapes[out])) * k
    if spec:
        total *= sum(lengths(spec, int(batch), int(seq))) / (int(batch) * int(seq))
    print(f"{total / 1e9:.3f}")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"inputs": cmd_inputs, "compare": cmd_compare, "accuracy": cmd_accuracy,
     "flops": cmd_flops}[cmd](*args)
