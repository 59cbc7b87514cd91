"""The attention fusion test of experimental-experiment (the torch-to-ONNX
exporter and graph optimizer of sdpython): a conformer encoder's
self-attention as its dynamo export left it after the FusedMatMul pattern,
with a boolean key mask applied twice (Where(mask == 0, -inf, scores)
before the Softmax, Where(mask == 0, 0, probs) after it, so fully masked
rows give 0 instead of NaN), an additive [1, 16, S, S] position bias, and
the Reshape shapes given as graph inputs.

Source: sdpython/experimental-experiment, _unittests/ut_xoptim/
test_graph_pattern_optimization_ort_attention.py at commit
03183b0ff4569daf445224357d51ce0252be9d6d (MIT License, "Copyright (c)
2023-2024" in its LICENSE.txt).  _get_model_attention_1 rebuilt node for
node with onnx.helper (names, attributes, weights from its _range: cos of
arange, opsets, IR version 10; make_node_extended is make_node).  The feeds
are those of test_attention_pattern_1_4d_cpu (batch 2, 8 positions, 16
heads of 64), the random mask from a fixed seed with one row all False;
the reference comes from tests/gen/npref.py.

attention_pattern_1 is the original (com.microsoft FusedMatMul, transB=1,
alpha=0.125: kiln reads no com.microsoft op).  attention_pattern_1_std
writes that FusedMatMul as the standard ops the optimizer had fused
(Transpose to K^T, MatMul, Mul by 0.125); attention_pattern_1_std_static
also gives the four Reshape shapes as initializers instead of inputs.

    /usr/bin/python3 tests/gen/foreign/xexp_ort_attention.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
from onnx import TensorProto
from onnx import helper as oh
from onnx import numpy_helper as onh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import main  # noqa: E402

SHAPES = {"val_104": [2, 8, 16, 64], "val_112": [2, 8, 16, 64], "val_120": [2, 8, 16, 64],
          "val_132": [2, 8, 1024]}


def _range(*shape, bias=None):
    n = np.prod(shape)
    x = np.cos(np.arange(n)).astype(np.float32)
    if bias:
        x = x + bias
    return x.reshape(tuple(shape)).astype(np.float32)


def attention_1(form):
    opset_imports = [
        oh.make_opsetid("pkg.onnxscript.torch_lib.common", 1),
        oh.make_opsetid("", 18),
        oh.make_opsetid("pkg.onnxscript.torch_lib", 1),
        oh.make_opsetid("pkg.torch.__subgraph__", 1),
        oh.make_opsetid("com.microsoft", 1),
    ]
    inputs, outputs, nodes, initializers = [], [], [], []
    for p in ("q", "k", "v"):
        initializers.append(onh.from_array(
            _range(1024, 1024), name="encoder.encoders.0.self_attn.linear_%s.weight" % p))
        initializers.append(onh.from_array(
            _range(1024), name="encoder.encoders.0.self_attn.linear_%s.bias" % p))
    initializers.append(onh.from_array(np.array(1, dtype=np.int64), name="dim_0_7"))
    initializers.append(onh.from_array(np.array(0, dtype=np.int64), name="val_10"))
    initializers.append(onh.from_array(np.array(-np.inf, dtype=np.float32), name="val_124"))
    initializers.append(onh.from_array(np.array(0.0, dtype=np.float32), name="val_126"))
    inputs.append(oh.make_tensor_value_info("layer_norm_1", TensorProto.FLOAT,
                                            shape=("s0", "(s1-1)//8+1", 1024)))
    inputs.append(oh.make_tensor_value_info("expand_1", TensorProto.BOOL,
                                            shape=("s0", "(s1-1)//8+1", "(s1-1)//8+1")))
    inputs.append(oh.make_tensor_value_info("unsqueeze_9", TensorProto.FLOAT,
                                            shape=(1, 16, "(s1-1)//8+1", "(s1-1)//8+1")))
    for name, v in SHAPES.items():
        if form == "std_static":
            initializers.append(onh.from_array(np.array(v, dtype=np.int64), name=name))
        else:
            inputs.append(oh.make_tensor_value_info(name, TensorProto.INT64, shape=(len(v),)))
    nodes.append(oh.make_node("Unsqueeze", ["expand_1", "dim_0_7"], ["unsqueeze_6"]))
    nodes.append(oh.make_node("Cast", ["unsqueeze_6"], ["convert_element_type_default"], to=7))
    nodes.append(oh.make_node("Equal", ["convert_element_type_default", "val_10"], ["eq_87"]))
    for p, mm, lin, shape, view in (("q", "val_97", "linear_3", "val_104", "view"),
                                    ("k", "val_107", "linear_4", "val_112", "view_1"),
                                    ("v", "val_115", "linear_5", "val_120", "view_2")):
        w = "encoder.encoders.0.self_attn.linear_%s." % p
        nodes.append(oh.make_node("MatMul", ["layer_norm_1", w + "weight"], [mm]))
        nodes.append(oh.make_node("Add", [mm, w + "bias"], [lin]))
        nodes.append(oh.make_node("Reshape", [lin, shape], [view], allowzero=0))
    nodes.append(oh.make_node("Transpose", ["view"], ["transpose_1"], perm=[0, 2, 1, 3]))
    if form == "original":
        nodes.append(oh.make_node("Transpose", ["view_1"], ["TransposeFusedMatMulBPattern--transpose_4"],
                                  perm=[0, 2, 1, 3]))
        nodes.append(oh.make_node("FusedMatMul", ["transpose_1", "TransposeFusedMatMulBPattern--transpose_4"],
                                  ["matmul"], domain="com.microsoft", transB=1, alpha=0.125))
    else:
        initializers.append(onh.from_array(np.array(0.125, dtype=np.float32), name="alpha"))
        nodes.append(oh.make_node("Transpose", ["view_1"], ["transpose_4"], perm=[0, 2, 3, 1]))
        nodes.append(oh.make_node("MatMul", ["transpose_1", "transpose_4"], ["matmul_0"]))
        nodes.append(oh.make_node("Mul", ["matmul_0", "alpha"], ["matmul"]))
    nodes.append(oh.make_node("Transpose", ["view_2"], ["transpose_3"], perm=[0, 2, 1, 3]))
    nodes.append(oh.make_node("Add", ["matmul", "unsqueeze_9"], ["add_322"]))
    nodes.append(oh.make_node("Where", ["eq_87", "val_124", "add_322"], ["masked_fill_2"]))
    nodes.append(oh.make_node("Softmax", ["masked_fill_2"], ["softmax"], axis=-1))
    nodes.append(oh.make_node("Where", ["eq_87", "val_126", "softmax"], ["masked_fill_3"]))
    nodes.append(oh.make_node("MatMul", ["masked_fill_3", "transpose_3"], ["matmul_1"]))
    nodes.append(oh.make_node("Transpose", ["matmul_1"], ["transpose_5"], perm=[0, 2, 1, 3]))
    nodes.append(oh.make_node("Reshape", ["transpose_5", "val_132"], ["view_3"], allowzero=0))
    outputs.append(oh.make_tensor_value_info("view_3", TensorProto.FLOAT,
                                             shape=("s0", "(s1-1)//8+1", 1024)))
    graph = oh.make_graph(nodes, "attention_pattern", inputs, outputs, initializers)
    model = oh.make_model(graph, opset_imports=opset_imports, ir_version=10)

    rng = np.random.default_rng(1)
    mask = rng.integers(0, 2, size=(2, 8, 8)) > 0
    mask[1, 6, :] = False
    feeds = {"layer_norm_1": _range(2, 8, 1024), "expand_1": mask,
             "unsqueeze_9": _range(1, 16, 8, 8)}
    if form != "std_static":
        feeds.update({k: np.array(v, dtype=np.int64) for k, v in SHAPES.items()})
    return model, [feeds]


CASES = {
    "attention_pattern_1": lambda: attention_1("original"),
    "attention_pattern_1_std": lambda: attention_1("std"),
    "attention_pattern_1_std_static": lambda: attention_1("std_static"),
}

if __name__ == "__main__":
    main(sys.argv, CASES)
