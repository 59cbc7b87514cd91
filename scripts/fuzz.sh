#!/usr/bin/env bash
# Builds the libFuzzer targets with clang-19 and runs them for N seconds in
# all (default 60), a third each: on a seed corpus of small valid and
# malformed models, the ONNX loader (tests/fuzz/fuzz_onnx.c), then what runs
# after it, the -O2 pipeline verified after each pass
# (tests/fuzz/fuzz_pipeline.c; its seeds add tests/gen/models.py's models,
# whose ops the passes fuse); on tests/passes/*.ir, the text IR parser and
# the pipeline after it (tests/fuzz/fuzz_ir.c).  Exit status is non-zero if
# a fuzzer finds a crash, leak or sanitizer report (the reproducer is left in
# BUILD/fuzz-artifacts/).
#
# FUZZ_SEED=N fixes libFuzzer's seed (scripts/test.sh: 1, so that CI
# replays the same mutations: a gate that does not flip on luck; a finding
# there is reproducible); unset, each run draws its own, for the longer
# runs that look for new faults.
#
# usage: scripts/fuzz.sh [SECONDS] [BUILD_DIR]   (BUILD_DIR default: build-fuzz)
set -euo pipefail
SECS=${1:-60}
SEED=()
[ -z "${FUZZ_SEED:-}" ] || SEED=(-seed="$FUZZ_SEED")
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${2:-$SRC/build-fuzz}
PY=/usr/bin/python3

# the libraries need coverage instrumentation too, or libFuzzer only sees
# the target's own few edges; undefined behaviour is fatal (a finding)
CC=clang-19 cmake -S "$SRC" -B "$BUILD" -DKILN_FUZZ=ON -DKILN_TESTS=OFF \
	-DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" >/dev/null
cmake --build "$BUILD" -j2 --target fuzz_onnx fuzz_pipeline fuzz_ir

CORPUS="$BUILD/fuzz-corpus"
ART="$BUILD/fuzz-artifacts"
mkdir -p "$CORPUS" "$ART"
# seeds: the generated bad models (valid controls included) and fuzz seeds
# (tests/gen/make_fuzz_seeds.py) when python3-onnx is there, plus the
# smallest shared model when ../shared is there
if "$PY" -c "import onnx, numpy" 2>/dev/null; then
	SEEDS=$(mktemp -d /tmp/kiln_fuzzseed.XXXXXX)
	"$PY" "$SRC/tests/gen/make_bad_models.py" "$SEEDS/m" >/dev/null
	# nesting around the depth limit, overflowing dims and shapes
	"$PY" "$SRC/tests/gen/make_fuzz_seeds.py" "$SEEDS/m/seeds"
	# small encoders with every fusion's pattern (for the pipeline)
	"$PY" "$SRC/tests/gen/models.py" "$SEEDS/m/models" >/dev/null
	find "$SEEDS/m" -name '*.onnx' -type f -size -64k -exec cp {} "$CORPUS/" \;
	rm -rf "$SEEDS"
fi
# inputs that once found a bug: run first, every time
cp "$SRC"/tests/fuzz/regress/*.onnx "$CORPUS/"
if [ -f "$SRC/../shared/models/albert-legacy14/model.onnx" ]; then
	cp "$SRC/../shared/models/albert-legacy14/model.onnx" "$CORPUS/albert.onnx"
fi

IR_CORPUS="$BUILD/fuzz-corpus-ir"
mkdir -p "$IR_CORPUS"
cp "$SRC"/tests/passes/*.ir "$SRC"/tests/fuzz/regress/*.ir "$IR_CORPUS/"

PART=$(( SECS / 3 > 0 ? SECS / 3 : 1 ))
"$BUILD/tests/fuzz/fuzz_onnx" "$CORPUS" -max_total_time="$PART" -max_len=1048576 \
	-timeout=10 -rss_limit_mb=2048 -artifact_prefix="$ART/" -print_final_stats=1 "${SEED[@]}"
# (the pipeline's warnings, e.g. --remove-padding packing nothing, left out
# of the log)
"$BUILD/tests/fuzz/fuzz_pipeline" "$CORPUS" -max_total_time="$PART" -max_len=1048576 \
	-timeout=20 -rss_limit_mb=3072 -artifact_prefix="$ART/" -print_final_stats=1 "${SEED[@]}" 2>&1 |
	grep -v '^kiln: .*: warning: '
[ "${PIPESTATUS[0]}" -eq 0 ] || exit 1
"$BUILD/tests/fuzz/fuzz_ir" "$IR_CORPUS" -max_total_time="$PART" -max_len=262144 \
	-timeout=20 -rss_limit_mb=3072 -artifact_prefix="$ART/" -print_final_stats=1 "${SEED[@]}" 2>&1 |
	grep -v '^kiln: .*: warning: '
exit "${PIPESTATUS[0]}"
