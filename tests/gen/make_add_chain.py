#!/usr/bin/env python3
"""Write a valid model for tests/scripts/hangs.sh: N chained Adds (default
300,000) into a LayerNormalization.  The embed fusion's recursive walk of
Add trees once overflowed the stack on it.

usage: make_add_chain.py OUT.onnx [N]
"""
import sys

from onnx import TensorProto, helper


def main(out, n):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    inits = [helper.make_tensor(k, TensorProto.FLOAT, [4], v)
             for k, v in (("g", [1, 1, 1, 1]), ("b", [0, 0, 0, 0]))]
    nodes = [helper.make_node("Add", ["x" if i == 0 else f"a{i - 1}", "x"], [f"a{i}"],
                              name=f"a{i}") for i in range(n)]
    nodes.append(helper.make_node("LayerNormalization", [f"a{n - 1}", "g", "b"], ["y"],
                                  name="ln"))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    m = helper.make_model(helper.make_graph(nodes, "chain", [x], [y], inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    with open(out, "wb") as f:
        f.write(m.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300000)
