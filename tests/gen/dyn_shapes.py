"""Models whose shapes depend on the values of run-time inputs
(data-dependent shapes), in the ONNX backend-test layout.

    /usr/bin/python3 tests/gen/dyn_shapes.py OUTDIR

writes OUTDIR/NAME/model.onnx with several test_data_set_N (different
shape values, references computed in numpy, not from the graph), and
OUTDIR/NAME/bad_K/input_*.pb: values kiln_run must refuse with one line,
the expected message fragments in OUTDIR/NAME/bad_K/expect (one per line).
Only onnx.helper and numpy are used (the outputs have no declared shape,
which onnx.checker would want).
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import case_io  # noqa: E402

F, I64 = TensorProto.FLOAT, TensorProto.INT64
rng = np.random.default_rng(11)


def model(nodes, inputs, outputs, inits=()):
    return case_io.op_model(nodes, inputs, outputs, inits, 17, "dyn", "kiln-dyn-shapes")


case = case_io.op_case


def onnx_reshape(x, shape):
    """ONNX Reshape (allowzero 0): a 0 copies the input's dim."""
    return x.reshape([x.shape[i] if d == 0 else d for i, d in enumerate(shape)])


def i64(*v):
    return np.array(v, dtype=np.int64)


def mixed(out):
    """A Reshape's shape, an Expand's shape, a Slice's starts and a Range's
    limit from graph inputs, each used further on."""
    nodes = [
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Relu", ["r"], ["r_relu"], name="relu"),
        helper.make_node("Expand", ["v", "eshape"], ["e"], name="expand"),
        helper.make_node("Mul", ["e", "two"], ["e2"], name="mul"),
        helper.make_node("Slice", ["x", "starts", "ends", "axes"], ["s"], name="slice"),
        helper.make_node("ReduceSum", ["s", "axes"], ["s_sum"], name="sum", keepdims=0),
        helper.make_node("Range", ["zero", "limit", "one"], ["g"], name="range"),
        helper.make_node("Cast", ["g"], ["gf"], name="cast", to=F),
        helper.make_node("Reshape", ["gf", "minus1_1"], ["gcol"], name="col"),
        helper.make_node("Add", ["gcol", "gf"], ["table"], name="outer"),
    ]
    inits = [numpy_helper.from_array(np.array(2, np.float32), "two"),
             numpy_helper.from_array(i64(100), "ends"), numpy_helper.from_array(i64(2), "axes"),
             numpy_helper.from_array(np.array(0, np.int64), "zero"),
             numpy_helper.from_array(np.array(1, np.int64), "one"),
             numpy_helper.from_array(i64(-1, 1), "minus1_1")]
    m = model(nodes, [("x", F, [2, 3, 4]), ("shape", I64, [2]), ("v", F, [1, 4]),
                      ("eshape", I64, [3]), ("starts", I64, [1]), ("limit", I64, [])],
              [("r_relu", F, None), ("e2", F, None), ("s_sum", F, None), ("table", F, None)],
              inits)

    def run(shape, eshape, start, limit):
        x = rng.normal(0, 1, (2, 3, 4)).astype(np.float32)
        v = rng.normal(0, 1, (1, 4)).astype(np.float32)
        xs = [x, i64(*shape), v, i64(*eshape), i64(start), np.array(limit, np.int64)]
        g = np.arange(0, limit, dtype=np.int64).astype(np.float32)
        ys = [np.maximum(onnx_reshape(x, shape), 0), v * np.ones(eshape, np.float32) * 2,
              x[:, :, start:].sum(axis=2), g.reshape(-1, 1) + g]
        return xs, ys

    sets = [run((4, 6), (2, 3, 4), 1, 5), run((-1, 2), (5, 1, 1), 0, 1),
            run((0, -1), (3, 1, 4), -2, 0), run((24, 1), (1, 2, 4), 3, 3)]
    x0, _ = run((4, 6), (2, 3, 4), 1, 5)
    bad = [
        ([x0[0], i64(5, -1)] + x0[2:], ["node 'reshape' (Reshape)", "cannot reshape 24 elements"]),
        ([x0[0], i64(7, 3)] + x0[2:], ["node 'reshape' (Reshape)", "into 21"]),
        ([x0[0], i64(-2, 12)] + x0[2:], ["node 'reshape' (Reshape)", "shape element 0 is -2"]),
        (x0[:3] + [i64(2, -3, 4)] + x0[4:], ["node 'expand' (Expand)", "shape element 1 is -3"]),
        (x0[:3] + [i64(2, 3, 5)] + x0[4:], ["node 'expand' (Expand)", "cannot broadcast dim 4 with 5"]),
        (x0[:5] + [np.array(1 << 40, np.int64)],
         ["node 'range' (Range)", "over the limit"]),
        (x0[:5] + [np.array(1 << 18, np.int64)],
         ["node 'outer' (Add)", "over the limit"]),
    ]
    case(out, "test_mixed", m, sets, bad)


def generators(out):
    """ConstantOfShape, Tile, Unsqueeze, Split and OneHot with run-time
    shape inputs, and a data-dependent extent checked against a static one
    (the Add of a reshaped x and y [4, 6])."""
    value = helper.make_tensor("value", F, [1], [1.5])
    nodes = [
        helper.make_node("ConstantOfShape", ["cshape"], ["c"], name="cos", value=value),
        helper.make_node("Tile", ["x", "reps"], ["t"], name="tile"),
        helper.make_node("Unsqueeze", ["x", "uaxes"], ["u"], name="unsq"),
        helper.make_node("Split", ["y", "split"], ["y0", "y1"], name="split", axis=1),
        helper.make_node("Reshape", ["x", "shape"], ["r"], name="reshape"),
        helper.make_node("Add", ["r", "y"], ["ry"], name="add"),
    ]
    m = model(nodes, [("x", F, [2, 3]), ("cshape", I64, [3]), ("reps", I64, [2]),
                      ("uaxes", I64, [2]), ("y", F, [2, 3]), ("split", I64, [2]),
                      ("shape", I64, [2])],
              [("c", F, None), ("t", F, None), ("u", F, None), ("y0", F, None), ("y1", F, None),
               ("ry", F, None)])

    def run(cshape, reps, uaxes, split, shape):
        x = rng.normal(0, 1, (2, 3)).astype(np.float32)
        y = rng.normal(0, 1, (2, 3)).astype(np.float32)
        xs = [x, i64(*cshape), i64(*reps), i64(*uaxes), y, i64(*split), i64(*shape)]
        ys = [np.full(cshape, 1.5, np.float32), np.tile(x, reps),
              np.expand_dims(x, tuple(uaxes)), y[:, :split[0]], y[:, split[0]:],
              onnx_reshape(x, shape) + y]
        return xs, ys

    sets = [run((2, 0, 3), (2, 1), (0, 3), (1, 2), (2, 3)),
            run((1, 1, 1), (1, 3), (-1, 1), (3, 0), (-1, 3))]
    x0, _ = run((2, 0, 3), (2, 1), (0, 3), (1, 2), (2, 3))
    bad = [
        ([x0[0], i64(2, -1, 3)] + x0[2:], ["node 'cos' (ConstantOfShape)", "shape element 1 is -1"]),
        (x0[:2] + [i64(1, -1)] + x0[3:], ["node 'tile' (Tile)", "negative or too large"]),
        (x0[:3] + [i64(0, 0)] + x0[4:], ["node 'unsq' (Unsqueeze)", "repeated"]),
        (x0[:5] + [i64(2, 2)] + x0[6:], ["node 'split' (Split)", "sum to 4"]),
        (x0[:6] + [i64(3, 2)], ["node 'add' (Add)"]),
    ]
    case(out, "test_generators", m, sets, bad)


def main(out):
    os.makedirs(out, exist_ok=True)
    mixed(out)
    generators(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: dyn_shapes.py OUTDIR")
    main(sys.argv[1])
