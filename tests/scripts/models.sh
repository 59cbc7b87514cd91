#!/usr/bin/env bash
# ctest: kiln's own test models (tests/gen/models.py, numpy references),
# each run as `kiln check BUILD/models/NAME -O0`.
#   bash models.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/models

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/models.py" "$OUT" || { echo "models: generating failed"; exit 1; }

for d in "$OUT"/*/; do
	d=${d%/}
	for o in -O0 -O2; do check_model "$(basename "$d") $o" "$d" "$o"; done
done
finish models
