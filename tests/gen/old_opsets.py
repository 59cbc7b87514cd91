"""Models in the old forms of kiln's ops (opsets 1-12), for the frontend's
upgrades, in the ONNX backend-test layout.

    /usr/bin/python3 tests/gen/old_opsets.py OUTDIR

writes OUTDIR/NAME/model.onnx and test_data_set_0/{input,output}_K.pb for
each case, references computed in numpy from the old op's definition (not
from the graph); plus models kiln must refuse, in OUTDIR/refuse/NAME.onnx
with the message fragments in OUTDIR/refuse/NAME.expect (one per line).
Every model that should load is checked with onnx.checker.  Only
onnx.helper and numpy are used.
"""
import math
import os
import random
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
rng = np.random.default_rng(7)


def randn(*shape):
    return rng.normal(0, 1, shape).astype(np.float32)


def model(nodes, inputs, outputs, opset, inits=()):
    """inputs/outputs: (name, elem, dims)."""
    g = helper.make_graph(nodes, "old", [helper.make_tensor_value_info(*i) for i in inputs],
                          [helper.make_tensor_value_info(*o) for o in outputs],
                          initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="kiln-old-opsets")
    m.ir_version = 8
    return m


def node(op, ins, outs, name=None, **attrs):
    return helper.make_node(op, ins, outs, name=name or outs[0], **attrs)


def init(name, a):
    return numpy_helper.from_array(np.asarray(a), name)


CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def softmax_last(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def softmax_coerced(x, axis):
    """Softmax/LogSoftmax before opset 13: x coerced to 2-D at axis."""
    a = axis + x.ndim if axis < 0 else axis
    n = int(np.prod(x.shape[:a], dtype=np.int64))
    return softmax_last(x.reshape(n, -1)).reshape(x.shape)


# ---- one case per changed signature -------------------------------------

@case
def clip_6():
    """Clip-6: min/max attributes (a silent no-op before the fix)."""
    x = randn(3, 5)
    m = model([node("Clip", ["x"], ["y"], min=-0.5, max=0.25)],
              [("x", F, [3, 5])], [("y", F, [3, 5])], 6)
    return m, {"x": x}, [np.clip(x, -0.5, 0.25)]


@case
def clip_10_min_only():
    x = randn(4, 4)
    m = model([node("Clip", ["x"], ["y"], min=0.1)], [("x", F, [4, 4])], [("y", F, [4, 4])], 10)
    return m, {"x": x}, [np.maximum(x, np.float32(0.1))]


@case
def unsqueeze_1():
    x = randn(2, 3)
    m = model([node("Unsqueeze", ["x"], ["y"], axes=[0, 2])],
              [("x", F, [2, 3])], [("y", F, [1, 2, 1, 3])], 1)
    return m, {"x": x}, [x[None, :, None, :]]


@case
def unsqueeze_11():
    x = randn(2, 3)
    m = model([node("Unsqueeze", ["x"], ["y"], axes=[1, -1])],
              [("x", F, [2, 3])], [("y", F, [2, 1, 3, 1])], 11)
    return m, {"x": x}, [x[:, None, :, None]]


@case
def squeeze_1():
    x = randn(2, 1, 3, 1)
    m = model([node("Squeeze", ["x"], ["y"], axes=[1])],
              [("x", F, [2, 1, 3, 1])], [("y", F, [2, 3, 1])], 1)
    return m, {"x": x}, [x[:, 0]]


@case
def split_2():
    x = randn(2, 6)
    m = model([node("Split", ["x"], ["a", "b"], axis=1, split=[2, 4])],
              [("x", F, [2, 6])], [("a", F, [2, 2]), ("b", F, [2, 4])], 2)
    return m, {"x": x}, [x[:, :2], x[:, 2:]]


@case
def split_11():
    x = randn(3, 5)
    m = model([node("Split", ["x"], ["a", "b", "c"], axis=-1, split=[1, 3, 1])],
              [("x", F, [3, 5])], [("a", F, [3, 1]), ("b", F, [3, 3]), ("c", F, [3, 1])], 11)
    return m, {"x": x}, [x[:, :1], x[:, 1:4], x[:, 4:]]


@case
def slice_1():
    x = randn(4, 6, 5)
    m = model([node("Slice", ["x"], ["y"], starts=[1, -4], ends=[3, 1000], axes=[0, 2])],
              [("x", F, [4, 6, 5])], [("y", F, [2, 6, 4])], 1)
    return m, {"x": x}, [x[1:3, :, 1:]]


@case
def reduce_mean_11():
    x = randn(2, 3, 4)
    m = model([node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0),
               node("ReduceSum", ["x"], ["z"], axes=[-1]),
               node("ReduceMax", ["x"], ["w"], axes=[0, 2], keepdims=0)],
              [("x", F, [2, 3, 4])],
              [("y", F, [2, 4]), ("z", F, [2, 3, 1]), ("w", F, [3])], 11)
    return m, {"x": x}, [x.mean(1), x.sum(-1, keepdims=True), x.max((0, 2))]


@case
def reduce_mean_17():
    """ReduceMean keeps its axes attribute up to opset 17."""
    x = randn(3, 4)
    m = model([node("ReduceMean", ["x"], ["y"], axes=[-1])],
              [("x", F, [3, 4])], [("y", F, [3, 1])], 17)
    return m, {"x": x}, [x.mean(-1, keepdims=True)]


@case
def softmax_11_axis1():
    """Softmax-11 with axis=1 on a 3-D input: normalized over dims 1 and 2
    together (the 2-D coercion), not over the last axis."""
    x = randn(2, 3, 4)
    want = softmax_coerced(x, 1)
    assert not np.allclose(want, softmax_last(x), atol=1e-3)
    m = model([node("Softmax", ["x"], ["y"], axis=1)], [("x", F, [2, 3, 4])],
              [("y", F, [2, 3, 4])], 11)
    return m, {"x": x}, [want]


@case
def softmax_1_default():
    """Softmax-1 without axis (default 1) on a 4-D input, and LogSoftmax."""
    x = randn(2, 2, 3, 2)
    want = softmax_coerced(x, 1)
    assert not np.allclose(want, softmax_last(x), atol=1e-3)
    m = model([node("Softmax", ["x"], ["y"]), node("LogSoftmax", ["x"], ["z"], axis=2)],
              [("x", F, [2, 2, 3, 2])], [("y", F, [2, 2, 3, 2]), ("z", F, [2, 2, 3, 2])], 1)
    return m, {"x": x}, [want, np.log(softmax_coerced(x, 2))]


@case
def softmax_11_last():
    """axis the last one: the new form itself (stays one Softmax)."""
    x = randn(2, 3, 4)
    m = model([node("Softmax", ["x"], ["y"], axis=2)], [("x", F, [2, 3, 4])],
              [("y", F, [2, 3, 4])], 11)
    return m, {"x": x}, [softmax_last(x)]


@case
def dropout_7():
    x = randn(3, 4)
    m = model([node("Dropout", ["x"], ["y"], ratio=0.3), node("Relu", ["y"], ["z"])],
              [("x", F, [3, 4])], [("z", F, [3, 4])], 7)
    return m, {"x": x}, [np.maximum(x, 0)]


@case
def dropout_6_is_test():
    x = randn(3, 4)
    m = model([node("Dropout", ["x"], ["y"], ratio=0.2, is_test=1), node("Neg", ["y"], ["z"])],
              [("x", F, [3, 4])], [("z", F, [3, 4])], 6)
    return m, {"x": x}, [-x]


@case
def dropout_10_mask():
    x = randn(3, 4)
    m = model([node("Dropout", ["x"], ["y", "mask"], ratio=0.1)],
              [("x", F, [3, 4])], [("y", F, [3, 4]), ("mask", TensorProto.BOOL, [3, 4])], 10)
    return m, {"x": x}, [x, np.ones((3, 4), bool)]


@case
def not_1():
    x = rng.integers(0, 2, (2, 3, 4)).astype(bool)
    m = model([node("Not", ["x"], ["y"])], [("x", TensorProto.BOOL, [2, 3, 4])],
              [("y", TensorProto.BOOL, [2, 3, 4])], 1)
    return m, {"x": x}, [~x]


@case
def add_6_axis():
    """Add-6 with broadcast=1, axis=1: B[3,4] aligned at dim 1 of A[2,3,4,5]."""
    a, b = randn(2, 3, 4, 5), randn(3, 4)
    c = randn(5)
    m = model([node("Add", ["a", "b"], ["y"], broadcast=1, axis=1),
               node("Mul", ["y", "c"], ["z"], broadcast=1),          # suffix
               node("Sub", ["z", "a"], ["w"])],                       # equal shapes
              [("a", F, [2, 3, 4, 5]), ("b", F, [3, 4]), ("c", F, [5])],
              [("w", F, [2, 3, 4, 5])], 6)
    return m, {"a": a, "b": b, "c": c}, [(a + b[None, :, :, None]) * c - a]


@case
def pow_1_axis0():
    """Pow-1 with broadcast=1, axis=0: B[2] along dim 0 of A[2,3]."""
    a, b = np.abs(randn(2, 3)) + 0.5, np.array([2.0, 0.5], np.float32)
    m = model([node("Pow", ["a", "b"], ["y"], broadcast=1, axis=0)],
              [("a", F, [2, 3]), ("b", F, [2])], [("y", F, [2, 3])], 1)
    return m, {"a": a, "b": b}, [a ** b[:, None]]


@case
def concat_1():
    """Concat-1 without axis: axis 1."""
    a, b = randn(2, 3), randn(2, 2)
    m = model([node("Concat", ["a", "b"], ["y"])],
              [("a", F, [2, 3]), ("b", F, [2, 2])], [("y", F, [2, 5])], 1)
    return m, {"a": a, "b": b}, [np.concatenate([a, b], 1)]


@case
def cast_1():
    """Cast-1: `to` is a type name; Abs-1 with consumed_inputs."""
    x = randn(3, 4) * 10
    m = model([node("Abs", ["x"], ["ax"], consumed_inputs=[0]),
               node("Cast", ["ax"], ["y"], to="INT32")],
              [("x", F, [3, 4])], [("y", TensorProto.INT32, [3, 4])], 1)
    return m, {"x": x}, [np.abs(x).astype(np.int32)]


@case
def reshape_1():
    x = randn(2, 6)
    m = model([node("Reshape", ["x"], ["y"], shape=[3, -1])],
              [("x", F, [2, 6])], [("y", F, [3, 4])], 1)
    return m, {"x": x}, [x.reshape(3, 4)]


@case
def gemm_6():
    a, b, c = randn(3, 4), randn(5, 4), randn(5)
    m = model([node("Gemm", ["a", "b", "c"], ["y"], transB=1, broadcast=1, alpha=0.5)],
              [("a", F, [3, 4]), ("b", F, [5, 4]), ("c", F, [5])], [("y", F, [3, 5])], 6)
    return m, {"a": a, "b": b, "c": c}, [0.5 * a @ b.T + c]


# ---- an opset-11 BERT attention block ------------------------------------

B, S, W, H = 2, 6, 16, 2


def bert_params():
    P = {}
    for t in ("q", "k", "v", "o"):
        P["W" + t] = (rng.normal(0, 0.3, (W, W))).astype(np.float32)
        P["b" + t] = (rng.normal(0, 0.1, W)).astype(np.float32)
    P["ln_w"] = (1 + rng.normal(0, 0.1, W)).astype(np.float32)
    P["ln_b"] = rng.normal(0, 0.1, W).astype(np.float32)
    return P


def bert_ref(P, x, mask):
    dh = W // H
    lin = lambda t, n: t @ P["W" + n] + P["b" + n]   # noqa: E731
    q, k, v = (lin(x, n).reshape(B, S, H, dh).transpose(0, 2, 1, 3) for n in "qkv")
    ext = (1.0 - mask[:, None, None, :].astype(np.float64)) * -10000.0
    p = softmax_last(q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + ext)
    c = (p @ v).transpose(0, 2, 1, 3).reshape(B, S, W)
    h = lin(c, "o") + x
    mu = h.mean(-1, keepdims=True)
    var = ((h - mu) ** 2).mean(-1, keepdims=True)
    return (h - mu) / np.sqrt(var + 1e-12) * P["ln_w"] + P["ln_b"]


def bert_nodes():
    """As the opset-11 TorchScript exporter writes it: attribute-form
    Unsqueeze for the mask, Softmax(axis=3), ReduceMean(axes=[-1])."""
    dh = W // H
    n = []

    def lin(x, t):
        n.append(node("MatMul", [x, "W" + t], [x + "_mm" + t]))
        n.append(node("Add", [x + "_mm" + t, "b" + t], [x + "_lin" + t]))
        return x + "_lin" + t
    for t in "qkv":
        y = lin("x", t)
        n.append(node("Reshape", [y, "heads_shape"], [t + "_4d"]))
        n.append(node("Transpose", [t + "_4d"], [t + "_h"],
                      perm=[0, 2, 3, 1] if t == "k" else [0, 2, 1, 3]))
    n += [node("Unsqueeze", ["mask"], ["mask4"], axes=[1, 2]),
          node("Cast", ["mask4"], ["maskf"], to=F),
          node("Sub", ["one", "maskf"], ["inv"]),
          node("Mul", ["inv", "neg_big"], ["ext"]),
          node("MatMul", ["q_h", "k_h"], ["scores"]),
          node("Div", ["scores", "sqrt_dh"], ["scaled"]),
          node("Add", ["scaled", "ext"], ["masked"]),
          node("Softmax", ["masked"], ["probs"], axis=3),
          node("MatMul", ["probs", "v_h"], ["ctx4"]),
          node("Transpose", ["ctx4"], ["ctx_t"], perm=[0, 2, 1, 3]),
          node("Reshape", ["ctx_t", "merge_shape"], ["ctx"])]
    o = lin("ctx", "o")
    n += [node("Add", [o, "x"], ["h"]),
          node("ReduceMean", ["h"], ["mu"], axes=[-1]),
          node("Sub", ["h", "mu"], ["d"]),
          node("Pow", ["d", "two"], ["d2"]),
          node("ReduceMean", ["d2"], ["var"], axes=[-1]),
          node("Add", ["var", "eps"], ["ve"]),
          node("Sqrt", ["ve"], ["sd"]),
          node("Div", ["d", "sd"], ["nrm"]),
          node("Mul", ["nrm", "ln_w"], ["sc"]),
          node("Add", ["sc", "ln_b"], ["out"])]
    inits = [init(k, v) for k, v in P_BERT.items()] + [
        init("heads_shape", np.array([0, 0, H, dh], np.int64)),
        init("merge_shape", np.array([0, 0, W], np.int64)),
        init("one", np.float32(1)), init("neg_big", np.float32(-10000)),
        init("sqrt_dh", np.float32(math.sqrt(dh))), init("two", np.float32(2)),
        init("eps", np.float32(1e-12))]
    return n, inits


P_BERT = bert_params()


def bert_feeds():
    x = randn(B, S, W)
    mask = np.ones((B, S), np.int64)
    mask[1, -2:] = 0
    return {"x": x, "mask": mask}


def bert_model(nodes, inits):
    return model(nodes, [("x", F, ["batch", "sequence", W]),
                         ("mask", TensorProto.INT64, ["batch", "sequence"])],
                 [("out", F, ["batch", "sequence", W])], 11, inits)


@case
def bert_attention_11():
    nodes, inits = bert_nodes()
    f = bert_feeds()
    return bert_model(nodes, inits), f, [bert_ref(P_BERT, f["x"].astype(np.float64), f["mask"])]


@case
def bert_attention_11_unsorted():
    """The same block with its nodes shuffled (ONNX Runtime takes it)."""
    nodes, inits = bert_nodes()
    random.Random(3).shuffle(nodes)
    f = bert_feeds()
    m = bert_model(nodes, inits)
    return m, f, [bert_ref(P_BERT, f["x"].astype(np.float64), f["mask"])]


# ---- refusals -------------------------------------------------------------

def refusals():
    """name -> (model, message fragments)"""
    x = [("x", F, [2, 3])]
    y = [("y", F, [2, 3])]
    cyc = model([node("Neg", ["x"], ["a"], name="head"),
                 node("Add", ["a", "c"], ["b"], name="ring1"),
                 node("Neg", ["b"], ["c"], name="ring2"),
                 node("Relu", ["b"], ["y"], name="tail")], x, y, 13)
    unsup = model([node("Conv", ["x", "x"], ["a"], name="conv1"),
                   node("Conv", ["a", "x"], ["b"], name="conv2"),
                   node("Inverse", ["b", "x"], ["c"], name="fmm", domain="com.microsoft"),
                   node("LSTM", ["c", "x", "x"], ["y"], name="lstm"),
                   node("Conv", ["y", "x"], ["z"], name="conv3")], x, y, 14)
    unsup.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    mask7 = model([node("Dropout", ["x"], ["y", "m"], name="drop")], x,
                  y + [("m", F, [2, 3])], 7)
    return {
        "cycle": (cyc, ["node 'ring", "is on a cycle"]),
        "dropout_7_mask": (mask7, ["node 'drop' (Dropout) (opset 7 form)", "mask output"]),
        "unsupported3": (unsup, ["unsupported ops: Conv (opset 14) x3 (first node 'conv1'), "
                                 "com.microsoft.Inverse x1 (node 'fmm'), "
                                 "LSTM (opset 14) x1 (node 'lstm')"]),
    }


# ---- writing --------------------------------------------------------------

def write(outdir, name, m, feeds, outs):
    if not name.endswith("_unsorted"):   # the checker wants sorted graphs
        onnx.checker.check_model(m, full_check=True)
    d = os.path.join(outdir, name)
    sd = os.path.join(d, "test_data_set_0")
    os.makedirs(sd, exist_ok=True)
    onnx.save(m, os.path.join(d, "model.onnx"))
    for k, i in enumerate(m.graph.input):
        with open(os.path.join(sd, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(feeds[i.name], i.name).SerializeToString())
    for k, (o, r) in enumerate(zip(m.graph.output, outs)):
        dt = onnx.mapping.TENSOR_TYPE_TO_NP_TYPE[o.type.tensor_type.elem_type]
        with open(os.path.join(sd, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(np.asarray(r).astype(dt), o.name).SerializeToString())


def main(outdir):
    for name, fn in CASES.items():
        m, feeds, outs = fn()
        write(outdir, name, m, feeds, outs)
    rd = os.path.join(outdir, "refuse")
    os.makedirs(rd, exist_ok=True)
    for name, (m, frags) in refusals().items():
        onnx.save(m, os.path.join(rd, name + ".onnx"))
        with open(os.path.join(rd, name + ".expect"), "w") as f:
            f.write("\n".join(frags) + "\n")
    print("old_opsets: %d models, %d refusals" % (len(CASES), len(refusals())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: old_opsets.py OUTDIR")
    main(sys.argv[1])
