"""A long chain of elementwise ops, for compile-time scaling and for the
backend's split of kiln__run into chunks.

    /usr/bin/python3 tests/gen/chain.py OUTDIR N [--late-input K]

writes OUTDIR/model.onnx: x (f32 [batch, 64]) -> Add(c_0) -> Relu ->
Add(c_1) -> Relu ... with N ops in all (N/2 Adds, each with its own
constant c_i of shape [64], alternating signs so the Relus matter), and
OUTDIR/test_data_set_0 (batch 3) with the output computed in numpy
(float64, from the math, not from the graph).

--late-input K: op K (an Add, counted from 0) adds a second graph input y
(f32 [rows, 64], its own symbol) instead of a constant; the test data has
rows == batch.  Run with rows != batch, the broadcast check of that late op
fails at run time.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

WIDTH = 64


def consts(n_add):
    rng = np.random.default_rng(7)
    # alternating mean sign keeps the activations from dying or growing
    return [(rng.standard_normal(WIDTH) * 0.5 + (0.3 if i % 2 == 0 else -0.2)).astype(np.float32)
            for i in range(n_add)]


def build(n, late):
    cs = consts((n + 1) // 2)
    nodes, inits, cur = [], [], "x"
    for k in range(n):
        out = "y" if k == n - 1 else "h%d" % k
        if k % 2 == 0:
            other = "in_y" if k == late else "c%d" % (k // 2)
            if k != late:
                inits.append(numpy_helper.from_array(cs[k // 2], other))
            nodes.append(helper.make_node("Add", [cur, other], [out], name="add_%d" % k))
        else:
            nodes.append(helper.make_node("Relu", [cur], [out], name="relu_%d" % k))
        cur = out
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", WIDTH])]
    if late >= 0:
        inputs.append(helper.make_tensor_value_info("in_y", TensorProto.FLOAT, ["rows", WIDTH]))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", WIDTH])]
    g = helper.make_graph(nodes, "chain%d" % n, inputs, outputs, inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m, cs


def reference(x, y, n, late, cs):
    h = x.astype(np.float64)
    for k in range(n):
        if k % 2 == 0:
            h = h + (y.astype(np.float64) if k == late else cs[k // 2].astype(np.float64))
        else:
            h = np.maximum(h, 0.0)
    return h.astype(np.float32)


def save(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def main(argv):
    args = argv[1:]
    late = -1
    if "--late-input" in args:
        i = args.index("--late-input")
        late = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit("usage: chain.py OUTDIR N [--late-input K]")
    outdir, n = args[0], int(args[1])
    if n < 1 or (late >= 0 and (late >= n or late % 2)):
        sys.exit("chain.py: N >= 1; K < N and even (an Add)")
    m, cs = build(n, late)
    os.makedirs(outdir, exist_ok=True)
    onnx.save(m, os.path.join(outdir, "model.onnx"))
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, WIDTH)).astype(np.float32)
    y = rng.standard_normal((3, WIDTH)).astype(np.float32)
    sd = os.path.join(outdir, "test_data_set_0")
    os.makedirs(sd, exist_ok=True)
    save(os.path.join(sd, "input_0.pb"), x, "x")
    if late >= 0:
        save(os.path.join(sd, "input_1.pb"), y, "in_y")
    save(os.path.join(sd, "output_0.pb"), reference(x, y, n, late, cs), "y")
    print("chain: %d ops%s" % (n, ", input in_y at op %d" % late if late >= 0 else ""))


if __name__ == "__main__":
    main(sys.argv)
