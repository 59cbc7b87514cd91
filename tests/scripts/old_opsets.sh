#!/usr/bin/env bash
# ctest: models in the old forms of kiln's ops (opsets 1-12, made by
# tests/gen/old_opsets.py with numpy references), each run as
# `kiln check DIR` at -O0 and -O2: the frontend's upgrades (Clip-6 min/max
# attributes, attribute-form Unsqueeze/Squeeze/Split/Slice/Reduce*, the 2-D
# coercion of Softmax before 13, legacy broadcasting, ...).  Also: the
# opset-11 BERT attention block still fuses into KlnAttention at -O2, an
# unsorted copy of it compiles and matches, and the refusals (a cycle, three
# unsupported ops) are one line each naming what is wrong.
#   bash old_opsets.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/old_opsets
need_onnx old_opsets

check_generated old_opsets "$SRC/tests/gen/old_opsets.py" "$OUT"

# the opset-11 attention block fuses as the newer exports do
dump=$("$KILN" dump "$OUT/bert_attention_11/model.onnx" -O2 2>&1)
if grep -q KlnAttention <<<"$dump" && grep -q KlnSkipLayerNorm <<<"$dump"; then
	ok "bert_attention_11 fuses KlnAttention and KlnSkipLayerNorm at -O2"
else
	bad "bert_attention_11: no KlnAttention/KlnSkipLayerNorm at -O2"
fi
# Softmax before 13 with the last axis stays one Softmax (no Flatten/Reshape)
dump=$("$KILN" dump "$OUT/softmax_11_last/model.onnx" -O0 2>&1)
if grep -q Softmax <<<"$dump" && ! grep -q Flatten <<<"$dump"; then
	ok "softmax_11_last imports as one Softmax"
else
	bad "softmax_11_last: $dump"
fi

# refusals: exit 1, one line, every expected fragment
for m in "$OUT"/refuse/*.onnx; do
	name=$(basename "$m" .onnx)
	err=$("$KILN" dump "$m" 2>&1 >/dev/null)
	rc=$?
	refusal "refuse $name" $rc "$err" "$OUT/refuse/$name.expect"
done

finish old_opsets
