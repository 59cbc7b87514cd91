#!/usr/bin/env bash
# Build and run bench/gemm_bench.c: kiln's fp32 GEMM vs the installed
# OpenBLAS on the BERT-base / LXMERT-base shapes at 1 and 2 threads, in
# GFLOP per CPU-second and as a % of this machine's fp32 FMA peak per
# CPU-second, measured first in the same run (kiln_peak).
#   bash bench/gemm_bench.sh [BUILD_DIR] [KERNEL]   (KERNEL: avx512, avx2, c)
#   bash bench/gemm_bench.sh BUILD_DIR int8 [INT8_KERNEL]: the int8 GEMM
#   (rt_qgemm) instead, against kiln_peak's int8 and int8w7 peaks
#   GEMM_BENCH_CACHE=1: B stays in cache (else it comes from DRAM)
#   GEMM_BENCH_HUGE=1: the panels on 2 MB pages (as a model's weights are)
#   GEMM_BENCH_EPI=bias|gelu: the fp32 panels path with the FFN-up epilogue;
#     int8: any value but 0 adds the model's epilogue (bias; GELU on FFN up)
#   GEMM_BENCH_BW=1: GB of B (weights) per CPU-second instead of GFLOP
#   GEMM_BENCH_AB=1: few rows, 2 threads: the few-rows split against the general
#     one, call by call in turn (wall GB/s of B; robust on a loaded machine)
#   GEMM_BENCH_QUICK=1: only the panels path; GEMM_BENCH_ONLY=TEXT: shapes
#   GEMM_BENCH_BLOCK=KC,MC,NC: that cache blocking (default: from the caches)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -f "$build/libkiln_rt.a" ] || cmake --build "$build" -j2 --target kiln_rt kiln_peak
cc -O2 -std=c11 -D_GNU_SOURCE -I"$root/runtime" "$root/bench/gemm_bench.c" \
  "$build/libkiln_rt.a" -lopenblas -lm -lpthread -o "$build/gemm_bench"
echo "load: $(uptime | sed 's/.*load/load/')"
if [ "${2:-}" = int8 ]; then   # rt_qgemm, 8- and 7-bit weights, in GOP per CPU-second
  if [ -x "$build/kiln_peak" ]; then
    "$build/kiln_peak" --seconds 1 --threads 1 | tail -1 |
      sed -n 's/.*"int8_core": \([0-9.]*\).*"int8w7_core": \([0-9.]*\).*/int8 peaks per CPU-second (kiln_peak): 8-bit form \1, 7-bit form \2/p'
  fi
  exec "$build/gemm_bench" int8 ${3:-}
fi
peak=
if [ -x "$build/kiln_peak" ]; then
  peak=$("$build/kiln_peak" --seconds 1 --threads 1 | tail -1 |
         sed -n 's/.*"fp32_core": \([0-9.]*\).*/\1/p')
  echo "fp32 FMA peak: $peak GFLOP per CPU-second (kiln_peak)"
fi
GEMM_BENCH_PEAK=$peak "$build/gemm_bench" ${2:-}
