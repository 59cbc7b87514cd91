"""The tanh-GELU (FastGelu) fusion test graphs of ONNX Runtime's optimizer
tests, second form (OpenAI GPT's).

Source: microsoft/onnxruntime, onnxruntime/test/testdata/transform/fusion/
fast_gelu2.py at commit 13ad4150d89463de107d3872f5e0734b05ffcfb8 (MIT
License, Copyright (c) Microsoft Corporation).  The original is a script
with two switches (has_bias, gelu_use_graph_input) writing
fast_gelu2[_with_bias][_use_graph_input].onnx; ONNX Runtime's
FastGeluFusion tests expect one FastGelu in each.  The form:
x * 0.5 * (1 + tanh(0.79788 * (x + 0.044715 * Pow(x, 3)))).

Rebuilt node for node (names, order, constants, opset 10 plus a
com.microsoft import) with this directory's Graph helper; each switch
combination is one graph.  Nothing is changed.

    /usr/bin/python3 tests/gen/foreign/ort_fusion_fast_gelu2.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, main  # noqa: E402
from ort_fusion_fast_gelu import _model, const  # noqa: E402


def fast_gelu2(has_bias, use_graph_input):
    g = Graph(0)
    x = "input"
    if not use_graph_input:
        g.node("Identity", [x], ["identity_leading"], "identity_leading")
        x = "identity_leading"
    if has_bias:
        g.node("Add", [x, "input_bias"], ["add0"], "add0")
        x = "add0"
    g.node("Pow", [x, "pow_init"], ["pow1"], "pow1")
    g.node("Mul", ["pow1", "mul1_init"], ["mul1"], "mul1")
    g.node("Add", [x, "mul1"], ["add1"], "add1")
    g.node("Mul", ["add1", "mul2_init"], ["mul2"], "mul2")
    g.node("Tanh", ["mul2"], ["tanh"], "tanh")
    g.node("Add", ["tanh", "add2_init"], ["add2"], "add2")
    g.node("Mul", [x, "mul3_init"], ["mul5"], "mul5")
    g.node("Mul", ["mul5", "add2"], ["mul6"], "mul6")
    g.node("Identity", ["mul6"], ["output"], "ending_identity")
    if has_bias:
        const(g, "input_bias", 0.01 * np.arange(64))
    const(g, "pow_init", 3)
    const(g, "mul1_init", 0.044714998453855515)
    const(g, "mul2_init", 0.7978845834732056)
    const(g, "add2_init", 1.0)
    const(g, "mul3_init", 0.5)
    return _model(g)


CASES = {}
for _b in (False, True):
    for _i in (False, True):
        CASES["fast_gelu2" + ("_with_bias" if _b else "") + ("_use_graph_input" if _i else "")] = \
            (lambda b, i: lambda: fast_gelu2(b, i))(_b, _i)

if __name__ == "__main__":
    main(sys.argv, CASES)
