#!/usr/bin/env bash
# ctest: ../shared/models/bert-dynamo with symbols of its own for
# token_type_ids and attention_mask (tests/gen/own_syms.py), as a dynamo
# export writes them when it cannot prove the sizes equal.  Its head splits
# take [B, S] from Shape(token_type_ids); -O2 assumes the embeddings'
# broadcast extent is token_type_ids' (pass assume-dims, checked when a run
# starts), fuses both attentions and matches the references; input_ids of
# batch 1 with token_type_ids of batch 2 (ONNX broadcasting) gives -O0's
# outputs; input_ids of batch 2 with token_type_ids of batch 1 is refused
# with one line naming both inputs.  Skips (77) without ../shared.
#   bash own_syms_shared.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
model="$src/../shared/models/bert-dynamo"
[ -f "$model/model.onnx" ] || { echo "own_syms_shared: $model absent, skipping"; exit 77; }
out="$build/own_syms_shared"
rm -rf "$out" && mkdir -p "$out"
/usr/bin/python3 "$src/tests/gen/own_syms.py" "$model" "$out/m" || exit 1
for o in -O0 -O2; do
  "$kiln" check "$out/m" $o >"$out/check$o.log" 2>&1 ||
    { echo "FAIL check $o: $(tail -3 "$out/check$o.log")"; fail=1; }
  "$kiln" compile "$out/m/model.onnx" -o "$out/m$o.so" $o --stats >"$out/stats$o.log" 2>&1 || exit 1
done
att=$(tail -1 "$out/stats-O2.log" | grep -o '"attention": [0-9]*' | grep -o '[0-9]*$')
if [ "${att:-0}" -ne 2 ]; then
  echo "FAIL -O2 fused ${att:-0} of 2 attentions: $(tail -1 "$out/stats-O2.log")"; fail=1
else
  echo "ok   -O2 fuses both attentions and matches the references"
fi
/usr/bin/python3 - "$out" <<'PY' || exit 1
import sys, os, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
def w(s, k, a):
    os.makedirs(f"{d}/{s}", exist_ok=True)
    open(f"{d}/{s}/input_{k}.pb", "wb").write(numpy_helper.from_array(a).SerializeToString())
r = np.random.default_rng(5)
w("b12", 0, r.integers(0, 1000, (1, 7)).astype(np.int64))
w("b12", 1, np.array([[1] * 7, [1] * 5 + [0] * 2], np.int64))
w("b12", 2, np.array([[0] * 7, [1] * 7], np.int64))
w("b21", 0, r.integers(0, 1000, (2, 7)).astype(np.int64))
w("b21", 1, np.ones((2, 7), np.int64))
w("b21", 2, np.zeros((1, 7), np.int64))
PY
# ONNX broadcasting of input_ids over token_type_ids: -O0 and -O2 agree
for o in -O0 -O2; do
  "$kiln" run "$out/m$o.so" --inputs "$out/b12" --outputs "$out/b12/res$o" >/dev/null ||
    { echo "FAIL b12 $o refused"; fail=1; }
done
/usr/bin/python3 - "$out/b12" <<'PY' || { echo "FAIL b12: -O0 and -O2 differ"; fail=1; }
import sys, glob, os, numpy as np, onnx
from onnx import numpy_helper
d = sys.argv[1]
fs = sorted(os.path.basename(f) for f in glob.glob(f"{d}/res-O0/output_*.pb"))
assert fs, "no outputs"
for f in fs:
    a, b = (numpy_helper.to_array(onnx.load_tensor(f"{d}/res{o}/{f}")) for o in ("-O0", "-O2"))
    assert a.shape == b.shape and a.shape[0] == 2, (f, a.shape, b.shape)
    assert np.allclose(a, b, atol=1e-4, rtol=1e-3), (f, np.abs(a - b).max())
PY
echo "ok   b12: input_ids of batch 1 broadcast over token_type_ids of batch 2 at -O0 and -O2"
# the assumption broken: one line naming both inputs, no outputs
msg=$("$kiln" run "$out/m-O2.so" --inputs "$out/b21" --outputs "$out/b21/res" 2>&1 >/dev/null); rc=$?
expect_refusal "b21 -O2" $rc "$msg" \
  "input sizes disagree: .* is 2 but .* is 1 .*'input_ids' dim 0.*'token_type_ids' dim 0" "$out/b21/res"
# the fused attentions' mask is Cast(attention_mask): traced at compile time
# (mask_from = 2, the second input) so a run-time error names it
n=$("$kiln" dump "$model/model.onnx" -O2 2>/dev/null | grep -c ' = KlnAttention(.*, %_to_copy) {.*mask_from = 2')
if [ "$n" -ne 2 ]; then
  echo "FAIL bert-dynamo: $n of 2 attentions traced their mask to attention_mask"; fail=1
else
  echo "ok   bert-dynamo: both attentions trace their mask to attention_mask"
fi
exit $((fail > 0))
