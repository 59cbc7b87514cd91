# tests/scripts/lib/suite.sh: what the script suites share.  A suite sources
# it right after `set -uo pipefail`:
#   . "${BASH_SOURCE%/*}/lib/suite.sh"
# (a folder of its own: every tests/scripts/*.sh is a ctest).
#
#   TIMEOUT  seconds one kiln command may take (KILN_TEST_TIMEOUT, default 300)
#   PY       Debian's python3, which has onnx and numpy (the python3 first
#            on PATH may not)
#   ok MSG / bad MSG   a passed / failed check: counted in pass / fail,
#            printed as one line "PASS MSG" / "FAIL MSG"
#   need_onnx NAME               exit 77 (skipped) when PY lacks onnx or numpy
#   need_shared NAME SRC         MODELS=SRC/../shared/models (the real
#            exports); exit 77 without ../shared, 1 without its models/
#   gen_models SRC OUT [MODEL...]  tests/gen/models.py's models (all, or the
#            ones named) into OUT/MODEL; exit 1 with one line if that fails
#   check_alone DIR [OPTION...]  `$KILN check DIR OPTION...` within
#            TIMEOUT (run_alone); its status, and on failure its last 3
#            lines (or "timeout after Ns") on stdout as one line
#   check_model LABEL DIR [OPTION...]  check_alone DIR OPTION... must pass
#   check_levels LABEL DIR  check_model "LABEL -O0" and "LABEL -O2" (in a
#            suite that sourced lib/sample.sh: its sample_levels)
#   gen_cases NAME GEN OUT [ARG...]  OUT emptied, then `$PY GEN OUT ARG...`
#            (stdout dropped); exit 1 with one line when it fails
#   check_cases NAME OUT [HOOK]  for every OUT/CASE/ holding a model.onnx:
#            `HOOK CASE OUT/CASE` when given (the suite's own checks of the
#            case; a status other than 0 skips the next step), then, as
#            check_levels, "CASE -O0" and "CASE -O2" (or sample_levels'),
#            after every hook ran: check_batch per level; a failure when
#            there is no case
#   batch_check REPORT OPTS DIR...  `$KILN check DIR... OPTS` (OPTS: a
#            level, and other options, split at spaces), BATCH folders
#            (KILN_CHECK_BATCH, default 16) per process, TIMEOUT per
#            process; then per folder, in order, `REPORT DIR OPTS PASS` or
#            `REPORT DIR OPTS FAIL MSG`: "DIR: ok" passes; any other folder
#            (a failure, or no line: the batch crashed or timed out) is
#            checked again alone by run_alone (alone_msg its MSG), and one that
#            FAILED in the batch but passes alone fails ("in a batch only":
#            state leaking from one model to the next is a kiln bug).
#            REPORT runs in this shell (it may count), with BLOCK set to
#            the folder's block of the output (OPTS with --stats,
#            --explain=, --print-after=...: `kiln check` prints them per
#            folder under "// ===== DIR ====="; from the run alone when
#            there was one; "" without such options), so a suite reads a
#            folder's counts and IR from the compile that checks it;
#            node_tests.sh runs batches under xargs -P with its own REPORT
#   check_batch OPTS DIR...  batch_check with ok/bad lines "CASE OPTS" /
#            "CASE OPTS: MSG"
#   check_generated NAME GEN OUT [HOOK]  gen_cases NAME GEN OUT, then
#            check_cases NAME OUT HOOK
#   refusal LABEL RC ERR FRAGMENTS  a refusal as it must be: exit status RC
#            1, ERR (its stderr) one line holding every line of the file
#            FRAGMENTS
#   expect_refusal LABEL RC MSG REGEX RES  a run refused as it must be: exit
#            status RC 1, MSG (its stderr) one line matching the extended
#            regex REGEX, no RES/output_0.pb written
#   finish NAME [MORE]  the suite's last line, "NAME: P passed, F failed
#            MORE"; its status is the suite's: 0 when a check ran and none
#            failed

TIMEOUT=${KILN_TEST_TIMEOUT:-300}
BATCH=${KILN_CHECK_BATCH:-16}
PY=/usr/bin/python3
pass=0 fail=0

ok() { pass=$((pass + 1)); echo "PASS $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

need_onnx() {
	"$PY" -c "import onnx, numpy" 2>/dev/null ||
		{ echo "$1: python3-onnx or numpy missing: skipped"; exit 77; }
}

# need_ort NAME SRC: sets ORT_MODULES (KILN_ORT_NODE_MODULES, else
# SRC/bench/node_modules); skips the suite without onnxruntime-node or node
need_ort() {
	ORT_MODULES=${KILN_ORT_NODE_MODULES:-$2/bench/node_modules}
	if [ ! -d "$ORT_MODULES/onnxruntime-node" ] || ! command -v node >/dev/null; then
		echo "$1: no onnxruntime-node in $ORT_MODULES (or no node): skipped"
		exit 77
	fi
}

need_shared() {
	[ -d "$2/../shared" ] || { echo "$1: $2/../shared absent, skipping"; exit 77; }
	MODELS=$2/../shared/models
	[ -d "$MODELS" ] || { echo "$1: $MODELS absent"; exit 1; }
}

gen_models() {
	local src=$1 out=$2; shift 2
	"$PY" "$src/tests/gen/models.py" "$out" "$@" >/dev/null ||
		{ echo "FAIL generating ${*:-the models} (tests/gen/models.py)"; exit 1; }
}

# alone_msg RC OUT: the one line of a failed `kiln check` (status RC, output OUT)
alone_msg() {
	if [ "$1" -eq 124 ]; then echo "timeout after ${TIMEOUT}s"; else echo "$2" | tail -n 3 | tr '\n' ' '; fi
}

# run_alone DIR [OPTION...]: `$KILN check` within TIMEOUT, its output (2>&1)
# in ALONE_OUT and its status in ALONE_RC (no subshell: the caller reads them)
run_alone() {
	ALONE_OUT=$(timeout "$TIMEOUT" "$KILN" check "$@" 2>&1)
	ALONE_RC=$?
}

check_alone() {
	run_alone "$@"
	[ $ALONE_RC -eq 0 ] && return 0
	alone_msg $ALONE_RC "$ALONE_OUT"
	return $ALONE_RC
}

check_model() {
	local label=$1 msg; shift
	if msg=$(check_alone "$@"); then ok "$label"; else bad "$label: $msg"; fi
}

check_levels() {
	local o levels="-O0 -O2"
	# a suite that sourced lib/sample.sh: its levels for this case
	declare -F sample_levels >/dev/null && sample_levels
	for o in $levels; do check_model "$1 $o" "$2" "$o"; done
}

gen_cases() {
	local name=$1 gen=$2 out=$3; shift 3
	rm -rf "$out"
	"$PY" "$gen" "$out" "$@" >/dev/null ||
		{ echo "$name: generating failed (${gen##*/})"; exit 1; }
}

check_cases() {
	local name=$1 out=$2 hook=${3:-} d n=0 o
	local -a at_O0=() at_O2=()
	for d in "$out"/*/; do
		d=${d%/}
		[ -f "$d/model.onnx" ] || continue
		n=$((n + 1))
		if [ -n "$hook" ] && ! "$hook" "${d##*/}" "$d"; then
			continue
		fi
		local levels="-O0 -O2"
		declare -F sample_levels >/dev/null && sample_levels
		for o in $levels; do
			case $o in -O0) at_O0+=("$d") ;; *) at_O2+=("$d") ;; esac
		done
	done
	[ ${#at_O0[@]} -eq 0 ] || check_batch -O0 "${at_O0[@]}"
	[ ${#at_O2[@]} -eq 0 ] || check_batch -O2 "${at_O2[@]}"
	[ $n -gt 0 ] || bad "$name: no case (a model.onnx in a folder) in $out"
}

batch_check() {
	local report=$1 opts=$2 out d i
	shift 2
	local -a dirs=("$@") part
	for ((i = 0; i < ${#dirs[@]}; i += BATCH)); do
		part=("${dirs[@]:i:BATCH}")
		# a whole batch gets TIMEOUT: a hang costs one batch and the reruns
		# shellcheck disable=SC2086
		out=$'\n'$(timeout "$TIMEOUT" "$KILN" check "${part[@]}" $opts 2>/dev/null)$'\n'
		for d in "${part[@]}"; do
			if [[ $out == *$'\n'"$d: ok"$'\n'* ]]; then
				block_of "$d" "$out"
				"$report" "$d" "$opts" PASS
				continue
			fi
			# not ok in the batch: checked again alone
			# shellcheck disable=SC2086
			run_alone "$d" $opts
			block_of "$d" $'\n'"$ALONE_OUT"
			if [ $ALONE_RC -ne 0 ]; then
				"$report" "$d" "$opts" FAIL "$(alone_msg $ALONE_RC "$ALONE_OUT")"
			elif [[ $out == *$'\n'"$d: FAILED"$'\n'* ]]; then
				"$report" "$d" "$opts" FAIL "fails in a batch only (kiln check ${part[*]} $opts), passes alone"
			else
				"$report" "$d" "$opts" PASS
			fi
		done
	done
}

# block_of DIR OUT: BLOCK set to DIR's block of OUT, `kiln check` output
# (the lines under "// ===== DIR =====", which --stats, --explain and
# --print-* give each folder), "" when it has none
block_of() {
	BLOCK=""
	[[ $2 == *$'\n// ===== '* ]] || return 0
	BLOCK=$(awk -v h="// ===== $1 =====" '$0 == h { on = 1; next } /^\/\/ ===== / { on = 0 } on' <<<"$2")
}

case_line() { if [ "$3" = PASS ]; then ok "${1##*/} $2"; else bad "${1##*/} $2: $4"; fi; }
check_batch() { batch_check case_line "$@"; }

check_generated() {
	gen_cases "$1" "$2" "$3"
	check_cases "$1" "$3" "${4:-}"
}

refusal() {
	local label=$1 rc=$2 err=$3 frags=$4 why="" frag
	[ "$rc" -eq 1 ] || why="exit $rc, expected 1"
	[ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || why="$why; not one line"
	while IFS= read -r frag; do
		[ -n "$frag" ] && ! grep -qF -- "$frag" <<<"$err" && why="$why; lacks '$frag'"
	done <"$frags"
	if [ -z "$why" ]; then ok "$label: $err"; else bad "$label: $why: $err"; fi
}

expect_refusal() {
	local label=$1 rc=$2 msg=$3 want=$4 res=$5
	if [ "$rc" -eq 1 ] && [ "$(wc -l <<<"$msg")" -eq 1 ] && grep -Eq -- "$want" <<<"$msg" &&
		[ ! -e "$res/output_0.pb" ]; then
		ok "$label: $msg"
	else
		bad "$label: exit $rc: $msg"
	fi
}

finish() {
	echo "$1: $pass passed, $fail failed${2:+ $2}"
	[ $((pass + fail)) -gt 0 ] && [ $fail -eq 0 ]
}
