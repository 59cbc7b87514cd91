#!/usr/bin/env bash
# ctest: the text IR that `kiln dump` prints compiles back.  For the
# generated models (tests/gen/models.py) and, when present, the exports in
# ../shared/models: `kiln dump --print-after-all` (the graph as imported and
# after every pass of the -O2 pipeline) and `kiln dump -O0`; each printed
# graph
#   - reads back: one `kiln dump X.ir --graph=all LEVEL --print-after-all`
#     per dump (each graph under its "// ===== X.ir graph K =====" line:
#     the graph as read back, before any pass, first, its final IR at LEVEL
#     last) prints the same text (elided constants found, types
#     re-inferred: where a symbolic dim is re-inferred differently, the
#     text without result types must be the same, and the difference is
#     counted and shown); a graph that fails to read back fails, the others
#     are still checked;
#   - its final IR at that level (from the same run) is the
#     ONNX model's, but for the numbers in the names of pass-made constants
#     (counted as "same final IR": the backend gets the same graph);
#   - compiles back (`kiln compile X.ir --graph=K --weights-from=M`) at the
#     level it came from, and the model's outputs on test_data_set_0 are
#     the outputs of the ONNX model compiled directly, bit for bit.  To stay
#     near a minute, the graphs compiled and run are: the final one, and
#     every one whose final IR is not the ONNX model's (the graph as
#     imported among them when its final IR differs: with the same final
#     IR it gives the backend what the final one does, so it is not
#     compiled again; nor is one whose final IR is, byte for byte, that of
#     a graph compiled and run before: the backend would get the same
#     graph); KILN_IR_ROUNDTRIP_ALL=1 compiles and runs every graph.
# A graph the same as one checked before (a pass that changed nothing) is
# not checked again.
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every graph is
# read back and its final IR compared as above (one process per dump), but
# the ../shared exports are not compiled and run; of the generated models
# every third (by name) is compiled and run (which still covers compiling
# from text IR; shared_models and fusions_shared compile and run the
# exports).
# Then bad edits of a dump: each is one line "FILE:LINE:COL: ..." and exit 1.
#   bash ir_roundtrip.sh KILN_BIN SRC_DIR BUILD_DIR
# KILN_IR_SHARED=0 leaves ../shared out.
set -uo pipefail
KILN=$1 SRC=$2 BUILD=$3
OUT=$BUILD/ir_roundtrip
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
TIMEOUT=${KILN_TEST_TIMEOUT:-120}
rm -rf "$OUT"
mkdir -p "$OUT"
/usr/bin/python3 "$SRC/tests/gen/models.py" "$OUT/gen" >/dev/null || { echo "ir_roundtrip: generating failed"; exit 1; }

fail=0 ngraphs=0 ncompiled=0 nretyped=0 nsamefinal=0 nsamecode=0
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

# graph K (1-based) of a multi-graph dump, without the header comments
nth_graph() { awk -v k="$2" '/^graph /{n++} n==k{print} n==k && /^}$/{exit}' "$1"; }

# run SO on DIR's inputs into OUTDIR (quietly); non-zero on failure
run_so() { rm -rf "$3"; mkdir -p "$3"; timeout "$TIMEOUT" "$KILN" run "$1" --inputs "$2" --outputs "$3" >/dev/null; }

same_outputs() {   # ref dir, new dir: every output_K.pb equal byte for byte
	local f n=0
	for f in "$1"/output_*.pb; do
		cmp -s "$f" "$2/$(basename "$f")" || return 1
		n=$((n + 1))
	done
	[ "$n" -gt 0 ]
}

renumbered() { sed -E 's/\.c[0-9]+\b/.cN/g' "$1"; }

# node results' types taken out: ") : f32[a, b], i64[c] @" -> ") @"
untyped() { sed -E 's/ : [a-z0-9?]+(\[[^]]*\]|\?)?(, [a-z0-9?]+(\[[^]]*\]|\?)?)*( @"|$)/\4/' "$1"; }

# split_blocks FILE DIR: DIR/K (K = 1, 2, ...) the Kth "// ===== ... =====" block of FILE
split_blocks() {
	rm -rf "$2"; mkdir -p "$2"
	awk -v d="$2" '/^\/\/ ===== / { if (f) close(f); f = d "/" (++k); printf "" > f; next } f { print > f }' "$1"
}

# check_dump NAME MODEL DATA DUMP LEVEL REF ALL RUN: every graph of DUMP reads
# back and compiled at LEVEL gives REF's outputs (ALL=0: the first, the last and
# those whose final IR is not the ONNX model's; RUN=0: none is compiled)
check_dump() {
	local name=$1 model=$2 data=$3 dump=$4 level=$5 ref=$6 all=$7 run=$8 w=$OUT/$1
	local n k sums="" compiled="" finals="" g=$w/graphs$level b=$w/back$level
	declare -A final_of=()
	# the graphs of DUMP, each in g/K, and their headers (one pass each)
	rm -rf "$g"; mkdir -p "$g"
	awk -v d="$g" '/^graph / { if (f) close(f); f = d "/" (++k) } f { print > f } /^}$/ { if (f) close(f); f = "" }' "$dump"
	n=$(grep -c '^graph ' "$dump")
	[ "$n" -gt 0 ] || { bad "$name: $dump holds no graph"; return; }
	mapfile -t hdrs < <(grep '^// ----- IR' "$dump" | sed 's/^\/\/ ----- IR //; s/ -----$//')
	renumbered "$w/ref$level.ir" > "$w/ref$level.renum"
	# one process reads back every graph: per graph, as read back (before any
	# pass) and, last, its final IR at LEVEL, under its "// ===== DUMP graph
	# K =====" line; a graph that fails says so in its block (stderr merged)
	timeout $((TIMEOUT + 20 * n)) "$KILN" dump "$dump" --graph=all --weights-from="$model" "$level" \
		--print-after-all > "$w/back.out" 2>&1
	local rc=$?
	split_blocks "$w/back.out" "$b"
	for k in $(seq 1 "$n"); do
		ngraphs=$((ngraphs + 1))
		local what sum
		what="$name $level graph $k/$n (${hdrs[k - 1]:-})"
		sum=$(md5sum < "$g/$k" | cut -c1-32)
		local same_final=1
		# the same graph as one checked (a pass that changed nothing): compiled
		# only if it must be and was not
		case " $sums " in *" $sum "*) ;; *)
		sums="$sums $sum"
		if [ ! -f "$b/$k" ] || grep -q '^kiln: ' "$b/$k" || [ "$(grep -c '^graph ' "$b/$k")" -lt 2 ]; then
			bad "$what: dump back (exit $rc): $(grep -h '^kiln: ' "$b/$k" "$w/back.out" 2>/dev/null | head -n 1 | head -c 300)"; continue
		fi
		nth_graph "$b/$k" 1 > "$w/got.ir"
		nth_graph "$b/$k" "$(grep -c '^graph ' "$b/$k")" > "$w/final.ir"
		if ! cmp -s "$g/$k" "$w/got.ir"; then
			if cmp -s <(untyped "$g/$k") <(untyped "$w/got.ir"); then
				nretyped=$((nretyped + 1))
				echo "note $what: re-inferred types: $(diff "$g/$k" "$w/got.ir" | grep '^[<>]' | head -n 2 | cut -c1-200 | tr '\n' ' ')"
			else
				bad "$what: reads back differently: $(diff "$g/$k" "$w/got.ir" | head -n 4 | tr '\n' ' ')"; continue
			fi
		fi
		# its final IR at LEVEL is the ONNX model's (pass-made constants are
		# numbered as they were made: the numbers aside)
		same_final=0
		cmp -s <(renumbered "$w/final.ir") "$w/ref$level.renum" && same_final=1 && nsamefinal=$((nsamefinal + 1))
		final_of[$sum]="$same_final $(md5sum < "$w/final.ir" | cut -c1-32)"
		;; esac
		read -r same_final fsum <<<"${final_of[$sum]:-1 none}"
		[ "$run" = 1 ] || continue
		# (the graph as imported: only when its final IR differs or it is the
		# only one; with the same final IR as the ONNX model's, the backend
		# gets the graph the last one, compiled below, gives it)
		[ "$all" = 1 ] || [ "$k" -eq "$n" ] || [ $same_final = 0 ] || continue
		case " $compiled " in *" $sum "*) continue ;; esac
		compiled="$compiled $sum"
		# the same final IR as a graph compiled and run: the backend gets the
		# same graph, so the same code (KILN_IR_ROUNDTRIP_ALL=1 compiles it)
		if [ "$all" != 1 ]; then
			case " $finals " in *" $fsum "*) nsamecode=$((nsamecode + 1)); continue ;; esac
			finals="$finals $fsum"
		fi
		ncompiled=$((ncompiled + 1))
		if ! timeout "$TIMEOUT" "$KILN" compile "$dump" --graph="$k" --weights-from="$model" "$level" \
			-o "$w/k.so" 2> "$w/err"; then
			bad "$what: compile: $(head -c 300 "$w/err")"; continue
		fi
		run_so "$w/k.so" "$data" "$w/k_out" || { bad "$what: run failed"; continue; }
		same_outputs "$ref" "$w/k_out" || bad "$what: outputs differ from the ONNX model's at $level"
	done
	# every block there, and the exit status says whether any failed
	[ "$(find "$b" -type f | wc -l)" = "$n" ] && { [ $rc = 0 ] || grep -q '^kiln: ' "$w/back.out"; } ||
		bad "$name $level: kiln dump --graph=all: $n graphs, $(find "$b" -type f | wc -l) blocks, exit $rc"
}

check_model() {   # NAME DIR ALL RUN (RUN=0: read back only, nothing compiled)
	local name=$1 d=$2 all=$3 run=$4 w=$OUT/$1 lvl
	local data=$d/test_data_set_0
	mkdir -p "$w"
	for lvl in -O0 -O2; do
		[ "$run" = 1 ] || break
		if ! timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" "$lvl" -o "$w/ref$lvl.so" 2> "$w/err" ||
			! run_so "$w/ref$lvl.so" "$data" "$w/ref$lvl"; then
			bad "$name: the ONNX model at $lvl: $(head -c 300 "$w/err")"; return
		fi
	done
	"$KILN" dump "$d/model.onnx" -O0 > "$w/ref-O0.ir" 2> "$w/err" &&
		"$KILN" dump "$d/model.onnx" -O2 --print-after-all > "$w/all.ir" 2> "$w/err" || { bad "$name: dump: $(cat "$w/err")"; return; }
	# the -O2 IR: the last graph --print-after-all printed (`kiln dump -O2`
	# prints the same text; not run again)
	nth_graph "$w/all.ir" "$(grep -c '^graph ' "$w/all.ir")" > "$w/ref-O2.ir"
	cp "$w/ref-O0.ir" "$w/O0.ir"   # the -O0 dump: one graph, as printed
	local before=$fail
	check_dump "$name" "$d/model.onnx" "$data" "$w/all.ir" -O2 "$w/ref-O2" "$all" "$run"
	check_dump "$name" "$d/model.onnx" "$data" "$w/O0.ir" -O0 "$w/ref-O0" 0 "$run"
	[ $fail -eq "$before" ] && echo "PASS $name ($(grep -c '^graph ' "$w/all.ir") graphs at -O2, 1 at -O0$([ "$run" = 1 ] || echo ", read back only: sampled"))"
}

ngen=0
for d in "$OUT"/gen/*/; do
	d=${d%/}
	ngen=$((ngen + 1))
	run=1
	[ "$SAMPLED" = 1 ] && [ $((ngen % 3)) != 1 ] && run=0
	check_model "$(basename "$d")" "$d" "${KILN_IR_ROUNDTRIP_ALL:-0}" $run
done
SHARED=$SRC/../shared/models
if [ "${KILN_IR_SHARED:-1}" != 0 ] && [ -d "$SHARED" ]; then
	for d in "$SHARED"/*/; do
		d=${d%/}
		[ -f "$d/model.onnx" ] && [ -d "$d/test_data_set_0" ] || continue
		check_model "shared-$(basename "$d")" "$d" "${KILN_IR_ROUNDTRIP_ALL:-0}" $((1 - SAMPLED))
	done
else
	echo "ir_roundtrip: ../shared absent (or KILN_IR_SHARED=0): generated models only"
fi

# ---- bad edits: one line FILE:LINE:COL, exit 1 -----------------------------
M=$OUT/gen/bert_qa/model.onnx
E=$OUT/edits
mkdir -p "$E"
# (check_model took each -O2 IR from --print-after-all's last graph: that is
# what `kiln dump -O2` prints)
"$KILN" dump "$M" -O2 > "$E/O2.ir" 2>&1
cmp -s "$E/O2.ir" "$OUT/bert_qa/ref-O2.ir" ||
	bad "kiln dump -O2 differs from the last graph of --print-after-all: $(diff "$E/O2.ir" "$OUT/bert_qa/ref-O2.ir" | head -n 4 | tr '\n' ' ')"
"$KILN" dump "$M" --print-after=fuse-qkv > "$E/qkv.ir"
# expect_err NAME FILE WANT [kiln compile options]: exit 1, one line
# "kiln: FILE:LINE:COL: ...WANT..."
expect_err() {
	local name=$1 f=$2 want=$3
	shift 3
	"$KILN" compile "$f" -o "$E/x.so" "$@" > "$E/out" 2> "$E/err"
	local rc=$?
	local lines
	lines=$(wc -l < "$E/err")
	if [ $rc -ne 1 ] || [ "$lines" -ne 1 ] || ! grep -qE "^kiln: $f:[0-9]+:[0-9]+: " "$E/err" ||
		! grep -qF -- "$want" "$E/err"; then
		bad "edit $name: want exit 1 and one line '$f:L:C: ...$want...', got exit $rc: $(head -n 3 "$E/err" | tr '\n' ' ')"
	else
		echo "PASS edit $name: $(cat "$E/err")"
	fi
}
edit() { sed "$1" "$E/qkv.ir" > "$E/$2.ir"; cmp -s "$E/qkv.ir" "$E/$2.ir" && bad "edit $2: sed changed nothing"; }

edit 's/^\(  %"\/Add_26" = KlnLayerNorm(.*\)$/\1 junk/' syntax
expect_err syntax "$E/syntax.ir" "expected end of line" --weights-from="$M"
edit '0,/KlnLayerNorm(/s//KlnLayerNorn(/' unknown_op
expect_err unknown_op "$E/unknown_op.ir" "unknown op 'KlnLayerNorn'" --weights-from="$M"
# an f32 + i64 Add: the verifier, at the node's line
edit 's/Add(%"\/Gather_11", %"\/Gather_12")/Add(%"\/Gather_11", %input_ids)/' operand_type
expect_err operand_type "$E/operand_type.ir" "node '/Add_13' (Add)" --weights-from="$M"
# a declared result type that is not what the node gives
edit 's/\(KlnLayerNorm(.*\) : f32\[batch, sequence, 64\] @"\/Add_26"/\1 : f32[batch, sequence, 65] @"\/Add_26"/' result_type
expect_err result_type "$E/result_type.ir" "is declared f32[batch, sequence, 65], but node '/Add_26' (KlnLayerNorm) gives f32[batch, sequence, 64]" --weights-from="$M"
# a name the model does not have, with content no pass makes (a renamed
# weight whose hash is kept is still found, by its content)
edit 's/%emb\.word\b/%emb.wrd/g; s/^\(  %emb\.wrd = const f32\[1024, 64\] #hash<\)8/\19/' missing_weight
expect_err missing_weight "$E/missing_weight.ir" "constant %emb.wrd (f32[1024, 64] #hash<9f87490078abf4e9>): $M has no tensor of that name" --weights-from="$M"
edit 's/^\(  %emb\.word = const f32\[1024, 64\] #hash<\)8/\19/' wrong_hash
expect_err wrong_hash "$E/wrong_hash.ir" "other content" --weights-from="$M"
edit 's/^  %emb\.word = const f32\[1024, 64\]/  %emb.word = const f32[1024, 32]/' weight_shape
expect_err weight_shape "$E/weight_shape.ir" "tensor 'emb.word' of $M is f32[1024, 64], the IR says f32[1024, 32]" --weights-from="$M"
expect_err no_weights "$E/qkv.ir" "constant %emb.word is elided (#hash<8f87490078abf4e9>)"
"$KILN" dump "$M" --print-after=dce > "$E/dce.ir"
expect_err several_graphs "$E/dce.ir" "a second graph: the text holds 3" --weights-from="$M"
# usage: --weights-from needs text IR input
"$KILN" compile "$M" -o "$E/x.so" --weights-from="$M" 2> "$E/err"
rc=$?
[ $rc -eq 2 ] && grep -q "is for text IR input" "$E/err" || bad "--weights-from with an ONNX input: exit $rc: $(cat "$E/err")"
"$KILN" check "$OUT/gen/bert_qa" --graph=2 2> "$E/err"
rc=$?
[ $rc -eq 2 ] && grep -q "are for text IR input" "$E/err" || bad "check --graph: exit $rc: $(cat "$E/err")"
# a # comment (the absorbed-node notes kiln dump may print) is skipped
sed 's/^\(  %"\/Add_26" = KlnLayerNorm(.*\)$/\1  # absorbed: \/ReduceMean_16, \/Sub_17/' "$E/qkv.ir" > "$E/comment.ir"
"$KILN" compile "$E/comment.ir" --weights-from="$M" -o "$E/c.so" 2> "$E/err" || bad "a # comment: $(cat "$E/err")"

echo "ir_roundtrip: $ngraphs graphs, the distinct ones read back ($nretyped with re-inferred symbolic dims), $nsamefinal with the same final IR, $ncompiled compiled and run ($nsamecode more not compiled: the final IR of one compiled), $fail failures"
[ "$ngraphs" -gt 0 ] && [ $fail -eq 0 ]
