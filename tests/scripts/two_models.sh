#!/usr/bin/env bash
# Two compiled models in one C program, each through its own generated
# header: the same BERT QA graph (graph name "bert_qa" in both) compiled as
# qa_one.so (entry point from the output's name: qa_one_run) and as
# qa_two.so --name=second (second_run).  Before --name every header was
# named after the graph, so the second include was skipped by the shared
# include guard and second_run did not exist.  Both runs must match
# `kiln run`.  --name values that are not C identifiers are usage errors.
# usage: two_models.sh KILN_BIN SRC_DIR BUILD_DIR
set -euo pipefail
kiln=$1 src=$2 build=$3
d="$build/two_models"
rm -rf "$d" && mkdir -p "$d"
flags=""
grep -q '^KILN_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && flags="-fsanitize=address,undefined"
/usr/bin/python3 "$src/tests/gen/models.py" "$d" bert_qa >/dev/null
m="$d/bert_qa/model.onnx"
"$kiln" compile "$m" -o "$d/qa_one.so"
"$kiln" compile "$m" -o "$d/qa_two.so" --name=second
grep -q 'static inline int qa_one_run(' "$d/qa_one.h" || { echo "FAIL: qa_one.h has no qa_one_run"; exit 1; }
grep -q 'static inline int second_run(' "$d/qa_two.h" || { echo "FAIL: qa_two.h has no second_run"; exit 1; }
cat > "$d/main.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "qa_one.h"
#include "qa_two.h"

enum { S = 6 };
int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int64_t ids[S] = {101, 7, 45, 102, 9, 102}, mask[S], tt[S];
	for (int i = 0; i < S; i++) {
		mask[i] = 1;
		tt[i] = i > 3;
	}
	float st[2][S], en[2][S];
	for (int k = 0; k < 2; k++) {
		kiln_model *m = kiln_model_load(argv[1 + k]);
		kiln_context *c = m ? kiln_context_create(m, 1) : NULL;
		if (!c) {
			fprintf(stderr, "load %s: %s\n", argv[1 + k], kiln_load_error());
			return 1;
		}
		int rc = k == 0 ? qa_one_run(c, ids, mask, tt, 1, S, st[k], en[k])
		                : second_run(c, ids, mask, tt, 1, S, st[k], en[k]);
		if (rc) {
			fprintf(stderr, "run: %s\n", kiln_last_error(c));
			return 1;
		}
		kiln_context_free(c);
		kiln_model_free(m);
	}
	for (int k = 0; k < 2; k++) {
		printf("%s", k ? "end_logits" : "start_logits");
		for (int i = 0; i < S; i++)
			printf(" %.9g", k ? en[0][i] : st[0][i]);
		printf("\n");
	}
	for (int i = 0; i < S; i++)
		if (st[0][i] != st[1][i] || en[0][i] != en[1][i]) {
			fprintf(stderr, "the two models differ at %d\n", i);
			return 1;
		}
	return 0;
}
C
cc -std=c11 -Wall -Wextra -Werror $flags -I"$src/runtime" -I"$d" "$d/main.c" -o "$d/two" "$build/libkiln.a" -ldl
"$d/two" "$d/qa_one.so" "$d/qa_two.so" > "$d/two.txt"
/usr/bin/python3 - "$d" <<'PY'
import os, subprocess, sys
import numpy as np
from onnx import TensorProto, numpy_helper
d = sys.argv[1]
ids = [101, 7, 45, 102, 9, 102]
os.makedirs(f"{d}/in", exist_ok=True)
arrs = [np.array([ids], np.int64), np.ones((1, 6), np.int64),
        np.array([[1 if i > 3 else 0 for i in range(6)]], np.int64)]
for k, a in enumerate(arrs):
    open(f"{d}/in/input_{k}.pb", "wb").write(numpy_helper.from_array(a).SerializeToString())
PY
"$kiln" run "$d/qa_one.so" --inputs "$d/in" --outputs "$d/res" >/dev/null
/usr/bin/python3 - "$d/two.txt" "$d/res" <<'PY'
import sys
import numpy as np
from onnx import TensorProto, numpy_helper
lines = dict(l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines())
for k, name in enumerate(["start_logits", "end_logits"]):
    got = np.array([float(x) for x in lines[name].split()])
    t = TensorProto(); t.ParseFromString(open(f"{sys.argv[2]}/output_{k}.pb", "rb").read())
    ref = numpy_helper.to_array(t).reshape(-1)
    err = np.abs(got - ref).max()
    assert err < 1e-5, f"{name}: the C program and kiln run differ by {err}"
print("ok   two models in one program: qa_one_run and second_run match kiln run")
PY
# A model file replaced while the process still has the old one loaded
# (recompiled in place, or a new file renamed over it): loading the path
# again must load the new file.  dlopen by path handed back the old model
# (same path string), so the program ran the wrong model.
/usr/bin/python3 "$src/tests/gen/models.py" "$d" ops_zoo >/dev/null
"$kiln" compile "$d/ops_zoo/model.onnx" -o "$d/zoo.so"
cat > "$d/swap.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include "kiln.h"
/* swap PATH NEW: loads PATH twice and frees the first (the file stays
 * loaded, known under both loads' names), loads NEW (another model), then
 * renames NEW over PATH and loads PATH again; prints the first input name
 * of the second load of PATH, of NEW, and of PATH after the rename. */
int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	kiln_model *a1 = kiln_model_load(argv[1]), *a2 = kiln_model_load(argv[1]);
	if (!a1 || !a2)
		return 1;
	kiln_model_free(a1);
	kiln_model *n = kiln_model_load(argv[2]);
	if (!n || rename(argv[2], argv[1])) {
		fprintf(stderr, "%s\n", kiln_load_error());
		return 1;
	}
	kiln_model *b = kiln_model_load(argv[1]);
	if (!b) {
		fprintf(stderr, "%s\n", kiln_load_error());
		return 1;
	}
	printf("%s %s %s\n", kiln_model_input(a2, 0)->name, kiln_model_input(n, 0)->name,
	       kiln_model_input(b, 0)->name);
	kiln_model_free(a2);
	kiln_model_free(n);
	kiln_model_free(b);
	return 0;
}
C
cc -std=c11 -Wall -Wextra -Werror $flags -I"$src/runtime" "$d/swap.c" -o "$d/swap" "$build/libkiln.a" -ldl
fail=0
cp "$d/qa_one.so" "$d/cur.so" && cp "$d/zoo.so" "$d/new.so"
got=$(cd "$d" && ./swap cur.so new.so) || { echo "FAIL swap program"; fail=1; }
[ "$got" = "input_ids x x" ] && echo "ok   a model file replaced in the process, or loaded twice: each load is its file" ||
  { echo "FAIL replaced model file: first inputs '$got', expected 'input_ids x x' (an old model was loaded again)"; fail=1; }
# Loading, creating and freeing from several threads at once (kiln.h:
# thread safety), each thread's runs compared with one made first.
cat > "$d/stress.c" <<'C'
/* stress MODEL: 4 threads each create a context (of the shared model, or
 * of a model they load and free before the context), run, compare with
 * the first run, free; 30 rounds.  Exit 0 when every run matched. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include "kiln.h"
enum { B = 2, S = 16 };
static kiln_model *m;
static const char *path;
static int64_t ids[B * S], mask[B * S], tt[B * S];
static float ref[B * S];
static int bad;
static void *worker(void *arg)
{
	(void)arg;
	for (int r = 0; r < 30; r++) {
		kiln_model *mm = r % 3 == 0 ? kiln_model_load(path) : m;
		kiln_context *c = kiln_context_create(mm, 1 + r % 3);
		if (mm != m)
			kiln_model_free(mm);       /* before the context: allowed */
		if (!c) { __atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED); continue; }
		kiln_tensor in[3] = {{KILN_I64, 2, {B, S}, ids, sizeof ids}, {KILN_I64, 2, {B, S}, mask, sizeof mask},
		                     {KILN_I64, 2, {B, S}, tt, sizeof tt}}, out[2] = {0};
		if (kiln_run(c, in, 3, out, 2) || memcmp(out[0].data, ref, sizeof ref))
			__atomic_add_fetch(&bad, 1, __ATOMIC_RELAXED);
		kiln_context_free(c);
	}
	return NULL;
}
int main(int argc, char **argv)
{
	(void)argc;
	path = argv[1];
	m = kiln_model_load(path);
	for (int i = 0; i < B * S; i++) { ids[i] = (i * 37) % 1000; mask[i] = 1; tt[i] = i % S > 8; }
	kiln_context *c = kiln_context_create(m, 1);
	kiln_tensor in[3] = {{KILN_I64, 2, {B, S}, ids, sizeof ids}, {KILN_I64, 2, {B, S}, mask, sizeof mask},
	                     {KILN_I64, 2, {B, S}, tt, sizeof tt}}, out[2] = {0};
	kiln_run(c, in, 3, out, 2);
	memcpy(ref, out[0].data, sizeof ref);
	kiln_context_free(c);
	pthread_t t[4];
	for (int k = 0; k < 4; k++) pthread_create(&t[k], NULL, worker, NULL);
	for (int k = 0; k < 4; k++) pthread_join(t[k], NULL);
	kiln_model_free(m);
	printf("bad %d\n", bad);
	return bad != 0;
}
C
cc -std=c11 -Wall -Wextra -Werror $flags -I"$src/runtime" "$d/stress.c" -o "$d/stress" "$build/libkiln.a" -ldl -lpthread
if "$d/stress" "$d/qa_one.so" >"$d/stress.out" 2>&1; then echo "ok   load/create/run/free from 4 threads at once"
else echo "FAIL threads: $(tail -3 "$d/stress.out")"; fail=1; fi
for bad in "" "1abc" "a-b" "with space" "_x" "$(printf 'a%.0s' $(seq 70))"; do
  if "$kiln" compile "$m" -o "$d/bad.so" "--name=$bad" 2>"$d/err"; then echo "FAIL --name='$bad' accepted"; fail=1; continue; fi
  rc=$("$kiln" compile "$m" -o "$d/bad.so" "--name=$bad" 2>/dev/null; echo $?)
  [ "$rc" = 2 ] && [ "$(wc -l <"$d/err")" = 1 ] || { echo "FAIL --name='$bad': exit $rc"; cat "$d/err"; fail=1; }
done
"$kiln" compile "$m" -o "$d/kw.so" --name=int 2>"$d/err" && { echo "FAIL --name=int accepted"; fail=1; }
grep -q "name=int" "$d/err" || { echo "FAIL --name=int message: $(cat "$d/err")"; fail=1; }
[ $fail = 0 ] && echo "ok   bad --name values refused"
exit $fail
