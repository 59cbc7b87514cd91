#!/usr/bin/env bash
# The generated header (OUT.h) under hostile names (tests/gen/hostile_names.py):
# graph, input, output and dim names that try to close its comments and
# inject code, C keywords and names the header uses itself, names that
# collide once made identifiers, leading digits, very long names, UTF-8,
# trailing backslashes, trigraphs, control bytes, bytes that are not UTF-8.
# For each model:
# `kiln compile` succeeds, OUT.h is printable ASCII, compiles in a C file
# with cc -std=c11 -Wall -Wextra -Werror -pedantic (and -std=gnu11, where
# `linux` and `unix` are macros), and nothing injected survives outside
# comments; `kiln info` and `kiln run` print the names escaped (no raw
# control byte), `kiln info --json` is valid JSON.  Then dim names that are not expressions (batch-size, seq-len):
# `kiln check` against numpy references, and the typed entry point of the
# header called from C with batch_size and seq_len.
# usage: header_names.sh KILN_BIN SRC_DIR BUILD_DIR
set -uo pipefail
kiln=$1 src=$2 build=$3
d="$build/header_names"
rm -rf "$d" && mkdir -p "$d"
if ! /usr/bin/python3 -c "import onnx, numpy" 2>/dev/null; then
  echo "header_names: python3-onnx or numpy missing: skipped"; exit 77
fi
command -v cc >/dev/null || { echo "header_names: no cc: skipped"; exit 77; }
/usr/bin/python3 "$src/tests/gen/hostile_names.py" "$d" || { echo "FAIL generating the models"; exit 1; }
flags=""
grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" 2>/dev/null && flags="-fsanitize=address,undefined"
fail=0
bad() { echo "FAIL $1: $2"; [ -s "$d/err" ] && head -5 "$d/err"; fail=1; }

for c in $(cat "$d/CASES"); do
  before=$fail fail=0
  if ! "$kiln" compile "$d/$c.onnx" -o "$d/$c.so" 2>"$d/err"; then bad "$c" "kiln compile failed"; continue; fi
  h="$d/$c.h"
  # printable ASCII only (tabs, newlines): no raw names from the model
  if LC_ALL=C grep -q '[^[:print:][:space:]]' "$h" || LC_ALL=C grep -q $'\r' "$h"; then
    bad "$c" "OUT.h holds bytes that are not printable ASCII"
  fi
  # outside comments: no injected token; the comments themselves stay closed
  if ! cc -fpreprocessed -dD -E -P "$h" -o "$d/$c.nocomments" 2>"$d/err"; then
    bad "$c" "OUT.h does not even preprocess"; continue
  fi
  if grep -Eq '(^|[^A-Za-z0-9_])(pwned|PWNED_MACRO)($|[^A-Za-z0-9_])|#include *<pwned' "$d/$c.nocomments"; then
    bad "$c" "injected code outside comments: $(grep -E 'pwned|PWNED' "$d/$c.nocomments" | head -2)"
  fi
  fn=$(sed -n 's/^static inline int \([A-Za-z_][A-Za-z0-9_]*\)_run(kiln_context \*c,*$/\1/p' "$h")
  [ -n "$fn" ] || { bad "$c" "no entry point NAME_run(kiln_context *c, ...) found"; continue; }
  cat >"$d/$c.main.c" <<EOF
#include "$c.h"
#ifdef PWNED_MACRO
#error a macro was injected
#endif
/* the entry point as a pointer: its declaration must be complete C */
int main(void) { void (*volatile f)(void) = (void (*)(void))${fn}_run; return f == 0; }
EOF
  for std in "-std=c11 -pedantic" "-std=gnu11"; do
    if ! cc $std -Wall -Wextra -Werror -I "$src/runtime" -I "$d" -c "$d/$c.main.c" \
         -o "$d/$c.o" 2>"$d/err"; then
      bad "$c" "OUT.h does not compile with $std -Wall -Wextra -Werror"
    fi
  done
  # what kiln info and kiln run print (names from the model) holds no raw
  # control byte (C0, DEL, C1 as UTF-8) and the JSON parses (valid UTF-8)
  for cmd in "info $d/$c.so" "run $d/$c.so --inputs $d/${c}_in --outputs $d/${c}_out"; do
    if ! "$kiln" $cmd >"$d/out" 2>"$d/err"; then
      bad "$c" "kiln ${cmd%% *} failed"
    elif LC_ALL=C grep -q -P '[\x00-\x08\x0b-\x1f\x7f]|\xc2[\x80-\x9f]' "$d/out"; then
      bad "$c" "kiln ${cmd%% *} prints raw control bytes: $(head -c 200 "$d/out" | cat -v)"
    fi
  done
  if ! "$kiln" info "$d/$c.so" --json >"$d/out" 2>"$d/err" ||
     ! /usr/bin/python3 -c 'import json, sys; json.load(open(sys.argv[1], encoding="utf-8"))' "$d/out" 2>"$d/err"; then
    bad "$c" "kiln info --json is not valid JSON"
  fi
  [ $fail -eq 0 ] && echo "ok   $c ($fn)"
  [ $before -eq 0 ] || fail=1
done

# dim names that are names, not expressions
if ! "$kiln" check "$d/dims" >"$d/out" 2>"$d/err"; then
  bad dims "kiln check on x[batch-size, seq-len]: $(tail -2 "$d/out")"
else
  echo "ok   kiln check with dims batch-size, seq-len"
fi
"$kiln" compile "$d/dims/model.onnx" -o "$d/dims.so" 2>"$d/err" || bad dims "compile failed"
grep -q 'int64_t batch_size,' "$d/dims.h" && grep -q 'int64_t seq_len,' "$d/dims.h" ||
  bad dims "OUT.h has no batch_size and seq_len parameters"
cat >"$d/dims_main.c" <<'EOF'
#include <math.h>
#include <stdio.h>
#include "dims.h"
int main(int argc, char **argv)
{
	float x[3][5], w[5], y[3][5], z[3][5];
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 5; j++)
			x[i][j] = (float)(i * 5 + j) / 7.0f - 1.0f;
	for (int j = 0; j < 5; j++)
		w[j] = 0.5f * (float)j - 1.0f;
	kiln_model *m = kiln_model_load(argv[argc - 1]);
	kiln_context *c = m ? kiln_context_create(m, 1) : NULL;
	if (!c || dims_run(c, &x[0][0], w, 3, 5, &y[0][0], &z[0][0])) {
		fprintf(stderr, "%s\n", c ? kiln_last_error(c) : kiln_load_error());
		return 1;
	}
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 5; j++)
			if (fabsf(y[i][j] - (x[i][j] * w[j] + 1.0f)) > 1e-6f || z[i][j] != -x[i][j]) {
				fprintf(stderr, "y[%d][%d] = %g, z = %g\n", i, j, y[i][j], z[i][j]);
				return 1;
			}
	kiln_context_free(c);
	kiln_model_free(m);
	puts("dims_run ok");
	return 0;
}
EOF
if cc -std=c11 -Wall -Wextra -Werror -pedantic $flags -I "$src/runtime" -I "$d" "$d/dims_main.c" \
      "$build/libkiln.a" -ldl -lm -lpthread -o "$d/dims_main" 2>"$d/err"; then
  "$d/dims_main" "$d/dims.so" 2>"$d/err" && echo "ok   dims_run(batch_size=3, seq_len=5)" ||
    bad dims "the header's entry point failed"
else
  bad dims "dims_main.c does not compile"
fi

# a token-id input named with printf conversions, quotes and a backslash
# reaches the Gather's out-of-range error (the inline one and the kernel's):
# at -O0 and -O2 the message names it verbatim, nothing is formatted; so is
# the table's name (printf conversions too)
g="$d/pct"
mkdir -p "$g/in"
/usr/bin/python3 - "$g" <<'PY' || bad pct "generator"
import sys, numpy as np
from onnx import TensorProto, helper, numpy_helper
d = sys.argv[1]
name = "ids%s%n%%'\"\\x"
tab = numpy_helper.from_array(np.arange(40, dtype=np.float32).reshape(10, 4), "tab%n%s%%")
g = helper.make_graph([helper.make_node("Gather", ["tab%n%s%%", name], ["y"], axis=0)], "pct",
                      [helper.make_tensor_value_info(name, TensorProto.INT64, ["b", "s"])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", "s", 4])], [tab])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
open(d + "/m.onnx", "wb").write(m.SerializeToString())
open(d + "/in/input_0.pb", "wb").write(numpy_helper.from_array(np.array([[1, 99]], np.int64), name).SerializeToString())
open(d + "/name", "w").write(name)
PY
for o in -O0 -O2; do
  if ! "$kiln" compile "$g/m.onnx" -o "$g/m$o.so" $o 2>"$d/err"; then bad "pct $o" "kiln compile failed"; continue; fi
  msg=$("$kiln" run "$g/m$o.so" --inputs "$g/in" --outputs "$g/res$o" 2>&1 >/dev/null); rc=$?
  want="index 99 of '$(cat "$g/name")' out of range [0, 10) of table 'tab%n%s%%'"
  if [ $rc -ne 1 ] || [ "$(wc -l <<<"$msg")" -ne 1 ] || [[ "$msg" != *"$want" ]]; then
    bad "pct $o" "exit $rc: $msg (want ...$want)"
  else
    echo "ok   pct $o: $msg"
  fi
done
exit $fail
