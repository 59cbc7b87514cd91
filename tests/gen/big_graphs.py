"""Big graphs of several forms, for compile-time and memory scaling
(tests/scripts/big_graphs.sh, bench/compile_chain.sh).

    /usr/bin/python3 tests/gen/big_graphs.py FORM N OUTDIR

writes OUTDIR/model.onnx and OUTDIR/test_data_set_0 (batch 3) whose
outputs are computed in numpy (float64, from the math, not from the graph).
FORM and what N counts:

  mixed      a chain of N elementwise ops, unary and binary mixed, with
             broadcasts: [64], [1, 64] and [1, 1] constants, a
             second input z [batch, 64]
  wide       N graph outputs, each x + c_i (its own [64] constant)
  concat     a Concat of N inputs (x * c_i, each [batch, 4]) along axis 1,
             and a Sum of the same N products
  inits      N small initializers [4], all added to x in a balanced tree
  reshape    a chain of N Reshape/Transpose/Unsqueeze/Squeeze ops on
             x [batch, 8, 8] (shapes as constants, 0 keeping batch), with a Relu at the end
  constants  N Constant nodes, each added to the running value
  layernorm  N LayerNorm blocks spelled out in ONNX ops (ReduceMean, Sub,
             Pow, ReduceMean, Add, Sqrt, Div, Mul, Add: the norm fusion's
             pattern), each followed by an Add of its input (a residual)
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

W = 64
B = 3


class G:
    def __init__(self):
        self.nodes, self.inits, self.k = [], [], 0
        self.rng = np.random.default_rng(5)

    def name(self, p):
        self.k += 1
        return "%s%d" % (p, self.k)

    def const(self, arr, p="c"):
        n = self.name(p)
        self.inits.append(numpy_helper.from_array(np.asarray(arr), n))
        return n

    def op(self, op, ins, **attrs):
        out = self.name("t")
        self.nodes.append(helper.make_node(op, ins, [out], name=out + "_" + op, **attrs))
        return out


def vec(rng, shape, lo=0.5, hi=1.5):
    return rng.uniform(lo, hi, shape).astype(np.float32)


def mixed(g, n, x):
    """Returns (graph output names, reference outputs, extra inputs)."""
    z = g.rng.standard_normal((B, W)).astype(np.float32)
    cur, h = "x", x.astype(np.float64)
    for k in range(n):
        kind = k % 8
        if kind == 0:
            c = (g.rng.standard_normal(W) * 0.3).astype(np.float32)
            cur, h = g.op("Add", [cur, g.const(c)]), h + c
        elif kind == 1:
            cur, h = g.op("Tanh", [cur]), np.tanh(h)
        elif kind == 2:
            c = vec(g.rng, (1, 1))
            cur, h = g.op("Mul", [cur, g.const(c)]), h * c
        elif kind == 3:
            cur, h = g.op("Add", [cur, "z"]), h + z
        elif kind == 4:
            cur, h = g.op("Relu", [cur]), np.maximum(h, 0)
        elif kind == 5:
            c = (g.rng.standard_normal((1, W)) * 0.3).astype(np.float32)
            cur, h = g.op("Sub", [cur, g.const(c)]), h - c
        elif kind == 6:
            cur, h = g.op("Neg", [cur]), -h
        else:
            c = vec(g.rng, W, 1.0, 2.0)
            cur, h = g.op("Div", [cur, g.const(c)]), h / c
    return [cur], [h], [("z", z)]


def wide(g, n, x):
    outs, refs = [], []
    for _ in range(n):
        c = (g.rng.standard_normal(W)).astype(np.float32)
        outs.append(g.op("Add", ["x", g.const(c)]))
        refs.append(x.astype(np.float64) + c)
    return outs, refs, []


def concat(g, n, x):
    xs = x[:, :4].astype(np.float64)
    x4 = g.op("Slice", ["x", g.const(np.array([0], np.int64)), g.const(np.array([4], np.int64)),
                        g.const(np.array([1], np.int64))])
    parts, refs = [], []
    for _ in range(n):
        c = vec(g.rng, 4)
        parts.append(g.op("Mul", [x4, g.const(c)]))
        refs.append(xs * c)
    cat = g.op("Concat", parts, axis=1)
    s = g.op("Sum", parts)
    return [cat, s], [np.concatenate(refs, axis=1), np.sum(refs, axis=0)], []


def inits(g, n, x):
    x4 = g.op("Slice", ["x", g.const(np.array([0], np.int64)), g.const(np.array([4], np.int64)),
                        g.const(np.array([1], np.int64))])
    level = []
    total = np.zeros(4)
    for _ in range(n):
        c = (g.rng.standard_normal(4) * 0.01).astype(np.float32)
        level.append(g.const(c, "w"))
        total = total + c
    # a balanced tree of Adds over the initializers, then one Add of x
    while len(level) > 1:
        nxt = [g.op("Add", [level[i], level[i + 1]]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    out = g.op("Add", [x4, level[0]])
    return [out], [x[:, :4].astype(np.float64) + total], []


def reshape(g, n, x):
    """x [B, 64] -> [B, 8, 8] then N shape ops, each keeping the data."""
    cur = g.op("Reshape", ["x", g.const(np.array([0, 8, 8], np.int64))])
    h = x.astype(np.float64).reshape(B, 8, 8)
    for k in range(n):
        kind = k % 4
        if kind == 0:
            cur, h = g.op("Transpose", [cur], perm=[0, 2, 1]), h.transpose(0, 2, 1)
        elif kind == 1:
            cur, h = g.op("Unsqueeze", [cur, g.const(np.array([1], np.int64))]), h[:, None]
        elif kind == 2:
            cur, h = g.op("Reshape", [cur, g.const(np.array([0, 4, 16], np.int64))]), h.reshape(B, 4, 16)
        else:
            cur, h = g.op("Reshape", [cur, g.const(np.array([0, 8, 8], np.int64))]), h.reshape(B, 8, 8)
    out = g.op("Relu", [cur])
    return [out], [np.maximum(h, 0)], []


def constants(g, n, x):
    cur, h = "x", x.astype(np.float64)
    for _ in range(n):
        c = (g.rng.standard_normal(W) * 0.01).astype(np.float32)
        kn = g.name("k")
        g.nodes.append(helper.make_node("Constant", [], [kn], name=kn,
                                        value=numpy_helper.from_array(c, kn + "_v")))
        cur, h = g.op("Add", [cur, kn]), h + c
    return [cur], [h], []


def layernorm(g, n, x):
    cur, h = "x", x.astype(np.float64)
    two = g.const(np.array(2.0, np.float32))
    eps = g.const(np.array(1e-5, np.float32))
    for _ in range(n):
        gam, bet = vec(g.rng, W), (g.rng.standard_normal(W) * 0.1).astype(np.float32)
        m = g.op("ReduceMean", [cur], axes=[-1])
        d = g.op("Sub", [cur, m])
        p = g.op("Pow", [d, two])
        v = g.op("ReduceMean", [p], axes=[-1])
        s = g.op("Sqrt", [g.op("Add", [v, eps])])
        y = g.op("Add", [g.op("Mul", [g.op("Div", [d, s]), g.const(gam)]), g.const(bet)])
        mu = h.mean(-1, keepdims=True)
        var = ((h - mu) ** 2).mean(-1, keepdims=True)
        hn = (h - mu) / np.sqrt(var + np.float32(1e-5)) * gam + bet
        cur, h = g.op("Add", [y, cur]), hn + h
    return [cur], [h], []


FORMS = {"mixed": mixed, "wide": wide, "concat": concat, "inits": inits,
         "reshape": reshape, "constants": constants, "layernorm": layernorm}


def save(path, arr, name):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def main(argv):
    if len(argv) != 4 or argv[1] not in FORMS or int(argv[2]) < 1:
        sys.exit("usage: big_graphs.py {%s} N OUTDIR" % "|".join(FORMS))
    form, n, outdir = argv[1], int(argv[2]), argv[3]
    g = G()
    x = np.random.default_rng(11).standard_normal((B, W)).astype(np.float32)
    outs, refs, extra = FORMS[form](g, n, x)
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", W])]
    inputs += [helper.make_tensor_value_info(k, TensorProto.FLOAT, ["batch", W]) for k, _ in extra]
    outputs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs]
    graph = helper.make_graph(g.nodes, "%s%d" % (form, n), inputs, outputs, g.inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    os.makedirs(outdir, exist_ok=True)
    onnx.save(m, os.path.join(outdir, "model.onnx"))
    sd = os.path.join(outdir, "test_data_set_0")
    os.makedirs(sd, exist_ok=True)
    save(os.path.join(sd, "input_0.pb"), x, "x")
    for i, (k, v) in enumerate(extra):
        save(os.path.join(sd, "input_%d.pb" % (i + 1)), v, k)
    for i, (o, r) in enumerate(zip(outs, refs)):
        save(os.path.join(sd, "output_%d.pb" % i), r.astype(np.float32), o)
    print("%s: %d nodes, %d initializers, %d outputs" % (form, len(g.nodes), len(g.inits), len(outs)))


if __name__ == "__main__":
    main(sys.argv)
