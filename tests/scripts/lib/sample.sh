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
true
