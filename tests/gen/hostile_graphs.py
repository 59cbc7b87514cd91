#!/usr/bin/env python3
"""Hostile ONNX models for tests/scripts/graph_limits.sh, written as raw
protobuf bytes (building 10^7 nodes through python3-onnx would take
minutes): each exceeds one of the loader's element limits (PB_LIMITS in
frontend/onnx_private.h) by one element (or, nodes_10M, tenfold) while
staying 20 KB to 20 MB on disk.

usage: hostile_graphs.py OUT_DIR   (writes OUT_DIR/NAME.onnx, prints NAMEs)
"""
import os
import sys


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(num, payload):
    """A length-delimited field (wire type 2)."""
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def vfield(num, v):
    return varint(num << 3) + varint(v)


def s(num, text):
    return field(num, text.encode())


def model(graph, extra=b""):
    opset = field(8, vfield(2, 17))                  # opset_import { version: 17 }
    return vfield(1, 8) + opset + extra + field(7, graph)


def identity(i, o):
    return field(1, s(1, i) + s(2, o) + s(4, "Identity"))


# ValueInfoProto "x" with type f32 [1]
VI = s(1, "x") + field(2, field(1, vfield(1, 1) + field(2, field(1, vfield(1, 1)))))
GRAPH_IO = field(11, VI) + s(2, "g")


def cases():
    empty_node = field(1, b"")                            # NodeProto {}
    yield "nodes_10M", model(empty_node * 10_000_000)
    yield "nodes_1M_plus_1", model(empty_node * 1_000_001)
    many_out = b"".join(s(2, "o%d" % i) for i in range(1_000_000))
    yield "outputs_1M_one_node", model(field(1, s(1, "x") + many_out + s(4, "Split")) + GRAPH_IO)
    many_in = s(1, "x") * 100_001
    yield "inputs_100k_one_node", model(field(1, many_in + s(2, "y") + s(4, "Sum")) + GRAPH_IO)
    # 41 nodes of 99,999 outputs each: every node under its own limit, the
    # graph's total (4,000,000) over
    outs = b"".join(s(2, "o") for _ in range(99_999))
    node = field(1, s(1, "x") + outs + s(4, "Split"))
    yield "node_outputs_total", model(node * 41 + GRAPH_IO)
    yield "graph_inputs", model(field(11, b"") * 1_000_001)
    yield "graph_outputs", model(field(12, b"") * 1_000_001)
    yield "initializers", model(field(5, b"") * 1_000_001)
    yield "value_info", model(field(13, b"") * 4_000_001)
    yield "attributes", model(field(1, field(5, b"") * 10_001 + s(4, "Relu")) + GRAPH_IO)
    yield "opset_imports", model(GRAPH_IO, field(8, b"") * 10_001)
    yield "function_nodes", model(GRAPH_IO, field(25, field(7, b"") * 1_000_001))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in cases():
        with open(os.path.join(out, name + ".onnx"), "wb") as f:
            f.write(data)
        print(name)


if __name__ == "__main__":
    main()
