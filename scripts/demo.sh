#!/usr/bin/env bash
# kiln's main job on the bundled model: generate the BERT QA model (with
# reference outputs computed in numpy), compile it, run it, show what it
# computed, check it against the references, and time it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD_DIR=build bash scripts/build.sh >/dev/null
out=build/demo
rm -rf "$out" && mkdir -p "$out"
/usr/bin/python3 tests/gen/models.py "$out" bert_qa >/dev/null
model="$out/bert_qa"

echo "== kiln compile $model/model.onnx -o $out/bert_qa.so"
build/kiln compile "$model/model.onnx" -o "$out/bert_qa.so"
ls -l "$out/bert_qa.so" "$out/bert_qa.h" | awk '{print "   " $5 " bytes  " $9}'

echo "== kiln run $out/bert_qa.so --inputs $model/test_data_set_0 --outputs $out/result"
build/kiln run "$out/bert_qa.so" --inputs "$model/test_data_set_0" --outputs "$out/result"
/usr/bin/python3 scripts/show_qa.py "$model/test_data_set_0" "$out/result"

echo "== kiln check $model"
build/kiln check "$model"

echo "== kiln bench $out/bert_qa.so --batch 1 --seq 128"
build/kiln bench "$out/bert_qa.so" --batch 1 --seq 128 --runs 50 --vocab 1024 | head -2
