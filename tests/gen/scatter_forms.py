"""ScatterND in the forms the ONNX node tests miss, in the ONNX backend-test
layout (the same as tests/gen/pad_forms.py: test_data_set_N, bad_K,
static_K).

    /usr/bin/python3 tests/gen/scatter_forms.py OUTDIR

Forms: index tuples of every length (whole slices down to elements),
negative indices, the reductions add/mul/max/min with repeated indices
(opsets 16 and 18), indices fed at run time, int64/int32/bool/f16 data.
References in numpy, element by element in index order.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pad_forms import case, model  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
rng = np.random.default_rng(16)


def i64(*v):
    """An int64 array of the rows v (one row: a 1-D array)."""
    return np.array(v if len(v) > 1 else v[0], dtype=np.int64)


REDUCE = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


def scatter_ref(x, ind, upd, red="none"):
    y = x.copy()
    for t in np.ndindex(*ind.shape[:-1]):
        idx = tuple(int(v) for v in ind[t])
        y[idx] = upd[t] if red == "none" else REDUCE[red](y[idx], upd[t])
    return y


def node(name, x, ind, upd, red=None):
    kw = {"reduction": red} if red else {}
    return helper.make_node("ScatterND", [x, ind, upd], [name], name=name, **kw)


def tuples(out):
    """Index tuples of 1, 2 and 3 of data [4, 3, 2] (slices [3, 2], [2]
    and elements), negative indices, static and run-time indices."""
    forms = [("s1", i64([1], [-1])), ("s2", i64([[0, 2], [3, -3]])),
             ("s3", i64([[[0, 0, 1]], [[-1, 2, 0]]]))]
    nodes, inits, ins, outs = [], [], [("x", F, [4, 3, 2])], []
    x = rng.normal(0, 1, (4, 3, 2)).astype(np.float32)
    feeds, ys = [x], []
    for name, ind in forms:
        ush = ind.shape[:-1] + x.shape[ind.shape[-1]:]
        upd = rng.normal(0, 1, ush).astype(np.float32)
        inits.append(numpy_helper.from_array(ind, "i_" + name))
        ins.append(("u_" + name, F, list(ush)))
        feeds.append(upd)
        nodes.append(node(name, "x", "i_" + name, "u_" + name))
        outs.append((name, F, None))
        ys.append(scatter_ref(x, ind, upd))
    # indices as an input: two sets of values, and values a run must refuse
    nodes.append(node("rt", "x", "ri", "ru"))
    ins += [("ri", I64, [2, 2]), ("ru", F, [2, 2])]
    outs.append(("rt", F, None))
    m = model(nodes, ins, outs, inits, opset=13)
    sets = []
    for ri in (i64([0, 1], [3, 2]), i64([-4, -3], [2, 0])):
        ru = rng.normal(0, 1, (2, 2)).astype(np.float32)
        sets.append((feeds + [ri, ru], ys + [scatter_ref(x, ri, ru)]))
    ok = sets[0][0]
    bad = [(ok[:-2] + [i64([0, 1], [4, 0]), ok[-1]],
            ["node 'rt' (ScatterND)", "index 4 of 'ri' out of range [0, 4)"]),
           (ok[:-2] + [i64([0, -4], [1, 0]), ok[-1]],
            ["node 'rt' (ScatterND)", "index -4 of 'ri' out of range [0, 3)"])]

    def bad_static(ind_shape, upd_shape, red=None, elem=F):
        return model([node("sc", "x", "ind", "upd", red)],
                     [("x", elem, [4, 3]), ("ind", I64, ind_shape), ("upd", elem, upd_shape)],
                     [("sc", elem, None)], opset=18)
    static = [(bad_static([2, 3], [2]), ["node 'sc' (ScatterND)", "index tuples of 3 for data of rank 2"]),
              (bad_static([2, 1], [2, 4]), ["node 'sc' (ScatterND)", "updates dim"]),
              (bad_static([2, 1], [2]), ["node 'sc' (ScatterND)", "updates has rank 1, expected 2"]),
              (bad_static([2, 1], [2, 3], "add", TensorProto.BOOL),
               ["node 'sc' (ScatterND)", "reduction add on bool data is not implemented"])]
    case(out, "test_tuples", m, sets, bad, static)


def reductions(out):
    """add, mul (opset 16), max, min (18) with an index repeated, on f32,
    i64 and i32 (integers wrap as ONNX Runtime's)."""
    nodes, ins, outs, feeds, ys = [], [], [], [], []
    ind = i64([1], [3], [1], [0], [1])
    inits = [numpy_helper.from_array(ind, "ind")]
    for elem, npt in ((F, np.float32), (TensorProto.INT64, np.int64), (TensorProto.INT32, np.int32)):
        tn = {F: "f32", TensorProto.INT64: "i64", TensorProto.INT32: "i32"}[elem]
        x = (rng.normal(0, 2, (4, 3)) if npt is np.float32 else rng.integers(-9, 9, (4, 3))).astype(npt)
        u = (rng.normal(0, 2, (5, 3)) if npt is np.float32 else rng.integers(-9, 9, (5, 3))).astype(npt)
        ins += [("x_" + tn, elem, [4, 3]), ("u_" + tn, elem, [5, 3])]
        feeds += [x, u]
        for red in REDUCE:
            nodes.append(node(red + "_" + tn, "x_" + tn, "ind", "u_" + tn, red))
            outs.append((red + "_" + tn, elem, None))
            ys.append(scatter_ref(x, ind, u, red))
    m = model(nodes, ins, outs, inits, opset=18)
    case(out, "test_reductions", m, [(feeds, ys)])


def dtypes(out):
    """reduction none on other dtypes: i64, bool, f16, u8."""
    nodes, ins, outs, feeds, ys = [], [], [], [], []
    ind = i64([[2, 0]], [[0, 1]])
    inits = [numpy_helper.from_array(ind, "ind")]
    for tn, elem, npt in (("i64", TensorProto.INT64, np.int64), ("bool", TensorProto.BOOL, np.bool_),
                          ("f16", TensorProto.FLOAT16, np.float16), ("u8", TensorProto.UINT8, np.uint8)):
        x = rng.integers(0, 2 if npt is np.bool_ else 100, (3, 2, 4)).astype(npt)
        u = rng.integers(0, 2 if npt is np.bool_ else 100, (2, 1, 4)).astype(npt)
        ins += [("x_" + tn, elem, [3, 2, 4]), ("u_" + tn, elem, [2, 1, 4])]
        feeds += [x, u]
        nodes.append(node("sc_" + tn, "x_" + tn, "ind", "u_" + tn))
        outs.append(("sc_" + tn, elem, None))
        ys.append(scatter_ref(x, ind, u))
    m = model(nodes, ins, outs, inits, opset=13)
    case(out, "test_dtypes", m, [(feeds, ys)])


def main(out):
    os.makedirs(out, exist_ok=True)
    tuples(out)
    reductions(out)
    dtypes(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: scatter_forms.py OUTDIR")
    main(sys.argv[1])
