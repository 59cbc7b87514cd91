"""The attention fusion test graphs of ONNX Runtime's core optimizer tests.

Source: microsoft/onnxruntime, onnxruntime/test/testdata/transform/fusion/
attention_gen.py at commit 1c6854686920ff3b76156af6926cb1a275c16b78 (MIT
License, Copyright (c) Microsoft Corporation): GenerateModel writes
attention_mask_no_cast.onnx (BERT attention, hidden 8, 2 heads, a float
mask from a Constant, no Cast), GenerateModel2 attention_distilbert.onnx
(Q divided before QK^T, the mask as Equal(mask, 0) reshaped to
[B, 1, 1, S] from Shape arithmetic, Expanded to the scores' shape and
applied with Where).  ONNX Runtime's AttentionFusion tests (in
graph_transform_test.cc) expect one Attention in each.

Rebuilt node for node (names, order, attributes, integer constants, the
mask constants, the fixed input shapes) with this directory's Graph helper.
Kept as in the original: LayerNormalization's epsilon attribute spelled
"epsion"; Unsqueeze with an axes attribute (so the opset is one before 13:
12 here; the original took whatever onnx.helper.make_model gave then);
the DistilBERT graph declares its input [1, 1, 8] while its mask constant
has 3 positions (so its Reshape cannot work at that shape), and its Where
fills with sys.float_info.min, which is 0 in float32.
Changed: the original's literal weight tables (8x8 Q/K/V/output matrices
and biases) are random values of the same size here; the LayerNorm gamma
and beta are the original's.  Each graph has a _valid twin: epsilon
spelled right, opset 17 (Unsqueeze axes as an input), and the DistilBERT
input declared [1, 3, 8] to fit its mask.

    /usr/bin/python3 tests/gen/foreign/ort_fusion_attention_gen.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, feeds_for, main  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _unsqueeze(g, x, out, name, axis, valid):
    if valid:
        g.node("Unsqueeze", [x, "axes_%d" % axis], [out], name)
    else:
        g.node("Unsqueeze", [x], [out], name, axes=[axis])


def _weights(g, valid, seed_axes=(0, 1, 2)):
    g.init("layer_norm_weight", F, [8], [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0])
    g.init("layer_norm_bias", F, [8], [0.1, 0.2, 0.3, 0.4, 0.1, 0.2, 0.3, 0.4])
    for t in ("q", "k", "v", "qkv"):
        g.rand("matmul_%s_weight" % t, [8, 8], -0.15, 0.15)
    for t in ("q", "k", "v", "qkv"):
        g.rand("add_%s_weight" % t, [8], -0.3, 0.3)
    if valid:
        for a in seed_axes:
            g.init("axes_%d" % a, I64, [1], [a])


def attention_mask_no_cast(valid=False):
    g = Graph(21)
    n = g.node
    n("LayerNormalization", ["input_1", "layer_norm_weight", "layer_norm_bias"], ["layernorm_out"],
      "layernorm", axis=-1, **{"epsilon" if valid else "epsion": 0.000009999999747378752})
    for t, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1])):
        n("MatMul", ["layernorm_out", "matmul_%s_weight" % t], ["matmul_%s_out" % t], "matmul_" + t)
        n("Add", ["matmul_%s_out" % t, "add_%s_weight" % t], ["add_%s_out" % t], "add_" + t)
        n("Reshape", ["add_%s_out" % t, "reshape_weight_1"], ["reshape_%s_out" % t], "reshape_" + t)
        n("Transpose", ["reshape_%s_out" % t], ["transpose_%s_out" % t], "transpose_" + t, perm=perm)
    n("Constant", [], ["mask_input"], "constant", value=helper.make_tensor("mask", F, [1, 3], [0.0] * 3))
    _unsqueeze(g, "mask_input", "unsqueeze0_out", "unsqueeze0", 1, valid)
    _unsqueeze(g, "unsqueeze0_out", "unsqueeze1_out", "unsqueeze1", 2, valid)
    n("Sub", ["sub_weight", "unsqueeze1_out"], ["sub_out"], "sub")
    n("Mul", ["sub_out", "mul_weight"], ["mul_mask_out"], "mul_mask")
    n("MatMul", ["transpose_q_out", "transpose_k_out"], ["matmul_qk_out"], "matmul_qk")
    n("Div", ["matmul_qk_out", "div_weight"], ["div_qk_out"], "div_qk")
    n("Add", ["div_qk_out", "mul_mask_out"], ["add_qk_out"], "add_qk")
    n("Softmax", ["add_qk_out"], ["softmax_qk_out"], "softmax_qk", axis=3)
    n("MatMul", ["layernorm_out", "matmul_v_weight"], ["matmul_v_out"], "matmul_v")
    n("Add", ["matmul_v_out", "add_v_weight"], ["add_v_out"], "add_v")
    n("Reshape", ["add_v_out", "reshape_weight_1"], ["reshape_v_out"], "reshape_v")
    n("Transpose", ["reshape_v_out"], ["transpose_v_out"], "transpose_v", perm=[0, 2, 1, 3])
    _tail(g, "reshape_weight_2")
    _weights(g, valid, (1, 2))
    g.init("div_weight", F, [1], [2])
    g.init("sub_weight", F, [1], [1.0])
    g.init("mul_weight", F, [1], [-10000])
    g.init("reshape_weight_1", I64, [4], [0, 0, 2, 4])
    g.init("reshape_weight_2", I64, [3], [0, 0, 8])
    return _model(g, "AttentionFusionOneInput", 3, valid)


def _tail(g, shape):
    """softmax(.) V, the head merge, the output projection and the residual."""
    n = g.node
    n("MatMul", ["softmax_qk_out", "transpose_v_out"], ["matmul_qkv_1_out"], "matmul_qkv_1")
    n("Transpose", ["matmul_qkv_1_out"], ["transpose_qkv_out"], "transpose_qkv", perm=[0, 2, 1, 3])
    n("Reshape", ["transpose_qkv_out", shape], ["reshape_qkv_out"], "reshape_qkv")
    n("MatMul", ["reshape_qkv_out", "matmul_qkv_weight"], ["matmul_qkv_2_out"], "matmul_qkv_2")
    n("Add", ["matmul_qkv_2_out", "add_qkv_weight"], ["add_qkv_out"], "add_qkv")
    n("Add", ["add_qkv_out", "layernorm_out"], ["output"], "add")


def attention_distilbert(valid=False):
    g = Graph(22)
    n = g.node
    n("LayerNormalization", ["input_1", "layer_norm_weight", "layer_norm_bias"], ["layernorm_out"],
      "layernorm", axis=-1, **{"epsilon" if valid else "epsion": 0.000009999999960041972})
    n("Shape", ["layernorm_out"], ["shape0_out"], "shape0")
    n("Gather", ["shape0_out", "indices_0"], ["gather0_out"], "gather0", axis=0)
    n("Shape", ["layernorm_out"], ["shape1_out"], "shape1")
    n("Gather", ["shape1_out", "indices_1"], ["gather1_out"], "gather1", axis=0)
    n("MatMul", ["layernorm_out", "matmul_v_weight"], ["matmul_v_out"], "matmul_v")
    n("Add", ["matmul_v_out", "add_v_weight"], ["add_v_out"], "add_v")
    n("Reshape", ["add_v_out", "reshape_weight_1"], ["reshape_v_out"], "reshape_v")
    n("Transpose", ["reshape_v_out"], ["transpose_v_out"], "transpose_v", perm=[0, 2, 1, 3])
    n("MatMul", ["layernorm_out", "matmul_q_weight"], ["matmul_q_out"], "matmul_q")
    n("Add", ["matmul_q_out", "add_q_weight"], ["add_q_out"], "add_q")
    n("Reshape", ["add_q_out", "reshape_weight_1"], ["reshape_q_out"], "reshape_q")
    n("Transpose", ["reshape_q_out"], ["transpose_q_out"], "transpose_q", perm=[0, 2, 1, 3])
    n("Div", ["transpose_q_out", "div_weight"], ["div_q_out"], "div_q")
    n("MatMul", ["layernorm_out", "matmul_k_weight"], ["matmul_k_out"], "matmul_k")
    n("Add", ["matmul_k_out", "add_k_weight"], ["add_k_out"], "add_k")
    n("Reshape", ["add_k_out", "reshape_weight_1"], ["reshape_k_out"], "reshape_k")
    n("Transpose", ["reshape_k_out"], ["transpose_k_out"], "transpose_k", perm=[0, 2, 3, 1])
    _unsqueeze(g, "gather0_out", "unsqueeze_x_0_out", "unsqueeze_x_0", 0, valid)
    _unsqueeze(g, "gather1_out", "unsqueeze_x_1_out", "unsqueeze_x_1", 0, valid)
    n("Concat", ["unsqueeze_x_0_out", "dim_1", "dim_1", "unsqueeze_x_1_out"], ["concat3_out"], "concat3", axis=0)
    _unsqueeze(g, "gather0_out", "unsqueeze_x_2_out", "unsqueeze_x_2", 0, valid)
    n("Concat", ["unsqueeze_x_2_out", "dim_-1", "dim_8"], ["concat4_out"], "concat4", axis=0)
    n("Constant", [], ["mask_input"], "constant", value=helper.make_tensor("mask", F, [1, 3], [1.0] * 3))
    n("Equal", ["mask_input", "equal_weight"], ["equal_out"], "equal")
    n("MatMul", ["div_q_out", "transpose_k_out"], ["matmul_qk_out"], "matmul_qk")
    n("Reshape", ["equal_out", "concat3_out"], ["reshape_x_out"], "reshape_x")
    n("Shape", ["matmul_qk_out"], ["shape_x_out"], "shape_x")
    n("Expand", ["reshape_x_out", "shape_x_out"], ["expand_out"], "expand")
    n("Where", ["expand_out", "where_weight", "matmul_qk_out"], ["where_out"], "where")
    n("Softmax", ["where_out"], ["softmax_qk_out"], "softmax_qk", axis=3)
    _tail(g, "concat4_out")
    _weights(g, valid, (0,))
    g.init("div_weight", F, [1], [2])
    g.init("equal_weight", F, [], [0])
    g.init("where_weight", F, [], [sys.float_info.min])
    g.init("reshape_weight_1", I64, [4], [0, -1, 2, 4])
    g.init("reshape_weight_2", I64, [4], [0, 1, 1, -1])
    g.init("reshape_weight_3", I64, [3], [0, -1, 8])
    g.init("indices_0", I64, [], [0])
    g.init("indices_1", I64, [], [1])
    g.init("dim_-1", I64, [1], [-1])
    g.init("dim_1", I64, [1], [1])
    g.init("dim_8", I64, [1], [8])
    return _model(g, "AttentionFusion_DistilBert", 3 if valid else 1, valid)


def _model(g, name, seq, valid):
    dims = [1, seq, 8]
    m = g.model(name, [("input_1", F, dims)], [("output", F, dims)], 17 if valid else 12)
    rng = np.random.default_rng(15)
    return m, [feeds_for(m, lambda nm, k, d: d.dim_value, rng)]


CASES = {
    "attention_mask_no_cast": lambda: attention_mask_no_cast(),
    "attention_distilbert": lambda: attention_distilbert(),
    "attention_mask_no_cast_valid": lambda: attention_mask_no_cast(True),
    "attention_distilbert_valid": lambda: attention_distilbert(True),
}

if __name__ == "__main__":
    main(sys.argv, CASES)
