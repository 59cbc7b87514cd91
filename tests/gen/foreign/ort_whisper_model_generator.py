"""The Whisper encoder self-attention test graphs of ONNX Runtime's Whisper
model generator.

Source: microsoft/onnxruntime, onnxruntime/test/python/transformers/
whisper_model_generator.py at commit 0388430645a7f638d0d666f20c8e3c30d5382f58
(MIT License, Copyright (c) Microsoft Corporation), function
create_whisper_encoder_attention (unfused form); ONNX Runtime's
test_whisper.py expects its optimizer to fuse one Attention.

Rebuilt node for node (names, op order, attributes, integer constants,
fixed and symbolic dims, opset 16) with this directory's Graph helper
instead of the original's code.  The form: Q scaled by Mul before the head
split, no K bias, heads folded into the batch as [B*N, S, H] by Reshapes
whose shapes are computed from Shape/Gather/Mul/Concat, Softmax(axis 2)
over 3-D scores, no mask; a com.microsoft SkipLayerNormalization before
and after (or, add_before_layernorm, Add + LayerNormalization before).
Kept as in the original: the add_k variant reshapes K with a tensor no
node writes ("bsnh_reshape"; the original at that commit has the same
name: a typo for the "kv_bsnh_reshape" constant V's path reads, which
ONNX Runtime's fusion test never notices because it only pattern-matches).
Changed: hidden 768 and 12 heads are 64 and 4 (the sequence stays 1500,
fixed in the original's input); weights the original fills with ones are
random; each graph also has a _valid twin whose SkipLayerNormalizations
are written with standard ops at opset 17 (common.expand_skip_layer_norm)
and whose add_k K path reads "kv_bsnh_reshape".

    /usr/bin/python3 tests/gen/foreign/ort_whisper_model_generator.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, expand_skip_layer_norm, feeds_for, main  # noqa: E402

F = TensorProto.FLOAT
EPS = 0.000009999999747378752
MS = "com.microsoft"
SEQ = 1500


def whisper_encoder_attention(hidden=64, heads=4, add_before_layernorm=False, add_k=False, seed=4,
                              valid=False):
    head = hidden // heads
    g = Graph(seed)
    n = g.node
    if add_before_layernorm:
        n("Add", ["input_0", "input_0"], ["layernorm_output_to_skiplayernorm"], "add_before_layernorm")
        n("LayerNormalization", ["layernorm_output_to_skiplayernorm", "layernorm_weight", "layernorm_bias"],
          ["layernorm_output_to_matmul"], "layernorm", epsilon=EPS)
    else:
        n("SkipLayerNormalization", ["input_0", "input_0", "layernorm_weight", "layernorm_bias"],
          ["layernorm_output_to_matmul", "", "", "layernorm_output_to_skiplayernorm"], "skiplayernorm",
          domain=MS, epsilon=EPS)
    x = "layernorm_output_to_matmul"
    n("MatMul", [x, "q_weight"], ["q_matmul_output"], "q_path_matmul")
    n("Add", ["q_bias", "q_matmul_output"], ["q_add_output"], "q_path_add")
    n("Mul", ["q_add_output", "q_scale"], ["q_mul_output"], "q_path_mul")
    n("Reshape", ["q_mul_output", "q_bsnh_reshape"], ["q_4d_bsnh"], "q_reshape_to_4d")
    n("Transpose", ["q_4d_bsnh"], ["q_4d_bnsh"], "q_transpose_to_bnsh", perm=[0, 2, 1, 3])
    n("Reshape", ["q_4d_bnsh", "q_attn_heads_output"], ["q_output_(num_heads*batch_size,seq_len,head_size)"],
      "q_reshape_to_3d")
    n("MatMul", [x, "k_weight"], ["k_matmul_output"], "k_path_matmul")
    if add_k:
        n("Add", ["k_bias", "k_matmul_output"], ["k_add_output"], "k_path_add")
        n("Reshape", ["k_add_output", "kv_bsnh_reshape" if valid else "bsnh_reshape"], ["k_4d_bsnh"],
          "k_reshape_to_4d")
    else:
        n("Reshape", ["k_matmul_output", "kv_bsnh_reshape"], ["k_4d_bsnh"], "k_reshape_to_4d")
    n("Transpose", ["k_4d_bsnh"], ["k_4d_bnsh"], "k_transpose_to_bnsh", perm=[0, 2, 1, 3])
    n("Reshape", ["k_4d_bnsh", "k_attn_heads_output"], ["k_output_(num_heads*batch_size,seq_len,head_size)"],
      "k_reshape_to_3d")
    n("Transpose", ["k_output_(num_heads*batch_size,seq_len,head_size)"],
      ["k_output_(num_heads*batch_size,head_size,seq_len)"], "k_transpose_last_two_dims", perm=[0, 2, 1])
    n("MatMul", [x, "v_weight"], ["v_matmul_output"], "v_path_matmul")
    n("Add", ["v_bias", "v_matmul_output"], ["v_add_output"], "v_path_add")
    n("Reshape", ["v_add_output", "kv_bsnh_reshape"], ["v_4d_bsnh"], "v_reshape_to_4d")
    n("Transpose", ["v_4d_bsnh"], ["v_4d_bnsh"], "v_transpose_to_bnsh", perm=[0, 2, 1, 3])
    n("Reshape", ["v_4d_bnsh", "v_attn_heads_output"], ["v_output_(num_heads*batch_size,seq_len,head_size)"],
      "v_reshape_to_3d")
    # the [B*N, -1, H] shapes from the input's batch
    n("Shape", [x], ["shape_output"], "shape")
    n("Gather", ["shape_output", "idx_0"], ["gather_0_output"], "gather_0", axis=0)
    n("Mul", ["gather_0_output", "num_heads_int"], ["mul_attn_heads_output"], "mul_num_heads")
    n("Unsqueeze", ["mul_attn_heads_output", "unsqueeze_axes_input"], ["unsqueeze_attn_heads_output"],
      "unsqueeze_num_heads")
    for t in "qkv":
        n("Concat", ["unsqueeze_attn_heads_output", "neg_one", "head_size"], ["%s_attn_heads_output" % t],
          "%s_num_heads" % t, axis=0)
    n("Constant", [], ["q_bsnh_reshape"], "", value=numpy_helper.from_array(
        np.array([0, 0, heads, head], np.int64), name="const_tensor"))
    n("Constant", [], ["kv_bsnh_reshape"], "", value=numpy_helper.from_array(
        np.array([0, -1, heads, head], np.int64), name="const_tensor"))
    n("Gather", ["shape_output", "idx_1"], ["gather_1_output"], "gather_1", axis=0)
    n("Unsqueeze", ["gather_0_output", "unsqueeze_axes_input"], ["unsqueeze_0_output"], "unsqueeze_0")
    n("Unsqueeze", ["gather_1_output", "unsqueeze_axes_input"], ["unsqueeze_1_output"], "unsqueeze_1")
    n("Concat", ["unsqueeze_0_output", "num_heads", "unsqueeze_1_output", "head_size"], ["bnsh_format"], "",
      axis=0)
    n("Concat", ["unsqueeze_0_output", "unsqueeze_1_output", "hidden_size"], ["bsd_format"], "", axis=0)
    n("MatMul", ["q_output_(num_heads*batch_size,seq_len,head_size)",
                 "k_output_(num_heads*batch_size,head_size,seq_len)"],
      ["qk_output_(num_heads*batch_size,seq_len,seq_len)"], "matmul_qk")
    n("Softmax", ["qk_output_(num_heads*batch_size,seq_len,seq_len)"], ["softmax_output"], "softmax_qk", axis=2)
    n("MatMul", ["softmax_output", "v_output_(num_heads*batch_size,seq_len,head_size)"],
      ["qkv_output_(num_heads*batch_size,seq_len,head_size)"], "matmul_qkv")
    n("Reshape", ["qkv_output_(num_heads*batch_size,seq_len,head_size)", "bnsh_format"], ["qkv_bnsh"],
      "reshape_qkv_to_bnsh")
    n("Transpose", ["qkv_bnsh"], ["qkv_bsnh"], "transpose_bnsh_to_bsnh", perm=[0, 2, 1, 3])
    n("Reshape", ["qkv_bsnh", "bsd_format"], ["attn_output"], "qkv_bsd")
    n("MatMul", ["attn_output", "matmul_after_attn_initializer"], ["matmul_after_attn_output"],
      "matmul_after_attn")
    n("Add", ["add_after_attn_initializer", "matmul_after_attn_output"], ["add_after_attn_output"],
      "add_after_attn")
    n("SkipLayerNormalization", ["layernorm_output_to_skiplayernorm", "add_after_attn_output",
                                 "layernorm_weight", "layernorm_bias"],
      ["output_0", "", "", "output_1"], "next_skiplayernorm", domain=MS, epsilon=EPS)

    g.rand("layernorm_weight", [hidden], 0.5, 1.5)
    g.rand("layernorm_bias", [hidden])
    g.rand("matmul_after_attn_initializer", [hidden, hidden], -0.25, 0.25)
    g.rand("add_after_attn_initializer", [hidden])

    def scalar(name, v, dt=np.int64):
        g.inits.append(numpy_helper.from_array(np.array(v, dt), name))

    scalar("num_heads_int", heads)
    scalar("num_heads", [heads])
    scalar("head_size", [head])
    scalar("hidden_size", [hidden])
    scalar("q_scale", 1 / np.sqrt(head), np.float32)
    scalar("idx_0", 0)
    scalar("idx_1", 1)
    scalar("neg_one", [-1])
    scalar("unsqueeze_axes_input", [0])
    for t in ("q", "k", "v"):
        g.rand(t + "_weight", [hidden, hidden], -0.25, 0.25)
        if t != "k":
            g.rand(t + "_bias", [hidden])
        elif add_k:
            g.rand("k_bias", [hidden])
    m = g.model("whisper_encoder_attention_graph", [("input_0", F, ["batch_size", SEQ, hidden])],
                [("output_0", F, ["batch_size", SEQ, hidden]),
                 ("output_1", F, ["batch_size", "sequence_length", hidden])],
                16, extra_opsets=[(MS, 1)])
    rng = np.random.default_rng(100 + seed)
    sets = [feeds_for(m, lambda nm, k, d: 1 if d.dim_param else d.dim_value, rng)]
    return m, sets


def _valid(**k):
    m, sets = whisper_encoder_attention(valid=True, **k)
    return expand_skip_layer_norm(m), sets


VARIANTS = {
    "whisper_encoder_attention": {},
    "whisper_encoder_attention_add_ln": dict(add_before_layernorm=True),
    "whisper_encoder_attention_add_k": dict(add_k=True),
}
CASES = {n: (lambda k: lambda: whisper_encoder_attention(**k))(k) for n, k in VARIANTS.items()}
CASES.update({n + "_valid": (lambda k: lambda: _valid(**k))(k) for n, k in VARIANTS.items()})

if __name__ == "__main__":
    main(sys.argv, CASES)
