/* test_rt_context.c: the runtime's context through kiln_entry(), with a
 * hand-written "model" in place of generated code:
 *
 *   inputs  x [batch, 4] f32, m [batch, 4] f32;  weight w [4] (embedded)
 *   t0 = x + m; t1 = t0 + w          (arena buffers 0 and 1)
 *   y = Softmax(t1, axis 1) [batch, 4];  s = ReduceSum(t1, axis 1) [batch]
 *
 * Covers planning (once per shape), re-planning, input validation errors,
 * caller-provided outputs, external weights, two contexts on two threads,
 * and the loader on a model .so built here from the runtime archive. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "rt_internal.h"
#include "plus_one_model.h"

RT_KERNEL(Add); RT_KERNEL(Softmax); RT_KERNEL(ReduceSum);

/* ---- the model ---- */

static const char *const dims_bx4[] = { "batch", "4" };
static const char *const dims_b[] = { "batch" };
static const kiln_io_info ins[2] = {
	{ "x", KILN_F32, 2, dims_bx4 }, { "m", KILN_F32, 2, dims_bx4 } };
static const kiln_io_info outs[2] = {
	{ "y", KILN_F32, 2, dims_bx4 }, { "s", KILN_F32, 1, dims_b } };
static const rt_dim in_dims[2 * KILN_MAX_RANK] = {
	{ 0, 0 }, { -1, 4 }, [KILN_MAX_RANK] = { 0, 0 }, [KILN_MAX_RANK + 1] = { -1, 4 } };
static const char *const syms[] = { "batch" };
static const int32_t buf_first[2] = { 0, 1 }, buf_last[2] = { 1, 3 };
static _Alignas(64) const float weights[4] = { 0.5f, -1.0f, 0.0f, 2.0f };
static int plan_calls;

/* batch 7 stands for a size kiln__plan refuses (too large for the limit) */
static int plan(const int64_t *sym, int64_t *bufsize, kiln_frame *f)
{
	__atomic_fetch_add(&plan_calls, 1, __ATOMIC_RELAXED);
	if (sym[0] == 7)
		return rt_error(f, "node 'n' (Expand): output 'y' is too large for batch %lld",
		                (long long)sym[0]);
	bufsize[0] = bufsize[1] = sym[0] * 4 * 4;
	return 0;
}

static void out_shapes(const int64_t *sym, int64_t *shapes)
{
	shapes[0] = sym[0];
	shapes[1] = 4;
	shapes[KILN_MAX_RANK] = sym[0];
}

/* w: the weights from f->weights (hot) or f->weights_cold (cold: the
 * desc's weights_hot_bytes 0, see test_cold_weights) */
static bool weights_cold;

static int run(kiln_frame *f)
{
	int64_t b = f->sym[0];
	rt_t x = { (void *)f->in[0], KILN_F32, 2, { b, 4 } };
	rt_t m = { (void *)f->in[1], KILN_F32, 2, { b, 4 } };
	rt_t w = { (void *)(weights_cold ? f->weights_cold : f->weights), KILN_F32, 1, { 4 } };
	rt_t t0 = { f->arena + f->bufoff[0], KILN_F32, 2, { b, 4 } };
	rt_t t1 = { f->arena + f->bufoff[1], KILN_F32, 2, { b, 4 } };
	rt_t y = { f->out[0], KILN_F32, 2, { b, 4 } };
	rt_t s = { f->out[1], KILN_F32, 1, { b } };
	rt_t a0[2] = { x, m }, a1[2] = { t0, w };
	int64_t axis = 1, red[3] = { 0, 1, 1 };
	if (f->bufoff[0] == f->bufoff[1])      /* live together: must not share */
		return rt_error(f, "planner put live buffers together");
	return rt_op_Add(f, "add0", a0, 2, &t0, 1, NULL, 0, NULL, 0) ||
	       rt_op_Add(f, "add1", a1, 2, &t1, 1, NULL, 0, NULL, 0) ||
	       rt_op_Softmax(f, "softmax", &t1, 1, &y, 1, &axis, 1, NULL, 0) ||
	       rt_op_ReduceSum(f, "sum", &t1, 1, &s, 1, red, 3, NULL, 0);
}

const rt_model_desc kiln__desc = {
	.abi_version = RT_ABI_VERSION, .name = "tiny", .nin = 2, .nout = 2, .nsym = 1, .nbuf = 2,
	.inputs = ins, .outputs = outs, .in_dims = in_dims, .sym_names = syms,
	.buf_first = buf_first, .buf_last = buf_last, .weights_bytes = sizeof weights,
	.weights_hot_bytes = sizeof weights, .weights = (const char *)weights, .plan = plan, .out_shapes = out_shapes, .run = run,
};

/* ---- helpers ---- */

/* the content hash the compiler records for the weights blob */
static uint64_t weights_hash(void)
{
	rt_hash h;
	rt_hash_init(&h);
	rt_hash_add(&h, weights, sizeof weights);
	return rt_hash_end(&h);
}

static void fill_inputs(kiln_tensor *in, float *x, float *m, int64_t b, float seed)
{
	for (int64_t i = 0; i < b * 4; i++) {
		x[i] = seed + (float)(i % 7) * 0.25f;
		m[i] = (float)(i % 3) - 1.0f;
	}
	in[0] = (kiln_tensor){ KILN_F32, 2, { b, 4 }, x, (size_t)(b * 16) };
	in[1] = (kiln_tensor){ KILN_F32, 2, { b, 4 }, m, (size_t)(b * 16) };
}

/* check y and s against a direct computation; returns 0 when right */
static int check_outputs(const kiln_tensor *in, const kiln_tensor *out, int64_t b)
{
	const float *x = in[0].data, *m = in[1].data, *y = out[0].data, *s = out[1].data;
	if (out[0].rank != 2 || out[0].shape[0] != b || out[0].shape[1] != 4 ||
	    out[0].nbytes != (size_t)(b * 16) || out[1].rank != 1 || out[1].shape[0] != b)
		return 1;
	for (int64_t r = 0; r < b; r++) {
		float t[4], mx = -INFINITY, sum = 0, tot = 0;
		for (int k = 0; k < 4; k++) {
			t[k] = x[r * 4 + k] + m[r * 4 + k] + weights[k];
			mx = fmaxf(mx, t[k]);
			tot += t[k];
		}
		for (int k = 0; k < 4; k++)
			sum += expf(t[k] - mx);
		for (int k = 0; k < 4; k++)
			if (fabsf(y[r * 4 + k] - expf(t[k] - mx) / sum) > 1e-6f)
				return 1;
		if (fabsf(s[r] - tot) > 1e-5f)
			return 1;
	}
	return 0;
}

static const rt_entry *E;

static int setup(void **state)
{
	(void)state;
	E = kiln_entry();
	return E && E->abi_version == RT_ABI_VERSION && E->desc == &kiln__desc ? 0 : -1;
}

/* ---- tests ---- */

static void test_run_and_replan(void **state)
{
	(void)state;
	kiln_context *c = E->context_create(&kiln__desc, "/nonexistent/tiny.so", 2);
	assert_non_null(c);
	assert_int_equal(E->arena_bytes(c), 0);
	float x[40], m[40];
	kiln_tensor in[2], out[2];
	memset(out, 0, sizeof out);
	plan_calls = 0;
	fill_inputs(in, x, m, 3, 0.5f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(plan_calls, 1);
	assert_int_equal(check_outputs(in, out, 3), 0);
	assert_int_equal(E->arena_bytes(c), 128);          /* 2 x 48 bytes, 64-aligned */
	void *owned = out[0].data;

	/* same shapes: no re-plan, same context-owned buffer */
	fill_inputs(in, x, m, 3, -2.0f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(plan_calls, 1);
	assert_ptr_equal(out[0].data, owned);
	assert_int_equal(check_outputs(in, out, 3), 0);

	/* new batch: re-plan, outputs grow */
	fill_inputs(in, x, m, 10, 1.0f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(plan_calls, 2);
	assert_int_equal(check_outputs(in, out, 10), 0);
	assert_int_equal(E->arena_bytes(c), 384);          /* 2 x 160 -> 192 each */

	/* back to 3: re-plan again, no growth needed */
	fill_inputs(in, x, m, 3, 4.0f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(plan_calls, 3);
	assert_int_equal(check_outputs(in, out, 3), 0);
	assert_int_equal(E->arena_bytes(c), 128);
	E->context_free(c);
}

/* A refused plan is the run's error, and is not remembered as a plan: the
 * same shapes again plan (and fail) again; other shapes still run. */
static void test_plan_error(void **state)
{
	(void)state;
	kiln_context *c = E->context_create(&kiln__desc, "/nonexistent/tiny.so", 1);
	assert_non_null(c);
	float x[40], m[40];
	kiln_tensor in[2], out[2];
	memset(out, 0, sizeof out);
	plan_calls = 0;
	fill_inputs(in, x, m, 3, 0.5f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	fill_inputs(in, x, m, 7, 0.5f);
	assert_int_not_equal(E->run(c, in, 2, out, 2), 0);
	assert_non_null(strstr(E->last_error(c), "output 'y' is too large for batch 7"));
	assert_int_not_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(plan_calls, 3);
	fill_inputs(in, x, m, 3, 0.5f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(plan_calls, 4);
	assert_int_equal(check_outputs(in, out, 3), 0);
	E->context_free(c);
}

static void expect_error(kiln_context *c, kiln_tensor *in, int nin, kiln_tensor *out,
                         const char *msg)
{
	assert_int_not_equal(E->run(c, in, nin, out, 2), 0);
	assert_string_equal(E->last_error(c), msg);
}

static void test_input_errors(void **state)
{
	(void)state;
	kiln_context *c = E->context_create(&kiln__desc, NULL, 1);
	assert_non_null(c);
	float x[40], m[40];
	kiln_tensor in[2], out[2] = {0};
	fill_inputs(in, x, m, 2, 0.0f);
	expect_error(c, in, 1, out, "model 'tiny' takes 2 inputs, got 1");
	in[1].shape[0] = 3;
	in[1].nbytes = 48;
	expect_error(c, in, 2, out, "input 'm' dim 0: expected 2 (batch, from 'x'), got 3");
	fill_inputs(in, x, m, 2, 0.0f);
	in[0].shape[1] = 5;
	in[0].nbytes = 40;
	expect_error(c, in, 2, out, "input 'x' dim 1: expected 4, got 5");
	fill_inputs(in, x, m, 2, 0.0f);
	in[0].rank = 3;
	in[0].shape[2] = 1;
	expect_error(c, in, 2, out, "input 'x': rank 3, expected 2");
	fill_inputs(in, x, m, 2, 0.0f);
	in[1].dtype = KILN_I32;
	expect_error(c, in, 2, out, "input 'm': dtype i32, expected f32");
	fill_inputs(in, x, m, 2, 0.0f);
	in[1].nbytes = 12;
	expect_error(c, in, 2, out, "input 'm': nbytes 12, shape needs 32");
	fill_inputs(in, x, m, 2, 0.0f);
	in[0].data = NULL;
	expect_error(c, in, 2, out, "input 'x': data is NULL");

	/* after errors, a good run still works */
	fill_inputs(in, x, m, 2, 0.0f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(check_outputs(in, out, 2), 0);
	assert_string_equal(E->last_error(c), "");
	E->context_free(c);
}

static void test_caller_outputs(void **state)
{
	(void)state;
	kiln_context *c = E->context_create(&kiln__desc, NULL, 1);
	float x[40], m[40], y[40], s[10];
	kiln_tensor in[2], out[2];
	fill_inputs(in, x, m, 4, 1.5f);
	out[0] = (kiln_tensor){ .data = y, .nbytes = 8 };
	out[1] = (kiln_tensor){ .data = s, .nbytes = sizeof s };
	expect_error(c, in, 2, out, "output 'y': buffer of 8 bytes, needs 64");
	out[0].nbytes = sizeof y;
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_ptr_equal(out[0].data, y);
	assert_ptr_equal(out[1].data, s);
	assert_int_equal(out[0].nbytes, 64);
	assert_int_equal(check_outputs(in, out, 4), 0);
	/* mixed: y owned by the context, s the caller's */
	out[0] = (kiln_tensor){0};
	out[1].nbytes = sizeof s;
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_ptr_not_equal(out[0].data, y);
	assert_int_equal(check_outputs(in, out, 4), 0);
	E->context_free(c);
}

/* The run writes outputs while it reads inputs: an output buffer that
 * overlaps an input or another output is refused (it used to run, and y
 * came out computed from half-overwritten x, or s overwrote y), also last
 * run's context-owned output passed back as an input; adjacent buffers in
 * one array are fine. */
static void test_overlapping_buffers(void **state)
{
	(void)state;
	kiln_context *c = E->context_create(&kiln__desc, NULL, 1);
	float x[16], m[16], big[16 + 4];
	kiln_tensor in[2], out[2];
	fill_inputs(in, x, m, 4, 1.5f);
	out[0] = (kiln_tensor){ .data = x, .nbytes = sizeof x };
	out[1] = (kiln_tensor){ .data = big, .nbytes = 16 };
	expect_error(c, in, 2, out, "output 'y': its buffer overlaps input 'x' "
	             "(outputs are written while inputs are read)");
	out[0] = (kiln_tensor){ .data = big, .nbytes = sizeof big };
	out[1] = (kiln_tensor){ .data = big + 12, .nbytes = 16 };
	expect_error(c, in, 2, out, "output 's': its buffer overlaps output 'y'");
	out[0] = (kiln_tensor){ .data = m + 8, .nbytes = 64 };   /* past m: checked by bytes, */
	out[1] = (kiln_tensor){ .data = big, .nbytes = 16 };     /* m + 8 overlaps m's last half */
	expect_error(c, in, 2, out, "output 'y': its buffer overlaps input 'm' "
	             "(outputs are written while inputs are read)");
	/* one array, y then s right after it: no overlap */
	out[0] = (kiln_tensor){ .data = big, .nbytes = 64 };
	out[1] = (kiln_tensor){ .data = big + 16, .nbytes = 16 };
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(check_outputs(in, out, 4), 0);
	/* context-owned y of this run fed back as input x of the next */
	out[0] = out[1] = (kiln_tensor){0};
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	kiln_tensor again[2] = { out[0], in[1] };
	again[0].shape[0] = 4;
	out[0] = out[1] = (kiln_tensor){0};
	expect_error(c, again, 2, out, "output 'y': its buffer (context-owned, from the last run) "
	             "overlaps input 'x' (outputs are written while inputs are read)");
	E->context_free(c);
}

/* Weights only looked up (weights_hot_bytes 0: all cold) come through
 * f->weights_cold, embedded and from the side file; two contexts share the
 * model's weights and the second still runs after the first is freed. */
/* s's shape [2^62] (4 bytes each): its byte size overflows 64 bits, and
 * bind_outputs says so before anything (the overlap check, out[].nbytes)
 * uses a size that wrapped, with caller buffers and context-owned ones. */
static void out_shapes_huge(const int64_t *sym, int64_t *shapes)
{
	out_shapes(sym, shapes);
	shapes[KILN_MAX_RANK] = (int64_t)1 << 62;
}

static void test_output_size_overflow(void **state)
{
	(void)state;
	rt_model_desc d = kiln__desc;
	d.out_shapes = out_shapes_huge;
	kiln_context *c = E->context_create(&d, NULL, 1);
	float x[16], m[16], y[16], s[4];
	kiln_tensor in[2], out[2];
	fill_inputs(in, x, m, 4, 1.5f);
	out[0] = (kiln_tensor){ .data = y, .nbytes = sizeof y };
	out[1] = (kiln_tensor){ .data = s, .nbytes = sizeof s };
	expect_error(c, in, 2, out, "output 's': byte size overflows");
	out[0] = out[1] = (kiln_tensor){0};
	expect_error(c, in, 2, out, "output 's': byte size overflows");
	E->context_free(c);
}

static void test_cold_weights(void **state)
{
	(void)state;
	char dir[] = "/tmp/kiln_rtcold_XXXXXX", path[256], so[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/tiny.weights", dir);
	snprintf(so, sizeof so, "%s/tiny.so", dir);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	fwrite(weights, 1, sizeof weights, fp);
	fclose(fp);
	weights_cold = true;
	for (int ext = 0; ext < 2; ext++) {
		rt_model_desc d = kiln__desc;
		d.weights_hot_bytes = 0;
		if (ext) {
			d.weights = NULL;
			d.weights_file = "tiny.weights";
			d.weights_hash = weights_hash();
		}
		kiln_context *c1 = E->context_create(&d, so, 1), *c2 = E->context_create(&d, so, 2);
		assert_non_null(c1);
		assert_non_null(c2);
		float x[40], m[40];
		kiln_tensor in[2], out[2] = {0};
		fill_inputs(in, x, m, 5, 1.0f);
		assert_int_equal(E->run(c1, in, 2, out, 2), 0);
		assert_int_equal(check_outputs(in, out, 5), 0);
		E->context_free(c1);
		memset(out, 0, sizeof out);
		assert_int_equal(E->run(c2, in, 2, out, 2), 0);
		assert_int_equal(check_outputs(in, out, 5), 0);
		E->context_free(c2);
	}
	weights_cold = false;
	/* a hot part that is not a multiple of RT_WEIGHTS_COLD_ALIGN is refused */
	rt_model_desc d = kiln__desc;
	d.weights_hot_bytes = 8;
	assert_null(E->context_create(&d, so, 1));
	assert_non_null(strstr(E->create_error(), "corrupt weights layout"));
	unlink(path);
	rmdir(dir);
}

static void test_external_weights(void **state)
{
	(void)state;
	char dir[] = "/tmp/kiln_rtctx_XXXXXX", path[256], so[256];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/tiny.weights", dir);
	snprintf(so, sizeof so, "%s/tiny.so", dir);
	rt_model_desc d = kiln__desc;
	d.weights = NULL;
	d.weights_file = "tiny.weights";
	d.weights_hash = weights_hash();

	assert_null(E->context_create(&d, so, 1));         /* missing */
	assert_non_null(strstr(E->create_error(), "cannot open weights file"));
	assert_int_equal(mkfifo(path, 0600), 0);             /* a FIFO: refused, not blocked */
	assert_null(E->context_create(&d, so, 1));
	assert_non_null(strstr(E->create_error(), "is not a regular file"));
	unlink(path);
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	fwrite(weights, 1, 8, fp);                           /* truncated */
	fclose(fp);
	assert_null(E->context_create(&d, so, 1));
	assert_non_null(strstr(E->create_error(), "8 bytes, expected 16"));
	fp = fopen(path, "wb");
	fwrite(weights, 1, sizeof weights, fp);
	fclose(fp);
	d.weights_hash ^= 1;                                 /* another model's weights */
	assert_null(E->context_create(&d, so, 1));
	assert_non_null(strstr(E->create_error(), "does not belong to this model"));
	d.weights_hash ^= 1;
	kiln_context *c = E->context_create(&d, so, 1);
	assert_non_null(c);
	float x[40], m[40];
	kiln_tensor in[2], out[2] = {0};
	fill_inputs(in, x, m, 5, 0.0f);
	assert_int_equal(E->run(c, in, 2, out, 2), 0);
	assert_int_equal(check_outputs(in, out, 5), 0);
	E->context_free(c);
	unlink(path);
	rmdir(dir);

	d = kiln__desc;
	d.abi_version = 99;
	assert_null(E->context_create(&d, NULL, 1));
	assert_non_null(strstr(E->create_error(), "ABI version 99"));
}

typedef struct worker { int64_t batch; int failures; } worker;

static void *run_many(void *arg)
{
	worker *w = arg;
	kiln_context *c = E->context_create(&kiln__desc, NULL, 2);
	if (!c) {
		w->failures = -1;
		return NULL;
	}
	float *x = malloc(sizeof(float) * 4 * 64), *m = malloc(sizeof(float) * 4 * 64);
	kiln_tensor in[2], out[2] = {{0}};
	for (int it = 0; it < 200; it++) {
		int64_t b = w->batch + (it % 3);                 /* re-plans too */
		fill_inputs(in, x, m, b, (float)it * 0.01f);
		if (E->run(c, in, 2, out, 2) || check_outputs(in, out, b))
			w->failures++;
	}
	free(x);
	free(m);
	E->context_free(c);
	return NULL;
}

static void test_two_threads(void **state)
{
	(void)state;
	pthread_t t[2];
	worker w[2] = { { 3, 0 }, { 40, 0 } };
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, run_many, &w[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	assert_int_equal(w[0].failures, 0);
	assert_int_equal(w[1].failures, 0);
}

/* ---- the loader on a real .so ---- */

/* -DWBYTES=N: a descriptor that claims N bytes of weights (4 real);
 * -DSLOW_US=N: each run sleeps N microseconds (runs on two threads overlap) */
static const char model_src[] =
	"#include \"rt.h\"\n"
	"#include <unistd.h>\n"
	"#ifndef WBYTES\n#define WBYTES 4\n#endif\n"
	"#ifndef SLOW_US\n#define SLOW_US 0\n#endif\n"
	PLUS_ONE_DECLS
	PLUS_ONE_RUN("  if (SLOW_US) usleep(SLOW_US);\n")
	"const rt_model_desc kiln__desc = { RT_ABI_VERSION, \"plus1\", 1, 1, 1, 0, io, io + 1,\n"
	"  dims, syms, 0, 0, 0, WBYTES, (const char *)&one, plan, shapes, run };\n";

/* Builds model_src (with extra cc flags) into so; 0 or the cc status. */
static int build_model(const char *dir, const char *flags, const char *so)
{
	char src[256], cmd[2048];
	snprintf(src, sizeof src, "%s/m.c", dir);
	FILE *fp = fopen(src, "w");
	if (!fp)
		return -1;
	fputs(model_src, fp);
	fclose(fp);
	snprintf(cmd, sizeof cmd,
	         "cc -shared -fPIC %s -I%s/runtime %s -o %s -Wl,-u,kiln_entry %s/libkiln_rt.a "
	         "-lm -lpthread 2>&1", flags, KILN_SOURCE_DIR, src, so, KILN_BINARY_DIR);
	int rc = system(cmd);
	unlink(src);
	return rc;
}

static void test_loader(void **state)
{
	(void)state;
	assert_null(kiln_model_load("/nonexistent/model.so"));
	assert_non_null(strstr(kiln_load_error(), "/nonexistent/model.so: cannot load"));
	/* no path at all: one line that says so (not an errno about "./") */
	assert_null(kiln_model_load(""));
	assert_string_equal(kiln_load_error(), "kiln_model_load: empty path");
	assert_null(kiln_model_load(NULL));
	assert_string_equal(kiln_load_error(), "kiln_model_load: path is NULL");

	char dir[] = "/tmp/kiln_rtload_XXXXXX", src[256], so[256], cmd[2048];
	assert_non_null(mkdtemp(dir));
	snprintf(src, sizeof src, "%s/m.c", dir);
	snprintf(so, sizeof so, "%s/m.so", dir);
	FILE *fp = fopen(src, "w");
	assert_non_null(fp);
	fputs(model_src, fp);
	fclose(fp);
	snprintf(cmd, sizeof cmd,
	         "cc -shared -fPIC -I%s/runtime %s -o %s -Wl,-u,kiln_entry %s/libkiln_rt.a "
	         "-lm -lpthread 2>&1", KILN_SOURCE_DIR, src, so, KILN_BINARY_DIR);
	int rc = system(cmd);
	if (rc != 0) {
		print_message("could not build the test model (%s), loader check skipped\n", cmd);
		skip();
	}
	/* linked without -u kiln_entry: the archive member with the entry point
	 * is not pulled in, and the loader says so */
	char noent[256];
	snprintf(noent, sizeof noent, "%s/noentry.so", dir);
	snprintf(cmd, sizeof cmd, "cc -shared -fPIC -I%s/runtime %s -o %s %s/libkiln_rt.a "
	         "-lm -lpthread 2>&1", KILN_SOURCE_DIR, src, noent, KILN_BINARY_DIR);
	assert_int_equal(system(cmd), 0);
	assert_null(kiln_model_load(noent));
	assert_non_null(strstr(kiln_load_error(), "not a kiln model (no kiln_entry)"));
	unlink(noent);
	kiln_model *m = kiln_model_load(so);
	assert_non_null(m);
	assert_int_equal(kiln_model_num_inputs(m), 1);
	assert_int_equal(kiln_model_num_outputs(m), 1);
	assert_string_equal(kiln_model_input(m, 0)->name, "x");
	assert_string_equal(kiln_model_output(m, 0)->dims[0], "n");
	assert_null(kiln_model_input(m, 1));
	kiln_context *c = kiln_context_create(m, 2);
	assert_non_null(c);
	float x[3] = { 1, 2, 3 };
	kiln_tensor in = { KILN_F32, 1, { 3 }, x, sizeof x }, out = {0};
	assert_int_equal(kiln_run(c, &in, 1, &out, 1), 0);
	assert_int_equal(out.shape[0], 3);
	assert_true(((float *)out.data)[2] == 4.0f);
	in.rank = 2;
	assert_int_not_equal(kiln_run(c, &in, 1, &out, 1), 0);
	assert_string_equal(kiln_last_error(c), "input 'x': rank 2, expected 1");
	kiln_context_free(c);
	kiln_model_free(m);
	unlink(so);
	unlink(src);
	rmdir(dir);
}

/* ---- robust loading, lifetimes, one context on two threads ---- */

/* Copies the first n bytes of src to dst. */
static void copy_prefix(const char *src, const char *dst, long n)
{
	FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
	assert_non_null(in);
	assert_non_null(out);
	char buf[4096];
	for (long left = n; left > 0;) {
		size_t r = fread(buf, 1, left < (long)sizeof buf ? (size_t)left : sizeof buf, in);
		assert_true(r > 0);
		assert_int_equal(fwrite(buf, 1, r, out), r);
		left -= (long)r;
	}
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/* Cut copies of a model .so are refused by kiln_model_load with one line
 * naming the file (before this check they died in dlopen or with SIGBUS);
 * a descriptor whose weights run past the file is refused after dlopen. */
static void test_loader_truncated(void **state)
{
	(void)state;
	char dir[] = "/tmp/kiln_rttrunc_XXXXXX", so[256], cut[256];
	assert_non_null(mkdtemp(dir));
	snprintf(so, sizeof so, "%s/m.so", dir);
	snprintf(cut, sizeof cut, "%s/cut.so", dir);
	if (build_model(dir, "", so)) {
		rmdir(dir);
		skip();
	}
	FILE *fp = fopen(so, "rb");
	assert_non_null(fp);
	fseek(fp, 0, SEEK_END);
	long size = ftell(fp);
	fclose(fp);
	const long cuts[] = { 0, 3, 10, 63, 64, 100, 1000, size / 2, size - 64, size - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		copy_prefix(so, cut, cuts[i]);
		kiln_model *m = kiln_model_load(cut);
		if (m)
			print_message("a copy cut at byte %ld of %ld loaded\n", cuts[i], size);
		assert_null(m);
		const char *e = kiln_load_error();
		assert_non_null(strstr(e, cut));
		assert_null(strchr(e, '\n'));
		assert_true(strstr(e, cuts[i] ? "truncated:" : "empty file") != NULL);
	}
	/* the whole file still loads */
	copy_prefix(so, cut, size);
	kiln_model *m = kiln_model_load(cut);
	assert_non_null(m);
	kiln_model_free(m);
	/* weights that end past their segment */
	assert_int_equal(build_model(dir, "-DWBYTES=1073741824", so), 0);
	assert_null(kiln_model_load(so));
	assert_non_null(strstr(kiln_load_error(), "truncated: weights end at byte"));
	unlink(cut);
	unlink(so);
	rmdir(dir);
}

/* kiln_model_free before kiln_context_free: the contexts keep the model
 * loaded (under ASan: no use after free, no leak). */
static void test_model_freed_first(void **state)
{
	(void)state;
	char dir[] = "/tmp/kiln_rtfree_XXXXXX", so[256];
	assert_non_null(mkdtemp(dir));
	snprintf(so, sizeof so, "%s/m.so", dir);
	if (build_model(dir, "", so)) {
		rmdir(dir);
		skip();
	}
	kiln_model *m = kiln_model_load(so);
	assert_non_null(m);
	kiln_context *c1 = kiln_context_create(m, 1), *c2 = kiln_context_create(m, 2);
	assert_non_null(c1);
	assert_non_null(c2);
	kiln_model_free(m);
	float x[3] = { 1, 2, 3 };
	kiln_tensor in = { KILN_F32, 1, { 3 }, x, sizeof x }, out = {0};
	assert_int_equal(kiln_run(c1, &in, 1, &out, 1), 0);
	assert_true(((float *)out.data)[1] == 3.0f);
	kiln_context_free(c1);
	memset(&out, 0, sizeof out);
	assert_int_equal(kiln_run(c2, &in, 1, &out, 1), 0);
	assert_true(((float *)out.data)[2] == 4.0f);
	kiln_context_free(c2);
	unlink(so);
	rmdir(dir);
}

typedef struct hammer {
	kiln_context *c;
	int ok, busy, bad;
	float base;
} hammer;

static void *hammer_run(void *arg)
{
	hammer *h = arg;
	for (int it = 0; it < 60; it++) {
		float x[5], y[5] = {0};
		for (int k = 0; k < 5; k++)
			x[k] = h->base + (float)(it * 5 + k);
		kiln_tensor in = { KILN_F32, 1, { 5 }, x, sizeof x };
		kiln_tensor out = { .data = y, .nbytes = sizeof y };   /* the caller's */
		int rc = kiln_run(h->c, &in, 1, &out, 1);
		if (rc == 0) {
			bool right = out.rank == 1 && out.shape[0] == 5;
			for (int k = 0; k < 5; k++)
				right = right && y[k] == x[k] + 1.0f;
			h->ok += right;
			h->bad += !right;
		} else if (rc == KILN_BUSY &&
		           strstr(kiln_last_error(h->c), "in use by another thread")) {
			h->busy++;
		} else {
			h->bad++;
		}
		usleep(500);         /* a gap for the other thread to get in */
	}
	return NULL;
}

/* Two threads hammer one context whose runs take 2 ms: every call either
 * succeeds with the right output or is refused as busy; busy refusals
 * happen; and the context still works afterwards. */
static void test_one_context_two_threads(void **state)
{
	(void)state;
	char dir[] = "/tmp/kiln_rtbusy_XXXXXX", so[256];
	assert_non_null(mkdtemp(dir));
	snprintf(so, sizeof so, "%s/m.so", dir);
	if (build_model(dir, "-DSLOW_US=2000", so)) {
		rmdir(dir);
		skip();
	}
	kiln_model *m = kiln_model_load(so);
	assert_non_null(m);
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	hammer h[2] = { { c, 0, 0, 0, 0.0f }, { c, 0, 0, 0, 1000.0f } };
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, hammer_run, &h[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	print_message("ok %d+%d, busy %d+%d\n", h[0].ok, h[1].ok, h[0].busy, h[1].busy);
	assert_int_equal(h[0].bad + h[1].bad, 0);
	assert_int_equal(h[0].ok + h[0].busy + h[1].ok + h[1].busy, 120);
	assert_true(h[0].busy + h[1].busy > 0);
	assert_true(h[0].ok + h[1].ok > 0);
	/* not busy any more: a run works and the error is the context's own */
	float x[2] = { 5, 6 };
	kiln_tensor in = { KILN_F32, 1, { 2 }, x, sizeof x }, out = {0};
	assert_int_equal(kiln_run(c, &in, 1, &out, 1), 0);
	in.rank = 2;
	assert_int_equal(kiln_run(c, &in, 1, &out, 1), -1);
	assert_string_equal(kiln_last_error(c), "input 'x': rank 2, expected 1");
	kiln_context_free(c);
	kiln_model_free(m);
	unlink(so);
	rmdir(dir);
}

static void test_loader_not_a_model(void **state)
{
	(void)state;
	char path[64];
	snprintf(path, sizeof path, "/tmp/kiln_rtload_empty_%d.so", (int)getpid());
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("not an elf file\n", fp);
	fclose(fp);
	assert_null(kiln_model_load(path));
	assert_non_null(strstr(kiln_load_error(), "cannot load"));
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_run_and_replan),
		cmocka_unit_test(test_plan_error),
		cmocka_unit_test(test_input_errors),
		cmocka_unit_test(test_caller_outputs),
		cmocka_unit_test(test_overlapping_buffers),
		cmocka_unit_test(test_output_size_overflow),
		cmocka_unit_test(test_external_weights),
		cmocka_unit_test(test_cold_weights),
		cmocka_unit_test(test_two_threads),
		cmocka_unit_test(test_loader),
		cmocka_unit_test(test_loader_not_a_model),
		cmocka_unit_test(test_loader_truncated),
		cmocka_unit_test(test_model_freed_first),
		cmocka_unit_test(test_one_context_two_threads),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
