#!/usr/bin/env python3
"""Models with hostile names, for tests/scripts/header_names.sh.

usage: hostile_names.py DIR

Writes DIR/NAME.onnx for each case in CASES (graph, input, output and dim
names that try to escape the comments of the generated OUT.h, C keywords
and names the header itself uses, names that collide once made C
identifiers, leading digits, very long names, UTF-8, a backslash at the end,
trigraphs, control bytes, bytes that are not UTF-8) and DIR/CASES listing
them, each with DIR/NAME_in/input_K.pb (ones, every dim 2) for `kiln run`.  Every model computes
out_k = in_k + 1 elementwise, so it compiles whatever its names are.

Also writes DIR/dims/: model.onnx with inputs x[batch-size, seq-len] and
w[seq-len] (y = x * w + 1, z = Neg(x)), and test_data_set_0 (batch 3,
sequence 5) with references from numpy, for `kiln check`.
Uses only onnx.helper and numpy.
"""
import os
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

# What an injection through a comment would leave behind: header_names.sh
# checks that no `pwned` token and no PWNED_MACRO survive outside comments.
INJECT = "g */\n#define PWNED_MACRO 1\nint pwned = 1;\n/* "

CASES = {
    "inject": ("m */ int pwned; /*" + INJECT,
               ["x */ int pwned = 2; /*", "in\n#include <pwned.h>\n", "a*/b"],
               ["y */\n#define PWNED_MACRO 2\n/*", "/**/", "//out"],
               ["n */ int pwned; /*", "*/", "/*"]),
    "inject_names": ("m */ int pwned; /*" + INJECT,
                     ["x */ int pwned = 2; /*", "in\n#include <pwned.h>\n"],
                     ["y */\n#define PWNED_MACRO 2\n/*", "/**/"],
                     ["n", "m"]),
    "keywords": ("int",
                 ["int", "return", "c", "memset", "size_t", "NULL", "kiln_run", "linux",
                  "_Pragma", "INT64_MAX", "kiln_in", "uint8_t", "bool", "kiln_max_"],
                 ["void", "kiln_out", "float", "kiln_tensor", "unix", "true", "INT8_C"],
                 ["int", "return", "kiln_min_", "SIZE_MAX", "kiln_context", "static"]),
    "collide": ("a-b",
                ["a-b", "a_b", "a.b", "a b", "a_b_2"],
                ["a+b", "a_b_3", "A_B"],
                ["a-b", "a_b", "n.1"]),
    "digits": ("1model",
               ["0", "1x", "_", "__x", "_X"],
               ["2y", "9"],
               ["3d", "_n"]),
    "long": ("g" * 300,
             ["i" * 299 + "a", "i" * 299 + "b", "x" * 1000],
             ["o" * 299 + "a", "o" * 299 + "b"],
             ["d" * 299 + "a", "d" * 299 + "b"]),
    "utf8": ("модель",
             ["entrée", "輸入", "😀"],
             ["sortie€", "出力"],
             ["größe", "長さ"]),
    "backslash": ("g\\",
                  ["x\\", "x??/", "??=define", "a??(b"],
                  ["y\\", "y??/", "??"],
                  ["n\\", "n??/"]),
    "control": ("g\x1b[2J\r\n\x7f",
                ["x\x1b[31m", "x\r\n#define PWNED_MACRO 3\r\n", "x\t"],
                ["y\x01", "y\x7f"],
                ["n\x1b", "n\r\n"]),
}


def hostile(name, graph, ins, outs, dims):
    """out_k = in_k + 1, in_k: f32[dims[k], 4]; inputs beyond the outputs
    are added to the last output (and share its dim)."""
    nodes, inputs, outputs = [], [], []
    one = numpy_helper.from_array(np.ones([1], np.float32), "one_c")
    for k, iname in enumerate(ins):
        d = dims[min(k, len(outs) - 1) % len(dims)]
        inputs.append(helper.make_tensor_value_info(iname, TensorProto.FLOAT, [d, 4]))
        if k < len(outs):
            oname = outs[k]
            nodes.append(helper.make_node("Add", [iname, one.name], [oname], name="add%d" % k))
            outputs.append(helper.make_tensor_value_info(oname, TensorProto.FLOAT, [d, 4]))
    # inputs beyond the outputs still feed one: summed into the last output
    for k in range(len(outs), len(ins)):
        prev = outputs[-1].name
        tmp = "t%d" % k
        nodes[-1].output[0] = tmp
        nodes.append(helper.make_node("Add", [tmp, ins[k]], [prev], name="sum%d" % k))
    g = helper.make_graph(nodes, graph, inputs, outputs, [one])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="kiln-hostile-names")
    m.ir_version = 8
    return m


def dims_model(d):
    os.makedirs(os.path.join(d, "test_data_set_0"), exist_ok=True)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch-size", "seq-len"])
    w = helper.make_tensor_value_info("w", TensorProto.FLOAT, ["seq-len"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch-size", "seq-len"])
    z = helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch-size", "seq-len"])
    one = numpy_helper.from_array(np.ones([1], np.float32), "one")
    nodes = [helper.make_node("Mul", ["x", "w"], ["xw"], name="mul"),
             helper.make_node("Add", ["xw", "one"], ["y"], name="add"),
             helper.make_node("Neg", ["x"], ["z"], name="neg")]
    g = helper.make_graph(nodes, "dims", [x, w], [y, z], [one])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="kiln-hostile-names")
    m.ir_version = 8
    with open(os.path.join(d, "model.onnx"), "wb") as f:
        f.write(m.SerializeToString())
    rng = np.random.default_rng(10)
    xv = rng.normal(size=(3, 5)).astype(np.float32)
    wv = rng.normal(size=(5,)).astype(np.float32)
    refs = [(xv.astype(np.float64) * wv + 1).astype(np.float32), -xv]
    s = os.path.join(d, "test_data_set_0")
    for k, a in enumerate([xv, wv]):
        with open(os.path.join(s, "input_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(a).SerializeToString())
    for k, a in enumerate(refs):
        with open(os.path.join(s, "output_%d.pb" % k), "wb") as f:
            f.write(numpy_helper.from_array(a).SerializeToString())


def main(d):
    os.makedirs(d, exist_ok=True)
    names = list(CASES)
    for name, (graph, ins, outs, dims) in CASES.items():
        data = hostile(name, graph, ins, outs, dims).SerializeToString()
        with open(os.path.join(d, name + ".onnx"), "wb") as f:
            f.write(data)
        # inputs for `kiln run` (every dim 2), whose stdout prints the names
        os.makedirs(os.path.join(d, name + "_in"), exist_ok=True)
        for k in range(len(ins)):
            with open(os.path.join(d, name + "_in", "input_%d.pb" % k), "wb") as f:
                f.write(numpy_helper.from_array(np.ones((2, 4), np.float32)).SerializeToString())
        if name == "utf8":
            # names that are not UTF-8 (no protobuf library writes them):
            # each "é" (c3 a9) of the utf8 case becomes e9 ff, same length
            with open(os.path.join(d, "notutf8.onnx"), "wb") as f:
                f.write(data.replace("é".encode(), b"\xe9\xff"))
            names.append("notutf8")
            os.symlink(name + "_in", os.path.join(d, "notutf8_in"))
    with open(os.path.join(d, "CASES"), "w") as f:
        f.write("\n".join(names) + "\n")
    dims_model(os.path.join(d, "dims"))


if __name__ == "__main__":
    main(sys.argv[1])
