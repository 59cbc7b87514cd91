"""A real exporter's graph: the one-layer SmolLM (Llama-style decoder) that
onnxscript's ONNX Runtime fusion tests use.

Source: microsoft/onnxscript, onnxscript/rewriter/ort_fusions/models/
_smollm_1.py at commit 4a4082f3f8e6ef8b94ea54768e1b901df591734e (MIT
License, Copyright (c) Microsoft Corporation).  The original writes, in
onnxscript, the graph torch.onnx's dynamo exporter produced for one SmolLM
layer (opset 18); onnxscript's tests fuse RMSNormalization,
SkipRMSNormalization, RotaryEmbedding, SDPA and MultiHeadAttention in it.
Its forms: the causal mask as Trilu(ConstantOfShape(-FLT_MAX), 1), the
padding mask as Where(mask + causal == 0, -FLT_MAX, causal) and a chain of
four identity Transposes; rotary cos/sin from position_ids through a
[1, heads, 1] inverse-frequency table, rotate-half by Slice/Neg/Concat;
the scale split as head^-1/4 on Q and on K^T (K^T through a 3-D Reshape/
Transpose/Reshape); RMSNorm as x * Reciprocal(Sqrt(mean(x^2) + eps)) * w;
SiLU MLP; weights as Constant nodes (not initializers), the token
embedding tied to the LM head.

Rebuilt node for node (node order, variable names as output names,
attributes, opset 18, fixed [1, 10] inputs) with this directory's Graph
and Script helpers instead of onnxscript (not installed here).
Changed: sizes.  The original is SmolLM's real layer (hidden 2048 = 32
heads of 64, FFN 8192, vocabulary 49152: 1.2 GB of random weights); here
hidden 32 = 4 heads of 8, FFN 64, vocabulary 256, and every constant that
follows from the sizes follows them (the Reshape shapes, the rotate-half
split at head/2, the inverse frequencies 10000^(-2i/head), the scale
head^-1/4 = 0.59460356 for 0.35355338).  Weights are random from a fixed
seed (uniform -0.3..0.3; norm weights 0.5..1.5) where the original uses
uniform 0..1.  Data sets: the original's inputs (mask all ones, positions
0..9) and a left-padded row (mask 0 for the first 2 tokens), whose first
two queries see no key: every score is -FLT_MAX plus a score, so the
softmax is uniform over the 10 keys.

    /usr/bin/python3 tests/gen/foreign/onnxscript_smollm_1.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, Script, main  # noqa: E402
import npref  # noqa: E402  (common puts tests/gen on the path)

F, I64 = TensorProto.FLOAT, TensorProto.INT64
S, HEADS, HD, VOCAB, FFN = 10, 4, 8, 256, 64
HID = HEADS * HD
FMIN = -3.4028234663852886e38

# ops npref lacks that this graph uses
npref.OPS.setdefault("Reciprocal", lambda x: (1 / x).astype(x.dtype))
npref.OPS.setdefault("Sigmoid", lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype))


def smollm_1():
    g = Graph(51)
    s = Script(g)
    rng = g.rng

    def weight(out, shape, lo=-0.3, hi=0.3):
        g.node("Constant", [], [out], "", value=numpy_helper.from_array(
            rng.uniform(lo, hi, shape).astype(np.float32)))
        return out

    consts = [0]

    def c(v):   # a literal operand, as onnxscript turns it into a Constant
        consts[0] += 1
        return s.const("val_c%d" % consts[0], v)

    ln0 = weight("model_layers_0_input_layernorm_weight", [HID], 0.5, 1.5)
    ln1 = weight("model_layers_0_post_attention_layernorm_weight", [HID], 0.5, 1.5)
    lnf = weight("model_norm_weight", [HID], 0.5, 1.5)
    head = weight("lm_head_weight", [VOCAB, HID])
    wq = weight("model_layers_0_self_attn_q_proj_weight", [HID, HID])
    wk = weight("model_layers_0_self_attn_k_proj_weight", [HID, HID])
    wv = weight("model_layers_0_self_attn_v_proj_weight", [HID, HID])
    wo = weight("model_layers_0_self_attn_o_proj_weight", [HID, HID])
    wg = weight("model_layers_0_mlp_gate_proj_weight", [FFN, HID])
    wu = weight("model_layers_0_mlp_up_proj_weight", [FFN, HID])
    wd = weight("model_layers_0_mlp_down_proj_weight", [HID, FFN])

    s("Gather", "embedding", head, "input0", axis=0)
    s("ConstantOfShape", "minus_inf_10x10", c([S, S]), value=helper.make_tensor("v", F, [1], [FMIN]))
    s("Trilu", "mask_10x10", "minus_inf_10x10", c(1))
    s("Reshape", "slice_5", "mask_10x10", c([1, 1, S, S]))
    s("Unsqueeze", "unsqueeze_2", "input1", c(1))
    s("Unsqueeze", "unsqueeze_3", "unsqueeze_2", c(2))
    s("Add", "add", "slice_5", "unsqueeze_3")
    s("Equal", "eq", "add", c(0.0))
    s("Where", "masked_fill", "eq", c(-3.4028235e38), "slice_5")
    s("Transpose", "val_179", "masked_fill", perm=[2, 1, 0, 3])
    s("Transpose", "slice_scatter", "val_179", perm=[2, 1, 0, 3])
    s("Transpose", "val_191", "slice_scatter", perm=[1, 0, 2, 3])
    s("Transpose", "slice_scatter_1", "val_191", perm=[1, 0, 2, 3])
    s("Unsqueeze", "unsqueeze_6", "input2", c(1))
    s("Cast", "to_copy_1", "unsqueeze_6", to=1)
    inv_freq = (10000.0 ** (-2.0 * np.arange(HD // 2) / HD)).astype(np.float32).reshape(1, HD // 2, 1)
    s("Constant", "view_1", value=numpy_helper.from_array(inv_freq))
    s("Reshape", "view_2", "to_copy_1", c([1, 1, S]), allowzero=0)
    s("MatMul", "bmm", "view_1", "view_2")
    s("Reshape", "view_3", "bmm", c([1, HD // 2, S]), allowzero=0)
    s("Transpose", "transpose", "view_3", perm=[0, 2, 1])
    s("Concat", "cat", "transpose", "transpose", axis=-1)
    s("Cos", "cos", "cat")
    s("Sin", "sin", "cat")
    x = rms_norm(s, c, "embedding", ln0, ("pow_1", "mean", "add_1", "val_244", "rsqrt", "mul_3", "mul_4"))
    for out, w, t in (("view_5", wq, "t"), ("view_7", wk, "t_1"), ("view_9", wv, "t_2")):
        s("Transpose", t, w, perm=[1, 0])
        s("MatMul", out, x, t)
    for src, v, tr in (("view_5", "view_10", "transpose_1"), ("view_7", "view_11", "transpose_2"),
                       ("view_9", "view_12", "transpose_3")):
        s("Reshape", v, src, c([1, S, HEADS, HD]), allowzero=0)
        s("Transpose", tr, v, perm=[0, 2, 1, 3])
    s("Unsqueeze", "unsqueeze_7", "cos", c(1))
    s("Unsqueeze", "unsqueeze_8", "sin", c(1))
    rope(s, c, "transpose_1", ("mul_5", "val_267", "slice_19", "val_277", "slice_20", "neg", "cat_1",
                              "mul_6", "add_2"))
    rope(s, c, "transpose_2", ("mul_7", "val_287", "slice_21", "val_297", "slice_22", "neg_1", "cat_2",
                              "mul_8", "add_3"))
    s("Reshape", "val_346", "add_3", c([-1, S, HD]), allowzero=0)
    s("Transpose", "val_347", "val_346", perm=[0, 2, 1])
    s("Reshape", "val_349", "val_347", c([1, HEADS, HD, S]), allowzero=0)
    scale = float(np.float32(HD ** -0.25))
    s("Mul", "val_351", "add_2", c([scale]))
    s("Mul", "val_353", "val_349", c([scale]))
    s("MatMul", "val_354", "val_351", "val_353")
    s("Add", "val_355", "val_354", "slice_scatter_1")
    s("Softmax", "val_356", "val_355", axis=-1)
    s("MatMul", "getitem", "val_356", "transpose_3")
    s("Transpose", "transpose_4", "getitem", perm=[0, 2, 1, 3])
    s("Reshape", "view_13", "transpose_4", c([1, S, -1]), allowzero=0)
    s("Transpose", "t_3", wo, perm=[1, 0])
    s("MatMul", "view_15", "view_13", "t_3")
    s("Add", "add_4", "embedding", "view_15")
    x = rms_norm(s, c, "add_4", ln1, ("pow_2", "mean_1", "add_5", "val_379", "rsqrt_1", "mul_9", "mul_10"))
    s("Transpose", "t_4", wg, perm=[1, 0])
    s("MatMul", "view_17", x, "t_4")
    s("Sigmoid", "val_383", "view_17")
    s("Mul", "silu", "view_17", "val_383")
    s("Transpose", "t_5", wu, perm=[1, 0])
    s("MatMul", "view_19", x, "t_5")
    s("Mul", "mul_11", "silu", "view_19")
    s("Transpose", "t_6", wd, perm=[1, 0])
    s("MatMul", "view_21", "mul_11", "t_6")
    s("Add", "add_6", "add_4", "view_21")
    x = rms_norm(s, c, "add_6", lnf, ("pow_3", "mean_2", "add_7", "val_391", "rsqrt_2", "mul_12", "mul_13"))
    s("Transpose", "t_7", head, perm=[1, 0])
    s("MatMul", "view_23", x, "t_7")
    s("Identity", "to_copy_12", "view_23")

    m = g.model("main_graph", [("input0", I64, [1, S]), ("input1", F, [1, S]), ("input2", I64, [1, S])],
                [("to_copy_12", F, [1, S, VOCAB]), ("add_3", F, [1, HEADS, S, HD]),
                 ("transpose_3", F, [1, HEADS, S, HD])], 18)
    data = np.random.default_rng(52)
    sets = []
    for pad in (0, 2):
        mask = np.ones((1, S), np.float32)
        mask[0, :pad] = 0
        sets.append({"input0": data.integers(0, VOCAB, (1, S)).astype(np.int64), "input1": mask,
                     "input2": np.arange(S, dtype=np.int64).reshape(1, S)})
    return m, sets


def rms_norm(s, c, x, w, names):
    p, mean, add, sq, rs, mul, out = names
    s("Pow", p, x, c(2.0))
    s("ReduceMean", mean, p, c([-1]), keepdims=1, noop_with_empty_axes=0)
    s("Add", add, mean, c(1e-05))
    s("Sqrt", sq, add)
    s("Reciprocal", rs, sq)
    s("Mul", mul, x, rs)
    return s("Mul", out, w, mul)


def rope(s, c, x, names):
    """x * cos + rotate_half(x) * sin, rotate_half by Slice/Neg/Concat."""
    m1, st1, lo, st2, hi, neg, cat, m2, out = names
    s("Mul", m1, x, "unsqueeze_7")
    s("Constant", st1, value_ints=[1])
    s("Slice", lo, x, c([0]), c([HD // 2]), c([3]), st1)
    s("Constant", st2, value_ints=[1])
    s("Slice", hi, x, c([HD // 2]), c([9223372036854775807]), c([3]), st2)
    s("Neg", neg, hi)
    s("Concat", cat, neg, lo, axis=-1)
    s("Mul", m2, cat, "unsqueeze_8")
    return s("Add", out, m1, m2)


CASES = {"smollm_1": smollm_1}

if __name__ == "__main__":
    main(sys.argv, CASES)
