"""Keeps the ONNX backend node tests kiln can take.

    /usr/bin/python3 tests/gen/node_select.py OUTDIR OPS_DEF

OUTDIR holds what onnx's `generate-data` wrote (node/, real/, simple/).
Keeps only OUTDIR/node/test_* whose model has tensor inputs/outputs only
and uses only default-domain ops at opset <= 21 that ops.def lists
(kiln's own K_FUSED ops excluded; Constant is allowed: the frontend folds
it into a constant).  Everything else is deleted.  Prints the count.
"""
import os
import re
import shutil
import sys

import onnx


def kiln_ops(ops_def):
    ops = {"Constant"}
    for line in open(ops_def):
        m = re.match(r"\s*X\(\s*(\w+)\s*,.*,\s*(K_\w+)\s*\)", line)
        if m and m.group(2) != "K_FUSED":
            ops.add(m.group(1))
    return ops


def why_not(model, ops):
    """None if kiln should take the model, else the reason."""
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx") and imp.version > 21:
            return "opset %d" % imp.version
    if model.functions:
        return "model-local functions"
    g = model.graph
    for v in list(g.input) + list(g.output):
        if not v.type.HasField("tensor_type"):
            return "non-tensor input/output " + v.name
    for n in g.node:
        if n.domain not in ("", "ai.onnx"):
            return "domain " + n.domain
        if n.op_type not in ops:
            return "op " + n.op_type
    return None


def main(outdir, ops_def):
    ops = kiln_ops(ops_def)
    for other in ("real", "simple"):
        shutil.rmtree(os.path.join(outdir, other), ignore_errors=True)
    node = os.path.join(outdir, "node")
    kept = 0
    total = 0
    for t in sorted(os.listdir(node)):
        d = os.path.join(node, t)
        total += 1
        if why_not(onnx.load(os.path.join(d, "model.onnx")), ops) is None:
            kept += 1
        else:
            shutil.rmtree(d)
    print("node tests: selected %d of %d (%d kiln ops)" % (kept, total, len(ops) - 1))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: node_select.py OUTDIR OPS_DEF")
    main(sys.argv[1], sys.argv[2])
