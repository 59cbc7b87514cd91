"""The LLM pattern tests of experimental-experiment (the torch-to-ONNX
exporter and graph optimizer of sdpython): causal masks built from
Shape/Range/Unsqueeze/compare chains, rotary embeddings (Split/Neg/Concat,
half and partial), cos/sin caches computed from positions, and SDPA-style
attention with a boolean mask turned into Where(mask, 0, -inf) and the
IsNaN guard after the Softmax.

Source: sdpython/experimental-experiment, _unittests/ut_xoptim/
test_graph_pattern_optimization_onnx_llm.py at commit
05d13ede8d2fe29d24285c635a9524b2d466c416 (MIT License, "Copyright (c)
2023-2024" in its LICENSE.txt).  Each graph is the model a test method
builds, named after the method, rebuilt node for node with onnx.helper
(names, attributes, initializers, declared shapes, opsets, IR version).
The cos/sin cache tests build their model with the project's GraphBuilder
(g.op.Range(g.op.Squeeze(dim1), ...)); here those calls are written as the
nodes they make, with the outputs named as GraphBuilder's to_onnx
(optimize=False) would only approximately name them (names are not part of
what is tested).  The feeds are the original's; the references come from
tests/gen/npref.py.  local_function_attention's original feeds are
np.random [32, 8, 128, 64] with a random [1, 8, 128, 128] mask: here
batch 2 (the dims are symbolic) to keep the test fast, from a fixed seed,
and one mask row all False (every key masked: the Softmax gives NaN, the
IsNaN guard 0), which is what the guard is there for.  The tests that export a torch model
(GQA, attention through to_onnx) are left out.

Kept as in the original: rotary_embedding_half at opset 22 and
rotary_embedding_full at opset 23 (kiln reads up to opset 21; the _opset21
twins are the same graphs at opset 21), the int64 graph inputs that
function_causal_mask_bug and the cos/sin caches compute their Range bounds
from (shapes that depend on input values), the float16 casts.

    /usr/bin/python3 tests/gen/foreign/xexp_onnx_llm.py OUTDIR [NAME...]
"""
import os
import sys

import numpy as np
import onnx
from onnx import helper as oh
from onnx import numpy_helper as onh

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import main  # noqa: E402

TFLOAT = onnx.TensorProto.FLOAT
TFLOAT16 = onnx.TensorProto.FLOAT16
TINT64 = onnx.TensorProto.INT64
TBOOL = onnx.TensorProto.BOOL


def _range(*shape, bias=None):
    n = np.prod(shape)
    x = np.arange(n).astype(np.float32) / n
    if bias:
        x = x + bias
    return x.reshape(tuple(shape)).astype(np.float32)


def _causal_inits(extra=()):
    return [onh.from_array(np.array(0, dtype=np.int64), "zero"),
            onh.from_array(np.array(1, dtype=np.int64), "one"),
            onh.from_array(np.array([0, 1, 2], dtype=np.int64), "a012"),
            onh.from_array(np.array([0, 1, 3], dtype=np.int64), "a013")] + list(extra)


def causal_mask(greater):
    cmp = ([oh.make_node("Sub", ["m2", "initi"], ["m2sub"]),
            oh.make_node("Greater", ["m1", "m2sub"], ["yc"])] if greater
           else [oh.make_node("LessOrEqual", ["m1", "m2"], ["yc"])])
    model = oh.make_model(
        oh.make_graph(
            [oh.make_node("Shape", ["X"], ["d1"], start=0, end=1),
             oh.make_node("Shape", ["X"], ["d2"], start=1, end=2),
             oh.make_node("Squeeze", ["d1"], ["nd1"]),
             oh.make_node("Squeeze", ["d2"], ["nd2"]),
             oh.make_node("Range", ["zero", "nd2", "one"], ["rg1"]),
             oh.make_node("Range", ["nd1", "nd2", "one"], ["rg2"]),
             oh.make_node("Unsqueeze", ["rg1", "a012"], ["m1"]),
             oh.make_node("Unsqueeze", ["rg2", "a013"], ["m2"])] + cmp +
            [oh.make_node("Cast", ["yc"], ["Y"], to=TINT64)],
            "test",
            [oh.make_tensor_value_info("X", TFLOAT, ["a", "b"])],
            [oh.make_tensor_value_info("Y", TINT64, [1, 1, "c", "d"])],
            _causal_inits([onh.from_array(np.array([3], dtype=np.int64), "initi")] if greater else [])),
        opset_imports=[oh.make_operatorsetid("", 18)], ir_version=10)
    return model, [{"X": (np.arange(12).reshape((3, 4))).astype(np.float32)}]


def causal_mask_mul_add():
    model = oh.make_model(
        oh.make_graph(
            [oh.make_node("Shape", ["X"], ["N"], start=0, end=1),
             oh.make_node("Shape", ["X"], ["d1"], start=1, end=2),
             oh.make_node("Shape", ["X"], ["d2"], start=2, end=3),
             oh.make_node("Squeeze", ["d1"], ["nd1"]),
             oh.make_node("Squeeze", ["d2"], ["nd2"]),
             oh.make_node("Range", ["zero", "nd1", "one"], ["rg1"]),
             oh.make_node("Range", ["zero", "nd2", "one"], ["rg2"]),
             oh.make_node("Unsqueeze", ["rg1", "a012"], ["m1"]),
             oh.make_node("Unsqueeze", ["rg2", "a123"], ["m2"]),
             oh.make_node("Mul", ["m2", "N"], ["yc"]),
             oh.make_node("Add", ["m1", "yc"], ["yyc"]),
             oh.make_node("Cast", ["yyc"], ["Y"], to=TINT64)],
            "test",
            [oh.make_tensor_value_info("X", TFLOAT, ["a", "b", "c"])],
            [oh.make_tensor_value_info("Y", TINT64, ["a_", "b_", "c_", "d_"])],
            [onh.from_array(np.array(0, dtype=np.int64), "zero"),
             onh.from_array(np.array(1, dtype=np.int64), "one"),
             onh.from_array(np.array([0, 1, 2], dtype=np.int64), "a012"),
             onh.from_array(np.array([1, 2, 3], dtype=np.int64), "a123")]),
        opset_imports=[oh.make_operatorsetid("", 18)], ir_version=10)
    return model, [{"X": (np.arange(24).reshape((2, 3, 4))).astype(np.float32)}]


def function_causal_mask_bug():
    def const(name, v):
        return oh.make_node("Constant", [], [name],
                            value=onh.from_array(np.array(v, dtype=np.int64), name="value"))
    past = "past_key_values_self_attention_cache_key_3::Shape2:3"
    nodes = [const("init7_s_0", 0), const("init7_s_1", 1),
             const("init7_s3_0_1_2", [0, 1, 2]), const("init7_s3_0_1_3", [0, 1, 3]),
             oh.make_node("Squeeze", [past], ["sym_size_int_196"]),
             oh.make_node("Squeeze", ["SqueezeAddPattern_add_907"], ["add_907"]),
             oh.make_node("Range", ["init7_s_0", "add_907", "init7_s_1"], ["arange_8"]),
             oh.make_node("Range", ["sym_size_int_196", "add_907", "init7_s_1"], ["arange_5"]),
             oh.make_node("Unsqueeze", ["arange_8", "init7_s3_0_1_2"], ["unsqueeze_23"]),
             oh.make_node("Unsqueeze", ["arange_5", "init7_s3_0_1_3"], ["unsqueeze_20"]),
             oh.make_node("LessOrEqual", ["unsqueeze_23", "unsqueeze_20"], ["le_12"])]
    inputs = [oh.make_tensor_value_info(past, TINT64, shape=(1,)),
              oh.make_tensor_value_info("SqueezeAddPattern_add_907", TINT64, shape=(1,))]
    outputs = [oh.make_tensor_value_info("le_12", TBOOL,
                                         shape=(1, 1, "sequence_length", "s16+sequence_length")),
               oh.make_tensor_value_info("arange_5", TINT64, shape=("sequence_length",))]
    model = oh.make_model(oh.make_graph(nodes, "pattern", inputs, outputs, []),
                          opset_imports=[oh.make_opsetid("", 18), oh.make_opsetid("local_functions", 1),
                                         oh.make_opsetid("intermediate", 1)],
                          ir_version=0)
    return model, [{past: np.array([8], dtype=np.int64),
                    "SqueezeAddPattern_add_907": np.array([8], dtype=np.int64)}]


def rotary_embedding_half(opset):
    model = oh.make_model(
        oh.make_graph(
            [oh.make_node("Split", ["X"], ["x1", "x2"], axis=-1, num_outputs=2),
             oh.make_node("Neg", ["x2"], ["nx2"]),
             oh.make_node("Concat", ["nx2", "x1"], ["c"], axis=-1),
             oh.make_node("Mul", ["c", "m1"], ["cm1"]),
             oh.make_node("Mul", ["X", "m2"], ["cm2"]),
             oh.make_node("Add", ["cm1", "cm2"], ["Y"])],
            "test",
            [oh.make_tensor_value_info("X", TFLOAT, ["a", "b", "c", "d"]),
             oh.make_tensor_value_info("m1", TFLOAT, ["c", "d"]),
             oh.make_tensor_value_info("m2", TFLOAT, ["c", "d"])],
            [oh.make_tensor_value_info("Y", TFLOAT, ["a", "b", "c", "d"])]),
        opset_imports=[oh.make_operatorsetid("", opset)], ir_version=10)
    feeds = {"X": (np.arange(2 * 4 * 6 * 8) / (2 * 4 * 6 * 8)).reshape((2, 4, 6, 8)).astype(np.float32),
             "m1": (np.arange(6 * 8) / 24).reshape((6, 8)).astype(np.float32),
             "m2": (np.arange(6 * 8) / 36).reshape((6, 8)).astype(np.float32)}
    return model, [feeds]


def rotary_embedding_full(opset):
    model = oh.make_model(
        oh.make_graph(
            [oh.make_node("Concat", ["m1", "m1"], ["m1x2"], axis=-1),
             oh.make_node("Concat", ["m2", "m2"], ["m2x2"], axis=-1),
             oh.make_node("Split", ["X", "split"], ["Xh1", "Xh2"], axis=-1),
             oh.make_node("Split", ["Xh1"], ["x1", "x2"], axis=-1, num_outputs=2),
             oh.make_node("Neg", ["x2"], ["nx2"]),
             oh.make_node("Concat", ["nx2", "x1"], ["cc"], axis=-1),
             oh.make_node("Mul", ["cc", "m1x2"], ["cm1"]),
             oh.make_node("Mul", ["Xh1", "m2x2"], ["cm2"]),
             oh.make_node("Add", ["cm1", "cm2"], ["Yh"]),
             oh.make_node("Concat", ["Yh", "Xh2"], ["Y"], axis=-1)],
            "test",
            [oh.make_tensor_value_info("X", TFLOAT, ["a", 2, "c", "d"]),
             oh.make_tensor_value_info("m1", TFLOAT, [1, 1, "c", "e"]),
             oh.make_tensor_value_info("m2", TFLOAT, [1, 1, "c", "e"])],
            [oh.make_tensor_value_info("Y", TFLOAT, ["a", "b", "c", "d"])],
            [onh.from_array(np.array([4, 6], dtype=np.int64), name="split")]),
        opset_imports=[oh.make_operatorsetid("", opset)], ir_version=10)
    shape_x, shape_c = (2, 2, 3, 10), (1, 1, 3, 2)
    feeds = {"X": ((np.arange(np.prod(shape_x)) + 1) / (np.prod(shape_x) * 10)).reshape(shape_x).astype(np.float32),
             "m1": ((np.arange(np.prod(shape_c)) + 1) / np.prod(shape_c) * 15).reshape(shape_c).astype(np.float32),
             "m2": ((np.arange(np.prod(shape_c)) + 1) / np.prod(shape_c) * 5).reshape(shape_c).astype(np.float32)}
    return model, [feeds]


def cos_sin_cache(kind):
    """test_function_cos_sin_cache_*: positions Range(dim1, dim2) (or the
    position_ids input), times the weights, Cos and Sin, then a float16
    Cast (float16), nothing (float32) or an Exp (with_shape_inference)."""
    nodes, inits = [], [onh.from_array(np.array([0, -1, 1], dtype=np.int64), "init7_s3_0_-1_1")]
    if kind == "position_ids":
        inputs = [oh.make_tensor_value_info("position_ids", TINT64, ("b",))]
        inits.append(onh.from_array(np.array([1], dtype=np.int64), "init7_s1_1"))
        nodes.append(oh.make_node("Unsqueeze", ["position_ids", "init7_s1_1"], ["_onx_unsqueeze0"]))
    else:
        inputs = [oh.make_tensor_value_info("dim1", TINT64, (1,)),
                  oh.make_tensor_value_info("dim2", TINT64, (1,))]
        inits += [onh.from_array(np.array(1, dtype=np.int64), "init7_s_1"),
                  onh.from_array(np.array([0, 1], dtype=np.int64), "init7_s2_0_1")]
        nodes += [oh.make_node("Squeeze", ["dim1"], ["_onx_squeeze0"]),
                  oh.make_node("Squeeze", ["dim2"], ["_onx_squeeze02"]),
                  oh.make_node("Range", ["_onx_squeeze0", "_onx_squeeze02", "init7_s_1"], ["_onx_range0"]),
                  oh.make_node("Unsqueeze", ["_onx_range0", "init7_s2_0_1"], ["_onx_unsqueeze0"])]
    inputs.append(oh.make_tensor_value_info("weights", TFLOAT, (1, 1, "a")))
    nodes += [oh.make_node("Cast", ["_onx_unsqueeze0"], ["_onx_cast0"], to=TFLOAT),
              oh.make_node("Reshape", ["_onx_cast0", "init7_s3_0_-1_1"], ["_onx_reshape0"]),
              oh.make_node("Mul", ["weights", "_onx_reshape0"], ["_onx_mul0"])]
    otype = TFLOAT16 if kind in ("float16", "position_ids") else TFLOAT
    for f, out in (("Cos", "cos_cache"), ("Sin", "sin_cache")):
        if otype == TFLOAT16:
            nodes += [oh.make_node(f, ["_onx_mul0"], ["_onx_%s0" % f.lower()]),
                      oh.make_node("Cast", ["_onx_%s0" % f.lower()], [out], to=TFLOAT16)]
        elif kind == "exp":
            nodes += [oh.make_node(f, ["_onx_mul0"], ["_onx_%s0" % f.lower()]),
                      oh.make_node("Exp", ["_onx_%s0" % f.lower()], [out])]
        else:
            nodes.append(oh.make_node(f, ["_onx_mul0"], [out]))
    outputs = [oh.make_tensor_value_info("cos_cache", otype, (1, "seq", "a")),
               oh.make_tensor_value_info("sin_cache", otype, (1, "seq", "a"))]
    model = oh.make_model(oh.make_graph(nodes, "experiment", inputs, outputs, inits),
                          opset_imports=[oh.make_opsetid("", 18)], ir_version=9)
    if kind == "position_ids":
        feeds = {"position_ids": np.array([3, 5, 6], dtype=np.int64)}
    else:
        feeds = {"dim1": np.array([3], dtype=np.int64), "dim2": np.array([6], dtype=np.int64)}
    feeds["weights"] = _range(1, 1, 16)
    return model, [feeds]


def local_function_attention():
    model = oh.make_model(
        oh.make_graph(
            [oh.make_node("Mul", ["query", "scale_sqrt"], ["query_scaled"]),
             oh.make_node("Mul", ["keys", "scale_sqrt"], ["keys_scaled"]),
             oh.make_node("Transpose", ["keys_scaled"], ["keys_scaled_t"], perm=[0, 1, 3, 2]),
             oh.make_node("MatMul", ["query_scaled", "keys_scaled_t"], ["qk"]),
             oh.make_node("Where", ["mask", "zero", "minfty"], ["bias"]),
             oh.make_node("Add", ["qk", "bias"], ["qkb"]),
             oh.make_node("Softmax", ["qkb"], ["qkbs"], axis=-1),
             oh.make_node("IsNaN", ["qkbs"], ["nans"]),
             oh.make_node("Where", ["nans", "zero", "qkbs"], ["filt"]),
             oh.make_node("MatMul", ["filt", "values"], ["Y"])],
            "test",
            [oh.make_tensor_value_info("query", TFLOAT, ["aq", "bq", "cq", "dq"]),
             oh.make_tensor_value_info("keys", TFLOAT, ["ak", "bk", "ck", "dk"]),
             oh.make_tensor_value_info("values", TFLOAT, ["av", "bv", "cv", "dv"]),
             oh.make_tensor_value_info("mask", TBOOL, ["am", "bm", "cm", "dm"])],
            [oh.make_tensor_value_info("Y", TFLOAT, ["ay", "by", "cy", "dy"])],
            [onh.from_array(np.array([0], dtype=np.float32), name="zero"),
             onh.from_array(np.array([-np.inf], dtype=np.float32), name="minfty"),
             onh.from_array(np.array([0.1**0.5], dtype=np.float32), name="scale_sqrt")]),
        opset_imports=[oh.make_operatorsetid("", 18)], ir_version=10)
    rng = np.random.default_rng(7)
    mask = rng.random((1, 8, 128, 128)) >= 0.5
    mask[0, 3, 5, :] = False    # a row with every key masked: NaN, then 0
    feeds = dict(query=rng.standard_normal((2, 8, 128, 64)).astype(np.float32),
                 keys=rng.standard_normal((2, 8, 128, 64)).astype(np.float32),
                 values=rng.standard_normal((2, 8, 128, 64)).astype(np.float32), mask=mask)
    return model, [feeds]


CASES = {
    "causal_mask": lambda: causal_mask(False),
    "causal_mask_greater": lambda: causal_mask(True),
    "causal_mask_mul_add": causal_mask_mul_add,
    "function_causal_mask_bug": function_causal_mask_bug,
    "rotary_embedding_half": lambda: rotary_embedding_half(22),
    "rotary_embedding_half_opset21": lambda: rotary_embedding_half(21),
    "rotary_embedding_full": lambda: rotary_embedding_full(23),
    "rotary_embedding_full_opset21": lambda: rotary_embedding_full(21),
    "function_cos_sin_cache_float16": lambda: cos_sin_cache("float16"),
    "function_cos_sin_cache_float16_with_position_ids": lambda: cos_sin_cache("position_ids"),
    "function_cos_sin_cache_float32": lambda: cos_sin_cache("float32"),
    "function_cos_sin_cache_float32_with_shape_inference": lambda: cos_sin_cache("exp"),
    "local_function_attention": local_function_attention,
}

if __name__ == "__main__":
    main(sys.argv, CASES)
