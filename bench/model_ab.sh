#!/usr/bin/env bash
# Build and run bench/model_ab.c: two compiled models (same graph, e.g. main's
# runtime against a branch's) run in turn in one process, run by run.
#   bash bench/model_ab.sh [BUILD_DIR] OLD.so NEW.so [BATCH] [SEQ] [THREADS] [PAIRS]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$1; shift
[ -f "$build/libkiln.a" ] || cmake --build "$build" -j2 --target kiln
cc -O2 -std=c11 -D_GNU_SOURCE -I"$root/runtime" "$root/bench/model_ab.c" "$build/libkiln.a" \
  -ldl -lpthread -lm -o "$build/model_ab"
echo "load: $(uptime | sed 's/.*load/load/')"
exec "$build/model_ab" "$@"
