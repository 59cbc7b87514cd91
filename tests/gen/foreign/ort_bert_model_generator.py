"""The attention-fusion test graphs of ONNX Runtime's BERT model generator.

Source: microsoft/onnxruntime, onnxruntime/test/python/transformers/
bert_model_generator.py at commit d930f6ec54e5be1fdd4afbc39c6e5f3906a7dd73
(MIT License, Copyright (c) Microsoft Corporation).  ONNX Runtime's
test_attention_fusion.py runs its optimizer on these graphs and expects
one Attention each.

The graphs are rebuilt here node for node: the same node names, tensor
names, op order, attributes, integer constants, shapes and opsets as the
original functions create_bert_attention (with its pruned and reversed-Add
variants) and create_tf2onnx_attention_3d, written with this directory's
Graph helper instead of the original's code.  Kept on purpose, because
they are what an importer meets in the wild:
  - the LayerNormalization attribute is spelled "epsion" (so the default
    epsilon applies), and the BERT graphs import opset 16, where the ONNX
    standard has no LayerNormalization (ONNX Runtime has one of its own);
  - the tf2onnx graph scales K by the mask constant (-10000) and the mask
    by 0.125 (the original's mul_weight_1/mul_weight_2), and its
    use_float_mask variant reads a tensor no node writes (unsqueeze1_out).
Changed: float weights the original fills with ones are random here
(common.py), and every graph also has a valid twin (suffix _valid:
epsilon spelled right, opset 17, where LayerNormalization is a standard
op; the 3-D float-mask graph's Sub reads the float mask as the Slice
leaves it, "slice_out", where the original names the BERT graph's
"unsqueeze1_out", a tensor this graph never writes), so that the attention
forms get past the importer.

    /usr/bin/python3 tests/gen/foreign/ort_bert_model_generator.py OUTDIR [NAME...]
"""
import math
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, feeds_for, main  # noqa: E402

F, I64, I32 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32
EPS = 0.000009999999747378752


def _ln(g, x, out, name, valid):
    """The original's LayerNormalization, its epsilon attribute misspelled
    unless valid."""
    g.node("LayerNormalization", [x, "layer_norm_weight", "layer_norm_bias"], [out], name,
           axis=-1, **{"epsilon" if valid else "epsion": EPS})


def _pair(a, b, swap):
    return [b, a] if swap else [a, b]


def _mask_nodes(g, use_float_mask, axes_two_inputs=True):
    g.node("Unsqueeze", ["input_mask", "axes_1"], ["unsqueeze0_out"], "unsqueeze0")
    g.node("Unsqueeze", ["unsqueeze0_out", "axes_2"], ["unsqueeze1_out"], "unsqueeze1")
    if not use_float_mask:
        g.node("Cast", ["unsqueeze1_out"], ["cast_out"], "cast", to=1)
    g.node("Sub", ["sub_weight", "unsqueeze1_out" if use_float_mask else "cast_out"],
           ["sub_out"], "sub")
    g.node("Mul", ["sub_out", "mul_weight"], ["mul_mask_out"], "mul_mask")


def bert_attention(hidden=16, heads=2, qk_hidden=16, v_hidden=16, use_float_mask=False,
                   swap=False, valid=False, seed=1):
    """create_bert_attention: LayerNorm, Q/K/V MatMul+Add+Reshape+Transpose
    (K transposed to 0,2,3,1), Div by sqrt(head size), an additive mask
    (1 - mask) * -10000, Softmax(axis 3), output projection, residual and a
    second LayerNorm.  Batch 1, sequence 3, fixed as in the original."""
    g = Graph(seed)
    g.node("Add", ["input_1", "input_2"], ["layernorm_input"], "add_layernorm")
    _ln(g, "layernorm_input", "layernorm_out", "layernorm", valid)
    for t, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1])):
        g.node("MatMul", ["layernorm_out", "matmul_%s_weight" % t], ["matmul_%s_out" % t], "matmul_" + t)
        g.node("Add", _pair("matmul_%s_out" % t, "add_%s_weight" % t, swap), ["add_%s_out" % t], "add_" + t)
        g.node("Reshape", ["add_%s_out" % t, "reshape_weight_qk"], ["reshape_%s_out" % t], "reshape_" + t)
        g.node("Transpose", ["reshape_%s_out" % t], ["transpose_%s_out" % t], "transpose_" + t, perm=perm)
    _mask_nodes(g, use_float_mask)
    g.node("MatMul", ["transpose_q_out", "transpose_k_out"], ["matmul_qk_out"], "matmul_qk")
    g.node("Div", ["matmul_qk_out", "div_weight"], ["div_qk_out"], "div_qk")
    g.node("Add", _pair("div_qk_out", "mul_mask_out", swap), ["add_qk_out"], "add_qk")
    g.node("Softmax", ["add_qk_out"], ["softmax_qk_out"], "softmax_qk", axis=3)
    g.node("MatMul", ["layernorm_out", "matmul_v_weight"], ["matmul_v_out"], "matmul_v")
    g.node("Add", ["matmul_v_out", "add_v_weight"], ["add_v_out"], "add_v")
    g.node("Reshape", ["add_v_out", "reshape_weight_v"], ["reshape_v_out"], "reshape_v")
    g.node("Transpose", ["reshape_v_out"], ["transpose_v_out"], "transpose_v", perm=[0, 2, 1, 3])
    g.node("MatMul", ["softmax_qk_out", "transpose_v_out"], ["matmul_qkv_1_out"], "matmul_qkv_1")
    g.node("Transpose", ["matmul_qkv_1_out"], ["transpose_qkv_out"], "transpose_qkv", perm=[0, 2, 1, 3])
    g.node("Reshape", ["transpose_qkv_out", "reshape_weight_qkv"], ["reshape_qkv_out"], "reshape_qkv")
    g.node("MatMul", ["reshape_qkv_out", "matmul_qkv_weight"], ["matmul_qkv_2_out"], "matmul_qkv_2")
    g.node("Add", _pair("matmul_qkv_2_out", "add_qkv_weight", swap), ["add_qkv_out"], "add_qkv")
    g.node("Add", _pair("add_qkv_out", "layernorm_out", swap), ["skip_output"], "add_skip")
    _ln(g, "skip_output", "output", "layernorm2", valid)

    qk_head, v_head = qk_hidden // heads, v_hidden // heads
    g.rand("layer_norm_weight", [hidden], 0.5, 1.5)
    g.rand("layer_norm_bias", [hidden])
    g.rand("matmul_q_weight", [hidden, qk_hidden])
    g.rand("matmul_k_weight", [hidden, qk_hidden])
    g.rand("matmul_v_weight", [hidden, v_hidden])
    g.rand("matmul_qkv_weight", [v_hidden, hidden])
    g.rand("add_q_weight", [qk_hidden])
    g.rand("add_k_weight", [qk_hidden])
    g.rand("add_v_weight", [v_hidden])
    g.rand("add_qkv_weight", [hidden])
    g.init("div_weight", F, [1], [math.sqrt(qk_head)])
    g.init("sub_weight", F, [1], [1.0])
    g.init("mul_weight", F, [1], [-10000])
    g.init("reshape_weight_qk", I64, [4], [0, 0, heads, qk_head])
    g.init("reshape_weight_v", I64, [4], [0, 0, heads, v_head])
    g.init("reshape_weight_qkv", I64, [3], [0, 0, v_hidden])
    g.init("axes_1", I64, [1], [1])
    g.init("axes_2", I64, [1], [2])

    B, S = 1, 3
    m = g.model("AttentionFusionPrunedModel",
                [("input_1", F, [B, S, hidden]), ("input_2", F, [B, S, hidden]),
                 ("input_mask", F if use_float_mask else I64, [B, S])],
                [("output", F, [B, S, hidden])], 17 if valid else 16)
    return m, _sets(m, use_float_mask, seed)


def tf2onnx_attention_3d(hidden=16, heads=4, head=4, use_float_mask=False, valid=False, seed=2):
    """create_tf2onnx_attention_3d: Keras-style Einsum projections to
    [B,S,N,H], the scores as Einsum aecd,abcd->acbe (so Softmax(axis 3)
    runs over the Q positions and the final Einsum contracts them with V),
    a mask Unsqueeze(1,2) + Slice(int32 bounds) + Cast, no scale on the
    scores.  Opset: the default of onnx.helper.make_model (17 here)."""
    g = Graph(seed)
    g.node("Add", ["input_1", "input_2"], ["layernorm_input"], "add_layernorm")
    _ln(g, "layernorm_input", "layernorm_out", "layernorm", valid)
    g.node("Einsum", ["layernorm_out", "einsum_q_weight"], ["einsum_q_out"], "einsum_q",
           equation="abc,cde->abde")
    g.node("Add", ["einsum_q_out", "add_q_weight"], ["add_q_out"], "add_q")
    g.node("Einsum", ["layernorm_out", "einsum_k_weight"], ["einsum_k_out"], "einsum_k",
           equation="abc,cde->abde")
    g.node("Add", ["einsum_k_out", "add_k_weight"], ["add_k_out"], "add_k")
    g.node("Mul", ["add_k_out", "mul_weight_1"], ["mul_k_out"], "mul_k")
    g.node("Unsqueeze", ["input_mask", "axes_1"], ["unsqueeze0_out"], "unsqueeze0")
    g.node("Slice", ["unsqueeze0_out", "slice_start", "slice_end", "slice_axes", "slice_steps"],
           ["slice_out"], "slice")
    if not use_float_mask:
        g.node("Cast", ["slice_out"], ["cast_out"], "cast", to=1)
    fmask = "slice_out" if valid else "unsqueeze1_out"   # see the module comment
    g.node("Sub", ["sub_weight", fmask if use_float_mask else "cast_out"], ["sub_out"], "sub")
    g.node("Mul", ["sub_out", "mul_weight_2"], ["mul_mask_out"], "mul_mask")
    g.node("Einsum", ["add_q_out", "mul_k_out"], ["einsum_qk_out"], "einsum_qk",
           equation="aecd,abcd->acbe")
    g.node("Add", ["einsum_qk_out", "mul_mask_out"], ["add_qk_out"], "add_qk")
    g.node("Softmax", ["add_qk_out"], ["softmax_qk_out"], "softmax_qk", axis=3)
    g.node("Einsum", ["layernorm_out", "einsum_v_weight"], ["einsum_v_out"], "einsum_v",
           equation="abc,cde->abde")
    g.node("Add", ["einsum_v_out", "add_v_weight"], ["add_v_out"], "add_v")
    g.node("Einsum", ["softmax_qk_out", "add_v_out"], ["einsum_qkv_1_out"], "einsum_qkv_1",
           equation="acbe,aecd->abcd")
    g.node("Einsum", ["einsum_qkv_1_out", "einsum_qkv_weight"], ["einsum_qkv_2_out"], "einsum_qkv_2",
           equation="abcd,cde->abe")
    g.node("Add", ["einsum_qkv_2_out", "add_qkv_weight"], ["add_qkv_out"], "add_qkv")
    g.node("Add", ["add_qkv_out", "layernorm_out"], ["skip_output"], "add_skip")
    _ln(g, "skip_output", "output", "layernorm2", valid)

    g.rand("layer_norm_weight", [hidden], 0.5, 1.5)
    g.rand("layer_norm_bias", [hidden])
    # K is scaled by -10000 (see the module comment): small Q/K weights keep
    # the scores in a range where the softmax is not a hard argmax.
    g.rand("einsum_q_weight", [hidden, heads, head], -1e-3, 1e-3)
    g.rand("einsum_k_weight", [hidden, heads, head], -1e-3, 1e-3)
    g.rand("einsum_v_weight", [hidden, heads, head])
    g.rand("einsum_qkv_weight", [heads, head, hidden])
    g.rand("add_q_weight", [heads, head], -1e-3, 1e-3)
    g.rand("add_k_weight", [heads, head], -1e-3, 1e-3)
    g.rand("add_v_weight", [heads, head])
    g.rand("add_qkv_weight", [hidden])
    g.init("sub_weight", F, [1], [1.0])
    g.init("mul_weight_1", F, [1], [-10000])
    g.init("mul_weight_2", F, [1], [0.125])
    g.init("reshape_weight_1", I64, [4], [0, 0, heads, head])
    g.init("slice_start", I32, [4], [0, 0, 0, 0])
    g.init("slice_end", I32, [4], [1000000000] * 4)
    g.init("slice_axes", I32, [4], [0, 1, 2, 3])
    g.init("slice_steps", I32, [4], [1, 1, 1, 1])
    g.init("axes_1", I64, [2], [1, 2])

    B, S = 1, 3
    m = g.model("AttentionFusionPrunedModel",
                [("input_1", F, [B, S, hidden]), ("input_2", F, [B, S, hidden]),
                 ("input_mask", F if use_float_mask else I64, [B, S])],
                [("output", F, [B, S, hidden])], 17)
    return m, _sets(m, use_float_mask, seed)


def _sets(m, use_float_mask, seed):
    """Two data sets of the fixed shape (batch 1, sequence 3): the last key
    masked, then nothing masked."""
    rng = np.random.default_rng(100 + seed)
    sets = []
    for mask in ([[1, 1, 0]], [[1, 1, 1]]):
        mk = np.array(mask, np.float32 if use_float_mask else np.int64)
        sets.append(feeds_for(m, lambda n, k, d: d.dim_value, rng, {"input_mask": mk}))
    return sets


# __main__ of the original, and test_attention_fusion.py's variants
VARIANTS = {
    "pruned_bert_attention": (bert_attention, dict(qk_hidden=8, v_hidden=8)),
    "bert_attention_reverse_add_order": (bert_attention, dict(qk_hidden=8, v_hidden=8, swap=True)),
    "bert_attention": (bert_attention, {}),
    "bert_attention_varied_qkv": (bert_attention, dict(qk_hidden=8, v_hidden=16)),
    "bert_attention_float_mask": (bert_attention, dict(use_float_mask=True)),
    "bert_3d_attention": (tf2onnx_attention_3d, {}),
    "bert_3d_attention_float_mask": (tf2onnx_attention_3d, dict(use_float_mask=True)),
}
CASES = {n: (lambda f, k: lambda: f(**k))(f, k) for n, (f, k) in VARIANTS.items()}
# the valid twins
CASES.update({n + "_valid": (lambda f, k: lambda: f(valid=True, **k))(f, k)
              for n, (f, k) in VARIANTS.items()})


if __name__ == "__main__":
    main(sys.argv, CASES)
