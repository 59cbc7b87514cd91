#!/usr/bin/env bash
# Builds the example: generates the BERT QA model, compiles it with kiln into
# OUTDIR/bert_qa.so (+ bert_qa.h), and builds OUTDIR/qa from main.c against
# that header and the loader library.
#   bash examples/bert_qa/build.sh KILN_BUILD_DIR OUTDIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$(cd "$1" && pwd) out=$2
mkdir -p "$out"
bash "$here/gen_model.sh" "$out" >/dev/null
"$build/kiln" compile "$out/bert_qa/model.onnx" -o "$out/bert_qa.so"
cc -std=c11 -Wall -Wextra -O2 ${EXAMPLE_CFLAGS:-} -I"$root/runtime" -I"$out" "$here/main.c" \
   -o "$out/qa" "$build/libkiln.a" -ldl
echo "built $out/qa; run: $out/qa $out/bert_qa.so"
