#!/usr/bin/env bash
# --weights=external: the .so records a content hash of its weights and
# checks OUT.weights against it when a context is created.  Two builds of
# the BERT QA model that differ in one weight have weights files of the same
# size: swapping them used to load and give wrong answers; now it is one
# line naming the file.  A model moved together with its weights file (to
# another folder) still loads and matches.
# usage: weights_identity.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
kiln=$(realpath "$1") src=$2 build=$(realpath "$3")
d="$build/weights_identity"
rm -rf "$d" && mkdir -p "$d/moved"
/usr/bin/python3 "$src/tests/gen/models.py" "$d" bert_qa >/dev/null || exit 1
ds="$d/bert_qa/test_data_set_0"
/usr/bin/python3 - "$d/bert_qa/model.onnx" "$d/other.onnx" <<'PY' || exit 1
import sys
import numpy as np
import onnx
from onnx import numpy_helper
m = onnx.load(sys.argv[1])
for i, t in enumerate(m.graph.initializer):
    a = numpy_helper.to_array(t)
    if a.dtype == np.float32 and a.size > 100:
        a = a.copy(); a.flat[7] += 0.5
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
        break
onnx.save(m, sys.argv[2])
PY
fail=0
"$kiln" compile "$d/bert_qa/model.onnx" -o "$d/a.so" --weights=external || exit 1
"$kiln" compile "$d/other.onnx" -o "$d/b.so" --weights=external || exit 1
[ "$(stat -c %s "$d/a.weights")" = "$(stat -c %s "$d/b.weights")" ] || { echo "FAIL: the weights files differ in size"; fail=1; }
cmp -s "$d/a.weights" "$d/b.weights" && { echo "FAIL: the weights files are identical"; fail=1; }
"$kiln" run "$d/a.so" --inputs "$ds" --outputs "$d/o1" >/dev/null && echo "ok   a.so with its own weights runs" || { echo "FAIL a.so does not run"; fail=1; }
cp "$d/a.weights" "$d/a.weights.orig"
cp "$d/b.weights" "$d/a.weights"
"$kiln" run "$d/a.so" --inputs "$ds" --outputs "$d/o2" >/dev/null 2>"$d/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q "a.weights' does not belong to this model" "$d/err"; then
  echo "ok   another model's weights of the same size refused: $(cut -c1-110 "$d/err")"
else
  echo "FAIL swapped weights: exit $rc: $(cat "$d/err")"; fail=1
fi
[ ! -e "$d/o2" ] || { echo "FAIL outputs written with the wrong weights"; fail=1; }
mv "$d/a.weights.orig" "$d/moved/a.weights"
mv "$d/a.so" "$d/moved/a.so"
(cd "$d/moved" && "$kiln" run a.so --inputs "$ds" --outputs "$d/o3" >/dev/null) && echo "ok   moved with its weights file, it still loads" ||
  { echo "FAIL the moved model does not load"; fail=1; }
cmp -s "$d/o1/output_0.pb" "$d/o3/output_0.pb" || { echo "FAIL the moved model's outputs differ"; fail=1; }
exit $fail
