#!/usr/bin/env bash
# kiln run/bench --profile on the bundled bert_qa model (tests/gen/models.py),
# compiled at -O2 and -O0:
#   - the trace is Trace Event Format JSON as ONNX Runtime's profiler
#     writes it (an array of "X" events): every event has name, ph, ts,
#     dur, pid, tid; the events of one thread do not overlap; one "Node"
#     event per executed node and run (the count of kiln compile --stats'
#     ops_out per op type, times the runs), on thread 0; "Job" events only
#     on the pool's threads (none with --threads 1); input and output shapes
#     as args; a KlnGemm's flops are 2*M*N*K of its shapes; fused ops list
#     the ONNX nodes they absorbed (fused_from);
#   - the printed table: one row per op type with the calls the trace has,
#     shares summing to 100% (within rounding);
#   - outputs with --profile are bit-identical to outputs without;
#   - kiln bench --profile keeps its last line the JSON object;
#   - --remove-padding: the packed attention's events have no flops (its
#     work is in the lengths), the padded model's and the GEMMs' do;
#   - an empty --profile is bad usage (2); an unwritable path or a folder
#     is bad input (1) with one line naming it.
#   bash profile.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
. "${BASH_SOURCE%/*}/lib/suite.sh"
kiln=$1 src=$2 build=$3
d="$build/profile_test"
rm -rf "$d" && mkdir -p "$d"
gen_models "$src" "$d" bert_qa
m="$d/bert_qa"

# check_trace TRACE STATS STDOUT RUNS THREADS: the trace and the table
check_trace() {
	/usr/bin/python3 - "$@" <<'EOF'
import json, sys
from collections import Counter, defaultdict
from decimal import Decimal
trace, stats, out, runs, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
errs = []
ev = json.load(open(trace), parse_float=Decimal)
ops_out = json.loads(open(stats).read().strip().splitlines()[-1])["ops_out"]
if not isinstance(ev, list) or not ev:
    sys.exit("trace: not a non-empty JSON array")
for e in ev:
    miss = [k for k in ("name", "ph", "ts", "dur", "pid", "tid") if k not in e]
    if miss:
        errs.append("event without %s: %s" % (miss, e))
    elif e["ph"] != "X" or e["dur"] < 0 or e["ts"] < 0 or not isinstance(e["tid"], int):
        errs.append("bad event: %s" % e)
if errs:
    sys.exit("\n".join(errs[:5]))
by_tid = defaultdict(list)
for e in ev:
    by_tid[e["tid"]].append(e)
for tid, es in by_tid.items():
    es.sort(key=lambda e: e["ts"])
    for a, b in zip(es, es[1:]):
        if a["ts"] + a["dur"] > b["ts"]:
            errs.append("tid %d: %s [%s + %s] overlaps %s at %s" % (tid, a["name"], a["ts"], a["dur"], b["name"], b["ts"]))
nodes = [e for e in ev if e.get("cat") == "Node"]
jobs = [e for e in ev if e.get("cat") == "Job"]
if len(nodes) + len(jobs) != len(ev):
    errs.append("events of other categories: %s" % Counter(e.get("cat") for e in ev))
want = sum(ops_out.values()) * runs
if len(nodes) != want:
    errs.append("%d Node events, the model runs %d nodes x %d runs = %d" % (len(nodes), sum(ops_out.values()), runs, want))
per_op = Counter(e["args"]["op_name"] for e in nodes)
if per_op != Counter({k: v * runs for k, v in ops_out.items()}):
    errs.append("Node events per op %s, --stats ops_out %s x %d runs" % (dict(per_op), ops_out, runs))
if any(e["tid"] != 0 for e in nodes):
    errs.append("Node events off thread 0")
if any(not (1 <= e["tid"] < threads) for e in jobs):
    errs.append("Job events on tids %s with %d threads" % (sorted({e["tid"] for e in jobs}), threads))
# (a worker may run no chunk of a job: the caller runs those nobody claimed)
if sorted({e["args"]["run"] for e in nodes}) != list(range(runs)):
    errs.append("runs %s" % sorted({e["args"]["run"] for e in nodes}))
for e in nodes:
    a = e["args"]
    if not e["name"].endswith("_kernel_time") or "input_type_shape" not in a or "output_type_shape" not in a:
        errs.append("Node event without ORT's name or args: %s" % e)
        break
for e in nodes:   # a fused op names the ONNX nodes it absorbed, its own name among them
    if e["args"]["op_name"].startswith("Kln") and e["name"][:-len("_kernel_time")] not in e["args"].get("fused_from", []):
        errs.append("%s: fused_from %s" % (e["name"], e["args"].get("fused_from")))
        break
gemms = [e for e in nodes if e["args"]["op_name"] in ("KlnGemm", "MatMul")]
if not gemms:
    errs.append("no GEMM events")
for e in gemms:
    (A,), (Y,) = e["args"]["input_type_shape"][0].values(), e["args"]["output_type_shape"][0].values()
    n = 1
    for x in Y:
        n *= x
    if e["args"].get("flops") != 2 * n * A[-1]:
        errs.append("%s: flops %s, 2*numel(Y)*K = %d" % (e["name"], e["args"].get("flops"), 2 * n * A[-1]))
        break
# the table: op rows between the header and the blank line
lines = open(out).read().splitlines()
try:
    h = next(i for i, l in enumerate(lines) if l.split()[:2] == ["op", "calls"])
except StopIteration:
    sys.exit("no op table in the output")
rows = []
for l in lines[h + 1:]:
    if not l.strip():
        break
    t = l.split()
    rows.append((t[0], int(t[1]), float(t[4].rstrip("%"))))
share = sum(r[2] for r in rows)
if abs(share - 100) > 0.05 * len(rows) + 0.01:
    errs.append("table shares sum to %.2f%%" % share)
if {r[0]: r[1] for r in rows} != dict(per_op):
    errs.append("table calls %s, trace %s" % ({r[0]: r[1] for r in rows}, dict(per_op)))
if errs:
    sys.exit("\n".join(errs[:8]))
print("%d events (%d Node, %d Job), table: %s" % (len(ev), len(nodes), len(jobs), ", ".join("%s %.1f%%" % (r[0], r[2]) for r in rows[:3])))
EOF
}

for O in O2 O0; do
	if ! "$kiln" compile "$m/model.onnx" -o "$d/$O.so" -$O --stats >"$d/$O.stats" 2>"$d/err"; then
		bad "compile -$O: $(head -3 "$d/err")"
		continue
	fi
	# kiln run with and without --profile: the same outputs, bit for bit
	"$kiln" run "$d/$O.so" --inputs "$m/test_data_set_0" --outputs "$d/$O.plain" >/dev/null 2>"$d/err" ||
		bad "run -$O: $(head -3 "$d/err")"
	if "$kiln" run "$d/$O.so" --inputs "$m/test_data_set_0" --outputs "$d/$O.prof" \
		--profile="$d/$O.run.json" >"$d/$O.run.out" 2>"$d/err"; then
		r=$(check_trace "$d/$O.run.json" "$d/$O.stats" "$d/$O.run.out" 1 2 2>&1) &&
			ok "run -$O --profile: $r" || bad "run -$O --profile: $r"
	else
		bad "run -$O --profile: $(head -3 "$d/err")"
	fi
	same=1
	for f in "$d/$O.plain"/output_*.pb; do
		cmp -s "$f" "$d/$O.prof/$(basename "$f")" || same=0
	done
	[ $same = 1 ] && [ -f "$d/$O.plain/output_0.pb" ] && ok "-$O: outputs identical with --profile" ||
		bad "-$O: outputs differ with --profile"
done

# kiln bench: the timed runs, on 2 and on 1 thread
for t in 2 1; do
	if "$kiln" bench "$d/O2.so" --batch 2 --seq 16 --vocab 1024 --runs 5 --threads $t \
		--profile "$d/bench$t.json" >"$d/bench$t.out" 2>"$d/err"; then
		r=$(check_trace "$d/bench$t.json" "$d/O2.stats" "$d/bench$t.out" 5 $t 2>&1) &&
			ok "bench --threads $t --profile: $r" || bad "bench --threads $t --profile: $r"
		tail -n 1 "$d/bench$t.out" | /usr/bin/python3 -c 'import json,sys; json.loads(sys.stdin.read())["median_ms"]' &&
			ok "bench --profile: last line JSON" || bad "bench --profile: last line is not the JSON object"
	else
		bad "bench --threads $t --profile: $(head -3 "$d/err")"
	fi
done

# --remove-padding: the packed attention's work depends on the lengths (data),
# so its events carry no flops (T x T would overcount it) while the padded
# model's attention events do; the packed GEMMs keep theirs
if "$kiln" compile "$m/model.onnx" -o "$d/rp.so" --remove-padding >/dev/null 2>"$d/err" &&
	"$kiln" bench "$d/rp.so" --batch 2 --seq 16 --vocab 1024 --runs 2 --lengths 5..16 \
		--profile="$d/rp.json" >/dev/null 2>>"$d/err" &&
	"$kiln" bench "$d/O2.so" --batch 2 --seq 16 --vocab 1024 --runs 2 \
		--profile="$d/pad.json" >/dev/null 2>>"$d/err"; then
	r=$(/usr/bin/python3 - "$d/rp.json" "$d/pad.json" 2>&1 <<'EOF2'
import json, sys
def att(path):
    ev = [e for e in json.load(open(path)) if e.get("cat") == "Node"]
    return ([e for e in ev if e["args"]["op_name"] == "KlnAttention"],
            [e for e in ev if e["args"]["op_name"] == "KlnGemm"])
(ra, rg), (pa, pg) = att(sys.argv[1]), att(sys.argv[2])
if not ra or not pa:
    sys.exit("no KlnAttention events (packed %d, padded %d)" % (len(ra), len(pa)))
if any("flops" in e["args"] for e in ra):
    sys.exit("packed attention with flops %s" % ra[0]["args"].get("flops"))
if not all(e["args"].get("flops", 0) > 0 for e in pa + rg):
    sys.exit("a padded attention or a packed GEMM without flops")
print("%d packed attention events without flops" % len(ra))
EOF2
) && ok "--remove-padding --profile: $r" || bad "--remove-padding --profile: $r"
else
	bad "--remove-padding --profile: $(head -3 "$d/err")"
fi

# errors
"$kiln" run "$d/O2.so" --inputs "$m/test_data_set_0" --outputs "$d/o" --profile= >/dev/null 2>"$d/err"
[ $? = 2 ] && ok "--profile= is bad usage" || bad "--profile= did not exit 2: $(cat "$d/err")"
for p in "$d/nodir/t.json" "$d"; do
	"$kiln" bench "$d/O2.so" --seq 8 --vocab 1024 --runs 1 --profile="$p" >/dev/null 2>"$d/err"
	rc=$?
	if [ $rc = 1 ] && [ "$(wc -l <"$d/err")" = 1 ] && grep -qF "$p: cannot write the profile" "$d/err"; then
		ok "unwritable --profile=$p: $(cat "$d/err")"
	else
		bad "unwritable --profile=$p: exit $rc, $(cat "$d/err")"
	fi
done

[ $fail = 0 ] && rm -rf "$d"
finish profile
