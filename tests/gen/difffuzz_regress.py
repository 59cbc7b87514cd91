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


FORMS = {
    "reduce_no_axis": reduce_no_axis,
}


def generate(name, out):
    import os
    FORMS[name](os.path.join(out, name))


if __name__ == "__main__":
    form_main(sys.argv, FORMS, generate)
