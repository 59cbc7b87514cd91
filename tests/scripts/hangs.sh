#!/usr/bin/env bash
# Inputs that used to hang kiln must be refused within seconds: a FIFO as
# the model, as its external data, as a compiled model, as an input or
# output .pb; an output that is a device, a directory or a FIFO; a linker
# that never stops writing messages; a Concat of 100,000 inputs, each
# with its own symbolic dim (minutes and 7 GB in the loader once).  And a
# model of 100,000 outputs dumps within 20 s (57 s once).  Each case runs under `timeout 20`
# and must exit 1 with one line on stderr.  TMPDIR is a fresh folder: no
# kiln temp dir may be left in it.  Also: truncated copies of a compiled
# model are refused by `kiln run` (one line, exit 1, no signal), and a
# valid 300,000-node chain dumps (it overflowed a recursive walk).
#
# usage: bash hangs.sh KILN_BIN SRC_DIR BUILD_DIR
set -u
KILN=$(realpath "${1:?kiln binary}")
SRC=$(cd "${2:?source dir}" && pwd)
PY=/usr/bin/python3

if ! "$PY" -c "import onnx, numpy" 2>/dev/null; then
	echo "hangs: python3-onnx or numpy missing: skipped"
	exit 77
fi
WORK=$(mktemp -d /tmp/kiln_hangs.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export TMPDIR="$WORK/tmp"
mkdir -p "$TMPDIR"
cd "$WORK" || exit 1

fails=0
n=0
fail() {
	echo "FAIL $1: $2"
	[ -s err ] && sed 's/^/    stderr: /' err | head -5
	fails=$((fails + 1))
}

# expect NAME FRAGMENT -- CMD...: exit 1 within 20 s, one line naming FRAGMENT
expect() {
	local name=$1 frag=$2
	shift 3
	n=$((n + 1))
	timeout 20 "$@" >out 2>err
	local rc=$?
	if [ $rc -eq 124 ]; then
		fail "$name" "hangs (killed after 20 s)"
	elif [ $rc -ne 1 ]; then
		fail "$name" "exit code $rc, expected 1"
	elif [ "$(wc -l <err)" -ne 1 ]; then
		fail "$name" "stderr has $(wc -l <err) lines, expected 1"
	elif ! grep -qF -- "$frag" err; then
		fail "$name" "message does not name '$frag'"
	else
		echo "ok   $name: $(cat err)"
	fi
}

"$PY" "$SRC/tests/gen/models.py" "$WORK/m" bert_qa >/dev/null || { echo "hangs: generating failed"; exit 1; }
"$PY" "$SRC/tests/gen/make_hang_inputs.py" "$WORK/ext" || { echo "hangs: generating failed"; exit 1; }
QA=$WORK/m/bert_qa
if ! timeout 300 "$KILN" compile "$QA/model.onnx" -o qa.so >out 2>err; then
	echo "hangs: compiling bert_qa failed: $(cat err)"
	exit 1
fi

# a FIFO as the model, as its external data, as the compiled model
mkfifo fifo.onnx fifo.so
expect fifo_model fifo.onnx -- "$KILN" dump fifo.onnx
expect fifo_external w.bin -- "$KILN" dump "$WORK/ext/fifo_external.onnx"
expect wide_concat "nests deeper than" -- "$KILN" dump "$WORK/ext/wide_concat.onnx"
expect fifo_so fifo.so -- "$KILN" run ./fifo.so --inputs "$QA/test_data_set_0" --outputs o1

# a FIFO as an input .pb, and as an output .pb
mkdir in_fifo out_fifo
cp "$QA"/test_data_set_0/input_*.pb in_fifo/
rm in_fifo/input_0.pb
mkfifo in_fifo/input_0.pb
expect fifo_input_pb input_0.pb -- "$KILN" run qa.so --inputs in_fifo --outputs o2
mkfifo out_fifo/output_0.pb
expect fifo_output_pb output_0.pb -- "$KILN" run qa.so --inputs "$QA/test_data_set_0" --outputs out_fifo

# outputs that are not regular files
mkdir a_dir
mkfifo out.fifo
expect out_dev_full /dev/full -- "$KILN" compile "$QA/model.onnx" -o /dev/full
expect out_directory a_dir -- "$KILN" compile "$QA/model.onnx" -o a_dir
expect out_fifo out.fifo -- "$KILN" compile "$QA/model.onnx" -o out.fifo
expect out_no_folder nowhere -- "$KILN" compile "$QA/model.onnx" -o nowhere/x.so

# a linker that never stops complaining is stopped, its output bounded
mkdir fakebin
printf '#!/bin/sh\nexec yes "ld: cannot write: No space left on device"\n' >fakebin/cc
chmod +x fakebin/cc
expect endless_linker "ld: cannot write" -- env PATH="$WORK/fakebin:$PATH" \
	"$KILN" compile "$QA/model.onnx" -o fake.so
[ -e fake.so ] && fail endless_linker "a partial output was left"
expect endless_linker_external "ld: cannot write" -- env PATH="$WORK/fakebin:$PATH" \
	"$KILN" compile "$QA/model.onnx" -o fake.so --weights=external
[ -e fake.so ] || [ -e fake.weights ] && fail endless_linker_external "a partial output was left"

# truncated copies of a compiled model: refused by the loader, no signal
size=$(stat -c %s qa.so)
for cut in 0 10 100 1000 $((size / 2)) $((size - 4096)) $((size - 1)); do
	head -c "$cut" qa.so >cut.so
	frag="cut.so: truncated"
	[ "$cut" -eq 0 ] && frag="cut.so: cannot load: empty file"
	expect "truncated_so_$cut" "$frag" -- "$KILN" run ./cut.so \
		--inputs "$QA/test_data_set_0" --outputs o3
done

# a valid chain of 300,000 Adds into a LayerNormalization: the embed
# fusion's recursive walk of Add trees overflowed the stack
n=$((n + 1))
"$PY" "$SRC/tests/gen/make_add_chain.py" addchain.onnx
timeout 120 "$KILN" dump addchain.onnx >out 2>err
rc=$?
if [ $rc -ne 0 ]; then
	fail add_chain "exit code $rc, expected 0"
else
	echo "ok   add_chain: 300,000 chained Adds dump"
fi

# 100,000 graph outputs, each an Identity of the input: dce, cse and
# cleanup searched the outputs per node (57 s once)
n=$((n + 1))
timeout 20 "$KILN" dump "$WORK/ext/wide_outputs.onnx" >out 2>err
rc=$?
if [ $rc -ne 0 ]; then
	fail wide_outputs "exit code $rc, expected 0$([ $rc = 124 ] && echo ' (killed after 20 s)')"
elif [ "$(grep -c ' = Identity(' out)" != 100000 ]; then
	fail wide_outputs "$(grep -c ' = Identity(' out) Identity nodes printed, expected 100000"
else
	echo "ok   wide_outputs: 100,000 outputs dump"
fi

left=$(find "$TMPDIR" -mindepth 1 | head -5)
n=$((n + 1))
if [ -n "$left" ]; then
	fail tmpdir "left behind in TMPDIR: $left"
fi

echo "hangs: $((n - fails))/$n ok"
[ $fails -eq 0 ]
