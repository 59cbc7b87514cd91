"""ONNX Runtime's com.microsoft contrib ops (what its transformer optimizer
writes) for kiln's import of them (frontend/onnx_contrib.c), in the ONNX
backend-test layout.

    /usr/bin/python3 tests/gen/contrib_ops.py OUTDIR

writes OUTDIR/NAME/model.onnx and either
  - test_data_set_0/{input,output}_K.pb (numpy references written from the
    contrib op specs, ONNX Runtime's docs/ContribOperators.md and its CPU
    kernels' semantics, not from kiln's ops) and OUTDIR/NAME/expect: lines
    "has OP" (OP must be in the -O0 IR: the import's rewrite) and
    "lacks OP"; OUTDIR/NAME/no_ort, when present, says why ONNX Runtime
    cannot run the case (tests/scripts/contrib_ops.sh checks the others
    against it when it has onnxruntime-node); or
  - OUTDIR/NAME/refuse: fragments the one-line refusal of `kiln dump` must
    hold (forms kiln does not implement).
Only onnx.helper and numpy are used.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F, I32 = TensorProto.FLOAT, TensorProto.INT32
MS = "com.microsoft"
rng = np.random.default_rng(7)
B, S, H, NH = 2, 5, 16, 4


def randn(*shape):
    return rng.normal(0, 1, shape).astype(np.float32)


def const(name, a, dt=np.float32):
    return numpy_helper.from_array(np.asarray(a, dtype=dt), name)


def ms(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or op.lower(), domain=MS, **attrs)


def vi(name, dt, shape):
    return helper.make_tensor_value_info(name, dt, shape)


def model(nodes, inputs, outputs, inits, ms_version=1):
    g = helper.make_graph(nodes, "contrib", inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17),
                                            helper.make_opsetid(MS, ms_version)],
                          producer_name="kiln-contrib-ops")
    m.ir_version = 8
    return m


# ---- references, from the specs ----------------------------------------------

def layernorm(v, g, b, eps):
    v = v.astype(np.float64)
    m = v.mean(-1, keepdims=True)
    var = ((v - m) ** 2).mean(-1, keepdims=True)
    return (v - m) / np.sqrt(var + eps) * g + b


def rmsnorm(v, g, eps):
    v = v.astype(np.float64)
    return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * g


def gelu_erf(v):
    v = v.astype(np.float64)
    return 0.5 * v * (1 + np.vectorize(math.erf)(v / math.sqrt(2)))


def gelu_tanh(v):
    v = v.astype(np.float64)
    return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


def sigmoid(v):
    return 1 / (1 + np.exp(-v.astype(np.float64)))


def softmax(v):
    e = np.exp(v - v.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def mha_ref(q, k, v, nh, mask=None, unidir=False, abias=None, scale=None, filt=-10000.0):
    """Multi-head attention of q [B, S, D], k [B, T, D], v [B, T, Dv] as the
    contrib ops define it (no past): heads of each; scores = scale * Q K^T,
    plus mask_filter_value where the mask masks a key (2-D: mask <= 0;
    1-D: key >= end; 3-D: per query), plus mask_filter_value past the
    causal edge when unidirectional, plus attention_bias; softmax over
    keys; times V; heads merged."""
    bb, s, t = q.shape[0], q.shape[1], k.shape[1]
    d, dv = q.shape[2] // nh, v.shape[2] // nh
    q = q.reshape(bb, s, nh, d).transpose(0, 2, 1, 3)
    k = k.reshape(bb, t, nh, d).transpose(0, 2, 1, 3)
    v = v.reshape(bb, t, nh, dv).transpose(0, 2, 1, 3)
    sc = (1 / math.sqrt(d)) if scale is None else scale
    scores = sc * q @ k.transpose(0, 1, 3, 2)
    add = np.zeros((bb, 1, s, t))
    if mask is not None:
        if mask.ndim == 2:
            add += np.where(mask > 0, 0, filt)[:, None, None, :]
        elif mask.ndim == 1:
            keys = np.arange(t)[None, :]
            add += np.where(keys < mask[:, None], 0, filt)[:, None, None, :]
        else:
            add += np.where(mask > 0, 0, filt)[:, None, :, :]
    if unidir:
        add += np.where(np.arange(t)[None, :] > np.arange(s)[:, None], filt, 0)[None, None]
    scores = scores + add
    if abias is not None:
        scores = scores + abias
    o = softmax(scores) @ v
    return o.transpose(0, 2, 1, 3).reshape(bb, s, nh * dv)


def attention_ref(x, w, b, nh, sizes, mask=None, unidir=False, abias=None, scale=None,
                  filt=-10000.0):
    """com.microsoft.Attention without past: input x [B, S, Din] times the
    packed weights (+ bias) -> Q | K | V column blocks; their attention."""
    qkv = x.astype(np.float64) @ w + (0 if b is None else b)
    q, k, v = np.split(qkv, [sizes[0], sizes[0] + sizes[1]], axis=-1)
    return mha_ref(q, k, v, nh, mask, unidir, abias, scale, filt)


# ---- cases --------------------------------------------------------------------

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def x_in():
    return vi("x", F, ["batch", "seq", H])


def y_out(name="y", shape=None):
    return vi(name, F, shape or ["batch", "seq", H])


@case
def skip_layernorm():
    """SkipLayerNormalization with gamma and beta, default epsilon (1e-12)."""
    x, sk, g, b = randn(B, S, H), randn(B, S, H), randn(H), randn(H)
    n = ms("SkipLayerNormalization", ["x", "skip", "gamma", "beta"], ["y"])
    m = model([n], [x_in(), vi("skip", F, ["batch", "seq", H])], [y_out()],
              [const("gamma", g), const("beta", b)])
    return m, {"x": x, "skip": sk}, [layernorm(x + sk, g, b, 1e-12)], ["has KlnSkipLayerNorm"]


@case
def skip_layernorm_bias_sum():
    """With bias, epsilon, and output 3 (input + skip + bias) used, the
    mean and inv_std_var outputs unnamed."""
    x, sk, g, b, bias = randn(B, S, H), randn(B, S, H), randn(H), randn(H), randn(H)
    n = ms("SkipLayerNormalization", ["x", "skip", "gamma", "beta", "bias"],
           ["y", "", "", "sum"], epsilon=1e-5)
    m = model([n], [x_in(), vi("skip", F, ["batch", "seq", H])], [y_out(), y_out("sum")],
              [const("gamma", g), const("beta", b), const("bias", bias)])
    s = x + sk + bias
    return (m, {"x": x, "skip": sk}, [layernorm(s, g, b, 1e-5), s],
            ["has KlnSkipLayerNorm"])


@case
def skip_layernorm_nobeta_skip2d():
    """No beta, skip of shape [S, H] broadcast over the batch."""
    x, sk, g = randn(B, S, H), randn(S, H), randn(H)
    n = ms("SkipLayerNormalization", ["x", "skip", "gamma"], ["y"], epsilon=1e-6)
    m = model([n], [vi("x", F, [B, S, H]), vi("skip", F, [S, H])], [y_out(shape=[B, S, H])],
              [const("gamma", g)])
    return m, {"x": x, "skip": sk}, [layernorm(x + sk, g, 0, 1e-6)], ["has KlnSkipLayerNorm"]


@case
def skip_simplified_layernorm():
    """SkipSimplifiedLayerNormalization (RMSNorm of the sum) with bias, the
    sum as output 3."""
    x, sk, g, bias = randn(B, S, H), randn(B, S, H), randn(H), randn(H)
    n = ms("SkipSimplifiedLayerNormalization", ["x", "skip", "gamma", "bias"],
           ["y", "", "", "sum"], epsilon=1e-6)
    m = model([n], [x_in(), vi("skip", F, ["batch", "seq", H])], [y_out(), y_out("sum")],
              [const("gamma", g), const("bias", bias)])
    s = x + sk + bias
    return m, {"x": x, "skip": sk}, [rmsnorm(s, g, 1e-6), s], ["has KlnRMSNorm"]


@case
def simplified_layernorm():
    """SimplifiedLayerNormalization (T5/LLaMA's RMSNorm), default epsilon,
    in the ONNX domain, where ONNX Runtime registers it."""
    x, g = randn(B, S, H), randn(H)
    n = helper.make_node("SimplifiedLayerNormalization", ["x", "scale"], ["y"], name="sln")
    m = model([n], [x_in()], [y_out()], [const("scale", g)])
    return m, {"x": x}, [rmsnorm(x, g, 1e-5)], ["has KlnRMSNorm"]


NO_ORT = {}


@case
def simplified_layernorm_ms():
    """The same in the com.microsoft domain (kiln takes both)."""
    x, g = randn(B, S, H), randn(H)
    n = ms("SimplifiedLayerNormalization", ["x", "scale"], ["y"], epsilon=1e-6)
    m = model([n], [x_in()], [y_out()], [const("scale", g)])
    return m, {"x": x}, [rmsnorm(x, g, 1e-6)], ["has KlnRMSNorm"]


NO_ORT["simplified_layernorm_ms"] = "ONNX Runtime has the op in the ONNX domain only"


@case
def layernorm_ms():
    """LayerNormalization in the com.microsoft domain: ONNX's."""
    x, g, b = randn(B, S, H), randn(H), randn(H)
    n = ms("LayerNormalization", ["x", "g", "b"], ["y"], epsilon=1e-5)
    m = model([n], [x_in()], [y_out()], [const("g", g), const("b", b)])
    return m, {"x": x}, [layernorm(x, g, b, 1e-5)], ["has LayerNormalization"]


NO_ORT["layernorm_ms"] = "ONNX Runtime has the op in the ONNX domain only"


@case
def gelu():
    x = randn(B, S, H) * 3
    m = model([ms("Gelu", ["x"], ["y"])], [x_in()], [y_out()], [])
    return m, {"x": x}, [gelu_erf(x)], ["has KlnGelu"]


@case
def bias_gelu():
    x, b = randn(B, S, H) * 3, randn(H)
    m = model([ms("BiasGelu", ["x", "b"], ["y"])], [x_in()], [y_out()], [const("b", b)])
    return m, {"x": x}, [gelu_erf(x + b)], ["has KlnGelu"]


@case
def fast_gelu():
    x = randn(B, S, H) * 3
    m = model([ms("FastGelu", ["x"], ["y"])], [x_in()], [y_out()], [])
    return m, {"x": x}, [gelu_tanh(x)], ["has KlnGelu"]


@case
def fast_gelu_bias():
    x, b = randn(B, S, H) * 3, randn(H)
    m = model([ms("FastGelu", ["x", "b"], ["y"])], [x_in()], [y_out()], [const("b", b)])
    return m, {"x": x}, [gelu_tanh(x + b)], ["has KlnGelu"]


@case
def quick_gelu():
    """QuickGelu, default alpha 1.702: KlnGelu's QuickGELU."""
    x = randn(B, S, H) * 3
    m = model([ms("QuickGelu", ["x"], ["y"])], [x_in()], [y_out()], [])
    return m, {"x": x}, [x * sigmoid(1.702 * x)], ["has KlnGelu"]


@case
def quick_gelu_alpha():
    """QuickGelu with another alpha: x * Sigmoid(alpha x)."""
    x = randn(B, S, H) * 3
    m = model([ms("QuickGelu", ["x"], ["y"], alpha=1.5)], [x_in()], [y_out()], [])
    return m, {"x": x}, [x * sigmoid(1.5 * x)], ["has Sigmoid", "lacks KlnGelu"]


V, P, T = 30, 8, 2


def embed_tables():
    return randn(V, H), randn(P, H), randn(T, H), randn(H), randn(H)


@case
def embed_layernorm():
    """EmbedLayerNormalization with segments and a mask: outputs the layer
    norm, mask_index (ones per row) and the embedding sum; positions 0..S-1."""
    w, p, t, g, b = embed_tables()
    ids = rng.integers(0, V, (B, S)).astype(np.int32)
    seg = rng.integers(0, T, (B, S)).astype(np.int32)
    mask = np.array([[1] * S, [1] * (S - 2) + [0] * 2], np.int32)
    n = ms("EmbedLayerNormalization",
           ["ids", "seg", "word", "pos", "segtab", "gamma", "beta", "mask"],
           ["y", "mask_index", "sum"], epsilon=1e-5)
    m = model([n], [vi("ids", I32, ["batch", "seq"]), vi("seg", I32, ["batch", "seq"]),
                    vi("mask", I32, ["batch", "seq"])],
              [y_out(), vi("mask_index", I32, ["batch"]), y_out("sum")],
              [const("word", w), const("pos", p), const("segtab", t), const("gamma", g),
               const("beta", b)])
    s = w[ids] + p[np.arange(S)][None] + t[seg]
    return (m, {"ids": ids, "seg": seg, "mask": mask},
            [layernorm(s, g, b, 1e-5), mask.sum(1).astype(np.int32), s],
            ["has KlnEmbedLayerNorm", "has ReduceSum"])


@case
def embed_layernorm_posids():
    """No segments, no mask (mask_index zeros), position_ids given,
    default epsilon 1e-12."""
    w, p, _, g, b = embed_tables()
    ids = rng.integers(0, V, (B, S)).astype(np.int32)
    pos = np.array([[4, 3, 2, 1, 0], [0, 1, 2, 3, 4]], np.int32)
    n = ms("EmbedLayerNormalization",
           ["ids", "", "word", "pos", "", "gamma", "beta", "", "posids"], ["y", "mask_index"])
    m = model([n], [vi("ids", I32, ["batch", "seq"]), vi("posids", I32, ["batch", "seq"])],
              [y_out(), vi("mask_index", I32, ["batch"])],
              [const("word", w), const("pos", p), const("gamma", g), const("beta", b)])
    s = w[ids] + p[pos]
    return (m, {"ids": ids, "posids": pos}, [layernorm(s, g, b, 1e-12), np.zeros(B, np.int32)],
            ["has KlnEmbedLayerNorm"])


def attention_case(mask=None, mask_shape=None, unidir=False, abias=False, sizes=(H, H, H),
                   scale=None, filt=None, bias=True, extra=None):
    w = randn(H, sum(sizes)) * 0.5
    b = randn(sum(sizes)) * 0.1
    x = randn(B, S, H)
    ab = randn(1, NH, S, S) if abias else None
    attrs = {"num_heads": NH}
    if sizes != (H, H, H):
        attrs["qkv_hidden_sizes"] = list(sizes)
    if unidir:
        attrs["unidirectional"] = 1
    if scale is not None:
        attrs["scale"] = scale
    if filt is not None:
        attrs["mask_filter_value"] = filt
    attrs.update(extra or {})
    ins = ["x", "w", "b" if bias else "", "mask" if mask is not None else ""]
    if abias:
        ins += ["", "abias"]
    while ins[-1] == "":
        ins.pop()
    n = ms("Attention", ins, ["y"], name="attn", **attrs)
    inputs = [x_in()]
    feeds = {"x": x}
    if mask is not None:
        inputs.append(vi("mask", I32, mask_shape))
        feeds["mask"] = mask
    if abias:
        inputs.append(vi("abias", F, [1, NH, "seq", "seq"]))
        feeds["abias"] = ab
    inits = [const("w", w)] + ([const("b", b)] if bias else [])
    m = model([n], inputs, [y_out(shape=["batch", "seq", sizes[2]])], inits)
    ref = attention_ref(x, w, b if bias else None, NH, sizes, mask, unidir, ab, scale,
                        -10000.0 if filt is None else filt)
    return m, feeds, [ref], ["has KlnAttention", "has KlnGemm"]


PAD2D = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], np.int32)


@case
def attention():
    """Attention, no mask."""
    return attention_case()


@case
def attention_mask2d():
    """2-D [batch, seq] key padding mask (1 attends, 0 not; here also a 2
    and a hole: > 0 attends)."""
    mask = np.array([[1, 2, 0, 1, 1], [1, 1, 1, 0, 0]], np.int32)
    return attention_case(mask, ["batch", "seq"])


@case
def attention_mask1d():
    """1-D [batch] mask_index: each row's end position (right padding)."""
    return attention_case(np.array([5, 3], np.int32), ["batch"])


@case
def attention_mask3d():
    """3-D [batch, seq, seq] per-query mask."""
    mask = (rng.random((B, S, S)) > 0.3).astype(np.int32)
    mask[:, :, 0] = 1
    return attention_case(mask, ["batch", "seq", "seq"])


@case
def attention_unidirectional():
    """unidirectional (GPT-2) with a 2-D padding mask and mask_filter_value."""
    return attention_case(PAD2D, ["batch", "seq"], unidir=True, filt=-1000.0)


@case
def attention_bias_scale():
    """attention_bias [1, heads, seq, seq] and a custom scale."""
    return attention_case(PAD2D, ["batch", "seq"], abias=True, scale=0.3)


@case
def attention_nobias():
    """No QKV bias (input 2 empty)."""
    return attention_case(bias=False)


NO_ORT["attention_nobias"] = "ONNX Runtime 1.30's CPU Attention crashes without bias"


@case
def attention_qkv_sizes():
    """qkv_hidden_sizes with V narrower than Q and K."""
    return attention_case(sizes=(H, H, 8))


@case
def fused_matmul():
    """FusedMatMul (ONNX Runtime's optimizer: Q K^T with the scale folded in):
    alpha * A @ B^T over batched heads."""
    a, b = randn(B, NH, S, 4), randn(B, NH, S, 4)
    n = ms("FusedMatMul", ["a", "b"], ["y"], alpha=0.5, transB=1)
    m = model([n], [vi("a", F, ["batch", NH, "seq", 4]), vi("b", F, ["batch", NH, "seq", 4])],
              [y_out(shape=["batch", NH, "seq", "seq"])], [])
    ref = 0.5 * (a.astype(np.float64) @ b.astype(np.float64).transpose(0, 1, 3, 2))
    return m, {"a": a, "b": b}, [ref], ["has MatMul", "has Transpose"]


@case
def fused_matmul_transa():
    """FusedMatMul with transA and the default alpha, B a constant."""
    a, w = randn(B, H, S), randn(H, 8)
    n = ms("FusedMatMul", ["a", "w"], ["y"], transA=1)
    m = model([n], [vi("a", F, ["batch", H, "seq"])], [y_out(shape=["batch", "seq", 8])],
              [const("w", w)])
    return m, {"a": a}, [a.astype(np.float64).transpose(0, 2, 1) @ w], ["has MatMul", "lacks Mul"]


def fused_gemm_case(act, ref_act, **attrs):
    a, w, c = randn(B, H), randn(8, H), randn(8)
    n = ms("FusedGemm", ["a", "w", "c"], ["y"], transB=1, alpha=0.7, beta=0.5,
           activation=act, **attrs)
    m = model([n], [vi("a", F, ["batch", H])], [y_out(shape=["batch", 8])],
              [const("w", w), const("c", c)])
    return m, {"a": a}, [ref_act(0.7 * a.astype(np.float64) @ w.T + 0.5 * c)], ["has Gemm"]


@case
def fused_gemm_tanh():
    """FusedGemm with Tanh (BERT's pooler after ONNX Runtime's optimizer)."""
    return fused_gemm_case("Tanh", np.tanh)


@case
def fused_gemm_leakyrelu():
    """FusedGemm with LeakyRelu and its activation_alpha."""
    return fused_gemm_case("LeakyRelu", lambda v: np.where(v >= 0, v, 0.2 * v),
                           activation_alpha=0.2)


L = 7   # key length of the cross-attention cases


def mha_case(cross=False, bias=False, mask=None, mask_shape=None, unidir=False, abias=False,
             dv=H):
    t = L if cross else S
    q, k, v = randn(B, S, H), randn(B, t, H), randn(B, t, dv)
    b = randn(2 * H + dv) * 0.1
    ab = randn(B, 1, S, t) if abias else None
    attrs = {"num_heads": NH}
    if unidir:
        attrs["unidirectional"] = 1
    ins = ["q", "k", "v", "b" if bias else "", "mask" if mask is not None else "",
           "abias" if abias else ""]
    while ins[-1] == "":
        ins.pop()
    kseq = "kseq" if cross else "seq"
    inputs = [vi("q", F, ["batch", "seq", H]), vi("k", F, ["batch", kseq, H]),
              vi("v", F, ["batch", kseq, dv])]
    feeds = {"q": q, "k": k, "v": v}
    if mask is not None:
        inputs.append(vi("mask", I32, mask_shape))
        feeds["mask"] = mask
    if abias:
        inputs.append(vi("abias", F, ["batch", 1, "seq", kseq]))
        feeds["abias"] = ab
    n = ms("MultiHeadAttention", ins, ["y"], name="mha", **attrs)
    m = model([n], inputs, [y_out(shape=["batch", "seq", dv])],
              [const("b", b)] if bias else [])
    if bias:
        q, k, v = q + b[:H], k + b[H:2 * H], v + b[2 * H:]
    ref = mha_ref(q, k, v, NH, mask, unidir, ab)
    return m, feeds, [ref], ["has KlnAttention", "lacks KlnGemm"]


@case
def mha():
    """MultiHeadAttention, self-attention, nothing optional."""
    return mha_case()


@case
def mha_cross_bias_mask2d():
    """Cross-attention (7 keys for 5 queries), the projection bias, a 2-D
    key padding mask, V narrower than Q and K."""
    mask = np.array([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]], np.int32)
    return mha_case(cross=True, bias=True, mask=mask, mask_shape=["batch", "kseq"], dv=8)


@case
def mha_cross_mask1d():
    """Cross-attention, a 1-D key padding mask (the keys' end positions)."""
    return mha_case(cross=True, mask=np.array([7, 4], np.int32), mask_shape=["batch"])


@case
def mha_unidirectional_bias():
    """unidirectional, attention_bias [batch, 1, seq, seq]."""
    return mha_case(unidir=True, abias=True, bias=True)


# ---- refusals ------------------------------------------------------------------

REFUSALS = {}


def refusal(fn):
    REFUSALS[fn.__name__] = fn
    return fn


def att_model(ins, outs=("y",), extra_inputs=(), sizes=(H, H, H), mask_shape=None, **attrs):
    w = randn(H, sum(sizes))
    inputs = [x_in()] + list(extra_inputs)
    if mask_shape:
        inputs.append(vi("mask", I32, mask_shape))
    n = ms("Attention", ins, list(outs), name="qkv_attn", num_heads=NH, **attrs)
    return model([n], inputs, [y_out()] + [vi(o, F, None) for o in outs[1:] if o],
                 [const("w", w)])


@refusal
def refuse_attention_past():
    past = vi("past", F, [2, "batch", NH, "past", H // NH])
    return (att_model(["x", "w", "", "", "past"], extra_inputs=[past]),
            ["node 'qkv_attn' (com.microsoft.Attention)", "input 4 (past) is not supported"])


@refusal
def refuse_attention_present():
    return (att_model(["x", "w"], outs=("y", "present")),
            ["node 'qkv_attn'", "output 1 (present) is not supported"])


@refusal
def refuse_attention_rotary():
    return (att_model(["x", "w"], do_rotary=1),
            ["node 'qkv_attn'", "attribute 'do_rotary' is 1; kiln implements only 0"])


@refusal
def refuse_attention_mask4d():
    return (att_model(["x", "w", "", "mask"], mask_shape=["batch", 1, 8, 8]),
            ["node 'qkv_attn'", "mask_index", "rank 4"])


@refusal
def refuse_attention_mask_2b():
    return (att_model(["x", "w", "", "mask"], mask_shape=["twice_batch"]),
            ["node 'qkv_attn'", "mask_index", "[2*batch]"])


@refusal
def refuse_attention_qk_sizes():
    return (att_model(["x", "w"], sizes=(H, 8, H), qkv_hidden_sizes=[H, 8, H]),
            ["node 'qkv_attn'", "Q's 16 and K's 8 differ"])


@refusal
def refuse_attention_past_seqlen():
    psl = vi("psl", I32, [1])
    return (att_model(["x", "w", "", "", "", "", "psl"], extra_inputs=[psl]),
            ["node 'qkv_attn'", "input 6 (past_sequence_length) is not supported"])


def mha_refusal(ins, outs=("y",), extra=()):
    inputs = [vi("q", F, ["batch", "seq", H]), vi("k", F, ["batch", "seq", H]),
              vi("v", F, ["batch", "seq", H])] + list(extra)
    n = ms("MultiHeadAttention", ins, list(outs), name="mha", num_heads=NH)
    return model([n], inputs, [y_out()] + [vi(o, F, None) for o in outs[1:] if o], [])


@refusal
def refuse_mha_packed():
    return (mha_refusal(["q"]), ["node 'mha' (com.microsoft.MultiHeadAttention)",
                                 "packed QKV form"])


@refusal
def refuse_mha_past_key():
    pk = vi("pk", F, ["batch", NH, "past", H // NH])
    return (mha_refusal(["q", "k", "v", "", "", "", "pk"], extra=[pk]),
            ["node 'mha'", "input 6 (past_key) is not supported"])


@refusal
def refuse_mha_present():
    return (mha_refusal(["q", "k", "v"], outs=("y", "pk")),
            ["node 'mha'", "output 1 (present_key) is not supported"])


@refusal
def refuse_fused_gemm_activation():
    n = ms("FusedGemm", ["x2", "w"], ["y"], name="fg", activation="Selu")
    m = model([n], [vi("x2", F, [B, H])], [vi("y", F, [B, H])], [const("w", randn(H, H))])
    return m, ["node 'fg' (com.microsoft.FusedGemm)",
               "attribute 'activation' is \"Selu\"; kiln implements Relu|Tanh|Sigmoid|LeakyRelu|HardSigmoid"]


@refusal
def refuse_fused_matmul_transbatch():
    n = ms("FusedMatMul", ["x", "x"], ["y"], name="fmm", transBatchA=1)
    return (model([n], [x_in()], [y_out()], []),
            ["node 'fmm'", "attribute 'transBatchA' is 1; kiln implements only 0"])


@refusal
def refuse_skip_layernorm_mean():
    n = ms("SkipLayerNormalization", ["x", "x", "g"], ["y", "mean"], name="sln")
    m = model([n], [x_in()], [y_out(), vi("mean", F, None)], [const("g", randn(H))])
    return m, ["node 'sln' (com.microsoft.SkipLayerNormalization)",
               "output 1 (mean) is not supported"]


@refusal
def refuse_unknown_attribute():
    n = ms("FastGelu", ["x"], ["y"], name="fg", approximation=1)
    return (model([n], [x_in()], [y_out()], []),
            ["node 'fg' (com.microsoft.FastGelu)", "unknown attribute 'approximation'"])


@refusal
def refuse_unknown_op():
    n = ms("QOrderedMatMul", ["x", "x"], ["y"], name="qmm")
    return (model([n], [x_in()], [y_out()], []),
            ["unsupported ops: com.microsoft.QOrderedMatMul x1 (node 'qmm')"])


@refusal
def refuse_ms_version():
    return (model([ms("Gelu", ["x"], ["y"])], [x_in()], [y_out()], [], ms_version=2),
            ["opset version 2 of domain com.microsoft is not supported"])


@refusal
def refuse_embed_half_segment():
    w, p, t, g, b = embed_tables()
    n = ms("EmbedLayerNormalization", ["ids", "ids", "word", "pos", "", "gamma", "beta"],
           ["y", "mi"], name="emb")
    m = model([n], [vi("ids", I32, ["batch", "seq"])], [y_out(), vi("mi", I32, ["batch"])],
              [const("word", w), const("pos", p), const("gamma", g), const("beta", b)])
    return m, ["node 'emb'", "segment_ids and segment_embedding must be given together"]


# ---- writing --------------------------------------------------------------------

def write_case(outdir, name, m, feeds, outs, expect):
    d = os.path.join(outdir, name)
    sd = os.path.join(d, "test_data_set_0")
    os.makedirs(sd, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for k, i in enumerate(m.graph.input):
        with open(os.path.join(sd, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(feeds[i.name], i.name).SerializeToString())
    for k, (o, r) in enumerate(zip(m.graph.output, outs)):
        r = np.asarray(r)
        r = r if r.dtype == np.int32 else r.astype(np.float32)
        with open(os.path.join(sd, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(r, o.name).SerializeToString())
    with open(os.path.join(d, "expect"), "w") as f:
        f.write("\n".join(expect) + "\n")


def write_refusal(outdir, name, m, frags):
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    with open(os.path.join(d, "refuse"), "w") as f:
        f.write("\n".join(frags) + "\n")


def main(outdir):
    for name, fn in CASES.items():
        m, feeds, outs, expect = fn()
        # (the checker knows no ONNX-domain SimplifiedLayerNormalization)
        if not any(n.op_type == "SimplifiedLayerNormalization" and not n.domain
                   for n in m.graph.node):
            onnx.checker.check_model(m)
        write_case(outdir, name, m, feeds, outs, expect)
        if name in NO_ORT:
            with open(os.path.join(outdir, name, "no_ort"), "w") as f:
                f.write(NO_ORT[name] + "\n")
    for name, fn in REFUSALS.items():
        write_refusal(outdir, name, *fn())
    print("contrib_ops: %d models, %d refusals" % (len(CASES), len(REFUSALS)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: contrib_ops.py OUTDIR")
    main(sys.argv[1])
