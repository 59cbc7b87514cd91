"""Writing test cases in the ONNX backend-test layout, shared by the
generators (attn_forms.py, attn_layout_forms.py, einsum_forms.py,
models.py, norm_forms.py, dyn_shapes.py, foreign/common.py):

    DIR/model.onnx
    DIR/test_data_set_K/input_J.pb    graph input J of data set K
    DIR/test_data_set_K/output_J.pb   the reference of graph output J

and the command line of a generator of named forms (form_main).
"""
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def write_inputs(d, model, feeds):
    """d/input_J.pb for every graph input J, from feeds (name -> array);
    an input missing from feeds is an error (KeyError), not a file left out."""
    os.makedirs(d, exist_ok=True)
    for k, i in enumerate(model.graph.input):
        with open(os.path.join(d, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(feeds[i.name], i.name).SerializeToString())


def write_case(d, model, sets, refs, dtype=None):
    """d/model.onnx and d/test_data_set_K/ for K, (feeds, outs) in
    enumerate(zip(sets, refs)): feeds name -> array, outs the references
    in graph-output order (converted to dtype when given, else as they are)."""
    os.makedirs(d, exist_ok=True)
    onnx.save(model, os.path.join(d, "model.onnx"))
    for si, (feeds, outs) in enumerate(zip(sets, refs)):
        sd = os.path.join(d, "test_data_set_%d" % si)
        write_inputs(sd, model, feeds)
        for k, (o, r) in enumerate(zip(model.graph.output, outs)):
            with open(os.path.join(sd, "output_%d.pb" % k), "wb") as f:
                f.write(numpy_helper.from_array(np.asarray(r, dtype), o.name).SerializeToString())


def form_main(argv, forms, generate, what="form"):
    """`PROG OUTDIR [NAME...]`: generate(name, OUTDIR) for every name given,
    or every one of forms (a dict, in its order) when none is; an unknown
    name stops before anything is written."""
    prog = os.path.basename(argv[0])
    if len(argv) < 2:
        sys.exit("usage: %s OUTDIR [NAME...]  (names: %s)" % (prog, " ".join(forms)))
    names = argv[2:] or list(forms)
    for n in names:
        if n not in forms:
            sys.exit("%s: unknown %s %s (have: %s)" % (prog, what, n, " ".join(forms)))
    for n in names:
        generate(n, argv[1])
