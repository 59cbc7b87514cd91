/* Compiled models run on fuzzed input shapes (issue #10: "the fuzzer also
 * runs the compiled model on fuzzed shapes for small graphs").
 *
 * Graphs of tests/passes (attention, layer norms, GELU, GEMMs, einsum, shape
 * folding, embeddings: symbolic batch and sequence dims) are compiled once
 * at -O2 and run many times with random shapes: symbols bound to values from
 * 0 and 1 up to 2^62, now and then a constant dim changed, a wrong rank, a
 * negative dim, a dtype swapped, or a buffer that does not match its shape;
 * integer inputs (token ids, masks) random in [-3, 40].  Every run must
 * return 0 (with outputs whose bytes match their shapes) or -1 with a
 * message, never crash: under ASan an out-of-bounds write in any kernel or
 * inline loop is a failure.  Enough runs must succeed that the kernels are
 * really exercised.  Deterministic (fixed seed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "backend.h"
#include "ir.h"
#include "kiln.h"
#include "be_test.h"
#include "test_files.h"

#define RUNS 150
#define MAX_BYTES ((size_t)8 << 20)   /* larger inputs get a buffer too small */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int64_t pick(int64_t lo, int64_t hi)
{
	return lo + (int64_t)(next() % (uint64_t)(hi - lo + 1));
}

/* a fuzzed value for a symbolic dim: mostly small, sometimes 0 or huge */
static int64_t fuzz_dim(void)
{
	int r = (int)pick(0, 99);
	if (r < 50)
		return pick(1, 5);
	if (r < 60)
		return 0;
	if (r < 85)
		return pick(6, 40);
	if (r < 95) {
		static const int64_t big[] = {1 << 20, 1ll << 31, 1ll << 40, 1ll << 62};
		return big[pick(0, 3)];
	}
	return -pick(1, 3);
}

/* bytes per element (kiln.h numbers its dtypes as ir.h does) */
static size_t esize(kiln_dtype t)
{
	return ir_dtype_size((DType)t);
}

typedef struct Sym { char name[64]; int64_t v; } Sym;

static int64_t sym_value(Sym *syms, int *nsyms, const char *name)
{
	for (int i = 0; i < *nsyms; i++)
		if (!strcmp(syms[i].name, name))
			return syms[i].v;
	if (*nsyms == 16)
		return 1;
	snprintf(syms[*nsyms].name, sizeof syms[0].name, "%s", name);
	syms[*nsyms].v = fuzz_dim();
	return syms[(*nsyms)++].v;
}

/* One input's shape: its declared dims, symbols bound once per run. */
static void fuzz_shape(const kiln_io_info *io, Sym *syms, int *nsyms, kiln_tensor *t)
{
	t->dtype = pick(0, 49) ? io->dtype : (kiln_dtype)(pick(0, 1) ? KILN_F32 : KILN_I64);
	t->rank = pick(0, 29) ? io->rank : (int)pick(0, 5);
	for (int k = 0; k < t->rank; k++) {
		const char *d = k < io->rank ? io->dims[k] : "1";
		char *end;
		long long c = strtoll(d, &end, 10);
		if (*end == 0)
			t->shape[k] = pick(0, 19) ? c : fuzz_dim();
		else
			t->shape[k] = pick(0, 29) ? sym_value(syms, nsyms, d) : fuzz_dim();
	}
}

/* Data for t: random values when its bytes are few, else a small buffer
 * (the run must refuse it).  Returns the buffer (caller frees). */
static void *fuzz_data(kiln_tensor *t)
{
	size_t es = esize(t->dtype), n = 1;
	bool fits = true;
	for (int k = 0; k < t->rank; k++) {
		if (t->shape[k] < 0 || (t->shape[k] && n > MAX_BYTES / (size_t)t->shape[k]))
			fits = false;
		else
			n *= (size_t)(t->shape[k] < 0 ? 0 : t->shape[k]);
	}
	if (!fits || n * es > MAX_BYTES)
		n = 4;
	size_t bytes = n * es;
	unsigned char *p = malloc(bytes + 1);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++) {
		int64_t v = pick(-3, 40);
		if (t->dtype == KILN_F32) {
			float f = (float)v * 0.125f;
			memcpy(p + i * 4, &f, 4);
		} else if (t->dtype == KILN_BOOL) {
			p[i] = (unsigned char)(v & 1);
		} else {
			memcpy(p + i * es, &v, es);   /* little endian: the low bytes */
		}
	}
	t->data = p;
	t->nbytes = pick(0, 29) ? bytes : bytes / 2;
	return p;
}

static int fuzz_model(const char *path, int *ok, int *refused)
{
	char *text = test_read_file(path, NULL);
	assert_non_null(text);
	Graph *g = test_parse(text);
	free(text);
	BeOptions o = {.out = tmp_path("fuzz.so"), .emit = BE_EMIT_SO, .opt_level = 2};
	BeStats st;
	Diag d = {0};
	int rc = be_compile(g, &o, &st, &d);
	ir_graph_free(g);
	if (rc)
		return printf("skip %s: %s\n", path, d.msg), 0;   /* elided constants */
	kiln_model *m = kiln_model_load(o.out);
	if (!m)
		fail_msg("load: %s", kiln_load_error());
	kiln_context *c = kiln_context_create(m, 2);
	assert_non_null(c);
	int nin = kiln_model_num_inputs(m), nout = kiln_model_num_outputs(m);
	assert_true(nin <= 8 && nout <= 8);
	int before = *ok;
	for (int r = 0; r < RUNS; r++) {
		Sym syms[16];
		int nsyms = 0;
		kiln_tensor in[8], out[8];
		void *bufs[8];
		memset(in, 0, sizeof in);
		memset(out, 0, sizeof out);
		for (int i = 0; i < nin; i++) {
			fuzz_shape(kiln_model_input(m, i), syms, &nsyms, &in[i]);
			bufs[i] = fuzz_data(&in[i]);
		}
		int got = kiln_run(c, in, nin, out, nout);
		if (got == 0) {
			(*ok)++;
			for (int i = 0; i < nout; i++) {
				size_t n = esize(out[i].dtype);
				for (int k = 0; k < out[i].rank; k++)
					n *= (size_t)out[i].shape[k];
				assert_true(out[i].nbytes == n);
				assert_true(n == 0 || out[i].data);
			}
		} else {
			assert_int_equal(got, -1);
			const char *msg = kiln_last_error(c);
			assert_true(msg && msg[0] && !strchr(msg, '\n'));
			(*refused)++;
		}
		for (int i = 0; i < nin; i++)
			free(bufs[i]);
	}
	printf("%-48s %3d ran, %3d refused\n", path + strlen(KILN_SOURCE_DIR) + 1,
	       *ok - before, RUNS - (*ok - before));
	kiln_context_free(c);
	kiln_model_free(m);
	return 1;
}

static void test_fuzzed_shapes(void **state)
{
	(void)state;
	static const char *const cases[] = {
		"attention_self", "attention_cross", "attention_keypad", "attention_sdpa",
		"attention_xlnet", "bert_layer_o2", "embed_ln", "embed_ln_concat", "einsum_outer",
		"fold_shape", "canon_reshape", "gelu_tanh", "qkv_mixed_bias", "skip_ln", "ln_decomposed",
	};
	int ok = 0, refused = 0, models = 0;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char path[512];
		snprintf(path, sizeof path, "%s/tests/passes/%s.ir", KILN_SOURCE_DIR, cases[i]);
		models += fuzz_model(path, &ok, &refused);
	}
	printf("%d models, %d runs ran, %d refused with a message\n", models, ok, refused);
	assert_true(models >= 8);
	assert_true(ok >= models * RUNS / 5);       /* the kernels really ran */
	assert_true(refused >= models * RUNS / 10); /* and the bad shapes were met */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzzed_shapes),
	};
	return cmocka_run_group_tests(tests, tmp_setup, tmp_teardown);
}
