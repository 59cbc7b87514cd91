#!/usr/bin/env bash
# Build and run bench/attn_bench.c: one KlnAttention on BERT-base's and
# LXMERT-base's shapes (and BERT-base's padding-free batch: 8 packed
# sequences of 16..128 tokens) at 1 and 2 threads, in GFLOP per CPU-second and as a
# % of this machine's fp32 FMA peak per CPU-second, measured first in the
# same run (kiln_peak).
#   bash bench/attn_bench.sh [BUILD_DIR] [PATH]   (PATH: 0 scalar, 1 AVX-512, 2 AVX2)
#   ATTN_BENCH_ONLY=TEXT: only the shapes whose name holds TEXT
#   ATTN_BENCH_BF16=1: fpmath 1 (--fpmath=bf16's bf16 products), % of the bf16 peak
#   ATTN_BENCH_QKV=FILE: the self-attention shapes on a model's real Q/K/V
#     (raw f32 [B, S, 3*H*D]); ATTN_BENCH_EVICT=MB: MB MiB written before
#     every call (Q/K/V out of L2/L3).  See bench/attn_bench.c.
# The second figure in parentheses is GFLOP per wall-clock second, what
# `kiln bench --profile` reports per op: on a loaded machine it is far below
# the per-CPU-second figure (issue #15).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
[ -f "$build/libkiln_rt.a" ] || cmake --build "$build" -j2 --target kiln_rt kiln_peak
cc -O2 -std=c11 -D_GNU_SOURCE -I"$root/runtime" "$root/bench/attn_bench.c" \
  "$build/libkiln_rt.a" -lm -lpthread -o "$build/attn_bench"
echo "load: $(uptime | sed 's/.*load/load/')"
peak=
if [ -x "$build/kiln_peak" ]; then
  key=fp32; [ "${ATTN_BENCH_BF16:-0}" -gt 0 ] && key=bf16
  peak=$("$build/kiln_peak" --seconds 1 --threads 1 | tail -1 |
         sed -n "s/.*\"${key}_core\": \([0-9.]*\).*/\1/p")
  echo "$key peak: $peak GFLOP per CPU-second (kiln_peak)"
fi
ATTN_BENCH_PEAK=$peak "$build/attn_bench" ${2:-}
