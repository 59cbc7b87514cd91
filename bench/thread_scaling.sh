#!/usr/bin/env bash
# How a compiled model scales from 1 to 2 threads on this machine, measured
# so that a shared machine does not fake it: rounds of `kiln bench` at 1 and
# 2 threads alternating (the load changes over minutes), the median of each
# round's medians, the 1-thread/2-thread ratio, and what the machine did
# meanwhile (load; the share of CPU time stolen by the hypervisor and the
# share busy, from /proc/stat).
#   bash bench/thread_scaling.sh MODEL.so [ROUNDS=5] [BATCH=1] [SEQ=128] [RUNS=5]
# Where the 2-thread time goes: link the model against a runtime built with
# -DKILN_POOL_STATS (kiln compile --runtime-lib=...): every pool prints its
# jobs, the chunks and time per thread, the workers' wake-up lag and the
# caller's wait for running chunks when it is freed (stderr); and
# `kiln bench --profile` per op at --threads 1 and 2.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$root/build/kiln}
so=$1 rounds=${2:-5} b=${3:-1} s=${4:-128} runs=${5:-5}
cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8, $5+$6, $9}' /proc/stat; }   # busy idle steal
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "before: $(uptime | sed 's/.*load/load/')"
read -r b0 i0 s0 < <(cpu)
t1=() t2=()
for ((r = 0; r < rounds; r++)); do
  for t in 1 2; do
    m=$("$kiln" bench "$so" --batch "$b" --seq "$s" --threads "$t" --runs "$runs" | tail -1 |
        sed -n 's/.*"median_ms": \([0-9.]*\).*/\1/p')
    if [ "$t" = 1 ]; then t1+=("$m"); else t2+=("$m"); fi
  done
done
read -r b1 i1 s1 < <(cpu)
echo "after:  $(uptime | sed 's/.*load/load/')"
awk -v b="$((b1 - b0))" -v i="$((i1 - i0))" -v st="$((s1 - s0))" 'BEGIN {
  printf "machine meanwhile: %.0f%% busy, %.1f%% stolen\n", 100 * b / (b + i), 100 * st / (b + i) }'
m1=$(median "${t1[@]}") m2=$(median "${t2[@]}")
echo "1 thread:  ${t1[*]} ms (median $m1)"
echo "2 threads: ${t2[*]} ms (median $m2)"
awk -v a="$m1" -v c="$m2" 'BEGIN { printf "scaling 1 -> 2 threads: %.2fx\n", a / c }'
