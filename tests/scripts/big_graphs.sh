#!/usr/bin/env bash
# Big graphs (tests/gen/big_graphs.py) at sizes CI affords: every form
# compiled and checked against numpy at -O0 and -O2 (`wide`, over the 64
# outputs `kiln check` takes, through the Python package), and the parts
# that keep LLVM's functions bounded whatever the graph's size:
#  - kiln__plan and kiln__out_shapes call parts (kiln__plan_K,
#    kiln__out_shapes_K), the output copies are functions of 32 outputs;
#  - a node of more than 16 operands takes them in an array (concat);
#  - a node over --max-node-operands (default 256) is refused with one
#    line naming it, and the option raises the limit.
# Times are not asserted (bench/compile_chain.sh reports them).  Under a
# sanitizer build (lib/sample.sh) the sizes are smaller and only -O2 is
# checked.
# usage: big_graphs.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
need_onnx big_graphs
. "${BASH_SOURCE%/*}/lib/sample.sh" "$build"
out="$build/big_graphs"
rm -rf "$out" && mkdir -p "$out"
gen() { "$PY" "$src/tests/gen/big_graphs.py" "$1" "$2" "$out/$1" >/dev/null || { bad "generate $1 $2"; return 1; }; }

if [ "$SAMPLED" = 1 ]; then
	levels=(-O2)
	sizes=(mixed:120 wide:80 concat:40 inits:200 reshape:60 constants:100 layernorm:6)
else
	levels=(-O0 -O2)
	sizes=(mixed:600 wide:200 concat:60 inits:2000 reshape:400 constants:600 layernorm:40)
fi

# the outputs of `wide` through the Python package (numpy), at level $2; in
# a sanitizer build the instrumented libkiln.so needs the sanitizer runtimes
# preloaded into Python (as python.sh does), and Python's own memory at exit
# is not a leak
py_preload=${LD_PRELOAD:-} py_asan=${ASAN_OPTIONS:-}
if grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null; then
	py_preload="$(cc -print-file-name=libasan.so) $(cc -print-file-name=libubsan.so)"
	py_asan=${py_asan:+$py_asan:}detect_leaks=0
fi
py_check() {
	local d=$1 lvl=$2
	timeout "$TIMEOUT" "$kiln" compile "$d/model.onnx" -o "$d/m$lvl.so" "$lvl" || return 1
	KILN_LIB="$build/libkiln.so" PYTHONPATH="$src/python" LD_PRELOAD="$py_preload" ASAN_OPTIONS="$py_asan" \
		"$PY" - "$d" "$d/m$lvl.so" <<'EOF'
import sys, numpy as np, kiln
from onnx import numpy_helper, load_tensor
d, so = sys.argv[1:]
t = lambda p: numpy_helper.to_array(load_tensor(p))
outs = kiln.load(so).session(threads=1).run(None, {"x": t(f"{d}/test_data_set_0/input_0.pb")})
refs = [t(f"{d}/test_data_set_0/output_{i}.pb") for i in range(len(outs))]
bad = [i for i, (o, r) in enumerate(zip(outs, refs)) if not np.allclose(o, r, atol=1e-4, rtol=1e-3)]
print(f"{len(outs)} outputs, {len(bad)} differ from numpy")
sys.exit(1 if bad or len(outs) != len(refs) else 0)
EOF
}

for c in "${sizes[@]}"; do
	form=${c%%:*} n=${c##*:} d="$out/${c%%:*}"
	gen "$form" "$n" || continue
	for lvl in "${levels[@]}"; do
		if [ "$form" = wide ]; then
			if msg=$(py_check "$d" "$lvl" 2>&1); then ok "$form $n $lvl: $msg"; else bad "$form $n $lvl: $msg"; fi
		elif msg=$(timeout "$TIMEOUT" "$kiln" check "$d" "$lvl" 2>&1); then
			ok "$form $n $lvl: $(tail -n 1 <<<"$msg")"
		else
			bad "$form $n $lvl: $(tail -n 3 <<<"$msg")"
		fi
	done
done

# bounded functions: kiln__plan and kiln__out_shapes in parts, the copies
if "$kiln" compile "$out/mixed/model.onnx" --emit=llvm -o "$out/mixed.ll"; then
	parts=$(grep -c '^define internal.*@kiln__plan_[0-9]' "$out/mixed.ll")
	if [ "$parts" -ge 2 ]; then ok "mixed: kiln__plan calls $parts parts"; else bad "mixed: $parts kiln__plan parts, expected >= 2"; fi
else
	bad "mixed: compile --emit=llvm"
fi
if "$kiln" compile "$out/wide/model.onnx" --emit=llvm -o "$out/wide.ll"; then
	parts=$(grep -c '^define internal.*@kiln__out_shapes_[0-9]' "$out/wide.ll")
	if [ "$parts" -ge 2 ]; then ok "wide: kiln__out_shapes calls $parts parts"; else bad "wide: $parts kiln__out_shapes parts, expected >= 2"; fi
else
	bad "wide: compile --emit=llvm"
fi
# concat: the Concat and Sum of 40+ inputs take an argv (3 parameters)
if "$kiln" compile "$out/concat/model.onnx" --emit=llvm -o "$out/concat.ll" -O0; then
	big=$(grep -Ec '%argv[0-9]* = alloca \[[0-9]+ x ptr\]' "$out/concat.ll")
	if [ "$big" -ge 1 ]; then ok "concat: $big calls pass an argv"; else bad "concat: no call passes an argv"; fi
else
	bad "concat: compile --emit=llvm"
fi

# the operand limit: refused with one line naming the node, raised by the option
ops=$("$PY" -c "
import onnx; m = onnx.load('$out/concat/model.onnx')
print(max(len(n.input) + len(n.output) for n in m.graph.node))")
"$kiln" compile "$out/concat/model.onnx" -o "$out/lim.so" --max-node-operands=$((ops - 1)) 2>"$out/err"
rc=$?
if [ $rc -eq 1 ] && [ "$(wc -l <"$out/err")" -eq 1 ] &&
	grep -q "node '.*' (Concat) has $ops inputs and outputs, over the limit of $((ops - 1)) per node (kiln compile --max-node-operands=N raises it" "$out/err"; then
	ok "limit: $(cat "$out/err")"
else
	bad "limit: exit $rc: $(cat "$out/err")"
fi
if "$kiln" compile "$out/concat/model.onnx" -o "$out/lim.so" --max-node-operands=$ops; then
	ok "limit raised to $ops: compiles"
else
	bad "limit raised to $ops"
fi
"$kiln" compile "$out/concat/model.onnx" -o "$out/lim.so" --max-node-operands=0 2>"$out/err"
rc=$?
if [ $rc -eq 2 ]; then ok "--max-node-operands=0: usage error"; else bad "--max-node-operands=0: exit $rc"; fi
finish big_graphs
