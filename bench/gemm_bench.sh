#!/usr/bin/env bash
# Build and run bench/gemm_bench.c: kiln's rt_sgemm vs the installed
# OpenBLAS on the BERT-base shapes, GFLOP/s at 1 and 2 threads.
#   bash bench/gemm_bench.sh [BUILD_DIR] [KERNEL]   (KERNEL: avx512, avx2, c)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -f "$build/libkiln_rt.a" ] || cmake --build "$build" -j2 --target kiln_rt
cc -O2 -std=c11 -D_GNU_SOURCE -I"$root/runtime" "$root/bench/gemm_bench.c" \
  "$build/libkiln_rt.a" -lopenblas -lm -lpthread -o "$build/gemm_bench"
echo "load: $(uptime | sed 's/.*load/load/')"
"$build/gemm_bench" ${2:-}
