#!/usr/bin/env bash
# ctest: an unsorted copy of every real export in ../shared/models (nodes
# shuffled with a fixed seed, written with onnx beside links to the model's
# test_data_set dirs and external data) must compile and match its
# references (`kiln check -O2`).  The big perf/ models are skipped.  Skips
# (77) without ../shared.
#   bash unsorted_shared.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2
need_shared unsorted_shared "$SRC"
"$PY" -c "import onnx" 2>/dev/null || { echo "unsorted_shared: python3-onnx missing: skipped"; exit 77; }
TMP=$(mktemp -d /tmp/kiln_unsorted.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

for d in "$MODELS"/*/; do
	d=${d%/}
	[ -f "$d/model.onnx" ] || continue   # perf/: no test sets, big
	name=$(basename "$d") u="$TMP/$(basename "$d")"
	mkdir -p "$u"
	# everything but the model: test sets as links, files copied
	for f in "$d"/*; do
		[ "$(basename "$f")" = model.onnx ] && continue
		# external data must be inside the folder (no links out): copied
		if [ -d "$f" ]; then ln -s "$f" "$u/"; else cp "$f" "$u/"; fi
	done
	if ! "$PY" - "$d/model.onnx" "$u/model.onnx" <<'PYEOF'
import random, sys
import onnx
m = onnx.load(sys.argv[1], load_external_data=False)
nodes = list(m.graph.node)
order = list(range(len(nodes)))
random.Random(11).shuffle(order)
if len(nodes) > 1 and order == sorted(order):
    order.reverse()
del m.graph.node[:]
m.graph.node.extend(nodes[i] for i in order)
onnx.save(m, sys.argv[2])
PYEOF
	then
		bad "$name: shuffling failed"; continue
	fi
	check_model "$name (unsorted)" "$u" -O2
done
finish "unsorted shared models"
