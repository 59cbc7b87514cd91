#!/usr/bin/env python3
"""Write DIR/fifo_external.onnx for tests/scripts/hangs.sh: a one-node model
whose initializer's external data file, DIR/w.bin, is a FIFO (opening it
for reading would wait for a writer forever); and DIR/wide_concat.onnx: one
Concat of 100,000 graph inputs, each [s_k] with its own symbol (the loader
searched the symbols one by one and copied the list of inputs for each
input: minutes and 7 GB; shape inference refuses the sum of 100,000
symbols in one line); and DIR/wide_outputs.onnx: 100,000 graph outputs,
each an Identity of the one input (dce, cse and cleanup searched the
outputs for every node: 57 s).

usage: make_hang_inputs.py DIR
"""
import os
import sys

import onnx
from onnx import TensorProto, helper


def main(d):
    os.makedirs(d, exist_ok=True)
    W = TensorProto()
    W.name, W.data_type = "W", TensorProto.FLOAT
    W.dims.extend([4])
    W.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "0"), ("length", "16")):
        e = W.external_data.add()
        e.key, e.value = k, v
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])
    g = helper.make_graph([helper.make_node("Add", ["x", "W"], ["y"], name="add")],
                          "fifo", [x], [y], [W])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with open(os.path.join(d, "fifo_external.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    n = 100000
    ins = [helper.make_tensor_value_info("x%d" % k, TensorProto.FLOAT, ["s%d" % k]) for k in range(n)]
    cat = helper.make_node("Concat", ["x%d" % k for k in range(n)], ["c"], axis=0, name="cat")
    g = helper.make_graph([cat], "wide", ins, [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with open(os.path.join(d, "wide_concat.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    ids = [helper.make_node("Identity", ["x"], ["y%d" % k], name="id%d" % k) for k in range(n)]
    g = helper.make_graph(ids, "outs", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                          [helper.make_tensor_value_info("y%d" % k, TensorProto.FLOAT, ["n"]) for k in range(n)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    with open(os.path.join(d, "wide_outputs.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    fifo = os.path.join(d, "w.bin")
    if os.path.lexists(fifo):
        os.unlink(fifo)
    os.mkfifo(fifo)


if __name__ == "__main__":
    main(sys.argv[1])
