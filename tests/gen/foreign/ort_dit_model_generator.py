"""The Diffusion Transformer (DiT, F5-TTS) attention test graphs of ONNX
Runtime's transformer optimizer tests.

Source: microsoft/onnxruntime, onnxruntime/test/python/transformers/
dit_model_generator.py at commit 2090ec9b37f72fcac0315c1ba9a81403029f31e4
(MIT License, Copyright (c) Microsoft Corporation): create_dit_attention
(with and without use_fp16_casts) and create_dit_attention_no_k_transpose;
ONNX Runtime's FusionMultiHeadAttentionDiT tests expect one
MultiHeadAttention in each.  The form: Q/K/V MatMuls without bias, fixed
Reshape shapes, K transposed to BNSH and then again to BNHS, the scores
scaled by Mul(100) with no 1/sqrt(d), Softmax(-1); the fp16 variant wraps
the Softmax in Casts (to float32 before, to float16 after, V cast to float16
too) and casts the merged heads back before the output projection; the
no_k_transpose graph takes Q, K (already BNHS) and V as inputs.

Rebuilt node for node (names, order, constants, fixed shapes, opset 17,
IR version 7) with this directory's Graph helper.  The original's weights
are already random (uniform 0..1); they are random here too, from a fixed
seed.  The inputs are scaled by 0.05 so that the scale of 100 leaves the
softmax short of a hard argmax.

    /usr/bin/python3 tests/gen/foreign/ort_dit_model_generator.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, feeds_for, main  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def dit_attention(B=2, S=4, N=4, H=8, scale=100.0, fp16_casts=False):
    g = Graph(31)
    n = g.node
    D = N * H
    for t in "qkv":
        n("MatMul", ["input_0", t + "_weight"], [t + "_proj"], t + "_matmul")
        g.rand(t + "_weight", [D, D], 0.0, 1.0)
        n("Reshape", [t + "_proj", t + "_shape"], [t + "_reshaped"], t + "_reshape")
        g.init(t + "_shape", I64, [4], [B, S, N, H])
        n("Transpose", [t + "_reshaped"], [t + "_bnsh"], t + "_transpose", perm=[0, 2, 1, 3])
        if t == "k":
            n("Transpose", ["k_bnsh"], ["k_bnhs"], "k_pre_transpose", perm=[0, 1, 3, 2])
    n("MatMul", ["q_bnsh", "k_bnhs"], ["qk_scores"], "qk_matmul")
    scores = "qk_scores"
    if fp16_casts:
        n("Cast", ["qk_scores"], ["qk_scores_fp32"], "cast_to_fp32", to=1)
        scores = "qk_scores_fp32"
    g.init("attn_scale", F, [], [scale])
    n("Mul", [scores, "attn_scale"], ["qk_scaled"], "qk_scale")
    n("Softmax", ["qk_scaled"], ["attn_weights"], "softmax", axis=-1)
    probs, v = "attn_weights", "v_bnsh"
    if fp16_casts:
        n("Cast", ["attn_weights"], ["attn_weights_fp16"], "cast_to_fp16", to=10)
        n("Cast", ["v_bnsh"], ["v_bnsh_fp16"], "cast_v_to_fp16", to=10)
        probs, v = "attn_weights_fp16", "v_bnsh_fp16"
    n("MatMul", [probs, v], ["attn_out"], "attn_v_matmul")
    n("Transpose", ["attn_out"], ["attn_transposed"], "attn_transpose", perm=[0, 2, 1, 3])
    n("Reshape", ["attn_transposed", "out_shape"], ["attn_flat"], "attn_reshape")
    g.init("out_shape", I64, [3], [B, S, D])
    flat = "attn_flat"
    if fp16_casts:
        n("Cast", ["attn_flat"], ["attn_flat_fp32"], "cast_attn_flat_to_fp32", to=1)
        flat = "attn_flat_fp32"
    n("MatMul", [flat, "o_weight"], ["output_0"], "o_matmul")
    g.rand("o_weight", [D, D], 0.0, 1.0)
    m = g.model("dit_attention", [("input_0", F, [B, S, D])], [("output_0", F, [B, S, D])], 17)
    return _finish(m)


def dit_attention_no_k_transpose(B=2, S=4, N=4, H=8, scale=100.0):
    g = Graph(32)
    n = g.node
    n("MatMul", ["q_bnsh", "k_bnhs"], ["qk_scores"], "qk_matmul")
    g.init("attn_scale", F, [], [scale])
    n("Mul", ["qk_scores", "attn_scale"], ["qk_scaled"], "qk_scale")
    n("Softmax", ["qk_scaled"], ["attn_weights"], "softmax", axis=-1)
    n("MatMul", ["attn_weights", "v_bnsh"], ["attn_out"], "attn_v_matmul")
    n("Transpose", ["attn_out"], ["attn_transposed"], "attn_transpose", perm=[0, 2, 1, 3])
    n("Reshape", ["attn_transposed", "out_shape"], ["output_0"], "attn_reshape")
    g.init("out_shape", I64, [3], [B, S, N * H])
    m = g.model("dit_attention_no_k_transpose",
                [("q_bnsh", F, [B, N, S, H]), ("k_bnhs", F, [B, N, H, S]), ("v_bnsh", F, [B, N, S, H])],
                [("output_0", F, [B, S, N * H])], 17)
    return _finish(m)


def _finish(m):
    m.ir_version = 7
    rng = np.random.default_rng(33)
    f = feeds_for(m, lambda nm, k, d: d.dim_value, rng)
    return m, [{k: (v * np.float32(0.05)).astype(np.float32) for k, v in f.items()}]


CASES = {
    "dit_attention": lambda: dit_attention(),
    "dit_attention_fp16_casts": lambda: dit_attention(fp16_casts=True),
    "dit_attention_no_k_transpose": lambda: dit_attention_no_k_transpose(),
}

if __name__ == "__main__":
    main(sys.argv, CASES)
