"""Regression cases for the wrong answers the differential fuzzer
(tests/gen/difffuzz.py) found in kiln, with numpy references written from
the ONNX spec (and ONNX Runtime's reading of it where the spec is terse),
so that they run without ONNX Runtime:

    /usr/bin/python3 tests/gen/difffuzz_regress.py OUTDIR [NAME...]

writes OUTDIR/NAME/ (case_io.py's layout) for every form; `kiln check`
must pass on each at -O0 and -O2 (tests/scripts/difffuzz.sh).
"""
import sys

import numpy as np
from onnx import TensorProto, helper

from case_io import form_main, write_case

F = TensorProto.FLOAT


def model(nodes, inputs, outputs, opset, inits=()):
    g = helper.make_graph(nodes, "regress", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="difffuzz_regress")
    m.ir_version = 8
    return m


def vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def reduce_no_axis(d):
    """ReduceL2 / ReduceSumSquare that reduce no axis (a rank-0 input, or
    noop_with_empty_axes with no axes) still square each element (and
    ReduceL2 takes the root): kiln copied the input through."""
    x0 = np.array(-1.5, np.float32)
    x2 = np.array([[-1.5, 2, -3], [0.5, 1, -2]], np.float32)
    nodes = [helper.make_node("ReduceL2", ["s"], ["l2_s"]),
             helper.make_node("ReduceSumSquare", ["s"], ["sq_s"], keepdims=0),
             helper.make_node("ReduceL2", ["x"], ["l2_noop"], noop_with_empty_axes=1),
             helper.make_node("ReduceSumSquare", ["x"], ["sq_noop"], noop_with_empty_axes=1),
             helper.make_node("ReduceSum", ["x"], ["sum_noop"], noop_with_empty_axes=1),
             helper.make_node("ReduceL2", ["x"], ["l2_all"])]
    outs = ["l2_s", "sq_s", "l2_noop", "sq_noop", "sum_noop", "l2_all"]
    m = model(nodes, [vi("s", F, []), vi("x", F, ["a", "b"])], [vi(o, F, None) for o in outs], 18)
    refs = [np.abs(x0), x0 * x0, np.abs(x2), x2 * x2, x2, np.sqrt((x2 * x2).sum(keepdims=True))]
    write_case(d, m, [{"s": x0, "x": x2}], [refs], np.float32)


def nan_unary(d, baked=False):
    """Relu, Sign and HardSigmoid keep NaN (numpy, ONNX Runtime): kiln's
    kernels (and for Relu the inline f32 path, for Sign constant folding)
    made it 0 or 1.  baked: the inputs are initializers (folding)."""
    ops = [("Relu", {}), ("Sign", {}), ("HardSigmoid", {"alpha": 0.5, "beta": 0.25})]
    nodes, outs, feeds, refs, ins = [], [], {}, [], []
    for dt, npdt in ((TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64)):
        x = np.array([np.nan, -np.inf, np.inf, -1.5, 0.0, 2.5, np.nan], npdt)
        xn = "x%d" % dt
        feeds[xn] = x
        ins.append(vi(xn, dt, [7]))
        for op, at in ops:
            o = "%s_%d" % (op.lower(), dt)
            nodes.append(helper.make_node(op, [xn], [o], **at))
            outs.append(vi(o, dt, None))
        with np.errstate(invalid="ignore"):
            refs += [np.where(np.isnan(x), x, np.maximum(x, 0)), np.sign(x),
                     np.where(np.isnan(x), x, np.clip(0.5 * x + 0.25, 0, 1))]
    inits = []
    if baked:
        from onnx import numpy_helper
        inits = [numpy_helper.from_array(v, k) for k, v in feeds.items()]
        ins, feeds = [], {}
    m = model(nodes, ins, outs, 13, inits)
    write_case(d, m, [feeds], [refs])


def clip_min_over_max(d):
    """Clip with min > max gives max everywhere (Clip-13: "When min is
    greater than max, the clip operator sets all the 'input' values to the
    value of 'max'", numpy.clip, ONNX Runtime): kiln gave min to the
    elements below min."""
    nodes, ins, outs, feeds, refs, inits = [], [], [], {}, [], []
    from onnx import numpy_helper
    for dt, npdt in ((TensorProto.FLOAT, np.float32), (TensorProto.INT32, np.int32),
                     (TensorProto.INT64, np.int64), (TensorProto.UINT8, np.uint8)):
        x = np.array([0, 1, 2, 3, 4, 5, 9], npdt)
        lo, hi = np.array(4, npdt), np.array(2, npdt)
        names = ["x%d" % dt, "lo%d" % dt, "hi%d" % dt]
        feeds[names[0]] = x
        ins.append(vi(names[0], dt, ["n"]))
        inits += [numpy_helper.from_array(lo, names[1]), numpy_helper.from_array(hi, names[2])]
        nodes.append(helper.make_node("Clip", names, ["y%d" % dt]))
        outs.append(vi("y%d" % dt, dt, None))
        refs.append(np.minimum(np.maximum(x, lo), hi))
    m = model(nodes, ins, outs, 13, inits)
    write_case(d, m, [feeds], [refs])


def slice_neg_step(d, baked=False):
    """Slice with a negative step clamps its start into [0, dim - 1]:
    constant folding clamped a start below -dim to -1 and read before the
    data (x[-10:-20:-1] is [x[0]]); on a dim of 0 the range is empty, but
    shape inference (a start of INT64_MIN) and the kernel (lo won over
    hi) took one element, and the run failed."""
    from onnx import numpy_helper
    x = np.arange(1, 6, dtype=np.float32)
    z = np.zeros((2, 0), np.int16)
    i64 = np.iinfo(np.int64)
    consts = {"s1": [-10], "e1": [-20], "k1": [-1],
              "s2": [i64.min, 0], "e2": [-1, i64.max], "a2": [-1, 0], "k2": [-2, 1],
              "s3": [-7], "e3": [i64.min], "k3": [-2]}
    inits = [numpy_helper.from_array(np.array(v, np.int64), k) for k, v in consts.items()]
    nodes = [helper.make_node("Slice", ["x", "s1", "e1", "", "k1"], ["y1"]),
             helper.make_node("Slice", ["z", "s2", "e2", "a2", "k2"], ["y2"]),
             helper.make_node("Slice", ["x", "s3", "e3", "", "k3"], ["y3"])]
    feeds = {"x": x, "z": z}
    ins = [vi("x", TensorProto.FLOAT, ["n"]), vi("z", TensorProto.INT16, [2, 0])]
    if baked:
        inits += [numpy_helper.from_array(v, k) for k, v in feeds.items()]
        ins, feeds = [], {}
    outs = [vi("y1", TensorProto.FLOAT, None), vi("y2", TensorProto.INT16, None), vi("y3", TensorProto.FLOAT, None)]
    m = model(nodes, ins, outs, 13, inits)
    write_case(d, m, [feeds], [[x[0:1], z, x[0::-2]]])


def clip_default_bounds(d):
    """Clip's absent min and max are numeric_limits::lowest() and max()
    (Clip-11..13), so an infinity becomes the largest finite value (ONNX
    Runtime): kiln let it through."""
    from onnx import numpy_helper
    nodes, ins, outs, feeds, refs, inits = [], [], [], {}, [], []
    for dt, npdt in ((TensorProto.FLOAT, np.float32), (TensorProto.DOUBLE, np.float64)):
        x = np.array([np.inf, -np.inf, 1.5, -2.0], npdt)
        fi = np.finfo(npdt)
        xn, lo = "x%d" % dt, "lo%d" % dt
        feeds[xn] = x
        ins.append(vi(xn, dt, [4]))
        inits.append(numpy_helper.from_array(np.array(-1, npdt), lo))
        nodes += [helper.make_node("Clip", [xn], ["none%d" % dt]),
                  helper.make_node("Clip", [xn, lo], ["min%d" % dt]),
                  helper.make_node("Clip", [xn, "", lo], ["max%d" % dt])]
        outs += [vi(o % dt, dt, None) for o in ("none%d", "min%d", "max%d")]
        refs += [np.clip(x, fi.min, fi.max), np.clip(x, -1, fi.max), np.clip(x, fi.min, -1)]
    m = model(nodes, ins, outs, 13, inits)
    write_case(d, m, [feeds], [refs])


def split_num_outputs_sym(d):
    """Split with num_outputs (opset 18) of a symbolic dim: chunks of
    ceil(n / num_outputs), the last smaller ("If the tensor is not evenly
    splittable the last chunk will be smaller"); shape inference took
    floor(n / num_outputs) for a symbol and the run gave wrong shapes."""
    nodes = [helper.make_node("Split", ["x"], ["a", "b", "c"], axis=0, num_outputs=3)]
    m = model(nodes, [vi("x", TensorProto.INT32, ["n", 2])], [vi(o, TensorProto.INT32, None) for o in "abc"], 18)
    sets, refs = [], []
    for n in (5, 7, 6, 3):
        x = np.arange(n * 2, dtype=np.int32).reshape(n, 2)
        c = -(-n // 3)
        sets.append({"x": x})
        refs.append([x[:c], x[c:2 * c], x[2 * c:]])
    write_case(d, m, sets, refs)


def einsum_scalar(d):
    """Einsum of one rank-0 operand with the empty equation "" (implicit
    output: no letter, so the scalar itself, as numpy.einsum("", x)), and
    "->" alike: kiln compiled it but its kernel refused the empty
    equation at run time ("bad equation")."""
    x = np.array(-2.5, np.float32)
    y = np.array([[1.5, -2], [3, 0.25]], np.float32)
    nodes = [helper.make_node("Einsum", ["x"], ["e"], equation=""),
             helper.make_node("Einsum", ["x"], ["a"], equation="->"),
             helper.make_node("Einsum", ["x", "y"], ["p"], equation=",ij")]
    m = model(nodes, [vi("x", F, []), vi("y", F, [2, 2])], [vi(o, F, None) for o in ("e", "a", "p")], 13)
    write_case(d, m, [{"x": x, "y": y}], [[np.einsum("", x), np.einsum("->", x), np.einsum(",ij", x, y)]],
               np.float32)


def where_over_pad_bias(d):
    """Self-attention whose scores get the padding bias (1 - m) * finfo.min
    first and then a causal Where(tril, scores, finfo.min) of a constant
    condition (opset 11, static: no Trilu).  Query 0 of the left-padded row
    [0, 0, 1] sees only key 0, which is padded: every score of that row is
    finfo.min in the graph (s + finfo.min rounds to it), so its weights are
    uniform over the 3 keys.  kiln's fused attention added both masks,
    finfo.min + finfo.min = -inf on key 1 (padded and past the diagonal),
    and averaged keys 0 and 2 only (found by tests/gen/fusefuzz.py)."""
    B, S, W = 2, 3, 4
    lo = float(np.finfo(np.float32).min)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, S, W)).astype(np.float32)
    mask = np.array([[0, 0, 1], [1, 1, 1]], np.int64)
    wq, wk, wv = (rng.standard_normal((W, W)).astype(np.float32) * 0.5 for _ in range(3))
    from onnx import numpy_helper
    tril = np.tril(np.ones((S, S), bool))
    inits = [numpy_helper.from_array(a, n) for a, n in (
        (wq, "wq"), (wk, "wk"), (wv, "wv"), (np.array([0, 0, 1, W], np.int64), "heads"),
        (np.array([0, 0, W], np.int64), "merge"), (np.array(0.5, np.float32), "scale"),
        (np.array(1.0, np.float32), "one"), (np.array(lo, np.float32), "lo"), (tril, "tril"))]
    N = helper.make_node
    nodes = [N("MatMul", ["x", "wq"], ["q"]), N("MatMul", ["x", "wk"], ["k"]), N("MatMul", ["x", "wv"], ["v"]),
             N("Reshape", ["q", "heads"], ["q4"]), N("Reshape", ["k", "heads"], ["k4"]),
             N("Reshape", ["v", "heads"], ["v4"]),
             N("Transpose", ["q4"], ["qh"], perm=[0, 2, 1, 3]), N("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
             N("Transpose", ["v4"], ["vh"], perm=[0, 2, 1, 3]),
             N("MatMul", ["qh", "kt"], ["qk"]), N("Mul", ["qk", "scale"], ["s"]),
             N("Unsqueeze", ["m"], ["m4"], axes=[1, 2]), N("Cast", ["m4"], ["mf"], to=F),
             N("Sub", ["one", "mf"], ["inv"]), N("Mul", ["inv", "lo"], ["pad"]), N("Add", ["s", "pad"], ["sp"]),
             N("Where", ["tril", "sp", "lo"], ["sw"]), N("Softmax", ["sw"], ["p"], axis=-1),
             N("MatMul", ["p", "vh"], ["c"]), N("Transpose", ["c"], ["ct"], perm=[0, 2, 1, 3]),
             N("Reshape", ["ct", "merge"], ["y"])]
    m = model(nodes, [vi("x", F, [B, S, W]), vi("m", TensorProto.INT64, [B, S])], [vi("y", F, None)], 11, inits)
    f32 = np.float32
    q, k, v = x @ wq, x @ wk, x @ wv
    sc = (q @ k.transpose(0, 2, 1)) * f32(0.5)                            # [B, S, S] (one head)
    sc = sc + (f32(1) - mask[:, None, :].astype(f32)) * f32(lo)
    sc = np.where(tril[None], sc, f32(lo))
    e = np.exp(sc - sc.max(-1, keepdims=True))
    p = e / e.sum(-1, keepdims=True)
    write_case(d, m, [{"x": x, "m": mask}], [[p @ v]], np.float32)


def einsum_label_bcast(d):
    """Einsum broadcasts a letter label of size 1 against the same label's
    other size, as numpy.einsum (ONNX's reference) and ONNX Runtime do:
    'bhqk,bkhd->bqhd' with probabilities [1, 2, 2, 2] (a constant causal
    mask broadcast the scores) and V [1, 1, 2, 3]; 'ji,jk->ik' of [2, 3]
    and [1, 4] (static).  kiln refused it: at run time when the larger size
    came first ("label 'k' is 2 and 1"; found by tests/gen/fusefuzz.py),
    at compile time for static dims ("dims 2 and 1 differ")."""
    rng = np.random.default_rng(7)
    p = rng.standard_normal((1, 2, 2, 2)).astype(np.float32)
    v = rng.standard_normal((1, 1, 2, 3)).astype(np.float32)
    a = rng.standard_normal((1, 4)).astype(np.float32)
    b = rng.standard_normal((2, 3)).astype(np.float32)
    nodes = [helper.make_node("Einsum", ["p", "v"], ["o"], equation="bhqk,bkhd->bqhd"),
             helper.make_node("Einsum", ["v", "p"], ["r"], equation="bkhd,bhqk->bqhd"),
             helper.make_node("Einsum", ["b", "a"], ["t"], equation="ji,jk->ik")]
    m = model(nodes, [vi("p", F, ["n", 2, "q", "k"]), vi("v", F, ["n", "k1", 2, 3]), vi("a", F, [1, 4]),
                      vi("b", F, [2, 3])], [vi(o, F, None) for o in "ort"], 13)
    write_case(d, m, [{"p": p, "v": v, "a": a, "b": b}],
               [[np.einsum("bhqk,bkhd->bqhd", p, v), np.einsum("bkhd,bhqk->bqhd", v, p),
                 np.einsum("ji,jk->ik", b, a)]], np.float32)


FORMS = {
    "einsum_label_bcast": einsum_label_bcast,
    "where_over_pad_bias": where_over_pad_bias,
    "einsum_scalar": einsum_scalar,
    "reduce_no_axis": reduce_no_axis,
    "nan_unary": nan_unary,
    "nan_unary_baked": lambda d: nan_unary(d, True),
    "clip_min_over_max": clip_min_over_max,
    "clip_default_bounds": clip_default_bounds,
    "slice_neg_step": slice_neg_step,
    "split_num_outputs_sym": split_num_outputs_sym,
    "slice_neg_step_baked": lambda d: slice_neg_step(d, True),
}


def generate(name, out):
    import os
    FORMS[name](os.path.join(out, name))


if __name__ == "__main__":
    form_main(sys.argv, FORMS, generate)
