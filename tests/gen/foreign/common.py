"""Shared pieces of the foreign-graph generators (tests/gen/foreign/*.py).

Each generator rebuilds the test graphs of another project's source file
(one generator per source file) and writes every graph in the ONNX
backend-test layout that `kiln check` reads:

    OUTDIR/NAME/model.onnx
    OUTDIR/NAME/test_data_set_N/{input,output}_K.pb

The originals fill their weights with placeholders (all ones) because
they only test a pattern matcher; here every float initializer the
original fills with ones is random (fixed seed) so that what the graph
computes is checkable.  Integer initializers (shapes, axes, masks) and
float constants that mean something (scales, mask values) are kept.

The reference outputs come from tests/gen/npref.py, a small numpy
interpreter of ONNX graphs.  A graph npref cannot evaluate (an op of
another domain, an input the graph never defines) is written without data
sets: kiln is expected to refuse it, and tests/gen/foreign/expected.txt
says so.
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import case_io  # noqa: E402
import npref  # noqa: E402

# Unsqueeze axes given as a scalar (onnxscript writes a literal 1 so; ONNX
# Runtime and kiln take it): npref wants a list
_npref_unsqueeze = npref.OPS["Unsqueeze"]
npref.OPS["Unsqueeze"] = lambda x, axes: _npref_unsqueeze(x, np.atleast_1d(axes))
# ReduceMean with axes as an input (opset 18) and noop_with_empty_axes
_npref_mean = npref.OPS["ReduceMean"]
npref.OPS["ReduceMean"] = lambda x, axes=None, keepdims=1, noop_with_empty_axes=0: \
    _npref_mean(x, axes, keepdims)
# Split with num_outputs (opset 18) instead of split sizes: chunks of
# ceil(n / num_outputs), the last one smaller
_npref_split = npref.OPS["Split"]
npref.OPS["Split"] = lambda x, split=None, axis=0, num_outputs=None: \
    _npref_split(x, split, axis) if split is not None else \
    tuple(np.split(x, [-(-x.shape[axis] // num_outputs) * i for i in range(1, num_outputs)], axis=axis))
# ops npref leaves out that the ported graphs use
npref.OPS.update({
    "Sigmoid": lambda x: (1.0 / (1.0 + np.exp(-x))).astype(x.dtype),
    "Relu": lambda x: np.maximum(x, 0).astype(x.dtype),
    "Reciprocal": lambda x: (1.0 / x).astype(x.dtype),
    "Clip": lambda x, lo=None, hi=None: np.clip(x, -np.inf if lo is None else lo,
                                                np.inf if hi is None else hi).astype(x.dtype),
    "ReduceSum": lambda x, axes=None, keepdims=1, noop_with_empty_axes=0:
        np.sum(x, axis=None if axes is None else tuple(int(a) % x.ndim for a in axes),
               keepdims=bool(keepdims)).astype(x.dtype),
})


class Graph:
    """Collects nodes (in the order given) and initializers for one graph.
    rand(name, shape) is a random float initializer where the original has
    a placeholder; init(name, dtype, dims, vals) is a literal one."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes, self.inits = [], []

    def node(self, op, ins, outs, name, domain=None, **attrs):
        n = helper.make_node(op, ins, outs, name, **attrs)
        if domain:
            n.domain = domain
        self.nodes.append(n)

    def rand(self, name, shape, low=-0.5, high=0.5):
        a = self.rng.uniform(low, high, shape).astype(np.float32)
        self.inits.append(numpy_helper.from_array(a, name))

    def init(self, name, dtype, dims, vals):
        self.inits.append(helper.make_tensor(name, dtype, dims, vals))

    def model(self, gname, inputs, outputs, opset, extra_opsets=()):
        g = helper.make_graph(self.nodes, gname,
                              [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              self.inits)
        ops = [helper.make_opsetid("ai.onnx", opset)]
        ops += [helper.make_opsetid(d, v) for d, v in extra_opsets]
        m = helper.make_model(g, opset_imports=ops, producer_name="kiln-tests-foreign")
        m.ir_version = 8
        return m


class Script:
    """Emits nodes the way onnxscript does: one node per statement, output
    named after the variable, Constant values as tensors."""

    def __init__(self, g):
        self.g = g

    def __call__(self, op, out, *ins, **attrs):
        self.g.node(op, list(ins), [out], "", **attrs)
        return out

    def const(self, out, v):
        """A Constant node; python floats become float32, ints int64."""
        a = np.asarray(v)
        a = a.astype(np.float32 if a.dtype.kind == "f" else np.int64)
        self.g.node("Constant", [], [out], "", value=numpy_helper.from_array(a))
        return out


def expand_skip_layer_norm(model, opset=17):
    """A copy of model where every com.microsoft SkipLayerNormalization
    (input, skip, gamma, beta[, bias]) -> (output, _, _, input_skip_bias_sum)
    is written with standard ops as ONNX Runtime defines it: the sum
    input + skip (+ bias), then LayerNormalization over the last axis with
    the node's epsilon (default 1e-12).  The copy tests the rest of the
    graph without kiln's import of the op, and is what npref evaluates for
    the original's reference.  Other contrib ops stay."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    nodes = []
    for nd in m.graph.node:
        if nd.domain != "com.microsoft" or nd.op_type != "SkipLayerNormalization":
            nodes.append(nd)
            continue
        eps = next((a.f for a in nd.attribute if a.name == "epsilon"), 1e-12)
        x, skip, gamma, beta = nd.input[:4]
        bias = nd.input[4] if len(nd.input) > 4 and nd.input[4] else None
        outs = list(nd.output) + [""] * (4 - len(nd.output))
        s = outs[3] or nd.name + "_sum"
        if bias:
            nodes.append(helper.make_node("Add", [x, skip], [nd.name + "_xs"], nd.name + "_add"))
            nodes.append(helper.make_node("Add", [nd.name + "_xs", bias], [s], nd.name + "_add_bias"))
        else:
            nodes.append(helper.make_node("Add", [x, skip], [s], nd.name + "_add"))
        nodes.append(helper.make_node("LayerNormalization", [s, gamma, beta], [outs[0]], nd.name,
                                      axis=-1, epsilon=eps))
    del m.graph.node[:]
    m.graph.node.extend(nodes)
    for op in m.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = opset
    keep = [op for op in m.opset_import if op.domain != "com.microsoft" or
            any(nd.domain == "com.microsoft" for nd in nodes)]
    del m.opset_import[:]
    m.opset_import.extend(keep)
    return m


def feeds_for(model, dims, rng, masks=None):
    """Random inputs for model's graph inputs: dims maps a symbolic or
    fixed dim name/position to its size through dims(name, shape_proto);
    masks maps an input name to the array to use (attention masks)."""
    out = {}
    for i in model.graph.input:
        if masks and i.name in masks:
            out[i.name] = masks[i.name]
            continue
        shape = [dims(i.name, k, d) for k, d in enumerate(i.type.tensor_type.shape.dim)]
        t = i.type.tensor_type.elem_type
        if t == TensorProto.FLOAT:
            out[i.name] = rng.normal(0, 1, shape).astype(np.float32)
        elif t in (TensorProto.INT64, TensorProto.INT32):
            out[i.name] = rng.integers(0, 10, shape).astype(
                np.int64 if t == TensorProto.INT64 else np.int32)
        else:
            raise ValueError("feeds_for: input %s of type %d" % (i.name, t))
    return out


def _sorted(model):
    """A copy of model for npref: its nodes in topological order (npref runs
    them in file order; some originals are not sorted, and kiln must sort),
    Constant value_ints/value_floats/... written as value tensors."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {i.name for i in m.graph.input} | {t.name for t in m.graph.initializer} | {""}
    left, order = list(m.graph.node), []
    while left:
        ready = [n for n in left if all(i in have for i in n.input)]
        if not ready:
            return m        # a cycle or an undefined input: leave it to npref
        for n in ready:
            order.append(n)
            have.update(n.output)
        left = [n for n in left if n not in ready]
    del m.graph.node[:]
    m.graph.node.extend(order)
    for n in m.graph.node:      # npref reads only Constant's value
        if n.op_type == "Constant" and n.attribute[0].name != "value":
            v = np.asarray(helper.get_attribute_value(n.attribute[0]))
            v = v.astype(np.float32 if n.attribute[0].name.startswith("value_float") else np.int64)
            del n.attribute[:]
            n.attribute.append(helper.make_attribute("value", numpy_helper.from_array(v)))
    return m


def _reference_model(model):
    """The model npref evaluates: npref reads no com.microsoft op, so a
    SkipLayerNormalization is evaluated as its definition
    (expand_skip_layer_norm); kiln imports the op itself."""
    if any(nd.domain == "com.microsoft" and nd.op_type == "SkipLayerNormalization"
           for nd in model.graph.node):
        return expand_skip_layer_norm(model)
    return model


def write(outdir, name, model, sets):
    """Saves model and, when npref can evaluate it, its data sets with the
    references.  Returns 'ref' or 'noref: WHY'."""
    d = os.path.join(outdir, name)
    try:
        refs = [npref.run(_sorted(_reference_model(model)), f) for f in sets]
    except (NotImplementedError, KeyError, ValueError) as e:
        why = "noref: npref cannot evaluate it (%s)" % str(e).strip("'")
        case_io.write_case(d, model, [], [])
        print("%s: %d nodes, %s" % (name, len(model.graph.node), why))
        return why
    for outs in refs:
        for o, r in zip(model.graph.output, outs):
            if not np.isfinite(r).all():
                sys.exit("%s: reference output %s is not finite" % (name, o.name))
    case_io.write_case(d, model, sets, refs)
    print("%s: %d nodes, %d data sets" % (name, len(model.graph.node), len(sets)))
    return "ref"


def main(argv, cases):
    """cases: name -> function returning (model, data sets).  Writes every
    case (or the ones named) under argv[1]."""
    case_io.form_main(argv, cases, lambda n, out: write(out, n, *cases[n]()), "graph")
