"""The tanh-GELU (FastGelu) fusion test graphs of ONNX Runtime's optimizer
tests, first form.

Source: microsoft/onnxruntime, onnxruntime/test/testdata/transform/fusion/
fast_gelu.py at commit 324ced572a117797328a31e155f874ad8119b48f (MIT
License, Copyright (c) Microsoft Corporation).  The original is a script
with two switches (has_bias, gelu_use_graph_input) writing
fast_gelu[_with_bias][_use_graph_input].onnx; ONNX Runtime's FastGeluFusion
tests expect one FastGelu in each.  The form:
x * 0.5 * (1 + tanh(0.79788 * x * (1 + 0.044715 * x * x))), the cube
written as x * (0.044715 * x), both constants float32-rounded.

Rebuilt node for node (names, order, constants, opset 10 plus a
com.microsoft import) with this directory's Graph helper; each switch
combination is one graph.  Nothing is changed.

    /usr/bin/python3 tests/gen/foreign/ort_fusion_fast_gelu.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, feeds_for, main  # noqa: E402

F = TensorProto.FLOAT


def const(g, name, v):
    g.inits.append(numpy_helper.from_array(np.asarray(v, np.float32), name))


def fast_gelu(has_bias, use_graph_input):
    g = Graph(0)
    x = "input"
    if not use_graph_input:
        g.node("Identity", [x], ["identity_leading"], "identity_leading")
        x = "identity_leading"
    if has_bias:
        g.node("Add", [x, "input_bias"], ["add0"], "add0")
        x = "add0"
    g.node("Mul", [x, "mul1_init"], ["mul1"], "mul1")
    g.node("Mul", [x, "mul1"], ["mul2"], "mul2")
    g.node("Add", ["mul2", "add1_init"], ["add1"], "add1")
    g.node("Mul", [x, "mul2_init"], ["mul3"], "mul3")
    g.node("Mul", ["mul3", "add1"], ["mul4"], "mul4")
    g.node("Tanh", ["mul4"], ["tanh"], "tanh")
    g.node("Add", ["tanh", "add2_init"], ["add2"], "add2")
    g.node("Mul", [x, "mul3_init"], ["mul5"], "mul5")
    g.node("Mul", ["mul5", "add2"], ["mul6"], "mul6")
    g.node("Identity", ["mul6"], ["output"], "identity_ending")
    if has_bias:
        const(g, "input_bias", 0.01 * np.arange(64))
    const(g, "mul1_init", 0.044714998453855515)
    const(g, "add1_init", 1.0)
    const(g, "mul2_init", 0.7978845834732056)
    const(g, "add2_init", 1.0)
    const(g, "mul3_init", 0.5)
    return _model(g)


def _model(g):
    dims = ["batch", "seqlen", 64]
    m = g.model("test-model", [("input", F, dims)], [("output", F, dims)], 10,
                extra_opsets=[("com.microsoft", 1)])
    rng = np.random.default_rng(12)
    size = {"batch": 2, "seqlen": 3}
    sets = [feeds_for(m, lambda n, k, d: size.get(d.dim_param, d.dim_value), rng)]
    sets[0]["input"] *= 2
    return m, sets


CASES = {}
for _b in (False, True):
    for _i in (False, True):
        CASES["fast_gelu" + ("_with_bias" if _b else "") + ("_use_graph_input" if _i else "")] = \
            (lambda b, i: lambda: fast_gelu(b, i))(_b, _i)

if __name__ == "__main__":
    main(sys.argv, CASES)
