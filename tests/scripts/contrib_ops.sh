#!/usr/bin/env bash
# ctest: ONNX Runtime's com.microsoft contrib ops (tests/gen/contrib_ops.py,
# numpy references from the contrib op specs): each model matches its
# reference with `kiln check` at -O0 (as imported: the import's rewrite onto
# kiln's ops) and at -O2; its -O0 IR has / lacks the ops its `expect` file
# names; every form kiln does not implement (a KV cache, rotary, a 4-D
# mask, unequal Q/K sizes, used mean/present outputs, unknown attributes,
# ops and domain versions) is refused by `kiln dump` and `kiln compile`
# with exit 1 and one line holding the fragments of its `refuse` file.
# With onnxruntime-node (bench/node_modules, or the node_modules folder
# KILN_ORT_NODE_MODULES names) ONNX Runtime runs every case it can (no
# `no_ort` file) and kiln must match its outputs too at -O0 and -O2
# (`kiln check` on ONNX Runtime's outputs); without it that part is skipped
# (one line says so).  With it and ../shared, the BERT-family models of
# ../shared/models as ONNX Runtime's session optimizer rewrites them
# (level "extended": SkipLayerNormalization, BiasGelu, FastGelu,
# FusedMatMul, FusedGemm) must hold com.microsoft ops, compile, match the
# models' reference outputs at -O0 and -O2, and at -O2 have as many
# KlnAttention and KlnSkipLayerNorm as the original models (the optimized
# model's counts from the --stats of the `kiln check -O2 --stats` that
# checks it, the original's from its `kiln dump -O2`).
# The reference checks: lib/suite.sh's batch_check, 16 folders per `kiln
# check` process, once the refusals, IR checks and ONNX Runtime runs are
# done; each named by its folder under OUT (CASE, ort/CASE, ort_opt/MODEL).
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every case and
# model at -O2, every third also at -O0 (against both references).
#   bash contrib_ops.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
OUT=$BUILD/contrib_ops
need_onnx contrib_ops

rm -rf "$OUT"
"$PY" "$SRC/tests/gen/contrib_ops.py" "$OUT" || { echo "contrib_ops: generating failed"; exit 1; }

ORT_MODULES=${KILN_ORT_NODE_MODULES:-$SRC/bench/node_modules}
ort=0
[ -d "$ORT_MODULES/onnxruntime-node" ] && command -v node >/dev/null && ort=1

# ONNX Runtime's outputs for case $1 (folder $2) as a `kiln check` folder
ort_case() {
	local name=$1 d=$2 od=$OUT/ort/$1
	mkdir -p "$od/test_data_set_0"
	cp "$d/model.onnx" "$od/"
	cp "$d"/test_data_set_0/input_*.pb "$od/test_data_set_0/"
	NODE_PATH=$ORT_MODULES timeout "$TIMEOUT" node "$SRC/bench/ort_run.mjs" "$d/model.onnx" \
		"$d/test_data_set_0" "$od/test_data_set_0" 1 >/dev/null 2>"$od.err"
}

# the folders to check (`kiln check` at -O0, at -O2), checked at the end
at_O0=() at_O2=()
queue() {   # DIR LEVELS
	case " $2 " in *" -O0 "*) at_O0+=("$1") ;; esac
	case " $2 " in *" -O2 "*) at_O2+=("$1") ;; esac
}
# the KlnAttention and KlnSkipLayerNorm counts the ONNX Runtime-optimized
# model must have (the original's), by its folder
declare -A want_fused=()
FUSED="KlnAttention KlnSkipLayerNorm"
folder_line() {   # batch_check's REPORT: the folder named under OUT
	if [ "$3" = PASS ]; then ok "${1#"$OUT"/} ${2%% *}"; else bad "${1#"$OUT"/} ${2%% *}: $4"; fi
	[ -n "${want_fused[$1]:-}" ] && [[ " $2 " == *" -O2 "* ]] || return 0
	# an optimized model at -O2: its counts from this check's --stats
	local m=${1##*/} k a b
	for k in $FUSED; do
		a=$(stats_count "$k") b=$(sed -n "s/.*\b$k=\([0-9]*\).*/\1/p" <<<"${want_fused[$1]}")
		if [ -n "$a" ] && [ "$a" = "$b" ]; then ok "$m optimized: $k=$a as the original"
		else bad "$m optimized: $k=${a:-?}, the original ${b:-?}"; fi
	done
}
# stats_count OP: OP's count in the --stats JSON line of BLOCK ("" without one)
stats_count() {
	local j
	j=$(grep '^{"ops_in"' <<<"$BLOCK" | tail -n 1 | sed -n 's/.*"ops_out": *{\([^}]*\)}.*/\1/p')
	[ -n "$j" ] || return 0
	tr ',' '\n' <<<"$j" | awk -v op="\"$1\"" -F': *' '{ gsub(/^ +/, "", $1) } $1 == op { n = $2 } END { print n + 0 }'
}

for d in "$OUT"/*/; do
	d=${d%/}
	name=$(basename "$d")
	if [ -f "$d/refuse" ]; then
		err=$(timeout "$TIMEOUT" "$KILN" dump "$d/model.onnx" 2>&1 >/dev/null)
		refusal "$name: dump" $? "$err" "$d/refuse"
		err=$(timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$OUT/$name.so" 2>&1 >/dev/null)
		refusal "$name: compile" $? "$err" "$d/refuse"
		continue
	fi
	sample_levels
	queue "$d" "$levels"
	ir=$("$KILN" dump "$d/model.onnx" -O0 2>&1)
	why=""
	while read -r verb op; do
		[ -n "$verb" ] || continue
		if grep -q "= $op(" <<<"$ir"; then has=1; else has=0; fi
		[ "$verb" = has ] && [ $has = 0 ] && why="$why; no $op"
		[ "$verb" = lacks ] && [ $has = 1 ] && why="$why; $op left"
	done <"$d/expect"
	if [ -z "$why" ]; then ok "$name -O0: $(tr '\n' ' ' <"$d/expect")"; else bad "$name -O0$why"; fi
	[ $ort = 1 ] && [ ! -f "$d/no_ort" ] || continue
	if ! ort_case "$name" "$d"; then
		bad "$name: ONNX Runtime failed: $(tail -n 1 "$OUT/ort/$name.err")"
		continue
	fi
	queue "$OUT/ort/$name" "$levels"
done

# FUSED's counts in the -O2 IR of $1 (`kiln dump -O2`: the nodes --stats'
# ops_out counts), as "KlnAttention=N KlnSkipLayerNorm=M"
fused_counts() {
	"$KILN" dump "$1" -O2 2>/dev/null | awk -v ops="$FUSED" '
		{ for (i = 1; i <= n; i++) if (index($0, " = " o[i] "(")) c[i]++ }
		BEGIN { n = split(ops, o, " ") }
		END { for (i = 1; i <= n; i++) printf "%s%s=%d", (i > 1 ? " " : ""), o[i], c[i]; print "" }'
}

SHARED_MODELS="bert-legacy14 bert-legacy17 bert-dynamo albert-legacy14 distilbert-legacy14 roberta-legacy14"
if [ $ort = 1 ] && [ -d "$SRC/../shared/models" ]; then
	for m in $SHARED_MODELS; do
		src=$SRC/../shared/models/$m od=$OUT/ort_opt/$m
		[ -f "$src/model.onnx" ] || { bad "$m: not in ../shared/models"; continue; }
		mkdir -p "$od"
		cp -r "$src"/test_data_set_* "$od/"
		if ! NODE_PATH=$ORT_MODULES timeout "$TIMEOUT" node -e '
const ort = require("onnxruntime-node");
ort.InferenceSession.create(process.argv[1], { graphOptimizationLevel: "extended",
	optimizedModelFilePath: process.argv[2] }).catch(e => { console.error(String(e)); process.exit(1); });' \
			"$src/model.onnx" "$od/model.onnx" >/dev/null 2>"$od.err"; then
			bad "$m: ONNX Runtime could not optimize it: $(tail -n 1 "$od.err")"
			continue
		fi
		ops=$("$PY" -c 'import collections, onnx, sys
m = onnx.load(sys.argv[1])
c = collections.Counter(n.op_type for n in m.graph.node if n.domain == "com.microsoft")
print(" ".join("%s=%d" % kv for kv in sorted(c.items())))' "$od/model.onnx")
		[ -n "$ops" ] || { bad "$m: ONNX Runtime's optimized model has no com.microsoft op"; continue; }
		ok "$m as ONNX Runtime optimizes it: $ops"
		sample_levels
		queue "$od" "$levels"
		# its -O2 check (--stats) must fuse as many as the original
		want_fused[$od]=$(fused_counts "$src/model.onnx")
	done
elif [ $ort = 1 ]; then
	echo "contrib_ops: no ../shared/models: the ONNX Runtime-optimized models are skipped"
fi

# every case, ONNX Runtime's outputs, every optimized model: its reference
[ ${#at_O0[@]} -eq 0 ] || batch_check folder_line -O0 "${at_O0[@]}"
[ ${#at_O2[@]} -eq 0 ] || batch_check folder_line "-O2 --stats" "${at_O2[@]}"

[ $ort = 1 ] || note="(ONNX Runtime part skipped: no onnxruntime-node in $ORT_MODULES)"
finish contrib_ops "${note:-}"
