"""Writing test cases in the ONNX backend-test layout, shared by the
generators (attn_forms.py, attn_layout_forms.py, einsum_forms.py,
models.py, norm_forms.py, dyn_shapes.py, pad_forms.py, scatter_forms.py,
topk_forms.py, foreign/common.py):

    DIR/model.onnx
    DIR/test_data_set_K/input_J.pb    graph input J of data set K
    DIR/test_data_set_K/output_J.pb   the reference of graph output J

plus the run-time refusals and compile-time refusals of a case
(op_case), a one-graph model (op_model) and the command line of a
generator of named forms (form_main).
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


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


def op_model(nodes, inputs, outputs, inits=(), opset=17, name="g", producer="kiln-tests"):
    """A one-graph model of the default domain at opset; inputs/outputs:
    (name, elem, dims), output dims None = unknown."""
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(*i) for i in inputs],
                          [helper.make_tensor_value_info(*o) for o in outputs],
                          initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
    m.ir_version = 8
    return m


def _expect(d, frags):
    with open(os.path.join(d, "expect"), "w") as f:
        f.write("\n".join(frags) + "\n")


def op_case(out, name, m, sets, bad=(), static=()):
    """out/name/ as write_case, from sets: [(inputs, outputs)] as lists of
    arrays in graph order; and for each of bad: [(inputs, fragments)] a
    folder bad_K/ (inputs refused at run time), of static: [(model,
    fragments)] a folder static_K/ (a model refused at compile time), each
    with an `expect` file of the fragments its one-line error must hold."""
    d = os.path.join(out, name)
    ins = [i.name for i in m.graph.input]
    write_case(d, m, [dict(zip(ins, xs)) for xs, _ in sets], [ys for _, ys in sets])
    for k, (xs, frags) in enumerate(bad):
        b = os.path.join(d, "bad_%d" % k)
        write_inputs(b, m, dict(zip(ins, xs)))
        _expect(b, frags)
    for k, (sm, frags) in enumerate(static):
        s = os.path.join(d, "static_%d" % k)
        os.makedirs(s)
        onnx.save(sm, os.path.join(s, "model.onnx"))
        _expect(s, frags)


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
