#!/usr/bin/env python3
"""A script written for ONNX Runtime, run on kiln by changing one line.

Runs every test_data_set_N of an ONNX model folder (backend-test layout)
through InferenceSession.run and compares with the reference outputs, as an
ONNX Runtime user would; the only kiln line is the session.

usage: ort_style.py MODEL_DIR [ATOL RTOL]"""
import glob
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper

import kiln


def load_pb(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def main(model_dir, atol=1e-4, rtol=1e-3):
    so = None
    # sess = onnxruntime.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
    sess = kiln.InferenceSession(os.path.join(model_dir, "model.onnx"), so, providers=["CPUExecutionProvider"])
    input_names = [i.name for i in sess.get_inputs()]
    output_names = [o.name for o in sess.get_outputs()]
    worst = 0.0
    for d in sorted(glob.glob(os.path.join(model_dir, "test_data_set_*"))):
        inputs = [load_pb(os.path.join(d, "input_%d.pb" % k)) for k in range(len(input_names))]
        refs = [load_pb(os.path.join(d, "output_%d.pb" % k)) for k in range(len(output_names))]
        outs = sess.run(None, dict(zip(input_names, inputs)))
        for name, got, ref in zip(output_names, outs, refs):
            if got.shape != ref.shape:
                sys.exit("%s %s: shape %s, reference %s" % (d, name, got.shape, ref.shape))
            err = np.abs(got.astype(np.float64) - ref)
            if not np.all(err <= atol + rtol * np.abs(ref)):
                sys.exit("%s %s: max |diff| %g over the tolerance" % (d, name, err.max()))
            worst = max(worst, float(err.max()))
        first = sess.run([output_names[-1]], dict(zip(input_names, inputs)))[0]
        assert np.array_equal(first, outs[-1])
    print("%s: %d outputs match, max |diff| %.3g" % (os.path.basename(model_dir.rstrip("/")),
                                                      len(output_names), worst))


if __name__ == "__main__":
    main(sys.argv[1], *map(float, sys.argv[2:4]))
