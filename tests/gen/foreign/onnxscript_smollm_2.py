"""A real exporter's graph: the one-layer SmolLM with a KV cache that
onnxscript's ONNX Runtime fusion tests use.

Source: microsoft/onnxscript, onnxscript/rewriter/ort_fusions/models/
_smollm_2.py at commit 7b89760d415aeb5ddc9b466dbed61030f4689638 (MIT
License, Copyright (c) Microsoft Corporation).  The original writes, in
onnxscript, what torch.onnx's dynamo exporter produced for one SmolLM
layer decoding 30 new tokens after 16 cached ones (opset 18); onnxscript's
tests fuse RMSNorm, rotary embedding, SDPA and GroupQueryAttention-style
attention in it.  Its forms, besides those of onnxscript_smollm_1.py:
CastLike on constants; every 1-D index built as Cast(n) + Reshape([-1]);
the causal mask from Expand(-FLT_MAX) + Trilu(upper) times
Cast(Range(0, 47) > Range(16, 46)), Unsqueezed and Sliced to [1, 1, 30, 46];
the inverse frequencies an input weight, Expanded and reshaped; the past K
and V Concatenated before the attention; the scale 1/sqrt(head) from Q's
shape (Shape/Gather/CastLike/Sqrt/Div), its square root on Q and on K^T;
K^T through Reshape/Transpose/Reshape with Shape-sliced dims; Dropout with
ratio 0.0 as an input; an unused Expand left by the flash-attention
decomposition; 2-D MatMuls between Reshapes for every projection.

Rebuilt node for node (node order, variable names as output names,
attributes, opset 18, the fixed shapes) with this directory's Graph and
Script helpers instead of onnxscript (not installed here).
Changed: sizes.  The original is SmolLM's real layer (32 heads of 64,
hidden 2048, FFN 8192, vocabulary 49152); here 4 heads of 8 (hidden 32),
FFN 64, vocabulary 256, the sequence (30) and the cache (16) as in the
original, and every constant that follows from the sizes follows them.
Weights are random from a fixed seed (uniform -0.3..0.3, norm weights
0.5..1.5, the inverse frequencies 10000^(-2i/8) where the original draws
uniform 0..1); the inputs as the original's test makes them (positions
0..29, a random cache).

    /usr/bin/python3 tests/gen/foreign/onnxscript_smollm_2.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Graph, Script, main  # noqa: E402
import npref  # noqa: E402  (common puts tests/gen on the path)

F, I64 = TensorProto.FLOAT, TensorProto.INT64
S, P, HEADS, HD, VOCAB, FFN = 30, 16, 4, 8, 256, 64
HID, T = HEADS * HD, S + P
I64MAX = 9223372036854775807

# ops npref lacks that this graph uses
npref.OPS.setdefault("Reciprocal", lambda x: (1 / x).astype(x.dtype))
npref.OPS.setdefault("Sigmoid", lambda x: (1 / (1 + np.exp(-x))).astype(x.dtype))
npref.OPS.setdefault("Abs", np.abs)
npref.OPS.setdefault("Ceil", np.ceil)
npref.OPS.setdefault("CastLike", lambda x, like, saturate=1: x.astype(like.dtype))
npref.OPS.setdefault("Dropout", lambda x, ratio=None, training_mode=None, seed=0:
                     (x, np.ones(x.shape, bool)))
_npref_trilu = npref.OPS["Trilu"]
npref.OPS["Trilu"] = lambda x, k=None, upper=1: _npref_trilu(x, None if k is None else np.asarray(k), upper)


class Export(Script):
    """onnxscript's renderings: literals as Constant nodes (val_cN), and
    the exporter's 1-D index idiom Cast(n, to=INT64) + Reshape(., [-1])."""

    def __init__(self, g):
        super().__init__(g)
        self.n = 0

    def lit(self, v):
        self.n += 1
        return self.const("val_c%d" % self.n, v)

    def index(self, v):
        """A 1-D int64 [v] as the exporter builds it."""
        self.n += 1
        c = self("Cast", "val_i%d" % self.n, self.lit(v), to=7)
        sh = self("Constant", "val_s%d" % self.n, value_ints=[-1])
        return self("Reshape", "val_r%d" % self.n, c, sh, allowzero=0)

    def slice(self, out, x, start, end, axis):
        st = self.index(start), self.index(end), self.index(axis)
        self.n += 1
        step = self("Constant", "val_st%d" % self.n, value_ints=[1])
        return self("Slice", out, x, *st, step)

    def shape(self, v):
        """Cast(list, to=INT64): the exporter's static shape constants."""
        self.n += 1
        return self("Cast", "val_sh%d" % self.n, self.lit(v), to=7)

    def expand(self, out, x, v):
        self.n += 1
        a = self("Abs", "size_%d" % self.n, self.shape(v))
        return self("Expand", out, x, a)

    def view(self, out, x, v):
        return self("Reshape", out, x, self.shape(v), allowzero=0)

    def unsqueeze(self, out, x, axis):
        self.n += 1
        d = self("Constant", "dim_%d" % self.n, value_int=axis)
        return self("Unsqueeze", out, x, self("Cast", "dim_0_%d" % self.n, d, to=7))


def smollm_2():
    g = Graph(61)
    s = Export(g)
    rng = g.rng
    w = {}
    for name, shape in (("model_layers_0_input_layernorm_weight", [HID]),
                        ("model_layers_0_post_attention_layernorm_weight", [HID]),
                        ("model_norm_weight", [HID])):
        g.rand(name, shape, 0.5, 1.5)
    for name, shape in (("lm_head_weight", [VOCAB, HID]), ("model_layers_0_self_attn_q_proj_weight", [HID, HID]),
                        ("model_layers_0_self_attn_k_proj_weight", [HID, HID]),
                        ("model_layers_0_self_attn_v_proj_weight", [HID, HID]),
                        ("model_layers_0_self_attn_o_proj_weight", [HID, HID]),
                        ("model_layers_0_mlp_gate_proj_weight", [FFN, HID]),
                        ("model_layers_0_mlp_up_proj_weight", [FFN, HID]),
                        ("model_layers_0_mlp_down_proj_weight", [HID, FFN])):
        g.rand(name, shape, -0.3, 0.3)
    g.init("model_rotary_emb_inv_freq", F, [HD // 2],
           (10000.0 ** (-2.0 * np.arange(HD // 2) / HD)).astype(np.float32).tolist())
    del w, rng

    s("Gather", "embedding", "lm_head_weight", "input_ids", axis=0)
    # the causal mask over the 46 keys, from the 47-wide one
    s("CastLike", "val_2", s.lit(1.0), s.lit(T))
    s("Range", "arange", s.lit(P), s.lit(T), "val_2")
    s("Cast", "val_5", s.lit(-3.4028235e38), to=1)
    s("Expand", "full", "val_5", s.shape([S, T + 1]))
    s("Constant", "diagonal__1", value_int=1)
    s("Trilu", "triu", "full", "diagonal__1", upper=1)
    s("CastLike", "val_10", s.lit(0.0), s.lit(T + 1))
    s("CastLike", "val_11", s.lit(1.0), s.lit(T + 1))
    s("Range", "arange_1", "val_10", s.lit(T + 1), "val_11")
    s.view("view", "arange", [-1, 1])
    s("Greater", "gt", "arange_1", "view")
    s("Cast", "convert_element_type_default", "gt", to=1)
    s("Mul", "mul", "triu", "convert_element_type_default")
    # rotary cos/sin from position_ids
    s.unsqueeze("unsqueeze", "model_rotary_emb_inv_freq", 0)
    s.slice("slice_1", "unsqueeze", 0, I64MAX, 1)
    s.unsqueeze("unsqueeze_1", "slice_1", 2)
    s("Cast", "_to_copy", "unsqueeze_1", to=1)
    s.expand("expand", "_to_copy", [1, -1, 1])
    s.slice("slice_2", "position_ids", 0, I64MAX, 0)
    s.unsqueeze("unsqueeze_2", "slice_2", 1)
    s.slice("slice_3", "unsqueeze_2", 0, I64MAX, 2)
    s("Cast", "_to_copy_1", "slice_3", to=1)
    s("Cast", "_to_copy_2", "expand", to=1)
    s("Cast", "_to_copy_3", "_to_copy_1", to=1)
    s.expand("expand_1", "_to_copy_2", [1, HD // 2, 1])
    s.view("view_1", "expand_1", [1, HD // 2, 1])
    s.expand("expand_2", "_to_copy_3", [1, 1, S])
    s.view("view_2", "expand_2", [1, 1, S])
    s("MatMul", "bmm", "view_1", "view_2")
    s.view("view_3", "bmm", [1, HD // 2, S])
    s("Transpose", "transpose", "view_3", perm=[0, 2, 1])
    s("Concat", "cat", "transpose", "transpose", axis=-1)
    s("Cos", "cos", "cat")
    s("Sin", "sin", "cat")
    s("Mul", "mul_1", "cos", s.lit(1.0))
    s("Mul", "mul_2", "sin", s.lit(1.0))
    s("Cast", "_to_copy_4", "mul_1", to=1)
    s("Cast", "_to_copy_5", "mul_2", to=1)
    x = rms_norm(s, "embedding", "model_layers_0_input_layernorm_weight", 0)
    for k, t in enumerate("qkv"):
        s("Transpose", "t" + ("_%d" % k if k else ""), "model_layers_0_self_attn_%s_proj_weight" % t, perm=[1, 0])
        s.view("view_%d" % (4 + 2 * k), x, [S, HID])
        s("MatMul", "mm" + ("_%d" % k if k else ""), "view_%d" % (4 + 2 * k), "t" + ("_%d" % k if k else ""))
        s.view("view_%d" % (5 + 2 * k), "mm" + ("_%d" % k if k else ""), [1, S, HID])
    for k in range(3):
        s.view("view_%d" % (10 + k), "view_%d" % (5 + 2 * k), [1, S, HEADS, HD])
        s("Transpose", "transpose_%d" % (1 + k), "view_%d" % (10 + k), perm=[0, 2, 1, 3])
    s.unsqueeze("unsqueeze_3", "_to_copy_4", 1)
    s.unsqueeze("unsqueeze_4", "_to_copy_5", 1)
    rope(s, "transpose_1", "add_1", ("mul_5", "slice_4", "slice_5", "neg", "cat_1", "mul_6"))
    rope(s, "transpose_2", "add_2", ("mul_7", "slice_6", "slice_7", "neg_1", "cat_2", "mul_8"))
    s("Concat", "cat_3", "past_key_values_0_0", "add_2", axis=-2)
    s("Concat", "cat_4", "past_key_values_0_1", "transpose_3", axis=-2)
    # the mask as [1, 1, 30, 46]
    s.unsqueeze("unsqueeze_5", "mul", 0)
    s.unsqueeze("unsqueeze_6", "unsqueeze_5", 1)
    s.slice("slice_8", "unsqueeze_6", 0, I64MAX, 2)
    s.slice("slice_9", "slice_8", 0, I64MAX, 3)
    s.expand("expand_3", "slice_9", [1, 1, -1, -1])
    s.slice("slice_10", "expand_3", 0, I64MAX, 0)
    s.slice("slice_11", "slice_10", 0, I64MAX, 1)
    s.slice("slice_12", "slice_11", 0, I64MAX, 2)
    s.slice("slice_13", "slice_12", 0, T, 3)
    # SDPA: scale from Q's last dim, its square root on Q and on K^T
    s("Shape", "val_175", "add_1", start=0)
    s("Gather", "val_177", "val_175", s("Constant", "val_176", value_ints=[-1]), axis=0)
    s("CastLike", "val_178", "val_177", "add_1")
    s("CastLike", "val_180", s("Constant", "val_179", value_float=1.0), "add_1")
    s("Sqrt", "val_181", "val_178")
    s("Div", "val_182", "val_180", "val_181")
    s("CastLike", "val_183", "val_182", "add_1")
    s("Shape", "val_184", "cat_3", start=0)
    s("Slice", "val_186", "val_184", s.lit([-1]), s("Constant", "val_185", value_ints=[I64MAX]))
    s("Slice", "val_188", "val_184", s.lit([-2]), s.lit([-1]))
    s("Slice", "val_190", "val_184", s("Constant", "val_189", value_ints=[-I64MAX - 1]), s.lit([-2]))
    s("Concat", "val_192", s("Constant", "val_191", value_ints=[-1]), "val_188", "val_186", axis=0)
    s("Reshape", "val_193", "cat_3", "val_192", allowzero=0)
    s("Transpose", "val_194", "val_193", perm=[0, 2, 1])
    s("Concat", "val_195", "val_190", "val_186", "val_188", axis=0)
    s("Reshape", "val_196", "val_194", "val_195", allowzero=0)
    s("Sqrt", "val_197", "val_183")
    s("Mul", "val_198", "add_1", "val_197")
    s("Sqrt", "val_199", "val_183")
    s("Mul", "val_200", "val_196", "val_199")
    s("MatMul", "val_201", "val_198", "val_200")
    s("Add", "val_202", "val_201", "slice_13")
    s("Softmax", "val_203", "val_202", axis=-1)
    g.node("Dropout", ["val_203", s.lit(0.0)], ["val_204", "_unused"], "")
    s("MatMul", "getitem", "val_204", "cat_4")
    # the flash-attention decomposition's logsumexp shape: computed, unused
    s("Shape", "val_206", "add_1", start=0)
    s("Slice", "val_209", "val_206", s.lit([0]), s.lit([1]))
    s("Slice", "val_211", "val_206", s.lit([1]), s.lit([2]))
    s("Slice", "val_212", "val_206", s.lit([-2]), s.lit([-1]))
    s("Cast", "val_213", "val_211", to=1)
    s("Div", "val_215", "val_213", s.lit(32.0))
    s("Ceil", "val_216", "val_215")
    s("Mul", "val_217", "val_216", s.lit(32.0))
    s("Cast", "val_218", "val_217", to=7)
    s("Concat", "val_219", "val_209", "val_212", "val_218", axis=0)
    s("Expand", "_scaled_dot_product_flash_attention_for_cpu__1", s.lit(0.0), "val_219")
    s("Transpose", "transpose_4", "getitem", perm=[0, 2, 1, 3])
    s.view("view_13", "transpose_4", [1, S, -1])
    s("Transpose", "t_3", "model_layers_0_self_attn_o_proj_weight", perm=[1, 0])
    s.view("view_14", "view_13", [S, HID])
    s("MatMul", "mm_3", "view_14", "t_3")
    s.view("view_15", "mm_3", [1, S, HID])
    s("Add", "add_3", "embedding", "view_15")
    x = rms_norm(s, "add_3", "model_layers_0_post_attention_layernorm_weight", 1)
    s("Transpose", "t_4", "model_layers_0_mlp_gate_proj_weight", perm=[1, 0])
    s.view("view_16", x, [S, HID])
    s("MatMul", "mm_4", "view_16", "t_4")
    s.view("view_17", "mm_4", [1, S, FFN])
    s("Sigmoid", "val_230", "view_17")
    s("Mul", "silu", "view_17", "val_230")
    s("Transpose", "t_5", "model_layers_0_mlp_up_proj_weight", perm=[1, 0])
    s.view("view_18", x, [S, HID])
    s("MatMul", "mm_5", "view_18", "t_5")
    s.view("view_19", "mm_5", [1, S, FFN])
    s("Mul", "mul_11", "silu", "view_19")
    s("Transpose", "t_6", "model_layers_0_mlp_down_proj_weight", perm=[1, 0])
    s.view("view_20", "mul_11", [S, FFN])
    s("MatMul", "mm_6", "view_20", "t_6")
    s.view("view_21", "mm_6", [1, S, HID])
    s("Add", "add_5", "add_3", "view_21")
    x = rms_norm(s, "add_5", "model_norm_weight", 2)
    s("Transpose", "t_7", "lm_head_weight", perm=[1, 0])
    s.view("view_22", x, [S, HID])
    s("MatMul", "mm_7", "view_22", "t_7")
    s.view("view_23", "mm_7", [1, S, VOCAB])
    s("Cast", "_to_copy_12", "view_23", to=1)

    m = g.model("main_graph",
                [("input_ids", I64, [1, S]), ("position_ids", I64, [1, S]),
                 ("past_key_values_0_0", F, [1, HEADS, P, HD]), ("past_key_values_0_1", F, [1, HEADS, P, HD])],
                [("_to_copy_12", F, [1, S, VOCAB]), ("cat_3", F, [1, HEADS, T, HD]),
                 ("cat_4", F, [1, HEADS, T, HD])], 18)
    data = np.random.default_rng(62)
    sets = [{"input_ids": data.integers(0, VOCAB, (1, S)).astype(np.int64),
             "position_ids": np.arange(S, dtype=np.int64).reshape(1, S),
             "past_key_values_0_0": data.uniform(0, 1, (1, HEADS, P, HD)).astype(np.float32),
             "past_key_values_0_1": data.uniform(0, 1, (1, HEADS, P, HD)).astype(np.float32)}]
    return m, sets


def rms_norm(s, x, w, k):
    """Cast, x^2 (exponent Cast(2)), ReduceMean over Reshape([-1]), + eps,
    Sqrt, Reciprocal, Mul, Cast, * w: numbered as the original."""
    sfx = "_%d" % k if k else ""
    cx = s("Cast", "_to_copy_%d" % (6 + 2 * k), x, to=1)
    two = s("Cast", "scalar_tensor_default" + sfx, s.lit(2), to=1)
    p = s("Pow", "pow_%d" % (k + 1), cx, two)
    axes = s("Reshape", "val_ax%d" % k, s.lit([-1]), s("Constant", "val_axc%d" % k, value_ints=[-1]),
             allowzero=0)
    mean = s("ReduceMean", "mean" + sfx, p, axes, keepdims=1, noop_with_empty_axes=0)
    a = s("Add", "add_n%d" % k, mean, s.lit(1e-05))
    r = s("Reciprocal", "rsqrt" + sfx, s("Sqrt", "val_sq%d" % k, a))
    m = s("Mul", "mul_%d" % (3 + 6 * k if k < 2 else 12), cx, r)
    c2 = s("Cast", "_to_copy_%d" % (7 + 2 * k), m, to=1)
    return s("Mul", "mul_n%d" % k, w, c2)


def rope(s, x, out, names):
    m1, lo, hi, neg, cat, m2 = names
    s("Mul", m1, x, "unsqueeze_3")
    s.slice(lo, x, 0, HD // 2, 3)
    s.slice(hi, x, HD // 2, I64MAX, 3)
    s("Neg", neg, hi)
    s("Concat", cat, neg, lo, axis=-1)
    s("Mul", m2, cat, "unsqueeze_4")
    return s("Add", out, m1, m2)


CASES = {"smollm_2": smollm_2}
_ = helper

if __name__ == "__main__":
    main(sys.argv, CASES)
