#!/usr/bin/env bash
# ctest: graphs nobody here wrote.  tests/gen/foreign/*.py rebuild other
# projects' fusion test graphs (ONNX Runtime's transformer model generators
# and optimizer test data, onnxscript's exports, experimental-experiment's
# pattern tests; see each file's header for the source), with random
# weights where the originals have placeholders and numpy references
# (tests/gen/npref.py).  tests/gen/foreign/expected.txt says, per graph,
# what kiln does with it today:
#   NAME ok COUNTS...       compiles; `kiln check -O2 --stats` gives at
#                           least the Kln* counts listed and at most the
#                           counts of the plain ops listed (Softmax, Erf,
#                           ... left unfused) and matches the numpy
#                           references, from one compile; `kiln check -O0`
#                           matches them too (not when -O2's final IR is
#                           the IR `kiln dump -O0` prints: the same code)
#   NAME refused MESSAGE    kiln refuses it: exit 1 and one line on stderr
#                           (MESSAGE is that line, the model's path written
#                           MODEL; a different wording is only noted)
# A fused count that drops, an unfused op that grows, a numeric mismatch, a
# crash, or a graph missing from either side fails the test.  For every
# graph that keeps a Softmax, an Erf/Tanh or a ReduceMean/Pow the
# `--explain` lines of the pattern that missed are printed (informational).
# The graphs expected to compile run last: lib/suite.sh's batch_check, 16
# graphs per `kiln check -O2 --stats --print-after=LAST` process (each
# graph's counts and final IR from its block of the output), then the -O0
# checks; one line per graph for its counts, one per level ("PASS NAME -O2").
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build): every graph at
# -O2 (counts and numpy), every third (by name) also at -O0.
#   bash foreign_graphs.sh KILN_BIN SRC_DIR BUILD_DIR
# KILN_FOREIGN_UPDATE=FILE writes the counts and errors of this run to FILE
# in expected.txt's format instead of checking them (to review, then copy).
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
GEN=$SRC/tests/gen/foreign
EXPECT=$GEN/expected.txt
OUT=$BUILD/foreign_graphs
UPDATE=${KILN_FOREIGN_UPDATE:-}
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
"$PY" -c "import onnx, numpy" 2>/dev/null || { echo "foreign_graphs: no python3 with onnx, skipping"; exit 77; }

rm -rf "$OUT"
mkdir -p "$OUT"
# every generator in one python (onnx and numpy load once), each run as
# its own script would be: main([its path, OUT], CASES)
"$PY" - "$GEN" "$OUT" > "$OUT/gen.log" 2>&1 <<'EOF' || { cat "$OUT/gen.log"; echo "foreign_graphs: a generator failed"; exit 1; }
import glob, os, runpy, sys
gen, out = sys.argv[1:3]
sys.path.insert(0, gen)
for g in sorted(glob.glob(os.path.join(gen, "*.py"))):
    if os.path.basename(g) != "common.py":
        print("--", g)
        m = runpy.run_path(g)
        m["main"]([g, out], m["CASES"])
EOF

# COUNTS of the last --stats line's "ops_out": the fused ops, then the plain
# ones (awk, not a python per graph: this loop runs ~100 times)
KEYS="KlnAttention KlnLayerNorm KlnSkipLayerNorm KlnRMSNorm KlnEmbedLayerNorm KlnGelu KlnGemm"
KEYS="$KEYS Softmax Erf Tanh Pow ReduceMean MatMul Gemm Einsum"
counts() {
	tail -n 1 | sed -n 's/.*"ops_out": *{\([^}]*\)}.*/\1/p' | awk -v keys="$KEYS" '
		{ n = split($0, kv, ","); for (i = 1; i <= n; i++) { split(kv[i], p, ":"); gsub(/[" ]/, "", p[1]); v[p[1]] = p[2] + 0 } ok = 1 }
		END { if (!ok) exit 1; m = split(keys, k, " ")
		      for (i = 1; i <= m; i++) printf "%s%s=%d", (i > 1 ? " " : ""), k[i], v[k[i]]; print "" }'
}

# compare GOT with WANT (both COUNTS): Kln* must not drop, others not grow;
# prints what did, fails if anything did
compare() {
	awk -v got="$1" -v want="$2" 'BEGIN {
		n = split(got, a, " "); for (i = 1; i <= n; i++) { split(a[i], p, "="); g[p[1]] = p[2] + 0 }
		n = split(want, a, " "); bad = ""
		for (i = 1; i <= n; i++) {
			split(a[i], p, "="); k = p[1]; w = p[2] + 0
			if ((k ~ /^Kln/ && g[k] < w) || (k !~ /^Kln/ && g[k] > w))
				bad = bad (bad == "" ? "" : ", ") k " " g[k] " (expected " p[2] ")"
		}
		print bad; exit bad != "" }'
}

explain() {   # the --explain lines of the patterns whose root ops are left
	local m=$1 c=$2 p
	for p in attention:Softmax gelu:Erf gelu:Tanh layernorm:ReduceMean rmsnorm:Pow; do
		case " $c " in *" ${p#*:}=0 "*) continue ;; esac
		"$KILN" dump "$m" -O2 --explain="${p%:*}" 2>&1 | grep '^explain' | grep 'not fused' | sed 's/^/    /'
	done | sort -u
}

# one graph (the model directory $1): one expected to compile is queued
# (OUT/NAME.queued) for ok_graph; else its PASS/FAIL/note lines on stdout (a
# FAIL line, or no PASS line, fails it); in update mode its expected.txt
# line in OUT/NAME.update
graph() {
	local d=$1 name want kind rest rc msg lines got
	name=$(basename "$d")
	want=$(grep -E "^$name[[:space:]]" "$EXPECT" 2>/dev/null | head -n 1)
	kind=$(echo "$want" | awk '{print $2}')
	rest=$(echo "$want" | cut -d' ' -f3-)
	# a graph expected to compile: its counts come from the `kiln check -O2
	# --stats` that checks it (ok_graph, below)
	if [ "$kind" = ok ] && [ -z "$UPDATE" ]; then echo queued > "$OUT/$name.queued"; return; fi
	# the counts and refusals: -O2 up to LLVM IR, no machine code (`kiln
	# check -O2` below compiles it all); the final IR (after the last pass,
	# as `kiln dump -O2` prints it) before the --stats line
	timeout "$TIMEOUT" "$KILN" compile "$d/model.onnx" -o "$OUT/$name.ll" --emit=llvm -O2 --stats \
		--print-after="$LAST" 2>"$OUT/$name.err" >"$OUT/$name.stats"
	rc=$?
	if [ $rc -ne 0 ] && [ $rc -ne 1 ]; then
		echo "FAIL $name: compile exit $rc (crash or hang): $(head -c 300 "$OUT/$name.err")"; return
	fi
	if [ $rc -eq 1 ]; then
		msg=$(sed "s#$d/model.onnx#MODEL#g" "$OUT/$name.err")
		lines=$(wc -l < "$OUT/$name.err")
		if [ -n "$UPDATE" ]; then echo "$name refused $msg" > "$OUT/$name.update"; return; fi
		if [ "$lines" != 1 ] || [ "${msg#kiln: }" = "$msg" ]; then
			echo "FAIL $name: refused with $lines lines, not one 'kiln: ...' line"; return
		fi
		if [ "$kind" != refused ]; then
			echo "FAIL $name: refused (expected ${kind:-nothing: not in expected.txt}): $msg"; return
		fi
		[ "$msg" != "$rest" ] && echo "note $name: the error reads '$msg' (expected.txt: '$rest')"
		echo "PASS $name: refused, one line: $msg"
		return
	fi
	got=$(counts < "$OUT/$name.stats") || { echo "FAIL $name: no --stats line"; return; }
	if [ -n "$UPDATE" ]; then echo "$name ok $got" > "$OUT/$name.update"; return; fi
	echo "FAIL $name: compiles (expected ${kind:-nothing: not in expected.txt}): $got"
}

# the last pass of -O2, whose IR --print-after prints: the final IR
LAST=$("$KILN" dump --list-passes | sed -n 's/^-O2: .* //p')
[ -n "$LAST" ] || { echo "foreign_graphs: no -O2 pipeline in kiln dump --list-passes"; exit 1; }
# the graphs, JOBS at a time (KILN_TEST_JOBS, default 2), each one's lines
# in OUT/NAME.result, printed and counted in name order
JOBS=${KILN_TEST_JOBS:-2}
names=()
for d in "$OUT"/*/; do
	d=${d%/}
	names+=("$(basename "$d")")
	graph "$d" > "$OUT/$(basename "$d").result" 2>&1 &
	while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
done
wait
if [ -n "$UPDATE" ]; then
	for name in "${names[@]}"; do cat "$OUT/$name.update" 2>/dev/null; done > "$UPDATE"
	echo "foreign_graphs: wrote $UPDATE"; exit 0
fi
# ok_graph DIR OPTS PASS|FAIL [MSG]: batch_check's REPORT of the -O2 check
# of a graph expected to compile, BLOCK its output of `kiln check -O2 --stats
# --print-after=LAST` (the final IR, then the --stats JSON line): its counts
# against expected.txt (its numpy check's line first); the -O0 check queued (not when
# -O2 leaves the IR as -O0 lowers it: the same code; sampled, every third)
ok_graph() {
	local d=$1 name got bad want rest ir0 k
	name=$(basename "$d")
	k=${index_of[$name]}
	want=$(grep -E "^$name[[:space:]]" "$EXPECT" | head -n 1)
	rest=$(echo "$want" | cut -d' ' -f3-)
	if [ "$3" = PASS ]; then ok "$name -O2"; else bad "$name -O2: $4"; fi
	if ! got=$(counts <<< "$(grep '^{"ops_in"' <<< "$BLOCK")"); then
		bad "$name: expected to compile, no --stats line: $4"; return
	fi
	if ! bad=$(compare "$got" "$rest"); then
		bad "$name: $bad"; explain "$d/model.onnx" "$got"; return
	fi
	ir0=$("$KILN" dump "$d/model.onnx" -O0 2>&1)
	if [ "$ir0" = "$(awk '/^graph /{p=1} p{print} p && /^}$/{exit}' <<< "$BLOCK")" ]; then
		ok "$name: $got, -O2 to match numpy (its IR is -O0's: the same code)"
	elif [ "$SAMPLED" = 1 ] && [ $((k % 3)) != 1 ]; then
		ok "$name: $got, -O2 to match numpy (sampled: not -O0)"
	else
		ok "$name: $got, -O0 and -O2 to match numpy"
		at_O0+=("$d")
	fi
	explain "$d/model.onnx" "$got"
}

declare -A seen index_of
at_O0=() at_O2=()
k=0
for name in "${names[@]}"; do
	k=$((k + 1))
	seen[$name]=1
	if [ -f "$OUT/$name.queued" ]; then
		if [ ! -d "$OUT/$name/test_data_set_0" ]; then
			fail=$((fail + 1)); echo "FAIL $name: expected to compile but has no numpy reference to check it against"
		else
			index_of[$name]=$k
			at_O2+=("$OUT/$name")
		fi
		continue
	fi
	cat "$OUT/$name.result"
	if ! grep -q '^PASS \|^FAIL ' "$OUT/$name.result"; then
		fail=$((fail + 1)); echo "FAIL $name: no verdict (the test script itself broke)"
	elif grep -q '^FAIL ' "$OUT/$name.result"; then
		fail=$((fail + 1))
	else
		pass=$((pass + 1))
	fi
done
while read -r name _; do
	case $name in ''|'#'*) continue ;; esac
	[ -n "${seen[$name]:-}" ] || { fail=$((fail + 1)); echo "FAIL $name: in expected.txt but no generator wrote it"; }
done < "$EXPECT"
# the graphs expected to compile: counts and numpy at -O2 from one compile,
# then numpy at -O0 where ok_graph queued it
[ ${#at_O2[@]} -eq 0 ] || batch_check ok_graph "-O2 --stats --print-after=$LAST" "${at_O2[@]}"
[ ${#at_O0[@]} -eq 0 ] || check_batch -O0 "${at_O0[@]}"
finish foreign_graphs
