"""Bakes the ONNX backend node tests' inputs into their models.

    /usr/bin/python3 tests/gen/node_bake.py SRC_NODE_DIR DST_DIR

For every SRC_NODE_DIR/test_*/ (model.onnx + test_data_set_0/), writes
DST_DIR/test_*/ whose model takes no run-time inputs: each graph input
becomes an initializer holding test_data_set_0's value, so the compiler's
constant folding (`fold`) evaluates the graph at compile time and the
run only copies constants.  The references are the same output_N.pb files.
Tests whose model has several data sets keep only the first.  Prints the
count.
"""
import os
import shutil
import sys

import onnx


def bake(src, dst):
    model = onnx.load(os.path.join(src, "model.onnx"))
    ds = os.path.join(src, "test_data_set_0")
    g = model.graph
    init = {t.name for t in g.initializer}
    runtime = [v for v in g.input if v.name not in init]
    values = []
    for k, v in enumerate(runtime):
        t = onnx.TensorProto()
        with open(os.path.join(ds, "input_%d.pb" % k), "rb") as f:
            t.ParseFromString(f.read())
        t.name = v.name      # as read: numpy would turn bfloat16 into uint16
        want = v.type.tensor_type.elem_type
        if want == onnx.TensorProto.BFLOAT16 and t.data_type == onnx.TensorProto.UINT16:
            t.data_type = want   # onnx 1.12's test data stores bfloat16 as uint16
        values.append(t)
    keep = [v for v in g.input if v.name in init]
    del g.input[:]
    g.input.extend(keep)
    g.initializer.extend(values)
    os.makedirs(os.path.join(dst, "test_data_set_0"), exist_ok=True)
    onnx.save(model, os.path.join(dst, "model.onnx"))
    for name in os.listdir(ds):
        if name.startswith("output_"):
            shutil.copy(os.path.join(ds, name), os.path.join(dst, "test_data_set_0", name))


def main():
    src, dst = sys.argv[1], sys.argv[2]
    n = 0
    for name in sorted(os.listdir(src)):
        if name.startswith("test_") and os.path.isdir(os.path.join(src, name)):
            bake(os.path.join(src, name), os.path.join(dst, name))
            n += 1
    print("baked %d node tests into %s" % (n, dst))


if __name__ == "__main__":
    main()
