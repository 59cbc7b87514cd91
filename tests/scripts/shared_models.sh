#!/usr/bin/env bash
# ctest: the real exports in ../shared/models (ONNX Runtime references),
# each run as `kiln check DIR -O0`.  Skips (77) without ../shared.
#   bash shared_models.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2
need_shared shared_models "$SRC"

for d in "$MODELS"/*/; do
	d=${d%/}
	[ -f "$d/model.onnx" ] || continue   # perf/: graphs without test sets
	check_model "$(basename "$d")" "$d" -O0
done
finish "shared models"
