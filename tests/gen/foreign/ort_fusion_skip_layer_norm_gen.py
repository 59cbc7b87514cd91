"""The SkipLayerNormalization fusion test graphs of ONNX Runtime's optimizer
tests.

Source: microsoft/onnxruntime, onnxruntime/test/testdata/transform/fusion/
skip_layer_norm_gen.py at commit 01b5909f46552fbdf5d037cacc5533e745b01422
(MIT License, Copyright (c) Microsoft Corporation).  A decomposed
LayerNorm (ReduceMean, two Subs, Pow 2, ReduceMean, Add 1e-12, Sqrt, Div,
gamma * x + beta) over the sum of two inputs and a bias, the three Adds in
three orders (Format1-3); the _partial graphs also send the bias sum to a
Neg (a second user), and skip_layer_norm_format3_no_fusion sends the input
sum there.  ONNX Runtime's SkipLayerNormFusion tests expect one
SkipLayerNormalization in format1-3 and the partial ones (without the
bias), none in no_fusion.

Rebuilt node for node (names, order, constants, shapes [16, 32, 4], the
opset of onnx.helper.make_model: 17 here) with this directory's Graph
helper.  Nothing is changed: gamma, beta and bias are the original's.
The Neg's output is no graph output (as in the original), so it is dead
code.

    /usr/bin/python3 tests/gen/foreign/ort_fusion_skip_layer_norm_gen.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, feeds_for, main  # noqa: E402

F = TensorProto.FLOAT


def skip_layer_norm(fmt, multi_output_add=False):
    g = Graph(0)
    n = g.node
    n("ReduceMean", ["ln_in"], ["rd1_out"], "reduce1", axes=[-1], keepdims=1)
    n("Sub", ["ln_in", "rd1_out"], ["sb1_out"], "sub1")
    n("Sub", ["ln_in", "rd1_out"], ["sb2_out"], "sub2")
    n("Pow", ["sb2_out", "pow_in_2"], ["pow_out"], "pow")
    n("ReduceMean", ["pow_out"], ["rd2_out"], "reduce2", axes=[-1], keepdims=1)
    n("Add", ["rd2_out", "const_e12"], ["add1_out"], "add1")
    n("Sqrt", ["add1_out"], ["sqrt_out"], "sqrt")
    n("Div", ["sb1_out", "sqrt_out"], ["div_out"], "div1")
    n("Mul", ["gamma", "div_out"], ["mul_out"], "mul")
    n("Add", ["mul_out", "beta"], ["C"], "add0")
    g.init("pow_in_2", F, [], [2])
    g.init("const_e12", F, [], [1e-12])
    g.init("gamma", F, [4], [1.0, 2.0, 3.0, 4.0])
    g.init("beta", F, [4], [0.1, 0.2, 0.3, 0.4])
    if fmt == 1:
        n("Add", ["A", "bias"], ["add3_out"], "add3")
        n("Add", ["add3_out", "B"], ["ln_in"], "add2")
    elif fmt == 2:
        n("Add", ["B", "bias"], ["add3_out"], "add3")
        n("Add", ["A", "add3_out"], ["ln_in"], "add2")
    else:
        n("Add", ["A", "B"], ["ln_in"], "add2")
    if fmt in (1, 2):
        g.init("bias", F, [4], [0.1, 0.2, 0.3, 0.4])
    if multi_output_add:
        n("Neg", ["ln_in" if fmt == 3 else "add3_out"], ["neg_out"], "neg")
    dims = [16, 32, 4]
    m = g.model("SkipLayerNorm_format3", [("A", F, dims), ("B", F, dims)], [("C", F, dims)], 17)
    rng = np.random.default_rng(13)
    return m, [feeds_for(m, lambda nm, k, d: d.dim_value, rng)]


CASES = {
    "skip_layer_norm_format1": lambda: skip_layer_norm(1),
    "skip_layer_norm_format2": lambda: skip_layer_norm(2),
    "skip_layer_norm_format3": lambda: skip_layer_norm(3),
    "skip_layer_norm_format1_partial": lambda: skip_layer_norm(1, True),
    "skip_layer_norm_format2_partial": lambda: skip_layer_norm(2, True),
    "skip_layer_norm_format3_no_fusion": lambda: skip_layer_norm(3, True),
}

if __name__ == "__main__":
    main(sys.argv, CASES)
