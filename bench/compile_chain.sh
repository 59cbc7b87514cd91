#!/usr/bin/env bash
# Compile time and peak memory against graph size: `kiln compile` of the
# Add/Relu chains of tests/gen/chain.py and of the big forms of
# tests/gen/big_graphs.py (mixed elementwise chains with broadcasts, many
# outputs, a wide Concat/Sum, many initializers, shape-op chains, Constant
# nodes, spelled-out LayerNorms), each compiled once at -O2 (time and peak
# RSS from /usr/bin/time) and checked against its numpy reference with
# `kiln check` at -O0 and -O2 (`wide` has more outputs than `kiln check`
# takes: checked through the Python package).  Prints a markdown table.
#   bash bench/compile_chain.sh [BUILD_DIR] [FORM:N ...]
# FORM is `chain` or a form of big_graphs.py; default: a table of every
# form at two to four sizes (several minutes on 2 cores).  A compile that
# takes over KILN_BENCH_TIMEOUT seconds (default 300) is stopped.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
shift || true
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(chain:1000 chain:10000
	mixed:1000 mixed:4000 mixed:16000 mixed:64000
	wide:1000 wide:4000 concat:1000 concat:10000 inits:10000 inits:40000
	reshape:1000 reshape:10000 constants:10000 constants:40000
	layernorm:100 layernorm:1000 layernorm:4000)
case $build in /*) ;; *) build="$root/$build" ;; esac
kiln="$build/kiln"
[ -x "$kiln" ] || { echo "compile_chain: $kiln not found (build first)"; exit 1; }
out=$(mktemp -d "${TMPDIR:-/tmp}/kiln-chain-XXXXXX")
trap 'rm -rf "$out"' EXIT
py=/usr/bin/python3
limit=${KILN_BENCH_TIMEOUT:-300}   # seconds one compile may take

# `kiln check` for one output at most 64 (the CLI's limit), else numpy
# through the Python package
check() {
	local d=$1 lvl=$2
	if [ "$(ls "$d/test_data_set_0" | grep -c '^output_')" -le 64 ]; then
		"$kiln" check "$d" "$lvl" >/dev/null 2>&1
		return
	fi
	"$kiln" compile "$d/model.onnx" -o "$d/m$lvl.so" "$lvl" &&
	KILN_LIB="$build/libkiln.so" PYTHONPATH="$root/python" "$py" - "$d" "$d/m$lvl.so" <<'EOF'
import glob, sys, numpy as np, kiln
from onnx import numpy_helper, load_tensor
d, so = sys.argv[1:]
t = lambda p: numpy_helper.to_array(load_tensor(p))
x = t(f"{d}/test_data_set_0/input_0.pb")
outs = kiln.load(so).session(threads=1).run(None, {"x": x})
refs = [t(f"{d}/test_data_set_0/output_{i}.pb") for i in range(len(outs))]
sys.exit(0 if all(np.allclose(o, r, atol=1e-4, rtol=1e-3) for o, r in zip(outs, refs)) else 1)
EOF
}

# CPU seconds (user + sys, the linker's too) as well as wall: on a shared
# machine the wall time says more about the load than about kiln
echo "| form | N | nodes | wall s | CPU s | CPU s per 1000 nodes | peak RSS MB | -O0/-O2 vs numpy |"
echo "|---|---|---|---|---|---|---|---|"
for c in "${cases[@]}"; do
	form=${c%%:*} n=${c##*:} d="$out/$form$n"
	if [ "$form" = chain ]; then
		"$py" "$root/tests/gen/chain.py" "$d" "$n" >/dev/null
		nodes=$n
	else
		nodes=$("$py" "$root/tests/gen/big_graphs.py" "$form" "$n" "$d" | sed 's/^[a-z]*: \([0-9]*\) nodes.*/\1/')
	fi
	if ! /usr/bin/time -f '%e %U %S %M' -o "$d/time" timeout "$limit" "$kiln" compile "$d/model.onnx" -o "$d/m.so" 2>"$d/err"; then
		why=$(head -c 200 "$d/err")
		[ -n "$why" ] || why="over ${limit} s (stopped)"
		echo "| $form | $n | $nodes | refused: $why | | | $(($(tail -n 1 "$d/time" | cut -d' ' -f4) / 1024)) | |"
		rm -rf "$d"
		continue
	fi
	ok=ok
	for lvl in -O0 -O2; do check "$d" $lvl || ok="MISMATCH $lvl"; done
	read -r s us ss kb <"$d/time"
	awk -v f="$form" -v n="$n" -v nodes="$nodes" -v s="$s" -v us="$us" -v ss="$ss" -v kb="$kb" -v ok="$ok" \
		'BEGIN { cpu = us + ss
		         printf "| %s | %d | %d | %.2f | %.2f | %.2f | %d | %s |\n", f, n, nodes, s, cpu, cpu * 1000 / nodes, kb / 1024, ok }'
	rm -rf "$d"
done
