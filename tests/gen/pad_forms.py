"""Pad in the forms the ONNX node tests miss, in the ONNX backend-test layout.

    /usr/bin/python3 tests/gen/pad_forms.py OUTDIR

writes OUTDIR/NAME/model.onnx with test_data_set_N (references from numpy's
np.pad after cropping the negative pads, as ONNX Runtime crops them first),
OUTDIR/NAME/bad_K/ (inputs kiln_run must refuse with one line naming the
node, the expected fragments in bad_K/expect) and OUTDIR/NAME/static_K/
(a model `kiln compile` must refuse with one line: pads known at compile
time, model.onnx and expect).  Forms: the four modes with static and
run-time pads, wrap pads longer than the axis, negative pads (cropping),
opset 18 axes (negative ones, run-time ones), int64/bool/int8/f16/f64
data with a constant_value, opset 2's pads/value attributes.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import case_io  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
rng = np.random.default_rng(15)


def pad_ref(x, pads, mode="constant", value=0, axes=None):
    """ONNX Pad: negative pads crop first (as ONNX Runtime does), wrap
    repeats the axis periodically, also past its length (numpy 1.24's
    np.pad and ONNX Runtime 1.30 do not: see README's Known limits)."""
    r = x.ndim
    axes = list(range(r)) if axes is None else [a + r if a < 0 else a for a in axes]
    n = len(axes)
    width = [[0, 0] for _ in range(r)]
    for k, a in enumerate(axes):
        width[a] = [int(pads[k]), int(pads[k + n])]
    x = x[tuple(slice(max(-b, 0), x.shape[i] - max(-e, 0)) for i, (b, e) in enumerate(width))]
    width = [(max(b, 0), max(e, 0)) for b, e in width]
    if mode == "wrap":   # a torus, as the spec says (np.pad differs for pads > the axis)
        for a, (b, e) in enumerate(width):
            x = np.take(x, np.arange(-b, x.shape[a] + e) % max(x.shape[a], 1), axis=a)
        return x
    if mode == "constant":
        return np.pad(x, width, mode="constant", constant_values=value)
    return np.pad(x, width, mode=mode)


def i64(*v):
    return np.array(v, dtype=np.int64)


def model(nodes, inputs, outputs, inits=(), opset=19):
    return case_io.op_model(nodes, inputs, outputs, inits, opset, "pad", "kiln-pad-forms")


case = case_io.op_case


def pad_node(name, x, pads, mode, value=None, axes=None, out=None):
    ins = [x, pads, value or "", axes or ""]
    while ins[-1] == "":
        ins.pop()
    return helper.make_node("Pad", ins, [out or name], name=name, mode=mode)


def static_pads(out):
    """Every mode with pads known at compile time (initializers): wrap
    longer than the axis, negative pads on one side or both, a crop that
    empties an axis in constant mode."""
    forms = [("constant", [1, 0, 2, 0, 3, 1]), ("reflect", [1, 2, -1, 1, 2, 0]),
             ("edge", [0, -1, 3, 2, 3, -2]), ("wrap", [2, 5, 1, 3, 9, -1]),
             ("constant", [0, -3, 0, 0, 0, 0])]
    nodes, inits, outs = [], [], []
    for k, (mode, p) in enumerate(forms):
        nodes.append(pad_node("p%d" % k, "x", "pads%d" % k, mode, "cv" if mode == "constant" else None))
        inits.append(numpy_helper.from_array(i64(*p), "pads%d" % k))
        outs.append(("p%d" % k, F, None))
    inits.append(numpy_helper.from_array(np.array(2.5, np.float32), "cv"))
    m = model(nodes, [("x", F, [2, 3, 4])], outs, inits)
    x = rng.normal(0, 1, (2, 3, 4)).astype(np.float32)
    ys = [pad_ref(x, p, mode, 2.5) for mode, p in forms]

    def bad_static(mode, p, shape=(2, 3, 4)):
        return model([pad_node("pad", "x", "pads", mode)], [("x", F, list(shape))], [("pad", F, None)],
                     [numpy_helper.from_array(i64(*p), "pads")])
    static = [
        (bad_static("constant", [1, 0, 0, 0]), ["node 'pad' (Pad)", "pads has 4 elements, expected 6"]),
        (bad_static("reflect", [0, 3, 0, 0, 0, 0]),
         ["node 'pad' (Pad)", "axis 1: reflect pads 3, 0: at most 2 for 3 elements"]),
        (bad_static("reflect", [0, 0, -2, 0, 0, 2]),
         ["node 'pad' (Pad)", "axis 2: reflect pads -2, 2: at most 1 for 2 elements"]),
        (bad_static("constant", [0, -2, 0, 0, -2, 0]),
         ["node 'pad' (Pad)", "axis 1: pads -2, -2 crop more than its 3 elements"]),
        (bad_static("edge", [0, -3, 0, 0, 1, 0]),
         ["node 'pad' (Pad)", "axis 1: cannot pad an empty axis in edge mode"]),
        (bad_static("wrap", [0, 0, -4, 0, 0, 1]),
         ["node 'pad' (Pad)", "axis 2: cannot pad an empty axis in wrap mode"]),
    ]
    case(out, "test_static_pads", m, [([x], ys)], static=static)


def runtime_pads(out):
    """pads (and constant_value) as graph inputs: every mode, several sets
    of values in one context (the output buffers re-bound and grown), and
    the values a run must refuse."""
    modes = ["constant", "reflect", "edge", "wrap"]
    nodes = [pad_node(m, "x", "pads", m, "cv" if m == "constant" else None) for m in modes]
    m = model(nodes, [("x", F, [3, 4]), ("pads", I64, [4]), ("cv", F, [])],
              [(mo, F, None) for mo in modes])

    def run(p, cv=0.0):
        x = rng.normal(0, 1, (3, 4)).astype(np.float32)
        return [x, i64(*p), np.array(cv, np.float32)], [pad_ref(x, p, mo, cv) for mo in modes]

    sets = [run([1, 2, 0, 1], -1.0), run([0, 0, 0, 0]), run([-1, 1, 1, -2], 7.0),
            run([2, 3, 2, 3], 0.5)]
    x0 = run([0, 0, 0, 0])[0]
    bad = [
        ([x0[0], i64(1, 1, 1), x0[2]], ["input 'pads' dim 0: expected 4, got 3"]),
        ([x0[0], i64(3, 0, 0, 0), x0[2]], ["node 'reflect' (Pad)", "axis 0: reflect pads 3, 0: at most 2"]),
        ([x0[0], i64(0, -3, 0, -2), x0[2]],
         ["node 'constant' (Pad)", "axis 1: pads -3, -2 crop more than its 4 elements"]),
        ([x0[0], i64(-3, 0, 1, 0), x0[2]],
         ["node 'reflect' (Pad)", "axis 0: cannot pad an empty axis in reflect mode"]),
        ([x0[0], i64(1 << 62, 0, 1 << 62, 0), x0[2]], ["node 'constant' (Pad)", "overflow"]),
        ([x0[0], i64(1 << 40, 0, 0, 0), x0[2]], ["node 'constant' (Pad)", "over the limit"]),
    ]
    case(out, "test_runtime_pads", m, sets, bad)


def axes(out):
    """Opset 18's axes: constant ones (negative, out of order) and run-time
    ones, with static and run-time pads."""
    nodes = [pad_node("ca", "x", "cpads", "reflect", None, "caxes"),
             pad_node("ra", "x", "rpads", "wrap", None, "raxes")]
    inits = [numpy_helper.from_array(i64(-1, 1, 1, 1, 0, 1), "cpads"),
             numpy_helper.from_array(i64(-1, 1, -3), "caxes")]
    m = model(nodes, [("x", F, [2, 3, 4]), ("rpads", I64, [4]), ("raxes", I64, [2])],
              [("ca", F, None), ("ra", F, None)], inits)

    def run(rp, ra):
        x = rng.normal(0, 1, (2, 3, 4)).astype(np.float32)
        return ([x, i64(*rp), i64(*ra)],
                [pad_ref(x, [-1, 1, 1, 1, 0, 1], "reflect", axes=[-1, 1, -3]),
                 pad_ref(x, rp, "wrap", axes=ra)])

    sets = [run([1, 2, 3, 0], [0, -1]), run([5, 0, -1, 7], [-2, 2]), run([0, 0, 0, 0], [1, 0])]
    x0 = run([0, 0, 0, 0], [0, 1])[0]
    bad = [
        (x0[:2] + [i64(1, -2)], ["node 'ra' (Pad)", "axis -2 out of range or repeated"]),
        (x0[:2] + [i64(0, 3)], ["node 'ra' (Pad)", "axis 3 out of range or repeated"]),
    ]

    def bad_axes(a, n):
        return model([pad_node("pad", "x", "pads", "constant", None, "axes")], [("x", F, [2, 3])],
                     [("pad", F, None)], [numpy_helper.from_array(i64(*([1] * n)), "pads"),
                                          numpy_helper.from_array(i64(*a), "axes")])
    static = [(bad_axes([0, -2], 4), ["node 'pad' (Pad)", "axis -2 repeated"]),
              (bad_axes([2], 2), ["node 'pad' (Pad)", "axis 2 out of range for rank 2"]),
              (bad_axes([1], 4), ["node 'pad' (Pad)", "pads has 4 elements, expected 2"])]
    case(out, "test_axes", m, sets, bad, static)


def dtypes(out):
    """Data of other dtypes with a constant_value of theirs (static and
    run-time pads), and edge/wrap on them."""
    kinds = [("i64", TensorProto.INT64, np.int64, 7), ("bool", TensorProto.BOOL, np.bool_, True),
             ("i8", TensorProto.INT8, np.int8, -5), ("f16", TensorProto.FLOAT16, np.float16, 1.5),
             ("f64", TensorProto.DOUBLE, np.float64, -2.25), ("u8", TensorProto.UINT8, np.uint8, 200)]
    nodes, ins, outs, inits, xs, ys = [], [("pads", I64, [6])], [], [], [], []
    sp = [0, 1, -1, 2, 0, 1]
    inits.append(numpy_helper.from_array(i64(*sp), "spads"))
    rp = [1, -1, 2, 0, 2, -1]
    for name, elem, npt, cv in kinds:
        x = (rng.integers(0, 2, (2, 3, 3)) if npt is np.bool_ else
             rng.integers(-100, 100, (2, 3, 3)) if npt in (np.int64, np.int8) else
             rng.integers(0, 255, (2, 3, 3)) if npt is np.uint8 else
             rng.normal(0, 1, (2, 3, 3))).astype(npt)
        ins.append(("x_" + name, elem, [2, 3, 3]))
        inits.append(numpy_helper.from_array(np.array(cv, npt), "cv_" + name))
        nodes += [pad_node("c_" + name, "x_" + name, "spads", "constant", "cv_" + name),
                  pad_node("e_" + name, "x_" + name, "pads", "edge"),
                  pad_node("w_" + name, "x_" + name, "pads", "wrap")]
        outs += [("c_" + name, elem, None), ("e_" + name, elem, None), ("w_" + name, elem, None)]
        xs.append(x)
        ys += [pad_ref(x, sp, "constant", npt(cv)), pad_ref(x, rp, "edge"), pad_ref(x, rp, "wrap")]
    m = model(nodes, ins, outs, inits)
    case(out, "test_dtypes", m, [([i64(*rp)] + xs, ys)])


def opset2(out):
    """Opset 2's pads and value attributes (upgraded at import to the
    inputs of opset 11), constant and reflect."""
    nodes = [helper.make_node("Pad", ["x"], ["c"], name="c", mode="constant", pads=[1, 0, 2, 1],
                              value=-3.5),
             helper.make_node("Pad", ["x"], ["r"], name="r", mode="reflect", pads=[0, 2, 1, -1]),
             helper.make_node("Pad", ["x"], ["e"], name="e", pads=[0, 1, 0, 1])]
    m = model(nodes, [("x", F, [2, 4])], [("c", F, None), ("r", F, None), ("e", F, None)],
              opset=10)
    x = rng.normal(0, 1, (2, 4)).astype(np.float32)
    ys = [pad_ref(x, [1, 0, 2, 1], "constant", -3.5), pad_ref(x, [0, 2, 1, -1], "reflect"),
          pad_ref(x, [0, 1, 0, 1], "constant")]
    bad_attr = model([helper.make_node("Pad", ["x"], ["pad"], name="pad", mode="edge")],
                     [("x", F, [2, 4])], [("pad", F, None)], opset=10)
    case(out, "test_opset2", m, [([x], ys)],
         static=[(bad_attr, ["node 'pad'", "no attribute 'pads'"])])


def main(out):
    os.makedirs(out, exist_ok=True)
    static_pads(out)
    runtime_pads(out)
    axes(out)
    dtypes(out)
    opset2(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: pad_forms.py OUTDIR")
    main(sys.argv[1])
