#!/usr/bin/env python3
"""Write seed models for the ONNX-loader fuzzer (scripts/fuzz.sh) that reach
the paths random mutation rarely finds: protobuf nesting around the loader's
depth limit (64), and sizes that overflow (dims of 2^31, 2^62, INT64_MAX,
negative) in initializers, graph input shapes, Reshape shape constants and
ConstantOfShape.  Every seed is small (< 64 KB).

usage: make_fuzz_seeds.py DIR
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper

from pbwire import ld, varint

OPSET = 17
BIG = [1 << 31, 1 << 62, (1 << 63) - 1, -1, -(1 << 63), 0]




def small_model(nodes, inits=(), inputs=None, outputs=None):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    g = helper.make_graph(nodes, "seed", inputs or [x], outputs or [y], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])


def i64(name, vals):
    return helper.make_tensor(name, TensorProto.INT64, [len(vals)], vals)


def seeds():
    base = small_model([helper.make_node("Relu", ["x"], ["y"], name="relu")])
    good = base.SerializeToString()
    yield "relu.onnx", good
    # nesting: TypeProto sequences just below, at and above the limit
    for levels in (29, 30, 31, 40, 200):
        t = ld(1, varint(1 << 3) + varint(1))
        for _ in range(levels):
            t = ld(4, ld(1, t))
        yield f"deep_type_{levels}.onnx", good + ld(7, ld(11, ld(1, b"deep") + ld(2, t)))
    for levels in (10, 21, 22, 40, 300):
        n = ld(4, b"Identity")
        for _ in range(levels):
            attr = ld(1, b"body") + varint(20 << 3) + varint(5) + ld(6, ld(1, n))
            n = ld(4, b"Identity") + ld(5, attr)
        yield f"deep_graph_{levels}.onnx", good + ld(7, ld(1, n))
    for k, v in enumerate(BIG):
        # an initializer with a huge dim (no data)
        t = TensorProto()
        t.name, t.data_type = "H", TensorProto.FLOAT
        t.dims.extend([v, 2])
        yield f"init_dim_{k}.onnx", small_model(
            [helper.make_node("Add", ["x", "H"], ["y"], name="add")], [t]).SerializeToString()
        # a graph input shape
        q = helper.make_tensor_value_info("q", TensorProto.FLOAT, [v, 4, "s"])
        yield f"input_dim_{k}.onnx", small_model(
            [helper.make_node("Add", ["x", "q"], ["y"], name="add")],
            inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]), q]
        ).SerializeToString()
        # a Reshape to a huge shape constant
        yield f"reshape_{k}.onnx", small_model(
            [helper.make_node("Reshape", ["x", "shp"], ["y"], name="rs")],
            [i64("shp", [v, 2, -1])]).SerializeToString()
        yield f"reshape2_{k}.onnx", small_model(
            [helper.make_node("Reshape", ["x", "shp"], ["y"], name="rs")],
            [i64("shp", [v, v])]).SerializeToString()
        # ConstantOfShape of a huge shape, then used
        cos = helper.make_node("ConstantOfShape", ["shp"], ["c"], name="cos",
                               value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0]))
        yield f"constofshape_{k}.onnx", small_model(
            [cos, helper.make_node("Add", ["x", "c"], ["y"], name="add")],
            [i64("shp", [v, 4])]).SerializeToString()
        # Expand and Tile by huge counts
        yield f"expand_{k}.onnx", small_model(
            [helper.make_node("Expand", ["x", "shp"], ["y"], name="ex")],
            [i64("shp", [v, 1, 4])]).SerializeToString()
        yield f"tile_{k}.onnx", small_model(
            [helper.make_node("Tile", ["x", "rep"], ["y"], name="tile")],
            [i64("rep", [v, v])]).SerializeToString()
    # a product of dims that overflows only together
    t = TensorProto()
    t.name, t.data_type = "H", TensorProto.FLOAT
    t.dims.extend([1 << 21, 1 << 21, 1 << 21])
    yield "init_product.onnx", small_model(
        [helper.make_node("Add", ["x", "H"], ["y"], name="add")], [t]).SerializeToString()
    t = helper.make_tensor("R", TensorProto.FLOAT, [2, 2],
                           np.arange(4, dtype=np.float32).tobytes(), raw=True)
    t.dims[0] = 1 << 62
    yield "raw_product.onnx", small_model(
        [helper.make_node("Add", ["x", "R"], ["y"], name="add")], [t]).SerializeToString()


def main(d):
    os.makedirs(d, exist_ok=True)
    for name, data in seeds():
        assert len(data) < 65536, name
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1])
