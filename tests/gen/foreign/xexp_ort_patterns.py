"""The ONNX Runtime fusion pattern tests of experimental-experiment (the
torch-to-ONNX exporter and graph optimizer of sdpython): small graphs
written with onnx.helper that its optimizer rewrites into com.microsoft
ops (FusedMatMul, SimplifiedLayerNormalization, SoftmaxGrad, BiasGelu,
Gelu, BiasSoftmax, FusedConv, QuickGelu, SkipLayerNormalization, ...).

Source: sdpython/experimental-experiment, _unittests/ut_xoptim/
test_graph_pattern_optimization_ort.py at commit
027426f843d75942519f37fa31eb5a383ad393b7 (MIT License, "Copyright (c)
2023-2024" in its LICENSE.txt).  Each graph below is the model a test method
builds (named after the method; methods looping over switches give one
graph per combination), rebuilt node for node: names, attributes,
initializers, declared shapes, opsets and IR version as in the original.
The feeds are the original's (its _range: arange(n) / n), the references
come from tests/gen/npref.py instead of onnxruntime.

Kept as in the original, though kiln may refuse them: com.microsoft
FusedMatMul nodes (fused_matmul_div, fused_matmul_both_div_2x, whose
output is declared [2, 2, 32, 64] while it is [2, 2, 4, 4],
fused_matmul_transpose), the shape of gather_grad's ConstantOfShape given
as a graph input, Conv (fused_conv).  Left out: the tests that load a model
file (bug_fused.onnx, layernorm.onnx), test_bias_gelu_with_conflict (the
same graph as test_bias_gelu) and test_skip_simplified_layer_normalization
(a com.microsoft op only).  rotary_embedding is a test the original skips
("optimizer not ready"); its graph is valid and kept.  The _std twins of
the FusedMatMul graphs write each FusedMatMul with standard ops.

    /usr/bin/python3 tests/gen/foreign/xexp_ort_patterns.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import main  # noqa: E402

TFLOAT = TensorProto.FLOAT
MS = [oh.make_opsetid("", 18), oh.make_opsetid("com.microsoft", 1)]
STD = [oh.make_opsetid("", 18)]


def _range(*shape, bias=None):
    n = np.prod(shape)
    x = np.arange(n).astype(np.float32) / n
    if bias:
        x = x + bias
    return x.reshape(tuple(shape)).astype(np.float32)


def _model(nodes, inputs, outputs, inits=(), opsets=MS):
    return oh.make_model(oh.make_graph(nodes, "dummy", inputs, outputs, list(inits)),
                         opset_imports=opsets, ir_version=9)


def fused_matmul(side):
    left = side == "left"
    m = _model(
        [oh.make_node("Transpose", ["X"], ["xm1"], perm=[0, 1, 3, 2]),
         oh.make_node("MatMul", ["xm1", "Y"] if left else ["Y", "xm1"], ["Z"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 128, 32] if left else [2, 2, 32, 128]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 128, 64] if left else [2, 2, 64, 128])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 2, 32, 64] if left else [2, 2, 64, 32])])
    feeds = ({"X": _range(2, 2, 128, 32), "Y": _range(2, 2, 128, 64)} if left
             else {"X": _range(2, 2, 32, 128), "Y": _range(2, 2, 64, 128)})
    return m, [feeds]


def fused_matmul_both():
    m = _model(
        [oh.make_node("Transpose", ["X"], ["xm1"], perm=[0, 1, 3, 2]),
         oh.make_node("Transpose", ["Y"], ["ym1"], perm=[0, 1, 3, 2]),
         oh.make_node("MatMul", ["xm1", "ym1"], ["Z"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 128, 32]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 64, 128])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 2, 32, 64]),
         oh.make_tensor_value_info("xm1", TFLOAT, [2, 2, 32, 128]),
         oh.make_tensor_value_info("ym1", TFLOAT, [2, 2, 128, 64])])
    return m, [{"X": _range(2, 2, 128, 32), "Y": _range(2, 2, 64, 128)}]


def fused_matmul_both_div():
    m = _model(
        [oh.make_node("Transpose", ["X"], ["xm1"], perm=[0, 1, 3, 2]),
         oh.make_node("Transpose", ["Y"], ["ym1"], perm=[0, 1, 3, 2]),
         oh.make_node("MatMul", ["xm1", "ym1"], ["zd"]),
         oh.make_node("Div", ["zd", "deux"], ["Z"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 128, 32]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 64, 128])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 2, 32, 64])],
        [onh.from_array(np.array([2], dtype=np.float32), name="deux")])
    return m, [{"X": _range(2, 2, 128, 32), "Y": _range(2, 2, 64, 128)}]


def fused_matmul_div():
    m = _model(
        [oh.make_node("FusedMatMul", ["X", "Y"], ["zd"], domain="com.microsoft", alpha=1.3),
         oh.make_node("Div", ["zd", "deux"], ["Z"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 32, 128]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 128, 64])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 2, 32, 64])],
        [onh.from_array(np.array([2], dtype=np.float32), name="deux")])
    return m, [{"X": _range(2, 2, 32, 128), "Y": _range(2, 2, 128, 64)}]


def fused_matmul_both_div_2x():
    m = _model(
        [oh.make_node("Div", ["X", "deux"], ["half"]),
         oh.make_node("FusedMatMul", ["half", "X"], ["x1"], transA=1, alpha=50.1,
                      domain="com.microsoft"),
         oh.make_node("FusedMatMul", ["X", "half"], ["x2"], transA=1, alpha=0.07,
                      domain="com.microsoft"),
         oh.make_node("Add", ["x1", "x2"], ["Z"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 4, 4]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 4, 4])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 2, 32, 64])],
        [onh.from_array(np.array([2], dtype=np.float32), name="deux")])
    return m, [{"X": _range(2, 2, 4, 4), "Y": _range(2, 2, 4, 4)}]


def fused_matmul_transpose():
    m = _model(
        [oh.make_node("FusedMatMul", ["X", "Y"], ["xy"], transA=1, transB=1, alpha=50.1,
                      domain="com.microsoft"),
         oh.make_node("Transpose", ["xy"], ["Z"], perm=[0, 1, 3, 2])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 6, 3]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 5, 6])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 2, None, None])],
        [onh.from_array(np.array([2], dtype=np.float32), name="deux")])
    return m, [{"X": _range(2, 2, 6, 3), "Y": _range(2, 2, 5, 6)}]


def std_fused_matmul(case):
    """The _std twin of a FusedMatMul graph: each com.microsoft FusedMatMul
    (alpha * op(A) @ op(B), transA/transB transposing the last two axes)
    written with Transpose, MatMul and Mul as ONNX Runtime defines it; the
    rest (declared shapes included) as in the original."""
    model, feeds = case()
    nodes = []
    for nd in model.graph.node:
        if nd.op_type != "FusedMatMul":
            nodes.append(nd)
            continue
        at = {a.name: oh.get_attribute_value(a) for a in nd.attribute}
        ins = list(nd.input)
        for k, t in enumerate(("transA", "transB")):
            if at.get(t, 0):
                nodes.append(oh.make_node("Transpose", [ins[k]], [nd.output[0] + "_" + t],
                                          perm=[0, 1, 3, 2]))
                ins[k] = nd.output[0] + "_" + t
        alpha = nd.output[0] + "_alpha"
        model.graph.initializer.append(onh.from_array(np.array(at.get("alpha", 1.0), np.float32), alpha))
        nodes.append(oh.make_node("MatMul", ins, [nd.output[0] + "_mm"]))
        nodes.append(oh.make_node("Mul", [nd.output[0] + "_mm", alpha], [nd.output[0]]))
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model, feeds


def simplified_layer_normalization(div, dyn, output):
    """get_simplified_layer_normalization_model[_output]: RMSNorm without a
    weight, 1/std as Div(1, .) or Reciprocal; the _output form also returns
    that 1/std (Z)."""
    inv = "Z" if output else "xi"
    m = _model(
        [oh.make_node("Pow", ["X", "exp"], ["x2"]),
         oh.make_node("ReduceMean", ["x2", "axis"], ["xr"]),
         oh.make_node("Add", ["xr", "eps"], ["xa"]),
         oh.make_node("Sqrt", ["xa"], ["xq"]),
         (oh.make_node("Div", ["one", "xq"], [inv]) if div
          else oh.make_node("Reciprocal", ["xq"], [inv])),
         oh.make_node("Mul", [inv, "X"], ["Y"])],
        [oh.make_tensor_value_info("X", TFLOAT, ["a", "D" if dyn else 4])],
        [oh.make_tensor_value_info("Y", TFLOAT, ["a", "D" if dyn else 4])] +
        ([oh.make_tensor_value_info("Z", TFLOAT, ["a", 1])] if output else []),
        [onh.from_array(np.array([2], dtype=np.float32), name="exp"),
         onh.from_array(np.array([9.999999974752427e-7], dtype=np.float32), name="eps"),
         onh.from_array(np.array([-1], dtype=np.int64), name="axis"),
         onh.from_array(np.array([1], dtype=np.float32), name="one")],
        opsets=STD)
    return m, [{"X": np.arange(20).reshape((5, 4)).astype(np.float32)}]


def softmax_grad():
    m = _model(
        [oh.make_node("Mul", ["dY", "Y"], ["mul"]),
         oh.make_node("ReduceSum", ["mul", "axis"], ["red"]),
         oh.make_node("Mul", ["red", "Y"], ["scaled"]),
         oh.make_node("Sub", ["mul", "scaled"], ["Z"])],
        [oh.make_tensor_value_info("dY", TFLOAT, [2, 3]),
         oh.make_tensor_value_info("Y", TFLOAT, [2, 3])],
        [oh.make_tensor_value_info("Z", TFLOAT, [2, 3])],
        [onh.from_array(np.array([-1], dtype=np.int64), name="axis")],
        opsets=STD)
    return m, [{"dY": _range(2, 3), "Y": _range(2, 3)}]


def gather_grad():
    m = _model(
        [oh.make_node("ConstantOfShape", ["shape"], ["cst"],
                      value=onh.from_array(np.array([0], dtype=np.float32))),
         oh.make_node("ScatterND", ["cst", "indices", "updates"], ["Z"], reduction="add")],
        [oh.make_tensor_value_info("shape", TensorProto.INT64, [None]),
         oh.make_tensor_value_info("indices", TensorProto.INT64, [None, None]),
         oh.make_tensor_value_info("updates", TFLOAT, [None, None, None])],
        [oh.make_tensor_value_info("Z", TFLOAT, [None, None, None])],
        opsets=STD)
    return m, [{"shape": np.array([5, 6], dtype=np.int64),
                "indices": np.array([[0], [1], [2]], dtype=np.int64),
                "updates": np.arange(18).reshape((3, 6)).astype(np.float32)}]


def bias_gelu():
    """Erf GELU after a bias Add, sqrt(2) written 1.4140625 (bfloat16's)."""
    m = _model(
        [oh.make_node("Add", ["X", "B"], ["xb"]),
         oh.make_node("Div", ["xb", "sq2"], ["xbinv"]),
         oh.make_node("Erf", ["xbinv"], ["xerf"]),
         oh.make_node("Add", ["xerf", "one"], ["xerf1"]),
         oh.make_node("Mul", ["xb", "xerf1"], ["y2"]),
         oh.make_node("Mul", ["y2", "half"], ["Y"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 4, 8])],
        [oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 4, 8])],
        [onh.from_array(np.array([1], dtype=np.float32), name="one"),
         onh.from_array(np.array([0.5], dtype=np.float32), name="half"),
         onh.from_array(np.array([1.4140625], dtype=np.float32), name="sq2"),
         onh.from_array(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, -0.4, -0.1], dtype=np.float32),
                        name="B")])
    return m, [{"X": _range(2, 2, 4, 8)}]


def gelu_erf():
    m = _model(
        [oh.make_node("Div", ["X", "sq2"], ["xd"]),
         oh.make_node("Erf", ["xd"], ["exd"]),
         oh.make_node("Add", ["exd", "one"], ["aexd"]),
         oh.make_node("Mul", ["X", "aexd"], ["y2"]),
         oh.make_node("Mul", ["half", "y2"], ["Y"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 2, 4, 8])],
        [oh.make_tensor_value_info("Y", TFLOAT, [2, 2, 4, 8])],
        [onh.from_array(np.array([1.4140625], dtype=np.float32), name="sq2"),
         onh.from_array(np.array([1], dtype=np.float32), name="one"),
         onh.from_array(np.array([0.5], dtype=np.float32), name="half")])
    return m, [{"X": _range(2, 2, 4, 8)}]


def bias_softmax():
    m = _model(
        [oh.make_node("Add", ["X", "Y"], ["xy"]),
         oh.make_node("Softmax", ["xy"], ["Z"], axis=-1)],
        [oh.make_tensor_value_info("X", TFLOAT, [16, 8, 4, 8]),
         oh.make_tensor_value_info("Y", TFLOAT, [16, 1, 4, 8])],
        [oh.make_tensor_value_info("Z", TFLOAT, [16, 8, 4, 8])])
    return m, [{"X": _range(16, 8, 4, 8), "Y": _range(16, 1, 4, 8)}]


def fused_conv():
    m = _model(
        [oh.make_node("Conv", ["X", "W", "B"], ["c"], dilations=[1, 1], group=1,
                      pads=[1, 1, 1, 1], strides=[1, 1]),
         oh.make_node("Relu", ["c"], ["Y"])],
        [oh.make_tensor_value_info("X", TFLOAT, [1, 8, 6, 6]),
         oh.make_tensor_value_info("W", TFLOAT, [8, 8, 3, 3]),
         oh.make_tensor_value_info("B", TFLOAT, [8])],
        [oh.make_tensor_value_info("Y", TFLOAT, [1, 8, 6, 6])],
        opsets=STD)
    return m, [{"X": _range(1, 8, 6, 6), "W": _range(8, 8, 3, 3), "B": _range(8)}]


def quick_gelu():
    m = _model(
        [oh.make_node("Sigmoid", ["X"], ["S"]),
         oh.make_node("Mul", ["X", "S"], ["Y"])],
        [oh.make_tensor_value_info("X", TFLOAT, [1, 8, 6, 6])],
        [oh.make_tensor_value_info("Y", TFLOAT, [1, 8, 6, 6])],
        opsets=STD)
    return m, [{"X": _range(1, 8, 6, 6)}]


def skip_layer_normalization():
    """test_skip_layer_noramlization (sic): Add then LayerNormalization,
    the sum an output too, scale and bias graph inputs."""
    m = _model(
        [oh.make_node("Add", ["X1", "X2"], ["add"]),
         oh.make_node("LayerNormalization", ["add", "scale", "bias"], ["Y"], axis=-1)],
        [oh.make_tensor_value_info("X1", TFLOAT, ["a", "b", "c"]),
         oh.make_tensor_value_info("X2", TFLOAT, ["a", "b", "c"]),
         oh.make_tensor_value_info("scale", TFLOAT, ["c"]),
         oh.make_tensor_value_info("bias", TFLOAT, ["c"])],
        [oh.make_tensor_value_info("add", TFLOAT, ["a", "b", "c"]),
         oh.make_tensor_value_info("Y", TFLOAT, ["a", "b", "c"])],
        opsets=STD)
    return m, [{"X1": _range(8, 3, 32), "X2": _range(8, 3, 32),
                "scale": _range(32), "bias": _range(32)}]


def reshape_gemm(transB):
    m = _model(
        [oh.make_node("Reshape", ["A", "shape"], ["xr"]),
         oh.make_node("Gemm", ["xr", "B"], ["Y"], transB=transB)],
        [oh.make_tensor_value_info("A", TFLOAT, ["a", "b", 8]),
         oh.make_tensor_value_info("B", TFLOAT, [4, 8] if transB else [8, 4])],
        [oh.make_tensor_value_info("Y", TFLOAT, ["f", "g"])],
        [onh.from_array(np.array([-1, 8], dtype=np.int64), name="shape")],
        opsets=STD)
    return m, [{"A": _range(2, 3, 8), "B": _range(*([4, 8] if transB else [8, 4]))}]


def transpose_matmul_b():
    m = _model(
        [oh.make_node("Transpose", ["B"], ["xr"], perm=[0, 2, 3, 1]),
         oh.make_node("MatMul", ["A", "xr"], ["Y"])],
        [oh.make_tensor_value_info("A", TFLOAT, ["a", "b", "c", "d"]),
         oh.make_tensor_value_info("B", TFLOAT, ["i", "j", "k", "l"])],
        [oh.make_tensor_value_info("Y", TFLOAT, ["m", "n", "o", "p"])],
        opsets=STD)
    return m, [{"A": _range(2, 3, 8, 7), "B": _range(2, 8, 3, 7)}]


def rotary_embedding():
    m = _model(
        [oh.make_node("Transpose", ["X"], ["xt"], perm=[0, 2, 1, 3]),
         oh.make_node("Split", ["xt"], ["s1", "s2"], num_outputs=2, axis=-1),
         oh.make_node("Neg", ["s2"], ["ns2"]),
         oh.make_node("Concat", ["ns2", "s1"], ["conc"], axis=-1),
         oh.make_node("Mul", ["xt", "cos"], ["xcos"], name="mx"),
         oh.make_node("Mul", ["conc", "sin"], ["ysin"], name="my"),
         oh.make_node("Add", ["xcos", "ysin"], ["Y"])],
        [oh.make_tensor_value_info("X", TFLOAT, [2, 8, 3, 32]),
         oh.make_tensor_value_info("cos", TFLOAT, [1, 3, 1, 32]),
         oh.make_tensor_value_info("sin", TFLOAT, [1, 3, 1, 32])],
        [oh.make_tensor_value_info("Y", TFLOAT, [2, 3, 8, 32])],
        opsets=STD)
    return m, [{"X": _range(2, 8, 3, 32), "cos": _range(1, 3, 1, 32),
                "sin": _range(1, 3, 1, 32)}]


CASES = {
    "fused_matmul_left": lambda: fused_matmul("left"),
    "fused_matmul_right": lambda: fused_matmul("right"),
    "fused_matmul_both": fused_matmul_both,
    "fused_matmul_both_div": fused_matmul_both_div,
    "fused_matmul_div": fused_matmul_div,
    "fused_matmul_both_div_2x": fused_matmul_both_div_2x,
    "fused_matmul_transpose": fused_matmul_transpose,
    "fused_matmul_div_std": lambda: std_fused_matmul(fused_matmul_div),
    "fused_matmul_both_div_2x_std": lambda: std_fused_matmul(fused_matmul_both_div_2x),
    "fused_matmul_transpose_std": lambda: std_fused_matmul(fused_matmul_transpose),
    "softmax_grad": softmax_grad,
    "gather_grad": gather_grad,
    "bias_gelu": bias_gelu,
    "gelu_erf": gelu_erf,
    "bias_softmax": bias_softmax,
    "fused_conv": fused_conv,
    "quick_gelu": quick_gelu,
    "skip_layer_normalization": skip_layer_normalization,
    "reshape_gemm_transb0": lambda: reshape_gemm(0),
    "reshape_gemm_transb1": lambda: reshape_gemm(1),
    "transpose_matmul_b": transpose_matmul_b,
    "rotary_embedding": rotary_embedding,
}
for _out in (False, True):
    for _div in (False, True):
        for _dyn in (False, True):
            CASES["simplified_layer_normalization%s_%s%s" % (
                "_output" if _out else "", "div" if _div else "reciprocal", "_dyn" if _dyn else "")] = \
                (lambda d, y, o: lambda: simplified_layer_normalization(d, y, o))(_div, _dyn, _out)

if __name__ == "__main__":
    main(sys.argv, CASES)
