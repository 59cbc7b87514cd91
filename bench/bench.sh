#!/usr/bin/env bash
# kiln against ONNX Runtime 1.30 on the full-size models of ../shared/models/perf.
#
#   bash bench/bench.sh [ROUNDS]        (default 3 rounds of 20 runs each)
#
# Each configuration runs twice: as the issue asks, in fp32, and compiled with
# --fpmath=bf16 (bf16 GEMM weights and inputs, fp32 sums), checked against
# ONNX Runtime's fp32 outputs with a bf16 tolerance (tol_bf16 below).
# For each configuration: regenerate the weights (bench/fill_weights.py: the
# values of shared/tools/fill_weights.py, written without its truncation bug),
# compile with kiln (compile time, .so size), check kiln's outputs against ONNX
# Runtime's on the same inputs, then time both, alternating, ROUNDS times, and
# print a markdown table: median and p90 latency (median over rounds), the
# ratio kiln/ORT, GFLOP/s and percent of this machine's fp32 peak, peak RSS of
# the `kiln bench` process and the part of it the model added (peak minus the
# process's resident memory before it loaded the model), against the memory
# target: the weights (weights.bin) plus twice the planned arena.
# Needs ../shared and the npm registry (onnxruntime-node, --ignore-scripts).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
shared=$(dirname "$root")/shared
rounds=${1:-3}
runs=20
# fp32 FMA peak of both cores: an FMA loop measured ~210 GFLOP/s per core on
# this machine (AMD EPYC, Zen 5, AVX-512); PEAK_GFLOPS for another machine.
# bf16 rows (kiln compile --fpmath=bf16) count against the vdpbf16ps peak:
# ~410 GFLOP/s per core measured the same way; PEAK_BF16_GFLOPS.
peak_gflops=${PEAK_GFLOPS:-420}
peak_bf16_gflops=${PEAK_BF16_GFLOPS:-820}
[ -d "$shared/models/perf" ] || { echo "bench: $shared/models/perf not found"; exit 77; }

kiln="$root/build/kiln"
[ -x "$kiln" ] || BUILD_DIR=build bash "$root/scripts/build.sh" >/dev/null
py=/usr/bin/python3
out="$here/out"
mkdir -p "$out"
if [ ! -d "$here/node_modules/onnxruntime-node" ]; then
  (cd "$here" && npm install --ignore-scripts --no-audit --no-fund >/dev/null)
fi

# name model batch seq threads regions fpmath
configs=(
  "bert-b1-s128-t2 bert-base-legacy14 1 128 2 36 fp32"
  "bert-b8-s128-t2 bert-base-legacy14 8 128 2 36 fp32"
  "bert-b1-s128-t1 bert-base-legacy14 1 128 1 36 fp32"
  "lxmert-b1-s20-r36-t2 lxmert-base-legacy14 1 20 2 36 fp32"
  "bert-b1-s128-t2-bf16 bert-base-legacy14 1 128 2 36 bf16"
  "bert-b8-s128-t2-bf16 bert-base-legacy14 8 128 2 36 bf16"
  "bert-b1-s128-t1-bf16 bert-base-legacy14 1 128 1 36 bf16"
  "lxmert-b1-s20-r36-t2-bf16 lxmert-base-legacy14 1 20 2 36 bf16"
)
# outputs against ONNX Runtime's: |kiln - ort| <= atol + rtol |ort|; bf16
# keeps 8 significant bits, so its GEMMs move BERT-base's hidden states
# (rms ~1, max ~14) by up to ~0.03
tol_fp32="1e-4 1e-3"
tol_bf16="5e-2 2e-2"

prepare() {  # model fpmath -> folder with model.onnx + weights.bin, and model[-bf16].so
  local m=$1 f=$2 d="$out/$1" so
  so=$(sofile "$1" "$2")
  if [ ! -f "$d/weights.bin" ]; then
    mkdir -p "$d" && cp "$shared/models/perf/$m/model.onnx" "$d/" && chmod u+w "$d/model.onnx"
    $py "$here/fill_weights.py" "$d" "$shared/tools" >/dev/null
  fi
  # the runtime is linked into every .so: a newer libkiln_rt.a means recompile
  if [ ! -f "$so" ] || [ "$kiln" -nt "$so" ] || [ "$root/build/libkiln_rt.a" -nt "$so" ]; then
    "$kiln" compile "$d/model.onnx" -o "$so" --fpmath="$f" --stats | tail -1 > "${so%.so}.json"
  fi
}
sofile() { [ "$2" = fp32 ] && echo "$out/$1/model.so" || echo "$out/$1/model-$2.so"; }

json() { $py -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

echo "| model | fpmath | batch | seq | threads | ORT median ms | kiln median ms | kiln p90 ms | kiln/ORT | GFLOP/s | % of peak | compile s | .so MB | peak RSS MB | model RSS / target MB | outputs |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
for c in "${configs[@]}"; do
  read -r name model b s t r f <<<"$c"
  prepare "$model" "$f"
  d="$out/$model"
  so=$(sofile "$model" "$f")
  stats=$(cat "${so%.so}.json")
  tol=tol_$f pk=$peak_gflops
  [ "$f" = bf16 ] && pk=$peak_bf16_gflops
  # same inputs for both engines, outputs compared
  io="$out/$name"
  rm -rf "$io" && $py "$here/io.py" inputs "$d/model.onnx" "$b" "$s" "$r" "$io/in"
  "$kiln" run "$so" --inputs "$io/in" --outputs "$io/kiln" --threads "$t"
  node "$here/ort_run.mjs" "$d/model.onnx" "$io/in" "$io/ort" "$t"
  if $py "$here/io.py" compare "$io/kiln" "$io/ort" ${!tol} > "$io/compare.txt"; then check=ok; else check=MISMATCH; fi
  ort_ms=() kiln_ms=() kiln_p90=() rss=0 base=0 arena=0
  for ((i = 0; i < rounds; i++)); do
    o=$(cd "$here" && node "$shared/tools/ort_bench.mjs" "$d/model.onnx" "$b" "$s" "$t" "$runs" "$r")
    ort_ms+=("$(json "$o" median_ms)")
    k=$("$kiln" bench "$so" --batch "$b" --seq "$s" --regions "$r" --threads "$t" --runs "$runs" | tail -1)
    kiln_ms+=("$(json "$k" median_ms)")
    kiln_p90+=("$(json "$k" p90_ms)")
    rss=$(json "$k" peak_rss_bytes)
    base=$(json "$k" base_rss_bytes)
    arena=$(json "$k" arena_bytes)
  done
  om=$(median "${ort_ms[@]}") km=$(median "${kiln_ms[@]}") kp=$(median "${kiln_p90[@]}")
  gflop=$($py "$here/io.py" flops "$d/model.onnx" "$b" "$s" "$r")
  awk -v n="$model" -v f="$f" -v b="$b" -v s="$s" -v t="$t" -v om="$om" -v km="$km" -v kp="$kp" \
      -v gf="$gflop" -v pk="$pk" -v cms="$(json "$stats" compile_ms)" \
      -v so="$(stat -c %s "$so")" -v rss="$rss" -v base="$base" -v arena="$arena" \
      -v w="$(stat -c %s "$d/weights.bin")" -v chk="$check" 'BEGIN {
    peak = pk * t / 2; gfs = gf / (km / 1000)
    printf "| %s | %s | %d | %d | %d | %.1f | %.1f | %.1f | %.2fx | %.0f | %.0f%% | %.1f | %.0f | %.0f | %.0f / %.0f | %s |\n",
      n, f, b, s, t, om, km, kp, km / om, gfs, 100 * gfs / peak, cms / 1000, so / 1e6, rss / 1e6,
      (rss - base) / 1e6, (w + 2 * arena) / 1e6, chk }'
done
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), ONNX Runtime $(cd "$here" && node -p 'require("onnxruntime-node/package.json").version')"
