#!/usr/bin/env python3
"""Prints what a compiled BERT QA model computed: the answer span (argmax of
start and end logits) for each row, beside the reference's.

usage: show_qa.py TEST_SET_DIR RESULT_DIR"""
import os
import sys

import numpy as np
from onnx import TensorProto, numpy_helper


def load(path):
    t = TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def main(ref_dir, got_dir):
    ids = load(os.path.join(ref_dir, "input_0.pb"))
    mask = load(os.path.join(ref_dir, "input_1.pb"))
    start, end = (load(os.path.join(got_dir, f"output_{k}.pb")) for k in (0, 1))
    rstart, rend = (load(os.path.join(ref_dir, f"output_{k}.pb")) for k in (0, 1))
    for b in range(ids.shape[0]):
        n = int(mask[b].sum())
        s, e = int(start[b, :n].argmax()), int(end[b, :n].argmax())
        rs, re_ = int(rstart[b, :n].argmax()), int(rend[b, :n].argmax())
        print(f"   row {b}: {n} tokens, answer span [{s}, {e}] (reference [{rs}, {re_}]), "
              f"tokens {ids[b, min(s, e):max(s, e) + 1].tolist()}")
    err = max(np.abs(start - rstart).max(), np.abs(end - rend).max())
    print(f"   max |kiln - reference| over the logits: {err:.3g}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
