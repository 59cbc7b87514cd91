"""GELU, QuickGELU, RMSNorm (also in fp16 between Casts, and after a residual
Add) and SkipLayerNorm with a row bias in the forms exporters write, and near
misses, for the fusions of fuse-gelu and fuse-norm (issue 12), in the ONNX
backend-test layout.

    /usr/bin/python3 tests/gen/norm_forms.py OUTDIR

writes OUTDIR/NAME/model.onnx, test_data_set_0/{input,output}_K.pb (numpy
references computed from the definition of the function, not from the
graph) and OUTDIR/NAME/expect: lines "has OP" (OP must be in the -O2 IR)
and "lacks OP" (must not be).  A case whose name starts with "explain_"
also has OUTDIR/NAME/explain: the pattern on its first line, then text
fragments `kiln dump --explain=PATTERN` must print.  OUTDIR/NAME/check, when
there, holds options for `kiln check` (tolerances other than the default
--atol=1e-4 --rtol=1e-3).  Every model is checked
with onnx.checker where the installed onnx knows its opset.  Only onnx.helper
and numpy are used.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import case_io  # noqa: E402

F = TensorProto.FLOAT
rng = np.random.default_rng(12)
B, S, H = 2, 5, 16
OPSET = 17


def randn(*shape):
    return rng.normal(0, 1, shape).astype(np.float32)


def const(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name=outs[0].replace("_out", ""), **attrs)


def model(nodes, inits, n_out=1, inputs=("x",), elem=F, opset=OPSET, outputs=None, hidden=H):
    """inputs (and outputs, default y or y0, y1, ...): names of [batch, seq, H]
    tensors of type elem (hidden: another last dim, e.g. a symbol)."""
    outputs = outputs or (["y"] if n_out == 1 else ["y%d" % k for k in range(n_out)])
    g = helper.make_graph(
        nodes, "forms", [helper.make_tensor_value_info(i, elem, ["batch", "seq", hidden]) for i in inputs],
        [helper.make_tensor_value_info(o, elem, ["batch", "seq", hidden]) for o in outputs],
        initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="kiln-norm-forms")
    m.ir_version = 8
    return m


def sigmoid(v):
    return 1.0 / (1.0 + np.exp(-v))


def gelu_tanh(v):
    v = v.astype(np.float64)
    return 0.5 * v * (1 + np.tanh(math.sqrt(2 / math.pi) * (v + 0.044715 * v ** 3)))


def rms(v, w, eps):
    v = v.astype(np.float64)
    return v / np.sqrt((v * v).mean(-1, keepdims=True) + eps) * w


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


# The activations follow a projection (MatMul + bias) as in a transformer MLP.
def proj(nodes, inits, x="x"):
    w, b = randn(H, H) * 0.3, randn(H) * 0.1
    inits += [const("w1", w), const("b1", b)]
    nodes += [node("MatMul", [x, "w1"], ["mm_out"]), node("Add", ["mm_out", "b1"], ["h_out"])]
    return lambda xv: xv @ w + b


@case
def quick_gelu_torchscript():
    """CLIP's QuickGELU as TorchScript writes it: x * sigmoid(1.702 * x)."""
    nodes, inits = [], [const("k", 1.702)]
    f = proj(nodes, inits)
    nodes += [node("Mul", ["h_out", "k"], ["s_out"]), node("Sigmoid", ["s_out"], ["g_out"]),
              node("Mul", ["h_out", "g_out"], ["y"])]
    x = randn(B, S, H)
    h = f(x)
    return (model(nodes, inits), {"x": x}, [h * sigmoid(1.702 * h)],
            ["has KlnGemm", "lacks KlnGelu", "lacks Sigmoid", "lacks MatMul"])


@case
def quick_gelu_dynamo():
    """The same with the constant first and the product the other way round,
    through a Cast to float (as the dynamo exporter's type promotions do)."""
    nodes, inits = [], [const("k", 1.702)]
    f = proj(nodes, inits)
    nodes += [node("Mul", ["k", "h_out"], ["s_out"]), node("Sigmoid", ["s_out"], ["g_out"]),
              node("Cast", ["g_out"], ["c_out"], to=F), node("Mul", ["c_out", "h_out"], ["y"])]
    x = randn(B, S, H)
    h = f(x)
    return (model(nodes, inits), {"x": x}, [h * sigmoid(1.702 * h)],
            ["has KlnGemm", "lacks KlnGelu", "lacks Sigmoid", "lacks MatMul"])


@case
def quick_gelu_standalone():
    """QuickGELU of the input itself (no GEMM before it): a KlnGelu {approximate 2}."""
    nodes, inits = [], [const("k", 1.702)]
    nodes += [node("Mul", ["x", "k"], ["s_out"]), node("Sigmoid", ["s_out"], ["g_out"]),
              node("Mul", ["g_out", "x"], ["y"])]
    x = randn(B, S, H) * 4
    return model(nodes, inits), {"x": x}, [x * sigmoid(1.702 * x)], ["has KlnGelu", "lacks Sigmoid"]


@case
def quick_gelu_mlp_clip():
    """CLIP's MLP: fc1 (H -> 67, an odd width: partial vectors and panels),
    QuickGELU, fc2 (67 -> H): the activation becomes fc1's GEMM epilogue."""
    w1, b1 = randn(H, 67) * 0.5, randn(67)
    w2, b2 = randn(67, H) * 0.2, randn(H) * 0.1
    nodes = [node("MatMul", ["x", "w1"], ["fc1_out"]), node("Add", ["fc1_out", "b1"], ["h_out"]),
             node("Mul", ["h_out", "k"], ["s_out"]), node("Sigmoid", ["s_out"], ["g_out"]),
             node("Mul", ["h_out", "g_out"], ["a_out"]), node("MatMul", ["a_out", "w2"], ["fc2_out"]),
             node("Add", ["b2", "fc2_out"], ["y"])]
    inits = [const("k", 1.702), const("w1", w1), const("b1", b1), const("w2", w2), const("b2", b2)]
    x = randn(B, S, H) * 2
    h = x.astype(np.float64) @ w1 + b1
    ref = (h * sigmoid(np.float64(np.float32(1.702)) * h)) @ w2 + b2
    return (model(nodes, inits), {"x": x}, [ref],
            ["has KlnGemm", "lacks KlnGelu", "lacks Sigmoid", "lacks MatMul"])


@case
def quick_gelu_nearmiss_1701():
    """x * sigmoid(1.701 * x) is not QuickGELU: must stay as it is."""
    nodes, inits = [], [const("k", 1.701)]
    f = proj(nodes, inits)
    nodes += [node("Mul", ["h_out", "k"], ["s_out"]), node("Sigmoid", ["s_out"], ["g_out"]),
              node("Mul", ["h_out", "g_out"], ["y"])]
    x = randn(B, S, H)
    h = f(x)
    return model(nodes, inits), {"x": x}, [h * sigmoid(1.701 * h)], ["has Sigmoid", "lacks KlnGelu"]


@case
def gelu_tanh_nopow():
    """HF gelu_fast: 0.5 * x * (1 + tanh(x * 0.7978845608 * (1 + 0.044715 * x * x)))."""
    nodes, inits = [], [const("half", 0.5), const("one", 1.0), const("c", 0.7978845608),
                        const("k", 0.044715)]
    f = proj(nodes, inits)
    nodes += [node("Mul", ["h_out", "c"], ["xc_out"]), node("Mul", ["k", "h_out"], ["kx_out"]),
              node("Mul", ["kx_out", "h_out"], ["kxx_out"]), node("Add", ["one", "kxx_out"], ["p_out"]),
              node("Mul", ["xc_out", "p_out"], ["z_out"]), node("Tanh", ["z_out"], ["t_out"]),
              node("Add", ["t_out", "one"], ["a_out"]), node("Mul", ["half", "h_out"], ["hh_out"]),
              node("Mul", ["hh_out", "a_out"], ["y"])]
    x = randn(B, S, H)
    return model(nodes, inits), {"x": x}, [gelu_tanh(f(x))], ["has KlnGemm", "lacks Tanh"]


@case
def gelu_tanh_sigmoid():
    """The tanh GELU as x * sigmoid(2 * sqrt(2/pi) * (x + 0.044715 * x^3))."""
    nodes, inits = [], [const("c2", 2 * 0.7978845608), const("k", 0.044715), const("three", 3.0)]
    f = proj(nodes, inits)
    nodes += [node("Pow", ["h_out", "three"], ["cube_out"]), node("Mul", ["cube_out", "k"], ["kc_out"]),
              node("Add", ["h_out", "kc_out"], ["in_out"]), node("Mul", ["in_out", "c2"], ["z_out"]),
              node("Sigmoid", ["z_out"], ["g_out"]), node("Mul", ["h_out", "g_out"], ["y"])]
    x = randn(B, S, H)
    return model(nodes, inits), {"x": x}, [gelu_tanh(f(x))], ["has KlnGemm", "lacks Sigmoid", "lacks Pow"]


def rms_tail(nodes, inits, normed, w):
    inits.append(const("w", w))
    nodes.append(node("Mul", ["w", normed], ["y"]))


@case
def rmsnorm_t5():
    """T5 (TorchScript): Pow 2, ReduceMean, Add eps, Sqrt, Reciprocal, Mul x, weight * it."""
    w, eps = randn(H), 1e-6
    nodes, inits = [], [const("two", 2.0), const("eps", eps)]
    nodes += [node("Pow", ["x", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Reciprocal", ["s_out"], ["r_out"]), node("Mul", ["x", "r_out"], ["n_out"])]
    rms_tail(nodes, inits, "n_out", w)
    x = randn(B, S, H) * 3
    return model(nodes, inits), {"x": x}, [rms(x, w, eps)], ["has KlnRMSNorm", "lacks ReduceMean", "lacks Sqrt"]


@case
def rmsnorm_llama_dynamo():
    """LLaMA through dynamo-like casts: Cast(x) to f32, x*x, Div(1, Sqrt), Cast, w * it."""
    w, eps = randn(H), 1e-5
    nodes, inits = [], [const("one", 1.0), const("eps", eps)]
    nodes += [node("Cast", ["x"], ["xf_out"], to=F), node("Mul", ["xf_out", "xf_out"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[2], keepdims=1),
              node("Add", ["eps", "var_out"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Div", ["one", "s_out"], ["r_out"]), node("Mul", ["r_out", "xf_out"], ["n_out"]),
              node("Cast", ["n_out"], ["nc_out"], to=F)]
    rms_tail(nodes, inits, "nc_out", w)
    x = randn(B, S, H)
    return model(nodes, inits), {"x": x}, [rms(x, w, eps)], ["has KlnRMSNorm", "lacks ReduceMean", "lacks Div"]


@case
def rmsnorm_pow_half():
    """x * Pow(mean(x^2) + eps, -0.5) * w."""
    w, eps = randn(H), 1e-6
    nodes, inits = [], [const("two", 2.0), const("mh", -0.5), const("eps", eps)]
    nodes += [node("Pow", ["x", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Pow", ["ve_out", "mh"], ["r_out"]),
              node("Mul", ["x", "r_out"], ["n_out"])]
    rms_tail(nodes, inits, "n_out", w)
    x = randn(B, S, H)
    return model(nodes, inits), {"x": x}, [rms(x, w, eps)], ["has KlnRMSNorm", "lacks Pow"]


@case
def rmsnorm_nearmiss_axis():
    """The mean over the sequence axis, not the hidden one: no RMSNorm."""
    w, eps = randn(H), 1e-6
    nodes, inits = [], [const("two", 2.0), const("eps", eps)]
    nodes += [node("Pow", ["x", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Div", ["x", "s_out"], ["n_out"])]
    rms_tail(nodes, inits, "n_out", w)
    x = randn(B, S, H)
    xd = x.astype(np.float64)
    ref = xd / np.sqrt((xd * xd).mean(1, keepdims=True) + eps) * w
    return model(nodes, inits), {"x": x}, [ref], ["has ReduceMean", "lacks KlnRMSNorm"]


@case
def rmsnorm_noweight_t5():
    """T5's RMSNorm without the weight (the normalized value is the output):
    Pow 2, ReduceMean, Add eps, Sqrt, Reciprocal, Mul x."""
    eps = 1e-6
    nodes, inits = [], [const("two", 2.0), const("eps", eps)]
    nodes += [node("Pow", ["x", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Reciprocal", ["s_out"], ["r_out"]), node("Mul", ["x", "r_out"], ["y"])]
    x = randn(B, S, H) * 3
    return (model(nodes, inits), {"x": x}, [rms(x, 1.0, eps)],
            ["has KlnRMSNorm", "lacks ReduceMean", "lacks Sqrt", "lacks Reciprocal"])


@case
def rmsnorm_noweight_div_proj():
    """x / Sqrt(mean(x * x) + eps) with eps first, feeding a projection (a
    normalization before attention, no learned scale)."""
    eps = 1e-5
    nodes, inits = [], [const("eps", eps)]
    nodes += [node("Mul", ["x", "x"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[2], keepdims=1),
              node("Add", ["eps", "var_out"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Div", ["x", "s_out"], ["n_out"])]
    f = proj(nodes, inits, "n_out")
    nodes[-1].output[0] = "y"
    x = randn(B, S, H)
    return (model(nodes, inits), {"x": x}, [f(rms(x, 1.0, eps))],
            ["has KlnRMSNorm", "has KlnGemm", "lacks ReduceMean", "lacks Div"])


@case
def rmsnorm_noweight_pow_half():
    """Pow(mean(x^2) + eps, -0.5) * x through a Cast to float (dynamo)."""
    eps = 1e-6
    nodes, inits = [], [const("two", 2.0), const("mh", -0.5), const("eps", eps)]
    nodes += [node("Cast", ["x"], ["xf_out"], to=F), node("Pow", ["xf_out", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Pow", ["ve_out", "mh"], ["r_out"]),
              node("Mul", ["r_out", "xf_out"], ["y"])]
    x = randn(B, S, H)
    return (model(nodes, inits), {"x": x}, [rms(x, 1.0, eps)],
            ["has KlnRMSNorm", "lacks Pow", "lacks ReduceMean"])


@case
def rmsnorm_noweight_nearmiss_axis():
    """Without a weight, the mean over the sequence axis: no RMSNorm."""
    eps = 1e-6
    nodes, inits = [], [const("two", 2.0), const("eps", eps)]
    nodes += [node("Pow", ["x", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Div", ["x", "s_out"], ["y"])]
    x = randn(B, S, H)
    xd = x.astype(np.float64)
    ref = xd / np.sqrt((xd * xd).mean(1, keepdims=True) + eps)
    return model(nodes, inits), {"x": x}, [ref], ["has ReduceMean", "lacks KlnRMSNorm"]


@case
def rmsnorm_noweight_dyn_width():
    """ONNX Runtime's SimplifiedLayerNormalization test form on a last dim
    that is a symbol ("hidden"): x * Div(1, Sqrt(mean(Pow(x, 2)) + eps)).
    Fuses (a weight of one element, 1, broadcast by the kernel)."""
    eps = 1e-6
    nodes, inits = [], [const("two", 2.0), const("eps", eps), const("one", 1.0)]
    nodes += [node("Pow", ["x", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Div", ["one", "s_out"], ["r_out"]), node("Mul", ["r_out", "x"], ["y"])]
    x = randn(B, S, H) * 2
    return (model(nodes, inits, hidden="hidden"), {"x": x}, [rms(x, 1.0, eps)],
            ["has KlnRMSNorm", "lacks ReduceMean", "lacks Sqrt", "lacks Div"])


@case
def explain_rmsnorm_noweight_dyn_nearmiss():
    """The same on a symbolic last dim, but the mean over axis 1 (the
    sequence): must not fuse, and --explain=rmsnorm names the ReduceMean
    (and says the Div is an inverse, not a candidate of its own)."""
    eps = 1e-6
    nodes, inits = [], [const("two", 2.0), const("eps", eps), const("one", 1.0)]
    nodes += [node("Pow", ["x", "two"], ["r/sq_out"]),
              node("ReduceMean", ["r/sq_out"], ["r/var_out"], axes=[1], keepdims=1),
              node("Add", ["r/var_out", "eps"], ["r/ve_out"]), node("Sqrt", ["r/ve_out"], ["r/s_out"]),
              node("Div", ["one", "r/s_out"], ["r/inv_out"]), node("Mul", ["r/inv_out", "x"], ["y"])]
    x = randn(B, S, H)
    xd = x.astype(np.float64)
    ref = xd / np.sqrt((xd * xd).mean(1, keepdims=True) + eps)
    explain = ["rmsnorm", "explain rmsnorm: Mul 'y': not fused: at ReduceMean 'r/var':",
               "reduces axis 1, not the last axis 2",
               "explain rmsnorm: Div 'r/inv': not fused: at Div 'r/inv': divides the constant 1: "
               "an inverse 1/rms(x)"]
    return (model(nodes, inits, hidden="hidden"), {"x": x}, [ref], ["has ReduceMean", "lacks KlnRMSNorm"],
            explain)


@case
def explain_rmsnorm_noeps():
    """x / Sqrt(mean(x^2)) with no epsilon: not an RMSNorm (a row of zeros
    would divide by zero), must not fuse, and --explain=rmsnorm names the
    Sqrt and what its input lacks."""
    nodes, inits = [], [const("two", 2.0)]
    nodes += [node("Pow", ["x", "two"], ["r/sq_out"]),
              node("ReduceMean", ["r/sq_out"], ["r/var_out"], axes=[-1], keepdims=1),
              node("Sqrt", ["r/var_out"], ["r/s_out"]), node("Div", ["x", "r/s_out"], ["y"])]
    x = randn(B, S, H)
    xd = x.astype(np.float64)
    ref = xd / np.sqrt((xd * xd).mean(-1, keepdims=True))
    explain = ["rmsnorm", "explain rmsnorm: Div 'y': not fused: at Sqrt 'r/s':",
               "the Sqrt's input is not an Add mean + eps"]
    return model(nodes, inits), {"x": x}, [ref], ["has Sqrt", "lacks KlnRMSNorm"], explain


@case
def explain_layernorm_axis():
    """A decomposed LayerNorm whose variance is a mean over axis 1: must not
    fuse (as LayerNorm, nor as an RMSNorm of x - mean), and
    --explain=layernorm names that ReduceMean and the axis."""
    g, b, eps = randn(H), randn(H), 1e-5
    nodes, inits = [], [const("two", 2.0), const("eps", eps), const("gamma", g), const("beta", b)]
    nodes += [node("ReduceMean", ["x"], ["ln/mean_out"], axes=[-1], keepdims=1),
              node("Sub", ["x", "ln/mean_out"], ["ln/sub_out"]),
              node("Pow", ["ln/sub_out", "two"], ["ln/pow_out"]),
              node("ReduceMean", ["ln/pow_out"], ["ln/var_out"], axes=[1], keepdims=1),
              node("Add", ["ln/var_out", "eps"], ["ln/ve_out"]), node("Sqrt", ["ln/ve_out"], ["ln/s_out"]),
              node("Div", ["ln/sub_out", "ln/s_out"], ["ln/n_out"]),
              node("Mul", ["ln/n_out", "gamma"], ["ln/g_out"]), node("Add", ["ln/g_out", "beta"], ["y"])]
    x = randn(B, S, H)
    xd = x.astype(np.float64)
    d = xd - xd.mean(-1, keepdims=True)
    ref = d / np.sqrt((d * d).mean(1, keepdims=True) + eps) * g + b
    explain = ["layernorm", "explain layernorm: Add 'y': not fused: at ReduceMean 'ln/var':",
               "reduces axis 1, not the last axis 2"]
    return (model(nodes, inits), {"x": x}, [ref], ["has ReduceMean", "lacks KlnLayerNorm"],
            explain)


@case
def explain_gelu_constant():
    """An erf GELU whose argument is x / 1.5: not GELU, must not fuse, and
    --explain=gelu names the Erf node and what its argument computes."""
    nodes, inits = [], [const("half", 0.5), const("one", 1.0), const("c", 1.5)]
    f = proj(nodes, inits)
    nodes += [node("Div", ["h_out", "c"], ["g/div_out"]), node("Erf", ["g/div_out"], ["g/erf_out"]),
              node("Add", ["g/erf_out", "one"], ["g/add_out"]), node("Mul", ["h_out", "half"], ["g/half_out"]),
              node("Mul", ["g/half_out", "g/add_out"], ["y"])]
    x = randn(B, S, H)
    h = f(x).astype(np.float64)
    erf = np.vectorize(math.erf)
    ref = 0.5 * h * (1 + erf(h / 1.5))
    explain = ["gelu", "explain gelu: Mul 'y': not fused: at Erf 'g/erf': Erf's argument is 0.666666",
               "GELU needs x/sqrt(2)"]
    return model(nodes, inits), {"x": x}, [ref], ["has Erf", "lacks KlnGelu"], explain


# ---- SkipLayerNorm with a row bias (ONNX Runtime's SkipLayerNormalization
# written out, GPT-2): the kernel adds (x + skip) + bias; kiln check's default
# tolerance (--atol=1e-4 --rtol=1e-3) covers the other addition orders.

def ln(v, g, b, eps):
    v = v.astype(np.float64)
    d = v - v.mean(-1, keepdims=True)
    return d / np.sqrt((d * d).mean(-1, keepdims=True) + eps) * g + b


def layernorm_nodes(nodes, inits, s, y, eps, decomposed):
    """LayerNormalization(s) -> y, or (decomposed) the opset-14 TorchScript
    spelling: ReduceMean, Sub, Pow 2, ReduceMean, Add eps, Sqrt, Div, Mul, Add."""
    if not decomposed:
        nodes.append(node("LayerNormalization", [s, "gamma", "beta"], [y], axis=-1, epsilon=eps))
        return
    inits += [const("two", 2.0), const("eps", eps)]
    nodes += [node("ReduceMean", [s], ["ln/mean_out"], axes=[-1], keepdims=1),
              node("Sub", [s, "ln/mean_out"], ["ln/d_out"]), node("Pow", ["ln/d_out", "two"], ["ln/sq_out"]),
              node("ReduceMean", ["ln/sq_out"], ["ln/var_out"], axes=[-1], keepdims=1),
              node("Add", ["ln/var_out", "eps"], ["ln/ve_out"]), node("Sqrt", ["ln/ve_out"], ["ln/s_out"]),
              node("Div", ["ln/d_out", "ln/s_out"], ["ln/n_out"]), node("Mul", ["ln/n_out", "gamma"], ["ln/g_out"]),
              node("Add", ["ln/g_out", "beta"], [y])]


def ln_nobias_nodes(nodes, inits, s, y, eps, opset, recip=False, scale_first=False):
    """The decomposed LayerNorm of s without beta (no final Add): at opset 18
    the ReduceMean axes an input, else an attribute; recip: (x - mean) *
    Reciprocal(sqrt) instead of the Div; scale_first (a near miss): gamma
    multiplies s before the normalisation, which has no scale after."""
    inits += [const("two", 2.0), const("eps", eps)]

    def mean(i, o):
        if opset >= 18:
            return node("ReduceMean", [i, "axes"], [o], keepdims=1)
        return node("ReduceMean", [i], [o], axes=[-1], keepdims=1)
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([-1], np.int64), "axes"))
    if scale_first:
        nodes.append(node("Mul", [s, "gamma"], ["ln/pre_out"]))
        s = "ln/pre_out"
    nodes += [mean(s, "ln/mean_out"), node("Sub", [s, "ln/mean_out"], ["ln/d_out"]),
              node("Mul", ["ln/d_out", "ln/d_out"], ["ln/sq_out"]), mean("ln/sq_out", "ln/var_out"),
              node("Add", ["eps", "ln/var_out"], ["ln/ve_out"]), node("Sqrt", ["ln/ve_out"], ["ln/s_out"])]
    last = y if scale_first else "ln/n_out"
    if recip:
        nodes += [node("Reciprocal", ["ln/s_out"], ["ln/r_out"]), node("Mul", ["ln/d_out", "ln/r_out"], [last])]
    else:
        nodes.append(node("Div", ["ln/d_out", "ln/s_out"], [last]))
    if not scale_first:
        nodes.append(node("Mul", ["gamma", "ln/n_out"], [y]))


def ln_nobias_case(opset, recip=False, residual=False, op=False):
    """A LayerNorm with a scale and no bias (decomposed, or op: opset-17
    LayerNormalization without B), of x or of the residual sum x + skip."""
    g, eps = randn(H), 1e-5
    inits, nodes = [const("gamma", g)], []
    s = "x"
    if residual:
        nodes.append(node("Add", ["x", "skip"], ["s"]))
        s = "s"
    if op:
        nodes.append(node("LayerNormalization", [s, "gamma"], ["y"], axis=-1, epsilon=eps))
    else:
        ln_nobias_nodes(nodes, inits, s, "y", eps, opset, recip)
    x, skip = randn(B, S, H), randn(B, S, H)
    x[0, 1] = 0     # a row all zero: 0 / sqrt(eps), exactly 0
    xs = x.astype(np.float64) + (skip if residual else 0)
    ins = ("x", "skip") if residual else ("x",)
    feeds = {"x": x, "skip": skip} if residual else {"x": x}
    fused = "KlnSkipLayerNorm" if residual else "KlnLayerNorm"
    expect = ["has " + fused, "lacks ReduceMean", "lacks Add", "lacks LayerNormalization", "lacks KlnRMSNorm"]
    return model(nodes, inits, inputs=ins, opset=opset), feeds, [ln(xs, g, 0, eps)], expect


@case
def ln_nobias_torchscript():
    """A decomposed LayerNorm with no bias (opset 14, Div): fuses with a zero bias."""
    return ln_nobias_case(14)


@case
def ln_nobias_dynamo_recip():
    """The same at opset 18 (ReduceMean axes an input), the inverse a Reciprocal."""
    return ln_nobias_case(18, recip=True)


@case
def ln_nobias_old_opset():
    """The same at opset 11 (ReduceMean axes an attribute)."""
    return ln_nobias_case(11)


@case
def skip_ln_nobias():
    """The residual sum then a decomposed LayerNorm without bias: one KlnSkipLayerNorm."""
    return ln_nobias_case(14, residual=True)


@case
def skip_ln_nobias_op():
    """The residual sum then LayerNormalization without B: one KlnSkipLayerNorm."""
    return ln_nobias_case(17, residual=True, op=True)


@case
def explain_ln_scale_first():
    """Near miss: gamma multiplies x before a scale-less normalisation
    (LN(x * gamma), not LN(x) * gamma): no KlnLayerNorm, and
    --explain=layernorm says the bias Add's operand is not a Mul."""
    g, b, eps = randn(H), randn(H), 1e-5
    inits, nodes = [const("gamma", g), const("beta", b)], []
    ln_nobias_nodes(nodes, inits, "x", "ln/z_out", eps, 14, scale_first=True)
    nodes.append(node("Add", ["ln/z_out", "beta"], ["y"]))
    x = randn(B, S, H)
    ref = ln(x.astype(np.float64) * g, 1, b, eps)
    explain = ["layernorm", "explain layernorm: Add 'y': not fused: at Add 'y':",
               "neither operand is a Mul (normalized * gamma)"]
    return model(nodes, inits, opset=14), {"x": x}, [ref], ["has ReduceMean", "lacks KlnLayerNorm"], explain


def skip_bias_case(order, decomposed=False, opset=OPSET, sum_out=False):
    """LayerNorm of x + skip + bias, the Adds as `order` says: "xs_b"
    (x + skip) + bias, "b_sx" bias + (skip + x), "xb_s" (x + bias) + skip;
    sum_out: the sum is a graph output too (KlnSkipLayerNorm's output 1)."""
    g, b, bias, eps = randn(H), randn(H), randn(H), 1e-5
    inits = [const("gamma", g), const("beta", b), const("bias", bias)]
    first = {"xs_b": ["x", "skip"], "b_sx": ["skip", "x"], "xb_s": ["x", "bias"]}[order]
    second = {"xs_b": ["t_out", "bias"], "b_sx": ["bias", "t_out"], "xb_s": ["t_out", "skip"]}[order]
    nodes = [node("Add", first, ["t_out"]), node("Add", second, ["s"])]
    layernorm_nodes(nodes, inits, "s", "y", eps, decomposed)
    x, skip = randn(B, S, H), randn(B, S, H)
    sm = x.astype(np.float64) + skip + bias
    outs, refs = (["y", "s"], [ln(sm, g, b, eps), sm]) if sum_out else (["y"], [ln(sm, g, b, eps)])
    m = model(nodes, inits, inputs=("x", "skip"), opset=opset, outputs=outs)
    expect = ["has KlnSkipLayerNorm", "lacks Add", "lacks LayerNormalization", "lacks ReduceMean"]
    return m, {"x": x, "skip": skip}, refs, expect


@case
def skip_ln_bias_after():
    """ORT's SkipLayerNormalization with its bias, written out (GPT-2):
    LayerNormalization((x + skip) + bias)."""
    return skip_bias_case("xs_b")


@case
def skip_ln_bias_after_torchscript():
    """The same with the bias first and the LayerNorm decomposed (TorchScript, opset 14 style)."""
    return skip_bias_case("b_sx", decomposed=True)


@case
def skip_ln_bias_after_dynamo():
    """Opset 18 (dynamo), bias + (skip + x), the sum also a graph output."""
    return skip_bias_case("b_sx", opset=18, sum_out=True)


@case
def skip_ln_bias_before():
    """(x + bias) + skip with x not a MatMul's: the bias moves into the fused op too."""
    return skip_bias_case("xb_s")


@case
def explain_skip_ln_bias_rows():
    """Near miss: the "bias" [S, H] differs per row (not a row bias): the
    LayerNorm fuses alone, and --explain=skip_layernorm names the Add."""
    g, b, eps = randn(H), randn(H), 1e-5
    bias = randn(S, H)
    inits = [const("gamma", g), const("beta", b), const("bias", bias)]
    nodes = [node("Add", ["x", "skip"], ["t_out"]), node("Add", ["t_out", "bias"], ["s"])]
    layernorm_nodes(nodes, inits, "s", "y", eps, False)
    x, skip = randn(B, S, H), randn(B, S, H)
    ref = ln(x.astype(np.float64) + skip + bias, g, b, eps)
    m = model(nodes, inits, inputs=("x", "skip"))
    explain = ["skip_layernorm", "explain skip_layernorm: KlnLayerNorm 'y': not fused: at Add 's':",
               "neither is a bias (an f32 vector of the last dim): 't_out', 'bias'"]
    return (m, {"x": x, "skip": skip}, [ref], ["has KlnLayerNorm", "lacks KlnSkipLayerNorm"],
            explain)


@case
def explain_skip_ln_bias_partial_used():
    """Near miss: x + skip is used again before the bias is added (a graph
    output): it cannot be absorbed, and --explain=skip_layernorm says so."""
    g, b, bias, eps = randn(H), randn(H), randn(H), 1e-5
    inits = [const("gamma", g), const("beta", b), const("bias", bias)]
    nodes = [node("Add", ["x", "skip"], ["t"]), node("Add", ["t", "bias"], ["s"])]
    layernorm_nodes(nodes, inits, "s", "y", eps, False)
    x, skip = randn(B, S, H), randn(B, S, H)
    t = x.astype(np.float64) + skip
    m = model(nodes, inits, inputs=("x", "skip"), outputs=["y", "t"])
    explain = ["skip_layernorm", "explain skip_layernorm: KlnLayerNorm 'y': not fused: at Add 't':",
               "the residual sum before the bias 'bias' has other users"]
    return (m, {"x": x, "skip": skip}, [ln(t + bias, g, b, eps), t],
            ["has KlnLayerNorm", "lacks KlnSkipLayerNorm"], explain)


# ---- MatMul/Gemm + a row bias of shape [1, N], [1, 1, N] or an [N]
# unsqueezed (fuse-gemm: one KlnGemm with the bias), and biases that differ
# along the rows (the Add stays, gemm_nobias takes the MatMul).

def gemm_bias_case(shape, unsqueeze=False, rank=3):
    """x [B, S, H] (rank 3) or [S, H] (rank 2) @ W + bias of `shape`; unsqueeze:
    the bias a graph input [H] unsqueezed to [1, H] (not a constant)."""
    w, b = randn(H, H) * 0.3, randn(*shape)
    xs = (B, S, H) if rank == 3 else (S, H)
    inits, nodes = [const("w", w)], [node("MatMul", ["x", "w"], ["mm_out"])]
    ins = [helper.make_tensor_value_info("x", F, list(xs))]
    feeds = {"x": randn(*xs)}
    if unsqueeze:
        inits.append(numpy_helper.from_array(np.array([0], np.int64), "ax0"))
        nodes.append(node("Unsqueeze", ["bv", "ax0"], ["bu_out"]))
        ins.append(helper.make_tensor_value_info("bv", F, [H]))
        feeds["bv"] = b = randn(H)
        bias = "bu_out"
    else:
        inits.append(const("bias", b))
        bias = "bias"
    nodes.append(node("Add", [bias, "mm_out"], ["y"]))
    ref = feeds["x"].astype(np.float64) @ w + b
    g = helper.make_graph(nodes, "gemm", ins, [helper.make_tensor_value_info("y", F, list(xs))], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kiln-norm-forms")
    m.ir_version = 8
    return m, feeds, [ref]


@case
def gemm_bias_1n():
    """MatMul + a constant bias [1, N]: one KlnGemm with the bias."""
    return gemm_bias_case((1, H)) + (["has KlnGemm", "lacks Add", "lacks MatMul"],)


@case
def gemm_bias_11n():
    """MatMul of a [B, S, K] input + a constant bias [1, 1, N]: one KlnGemm."""
    return gemm_bias_case((1, 1, H)) + (["has KlnGemm", "lacks Add", "lacks MatMul"],)


@case
def gemm_bias_unsqueeze():
    """MatMul + an input bias [N] unsqueezed to [1, N]: one KlnGemm of the [N]."""
    return gemm_bias_case((H,), unsqueeze=True) + (["has KlnGemm", "lacks Add", "lacks MatMul"],)


@case
def gemm_bias_rows_nearmiss():
    """Near miss: the bias [S, N] differs per row: the Add stays (the MatMul
    a KlnGemm without bias).  (--explain=gemm runs after the pipeline, when
    the MatMul is that KlnGemm: see explain_gemm_op_c_rows for the reason.)"""
    return gemm_bias_case((S, H)) + (["has KlnGemm", "has Add"],)


@case
def gemm_bias_batch_nearmiss():
    """Near miss: a bias [B, 1, N] with B = 2 differs per batch: the Add stays."""
    return gemm_bias_case((B, 1, H)) + (["has KlnGemm", "has Add"],)


def gemm_op_case(cshape, trans_b, trans_a=0):
    """Gemm(x [S, H], W, C of cshape) {transB}; trans_a: x is [H, S] and
    transA 1 (its product x^T @ W)."""
    w, c = randn(H, H) * 0.3, randn(*cshape)
    x = randn(H, S) if trans_a else randn(S, H)
    inits = [const("w", w.T if trans_b else w), const("c", c)]
    attrs = {"transA": 1} if trans_a else {}
    nodes = [node("Gemm", ["x", "w", "c"], ["y"], transB=trans_b, **attrs)]
    g = helper.make_graph(nodes, "gemm", [helper.make_tensor_value_info("x", F, list(x.shape))],
                          [helper.make_tensor_value_info("y", F, [S, H])], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kiln-norm-forms")
    m.ir_version = 8
    return m, {"x": x}, [(x.T if trans_a else x).astype(np.float64) @ w + c]


@case
def gemm_op_trans_a():
    """Gemm with transA 1, transB 1 and C [N]: one KlnGemm of Transpose(x)."""
    return gemm_op_case((H,), 1, trans_a=1) + (["has KlnGemm", "has Transpose", "lacks Gemm"],)


@case
def gemm_op_trans_a_rows():
    """Gemm with transA 1 and C [M, N]: stays a Gemm (numbers checked)."""
    return gemm_op_case((S, H), 0, trans_a=1) + (["has Gemm", "lacks KlnGemm"],)


@case
def gemm_op_c_1n():
    """Gemm with C [1, N] (transB 1): one KlnGemm with the bias."""
    return gemm_op_case((1, H), 1) + (["has KlnGemm", "lacks Gemm"],)


@case
def explain_gemm_op_c_rows():
    """Near miss: Gemm with C [M, N]: stays a Gemm, --explain=gemm_onnx says why."""
    return gemm_op_case((S, H), 0) + (["has Gemm", "lacks KlnGemm"],
                                      ["gemm_onnx", "explain gemm_onnx: Gemm 'y': not fused: at Gemm 'y':",
                                       "the bias 'c' differs along dim 0"])


# ---- embeddings with static positions: an HF BERT exported with static
# shapes slices its position_ids buffer [1, 512] to [1, S] with constants;
# fold turns the Slice and the position Gather into a constant [1, S, H],
# which fuse-embed takes as the table of positions 0..S-1.

def embed_static_case(pos_ids, types=True):
    """LN(word[ids] + pos[pos_ids] (+ type[tt])); pos_ids "slice": a Slice of
    the buffer arange(12)[None] to [1, S] with constant starts/ends, else
    a constant index array."""
    V, P = 30, 12
    word, pos, typ = randn(V, H), randn(P, H), randn(2, H)
    g, b, eps = randn(H), randn(H), 1e-12
    inits = [const("word", word), const("pos", pos), const("typ", typ), const("gamma", g), const("beta", b)]
    nodes = [node("Gather", ["word", "ids"], ["we_out"])]
    if isinstance(pos_ids, str):
        inits += [numpy_helper.from_array(np.arange(P, dtype=np.int64)[None], "buf"),
                  numpy_helper.from_array(np.array([0], np.int64), "st"),
                  numpy_helper.from_array(np.array([S], np.int64), "en"),
                  numpy_helper.from_array(np.array([1], np.int64), "ax1")]
        nodes.append(node("Slice", ["buf", "st", "en", "ax1"], ["pid_out"]))
        pv = np.arange(S)[None]
    else:
        inits.append(numpy_helper.from_array(pos_ids, "pid_out"))
        pv = pos_ids
    nodes += [node("Gather", ["pos", "pid_out"], ["pe_out"]), node("Add", ["we_out", "pe_out"], ["e_out"])]
    ins = [helper.make_tensor_value_info("ids", TensorProto.INT64, [B, S])]
    ids = rng.integers(0, V, (B, S)).astype(np.int64)
    feeds = {"ids": ids}
    e = word[ids].astype(np.float64) + pos[pv]
    last = "e_out"
    if types:
        ins.append(helper.make_tensor_value_info("tt", TensorProto.INT64, [B, S]))
        feeds["tt"] = tt = rng.integers(0, 2, (B, S)).astype(np.int64)
        nodes += [node("Gather", ["typ", "tt"], ["te_out"]), node("Add", ["e_out", "te_out"], ["s_out"])]
        e = e + typ[tt]
        last = "s_out"
    nodes.append(node("LayerNormalization", [last, "gamma", "beta"], ["y"], axis=-1, epsilon=eps))
    gr = helper.make_graph(nodes, "embed", ins, [helper.make_tensor_value_info("y", F, [B, S, H])],
                           initializer=inits)
    m = helper.make_model(gr, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="kiln-norm-forms")
    m.ir_version = 8
    return m, feeds, [ln(e, g, b, eps)]


@case
def embed_static_positions():
    """BERT with static shapes: positions a constant Slice [1, S] of the buffer: one KlnEmbedLayerNorm."""
    return embed_static_case("slice") + (["has KlnEmbedLayerNorm", "lacks Add", "lacks Gather"],)


@case
def embed_static_positions_rows():
    """Constant position ids arange(S) in every row of [B, S], no token types: one KlnEmbedLayerNorm."""
    return embed_static_case(np.tile(np.arange(S, dtype=np.int64), (B, 1)), types=False) + (
        ["has KlnEmbedLayerNorm", "lacks Add", "lacks Gather"],)


@case
def embed_static_positions_nearmiss():
    """Near miss: constant position ids [B, S] whose rows differ (row 1
    shifted): the folded term differs per batch row, the Add stays."""
    pv = np.tile(np.arange(S, dtype=np.int64), (B, 1))
    pv[1] = (pv[1] + 1) % S
    return embed_static_case(pv) + (["has Add", "lacks KlnEmbedLayerNorm", "has KlnSkipLayerNorm"],)


# ---- RMSNorm in fp16 between Casts (T5 / LLaMA in half precision): the f32
# computation becomes a KlnRMSNorm, the Casts and an f16 weight stay outside.

F16 = TensorProto.FLOAT16


def rms_f32(x16, eps):
    """numpy's f32 computation of x / sqrt(mean(x^2) + eps) from f16 x."""
    v = x16.astype(np.float32)
    return v / np.sqrt((v * v).mean(-1, keepdims=True) + np.float32(eps))


def rms16_case(recip, opset, weight32=False):
    """x f16 -> Cast f32 -> Pow 2, ReduceMean, Add eps, Sqrt, then Div x by
    it (recip False) or Mul x by its Reciprocal -> Cast f16 -> Mul by an f16
    weight (ONNX Runtime's SimplifiedLayerNormalization test, HF T5 in half
    precision); weight32: the weight is f32 and multiplies before the Cast."""
    eps = 1e-6
    w = randn(H)
    nodes, inits = [], [const("two", 2.0), const("eps", eps)]
    inits.append(const("w", w) if weight32 else numpy_helper.from_array(w.astype(np.float16), "w"))
    mean = (node("ReduceMean", ["sq_out", "axes"], ["var_out"], keepdims=1) if opset >= 18 else
            node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1))
    if opset >= 18:
        inits.append(numpy_helper.from_array(np.array([-1], np.int64), "axes"))
    nodes += [node("Cast", ["x"], ["xf_out"], to=F), node("Pow", ["xf_out", "two"], ["sq_out"]), mean,
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"])]
    if recip:
        nodes += [node("Reciprocal", ["s_out"], ["r_out"]), node("Mul", ["xf_out", "r_out"], ["n_out"])]
    else:
        nodes.append(node("Div", ["xf_out", "s_out"], ["n_out"]))
    if weight32:
        nodes += [node("Mul", ["w", "n_out"], ["nw_out"]), node("Cast", ["nw_out"], ["y"], to=F16)]
    else:
        nodes += [node("Cast", ["n_out"], ["nc_out"], to=F16), node("Mul", ["w", "nc_out"], ["y"])]
    x = (randn(B, S, H) * 3).astype(np.float16)
    n = rms_f32(x, eps)
    ref = (n * w).astype(np.float16) if weight32 else w.astype(np.float16) * n.astype(np.float16)
    m = model(nodes, inits, elem=F16, opset=opset)
    return m, {"x": x}, [ref], ["has KlnRMSNorm", "has Cast", "lacks ReduceMean", "lacks Sqrt", "lacks Pow"]


@case
def rmsnorm_f16_casts():
    """ONNX Runtime's simplified_layer_norm_with_casts (T5 in fp16): Div, the f16 weight after the Cast back."""
    return rms16_case(False, OPSET)


@case
def rmsnorm_f16_casts_dynamo():
    """The same at opset 18 (ReduceMean axes as an input) with Reciprocal (torch.rsqrt)."""
    return rms16_case(True, 18)


@case
def rmsnorm_f16_casts_weight32():
    """The weight f32, multiplied before the Cast back: a weighted KlnRMSNorm between the Casts."""
    return rms16_case(False, 18, weight32=True)


@case
def explain_rmsnorm_f16_f64():
    """Near miss: the Cast goes to f64, not f32 (KlnRMSNorm runs on f32):
    must not fuse, and --explain=rmsnorm says what x is."""
    eps = 1e-6
    D = TensorProto.DOUBLE
    nodes, inits = [], [numpy_helper.from_array(np.array(2.0), "two"),
                        numpy_helper.from_array(np.array(eps), "eps")]
    nodes += [node("Cast", ["x"], ["xf_out"], to=D), node("Pow", ["xf_out", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
              node("Div", ["xf_out", "s_out"], ["n_out"]), node("Cast", ["n_out"], ["y"], to=F16)]
    x = (randn(B, S, H) * 3).astype(np.float16)
    v = x.astype(np.float64)
    ref = (v / np.sqrt((v * v).mean(-1, keepdims=True) + eps)).astype(np.float16)
    explain = ["rmsnorm", "explain rmsnorm: Div 'n': not fused: at Div 'n': x is f64, KlnRMSNorm runs on f32"]
    return model(nodes, inits, elem=F16), {"x": x}, [ref], ["has ReduceMean", "lacks KlnRMSNorm"], explain


@case
def explain_rmsnorm_f16_eps_outside():
    """Near miss: eps outside the sqrt, x / (sqrt(mean(x^2)) + eps), in f32
    between f16 Casts: not an RMSNorm, and --explain=rmsnorm names the Div."""
    eps = 1e-3
    nodes, inits = [], [const("two", 2.0), const("eps", eps)]
    nodes += [node("Cast", ["x"], ["xf_out"], to=F), node("Pow", ["xf_out", "two"], ["sq_out"]),
              node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
              node("Sqrt", ["var_out"], ["s_out"]), node("Add", ["s_out", "eps"], ["se_out"]),
              node("Div", ["xf_out", "se_out"], ["n_out"]), node("Cast", ["n_out"], ["y"], to=F16)]
    x = (randn(B, S, H) * 3).astype(np.float16)
    v = x.astype(np.float32)
    ref = (v / (np.sqrt((v * v).mean(-1, keepdims=True)) + np.float32(eps))).astype(np.float16)
    explain = ["rmsnorm", "explain rmsnorm: Div 'n': not fused:", "the divisor 'se_out' is not a Sqrt"]
    return model(nodes, inits, elem=F16), {"x": x}, [ref], ["has Sqrt", "lacks KlnRMSNorm"], explain


@case
def cast_f16_exact():
    """f32 -> f16 -> f32 Casts round to nearest, ties to even, as numpy does:
    halfway cases (even below and above), subnormals, overflow to inf, -0,
    and random values, compared exactly (--atol=0 --rtol=0)."""
    nodes = [node("Cast", ["x"], ["h_out"], to=F16), node("Cast", ["h_out"], ["y"], to=F)]
    one = np.float32(1.0)
    special = [1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -11 + 2.0 ** -20, 2.0 ** -25,
               2.0 ** -25 * 3, 2.0 ** -24 * 1.5, 65504.0, 65519.99, 65520.0, 1e9, -0.0, -(1 + 2.0 ** -11),
               6.1e-5, 5.96e-8, 2.98e-8, 3e-8, 0.1, one / 3]
    x = (rng.normal(0, 1, B * S * H) * np.exp(rng.uniform(-20, 12, B * S * H))).astype(np.float32)
    x[:len(special)] = np.array(special, np.float32)
    x = x.reshape(B, S, H)
    with np.errstate(over="ignore"):
        ref = x.astype(np.float16).astype(np.float32)
    return model(nodes, []), {"x": x}, [ref], ["has Cast"], None, "--atol=0 --rtol=0"


# ---- Residual Add + RMSNorm (LLaMA / SmolLM): h = x + attn; y = RMSNorm(h) * w,
# h used again by the next residual: KlnRMSNorm(x, w, skip attn) with the sum
# as output 1.

def rms_residual_case(style, opset=OPSET):
    """style "torchscript": Pow 2, ReduceMean (axes attribute), Add eps, Sqrt,
    Div(1, .), Mul, w * it; "dynamo": Cast to f32 around it, x * x,
    ReduceMean with axes as an input (opset 18), Reciprocal(Sqrt) (rsqrt),
    Cast back.  The graph returns y and h + y (the next residual)."""
    w, eps = randn(H), 1e-5
    nodes, inits = [node("Add", ["x", "attn"], ["h"])], [const("w", w), const("eps", eps)]
    if style == "torchscript":
        inits += [const("two", 2.0), const("one", 1.0)]
        nodes += [node("Pow", ["h", "two"], ["sq_out"]),
                  node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
                  node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
                  node("Div", ["one", "s_out"], ["r_out"]), node("Mul", ["h", "r_out"], ["n_out"]),
                  node("Mul", ["w", "n_out"], ["y"])]
    else:
        inits.append(numpy_helper.from_array(np.array([-1], np.int64), "axes"))
        nodes += [node("Cast", ["h"], ["hf_out"], to=F), node("Mul", ["hf_out", "hf_out"], ["sq_out"]),
                  node("ReduceMean", ["sq_out", "axes"], ["var_out"], keepdims=1),
                  node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
                  node("Reciprocal", ["s_out"], ["r_out"]), node("Mul", ["hf_out", "r_out"], ["n_out"]),
                  node("Cast", ["n_out"], ["nc_out"], to=F), node("Mul", ["w", "nc_out"], ["y"])]
    nodes.append(node("Add", ["h", "y"], ["r"]))
    x, attn = randn(B, S, H), randn(B, S, H)
    h = x.astype(np.float32) + attn
    y = rms(h, w, eps)
    m = model(nodes, inits, inputs=("x", "attn"), opset=opset, outputs=["y", "r"])
    explain = ["skip_rmsnorm", "explain skip_rmsnorm: KlnRMSNorm 'y': fused as KlnRMSNorm 'y'"]
    return (m, {"x": x, "attn": attn}, [y, h + y],
            ["has KlnRMSNorm", "lacks ReduceMean", "lacks Sqrt", "lacks Pow"], explain)


@case
def rmsnorm_residual_torchscript():
    """SmolLM's residual + RMSNorm as TorchScript writes it (Pow, Div 1 by Sqrt)."""
    return rms_residual_case("torchscript")


@case
def rmsnorm_residual_dynamo():
    """The same through dynamo at opset 18 (Casts, x * x, rsqrt as Reciprocal(Sqrt))."""
    return rms_residual_case("dynamo", 18)


@case
def explain_rmsnorm_residual_bcast():
    """Near miss: the Add before the RMSNorm broadcasts a [S, H] table (a
    position bias, not a residual): the RMSNorm fuses alone, and
    --explain=skip_rmsnorm names the Add."""
    w, eps = randn(H), 1e-5
    tab = randn(S, H)
    inits = [const("w", w), const("eps", eps), const("two", 2.0), const("tab", tab)]
    nodes = [node("Add", ["x", "tab"], ["h"]), node("Pow", ["h", "two"], ["sq_out"]),
             node("ReduceMean", ["sq_out"], ["var_out"], axes=[-1], keepdims=1),
             node("Add", ["var_out", "eps"], ["ve_out"]), node("Sqrt", ["ve_out"], ["s_out"]),
             node("Div", ["h", "s_out"], ["n_out"]), node("Mul", ["n_out", "w"], ["y"])]
    x = randn(B, S, H)
    explain = ["skip_rmsnorm", "explain skip_rmsnorm: KlnRMSNorm 'y': not fused: at Add 'h':",
               "the operands do not have the sum's shape (a broadcast Add)"]
    return model(nodes, inits), {"x": x}, [rms(x + tab, w, eps)], ["has KlnRMSNorm", "has Add"], explain


def write(outdir, name, m, feeds, outs, expect, explain=None, check=None):
    if m.opset_import[0].version <= onnx.defs.onnx_opset_version():   # Debian's onnx knows 17
        onnx.checker.check_model(m, full_check=True)
    d = os.path.join(outdir, name)
    types = [onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[o.type.tensor_type.elem_type] for o in m.graph.output]
    case_io.write_case(d, m, [feeds], [[np.asarray(r).astype(t) for r, t in zip(outs, types)]])
    with open(os.path.join(d, "expect"), "w") as f:
        f.write("\n".join(expect) + "\n")
    if explain:
        with open(os.path.join(d, "explain"), "w") as f:
            f.write("\n".join(explain) + "\n")
    if check:
        with open(os.path.join(d, "check"), "w") as f:
            f.write(check + "\n")


def main(outdir):
    for name, fn in CASES.items():
        write(outdir, name, *fn())
    print("norm_forms: %d models" % len(CASES))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: norm_forms.py OUTDIR")
    main(sys.argv[1])
