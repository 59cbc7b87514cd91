"""The GELU (erf form) fusion test graphs of ONNX Runtime's optimizer tests.

Source: microsoft/onnxruntime, onnxruntime/test/testdata/transform/fusion/
gelu_gen.py at commit 1fa99bd291b6304caaf6afe18b18d5c342ad2de5 (MIT License,
Copyright (c) Microsoft Corporation).  The original is a script with four
switches at the top (has_bias, gelu_use_graph_input, node_has_graph_output,
switch_order) that writes gelu_format2_{0,1}[_with_bias][_use_graph_input]
[_use_graph_output].onnx; ONNX Runtime's GeluFusion tests expect one Gelu
in each, except where the Div is also a graph output.

Rebuilt node for node (names, order, constants including the divisor
1.4142099618911743, opset 10 plus a com.microsoft import) with this
directory's Graph helper; every switch combination the test data uses is
one graph here.  Nothing is changed: the graph has no placeholder weights.

    /usr/bin/python3 tests/gen/foreign/ort_fusion_gelu_gen.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, feeds_for, main  # noqa: E402

F = TensorProto.FLOAT


def gelu_format2(has_bias, use_graph_input, graph_output, switch):
    """x' = x (+ bias); 0.5 * (x' * (erf(x' / 1.41421) + 1)), each binary
    op's operands in the order switch says, between Identity nodes."""
    g = Graph(0)
    x = "input"
    if not use_graph_input:
        g.node("Identity", [x], ["identity_leading"], "identity_leading")
        x = "identity_leading"
    if has_bias:
        g.node("Add", [x, "input_bias"] if switch else ["input_bias", x], ["add0"], "add0_node")
        x = "add0"
    g.node("Div", [x, "mul1_init"], ["div"], "div_node")
    g.node("Erf", ["div"], ["erf"], "erf_node")
    g.node("Add", ["erf", "add1_init"] if switch else ["add1_init", "erf"], ["add1"], "add1")
    g.node("Mul", [x, "add1"] if switch else ["add1", x], ["mul"], "mul_node")
    g.node("Mul", ["mul", "mul3_init"] if switch else ["mul3_init", "mul"], ["mul2"], "mul2_node")
    g.node("Identity", ["mul2"], ["output"], "identity_ending")

    def const(name, v):
        g.inits.append(numpy_helper.from_array(np.asarray(v, np.float32), name))

    if has_bias:
        const("input_bias", 0.01 * np.arange(64))
    const("mul1_init", 1.4142099618911743)
    const("add1_init", 1.0)
    const("mul3_init", 0.5)
    dims = ["batch", "seqlen", 64]
    outs = [("output", F, dims)] + ([("div", F, dims)] if graph_output else [])
    m = g.model("gelu_pattern_2", [("input", F, dims)], outs, 10, extra_opsets=[("com.microsoft", 1)])
    rng = np.random.default_rng(11)
    size = {"batch": 2, "seqlen": 3}
    sets = [feeds_for(m, lambda n, k, d: size.get(d.dim_param, d.dim_value), rng)]
    sets[0]["input"] *= 2
    return m, sets


def _name(has_bias, use_graph_input, graph_output, switch):
    return ("gelu_format2_" + ("0" if switch else "1") + ("_with_bias" if has_bias else "") +
            ("_use_graph_input" if use_graph_input else "") + ("_use_graph_output" if graph_output else ""))


# the combinations in ONNX Runtime's test data (the script's last settings
# first: bias, no graph input, graph output, switched)
COMBOS = [(True, False, True, True), (False, False, False, True), (False, False, False, False),
          (True, False, False, True), (True, False, False, False), (False, True, False, True),
          (True, True, False, False), (False, False, True, False)]
CASES = {_name(*c): (lambda c: lambda: gelu_format2(*c))(c) for c in COMBOS}

if __name__ == "__main__":
    main(sys.argv, CASES)
