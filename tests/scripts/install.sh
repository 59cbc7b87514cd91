#!/usr/bin/env bash
# cmake --install into a temporary prefix, then, with the source and build
# trees hidden (an empty tmpfs mounted over them in a private mount
# namespace), from another folder: the installed kiln compiles the
# bundled BERT QA model (finding its runtime library beside itself), and
# the example C program is built against the installed package twice,
# through find_package(kiln) and through pkg-config, and run; both give
# the answer span and logits that `kiln run` gives.  The installed Python
# package (/usr/bin/python3, PYTHONPATH the prefix's dist-packages) finds the
# installed libkiln.so and kiln, compiles the model and answers the same.
# usage: install.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
kiln=$1 src=$(realpath "$2") build=$(realpath "$3")
T=$(mktemp -d /tmp/kiln-install-XXXXXX)
trap 'rm -rf "$T"' EXIT
cmake --install "$build" --prefix "$T/prefix" >/dev/null || { echo "FAIL cmake --install"; exit 1; }
pydir=$(sed -n 's/^KILN_PYTHON_DIR:[A-Z]*=//p' "$build/CMakeCache.txt")
for f in bin/kiln lib/kiln/libkiln_rt.a lib/libkiln.a lib/libkiln.so include/kiln.h lib/cmake/kiln/kilnConfig.cmake lib/pkgconfig/kiln.pc \
         "$pydir/kiln/__init__.py" "$pydir/kiln/_install.py"; do
  [ -f "$T/prefix/$f" ] || { echo "FAIL not installed: $f"; exit 1; }
done
echo "ok   installed bin/kiln, lib/kiln/libkiln_rt.a, lib/libkiln.a, lib/libkiln.so, include/kiln.h, the CMake package, kiln.pc, the Python package in $pydir"
mkdir -p "$T/work" "$T/proj"
/usr/bin/python3 "$src/tests/gen/models.py" "$T/work" bert_qa >/dev/null || exit 1
cp "$src/examples/bert_qa/main.c" "$T/proj/main.c"
cat > "$T/proj/qa.py" <<'PY'
import os, sys
import numpy as np
import kiln
prefix = sys.argv[1]
assert kiln.__file__.startswith(prefix + "/"), kiln.__file__
assert kiln.cli_path() == prefix + "/bin/kiln", kiln.cli_path()
kiln.compile("bert_qa/model.onnx", "py_qa.so")
assert kiln.library_path().startswith(prefix + "/lib"), kiln.library_path()
ids = np.array([[101, 7, 45, 300, 102, 9, 88, 1000, 3, 102]], dtype=np.int64)
tt = (np.arange(ids.shape[1]) > 4).astype(np.int64)[None]
out = kiln.load("py_qa.so").session(threads=2).run(
    {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": tt})
print("answer span [%d, %d]" % (out["start_logits"][0].argmax(), out["end_logits"][0].argmax()))
PY
san="" py_env=""
if grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt"; then
  san="-fsanitize=address,undefined"
  # the instrumented libkiln.so in an uninstrumented Python
  py_env="LD_PRELOAD='$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)' ASAN_OPTIONS=detect_leaks=0"
fi
cat > "$T/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.20)
project(qa C)
find_package(kiln 0.1 REQUIRED)
add_executable(qa main.c)
target_include_directories(qa PRIVATE \${MODEL_DIR})
target_compile_options(qa PRIVATE $san)
target_link_options(qa PRIVATE $san)
target_link_libraries(qa PRIVATE kiln::kiln)
CM
cat > "$T/inside.sh" <<SH
set -eu
cd "$T/work"
"$T/prefix/bin/kiln" compile bert_qa/model.onnx -o bert_qa.so
cmake -S "$T/proj" -B "$T/proj/build" -DCMAKE_PREFIX_PATH="$T/prefix" -DMODEL_DIR="$T/work" >/dev/null
cmake --build "$T/proj/build" >/dev/null
PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" cc -std=c11 -Wall -Wextra -Werror $san -I"$T/work" \
  "$T/proj/main.c" -o "$T/qa_pc" \$(PKG_CONFIG_PATH="$T/prefix/lib/pkgconfig" pkg-config --cflags --libs kiln)
"$T/proj/build/qa" bert_qa.so 101 7 45 300 102 9 88 1000 3 102 > "$T/out_cmake.txt"
"$T/qa_pc" bert_qa.so 101 7 45 300 102 9 88 1000 3 102 > "$T/out_pc.txt"
"$T/prefix/bin/kiln" run bert_qa.so --inputs bert_qa/test_data_set_0 --outputs "$T/res" >/dev/null
env -u KILN_LIB -u KILN_CLI PYTHONDONTWRITEBYTECODE=1 PATH=/usr/bin:/bin PYTHONPATH="$T/prefix/$pydir" \
  $py_env /usr/bin/python3 "$T/proj/qa.py" "$T/prefix" > "$T/out_py.txt"
SH
hidden="no"
if [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  mounts="mount -t tmpfs none '$src'"
  case "$build/" in "$src"/*) ;; *) mounts="$mounts && mount -t tmpfs none '$build'" ;; esac
  unshare -m sh -c "$mounts && [ ! -e '$build/CMakeCache.txt' ] && bash '$T/inside.sh'" || { echo "FAIL inside the namespace with the trees hidden"; exit 1; }
  hidden="yes"
else
  bash "$T/inside.sh" || { echo "FAIL using the installed package"; exit 1; }
fi
grep -q '^answer span \[' "$T/out_cmake.txt" || { echo "FAIL the find_package program printed no answer"; cat "$T/out_cmake.txt"; exit 1; }
cmp -s "$T/out_cmake.txt" "$T/out_pc.txt" || { echo "FAIL the find_package and pkg-config programs differ"; exit 1; }
echo "ok   installed kiln compiled the model; programs built with find_package(kiln) and pkg-config agree: $(grep '^answer span' "$T/out_cmake.txt") (source and build trees hidden: $hidden)"
grep '^answer span' "$T/out_cmake.txt" | cmp -s - "$T/out_py.txt" || { echo "FAIL the installed Python package answered differently: $(cat "$T/out_py.txt")"; exit 1; }
echo "ok   the installed Python package compiled and ran the model with the same answer"
[ -f "$T/res/output_0.pb" ] || { echo "FAIL installed kiln run wrote nothing"; exit 1; }
exit 0
