"""Einsum attention as Keras exports write it (tf2onnx and a Keras 3 /
dynamo-style graph), and the norm and GELU forms as the dynamo exporter
writes them (issue 12), with near misses, in the ONNX backend-test layout:

    /usr/bin/python3 tests/gen/einsum_forms.py OUTDIR [NAME...]

writes OUTDIR/NAME/model.onnx, test_data_set_N/{input,output}_K.pb
(references computed in numpy from the math, not from the graph) and
OUTDIR/NAME/expect.json: what `kiln compile -O2 --stats` must report:
  "count":   {OP: N}     ops_out has exactly N nodes of OP
  "lacks":   [OP, ...]   ops_out has none of OP
  "has":     [OP, ...]   ops_out has OP
  "fusions": {NAME: N}   the pattern NAME fired exactly N times
and, for some cases, OUTDIR/NAME/explain: a pattern name on its first line,
then text fragments `kiln dump --explain=PATTERN` must print.
tests/scripts/einsum_forms.sh checks them at -O0 and -O2.

Every graph is also evaluated with npref.py (an independent interpreter of
the ONNX ops) to make sure it computes what its reference computes, and
checked with onnx.checker when onnx knows its opset (python3-onnx 1.12 knows
opsets up to 17).

Einsum attention (Keras MultiHeadAttention): projections abc,cde->abde with
a kernel [C, H, D] and a bias [H, D] added after, the query scaled by
1/sqrt(D), key-major scores aecd,abcd->acbe, an additive padding mask,
context acbe,aecd->abcd, output projection abcd,cde->abe with a kernel
[H, D, C] and a bias [C].  At -O2 the three projections must be one packed
KlnGemm (the einsum pass moves the [H, D] biases before the head split),
the attention one KlnAttention and the output projection one KlnGemm.

Dynamo-style norms and GELUs: opset 18 (ReduceMean with its axes as an
input), LayerNormalization with stash_type, the Gelu op of opset 20 with
approximate "tanh", symbolic dims named s41 and "s25 + s52", torchlib's
decompositions (Pow(x, 3) with an integer exponent, Rsqrt as
Reciprocal(Sqrt), Mul(x, x) for the square, a Div by a constant written as
a Mul by its reciprocal), scalars as Constant nodes or 0-d initializers.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import case_io  # noqa: E402
import npref  # noqa: E402

F = TensorProto.FLOAT
npref.OPS.setdefault("Reciprocal", np.reciprocal)
npref.OPS.setdefault("Sigmoid", lambda x: (1.0 / (1.0 + np.exp(-x))).astype(x.dtype))
_npref_gelu = npref.OPS["Gelu"]


def _gelu(x, approximate="none"):
    """npref's Gelu, and approximate "tanh" (which it does not have)."""
    if approximate == "tanh":
        return gelu_tanh(x.astype(np.float64)).astype(x.dtype)
    return _npref_gelu(x, approximate)


npref.OPS["Gelu"] = _gelu

W, NH = 16, 2
D = W // NH
CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


class G:
    """A graph under construction: nodes, initializers, and scalars written
    either as Constant nodes or as 0-d initializers."""

    def __init__(self, const_nodes):
        self.nodes, self.inits, self.n = [], [], 0
        self.const_nodes = const_nodes

    def name(self, base):
        self.n += 1
        return "%s_%d" % (base, self.n)

    def init(self, base, a, dtype=np.float32):
        nm = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(a, dtype=dtype), nm))
        return nm

    def const(self, v, dtype=np.float32):
        """A scalar (or small array) constant in the graph's style."""
        if not self.const_nodes:
            return self.init("c", v, dtype)
        nm = self.name("val")
        self.nodes.append(helper.make_node("Constant", [], [nm], name="node_" + nm,
                                           value=numpy_helper.from_array(np.asarray(v, dtype=dtype))))
        return nm

    def op(self, op, *ins, **attrs):
        out = self.name(op.lower())
        self.nodes.append(helper.make_node(op, list(ins), [out], name="node_" + out, **attrs))
        return out

    def model(self, y, inputs, outputs, opset):
        for n in self.nodes:   # the last node's output is the graph output
            n.output[:] = [outputs[0][0] if o == y else o for o in n.output]
            n.input[:] = [outputs[0][0] if i == y else i for i in n.input]
        g = helper.make_graph(self.nodes, "forms",
                              [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="kiln-einsum-forms")
        m.ir_version = 8
        return m


# ---- Einsum attention (Keras MultiHeadAttention) ---------------------------

def keras_params(seed):
    rng = np.random.default_rng(seed)
    P = {}
    for t in ("q", "k", "v", "o"):
        P[t + ".w"] = rng.normal(0, 0.3, (W, W)).astype(np.float32)
        P[t + ".b"] = rng.normal(0, 0.1, W).astype(np.float32)
    return P


def r_softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def r_keras(P, x, mem, mask):
    """float64: y = MHA(query x, key = value = mem) with a key padding mask."""
    def heads(t, p):
        B, S, _ = t.shape
        return (t @ P[p + ".w"].astype(np.float64) + P[p + ".b"]).reshape(B, S, NH, D).transpose(0, 2, 1, 3)
    q = heads(x, "q") / math.sqrt(D)
    k, v = heads(mem, "k"), heads(mem, "v")
    s = q @ k.transpose(0, 1, 3, 2) + (1.0 - mask[:, None, None, :].astype(np.float64)) * -1e9
    c = (r_softmax(s) @ v).transpose(0, 2, 1, 3)
    B, S = x.shape[:2]
    return c.reshape(B, S, W) @ P["o.w"].astype(np.float64) + P["o.b"]


def keras_graph(opset, dims, const_nodes, mask_bool, cross, kbias="hd", k_input=False):
    """dims: names of batch, query length, key length.  kbias "d": K's bias
    is [D] (broadcast over the heads), not [H, D].  k_input: K's kernel is a
    graph input."""
    P = keras_params(7)
    g = G(const_nodes)
    x, mem = "x", ("memory" if cross else "x")

    def proj(t, src):
        w = "k_kernel" if t == "k" and k_input else g.init(t + "/kernel", P[t + ".w"].reshape(W, NH, D))
        bias = P[t + ".b"].reshape(NH, D)
        if t == "k" and kbias == "d":
            bias = bias[0]
        e = g.op("Einsum", src, w, equation="abc,cde->abde")
        return g.op("Add", e, g.init(t + "/bias", bias))
    q = g.op("Mul", proj("q", x), g.const(1.0 / math.sqrt(D)))
    k, v = proj("k", mem), proj("v", mem)
    s = g.op("Einsum", k, q, equation="aecd,abcd->acbe")
    axes = [1, 2]
    m = (g.op("Unsqueeze", "attention_mask", g.const(axes, np.int64)) if opset >= 13 else
         g.op("Unsqueeze", "attention_mask", axes=axes))
    m = g.op("Cast", m, to=F)
    adder = g.op("Mul", g.op("Sub", g.const(1.0), m), g.const(-1e9))
    p = g.op("Softmax", g.op("Add", s, adder), axis=-1)
    c = g.op("Einsum", p, v, equation="acbe,aecd->abcd")
    o = g.op("Einsum", c, g.init("o/kernel", P["o.w"].reshape(NH, D, W)), equation="abcd,cde->abe")
    y = g.op("Add", o, g.init("o/bias", P["o.b"]))
    B, S, M = dims
    ins = [("x", F, [B, S, W])]
    if cross:
        ins.append(("memory", F, [B, M, W]))
    if k_input:
        ins.append(("k_kernel", F, [W, NH, D]))
    ins.append(("attention_mask", TensorProto.BOOL if mask_bool else TensorProto.INT64,
                [B, M if cross else S]))
    model = g.model(y, ins, [("y", F, [B, S, W])], opset)

    rng = np.random.default_rng(5)
    sets, refs = [], []
    Pr = dict(P)
    if kbias == "d":
        Pr["k.b"] = np.tile(P["k.b"].reshape(NH, D)[0], NH)
    for b, s, pad in ((2, 7, 3), (1, 5, 0)):
        f = {"x": rng.normal(0, 1, (b, s, W)).astype(np.float32)}
        ml = s + 2 if cross else s
        if cross:
            f["memory"] = rng.normal(0, 1, (b, ml, W)).astype(np.float32)
        if k_input:
            f["k_kernel"] = P["k.w"].reshape(W, NH, D)
        mask = np.ones((b, ml), np.int64)
        if b > 1:
            mask[1, :pad] = 0
        f["attention_mask"] = mask.astype(bool) if mask_bool else mask
        sets.append(f)
        refs.append([r_keras(Pr, f["x"], f.get("memory", f["x"]), mask)])
    return model, sets, refs


PACKED = {"count": {"KlnGemm": 2, "KlnAttention": 1},
          "lacks": ["Einsum", "MatMul", "Add", "Mul", "Softmax", "Transpose"],
          "fusions": {"attention": 1, "qkv": 1}}
QKV_FUSED = ["qkv", "explain qkv: KlnAttention", ": fused as KlnGemm"]


@case
def einsum_keras_tf2onnx():
    """Keras 2 MultiHeadAttention through tf2onnx at opset 13: scalars as 0-d
    initializers, an int64 padding mask, tf2onnx's unk__ dims."""
    m, sets, refs = keras_graph(13, ["unk__10", "unk__11", "unk__11"], False, False, False)
    return m, sets, refs, PACKED, QKV_FUSED


@case
def einsum_keras_tf2onnx_o17():
    """The same at opset 17 with scalars as Constant nodes."""
    m, sets, refs = keras_graph(17, ["N", "T", "T"], True, False, False)
    return m, sets, refs, PACKED, QKV_FUSED


@case
def einsum_keras3_dynamo():
    """Keras 3 (torch backend) through the dynamo exporter: opset 18,
    symbolic dims s0/s41, scalars as Constant nodes, a bool mask."""
    m, sets, refs = keras_graph(18, ["s0", "s41", "s41"], True, True, False)
    return m, sets, refs, PACKED, QKV_FUSED


@case
def einsum_keras_cross():
    """Cross-attention (query x, key = value = memory of another length):
    K and V packed into one KlnGemm, Q its own."""
    m, sets, refs = keras_graph(18, ["s0", "s41", "s52"], True, False, True)
    exp = {"count": {"KlnGemm": 3, "KlnAttention": 1},
           "lacks": ["Einsum", "MatMul", "Add", "Mul", "Softmax"],
           "fusions": {"attention": 1, "qkv": 1}}
    return m, sets, refs, exp, QKV_FUSED


@case
def einsum_nearmiss_kbias_d():
    """K's bias is [D] (EinsumDense bias_axes "e"), broadcast over the heads:
    not the bias of the [H*D] GEMM as it stands, so it stays an Add after the
    head split; attention fuses, Q, K, V are not packed."""
    m, sets, refs = keras_graph(13, ["batch", "seq", "seq"], False, False, False, kbias="d")
    exp = {"count": {"KlnGemm": 4, "KlnAttention": 1, "Add": 1},
           "lacks": ["Einsum", "Softmax"], "fusions": {"attention": 1, "qkv": 0}}
    return m, sets, refs, exp, ["qkv", "not fused: at", "K projection", "is not a KlnGemm"]


@case
def einsum_nearmiss_kernel_input():
    """K's kernel is a graph input, not a constant: its GEMM cannot be
    concatenated with the others at compile time; attention fuses, no QKV
    packing, and --explain=qkv says why."""
    m, sets, refs = keras_graph(13, ["batch", "seq", "seq"], False, False, False, k_input=True)
    exp = {"count": {"KlnGemm": 4, "KlnAttention": 1},
           "lacks": ["Einsum", "Softmax", "MatMul"], "fusions": {"attention": 1, "qkv": 0}}
    return m, sets, refs, exp, ["qkv", "not fused: at KlnGemm", "K projection",
                                "W or the bias is not a constant with data"]


# ---- dynamo-style norms and GELUs ------------------------------------------

H = 16


def randn(rng, *shape):
    return rng.normal(0, 1, shape).astype(np.float32)


def norm_sets(seed, past=False, scale=1.0):
    rng = np.random.default_rng(seed)
    sets = []
    for b, s in ((2, 5), (1, 3)):
        f = {"x": (randn(rng, b, s, H) * scale).astype(np.float32)}
        if past:
            f["past"] = (randn(rng, b, 4, H) * scale).astype(np.float32)
        sets.append(f)
    return sets


def norm_model(g, y, opset, past=False):
    """x [s41, s25, H] (after Concat(past [s41, s52, H], x): [s41, "s25 + s52", H])."""
    ins = [("x", F, ["s41", "s25", H])]
    out = ["s41", "s25", H]
    if past:
        ins.insert(0, ("past", F, ["s41", "s52", H]))
        out = ["s41", "s25 + s52", H]
    return g.model(y, ins, [("y", F, out)], opset)


def x_of(g, past):
    return g.op("Concat", "past", "x", axis=1) if past else "x"


def xv(f):
    x = f["x"].astype(np.float64)
    return np.concatenate([f["past"].astype(np.float64), x], 1) if "past" in f else x


def proj(g, rng, x):
    """A projection before an activation (MatMul + bias), as in an MLP."""
    w, b = randn(rng, H, H) * 0.3, randn(rng, H) * 0.1
    h = g.op("Add", g.op("MatMul", x, g.init("fc/weight", w)), g.init("fc/bias", b))
    return h, lambda v: v @ w.astype(np.float64) + b


def gelu_erf(v):
    erf = np.vectorize(math.erf)
    return 0.5 * v * (1 + erf(v / math.sqrt(2)))


def gelu_tanh(v, k=0.044715):
    return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + k * v ** 3)))


def act_case(build, ref, opset, expect, const_nodes=True, explain=None):
    g = G(const_nodes)
    rng = np.random.default_rng(3)
    h, f = proj(g, rng, "x")
    y = build(g, h)
    m = norm_model(g, y, opset)
    sets = norm_sets(11, scale=1.5)
    refs = [[ref(f(xv(s)))] for s in sets]
    return m, sets, refs, expect, explain


GEMM_GELU = {"count": {"KlnGemm": 1}, "lacks": ["Erf", "Tanh", "Pow", "Gelu", "KlnGelu", "Mul",
                                                "Div", "Sqrt"],
             "fusions": {"bias_gelu": 1}}


def tanh_torchlib(g, h, k=0.044715, exp3=3):
    """torchlib's _aten_gelu_approximate_tanh: Pow(x, 3) (an int64
    exponent), Mul(0.044715, .), Add(x, .), Mul(Sqrt(Div(2, pi)), .), Tanh,
    Add(., 1), Mul(x, .), Mul(0.5, .)."""
    cube = g.op("Pow", h, g.const(exp3, np.int64))
    inner = g.op("Add", h, g.op("Mul", g.const(k), cube))
    c = g.op("Sqrt", g.op("Div", g.const(2.0), g.const(math.pi)))
    t = g.op("Tanh", g.op("Mul", c, inner))
    return g.op("Mul", g.const(0.5), g.op("Mul", h, g.op("Add", t, g.const(1.0))))


@case
def gelu_tanh_torchlib_o18():
    """The tanh GELU as torchlib decomposes it at opset 18 (Constant nodes)."""
    return act_case(tanh_torchlib, gelu_tanh, 18, GEMM_GELU)


@case
def gelu_tanh_torchlib_nearmiss():
    """The same with 0.05 for 0.044715: not GELU, Tanh and Pow stay."""
    return act_case(lambda g, h: tanh_torchlib(g, h, k=0.05), lambda v: gelu_tanh(v, 0.05), 18,
                    {"has": ["Tanh", "Pow"], "lacks": ["KlnGelu"], "fusions": {"gelu": 0}})


@case
def gelu_tanh_op_o20():
    """The Gelu op of opset 20 with approximate "tanh" (the dynamo exporter
    for gelu(approximate='tanh')): a tanh-GELU GEMM epilogue."""
    return act_case(lambda g, h: g.op("Gelu", h, approximate="tanh"), gelu_tanh, 20, GEMM_GELU)


@case
def gelu_erf_torchlib_o18():
    """torchlib's _aten_gelu_approximate_none: Div(x, 1.4142135623730951),
    Erf, Add(., 1), Mul(x, .), Mul(0.5, .) with 0-d initializers."""
    def b(g, h):
        e = g.op("Erf", g.op("Div", h, g.const(1.4142135623730951)))
        return g.op("Mul", g.const(0.5), g.op("Mul", h, g.op("Add", e, g.const(1.0))))
    return act_case(b, gelu_erf, 18, GEMM_GELU, const_nodes=False)


def erf_mul(g, h, c):
    """x / sqrt(2) written as a Mul by its reciprocal, the 0.5 applied last."""
    e = g.op("Erf", g.op("Mul", h, g.const(c)))
    return g.op("Mul", g.op("Mul", h, g.op("Add", g.const(1.0), e)), g.const(0.5))


@case
def gelu_erf_mul_rsqrt2():
    """The erf GELU with Mul(x, 0.7071067811865476) for Div(x, sqrt(2))."""
    return act_case(lambda g, h: erf_mul(g, h, 0.7071067811865476), gelu_erf, 18, GEMM_GELU)


@case
def gelu_erf_mul_nearmiss():
    """Mul(x, 0.7) is not x/sqrt(2): Erf stays."""
    erf = np.vectorize(math.erf)
    return act_case(lambda g, h: erf_mul(g, h, 0.7), lambda v: 0.5 * v * (1 + erf(0.7 * v)), 18,
                    {"has": ["Erf"], "lacks": ["KlnGelu"], "fusions": {"gelu": 0}})


def quick(g, h, k):
    return g.op("Mul", h, g.op("Sigmoid", g.op("Mul", h, g.const(k))))


@case
def quick_gelu_const_node_o18():
    """QuickGELU with its 1.702 a Constant node at opset 18: fused, then
    absorbed by the biased GEMM as its QuickGELU epilogue (act 3)."""
    sig = lambda v: v / (1 + np.exp(-1.702 * v))  # noqa: E731
    return act_case(lambda g, h: quick(g, h, 1.702), sig, 18,
                    {"count": {"KlnGemm": 1}, "lacks": ["Sigmoid", "Mul", "KlnGelu"],
                     "fusions": {"quick_gelu": 1, "bias_gelu": 1}})


@case
def quick_gelu_const_node_nearmiss():
    """x * sigmoid(1.75 x): not QuickGELU, Sigmoid stays."""
    sig = lambda v: v / (1 + np.exp(-1.75 * v))  # noqa: E731
    return act_case(lambda g, h: quick(g, h, 1.75), sig, 18,
                    {"has": ["Sigmoid"], "lacks": ["KlnGelu"], "fusions": {"quick_gelu": 0}})


def rms_ref(v, w, eps, axis=-1):
    return v / np.sqrt((v * v).mean(axis, keepdims=True) + eps) * w


def norm_case(build, ref, opset, expect, past=False, const_nodes=True, explain=None):
    g = G(const_nodes)
    x = x_of(g, past)
    y, params = build(g, x)
    m = norm_model(g, y, opset, past)
    sets = norm_sets(13, past, scale=2.0)
    refs = [[ref(xv(s), *params)] for s in sets]
    return m, sets, refs, expect, explain


def rms_llama(g, x, square="pow", axes=(-1,), other=None):
    """LLaMA's RMSNorm as the dynamo exporter writes it at opset 18:
    Pow(x, 2.0) (or Mul(x, x)), ReduceMean(., axes input), Add eps, Rsqrt as
    Reciprocal(Sqrt), Mul(x, .), Mul(weight, .)."""
    rng = np.random.default_rng(21)
    w, eps = randn(rng, H), 1e-6
    sq = g.op("Pow", x, g.const(2.0)) if square == "pow" else g.op("Mul", x, x)
    var = g.op("ReduceMean", sq, g.const(list(axes), np.int64), keepdims=1)
    r = g.op("Reciprocal", g.op("Sqrt", g.op("Add", var, g.const(eps))))
    n = g.op("Mul", other or x, r)
    return g.op("Mul", g.init("norm/weight", w), n), (w, eps)


RMS = {"count": {"KlnRMSNorm": 1}, "lacks": ["ReduceMean", "Pow", "Sqrt", "Reciprocal", "Mul"],
       "fusions": {"rmsnorm": 1}}
RMS_KEPT = {"has": ["ReduceMean", "Reciprocal"], "lacks": ["KlnRMSNorm"], "fusions": {"rmsnorm": 0}}


@case
def rmsnorm_dynamo_o18():
    """Pow(x, 2.0), ReduceMean with axes [-1] as an input, Reciprocal(Sqrt),
    on x = Concat(past, x): dims s41, "s25 + s52"."""
    return norm_case(rms_llama, rms_ref, 18, RMS, past=True)


@case
def rmsnorm_dynamo_mulsq_init():
    """The square as Mul(x, x), the axes [2] (positive), scalars as 0-d
    initializers."""
    return norm_case(lambda g, x: rms_llama(g, x, "mul", (2,)), rms_ref, 18, RMS, const_nodes=False)


@case
def rmsnorm_dynamo_nearmiss_axis():
    """ReduceMean's axes input is [1] (the sequence): not RMSNorm."""
    return norm_case(lambda g, x: rms_llama(g, x, axes=(1,)),
                     lambda v, w, eps: rms_ref(v, w, eps, axis=1), 18, RMS_KEPT)


@case
def rmsnorm_dynamo_nearmiss_other():
    """The rsqrt of x's mean square multiplies 2x, not x: not RMSNorm."""
    def b(g, x):
        return rms_llama(g, x, other=g.op("Add", x, x))
    return norm_case(b, lambda v, w, eps: 2 * rms_ref(v, w, eps), 18, RMS_KEPT)


def ln_ref(v, gm, bt, eps, axis=-1):
    d = v - v.mean(axis, keepdims=True)
    return d / np.sqrt((d * d).mean(axis, keepdims=True) + eps) * gm + (0 if bt is None else bt)


def ln_op(g, x, bias=True, axis=-1):
    rng = np.random.default_rng(31)
    gm, bt, eps = randn(rng, H), randn(rng, H) * 0.1, 1e-5
    ins = [x, g.init("ln/weight", gm)] + ([g.init("ln/bias", bt)] if bias else [])
    y = g.op("LayerNormalization", *ins, axis=axis, epsilon=eps, stash_type=1)
    return y, (gm, bt if bias else None, eps)


LN = {"count": {"KlnLayerNorm": 1}, "lacks": ["LayerNormalization", "ReduceMean", "Sqrt"],
      "fusions": {"layernorm": 1}}


@case
def layernorm_op_o18():
    """LayerNormalization(axis -1, stash_type 1) at opset 18 on Concat(past, x)."""
    return norm_case(ln_op, ln_ref, 18, LN, past=True)


@case
def layernorm_op_nobias_o20():
    """LayerNormalization without a bias (elementwise_affine, bias=False) at opset 20."""
    return norm_case(lambda g, x: ln_op(g, x, bias=False), ln_ref, 20, LN)


@case
def layernorm_op_nearmiss_axis():
    """LayerNormalization over axes 1 and 2 (axis 1): not a last-axis norm,
    stays LayerNormalization."""
    def ref(v, gm, bt, eps):
        d = v - v.mean((1, 2), keepdims=True)
        return d / np.sqrt((d * d).mean((1, 2), keepdims=True) + eps) * gm + bt

    def b(g, x):
        rng = np.random.default_rng(31)
        gm, bt, eps = randn(rng, 3, H), randn(rng, 3, H) * 0.1, 1e-5
        y = g.op("LayerNormalization", x, g.init("ln/weight", gm), g.init("ln/bias", bt),
                 axis=1, epsilon=eps, stash_type=1)
        return y, (gm, bt, eps)
    g = G(True)
    y, params = b(g, "x")
    m = g.model(y, [("x", F, ["s41", 3, H])], [("y", F, ["s41", 3, H])], 18)
    rng = np.random.default_rng(13)
    sets = [{"x": randn(rng, n, 3, H)} for n in (2, 1)]
    refs = [[ref(s["x"].astype(np.float64), *params)] for s in sets]
    return m, sets, refs, {"has": ["LayerNormalization"], "lacks": ["KlnLayerNorm"],
                           "fusions": {"layernorm": 0}}, None


def ln_decomposed(g, x, square="pow", inv="div", other=None):
    """LayerNorm decomposed at opset 18: ReduceMean(axes input), Sub, the
    square as Pow(d, 2.0) or Mul(d, d), Add eps, then Div(d, Sqrt) or
    Mul(d, Reciprocal(Sqrt)) (torchlib's rsqrt), Mul gamma, Add beta."""
    rng = np.random.default_rng(41)
    gm, bt, eps = randn(rng, H), randn(rng, H) * 0.1, 1e-5
    ax = g.const([-1], np.int64)
    d = g.op("Sub", x, g.op("ReduceMean", x, ax, keepdims=1))
    sq = g.op("Mul", d, other or d) if square == "mul" else g.op("Pow", d, g.const(2.0))
    var = g.op("ReduceMean", sq, ax, keepdims=1)
    s = g.op("Sqrt", g.op("Add", var, g.const(eps)))
    n = g.op("Div", d, s) if inv == "div" else g.op("Mul", d, g.op("Reciprocal", s))
    n = g.op("Mul", n, g.init("ln/weight", gm))
    return g.op("Add", n, g.init("ln/bias", bt)), (gm, bt, eps)


@case
def layernorm_decomposed_o18():
    """A decomposed LayerNorm (Pow, Div) with opset-18 ReduceMeans (axes as
    an input) on dims s41, "s25 + s52"."""
    return norm_case(ln_decomposed, ln_ref, 18, LN, past=True)




@case
def layernorm_decomposed_mulsq():
    """The square as Mul(d, d)."""
    return norm_case(lambda g, x: ln_decomposed(g, x, square="mul"), ln_ref, 18, LN)


@case
def layernorm_decomposed_rsqrt():
    """1/std as Reciprocal(Sqrt) multiplied (torchlib's rsqrt)."""
    return norm_case(lambda g, x: ln_decomposed(g, x, inv="rsqrt"), ln_ref, 18, LN)


@case
def layernorm_decomposed_nearmiss():
    """The "variance" is mean(d * x), not mean(d * d): not a LayerNorm."""
    def ref(v, gm, bt, eps):
        d = v - v.mean(-1, keepdims=True)
        return d / np.sqrt((d * v).mean(-1, keepdims=True) + eps) * gm + bt
    return norm_case(lambda g, x: ln_decomposed(g, x, square="mul", other=x), ref, 18,
                     {"has": ["ReduceMean"], "lacks": ["KlnLayerNorm"], "fusions": {"layernorm": 0}})


# ---- writing ----------------------------------------------------------------

def close(got, want):
    return got.shape == want.shape and bool(
        (np.abs(got.astype(np.float64) - want) <= 1e-4 + 1e-3 * np.abs(want)).all())


def generate(name, outdir):
    r = CASES[name]()
    m, sets, refs, expect, explain = r
    if m.opset_import[0].version <= onnx.defs.onnx_opset_version():
        onnx.checker.check_model(m, full_check=True)
    d = os.path.join(outdir, name)
    os.makedirs(d, exist_ok=True)
    import json
    with open(os.path.join(d, "expect.json"), "w") as f:
        json.dump(expect, f)
    if explain:
        with open(os.path.join(d, "explain"), "w") as f:
            f.write("\n".join(explain) + "\n")
    for si, (feeds, outs) in enumerate(zip(sets, refs)):
        got = npref.run(m, feeds)
        for o, want, gv in zip(m.graph.output, outs, got):
            if not close(np.asarray(gv), np.asarray(want)):
                sys.exit("einsum_forms.py: %s set %d output %s: graph (npref) and numpy "
                         "reference disagree" % (name, si, o.name))
    case_io.write_case(d, m, sets, refs, np.float32)
    print("%s: %d nodes, opset %d" % (name, len(m.graph.node), m.opset_import[0].version))


def main(argv):
    case_io.form_main(argv, CASES, generate, "case")


if __name__ == "__main__":
    main(sys.argv)
