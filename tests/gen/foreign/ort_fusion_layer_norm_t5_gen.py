"""The SimplifiedLayerNormalization (T5's RMSNorm) fusion test graphs of
ONNX Runtime's optimizer tests.

Source: microsoft/onnxruntime, onnxruntime/test/testdata/transform/fusion/
layer_norm_t5_gen.py at commit 028558d62c1289127aa41d0dfcc5b0e8a3d7cd47
(MIT License, Copyright (c) Microsoft Corporation).  x / sqrt(mean(x^2) +
1e-12) * gamma, written with Pow 2, ReduceMean, Add, Sqrt, Div, Mul
(gamma first); the _with_casts graph takes and returns float16, computes
in float32 between two Casts, and lists the Casts after the nodes that
read them (an unsorted graph).  ONNX Runtime's tests expect one
SimplifiedLayerNormalization in each.

Rebuilt node for node (names, order, constants, shapes [16, 32, 4], opset
12 plus a com.microsoft import) with this directory's Graph helper.
Nothing is changed.

    /usr/bin/python3 tests/gen/foreign/ort_fusion_layer_norm_t5_gen.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, main  # noqa: E402

F, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def layer_norm_t5(has_casts=False):
    g = Graph(0)
    a = "cast_A" if has_casts else "A"
    g.node("Pow", [a, "pow_in_2"], ["pow_out"], "pow")
    g.node("ReduceMean", ["pow_out"], ["rd2_out"], "reduce", axes=[-1], keepdims=1)
    g.node("Add", ["rd2_out", "const_e12"], ["add1_out"], "add")
    g.node("Sqrt", ["add1_out"], ["sqrt_out"], "sqrt")
    g.node("Div", [a, "sqrt_out"], ["div_out"], "div")
    g.node("Mul", ["gamma", "cast_div_out" if has_casts else "div_out"], ["C"], "mul")
    if has_casts:
        g.node("Cast", ["A"], ["cast_A"], "cast A", to=1)
        g.node("Cast", ["div_out"], ["cast_div_out"], "cast_2", to=10)
    t = F16 if has_casts else F
    g.init("pow_in_2", F, [], [2])
    g.init("const_e12", F, [], [1e-12])
    g.init("gamma", t, [4], [1, 2, 3, 4])
    dims = [16, 32, 4]
    m = g.model("SimplifiedLayerNorm", [("A", t, dims)], [("C", t, dims)], 12,
                extra_opsets=[("com.microsoft", 1)])
    rng = np.random.default_rng(14)
    x = rng.normal(0, 1, dims).astype(np.float16 if has_casts else np.float32)
    return m, [{"A": x}]


CASES = {
    "layer_norm_t5": lambda: layer_norm_t5(),
    "simplified_layer_norm_with_casts": lambda: layer_norm_t5(True),
}

if __name__ == "__main__":
    main(sys.argv, CASES)
