#!/usr/bin/env bash
# A 600-op Add/Relu chain (tests/gen/chain.py) through the backend's split
# of kiln__run: several chunk functions calling shared node functions.
#  - `kiln check` against the numpy reference;
#  - the module has several chunks, and the 600 nodes share a few functions;
#  - a bad input caught by the broadcast check of node add_590 (the last
#    chunk) fails the run with the one-line message naming that node, and
#    no output is written.
# usage: chain.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
out="$build/chain"
rm -rf "$out" && mkdir -p "$out"
"$PY" "$src/tests/gen/chain.py" "$out/c600" 600 --late-input 590 || exit 1

if msg=$("$kiln" check "$out/c600" 2>&1); then ok "check: $(tail -n 1 <<<"$msg")"; else bad "check: $msg"; fi

if "$kiln" compile "$out/c600/model.onnx" --emit=llvm -o "$out/c600.ll"; then
  chunks=$(grep -c '^define .*@kiln__chunk_' "$out/c600.ll")
  nodes=$(grep -c '^define .*@kiln__node_' "$out/c600.ll")
  # 600 nodes, at most 128 per chunk
  if [ "$chunks" -ge 5 ]; then ok "$chunks chunks"; else bad "$chunks chunks, expected >= 5"; fi
  # Add of a constant and Relu over [batch, 64], Add of in_y (with its
  # broadcast check), Add and Relu over [max(batch, rows), 64] after it
  if [ "$nodes" -ge 2 ] && [ "$nodes" -le 5 ]; then ok "$nodes node functions"
  else bad "$nodes node functions for 600 nodes, expected 2-5"; fi
else
  bad "compile --emit=llvm"
fi

"$kiln" compile "$out/c600/model.onnx" -o "$out/c600.so" || exit 1
d="$out/bad_rows"
mkdir -p "$d"
/usr/bin/python3 - "$d" <<'EOF' || exit 1
import sys, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
def w(k, name, a): open(f"{d}/input_{k}.pb", "wb").write(numpy_helper.from_array(a, name).SerializeToString())
w(0, "x", np.ones((3, 64), np.float32)); w(1, "in_y", np.ones((2, 64), np.float32))
EOF
msg=$("$kiln" run "$out/c600.so" --inputs "$d" --outputs "$d/res" 2>&1 >/dev/null)
rc=$?
want="node 'add_590' \(Add\): input 1 'in_y' dim 2 does not broadcast to output dim 3"
expect_refusal "late error" $rc "$msg" "$want" "$d/res"
finish chain
