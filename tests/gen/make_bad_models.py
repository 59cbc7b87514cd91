#!/usr/bin/env python3
"""Write malformed ONNX models for tests/scripts/bad_inputs.sh.

usage: make_bad_models.py DIR

DIR's parent gets a file outside.bin (for the ../ escape case).

Writes each bad model into DIR and a manifest DIR/MANIFEST with one line
per case: FILE<TAB>FRAGMENT[<TAB>FRAGMENT...].  Loading FILE must fail with
one line that contains the file's name and every fragment (the node or
tensor at fault).  Needs python3-onnx (and numpy).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper

from pbwire import ld, varint

OPSET = 17


def base_graph(nodes=None, inits=None, inputs=None, outputs=None):
    """x[batch,4] @ W[4,4] + B[4] -> y, with optional extra pieces."""
    W = helper.make_tensor("W", TensorProto.FLOAT, [4, 4],
                           np.arange(16, dtype=np.float32).tobytes(), raw=True)
    B = helper.make_tensor("B", TensorProto.FLOAT, [4], [0.0, 1.0, 2.0, 3.0])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    ns = [helper.make_node("MatMul", ["x", "W"], ["xw"], name="mm"),
          helper.make_node("Add", ["xw", "B"], ["y"], name="add")]
    g = helper.make_graph(ns + (nodes or []), "bad", [x] + (inputs or []),
                          [y] + (outputs or []), [W, B] + (inits or []))
    return g


def model(g, opset=OPSET, domains=()):
    ops = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(g, opset_imports=ops, producer_name="kiln-bad")


def save(d, name, m):
    with open(os.path.join(d, name), "wb") as f:
        f.write(m.SerializeToString() if not isinstance(m, bytes) else m)


def external(m, location, offset="0", length="64"):
    W = m.graph.initializer[0]
    W.ClearField("raw_data")
    W.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        e = W.external_data.add()
        e.key, e.value = k, v
    return m


def main(d):
    os.makedirs(d, exist_ok=True)
    cases = []

    def case(name, m, *frags):
        save(d, name, m)
        cases.append((name,) + frags)

    good = model(base_graph()).SerializeToString()
    case("empty.onnx", b"", "not an ONNX model")
    rng = np.random.default_rng(1)
    case("random.onnx", rng.integers(0, 256, 4096, dtype=np.uint8).tobytes(),
         "not an ONNX model")
    case("truncated.onnx", good[: len(good) // 2], "not an ONNX model")
    m = model(base_graph())
    m.ClearField("graph")
    case("no_graph.onnx", m, "no graph")
    case("unknown_op.onnx",
         model(base_graph([helper.make_node("Frobnicate", ["y"], ["z"], name="frob")])),
         "unsupported ops: Frobnicate (opset 17) x1 (node 'frob')")
    case("undefined_input.onnx",
         model(base_graph([helper.make_node("Add", ["y", "nope"], ["z"], name="add2")])),
         "node 'add2' (Add)", "'nope'")
    g = base_graph([helper.make_node("Neg", ["ny"], ["nz"], name="loop_a"),
                    helper.make_node("Neg", ["nz"], ["ny"], name="loop_b")])
    case("cycle.onnx", model(g), "node 'loop_", "(Neg) is on a cycle")
    case("arity.onnx",
         model(base_graph([helper.make_node("Gather", ["W", "B", "x"], ["z"], name="gat")])),
         "node 'gat' (Gather)", "expects 2 inputs, has 3")
    case("opset0.onnx", model(base_graph(), opset=0), "opset version 0")
    case("opset99.onnx", model(base_graph(), opset=99), "opset version 99")
    m = model(base_graph())
    m.opset_import.append(helper.make_opsetid("ai.onnx", 9))
    case("opset_twice.onnx", m, "imports the default domain twice, as opset 17 and 9")
    m = model(base_graph())
    m.opset_import.append(helper.make_opsetid("", 17))     # the same version twice: fine
    save(d, "good_opset_twice.onnx", m)
    fill = helper.make_tensor("v", TensorProto.FLOAT, [2], [1.0, 2.0])
    shp = helper.make_tensor("shp", TensorProto.INT64, [1], [4])
    cos = helper.make_node("ConstantOfShape", ["shp"], ["c4"], name="cos2", value=fill)
    case("cos_value_two.onnx", model(base_graph([cos], inits=[shp])),
         "node 'cos2' (ConstantOfShape)", "attribute 'value' has 2 elements, must have one")
    empty = helper.make_tensor("v", TensorProto.FLOAT, [0], [])
    cos = helper.make_node("ConstantOfShape", ["shp"], ["c4"], name="cos0", value=empty)
    case("cos_value_empty.onnx", model(base_graph([cos], inits=[shp])),
         "node 'cos0' (ConstantOfShape)", "attribute 'value' has 0 elements, must have one")
    # OneHot's float depth constant out of int64's range or NaN: converting
    # it was undefined behaviour (fuzz_onnx); refused in one line
    for nm, dv in (("big", 1e30), ("nan", float("nan"))):
        depth = helper.make_tensor("depth", TensorProto.FLOAT, [], [dv])
        vals = helper.make_tensor("vals", TensorProto.FLOAT, [2], [0.0, 1.0])
        idx = helper.make_tensor("idx", TensorProto.INT64, [3], [0, 1, 2])
        oh = helper.make_node("OneHot", ["idx", "depth", "vals"], ["oh"], name="onehot_" + nm)
        ohv = helper.make_tensor_value_info("oh", TensorProto.FLOAT, None)
        case("onehot_depth_%s.onnx" % nm,
             model(base_graph([oh], inits=[depth, vals, idx], outputs=[ohv])),
             "node 'onehot_%s' (OneHot)" % nm, "is not a count (0 to 2^63)")
    fused = helper.make_node("Inverse", ["x", "W"], ["z"], name="fmm",
                             domain="com.microsoft")
    case("foreign_domain.onnx", model(base_graph([fused]), domains=["com.microsoft"]),
         "unsupported ops: com.microsoft.Inverse x1 (node 'fmm')")
    m = model(base_graph())
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:12]
    case("raw_short.onnx", m, "initializer 'W'", "raw_data has 12 bytes")
    m = model(base_graph())
    m.graph.initializer[0].raw_data += b"\0" * 8
    case("raw_long.onnx", m, "initializer 'W'", "raw_data has 72 bytes")
    m = model(base_graph())
    del m.graph.initializer[1].float_data[-1]
    case("float_count.onnx", m, "initializer 'B'", "float_data has 3 elements")
    s = helper.make_tensor("S", TensorProto.STRING, [1], [b"hello"])
    case("string_init.onnx", model(base_graph(inits=[s])), "initializer 'S'", "string")
    neg = TensorProto()
    neg.name, neg.data_type = "N", TensorProto.FLOAT
    neg.dims.extend([2, -3])
    case("negative_dim.onnx", model(base_graph(inits=[neg])), "initializer 'N'", "negative")
    huge = TensorProto()
    huge.name, huge.data_type = "H", TensorProto.FLOAT
    huge.dims.extend([1 << 40, 1 << 40])
    case("huge_dim.onnx", model(base_graph(inits=[huge])), "initializer 'H'", "too large")
    cs = helper.make_node("Constant", [], ["cs"], name="cstr", value_string="abc")
    case("constant_string.onnx", model(base_graph([cs])), "node 'cstr' (Constant)")
    sub = helper.make_graph([], "sub", [], [])
    ga = helper.make_node("Identity", ["y"], ["z"], name="withgraph", body=sub)
    case("graph_attr.onnx", model(base_graph([ga])), "node 'withgraph' (Identity)", "'body'")
    m = model(base_graph())
    m.graph.output.add().name = "ghost"
    case("undefined_output.onnx", m, "graph output 'ghost'")
    dup = helper.make_node("Neg", ["y"], ["xw"], name="redef")
    case("redefined.onnx", model(base_graph([dup])), "node 'redef' (Neg)", "'xw'")
    # (a dim_param that does not parse is a name; a negative one is refused)
    bad_dim = helper.make_tensor_value_info("q", TensorProto.FLOAT, ["2 - 5"])
    case("bad_dim_param.onnx", model(base_graph(inputs=[bad_dim])), "graph input 'q'",
         "negative")
    # external data
    with open(os.path.join(d, "weights.bin"), "wb") as f:
        f.write(np.arange(32, dtype=np.float32).tobytes())
    case("ext_missing.onnx", external(model(base_graph()), "missing.bin"),
         "initializer 'W'", "'missing.bin'")
    case("ext_absolute.onnx", external(model(base_graph()), "/etc/passwd"),
         "initializer 'W'", "'/etc/passwd'")
    # a file next to the model's folder, reached with ../
    with open(os.path.join(os.path.dirname(os.path.abspath(d)), "outside.bin"), "wb") as f:
        f.write(np.arange(32, dtype=np.float32).tobytes())
    case("ext_dotdot.onnx", external(model(base_graph()), "../outside.bin"),
         "initializer 'W'", "'../outside.bin'", "leaves")
    case("ext_dotdot2.onnx", external(model(base_graph()), "sub/../../outside.bin"),
         "initializer 'W'", "leaves")
    case("ext_beyond.onnx", external(model(base_graph()), "weights.bin", offset="100"),
         "initializer 'W'", "'weights.bin'")
    case("ext_length.onnx", external(model(base_graph()), "weights.bin", length="60"),
         "initializer 'W'", "'weights.bin'")
    os.symlink("/etc/hostname", os.path.join(d, "escape.bin"))
    case("ext_symlink.onnx", external(model(base_graph()), "escape.bin"),
         "initializer 'W'", "'escape.bin'", "leaves")
    # names with terminal escapes and line breaks: the message escapes them
    # (bad_inputs.sh also checks that no control byte reaches stderr)
    evil = "\x1b[2J\r\nevil\x07\x7f\u009b"
    case("control_node_name.onnx",
         model(base_graph([helper.make_node("Frobnicate", ["y"], ["z"], name=evil)])),
         "node '\\x1b[2J\\r\\nevil\\x07\\x7f\\xc2\\x9b'", "Frobnicate")
    case("control_tensor_name.onnx",
         model(base_graph([helper.make_node("Neg", ["\x1b]0;title\x07\n"], ["z"], name="neg")])),
         "node 'neg' (Neg)", "\\x1b]0;title\\x07\\n")
    nesting_and_nul_cases(case, good)
    # a valid model with valid external data, as a control (not in MANIFEST)
    save(d, "good_external.onnx", external(model(base_graph()), "weights.bin", offset="64"))
    save(d, "good.onnx", good)
    with open(os.path.join(d, "MANIFEST"), "w") as f:
        for c in cases:
            f.write("\t".join(c) + "\n")


# ---- raw protobuf wire data (nesting no protobuf library would build) ----



def nesting_and_nul_cases(case, good):
    """Nesting that overflowed protobuf-c's recursive unpacking, and names
    with an embedded NUL byte, which protobuf-c would cut short.  The extra
    graph fields are appended to a valid model (protobuf merges them)."""
    # graph.input[].type: TypeProto.sequence_type.elem_type ... 5,000 deep
    t = ld(1, varint(1 << 3) + varint(1))                # tensor_type {elem_type: 1}
    for _ in range(5000):
        t = ld(4, ld(1, t))                              # sequence_type {elem_type: t}
    case("deep_typeproto.onnx", good + ld(7, ld(11, ld(1, b"deep") + ld(2, t))),
         "protobuf nesting deeper than 64 levels")
    # node.attribute[].g.node[].attribute[].g ... 10,000 deep
    n = ld(4, b"Identity")
    for _ in range(10000):
        attr = ld(1, b"body") + varint(20 << 3) + varint(5) + ld(6, ld(1, n))
        n = ld(4, b"Identity") + ld(5, attr)
    case("deep_subgraph.onnx", good + ld(7, ld(1, n)),
         "protobuf nesting deeper than 64 levels")
    nul = helper.make_node("Relu", ["y"], ["z"], name="mm\x00evil")
    case("nul_name.onnx", model(base_graph([nul])), "NodeProto.name", "NUL byte")
    m = model(base_graph())
    m.graph.initializer[0].name = "W\x00"
    case("nul_initializer.onnx", m, "TensorProto.name", "NUL byte")
    # 2,000 strided Slices of a symbolic dim: ((n + 1)//2 + 1)//2 ... nests
    # one level deeper per node; refused at the node that passes the bound
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    ints = [helper.make_tensor(k, TensorProto.INT64, [1], [v])
            for k, v in (("st", 0), ("en", (1 << 63) - 1), ("ax", 0), ("sp", 2))]
    nodes = [helper.make_node("Slice", ["x" if i == 0 else f"t{i - 1}", "st", "en", "ax", "sp"],
                              [f"t{i}"], name=f"s{i}") for i in range(2000)]
    y = helper.make_tensor_value_info("t1999", TensorProto.FLOAT, None)
    case("deep_dim_chain.onnx", model(helper.make_graph(nodes, "chain", [x], [y], ints)),
         "node 's85' (Slice)", "nests deeper than 256 levels")
    # a Concat of 5,000 symbolic dims: a sum of 5,000 terms (took minutes)
    xs = [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [f"s{i}"])
          for i in range(5000)]
    cat = helper.make_node("Concat", [v.name for v in xs], ["c"], name="cat", axis=0)
    y = helper.make_tensor_value_info("c", TensorProto.FLOAT, None)
    case("wide_dim_concat.onnx", model(helper.make_graph([cat], "cat", xs, [y])),
         "node 'cat' (Concat)", "nests deeper than 256 levels")
    # a dim_param of 20,000 terms (building it took minutes)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                      ["+".join(f"s{i}" for i in range(20000))])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    relu = helper.make_node("Relu", ["x"], ["y"], name="relu")
    case("long_dim_param.onnx", model(helper.make_graph([relu], "long", [x], [y])),
         "graph input 'x'", "limit is 1024")


if __name__ == "__main__":
    main(sys.argv[1])


# ---- op schema refusals (ir/ops.def, ir/verify.c) ---------------------------
# Attributes an op does not have, of the wrong type or with values kiln does
# not implement, dtypes an op does not run on, and training-mode Dropout:
# refused after import and shape inference, naming the node and the
# attribute, dtype or input.  Appended to the MANIFEST main() wrote.

def schema_cases(d):
    cases = []

    def case(name, m, *frags):
        save(d, name, m)
        cases.append((name,) + frags)

    def node(op, ins, outs, name, **attrs):
        return helper.make_node(op, ins, outs, name=name, **attrs)

    def out(name, elem, dims):
        return helper.make_tensor_value_info(name, elem, dims)

    f32 = TensorProto.FLOAT
    f16 = TensorProto.FLOAT16
    case("schema_relu_bogus.onnx",
         model(base_graph([node("Relu", ["y"], ["r"], "relu_bogus", bogus=5)],
                          outputs=[out("r", f32, ["batch", 4])])),
         "node 'relu_bogus' (Relu)", "unknown attribute 'bogus'")
    case("schema_softmax_axis_str.onnx",
         model(base_graph([node("Softmax", ["y"], ["s"], "sm", axis="abc")],
                          outputs=[out("s", f32, ["batch", 4])])),
         "node 'sm' (Softmax)", "attribute 'axis'", "is of type string, must be int")
    case("schema_transpose_perm_floats.onnx",
         model(base_graph([node("Transpose", ["y"], ["t"], "tr", perm=[1.5, 0.2])],
                          outputs=[out("t", f32, [4, "batch"])])),
         "node 'tr' (Transpose)", "attribute 'perm'", "is of type floats, must be ints")
    case("schema_sqrt_f16.onnx",
         model(base_graph([node("Cast", ["y"], ["yh"], "to16", to=f16),
                           node("Sqrt", ["yh"], ["q"], "sqrt16")],
                          outputs=[out("q", f16, ["batch", 4])])),
         "node 'sqrt16' (Sqrt)", "is f16")
    case("schema_matmul_f16.onnx",
         model(base_graph([node("Cast", ["y"], ["yh"], "to16", to=f16),
                           node("Cast", ["W"], ["Wh"], "w16", to=f16),
                           node("MatMul", ["yh", "Wh"], ["p"], "mm16")],
                          outputs=[out("p", f16, ["batch", 4])])),
         "node 'mm16' (MatMul)", "is f16")
    ratio = helper.make_tensor("ratio", f32, [], [0.5])
    train = helper.make_tensor("train", TensorProto.BOOL, [], [True])
    case("schema_dropout_training.onnx",
         model(base_graph([node("Dropout", ["y", "ratio", "train"], ["dr"], "drop")],
                          inits=[ratio, train], outputs=[out("dr", f32, ["batch", 4])])),
         "node 'drop' (Dropout)", "training_mode", "must be absent or a constant false")
    # checks the kernels made at run time, made at compile time when the
    # shapes are static: a CumSum axis out of range, a LayerNormalization
    # scale/bias that does not fit the normalized dims (y is [batch, 4])
    ax = helper.make_tensor("ax", TensorProto.INT64, [], [2])
    case("static_cumsum_axis.onnx",
         model(base_graph([node("CumSum", ["y", "ax"], ["cs"], "cumsum_axis")],
                          inits=[ax], outputs=[out("cs", f32, ["batch", 4])])),
         "node 'cumsum_axis' (CumSum)", "axis 2 out of range for rank 2")
    sc3 = helper.make_tensor("sc3", f32, [3], [1.0, 1.0, 1.0])
    b4 = helper.make_tensor("b4", f32, [4], [0.0] * 4)
    case("static_ln_scale.onnx",
         model(base_graph([node("LayerNormalization", ["y", "sc3", "b4"], ["ln"], "ln_scale",
                                axis=-1)],
                          inits=[sc3, b4], outputs=[out("ln", f32, ["batch", 4])])),
         "node 'ln_scale' (LayerNormalization)", "scale 'sc3' has 3 elements, the normalized dims 4")
    sc4 = helper.make_tensor("sc4", f32, [4], [1.0] * 4)
    b2 = helper.make_tensor("b2", f32, [2, 1], [0.0, 0.0])
    case("static_ln_bias.onnx",
         model(base_graph([node("LayerNormalization", ["y", "sc4", "b2"], ["ln"], "ln_bias",
                                axis=-1)],
                          inits=[sc4, b2], outputs=[out("ln", f32, ["batch", 4])])),
         "node 'ln_bias' (LayerNormalization)", "bias 'b2' has 2 elements, the normalized dims 4")
    # an Einsum letter of two static sizes, neither 1 (size 1 broadcasts):
    # y [batch, 4] against W3 [3, 2] on the letter j
    w3 = helper.make_tensor("W3", f32, [3, 2], [1.0] * 6)
    case("static_einsum_letter.onnx",
         model(base_graph([node("Einsum", ["y", "W3"], ["ein"], "ein_j", equation="ij,jk->ik")],
                          inits=[w3], outputs=[out("ein", f32, ["batch", 2])])),
         "node 'ein_j' (Einsum)", "equation letter 'j' is 4 and 3 in 'ij,jk->ik'")
    with open(os.path.join(d, "MANIFEST"), "a") as f:
        for c in cases:
            f.write("\t".join(c) + "\n")


if __name__ == "__main__":
    schema_cases(sys.argv[1])
