#!/usr/bin/env python3
"""Write models whose tensor sizes overflow 64 bits or exceed kiln's size
limit, for tests/scripts/sizes.sh.  All are valid ONNX (onnx.checker).

usage: make_size_models.py DIR

Symbolic (sizes depend on the input's length n, known only at run time):
  expand_sum_K.onnx   x f32[n] -> Shape -> Concat of K copies -> Expand(x)
                      -> ReduceSum: an Expand to [n]*K (n^K elements)
  cos_max.onnx        x f32[n] -> Shape -> Concat of 4 copies ->
                      ConstantOfShape(1.0) -> ReduceMax: [n, n, n, n] of ones
Static (refused at compile time, naming the node):
  static_expand.onnx  Expand(x f32[1], [2^32, 2^32]) -> ReduceSum
  static_cos.onnx     ConstantOfShape([2^31, 2^31]) -> ReduceMax
  static_range.onnx   Range(0, 2^62, 1) (i64) -> ReduceMax -> Add(x i64[])

Also writes DIR/in_N/input_0.pb: x = arange(N) / N as f32, for the N the
script runs with.  Needs python3-onnx and numpy.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17


def save(d, name, nodes, inputs, inits=()):
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [])
    if name == "static_range":
        y = helper.make_tensor_value_info("y", TensorProto.INT64, [])
    g = helper.make_graph(nodes, name, inputs, [y], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="kiln-sizes")
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(d, name + ".onnx"))


def sym_x():
    return helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])


def shape_concat(k):
    """Shape(x) concatenated k times: the target shape [n] * k."""
    return [helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("Concat", ["s"] * k, ["target"], name="concat", axis=0)]


def i64(name, vals):
    return helper.make_tensor(name, TensorProto.INT64, [len(vals)], vals)


def main(d):
    os.makedirs(d, exist_ok=True)
    for k in (2, 3, 4):
        save(d, f"expand_sum_{k}", shape_concat(k) + [
            helper.make_node("Expand", ["x", "target"], ["big"], name="expand"),
            helper.make_node("ReduceSum", ["big"], ["y"], name="sum", keepdims=0)],
            [sym_x()])
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    save(d, "cos_max", shape_concat(4) + [
        helper.make_node("ConstantOfShape", ["target"], ["big"], name="fill", value=one),
        helper.make_node("ReduceMax", ["big"], ["y"], name="max", keepdims=0)],
        [sym_x()])
    x1 = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    save(d, "static_expand", [
        helper.make_node("Expand", ["x", "target"], ["big"], name="expand"),
        helper.make_node("ReduceSum", ["big"], ["y"], name="sum", keepdims=0)],
        [x1], [i64("target", [2**32, 2**32])])
    save(d, "static_cos", [
        helper.make_node("Add", ["x", "x"], ["x2"], name="add"),
        helper.make_node("ConstantOfShape", ["target"], ["big"], name="fill", value=one),
        helper.make_node("Add", ["big", "x2"], ["big2"], name="add2"),
        helper.make_node("ReduceMax", ["big2"], ["y"], name="max", keepdims=0)],
        [x1], [i64("target", [2**31, 2**31])])
    x64 = helper.make_tensor_value_info("x", TensorProto.INT64, [])
    scalar = lambda n, v: helper.make_tensor(n, TensorProto.INT64, [], [v])  # noqa: E731
    save(d, "static_range", [
        helper.make_node("Range", ["start", "limit", "delta"], ["big"], name="range"),
        helper.make_node("ReduceMax", ["big"], ["m"], name="max", keepdims=0),
        helper.make_node("Add", ["m", "x"], ["y"], name="add")],
        [x64], [scalar("start", 0), scalar("limit", 2**62), scalar("delta", 1)])
    for n in (3, 65536):
        os.makedirs(os.path.join(d, f"in_{n}"), exist_ok=True)
        x = (np.arange(n) / n).astype(np.float32)
        with open(os.path.join(d, f"in_{n}", "input_0.pb"), "wb") as f:
            f.write(numpy_helper.from_array(x, "x").SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1])
