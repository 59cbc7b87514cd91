#!/usr/bin/env python3
"""Draws one BERT encoder layer before and after kiln's passes, for the README.

usage: make_figures.py KILN_BIN OUTDIR   (writes bert_layer_O0.png, bert_layer_O2.png)

The layer is the one tests/gen/models.py builds for bert_qa (opset 14 as the
TorchScript exporter writes it), alone: hidden states and the mask in, the
layer's output out.  Needs graphviz's `dot`."""
import os
import subprocess
import sys

import numpy as np
from onnx import TensorProto

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "gen"))
import models as M  # noqa: E402


def main(kiln, out):
    P, rng = M.bert_params(101, layers=1)
    b = M.Builder(P)
    am = M.g_ext_mask(b, "attention_mask", M.F32_MIN)
    y = M.g_layer(b, "hidden", "l0", am, M.HEADS, M.HID // M.HEADS, "shape")
    b.outputs(b.op("Identity", y))
    m = b.model("bert_layer", [("hidden", TensorProto.FLOAT, ["batch", "sequence", M.HID]),
                               ("attention_mask", TensorProto.INT64, ["batch", "sequence"])],
                [("output", TensorProto.FLOAT, ["batch", "sequence", M.HID])], 14)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "bert_layer.onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    for level in ("O0", "O2"):
        dot = subprocess.run([kiln, "dump", "-" + level, "--format=dot", path],
                             check=True, capture_output=True).stdout
        subprocess.run(["dot", "-Tpng", "-Gdpi=60", "-o", os.path.join(out, f"bert_layer_{level}.png")],
                       input=dot, check=True)


if __name__ == "__main__":
    main(*sys.argv[1:3])
