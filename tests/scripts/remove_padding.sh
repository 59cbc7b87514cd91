#!/usr/bin/env bash
# kiln compile --remove-padding (padding-free batches, pass pack-tokens):
#   - a BERT-style encoder (tests/gen/pack_bert.py: 2 layers, a second
#     [B, S, H] input added after the embeddings, a pooler over [CLS] and a
#     QA head split into start/end logits) packs every GEMM, layer norm,
#     residual add and attention (--stats: pack_tokens 16, two packs, two
#     unpacks), and on five batches with masks of mixed lengths (length 1,
#     full rows, an empty row, 16 rows of lengths 1..31) its outputs match
#     the unpacked -O2 build within 1e-5 at every real position, are 0 at
#     every padded one, and the pooler matches for every non-empty row;
#   - a mask that is not right-padded, one that is not 0/1, and one wider
#     than the ids fail `kiln run` with one line naming attention_mask (the
#     unpacked build runs the first two);
#   - --explain=pack_tokens without --remove-padding says what it would
#     pack; a graph with no fused attention compiles with one warning that
#     says why nothing was packed; the packed text IR (kiln dump
#     --remove-padding) compiles back to the same outputs; kiln bench
#     --lengths runs it, malformed ranges are usage errors;
#   - the shared BERT exports (../shared, when there) with mixed-length
#     masks the same way, and `kiln check --remove-padding` on them, which
#     compares real positions only.
#   bash remove_padding.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
kiln=$1 src=$2 build=$3
d="$build/remove_padding_test"
rm -rf "$d" && mkdir -p "$d"
py=/usr/bin/python3
fail=0
ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }

$py "$src/tests/gen/pack_bert.py" "$d/pb" >/dev/null || { echo "FAIL generating pack_bert"; exit 1; }

# compare REF_DIR GOT_DIR INPUT_DIR: real positions within 1e-5, padded ones 0
compare() {
	$py - "$1" "$2" "$3" <<'EOF'
import glob, os, sys
import numpy as np
import onnx
from onnx import numpy_helper
ref_dir, got_dir, in_dir = sys.argv[1:4]
def rd(p):
    t = onnx.TensorProto()
    with open(p, "rb") as f:
        t.ParseFromString(f.read())
    return t.name, numpy_helper.to_array(t)
mask = None
for p in glob.glob(os.path.join(in_dir, "input_*.pb")):
    name, a = rd(p)
    if name == "attention_mask":
        mask = a != 0
real_rows = mask.any(1)
worst, checked = 0.0, 0
for p in sorted(glob.glob(os.path.join(ref_dir, "output_*.pb"))):
    name, r = rd(p)
    _, g = rd(os.path.join(got_dir, os.path.basename(p)))
    if r.shape != g.shape:
        sys.exit("%s: shape %s vs %s" % (name, g.shape, r.shape))
    r, g = r.astype(np.float64), g.astype(np.float64)
    if r.ndim >= 2 and r.shape[:2] == mask.shape:
        sel = np.broadcast_to(mask.reshape(mask.shape + (1,) * (r.ndim - 2)), r.shape)
        if np.any(g[~sel] != 0):
            sys.exit("%s: padded positions not 0 (max %g)" % (name, np.abs(g[~sel]).max()))
    else:   # [B, ...]: the pooler, defined for rows with a real [CLS]
        sel = np.broadcast_to(real_rows.reshape((-1,) + (1,) * (r.ndim - 1)), r.shape)
    err = np.abs(g[sel] - r[sel]) - 1e-5 * np.abs(r[sel])
    if err.size and err.max() > 1e-5:
        i = int(np.argmax(err))
        sys.exit("%s: real positions differ by up to %.3g (%g vs %g)"
                 % (name, err.max(), g[sel].flat[i], r[sel].flat[i]))
    worst = max(worst, float(np.abs(g[sel] - r[sel]).max()) if sel.any() else 0.0)
    checked += int(sel.sum())
print("%d real values within 1e-5 (max diff %.2g), padded positions 0" % (checked, worst))
EOF
}

# run SO INPUTS OUTDIR
run() {
	mkdir -p "$3"
	"$kiln" run "$1" --inputs "$2" --outputs "$3" >/dev/null 2>"$d/err"
}

stat() {
	tail -n 1 "$d/pb.stats" | $py -c '
import json, sys
s = json.loads(sys.stdin.read())
print(s["fusions"].get("pack_tokens", 0), s["ops_out"].get("KlnPackTokens", 0), s["ops_out"].get("KlnUnpackTokens", 0))'
}

if "$kiln" compile "$d/pb/model.onnx" -o "$d/ref.so" 2>"$d/err" &&
   "$kiln" compile "$d/pb/model.onnx" -o "$d/pack.so" --remove-padding --stats >"$d/pb.stats" 2>"$d/err"; then
	[ ! -s "$d/err" ] || bad "compile --remove-padding printed: $(head -2 "$d/err")"
	s=$(stat)
	[ "$s" = "16 2 2" ] && ok "pack_bert: 16 ops packed, 2 packs, 2 unpacks" \
		|| bad "pack_bert: pack_tokens / KlnPackTokens / KlnUnpackTokens = $s (wanted 16 2 2)"
	for k in 0 1 2 3 4; do
		set="$d/pb/set_$k" lens=$(cat "$d/pb/set_$k/lens.txt")
		if run "$d/ref.so" "$set" "$d/ref_$k" && run "$d/pack.so" "$set" "$d/pack_$k"; then
			if r=$(compare "$d/ref_$k" "$d/pack_$k" "$set"); then ok "lengths $lens: $r"
			else bad "lengths $lens: $r"; fi
		else
			bad "run set $k (lengths $lens): $(head -2 "$d/err")"
		fi
	done
	for k in 0 1 2; do
		why=("not right-padded" "not 0 or 1" "attention_mask")
		"$kiln" run "$d/pack.so" --inputs "$d/pb/bad_$k" --outputs "$d/bad_$k" >/dev/null 2>"$d/err"; rc=$?
		if [ $rc -eq 1 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q "attention_mask" "$d/err" &&
		   grep -q "${why[$k]}" "$d/err"; then
			ok "bad mask $k: exit 1, one line: $(cat "$d/err")"
		else
			bad "bad mask $k: exit $rc: $(head -3 "$d/err")"
		fi
	done
	for k in 0 1; do
		run "$d/ref.so" "$d/pb/bad_$k" "$d/refbad_$k" && ok "bad mask $k runs unpacked" \
			|| bad "bad mask $k does not run unpacked: $(head -2 "$d/err")"
	done
else
	bad "compile pack_bert: $(head -3 "$d/err")"
fi

# the packed text IR compiles back (kiln dump --remove-padding, then
# compile X.ir --weights-from) and gives the same bits
if [ -d "$d/pack_0" ]; then
	"$kiln" dump "$d/pb/model.onnx" --remove-padding >"$d/pack.ir" 2>"$d/err" &&
	"$kiln" compile "$d/pack.ir" --weights-from="$d/pb/model.onnx" -o "$d/packir.so" 2>>"$d/err" &&
	run "$d/packir.so" "$d/pb/set_0" "$d/packir_0" &&
	cmp -s "$d/packir_0/output_0.pb" "$d/pack_0/output_0.pb" && cmp -s "$d/packir_0/output_3.pb" "$d/pack_0/output_3.pb" \
		&& ok "packed text IR compiles back, same outputs" || bad "packed text IR: $(head -3 "$d/err")"
fi

# kiln bench --lengths: runs the packed model on masks of spread lengths;
# malformed ranges are usage errors
if [ -f "$d/pack.so" ]; then
	"$kiln" bench "$d/pack.so" --batch 4 --seq 24 --lengths 3..24 --runs 3 >"$d/bench.out" 2>"$d/err" \
		&& tail -n 1 "$d/bench.out" | grep -q '"median_ms"' && ok "kiln bench --lengths 3..24" \
		|| bad "kiln bench --lengths: $(head -2 "$d/err")"
	for l in 0..5 5 3..2 1..25 x..4; do
		"$kiln" bench "$d/pack.so" --batch 4 --seq 24 --lengths "$l" --runs 1 >/dev/null 2>"$d/err"; rc=$?
		[ $rc -eq 2 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q -- "--lengths" "$d/err" \
			&& ok "bench --lengths $l: exit 2, one line" || bad "bench --lengths $l: exit $rc: $(cat "$d/err")"
	done
fi

out=$("$kiln" dump "$d/pb/model.onnx" --explain=pack_tokens 2>&1 >/dev/null; "$kiln" dump "$d/pb/model.onnx" --explain=pack_tokens 2>/dev/null | grep "^explain pack_tokens")
echo "$out" | grep -q "would pack 16 ops (2 attentions) on the real tokens of mask 'attention_mask'" \
	&& ok "--explain=pack_tokens: $out" || bad "--explain=pack_tokens: $out"
"$kiln" compile "$d/pb/model.onnx" -o "$d/noatt.so" --remove-padding --disable-pattern=attention \
	>/dev/null 2>"$d/err"; rc=$?
[ $rc -eq 0 ] && [ "$(wc -l <"$d/err")" -eq 1 ] && grep -q "warning: --remove-padding packed nothing: the graph has no fused attention" "$d/err" \
	&& ok "no attention: one warning: $(cat "$d/err")" || bad "no attention: exit $rc: $(cat "$d/err")"

# the shared BERT exports, their inputs with a mask of mixed lengths
shared="$src/../shared/models"
[ -d "$shared" ] || shared="$(dirname "$src")/shared/models"
if [ -d "$shared/bert-legacy14" ]; then
	for m in bert-legacy14 bert-qa-legacy14 bert-sdpa-legacy17 distilbert-legacy14 roberta-legacy14; do
		[ -f "$shared/$m/model.onnx" ] || continue
		mkdir -p "$d/$m/in"
		$py - "$shared/$m/test_data_set_0" "$d/$m/in" <<'EOF' || { bad "$m: inputs"; continue; }
import glob, os, sys
import numpy as np
import onnx
from onnx import numpy_helper
src, dst = sys.argv[1:3]
for p in sorted(glob.glob(os.path.join(src, "input_*.pb"))):
    t = onnx.TensorProto()
    with open(p, "rb") as f:
        t.ParseFromString(f.read())
    a = numpy_helper.to_array(t)
    if t.name == "attention_mask":
        B, S = a.shape
        lens = [S, 1] + [1 + (S - 1) * b // max(B - 1, 1) for b in range(2, B)]
        a = (np.arange(S)[None] < np.array(lens[:B])[:, None]).astype(a.dtype)
    with open(os.path.join(dst, os.path.basename(p)), "wb") as f:
        f.write(numpy_helper.from_array(a, t.name).SerializeToString())
EOF
		if "$kiln" compile "$shared/$m/model.onnx" -o "$d/$m-ref.so" 2>"$d/err" &&
		   "$kiln" compile "$shared/$m/model.onnx" -o "$d/$m-pack.so" --remove-padding 2>"$d/err" &&
		   run "$d/$m-ref.so" "$d/$m/in" "$d/$m/ref" && run "$d/$m-pack.so" "$d/$m/in" "$d/$m/pack"; then
			[ ! -s "$d/err" ] || bad "$m: --remove-padding printed: $(head -2 "$d/err")"
			if r=$(compare "$d/$m/ref" "$d/$m/pack" "$d/$m/in"); then ok "shared $m: $r"
			else bad "shared $m: $r"; fi
		else
			bad "shared $m: $(head -3 "$d/err")"
		fi
	done
	for m in bert-legacy14 bert-qa-legacy14; do
		"$kiln" check "$shared/$m" --remove-padding >"$d/check.out" 2>&1 \
			&& grep -q "padded positions not compared" "$d/check.out" \
			&& ok "kiln check $m --remove-padding: real positions match" \
			|| bad "kiln check $m --remove-padding: $(tail -4 "$d/check.out")"
	done
else
	echo "skip shared BERT (no ../shared)"
fi

[ $fail -eq 0 ] && echo "remove_padding: all ok" || echo "remove_padding: FAILED"
exit $fail
