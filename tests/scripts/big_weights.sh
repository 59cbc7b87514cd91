#!/usr/bin/env bash
# A model with more than 2 GB of weights compiles (embedded and external) and
# runs: an embedding table of 8.6M x 64 f32 (2.2 GB) in external data, read by
# Gather at rows near its end.  Slow and disk-hungry (about 7 GB), so it runs
# only with KILN_BIG_TESTS=1.
# usage: big_weights.sh KILN_BIN SRC_DIR BUILD_DIR
set -euo pipefail
[ "${KILN_BIG_TESTS:-0}" = 1 ] || { echo "skip: set KILN_BIG_TESTS=1"; exit 77; }
kiln=$1 build=$3
d="$build/big_weights"
rm -rf "$d" && mkdir -p "$d/model/test_data_set_0"
/usr/bin/python3 - "$d/model" <<'PY'
import os, sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
d = sys.argv[1]
rows, width = 8_600_000, 64
# row r holds r * 1e-6 + column * 1e-3: cheap to write, checkable anywhere
with open(os.path.join(d, "table.bin"), "wb") as f:
    col = np.arange(width, dtype=np.float64) * 1e-3
    for start in range(0, rows, 1_000_000):
        r = np.arange(start, min(rows, start + 1_000_000), dtype=np.float64)[:, None]
        f.write((r * 1e-6 + col).astype(np.float32).tobytes())
t = TensorProto()
t.name, t.data_type = "table", TensorProto.FLOAT
t.dims.extend([rows, width])
t.data_location = TensorProto.EXTERNAL
for k, v in (("location", "table.bin"), ("offset", "0"), ("length", str(rows * width * 4))):
    e = t.external_data.add(); e.key, e.value = k, v
g = helper.make_graph([helper.make_node("Gather", ["table", "ids"], ["out"], axis=0)], "big",
                      [helper.make_tensor_value_info("ids", TensorProto.INT64, ["n"])],
                      [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", width])], [t])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 14)]), os.path.join(d, "model.onnx"))
ids = np.array([0, 1, rows // 2, rows - 2, rows - 1], np.int64)
ref = (ids[:, None] * 1e-6 + np.arange(width) * 1e-3).astype(np.float32)
ts = os.path.join(d, "test_data_set_0")
open(os.path.join(ts, "input_0.pb"), "wb").write(numpy_helper.from_array(ids, "ids").SerializeToString())
open(os.path.join(ts, "output_0.pb"), "wb").write(numpy_helper.from_array(ref, "out").SerializeToString())
PY
echo "== embedded"
"$kiln" check "$d/model" --atol=0 --rtol=1e-6
echo "== external"
"$kiln" compile "$d/model/model.onnx" -o "$d/ext.so" --weights=external
ls -l "$d/ext.so" "$d/ext.weights"
"$kiln" run "$d/ext.so" --inputs "$d/model/test_data_set_0" --outputs "$d/res"
cmp <(tail -c 1280 "$d/res/output_0.pb") <(tail -c 1280 "$d/model/test_data_set_0/output_0.pb") && echo "external: outputs equal"
rm -rf "$d"
