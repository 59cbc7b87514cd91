"""A real exporter's graph: the tiny random BART encoder that onnxscript's
ONNX Runtime fusion tests use.

Source: microsoft/onnxscript, onnxscript/rewriter/ort_fusions/models/
_bart_encoder.py at commit 87122e84b2f5d95f79812d767abe3311b08e7cba (MIT
License, Copyright (c) Microsoft Corporation).  The original writes, in
onnxscript, the graph torch.onnx exported for Hugging Face's
hf-internal-testing/tiny-random-bart encoder (2 layers, hidden 16, 4 heads
of 4, FFN 4, vocabulary 1024, 102 positions, opset 20); onnxscript's
fusion tests expect SDPA, MultiHeadAttention, SkipLayerNormalization and
BiasGelu fusions in it.  Its forms: positions from Range/Expand/Equal/
Where arithmetic + 2; the attention scale 1/sqrt(head) computed from the
Q shape at run time and applied as its square root to Q and to K^T
(SDPA's split scale), no mask; Gelu as the ONNX op; Add + LayerNorm
residuals with the bias Adds written bias first.

Rebuilt node for node (the node order, output names, attributes, Constant
values and opset of the original) with this directory's Graph helper
instead of onnxscript (not installed here).  Kept as in the original: the
embedding LayerNorm's bias is an Identity of a LayerNorm weight; layer 0's
self-attention LayerNorm has no bias and epsilon 9.999999747378752 (the
original writes e-0, not e-06); the output is declared rank 1 ([None]) while
it is [1, S, 16]; the input is [1, None].  Changed: the names an
onnxscript SSA rename would give the three re-assigned Identity outputs are
written NAME_1; weights are random (as in the original's
make_model_with_random_weights: uniform 0..1, the fc1 bias zeros) from a
fixed seed; the captured weights are initializers.  A _valid twin declares
the output [1, S, 16].

    /usr/bin/python3 tests/gen/foreign/onnxscript_bart_encoder.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, Script, main  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
EPS = 9.999999747378752e-06
L0W, KB = "encoder_layers_0_self_attn_layer_norm_weight", "encoder_layers_0_self_attn_k_proj_bias"


def _aliases(s):
    """The Identity nodes the export starts with (biases and norm weights
    that torch shared), in the original's order."""
    k0, w0, l1 = KB, L0W, "encoder_layers_1_"
    for out, src in (("encoder_layernorm_embedding_bias", w0), ("encoder_layernorm_embedding_weight", w0),
                     (l1 + "final_layer_norm_bias", k0), (l1 + "final_layer_norm_weight", w0),
                     (l1 + "fc2_bias", k0), (l1 + "fc1_bias", "encoder_layers_0_fc1_bias"),
                     (l1 + "self_attn_layer_norm_bias", k0), (l1 + "self_attn_layer_norm_weight", w0),
                     (l1 + "self_attn_layer_norm_weight_1", l1 + "self_attn_layer_norm_weight"),
                     (l1 + "self_attn_out_proj_bias", k0), (l1 + "self_attn_q_proj_bias", k0),
                     (l1 + "self_attn_v_proj_bias", k0), (l1 + "self_attn_k_proj_bias", k0),
                     ("encoder_layers_0_final_layer_norm_bias", k0), ("encoder_layers_0_final_layer_norm_weight", w0),
                     ("encoder_layers_0_fc2_bias", k0), (l1 + "fc2_bias_1", k0),
                     (l1 + "self_attn_layer_norm_bias_1", k0), ("encoder_layers_0_self_attn_out_proj_bias", k0),
                     ("encoder_layers_0_self_attn_q_proj_bias", k0), ("encoder_layers_0_self_attn_v_proj_bias", k0)):
        s("Identity", out, src)


def _embed(s):
    e, p = "encoder_", "encoder_embed_positions_"
    s("Shape", e + "Shape_output_0", "input_ids")
    s.const(e + "Constant_output_0", 1)
    s("Gather", e + "Gather_output_0", e + "Shape_output_0", e + "Constant_output_0")
    s.const(e + "Constant_1_output_0", [-1])
    s.const("Unsqueeze_43", [0])
    s("Unsqueeze", e + "Unsqueeze_output_0", e + "Gather_output_0", "Unsqueeze_43")
    s("Concat", e + "Concat_output_0", e + "Constant_1_output_0", e + "Unsqueeze_output_0", axis=0)
    s("Reshape", e + "Reshape_output_0", "input_ids", e + "Concat_output_0", allowzero=0)
    s("Gather", e + "embed_tokens_Gather_output_0", "encoder_embed_tokens_weight", e + "Reshape_output_0")
    s.const(e + "embed_tokens_Constant_output_0", [1.0])
    s("Mul", e + "embed_tokens_Mul_output_0", e + "embed_tokens_Gather_output_0",
      e + "embed_tokens_Constant_output_0")
    s("Shape", p + "Shape_output_0", "input_ids")
    s.const(p + "Constant_output_0", 0)
    s("Gather", p + "Gather_output_0", p + "Shape_output_0", p + "Constant_output_0", axis=0)
    s.const(p + "Constant_1_output_0", 0)
    s("Cast", p + "Cast_output_0", e + "Gather_output_0", to=7)
    s.const(p + "Constant_2_output_0", 1)
    s("Range", p + "Range_output_0", p + "Constant_1_output_0", p + "Cast_output_0", p + "Constant_2_output_0")
    s.const(p + "Constant_3_output_0", [0])
    s("Unsqueeze", p + "Unsqueeze_output_0", p + "Gather_output_0", p + "Constant_3_output_0")
    s.const(p + "Constant_4_output_0", [-1])
    s("Concat", p + "Concat_output_0", p + "Unsqueeze_output_0", p + "Constant_4_output_0", axis=0)
    s.const(p + "Constant_5_output_0", [-1])
    s("Reshape", p + "Reshape_output_0", p + "Concat_output_0", p + "Constant_5_output_0")
    s("Shape", p + "Shape_1_output_0", p + "Reshape_output_0")
    s("ConstantOfShape", p + "ConstantOfShape_output_0", p + "Shape_1_output_0",
      value=helper.make_tensor("onef", I64, [1], [1]))
    s.const(p + "Constant_6_output_0", [-1])
    s("Mul", p + "Mul_output_0", p + "ConstantOfShape_output_0", p + "Constant_6_output_0")
    s("Equal", p + "Equal_output_0", p + "Reshape_output_0", p + "Mul_output_0")
    s("Where", p + "Where_output_0", p + "Equal_output_0", p + "ConstantOfShape_output_0", p + "Reshape_output_0")
    s("Expand", p + "Expand_output_0", p + "Range_output_0", p + "Where_output_0")
    s.const(p + "Constant_7_output_0", 2)
    s("Add", p + "Add_output_0", p + "Expand_output_0", p + "Constant_7_output_0")
    s("Gather", p + "Gather_1_output_0", "encoder_embed_positions_weight", p + "Add_output_0")
    s("Cast", e + "Cast_output_0", p + "Gather_1_output_0", to=1)
    s("Add", e + "Add_output_0", e + "embed_tokens_Mul_output_0", e + "Cast_output_0")
    return s("LayerNormalization", "encoder_layernorm_embedding_LayerNormalization_output_0", e + "Add_output_0",
             "encoder_layernorm_embedding_weight", "encoder_layernorm_embedding_bias", axis=-1, epsilon=EPS)


def _layer(s, L, x, w, unsq):
    """One encoder layer; w: its six MatMul weight names (q, k, v, out, fc1,
    fc2); unsq: the five global Unsqueeze constant numbers it uses."""
    a, b = "encoder_layers_%d_self_attn_" % L, "encoder_layers_%d_" % L
    o = lambda n: a + n + "_output_0"  # noqa: E731
    s("Shape", o("Shape"), x)
    s.const(o("Constant"), 0)
    s("Gather", o("Gather"), o("Shape"), o("Constant"), axis=0)
    s("Shape", o("Shape_1"), x)
    s.const(o("Constant_1"), 1)
    s("Gather", o("Gather_1"), o("Shape_1"), o("Constant_1"), axis=0)
    s("MatMul", o("q_proj_MatMul"), x, w[0])
    s("Add", o("q_proj_Add"), a + "q_proj_bias", o("q_proj_MatMul"))
    for i, sfx in enumerate(("", "_1", "_2")):
        s.const("Unsqueeze_%d" % unsq[i], [0])
        s("Unsqueeze", o("Unsqueeze" + sfx), o("Gather"), "Unsqueeze_%d" % unsq[i])
        c = [o("Constant_%d" % (2 + 3 * i + j)) for j in range(3)]
        for cn, v in zip(c, (-1, 4, 4)):
            s.const(cn, [v])
        s("Concat", o("Concat" + sfx), o("Unsqueeze" + sfx), *c, axis=0)
    s("Reshape", o("Reshape"), o("q_proj_Add"), o("Concat"), allowzero=0)
    s("Transpose", o("Transpose"), o("Reshape"), perm=[0, 2, 1, 3])
    for t, wt in (("k", w[1]), ("v", w[2])):
        s("MatMul", o(t + "_proj_MatMul"), x, wt)
        s("Add", o(t + "_proj_Add"), a + t + "_proj_bias", o(t + "_proj_MatMul"))
    s("Reshape", o("Reshape_1"), o("k_proj_Add"), o("Concat_1"), allowzero=0)
    s("Reshape", o("Reshape_2"), o("v_proj_Add"), o("Concat_2"), allowzero=0)
    s("Transpose", o("Transpose_1"), o("Reshape_2"), perm=[0, 2, 1, 3])
    # scale = 1 / sqrt(head size) from Q's shape, sqrt(scale) on Q and on K^T
    s("Shape", o("Shape_2"), o("Transpose"))
    s.const(o("Constant_11"), [-1])
    s.const(o("Constant_12"), [9223372036854775807])
    s("Slice", o("Slice"), o("Shape_2"), o("Constant_11"), o("Constant_12"))
    s("Cast", o("Cast"), o("Slice"), to=1)
    s("Sqrt", o("Sqrt"), o("Cast"))
    s.const(o("Constant_13"), [1.0])
    s("Div", o("Div"), o("Constant_13"), o("Sqrt"))
    s("Cast", o("Cast_1"), o("Div"), to=1)
    s("Transpose", o("Transpose_2"), o("Reshape_1"), perm=[0, 2, 3, 1])
    s("Sqrt", o("Sqrt_1"), o("Cast_1"))
    s("Mul", o("Mul"), o("Transpose"), o("Sqrt_1"))
    s("Sqrt", o("Sqrt_2"), o("Cast_1"))
    s("Mul", o("Mul_1"), o("Transpose_2"), o("Sqrt_2"))
    s("MatMul", o("MatMul"), o("Mul"), o("Mul_1"))
    s("Softmax", o("Softmax"), o("MatMul"), axis=-1)
    s("MatMul", o("MatMul_1"), o("Softmax"), o("Transpose_1"))
    s("Transpose", o("Transpose_3"), o("MatMul_1"), perm=[0, 2, 1, 3])
    s.const("Unsqueeze_%d" % unsq[3], [0])
    s("Unsqueeze", o("Unsqueeze_3"), o("Gather"), "Unsqueeze_%d" % unsq[3])
    s.const("Unsqueeze_%d" % unsq[4], [0])
    s("Unsqueeze", o("Unsqueeze_4"), o("Gather_1"), "Unsqueeze_%d" % unsq[4])
    s.const(o("Constant_14"), [16])
    s("Concat", o("Concat_3"), o("Unsqueeze_3"), o("Unsqueeze_4"), o("Constant_14"), axis=0)
    s("Reshape", o("Reshape_3"), o("Transpose_3"), o("Concat_3"), allowzero=0)
    s("MatMul", o("out_proj_MatMul"), o("Reshape_3"), w[3])
    s("Add", o("out_proj_Add"), a + "out_proj_bias", o("out_proj_MatMul"))
    s("Add", b + "Add_output_0", x, o("out_proj_Add"))
    ln = o("layer_norm_LayerNormalization")
    if L == 0:   # no bias, and epsilon 9.99... (e-0) as in the original
        s("LayerNormalization", ln, b + "Add_output_0", a + "layer_norm_weight", axis=-1,
          epsilon=9.999999747378752)
    else:
        s("LayerNormalization", ln, b + "Add_output_0", a + "layer_norm_weight_1", a + "layer_norm_bias_1",
          axis=-1, epsilon=EPS)
    s("MatMul", b + "fc1_MatMul_output_0", ln, w[4])
    s("Add", b + "fc1_Add_output_0", b + "fc1_bias", b + "fc1_MatMul_output_0")
    s("Gelu", b + "activation_fn_Gelu_output_0", b + "fc1_Add_output_0", approximate="none")
    s("MatMul", b + "fc2_MatMul_output_0", b + "activation_fn_Gelu_output_0", w[5])
    s("Add", b + "fc2_Add_output_0", b + ("fc2_bias_1" if L == 1 else "fc2_bias"), b + "fc2_MatMul_output_0")
    s("Add", b + "Add_1_output_0", ln, b + "fc2_Add_output_0")
    out = "encoder_output" if L == 1 else b + "final_layer_norm_LayerNormalization_output_0"
    return s("LayerNormalization", out, b + "Add_1_output_0", b + "final_layer_norm_weight",
             b + "final_layer_norm_bias", axis=-1, epsilon=EPS)


def bart_encoder(valid=False):
    g = Graph(41)
    s = Script(g)
    _aliases(s)
    x = _embed(s)
    x = _layer(s, 0, x, ["MatMul_257", "MatMul_267", "MatMul_268", "MatMul_270", "MatMul_271", "MatMul_272"],
               (88, 97, 106, 145, 147))
    _layer(s, 1, x, ["MatMul_273", "MatMul_283", "MatMul_284", "MatMul_286", "MatMul_287", "MatMul_288"],
           (176, 185, 194, 232, 234))
    g.rand("encoder_embed_tokens_weight", [1024, 16], 0.0, 1.0)
    g.rand("encoder_embed_positions_weight", [102, 16], 0.0, 1.0)
    g.rand(KB, [16], 0.0, 1.0)
    g.rand(L0W, [16], 0.0, 1.0)
    g.init("encoder_layers_0_fc1_bias", F, [4], [0.0] * 4)
    for name in ("MatMul_257", "MatMul_267", "MatMul_268", "MatMul_270", "MatMul_271", "MatMul_272",
                 "MatMul_273", "MatMul_283", "MatMul_284", "MatMul_286", "MatMul_287", "MatMul_288"):
        shape = {"MatMul_271": [16, 4], "MatMul_287": [16, 4], "MatMul_272": [4, 16],
                 "MatMul_288": [4, 16]}.get(name, [16, 16])
        g.rand(name, shape, 0.0, 1.0)
    out_dims = [1, "S", 16] if valid else [None]
    m = g.model("main_graph", [("input_ids", I64, [1, None])], [("encoder_output", F, out_dims)], 20)
    rng = np.random.default_rng(42)
    sets = [{"input_ids": rng.integers(0, 1024, (1, S)).astype(np.int64)} for S in (7, 12)]
    return m, sets


CASES = {
    "bart_encoder": lambda: bart_encoder(),
    "bart_encoder_valid": lambda: bart_encoder(valid=True),
}

if __name__ == "__main__":
    main(sys.argv, CASES)
