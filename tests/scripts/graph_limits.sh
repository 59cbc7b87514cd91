#!/usr/bin/env bash
# Hostile graph sizes (tests/gen/hostile_graphs.py, raw protobuf: 10^7
# empty nodes, one node with 10^6 outputs, 10^5 + 1 inputs of one node,
# 4 * 10^6 node outputs in one graph, 10^6 + 1 graph inputs, outputs,
# initializers, function nodes, 4 * 10^6 + 1 value_info entries, 10^4 + 1
# attributes or opset imports) must be refused by `kiln dump` and
# `kiln compile` with exit 1 and one line naming the file and the limit,
# within 20 s and 3 GB of address space (ulimit -v; not under a sanitizer
# build, whose shadow memory needs terabytes of it), before
# protobuf-c allocates the elements.  The limits are PB_LIMITS
# (frontend/onnx_private.h) and README's "Reliability".
# usage: graph_limits.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$(realpath "$1") src=$2 build=$3
need_onnx graph_limits
out="$build/graph_limits"
rm -rf "$out" && mkdir -p "$out"
"$PY" "$src/tests/gen/hostile_graphs.py" "$out" >"$out/names" ||
	{ echo "graph_limits: generating the models failed"; exit 1; }

# address space: about 1 GB for kiln itself (LLVM mapped) plus 2 GB.  Not
# under a sanitizer build: ASan reserves terabytes of address space for its
# shadow memory and aborts under any such limit (the -Werror build checks
# it; the 20 s limit holds in both)
limit_kb=$(( 3 * 1024 * 1024 ))
grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && limit_kb=""

# expect NAME FRAGMENT CMD...: exit 1 within 20 s, one line with the file
# and FRAGMENT
expect() {
	local name=$1 frag=$2 file=$3 rc; shift 3
	( [ -z "$limit_kb" ] || ulimit -v "$limit_kb"; timeout 20 "$@" ) >"$out/o" 2>"$out/e"
	rc=$?
	if [ $rc -eq 124 ]; then bad "$name: killed after 20 s"
	elif [ $rc -ne 1 ]; then bad "$name: exit $rc, expected 1: $(head -c 300 "$out/e")"
	elif [ "$(wc -l <"$out/e")" -ne 1 ]; then bad "$name: $(wc -l <"$out/e") lines on stderr"
	elif ! grep -qF -- "$file" "$out/e"; then bad "$name: message does not name $file: $(cat "$out/e")"
	elif ! grep -qF -- "$frag" "$out/e"; then bad "$name: message does not name '$frag': $(cat "$out/e")"
	else ok "$name: $(cat "$out/e")"
	fi
}

declare -A frag=(
	[nodes_10M]="more than 1000000 nodes in one graph"
	[nodes_1M_plus_1]="more than 1000000 nodes in one graph"
	[outputs_1M_one_node]="more than 100000 outputs of one node"
	[inputs_100k_one_node]="more than 100000 inputs of one node"
	[node_outputs_total]="more than 4000000 node outputs in one graph"
	[graph_inputs]="more than 1000000 graph inputs"
	[graph_outputs]="more than 1000000 graph outputs"
	[initializers]="more than 1000000 initializers in one graph"
	[value_info]="more than 4000000 value_info entries in one graph"
	[attributes]="more than 10000 attributes of one node"
	[opset_imports]="more than 10000 opset imports"
	[function_nodes]="more than 1000000 nodes in one function"
)
while read -r name; do
	f="$out/$name.onnx"
	[ -n "${frag[$name]:-}" ] || { bad "$name: no expected message"; continue; }
	expect "dump $name" "${frag[$name]}" "$f" "$KILN" dump "$f"
	expect "compile $name" "${frag[$name]}" "$f" "$KILN" compile "$f" -o "$out/m.so"
done <"$out/names"
[ -e "$out/m.so" ] && bad "a refused compile wrote $out/m.so"
rm -rf "$out"
finish graph_limits
