"""GELU, QuickGELU and RMSNorm in the forms exporters write, and near misses,
for the fusions of fuse-gelu and fuse-norm (issue 12), in the ONNX
backend-test layout.

    /usr/bin/python3 tests/gen/norm_forms.py OUTDIR

writes OUTDIR/NAME/model.onnx, test_data_set_0/{input,output}_K.pb (numpy
references computed from the definition of the function, not from the
graph) and OUTDIR/NAME/expect: lines "has OP" (OP must be in the -O2 IR)
and "lacks OP" (must not be).  A case whose name starts with "explain_"
also has OUTDIR/NAME/explain: the pattern on its first line, then text
fragments `kiln dump --explain=PATTERN` must print.  Every model is checked
with onnx.checker.  Only onnx.helper and numpy are used.
"""
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

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


def model(nodes, inits, n_out=1):
    g = helper.make_graph(
        nodes, "forms", [helper.make_tensor_value_info("x", F, ["batch", "seq", H])],
        [helper.make_tensor_value_info("y" if n_out == 1 else "y%d" % k, F, ["batch", "seq", H])
         for k in range(n_out)], initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
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


def write(outdir, name, m, feeds, outs, expect, explain=None):
    onnx.checker.check_model(m, full_check=True)
    d = os.path.join(outdir, name)
    sd = os.path.join(d, "test_data_set_0")
    os.makedirs(sd, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for k, i in enumerate(m.graph.input):
        with open(os.path.join(sd, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(feeds[i.name], i.name).SerializeToString())
    for k, (o, r) in enumerate(zip(m.graph.output, outs)):
        with open(os.path.join(sd, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(r).astype(np.float32), o.name).SerializeToString())
    with open(os.path.join(d, "expect"), "w") as f:
        f.write("\n".join(expect) + "\n")
    if explain:
        with open(os.path.join(d, "explain"), "w") as f:
            f.write("\n".join(explain) + "\n")


def main(outdir):
    for name, fn in CASES.items():
        write(outdir, name, *fn())
    print("norm_forms: %d models" % len(CASES))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: norm_forms.py OUTDIR")
    main(sys.argv[1])
