"""Some of the standard-ONNX pattern tests of experimental-experiment (the
torch-to-ONNX exporter and graph optimizer of sdpython): a Gemm with a
constant B, chained Slices with and without steps, Clip with only a min
then only a max (an empty input name between), a SequenceConstruct read
back with SequenceAt, and the head split of Q, K and V that its shape
evaluation tests build (Shape(start=0, end=2) + Concat into the Reshape
shape, three MatMuls by 256x256 weights, Transpose(0, 2, 1, 3)).

Source: sdpython/experimental-experiment, _unittests/ut_xoptim/
test_graph_pattern_optimization_onnx.py at commit
00e0815bff72a3db2d9d8661202c650f2f19930e (MIT License, "Copyright (c)
2023-2024" in its LICENSE.txt).  Each graph is the model a test method
builds, named after the method, rebuilt node for node with onnx.helper
(names, attributes, initializers, declared shapes, opset 18, IR version
10).  Feeds are the original's (its _range: arange(n) / n);
shape_eval_data_prop has none (it only infers shapes), here ids_weight is
a [2, 5, 256] _range, and its np.random weights come from a fixed seed.
The references come from tests/gen/npref.py.  Only these few of the file's
~150 tests are ported.

    /usr/bin/python3 tests/gen/foreign/xexp_onnx_patterns.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import main  # noqa: E402

TFLOAT = TensorProto.FLOAT
_mkv_ = oh.make_tensor_value_info


def _range(*shape, bias=None):
    n = np.prod(shape)
    x = np.arange(n).astype(np.float32) / n
    if bias:
        x = x + bias
    return x.reshape(tuple(shape)).astype(np.float32)


def _model(nodes, inputs, outputs, inits):
    return oh.make_model(oh.make_graph(nodes, "dummy", inputs, outputs, inits),
                         opset_imports=[oh.make_opsetid("", 18)], ir_version=10)


def matmul_transpose_cst():
    m = _model([oh.make_node("Gemm", ["X", "B"], ["Z"])],
               [_mkv_("X", TFLOAT, [2, 3])], [_mkv_("Z", TFLOAT, [2, 2])],
               [onh.from_array(_range(3, 2).astype(np.float32), name="B")])
    return m, [{"X": _range(2, 3).astype(np.float32)}]


SLICES = {  # test name: the two Slices' inputs after X / x1
    "slice_slice_nostep": (["zero", "one", "zero"], ["zero", "one", "one"]),
    "slice_slice_steps1": (["zero", "one", "zero", "one"], ["zero", "one", "one"]),
    "slice_slice_steps2": (["zero", "one", "zero"], ["zero", "one", "one", "one"]),
    "slice_slice_steps3": (["zero", "one", "zero", "one"], ["zero", "one", "one", "one"]),
}


def slice_slice(name):
    a, b = SLICES[name]
    m = _model([oh.make_node("Slice", ["X"] + a, ["x1"]),
                oh.make_node("Slice", ["x1"] + b, ["Y"])],
               [_mkv_("X", TFLOAT, ["a", "b"])], [_mkv_("Y", TFLOAT, ["c", "d"])],
               [onh.from_array(np.array([0], dtype=np.int64), name="zero"),
                onh.from_array(np.array([1], dtype=np.int64), name="one")])
    return m, [{"X": _range(2, 3).astype(np.float32)}]


def clip_clip():
    m = _model([oh.make_node("Clip", ["X", "zero"], ["x1"]),
                oh.make_node("Clip", ["x1", "", "one"], ["Y"])],
               [_mkv_("X", TFLOAT, ["a", "b"])], [_mkv_("Y", TFLOAT, ["c", "d"])],
               [onh.from_array(np.array([0], dtype=np.float32), name="zero"),
                onh.from_array(np.array([1], dtype=np.float32), name="one")])
    return m, [{"X": _range(2, 3).astype(np.float32)}]


def sequence_construct():
    m = _model([oh.make_node("SequenceConstruct", ["X1", "X2"], ["seq"]),
                oh.make_node("SequenceAt", ["seq", "i0"], ["Y1"]),
                oh.make_node("SequenceAt", ["seq", "i1"], ["Y2"])],
               [_mkv_("X1", TFLOAT, ["a", "b"]), _mkv_("X2", TFLOAT, ["c", "d"])],
               [_mkv_("Y1", TFLOAT, ["a", "b"]), _mkv_("Y2", TFLOAT, ["c", "d"])],
               [onh.from_array(np.array(0, dtype=np.int64), name="i0"),
                onh.from_array(np.array(1, dtype=np.int64), name="i1")])
    return m, [{"X1": _range(2, 3).astype(np.float32), "X2": _range(3, 4).astype(np.float32)}]


def shape_eval_data_prop():
    rng = np.random.default_rng(328)
    m = _model(
        [oh.make_node("Shape", ["ids_weight"], ["shape"], start=0, end=2),
         oh.make_node("Concat", ["shape", "init328"], ["new_shape"], axis=0),
         oh.make_node("MatMul", ["ids_weight", "A"], ["A1"]),
         oh.make_node("MatMul", ["ids_weight", "B"], ["B1"]),
         oh.make_node("MatMul", ["ids_weight", "C"], ["C1"]),
         oh.make_node("Reshape", ["A1", "new_shape"], ["Areshaped"]),
         oh.make_node("Reshape", ["B1", "new_shape"], ["Breshaped"]),
         oh.make_node("Reshape", ["C1", "new_shape"], ["Creshaped"]),
         oh.make_node("Transpose", ["Areshaped"], ["At"], perm=[0, 2, 1, 3]),
         oh.make_node("Transpose", ["Breshaped"], ["Bt"], perm=[0, 2, 1, 3]),
         oh.make_node("Transpose", ["Creshaped"], ["Ct"], perm=[0, 2, 1, 3])],
        [_mkv_("ids_weight", TFLOAT, ["batch", "seq", 256])],
        [_mkv_("At", TFLOAT, ["batch", 32, "seq", 8]),
         _mkv_("Bt", TFLOAT, ["batch", 32, "seq", 8]),
         _mkv_("Ct", TFLOAT, ["batch", 32, "seq", 8])],
        [onh.from_array(np.array([32, 8], dtype=np.int64), name="init328"),
         onh.from_array(rng.standard_normal((256, 256)).astype(np.float32), name="A"),
         onh.from_array(rng.standard_normal((256, 256)).astype(np.float32), name="B"),
         onh.from_array(rng.standard_normal((256, 256)).astype(np.float32), name="C")])
    return m, [{"ids_weight": _range(2, 5, 256)}]


CASES = {"matmul_transpose_cst": matmul_transpose_cst}
CASES.update({n: (lambda n: lambda: slice_slice(n))(n) for n in SLICES})
CASES.update({"clip_clip": clip_clip, "sequence_construct": sequence_construct,
              "shape_eval_data_prop": shape_eval_data_prop})

if __name__ == "__main__":
    main(sys.argv, CASES)
