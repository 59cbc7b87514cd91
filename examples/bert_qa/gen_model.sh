#!/usr/bin/env bash
# Generates the example BERT QA model (2 layers, hidden 64, random weights,
# tests/gen/models.py) with its two reference data sets into OUTDIR/bert_qa.
#   bash examples/bert_qa/gen_model.sh OUTDIR
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: gen_model.sh OUTDIR" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
exec /usr/bin/python3 "$HERE/../../tests/gen/models.py" "$1" bert_qa
