"""Keeps the ONNX backend node tests kiln can take.

    /usr/bin/python3 tests/gen/node_select.py OUTDIR OPS_DEF

OUTDIR holds what onnx's `generate-data` wrote (node/, real/, simple/).
Keeps only OUTDIR/node/test_* whose model has tensor inputs/outputs only
and uses only default-domain ops at opset 1..21 that ops.def lists (kiln's
own K_FUSED ops excluded; Constant is allowed: the frontend folds it into
a constant).  Also left out, as outside kiln's design rather than bugs:
string tensors.  Tests that feed a shape-deciding input (a Reshape or
Expand shape, Range bounds, Slice starts, axes, ...) as a run-time graph
input are kept: kiln computes those shapes at run time (data-dependent
shapes); `--list-data-dependent` prints their names.  Everything else is
deleted.  Prints counts per reason.
"""
import os
import re
import shutil
import sys

import onnx
from onnx import TensorProto

# inputs whose values decide an output shape (data-dependent shapes)
SHAPE_INPUTS = {
    "Reshape": (1,), "Expand": (1,), "Tile": (1,), "ConstantOfShape": (0,),
    "Range": (0, 1, 2), "Slice": (1, 2, 3, 4), "OneHot": (1,),
    "Unsqueeze": (1,), "Squeeze": (1,), "Split": (1,), "Pad": (1, 3), "TopK": (1,),
    "ReduceMean": (1,), "ReduceSum": (1,), "ReduceMax": (1,), "ReduceMin": (1,),
    "ReduceProd": (1,), "ReduceL2": (1,), "ReduceSumSquare": (1,),
}


def kiln_ops(ops_def):
    ops = {"Constant"}
    for line in open(ops_def):
        m = re.match(r"\s*X\(\s*(\w+)\s*,\s*(K_\w+)\s*,", line)
        if m and m.group(2) != "K_FUSED":
            ops.add(m.group(1))
    return ops


def data_dependent(model):
    """Whether a shape-deciding input of a node is computed from run-time
    graph inputs (not only from their shapes)."""
    g = model.graph
    runtime = {v.name for v in g.input} - {t.name for t in g.initializer}
    for n in g.node:
        for k in SHAPE_INPUTS.get(n.op_type, ()):
            if k < len(n.input) and n.input[k] in runtime:
                return True
        # values computed from run-time contents (not via Shape/Size)
        if n.op_type not in ("Shape", "Size") and runtime.intersection(n.input):
            runtime.update(n.output)
    return False


def why_not(model, ops):
    """None if kiln should take the model, else the reason."""
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and not 1 <= imp.version <= 21:
            return "opset outside 1..21"
    if model.functions:
        return "model-local functions"
    g = model.graph
    for v in list(g.input) + list(g.output):
        if not v.type.HasField("tensor_type"):
            return "non-tensor input/output"
        if v.type.tensor_type.elem_type == TensorProto.STRING:
            return "string tensors"
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            return "domain " + n.domain
        if n.op_type not in ops:
            return "op not in ops.def"
        if n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.STRING
                                       for a in n.attribute):
            return "string tensors"
    return None


def main(outdir, ops_def):
    ops = kiln_ops(ops_def)
    for other in ("real", "simple"):
        shutil.rmtree(os.path.join(outdir, other), ignore_errors=True)
    node = os.path.join(outdir, "node")
    kept, total, reasons = 0, 0, {}
    for t in sorted(os.listdir(node)):
        d = os.path.join(node, t)
        total += 1
        why = why_not(onnx.load(os.path.join(d, "model.onnx")), ops)
        if why is None:
            kept += 1
        else:
            reasons[why] = reasons.get(why, 0) + 1
            shutil.rmtree(d)
    for why, n in sorted(reasons.items(), key=lambda r: -r[1]):
        print("  left out %4d: %s" % (n, why))
    print("node tests: selected %d of %d" % (kept, total))


def list_data_dependent(node):
    for t in sorted(os.listdir(node)):
        if data_dependent(onnx.load(os.path.join(node, t, "model.onnx"))):
            print(t)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--list-data-dependent":
        list_data_dependent(sys.argv[2])     # NODE_DIR (the selected tests)
    elif len(sys.argv) == 3:
        main(sys.argv[1], sys.argv[2])
    else:
        sys.exit("usage: node_select.py OUTDIR OPS_DEF | --list-data-dependent NODE_DIR")
