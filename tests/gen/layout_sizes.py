#!/usr/bin/env python3
"""Write one-op models of the layout and elementwise ops the backend emits
inline, each at a small and a large static size, for
tests/scripts/layout_sizes.sh: the LLVM IR of a node must not grow with
its tensor's size (a static Transpose of [2, 2, 128, 32] once became
~20,000 lines), and the results must stay right.

usage: layout_sizes.py DIR

Writes DIR/CASE_SIZE/model.onnx and test_data_set_0/{input,output}_K.pb
(outputs computed here with numpy) for SIZE in s (n = 48) and l (n = 256
or more), and prints the case names, one a line.  Every model takes its
tensors as graph inputs of static shape (nothing folds at compile time).
Needs python3-onnx and numpy.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SIZES = {"s": 48, "l": 256}
ELEM = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.int64): TensorProto.INT64,
        np.dtype(np.int32): TensorProto.INT32, np.dtype(np.uint8): TensorProto.UINT8,
        np.dtype(np.bool_): TensorProto.BOOL}


def i64(name, vals):
    return numpy_helper.from_array(np.asarray(vals, dtype=np.int64), name)


def data(rng, shape, dtype=np.float32):
    if dtype == np.bool_:
        return rng.random(shape) < 0.5
    if np.dtype(dtype).kind in "iu":
        return rng.integers(0, 100, size=shape).astype(dtype)
    return rng.standard_normal(shape).astype(np.float32)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def cases(n, rng):
    """(name, nodes, inputs {name: array}, inits, outputs {name: array})"""
    x4 = data(rng, (2, 2, n, 32))
    yield ("transpose_0213", [helper.make_node("Transpose", ["x"], ["y"], "tr", perm=[0, 2, 1, 3])],
           {"x": x4}, [], {"y": x4.transpose(0, 2, 1, 3)})
    yield ("transpose_0132", [helper.make_node("Transpose", ["x"], ["y"], "tr", perm=[0, 1, 3, 2])],
           {"x": x4}, [], {"y": x4.transpose(0, 1, 3, 2)})
    xi = data(rng, (n, 3, 24), np.int64)
    yield ("transpose_i64", [helper.make_node("Transpose", ["x"], ["y"], "tr", perm=[2, 0, 1])],
           {"x": xi}, [], {"y": xi.transpose(2, 0, 1)})
    xb = data(rng, (4, n, 8), np.uint8)
    yield ("transpose_u8", [helper.make_node("Transpose", ["x"], ["y"], "tr", perm=[1, 2, 0])],
           {"x": xb}, [], {"y": xb.transpose(1, 2, 0)})
    x3 = data(rng, (2, n, 64))
    yield ("slice", [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"], "sl")],
           {"x": x3}, [i64("st", [1, 1]), i64("en", [n - 1, 64]), i64("ax", [1, 2]),
                       i64("sp", [1, 2])], {"y": x3[:, 1:n - 1, 1::2]})
    yield ("slice_neg", [helper.make_node("Slice", ["x", "st", "en", "ax", "sp"], ["y"], "sl")],
           {"x": x3}, [i64("st", [-1]), i64("en", [-n - 1]), i64("ax", [1]), i64("sp", [-3])],
           {"y": x3[:, ::-3, :]})
    a, b = data(rng, (2, n, 32)), data(rng, (2, n, 16))
    yield ("concat", [helper.make_node("Concat", ["a", "b"], ["y"], "cat", axis=2)],
           {"a": a, "b": b}, [], {"y": np.concatenate([a, b], axis=2)})
    yield ("concat_mid", [helper.make_node("Concat", ["a", "a2"], ["y"], "cat", axis=1)],
           {"a": a, "a2": a[:, :3]}, [], {"y": np.concatenate([a, a[:, :3]], axis=1)})
    xs = data(rng, (2, n, 48))
    yield ("split", [helper.make_node("Split", ["x", "parts"], ["y0", "y1"], "sp", axis=2)],
           {"x": xs}, [i64("parts", [32, 16])], {"y0": xs[:, :, :32], "y1": xs[:, :, 32:]})
    xe = data(rng, (1, n, 1))
    yield ("expand", [helper.make_node("Expand", ["x", "shape"], ["y"], "ex")],
           {"x": xe}, [i64("shape", [2, n, 32])], {"y": np.broadcast_to(xe, (2, n, 32)).copy()})
    tab = data(rng, (n, 64))
    ids = rng.integers(-n, n, size=(2, n // 2)).astype(np.int64)
    yield ("gather", [helper.make_node("Gather", ["t", "ids"], ["y"], "ga", axis=0)],
           {"t": tab, "ids": ids}, [], {"y": np.take(tab, ids, axis=0)})
    ids1 = rng.integers(0, 64, size=(n,)).astype(np.int32)
    yield ("gather_ax1", [helper.make_node("Gather", ["t", "ids"], ["y"], "ga", axis=1)],
           {"t": tab, "ids": ids1}, [], {"y": np.take(tab, ids1, axis=1)})
    xt = data(rng, (2, n, 16))
    yield ("tile", [helper.make_node("Tile", ["x", "rep"], ["y"], "ti")],
           {"x": xt}, [i64("rep", [1, 2, 3])], {"y": np.tile(xt, (1, 2, 3))})
    bias = data(rng, (32,))
    x5 = data(rng, (2, n, 32))
    yield ("add_bcast", [helper.make_node("Add", ["x", "b"], ["y"], "add")],
           {"x": x5, "b": bias}, [], {"y": x5 + bias})
    c = data(rng, (n, 1), np.bool_)
    yield ("where", [helper.make_node("Where", ["c", "x", "b"], ["y"], "wh")],
           {"c": c, "x": x5, "b": bias}, [], {"y": np.where(c, x5, bias)})
    yield ("softmax", [helper.make_node("Softmax", ["x"], ["y"], "sm", axis=-1)],
           {"x": x5}, [], {"y": softmax(x5)})
    yield ("reducesum", [helper.make_node("ReduceSum", ["x", "axes"], ["y"], "rs", keepdims=1)],
           {"x": x5}, [i64("axes", [2])], {"y": x5.sum(axis=2, keepdims=True)})


def save(d, name, nodes, inputs, inits, outputs):
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    vi = lambda k, v: helper.make_tensor_value_info(k, ELEM[v.dtype], list(v.shape))
    g = helper.make_graph(nodes, name, [vi(k, v) for k, v in inputs.items()],
                          [vi(k, v) for k, v in outputs.items()], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="kiln-layout-sizes")
    m.ir_version = 8
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for kind, ts in (("input", inputs), ("output", outputs)):
        for k, (tn, v) in enumerate(ts.items()):
            t = numpy_helper.from_array(np.ascontiguousarray(v), tn)
            with open(os.path.join(d, "test_data_set_0", "%s_%d.pb" % (kind, k)), "wb") as f:
                f.write(t.SerializeToString())


def main(out):
    names = []
    for size, n in SIZES.items():
        rng = np.random.default_rng(7)
        for name, nodes, inputs, inits, outputs in cases(n, rng):
            save(os.path.join(out, "%s_%s" % (name, size)), name, nodes, inputs, inits, outputs)
            if size == "s":
                names.append(name)
    print("\n".join(names))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
