"""A dynamo export whose inputs each have dim symbols of their own.

    /usr/bin/python3 tests/gen/own_syms.py SRC_DIR OUT_DIR

copies the model SRC_DIR/model.onnx (a torch dynamo export such as
../shared/models/bert-dynamo) and its test_data_set_N to OUT_DIR, giving
the dims of token_type_ids and attention_mask symbols of their own
(ownsym_<input>_<axis>), as the dynamo exporter writes them when it cannot
prove the sizes equal.  The reference outputs are unchanged: the run-time
sizes still agree.
"""
import os
import shutil
import sys

import onnx


def main():
    src, out = sys.argv[1], sys.argv[2]
    m = onnx.load(os.path.join(src, "model.onnx"))
    renamed = 0
    for i in m.graph.input:
        if i.name not in ("token_type_ids", "attention_mask"):
            continue
        for k, d in enumerate(i.type.tensor_type.shape.dim):
            if d.dim_param:
                d.dim_param = "ownsym_%s_%d" % (i.name, k)
                renamed += 1
    if renamed == 0:
        sys.exit("own_syms.py: %s has no symbolic dims to rename" % src)
    os.makedirs(out, exist_ok=True)
    onnx.save(m, os.path.join(out, "model.onnx"))
    for e in sorted(os.listdir(src)):
        if e.startswith("test_data_set_"):
            shutil.copytree(os.path.join(src, e), os.path.join(out, e), dirs_exist_ok=True)


if __name__ == "__main__":
    main()
