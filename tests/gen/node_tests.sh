#!/usr/bin/env bash
# Generates the ONNX backend node tests with Debian's python3-onnx (1.12)
# into OUTDIR/node/test_*, then keeps only those whose ops kiln has
# (ir/ops.def) and prints the count.
#   bash tests/gen/node_tests.sh OUTDIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: node_tests.sh OUTDIR" >&2; exit 2; }
OUT=$1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
mkdir -p "$OUT"
# onnx 1.12's test cases still use numpy aliases removed in numpy 1.24.
"$PY" - "$OUT" <<'PYEOF'
import sys
import numpy as np
np.float, np.int, np.bool, np.object, np.complex, np.str = float, int, bool, object, complex, str
out = sys.argv[1]
sys.argv = ["backend-test-tools", "generate-data", "-o", out]
from onnx.backend.test import cmd_tools
cmd_tools.main()
PYEOF
"$PY" "$SRC/tests/gen/node_select.py" "$OUT" "$SRC/ir/ops.def"
