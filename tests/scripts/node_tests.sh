#!/usr/bin/env bash
# ctest: the ONNX backend node tests kiln's ops cover (see
# tests/gen/node_tests.sh), each run in three modes (KILN_NODE_MODES,
# default "O0 O2 baked"): `kiln check DIR -O0`, `-O2`, and `-O2` on a copy
# whose inputs are baked in as initializers (tests/gen/node_bake.py), so
# constant folding evaluates the whole graph at compile time.
#   bash node_tests.sh KILN_BIN SRC_DIR BUILD_DIR
# Fails if a test not listed in tests/node_tests_expected_failures.txt
# fails, if fewer than 97% pass in any mode, or if any data-dependent-shape
# test (a shape-deciding input fed at run time: node_select.py
# --list-data-dependent) fails in any mode, listed or not.  A listed name applies to
# every mode, NAME@MODE to one.  An expected failure that passes is
# reported (so the list can shrink) but does not fail the run.
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
KILN=$1 SRC=$2 BUILD=$3
DIR=$BUILD/node_tests
XFAIL=$SRC/tests/node_tests_expected_failures.txt
TIMEOUT=${KILN_TEST_TIMEOUT:-60}
# KILN_NODE_TESTS_STRIDE=N runs every Nth test by name, for a quick look;
# the pass-rate and expected-failure rules apply to the tests run
STRIDE=${KILN_NODE_TESTS_STRIDE:-1}
# Sampled (tests/scripts/lib/sample.sh: a sanitizer build, where
# scripts/test.sh runs -O0 only): every second test by name, every
# data-dependent-shape test, and the first test of each (op, version of
# its schema) pair the others miss: 315 of the 546, every op kind
# and every schema version among them; the -Werror build runs all 546 in
# every mode.
. "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"

MODES=${KILN_NODE_MODES:-O0 O2 baked}

if [ ! -d "$DIR/node" ]; then
	rm -rf "$DIR"
	bash "$SRC/tests/gen/node_tests.sh" "$DIR" || { echo "node_tests: generating failed"; exit 1; }
fi
if [[ " $MODES " == *" baked "* ]] && [ ! -d "$DIR/baked" ]; then
	/usr/bin/python3 "$SRC/tests/gen/node_bake.py" "$DIR/node" "$DIR/baked.tmp" &&
		mv "$DIR/baked.tmp" "$DIR/baked" || { echo "node_tests: baking failed"; exit 1; }
fi

# the sample (stdin: the data-dependent tests' names; argv: the test dirs)
NODE_SAMPLE_PY='
import os, sys
import onnx
from onnx import defs
ddep = set(sys.stdin.read().split())
tests = sys.argv[1:]
def keys(t):   # (domain, op, since_version) of each node
    m = onnx.load(os.path.join(t, "model.onnx"), load_external_data=False)
    ver = {o.domain or "": o.version for o in m.opset_import}
    ks = set()
    for n in m.graph.node:
        dom = n.domain or ""
        try:
            since = defs.get_schema(n.op_type, ver.get(dom, 1), dom).since_version
        except Exception:
            since = ver.get(dom)
        ks.add((dom, n.op_type, since))
    return ks
ks = {t: keys(t) for t in tests}
pick = [t for i, t in enumerate(tests) if i % 2 == 0 or os.path.basename(t) in ddep]
seen = set().union(*(ks[t] for t in pick))
for t in tests:
    if ks[t] - seen:
        pick.append(t)
        seen |= ks[t]
assert seen == set().union(*ks.values())
print("\n".join(sorted(pick)))
'

# the data-dependent-shape tests: every one must pass
declare -A ddep=()
for t in $(/usr/bin/python3 "$SRC/tests/gen/node_select.py" --list-data-dependent "$DIR/node"); do
	ddep[$t]=1
done

# expected failures: "test_name  reason..." per line, # comments
declare -A xfail=()
if [ -f "$XFAIL" ]; then
	while read -r name _; do
		case "$name" in ''|\#*) continue ;; esac
		xfail[$name]=1
	done < "$XFAIL"
fi

# run the checks in parallel (one per core), one result line per test:
# lib/suite.sh's batch_check, BATCH (KILN_CHECK_BATCH, default 16) folders
# of one mode per `kiln check DIR DIR... OPT` (a process start and LLVM's
# set-up per batch, not per test); a folder the batch does not report `ok`
# is checked again alone, and failing in a batch but passing alone fails.
mode_dir() { case $1 in baked) dir=${2%/node/*}/baked/${2##*/} ;; *) dir=$2 ;; esac; }
mode_opt() { case $1 in O0) opt=-O0 ;; *) opt=-O2 ;; esac; }
node_line() {   # DIR OPT PASS|FAIL [MSG]: the line of test DIR in $mode
	if [ "$3" = PASS ]; then echo "PASS ${1##*/}@$mode"; else echo "FAIL ${1##*/}@$mode: $4"; fi
}
run_batch() {   # MODE TEST...
	local mode=$1 t dir opt
	shift
	local -a dirs=()
	for t; do mode_dir "$mode" "$t"; dirs+=("$dir"); done
	mode_opt "$mode"
	batch_check node_line "$opt" "${dirs[@]}"
}
export -f batch_check run_alone alone_msg block_of node_line run_batch mode_dir mode_opt
export KILN TIMEOUT BATCH
tests=$(printf '%s\n' "$DIR"/node/test_*/ | sed 's:/$::' | awk -v s="$STRIDE" '(NR - 1) % s == 0')
if [ "$SAMPLED" = 1 ] && [ "$STRIDE" = 1 ]; then
	# shellcheck disable=SC2086
	tests=$(printf '%s\n' "${!ddep[@]}" | "$PY" -c "$NODE_SAMPLE_PY" $tests) ||
		{ echo "node_tests: sampling failed"; exit 1; }
	echo "node_tests: a sample of $(wc -l <<<"$tests") tests (every op kind and schema version)"
fi
results=$(for m in $MODES; do printf '%s\n' $tests | xargs -n "$BATCH" echo "$m"; done |
	xargs -P "$(nproc)" -L1 bash -c 'run_batch "$@"' _ | sort -k2,2)

pass=0 fail=0 unexpected=0 xpass=0
declare -A mpass=() mtotal=() dpass=() dtotal=()
while read -r status name rest; do
	name=${name%:}
	mode=${name##*@}
	mtotal[$mode]=$(( ${mtotal[$mode]:-0} + 1 ))
	listed=${xfail[$name]:-${xfail[${name%@*}]:-}}
	if [ -n "${ddep[${name%@*}]:-}" ]; then
		dtotal[$mode]=$(( ${dtotal[$mode]:-0} + 1 ))
		[ "$status" = PASS ] && dpass[$mode]=$(( ${dpass[$mode]:-0} + 1 ))
	fi
	if [ "$status" = PASS ]; then
		pass=$((pass + 1))
		mpass[$mode]=$(( ${mpass[$mode]:-0} + 1 ))
		if [ -n "$listed" ]; then
			xpass=$((xpass + 1))
			echo "PASS $name (listed as an expected failure)"
		else
			echo "PASS $name"
		fi
	else
		fail=$((fail + 1))
		if [ -n "$listed" ]; then
			echo "FAIL $name (expected): $rest"
		else
			unexpected=$((unexpected + 1))
			echo "FAIL $name: $rest"
		fi
	fi
done <<<"$results"

total=$((pass + fail))
[ $total -gt 0 ] || { echo "node_tests: no tests found in $DIR/node"; exit 1; }
low=0
for m in $MODES; do
	p=${mpass[$m]:-0} t=${mtotal[$m]:-0}
	echo "node tests at $m: $p of $t pass"
	# pass rate >= 97% in every mode
	[ $((p * 100)) -ge $((t * 97)) ] && [ "$t" -gt 0 ] || { echo "node_tests: pass rate at $m below 97%"; low=1; }
	dp=${dpass[$m]:-0} dt=${dtotal[$m]:-0}
	echo "node tests at $m with data-dependent shapes: $dp of $dt pass"
	[ "$dp" -eq "$dt" ] || { echo "node_tests: a data-dependent-shape test fails at $m"; low=1; }
done
echo "node tests: $pass passed, $fail failed ($unexpected unexpected, $xpass expected failures passed)"
[ $unexpected -eq 0 ] && [ $low -eq 0 ] || exit 1
exit 0
