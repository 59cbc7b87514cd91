"""The fusion test graphs of ONNX Runtime's GPT-2 model generator.

Source: microsoft/onnxruntime, onnxruntime/test/python/transformers/
gpt2_model_generator.py at commit 2944c6f47c314357c4e1288b9bc04a667fb11198
(MIT License, Copyright (c) Microsoft Corporation).  ONNX Runtime's
optimizer tests expect one Attention in gpt2_attention*.onnx and an
EmbedLayerNormalization in the gpt2_embedlayer*.onnx graphs.

Rebuilt node for node (names, op order, attributes, integer constants,
symbolic dims and opset 16 as in the original functions
create_gpt2_attention and create_gpt2_embedlayer), written with this
directory's Graph helper instead of the original's code.  Kept on
purpose: LayerNormalization at opset 16 with its attribute spelled
"epsion", the 2-D Gemm between two shape-computed Reshapes, the causal
mask as a uint8 [1,1,32,32] table sliced by Shape arithmetic and applied
with Where(-10000), the past/present KV cache as one [2,B,N,P,H] tensor,
and, in the embed-layer graphs, ONNX Runtime's com.microsoft
SkipLayerNormalization and Attention ops.
Changed: the attention graphs' float weights (ones in the original) are
random (common.py); hidden size 64 as in the original; the embed-layer
graphs keep their deterministic ramps but hidden 768 is cut to 32 and
attn_hidden_dim to 16 to keep the files small.

    /usr/bin/python3 tests/gen/foreign/ort_gpt2_model_generator.py OUTDIR [NAME...]
"""
import math
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, expand_skip_layer_norm, feeds_for, main  # noqa: E402

F, I64, I32, U8 = TensorProto.FLOAT, TensorProto.INT64, TensorProto.INT32, TensorProto.UINT8
EPS = 0.000009999999747378752
MS = "com.microsoft"


def _pair(a, b, swap):
    return [b, a] if swap else [a, b]


def gpt2_attention(hidden=64, heads=4, max_seq=32, swap=False, valid=False, seed=3):
    """create_gpt2_attention; valid: epsilon spelled right, opset 17."""
    g = Graph(seed)
    eps, opset = ("epsilon", 17) if valid else ("epsion", 16)
    n = g.node
    n("Add", ["input_1", "input_2"], ["layernorm_input"], "add_layernorm")
    n("LayerNormalization", ["layernorm_input", "layer_norm_weight", "layer_norm_bias"],
      ["layernorm_out"], "layernorm", **{eps: EPS})
    n("MatMul", ["layernorm_out", "matmul_fc_weight"], ["matmul_fc_out"], "matmul_fc")
    n("Add", _pair("matmul_fc_out", "add_fc_weight", swap), ["fc_out"], "add_fc")
    n("Split", ["fc_out", "split_q_k_v"], ["q", "k", "v"], "split_qkv", axis=2)
    for t in "qkv":
        n("Reshape", [t, "reshape_x_shape"], ["reshape_%s_out" % t], "reshape_" + t)
        n("Transpose", ["reshape_%s_out" % t], ["transpose_%s_out" % t], "transpose_" + t,
          perm=[0, 2, 1, 3])
    # past [2,B,N,P,H] -> K and V caches, concatenated with this step's
    n("Split", ["past", "split_1_1"], ["split_k", "split_v"], "split_past", axis=0)
    n("Squeeze", ["split_k", "axes_0"], ["past_k"], "squeeze_past_k")
    n("Concat", ["past_k", "transpose_k_out"], ["concat_k_out"], "concat_k", axis=-2)
    n("Transpose", ["concat_k_out"], ["concat_k_transpose_out"], "transpose_concat_k", perm=[0, 1, 3, 2])
    n("Squeeze", ["split_v", "axes_0"], ["past_v"], "squeeze_past_v")
    n("Concat", ["past_v", "transpose_v_out"], ["concat_v_out"], "concat_v", axis=-2)
    n("Unsqueeze", ["concat_k_out", "axes_0"], ["concat_k_unsqueeze_out"], "concat_k_unsqueeze")
    n("Unsqueeze", ["concat_v_out", "axes_0"], ["concat_v_unsqueeze_out"], "concat_v_unsqueeze")
    n("Concat", ["concat_k_unsqueeze_out", "concat_v_unsqueeze_out"], ["present"], "concat_present", axis=0)
    # causal mask rows [T-S, T) and columns [0, T) of the uint8 table
    for src in ("transpose_q", "concat_k"):
        n("Shape", [src + "_out"], [src + "_shape_out"], src + "_shape")
        n("Slice", [src + "_shape_out", "starts_n2", "ends_n1", "axes_0"],
          [src + "_shape_slice_out"], src + "_shape_slice")
        n("Squeeze", [src + "_shape_slice_out", "axes_0"],
          [src + "_shape_slice_squeeze_out"], src + "_shape_slice_squeeze")
    n("Sub", ["concat_k_shape_slice_squeeze_out", "transpose_q_shape_slice_squeeze_out"], ["sub_out"], "sub")
    n("Unsqueeze", ["sub_out", "axes_0"], ["sub_unsqueeze_out"], "sub_unsqueeze")
    n("Unsqueeze", ["concat_k_shape_slice_squeeze_out", "axes_0"],
      ["concat_k_shape_slice_squeeze_unsqueeze_out"], "concat_k_shape_slice_squeeze_unsqueeze")
    n("Slice", ["undir_mask", "sub_unsqueeze_out", "concat_k_shape_slice_squeeze_unsqueeze_out",
                "axes_2", "steps_1"], ["undir_mask_slice_out"], "undir_mask_slice")
    n("Slice", ["undir_mask_slice_out", "starts_0", "concat_k_shape_slice_squeeze_unsqueeze_out",
                "axes_3", "steps_1"], ["mask_slice_slice_out"], "mask_slice_slice")
    n("Cast", ["mask_slice_slice_out"], ["undir_mask_out"], "undir_mask_cast", to=9)
    # padding mask, additive
    n("Reshape", ["input_mask", "input_mask_shape"], ["input_mask_reshape_out"], "input_mask_reshape")
    n("Unsqueeze", ["input_mask_reshape_out", "axes_1"], ["unsqueeze0_out"], "unsqueeze0")
    n("Unsqueeze", ["unsqueeze0_out", "axes_2"], ["unsqueeze1_out"], "unsqueeze1")
    n("Sub", ["sub_weight", "unsqueeze1_out"], ["mask_sub_out"], "sub_mask")
    n("Mul", ["mask_sub_out", "mul_weight"], ["mul_mask_out"], "mul_mask")
    n("MatMul", ["transpose_q_out", "concat_k_transpose_out"], ["qk_out"], "matmul_qk")
    n("Div", ["qk_out", "div_weight"], ["qk_norm_out"], "qk_norm")
    n("Where", ["undir_mask_out", "qk_norm_out", "where_weight"], ["where_out"], "where")
    n("Add", _pair("where_out", "mul_mask_out", swap), ["add_mask_out"], "add_mask")
    n("Softmax", ["add_mask_out"], ["softmax_out"], "softmax", axis=3)
    n("MatMul", ["softmax_out", "concat_v_out"], ["matmul_qkv_1_out"], "matmul_qk_v")
    n("Transpose", ["matmul_qkv_1_out"], ["transpose_qkv_out"], "transpose_qkv", perm=[0, 2, 1, 3])
    n("Reshape", ["transpose_qkv_out", "reshape_weight_qkv"], ["reshape_qkv_out"], "reshape_qkv")
    # Conv1D as GPT-2's exporter writes it: flatten to 2-D, Gemm, reshape back
    n("Shape", ["reshape_qkv_out"], ["qkv_shape"], "shape_qkv")
    n("Slice", ["qkv_shape", "starts_n1", "ends_inf", "axes_0"], ["qkv_shape_slice_out"], "qkv_shape_slice")
    n("Squeeze", ["qkv_shape_slice_out", "axes_0"], ["qkv_shape_slice_squeeze_out"], "qkv_shape_slice_squeeze")
    n("Unsqueeze", ["qkv_shape_slice_squeeze_out", "axes_0"], ["qkv_shape_slice_squeeze_unsqueeze_out"],
      "qkv_shape_slice_squeeze_unsqueeze")
    n("Concat", ["concat_n1", "qkv_shape_slice_squeeze_unsqueeze_out"],
      ["qkv_shape_slice_squeeze_unsqueeze_concat_out"], "qkv_shape_slice_squeeze_unsqueeze_concat", axis=0)
    n("Reshape", ["reshape_qkv_out", "qkv_shape_slice_squeeze_unsqueeze_concat_out"], ["qkv_reshape_out"],
      "qkv_reshape")
    n("Gemm", ["qkv_reshape_out", "gemm_weight", "gemm_bias"], ["gemm_out"], "gemm",
      alpha=1.0, beta=1.0, transA=0, transB=0)
    n("Gather", ["qkv_shape", "indices_1"], ["qkv_shape_1"], "shape_qkv_gather_1", axis=0)
    n("Gather", ["qkv_shape", "indices_0"], ["qkv_shape_0"], "shape_qkv_gather_0", axis=0)
    n("Unsqueeze", ["qkv_shape_1", "axes_0"], ["qkv_shape_1_unsqueeze_out"], "qkv_shape_1_unsqueeze")
    n("Unsqueeze", ["qkv_shape_0", "axes_0"], ["qkv_shape_0_unsqueeze_out"], "qkv_shape_0_unsqueeze")
    n("Concat", ["qkv_shape_0_unsqueeze_out", "qkv_shape_1_unsqueeze_out", "qkv_hidden"],
      ["shape_qkv_concat_out"], "shape_qkv_concat", axis=0)
    n("Reshape", ["gemm_out", "shape_qkv_concat_out"], ["gemm_reshape_out"], "gemm_reshape")
    n("Add", _pair("gemm_reshape_out", "layernorm_input", swap), ["skip_output"], "add_skip")
    n("LayerNormalization", ["skip_output", "layer_norm_weight", "layer_norm_bias"], ["output"],
      "layernorm2", **{eps: EPS})

    head = hidden // heads
    tril = np.tril(np.ones((max_seq, max_seq))).reshape(-1).astype(np.uint8)
    g.rand("layer_norm_weight", [hidden], 0.5, 1.5)
    g.rand("layer_norm_bias", [hidden])
    g.rand("matmul_fc_weight", [hidden, 3 * hidden], -0.25, 0.25)
    g.rand("add_fc_weight", [3 * hidden])
    g.rand("gemm_weight", [hidden, hidden], -0.25, 0.25)
    g.rand("gemm_bias", [hidden])
    g.init("undir_mask", U8, [1, 1, max_seq, max_seq], tril.tolist())
    g.init("div_weight", F, [], [math.sqrt(head)])
    g.init("sub_weight", F, [], [1.0])
    g.init("where_weight", F, [], [-10000.0])
    g.init("mul_weight", F, [], [-10000])
    g.init("input_mask_shape", I64, [2], [0, -1])
    g.init("starts_0", I64, [1], [0])
    g.init("concat_n1", I64, [1], [-1])
    g.init("starts_n1", I64, [1], [-1])
    g.init("ends_inf", I64, [1], [9223372036854775807])
    g.init("starts_n2", I64, [1], [-2])
    g.init("ends_n1", I64, [1], [-1])
    g.init("axes_0", I64, [1], [0])
    g.init("axes_2", I64, [1], [2])
    g.init("axes_3", I64, [1], [3])
    g.init("steps_1", I64, [1], [1])
    g.init("indices_0", I64, [], [0])
    g.init("indices_1", I64, [], [1])
    g.init("qkv_hidden", I64, [1], [hidden])
    g.init("reshape_x_shape", I64, [4], [0, 0, heads, head])
    g.init("reshape_weight_qkv", I64, [3], [0, 0, hidden])
    g.init("split_1_1", I64, [2], [1, 1])
    g.init("split_q_k_v", I64, [3], [hidden, hidden, hidden])
    g.init("axes_1", I64, [1], [1])

    total = "past_sequence_length + sequence_length"
    m = g.model("GPT2",
                [("input_1", F, ["batch_size", "sequence_length", hidden]),
                 ("input_2", F, ["batch_size", "sequence_length", hidden]),
                 ("input_mask", F, ["batch_size", total]),
                 ("past", F, [2, "batch_size", heads, "past_sequence_length", head])],
                [("output", F, ["batch_size", "sequence_length", hidden]),
                 ("present", F, [2, "batch_size", heads, total, head])], opset)
    # set 0: batch 2, 4 new tokens after 3 cached, row 1 left-padded by 2;
    # set 1: batch 1, 5 tokens, no cache (P = 0)
    rng = np.random.default_rng(100 + seed)
    sets = []
    for B, S, P, pad in ((2, 4, 3, 2), (1, 5, 0, 0)):
        mask = np.ones((B, P + S), np.float32)
        mask[B - 1, :pad] = 0
        size = {"batch_size": B, "sequence_length": S, "past_sequence_length": P, total: P + S}
        sets.append(feeds_for(m, lambda nm, k, d: size[d.dim_param] if d.dim_param else d.dim_value,
                              rng, {"input_mask": mask}))
    return m, sets


def gpt2_embedlayer(hidden=32, attn_hidden=16, heads=4, pos=100, word=101, token=10, eps=0.1,
                    one_attention_node=False, skip_layer_norm=True, output_sum=False, opset=16):
    """create_gpt2_embedlayer: three Gather embeddings of the same ids, a
    com.microsoft SkipLayerNormalization (or Add + LayerNormalization), a
    stand-in attention (three MatMuls summed, or a com.microsoft Attention
    and a MatMul) and a final com.microsoft SkipLayerNormalization.  The
    weights are the original's ramps (i + c) / size."""
    g = Graph(0)
    n = g.node
    n("SkipLayerNormalization", ["skip_layernorm_out", "qkv_out", "layernorm_weight", "layernorm_bias",
                                 "dense_bias"], ["output_0"], "attn_skip_layernorm", domain=MS, epsilon=eps)
    n("Gather", ["word_embeddings_weight", "ids"], ["gather_0_out"], "gather_word_embeddings")
    n("Gather", ["pos_embeddings_weight", "ids"], ["gather_1_out"], "gather_position_embeddings")
    n("Add", ["gather_0_out", "gather_1_out"], ["add_0_out"], "add_before_layernorm")
    n("Gather", ["token_embeddings_weight", "ids"], ["gather_2_out"], "gather_token_embeddings")
    if skip_layer_norm:
        n("SkipLayerNormalization", ["add_0_out", "gather_2_out", "layernorm_weight", "layernorm_bias"],
          ["skip_layernorm_out"] if not output_sum else ["skip_layernorm_out", "", "", "embedding_sum"],
          "skip_layernorm", domain=MS, epsilon=eps)
    else:
        n("Add", ["add_0_out", "gather_2_out"], ["embedding_sum"], "embedding_sum")
        n("LayerNormalization", ["embedding_sum", "layernorm_weight", "layernorm_bias"],
          ["skip_layernorm_out"], "layernorm", epsilon=eps)
    if one_attention_node:
        n("Attention", ["skip_layernorm_out", "qkv_weight", "qkv_bias", ""], ["attn_out"], "qkv_attn",
          domain=MS, num_heads=heads)
        n("MatMul", ["attn_out", "fix_hidden_size"], ["qkv_out"], "matmul_after_attn")
    else:
        for t in "qkv":
            n("MatMul", ["skip_layernorm_out", t + "_weight"], [t + "_out"], t + "_attn")
        n("Add", ["q_out", "k_out"], ["qk_out"], "qk_attn")
        n("Add", ["qk_out", "v_out"], ["qkv_out"], "qkv_attn")

    def ramp(name, dims, c):
        size = int(np.prod(dims))
        g.init(name, F, dims, [(i + c) / size for i in range(size)])

    ramp("dense_bias", [hidden], 12)
    ramp("word_embeddings_weight", [word, hidden], 1)
    ramp("pos_embeddings_weight", [pos, hidden], 2)
    ramp("token_embeddings_weight", [token, hidden], 3)
    g.init("layernorm_weight", F, [hidden], [(i + 4) / hidden for i in range(hidden)])
    g.init("layernorm_bias", F, [hidden], [(i + 5) / hidden for i in range(hidden)])
    if one_attention_node:
        ramp("qkv_weight", [hidden, hidden], 9)
        g.init("qkv_bias", F, [hidden], [(i + 10) / hidden for i in range(hidden)])
        ramp("fix_hidden_size", [attn_hidden, hidden], 11)
    else:
        for c, t in enumerate("qkv"):
            ramp(t + "_weight", [hidden, hidden], 6 + c)
    outs = [("output_0", F, ["batch_size", "sequence_length", hidden])]
    if output_sum:
        outs.append(("embedding_sum", F, ["batch_size", "sequence_length", hidden]))
    m = g.model("GPT2_embedlayer_graph", [("ids", I32, ["batch_size", "sequence_length"])], outs,
                opset, extra_opsets=[(MS, 1)])
    rng = np.random.default_rng(7)
    sets = [{"ids": rng.integers(0, token, (2, 5)).astype(np.int32)}]
    return m, sets


CASES = {
    "gpt2_attention": lambda: gpt2_attention(),
    "gpt2_attention_add": lambda: gpt2_attention(swap=True),
    "gpt2_embedlayer": lambda: gpt2_embedlayer(),
    "gpt2_embedlayer_one_attn": lambda: gpt2_embedlayer(one_attention_node=True),
    "gpt2_embedlayer_one_attn_output_sum": lambda: gpt2_embedlayer(one_attention_node=True,
                                                                   output_sum=True),
    # valid twins: epsilon spelled right, opset 17; the embed-layer graph's
    # SkipLayerNormalizations written with standard ops
    "gpt2_attention_valid": lambda: gpt2_attention(valid=True),
    "gpt2_attention_add_valid": lambda: gpt2_attention(swap=True, valid=True),
    "gpt2_embedlayer_valid": lambda: _expanded(gpt2_embedlayer()),
}


def _expanded(ms):
    return expand_skip_layer_norm(ms[0]), ms[1]


if __name__ == "__main__":
    main(sys.argv, CASES)
