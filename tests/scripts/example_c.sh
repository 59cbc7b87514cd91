#!/usr/bin/env bash
# The C example (examples/bert_qa): builds it against the generated
# bert_qa.h, runs it, and checks its logits against `kiln run` on the same
# tokens; then an out-of-range token id must fail with a message naming the node
# that reads it and the index, never crash.
# usage: example_c.sh KILN_BIN SRC_DIR BUILD_DIR
set -euo pipefail
kiln=$1 src=$2 build=$3
out="$build/example_c"
rm -rf "$out"
flags=""
grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && flags="-fsanitize=address,undefined"
EXAMPLE_CFLAGS="$flags" bash "$src/examples/bert_qa/build.sh" "$build" "$out" >/dev/null

ids="101 7 45 300 102 9 88 1000 3 102"
"$out/qa" "$out/bert_qa.so" $ids > "$out/qa.txt"
grep -q '^answer span \[' "$out/qa.txt" || { echo "FAIL: no answer span"; cat "$out/qa.txt"; exit 1; }

# the same tokens through kiln run
/usr/bin/python3 - "$out/in" $ids <<'PY'
import os, sys
import numpy as np
from onnx import numpy_helper
d, ids = sys.argv[1], [int(x) for x in sys.argv[2:]]
os.makedirs(d, exist_ok=True)
sep = ids.index(102)
arrs = [np.array([ids], np.int64), np.ones((1, len(ids)), np.int64),
        np.array([[1 if i > sep else 0 for i in range(len(ids))]], np.int64)]
for k, a in enumerate(arrs):
    open(os.path.join(d, f"input_{k}.pb"), "wb").write(numpy_helper.from_array(a).SerializeToString())
PY
"$kiln" run "$out/bert_qa.so" --inputs "$out/in" --outputs "$out/res"
/usr/bin/python3 - "$out/qa.txt" "$out/res" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, numpy_helper
lines = dict(l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines() if " " in l)
for k, name in enumerate(["start_logits", "end_logits"]):
    got = np.array([float(x) for x in lines[name].split()])
    t = TensorProto(); t.ParseFromString(open(f"{sys.argv[2]}/output_{k}.pb", "rb").read())
    ref = numpy_helper.to_array(t).reshape(-1)
    err = np.abs(got - ref).max()
    assert err < 1e-5, f"{name}: example and kiln run differ by {err}"
print("example matches kiln run")
PY

# a token id outside the vocabulary: an error naming the node and the index, exit 1
set +e
msg=$("$out/qa" "$out/bert_qa.so" 101 5000 102 2>&1 >/dev/null)
rc=$?
set -e
[ $rc -eq 1 ] || { echo "FAIL: out-of-range id: exit $rc"; echo "$msg"; exit 1; }
grep -q "node .*out of range" <<<"$msg" && grep -q "5000" <<<"$msg" || { echo "FAIL: message: $msg"; exit 1; }
echo "out-of-range id refused: $msg"
