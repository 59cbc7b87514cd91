"""TopK in the forms the ONNX node tests miss, in the ONNX backend-test
layout (the same as tests/gen/pad_forms.py: test_data_set_N, bad_K,
static_K).

    /usr/bin/python3 tests/gen/topk_forms.py OUTDIR

Forms: K known at compile time and fed at run time (0, all, between),
largest and smallest, axes first, middle and negative, ties (the lower
index first), int64/int32 data, opset 1's k attribute and opset 10.
References: numpy's stable argsort.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pad_forms import case, model  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
rng = np.random.default_rng(17)


def topk_ref(x, k, axis=-1, largest=1):
    key = -x.astype(np.float64) if largest else x.astype(np.float64)
    idx = np.take(np.argsort(key, axis=axis, kind="stable"), np.arange(k), axis=axis)
    return np.take_along_axis(x, idx, axis=axis), idx.astype(np.int64)


def k1(k):
    return np.array([k], np.int64)


def node(name, x, k, **attrs):
    return helper.make_node("TopK", [x, k], [name + "_v", name + "_i"], name=name, **attrs)


def outs_of(name, elem=F):
    return [(name + "_v", elem, None), (name + "_i", I64, None)]


def static_k(out):
    """K an initializer: axes 1, -1 and 0, largest and smallest, ties
    (values drawn from a few integers), int64 and int32 data."""
    x = rng.integers(-3, 4, (3, 5, 4)).astype(np.float32)
    xi = rng.integers(-3, 4, (3, 5, 4)).astype(np.int64)
    xj = rng.integers(-3, 4, (3, 5, 4)).astype(np.int32)
    forms = [("a1", "x", x, 2, 1, 1), ("am1", "x", x, 3, -1, 0), ("a0", "x", x, 3, 0, 1),
             ("i64", "xi", xi, 4, 1, 0), ("i32", "xj", xj, 1, -1, 1)]
    nodes, inits, outs, ys = [], [], [], []
    for name, xn, xv, k, axis, largest in forms:
        inits.append(numpy_helper.from_array(k1(k), "k_" + name))
        nodes.append(node(name, xn, "k_" + name, axis=axis, largest=largest))
        elem = {np.float32: F, np.int64: I64, np.int32: TensorProto.INT32}[xv.dtype.type]
        outs += outs_of(name, elem)
        ys += list(topk_ref(xv, k, axis, largest))
    m = model(nodes, [("x", F, [3, 5, 4]), ("xi", I64, [3, 5, 4]), ("xj", TensorProto.INT32, [3, 5, 4])],
              outs, inits, opset=11)

    def bad_static(k, shape=(1,)):
        return model([node("tk", "x", "k", axis=1)], [("x", F, [2, 3])], outs_of("tk"),
                     [numpy_helper.from_array(np.full(shape, k, np.int64), "k")], opset=11)
    static = [(bad_static(4), ["node 'tk' (TopK)", "K 4 out of range for axis 1 of 3"]),
              (bad_static(-1), ["node 'tk' (TopK)", "K -1 out of range"]),
              (bad_static(1, (2,)), ["node 'tk' (TopK)", "K"])]
    case(out, "test_static_k", m, [([x, xi, xj], ys)], static=static)


def runtime_k(out):
    """K a graph input: several values in one context (0, all of the axis,
    between), and values a run must refuse."""
    nodes = [node("lg", "x", "k", axis=1), node("sm", "x", "k", axis=1, largest=0)]
    m = model(nodes, [("x", F, [2, 6, 3]), ("k", I64, [1])], outs_of("lg") + outs_of("sm"), opset=11)

    def run(k):
        x = rng.normal(0, 1, (2, 6, 3)).astype(np.float32)
        return [x, k1(k)], list(topk_ref(x, k, 1, 1)) + list(topk_ref(x, k, 1, 0))

    sets = [run(2), run(6), run(0), run(5)]
    x0 = sets[0][0][0]
    bad = [([x0, k1(7)], ["node 'lg' (TopK)", "K 7 out of range for an axis of 6"]),
           ([x0, k1(-1)], ["node 'lg' (TopK)", "K -1 out of range"])]
    case(out, "test_runtime_k", m, sets, bad)


def old_opsets(out):
    """Opset 1's k attribute (upgraded to the K input) and opset 10 (no
    largest/sorted: the largest, sorted)."""
    x = rng.normal(0, 1, (4, 5)).astype(np.float32)
    m1 = model([helper.make_node("TopK", ["x"], ["v", "i"], name="tk", k=3)], [("x", F, [4, 5])],
               [("v", F, None), ("i", I64, None)], opset=9)
    case(out, "test_opset1", m1, [([x], list(topk_ref(x, 3)))],
         static=[(model([helper.make_node("TopK", ["x"], ["v", "i"], name="tk")], [("x", F, [4, 5])],
                        [("v", F, None), ("i", I64, None)], opset=9),
                  ["node 'tk'", "no attribute 'k'"])])
    m10 = model([helper.make_node("TopK", ["x", "k"], ["v", "i"], name="tk", axis=0)],
                [("x", F, [4, 5]), ("k", I64, [1])], [("v", F, None), ("i", I64, None)], opset=10)
    case(out, "test_opset10", m10, [([x, k1(2)], list(topk_ref(x, 2, 0)))])


def main(out):
    os.makedirs(out, exist_ok=True)
    static_k(out)
    runtime_k(out)
    old_opsets(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: topk_forms.py OUTDIR")
    main(sys.argv[1])
