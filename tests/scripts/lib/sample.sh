# tests/scripts/lib/sample.sh: whether a slow suite checks its full set or a
# sample.  Sourced with the build folder:
#   . "${BASH_SOURCE%/*}/lib/sample.sh" "$BUILD"
# SAMPLED=1 when BUILD is a sanitizer build (KILN_SANITIZE=ON in its
# CMakeCache.txt: ASan + UBSan make every kiln command 2-3x slower), else
# 0.  A sampling suite says in its header what it leaves out then; the
# -Werror build (scripts/test.sh runs both) checks the full set, and the
# sample keeps every code path under the sanitizers (fewer levels or
# models, not fewer kinds of input).  KILN_TEST_SAMPLE=0 or 1 overrides.
if [ -n "${KILN_TEST_SAMPLE:-}" ]; then
	SAMPLED=$KILN_TEST_SAMPLE
elif grep -q '^KILN_SANITIZE:BOOL=ON' "$1/CMakeCache.txt" 2>/dev/null; then
	SAMPLED=1
else
	SAMPLED=0
fi
[ "$SAMPLED" = 1 ] && echo "(a sample: a sanitizer build or KILN_TEST_SAMPLE=1; KILN_TEST_SAMPLE=0 checks the full set)"
_sample_n=0
# sample_levels: sets `levels` to the levels the next case is checked at,
# "-O0 -O2"; sampled, every case at -O2 and every third also at -O0.  Not
# in a $(...): the case count must live in this shell
sample_levels() {
	_sample_n=$((_sample_n + 1))
	levels="-O0 -O2"
	[ "$SAMPLED" = 1 ] && [ $((_sample_n % 3)) != 1 ] && levels=-O2
	true
}
true
