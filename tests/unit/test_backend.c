/* Backend end to end: small graphs (text IR) -> shape inference ->
 * be_compile -> .so in a temp dir -> kiln_model_load -> kiln_run, compared
 * with values computed here.  Also: run-time errors naming the node
 * (Gather index, broadcast), external weights, emit=llvm/obj, OUT.h that
 * compiles, compile errors (unsupported op, elided constant, unbound symbol). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "ir.h"
#include "kiln.h"
#include "be_test.h"

/* Compiles text to OUT (in the temp dir); returns be_compile's status. */
static int compile_opts(const char *text, BeOptions *o, Diag *d)
{
	Graph *g = test_parse(text);
	BeStats st;
	int rc = be_compile(g, o, &st, d);
	ir_graph_free(g);
	return rc;
}

static kiln_model *compile_load(const char *text, const char *name)
{
	BeOptions o = {.out = tmp_path(name), .emit = BE_EMIT_SO, .opt_level = 2};
	Diag d = {0};
	if (compile_opts(text, &o, &d))
		fail_msg("compile: %s", d.msg);
	kiln_model *m = kiln_model_load(o.out);
	if (!m)
		fail_msg("load: %s", kiln_load_error());
	return m;
}

static kiln_tensor tensor(kiln_dtype t, int rank, const int64_t *shape, void *data, size_t es)
{
	kiln_tensor x;
	memset(&x, 0, sizeof x);
	x.dtype = t;
	x.rank = rank;
	size_t n = 1;
	for (int i = 0; i < rank; i++) {
		x.shape[i] = shape[i];
		n *= (size_t)shape[i];
	}
	x.data = data;
	x.nbytes = n * es;
	return x;
}

/* ---- y = Softmax(MatMul(x, W) + b), symbolic batch ---------------------- */

static const char *softmax_text =
	"graph @mlp(%x: f32[batch, 4]) opset 17 {\n"
	"  %W = const f32[4, 3] dense<[0.1, 0.2, 0.3, -0.4, 0.5, 0.6, 0.7, -0.8, 0.9, 1.0, 1.1, 1.2]>\n"
	"  %b = const f32[3] dense<[0.5, -0.25, 0.125]>\n"
	"  %m = MatMul(%x, %W) @\"mm\"\n"
	"  %a = Add(%m, %b) @\"add\"\n"
	"  %y = Softmax(%a) {axis = -1} @\"sm\"\n"
	"  return %y\n"
	"}\n";

static const float W[12] = {0.1f, 0.2f, 0.3f, -0.4f, 0.5f, 0.6f, 0.7f, -0.8f, 0.9f, 1.0f, 1.1f, 1.2f};
static const float B[3] = {0.5f, -0.25f, 0.125f};

static void softmax_ref(const float *x, int64_t batch, float *y)
{
	for (int64_t i = 0; i < batch; i++) {
		double a[3], mx = -1e30, s = 0;
		for (int j = 0; j < 3; j++) {
			a[j] = B[j];
			for (int k = 0; k < 4; k++)
				a[j] += (double)x[i * 4 + k] * W[k * 3 + j];
			mx = a[j] > mx ? a[j] : mx;
		}
		for (int j = 0; j < 3; j++)
			s += exp(a[j] - mx);
		for (int j = 0; j < 3; j++)
			y[i * 3 + j] = (float)(exp(a[j] - mx) / s);
	}
}

static void run_softmax(kiln_model *m, int64_t batch)
{
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	float x[64], y[64], ref[64];
	for (int i = 0; i < batch * 4; i++)
		x[i] = (float)((i * 7) % 11) / 5.0f - 1.0f;
	int64_t shp[2] = {batch, 4};
	kiln_tensor in = tensor(KILN_F32, 2, shp, x, 4);
	kiln_tensor out;
	memset(&out, 0, sizeof out);
	if (kiln_run(c, &in, 1, &out, 1))
		fail_msg("run: %s", kiln_last_error(c));
	assert_int_equal(out.rank, 2);
	assert_int_equal(out.shape[0], batch);
	assert_int_equal(out.shape[1], 3);
	memcpy(y, out.data, (size_t)batch * 3 * sizeof(float));
	softmax_ref(x, batch, ref);
	for (int i = 0; i < batch * 3; i++)
		assert_float_equal(y[i], ref[i], 1e-5);
	/* the same context again at another batch size (re-plan) */
	kiln_context_free(c);
}

static void test_softmax_mlp(void **state)
{
	(void)state;
	kiln_model *m = compile_load(softmax_text, "mlp.so");
	assert_int_equal(kiln_model_num_inputs(m), 1);
	assert_int_equal(kiln_model_num_outputs(m), 1);
	const kiln_io_info *io = kiln_model_input(m, 0);
	assert_string_equal(io->name, "x");
	assert_string_equal(io->dims[0], "batch");
	assert_string_equal(io->dims[1], "4");
	run_softmax(m, 2);
	run_softmax(m, 5);
	run_softmax(m, 1);
	kiln_model_free(m);
	/* the typed entry point of mlp.h, in a program linked with libkiln */
	const char *prog =
		"#include <stdio.h>\n#include \"mlp.h\"\n"
		"int main(int argc, char **argv) {\n"
		"  kiln_model *m = kiln_model_load(argv[1]);\n"
		"  kiln_context *c = m ? kiln_context_create(m, 1) : NULL;\n"
		"  float x[8] = {1, 0, 0, 0, 0, 1, 0, 0}, y[6];\n"
		"  if (!c || mlp_run(c, x, 2, y)) return 1;\n"
		"  for (int i = 0; i < 6; i++) printf(\"%.6f\\n\", y[i]);\n"
		"  (void)argc; kiln_context_free(c); kiln_model_free(m); return 0;\n}\n";
	FILE *f = fopen(tmp_path("use_mlp.c"), "w");
	assert_non_null(f);
	fputs(prog, f);
	fclose(f);
	char cmd[2048];
#ifdef __SANITIZE_ADDRESS__
	const char *san = "-fsanitize=address,undefined";   /* libkiln.a is instrumented */
#else
	const char *san = "";
#endif
	snprintf(cmd, sizeof cmd, "cc -std=c11 -Wall -Werror %s -I%s/runtime -I%s -o %s %s %s/libkiln.a -ldl",
	         san, KILN_SOURCE_DIR, tmpdir, tmp_path("use_mlp"), tmp_path("use_mlp.c"), KILN_BINARY_DIR);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s %s", tmp_path("use_mlp"), tmp_path("mlp.so"));
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	float x[8] = {1, 0, 0, 0, 0, 1, 0, 0}, ref[6];
	softmax_ref(x, 2, ref);
	for (int i = 0; i < 6; i++) {
		float v;
		assert_int_equal(fscanf(p, "%f", &v), 1);
		assert_float_equal(v, ref[i], 1e-5);
	}
	assert_int_equal(pclose(p), 0);
}

/* Same model, external weights: OUT.weights written, loaded beside the .so. */
static void test_external_weights(void **state)
{
	(void)state;
	BeOptions o = {.out = tmp_path("ext.so"), .emit = BE_EMIT_SO, .opt_level = 0,
	               .weights_external = true};
	Diag d = {0};
	if (compile_opts(softmax_text, &o, &d))
		fail_msg("compile: %s", d.msg);
	struct stat st;
	assert_int_equal(stat(tmp_path("ext.weights"), &st), 0);
	assert_int_equal(st.st_size, 128);   /* two constants, 64-byte aligned */
	kiln_model *m = kiln_model_load(o.out);
	if (!m)
		fail_msg("load: %s", kiln_load_error());
	run_softmax(m, 3);
	kiln_model_free(m);
	/* a truncated weights file is refused at context creation */
	assert_int_equal(truncate(tmp_path("ext.weights"), 64), 0);
	m = kiln_model_load(o.out);
	if (m) {
		assert_null(kiln_context_create(m, 1));
		kiln_model_free(m);
	}
}

static void test_emit_llvm_obj(void **state)
{
	(void)state;
	BeOptions o = {.out = tmp_path("mlp.ll"), .emit = BE_EMIT_LLVM, .opt_level = 3};
	Diag d = {0};
	if (compile_opts(softmax_text, &o, &d))
		fail_msg("compile: %s", d.msg);
	FILE *f = fopen(o.out, "r");
	assert_non_null(f);
	char line[4096];
	int defs = 0, add_calls = 0, mm_calls = 0;
	while (fgets(line, sizeof line, f)) {
		defs += strstr(line, "define") != NULL && strstr(line, "@kiln__run") != NULL;
		add_calls += strstr(line, "call") && strstr(line, "@rt_op_Add");
		mm_calls += strstr(line, "call") && strstr(line, "@rt_op_MatMul");
	}
	fclose(f);
	assert_int_equal(defs, 1);
	assert_int_equal(add_calls, 0);   /* inline loop */
	assert_int_equal(mm_calls, 1);    /* kernel */
	o.out = tmp_path("mlp.o");
	o.emit = BE_EMIT_OBJ;
	if (compile_opts(softmax_text, &o, &d))
		fail_msg("compile obj: %s", d.msg);
	struct stat st;
	assert_int_equal(stat(o.out, &st), 0);
	assert_true(st.st_size > 0);
}

/* ---- inline elementwise loops: broadcasting both ways, all lowered ops -- */

static const char *ew_text =
	"graph @ew(%x: f32[n, 8], %v: f32[8], %c: f32[n, 1], %m: bool[n, 8]) opset 17 {\n"
	"  %two = const f32[] dense<[2.0]>\n"
	"  %half = const f32[1] dense<[0.5]>\n"
	"  %a = Mul(%x, %v)\n"
	"  %b = Sub(%a, %c)\n"
	"  %s = Sigmoid(%b)\n"
	"  %p = Pow(%x, %two)\n"
	"  %q = Pow(%p, %half)\n"
	"  %t = Tanh(%q)\n"
	"  %e = Erf(%t)\n"
	"  %r = Relu(%b)\n"
	"  %ab = Abs(%b)\n"
	"  %sq = Sqrt(%ab)\n"
	"  %ng = Neg(%sq)\n"
	"  %ex = Exp(%ng)\n"
	"  %d = Div(%ex, %c)\n"
	"  %w = Where(%m, %s, %d)\n"
	"  %z = Add(%w, %e)\n"
	"  %o = Add(%z, %r)\n"
	"  return %o\n"
	"}\n";

static float ew_ref(float x, float v, float c, int m)
{
	float b = x * v - c;
	float s = 1.0f / (1.0f + expf(-b));
	float e = erff(tanhf(sqrtf(x * x)));
	float d = expf(-sqrtf(fabsf(b))) / c;
	return (m ? s : d) + e + (b > 0 ? b : 0);
}

static void test_elementwise_inline(void **state)
{
	(void)state;
	kiln_model *m = compile_load(ew_text, "ew.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	for (int64_t n = 1; n <= 13; n += 6) {
		float x[13 * 8], v[8], cc[13], y[13 * 8];
		uint8_t mk[13 * 8];
		for (int i = 0; i < n * 8; i++) {
			x[i] = (float)((i * 37) % 19) / 4.0f - 2.0f;
			mk[i] = (i % 3) == 0;
		}
		for (int i = 0; i < 8; i++)
			v[i] = 0.25f * (float)i - 1.0f;
		for (int i = 0; i < n; i++)
			cc[i] = 0.5f + (float)i;
		int64_t sx[2] = {n, 8}, sv[1] = {8}, sc[2] = {n, 1};
		kiln_tensor in[4] = {tensor(KILN_F32, 2, sx, x, 4), tensor(KILN_F32, 1, sv, v, 4),
		                     tensor(KILN_F32, 2, sc, cc, 4), tensor(KILN_BOOL, 2, sx, mk, 1)};
		kiln_tensor out;
		memset(&out, 0, sizeof out);
		out.data = y;
		out.nbytes = sizeof y;
		if (kiln_run(c, in, 4, &out, 1))
			fail_msg("run: %s", kiln_last_error(c));
		for (int i = 0; i < n; i++)
			for (int j = 0; j < 8; j++) {
				float r = ew_ref(x[i * 8 + j], v[j], cc[i], mk[i * 8 + j]);
				if (fabsf(y[i * 8 + j] - r) > 1e-5f * (1 + fabsf(r)))
					fail_msg("n=%lld [%d,%d]: %g, expected %g", (long long)n, i, j,
					         y[i * 8 + j], r);
			}
	}
	kiln_context_free(c);
	kiln_model_free(m);
	/* every op above is inline: no kernel call in the module */
	BeOptions o = {.out = tmp_path("ew.ll"), .emit = BE_EMIT_LLVM, .opt_level = 3};
	Diag d = {0};
	if (compile_opts(ew_text, &o, &d))
		fail_msg("compile: %s", d.msg);
	FILE *f = fopen(o.out, "r");
	assert_non_null(f);
	char line[4096];
	int calls = 0, vec = 0;
	while (fgets(line, sizeof line, f)) {
		calls += strstr(line, "@rt_op_") != NULL;
		vec += strstr(line, "x float>") != NULL;
	}
	fclose(f);
	assert_int_equal(calls, 0);
	assert_true(vec > 0);    /* vectorized */
}

/* ---- run-time errors name the node ------------------------------------- */

static void test_gather_out_of_range(void **state)
{
	(void)state;
	kiln_model *m = compile_load(
		"graph @g(%i: i64[n]) opset 17 {\n"
		"  %t = const f32[4, 2] dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0]>\n"
		"  %y = Gather(%t, %i) {axis = 0} @\"the_gather\"\n"
		"  return %y\n"
		"}\n", "gather.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	int64_t idx[3] = {3, -4, 1}, n = 3;
	kiln_tensor in = tensor(KILN_I64, 1, &n, idx, 8), out;
	memset(&out, 0, sizeof out);
	if (kiln_run(c, &in, 1, &out, 1))
		fail_msg("run: %s", kiln_last_error(c));
	const float *y = out.data;
	assert_float_equal(y[0], 7.0f, 0);
	assert_float_equal(y[2], 1.0f, 0);
	assert_float_equal(y[5], 4.0f, 0);
	idx[1] = 7;
	memset(&out, 0, sizeof out);
	assert_int_not_equal(kiln_run(c, &in, 1, &out, 1), 0);
	assert_non_null(strstr(kiln_last_error(c), "the_gather"));
	kiln_context_free(c);
	kiln_model_free(m);
}

static void test_broadcast_mismatch(void **state)
{
	(void)state;
	kiln_model *m = compile_load(
		"graph @bc(%a: f32[n, 3], %b: f32[m, 1]) opset 17 {\n"
		"  %y = Add(%a, %b) @\"the_add\"\n"
		"  return %y\n"
		"}\n", "bc.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	float a[6] = {1, 2, 3, 4, 5, 6}, b[4] = {10, 20, 30, 40};
	int64_t sa[2] = {2, 3}, sb[2] = {2, 1};
	kiln_tensor in[2] = {tensor(KILN_F32, 2, sa, a, 4), tensor(KILN_F32, 2, sb, b, 4)}, out;
	memset(&out, 0, sizeof out);
	if (kiln_run(c, in, 2, &out, 1))
		fail_msg("run: %s", kiln_last_error(c));
	const float *y = out.data;
	assert_float_equal(y[0], 11, 0);
	assert_float_equal(y[5], 26, 0);
	/* n = 2 against m = 3: neither 1 nor equal */
	sb[0] = 3;
	in[1] = tensor(KILN_F32, 2, sb, b, 4);
	memset(&out, 0, sizeof out);
	assert_int_not_equal(kiln_run(c, in, 2, &out, 1), 0);
	assert_non_null(strstr(kiln_last_error(c), "the_add"));
	/* m = 1 broadcasts */
	sb[0] = 1;
	in[1] = tensor(KILN_F32, 2, sb, b, 4);
	memset(&out, 0, sizeof out);
	if (kiln_run(c, in, 2, &out, 1))
		fail_msg("run: %s", kiln_last_error(c));
	y = out.data;
	assert_int_equal(out.shape[0], 2);
	assert_float_equal(y[4], 15, 0);
	kiln_context_free(c);
	kiln_model_free(m);
}

/* An input dim that is an expression is checked at run time. */
static void test_expression_input_dim(void **state)
{
	(void)state;
	kiln_model *m = compile_load(
		"graph @ex(%a: f32[n], %b: f32[n + 1]) opset 17 {\n"
		"  %c = Concat(%a, %b) {axis = 0} @\"cat\"\n"
		"  return %c\n"
		"}\n", "ex.so");
	assert_string_equal(kiln_model_input(m, 1)->dims[0], "n + 1");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	float a[2] = {1, 2}, b[4] = {3, 4, 5, 6};
	int64_t na = 2, nb = 3;
	kiln_tensor in[2] = {tensor(KILN_F32, 1, &na, a, 4), tensor(KILN_F32, 1, &nb, b, 4)}, out;
	memset(&out, 0, sizeof out);
	if (kiln_run(c, in, 2, &out, 1))
		fail_msg("run: %s", kiln_last_error(c));
	assert_int_equal(out.shape[0], 5);
	assert_float_equal(((float *)out.data)[4], 5, 0);
	nb = 4;
	in[1] = tensor(KILN_F32, 1, &nb, b, 4);
	memset(&out, 0, sizeof out);
	assert_int_not_equal(kiln_run(c, in, 2, &out, 1), 0);
	const char *e = kiln_last_error(c);
	if (!strstr(e, "'b'") || !strstr(e, "n + 1"))
		fail_msg("error: %s", e);
	kiln_context_free(c);
	kiln_model_free(m);
}

/* ---- outputs: an input, a constant, a value returned twice -------------- */

static void test_output_copies(void **state)
{
	(void)state;
	kiln_model *m = compile_load(
		"graph @oc(%x: f32[k]) opset 17 {\n"
		"  %c = const f32[2] dense<[1.5, -2.5]>\n"
		"  %y = Relu(%x)\n"
		"  return %y, %x, %c, %y\n"
		"}\n", "oc.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	float x[3] = {-1, 2, -3};
	int64_t k = 3;
	kiln_tensor in = tensor(KILN_F32, 1, &k, x, 4), out[4];
	memset(out, 0, sizeof out);
	if (kiln_run(c, &in, 1, out, 4))
		fail_msg("run: %s", kiln_last_error(c));
	const float *y0 = out[0].data, *y1 = out[1].data, *y2 = out[2].data, *y3 = out[3].data;
	assert_float_equal(y0[1], 2, 0);
	assert_float_equal(y0[2], 0, 0);
	assert_float_equal(y1[2], -3, 0);
	assert_float_equal(y2[1], -2.5, 0);
	assert_float_equal(y3[0], 0, 0);
	assert_float_equal(y3[1], 2, 0);
	kiln_context_free(c);
	kiln_model_free(m);
}

/* ---- shape arithmetic at run time, reductions with constant axes -------- */

static void test_shape_ops(void **state)
{
	(void)state;
	kiln_model *m = compile_load(
		"graph @sh(%x: f32[b, s, 4]) opset 17 {\n"
		"  %ax = const i64[1] dense<[1]>\n"
		"  %z = const i64[1] dense<[0]>\n"
		"  %m1 = const i64[1] dense<[-1]>\n"
		"  %shp = Shape(%x)\n"
		"  %b0 = Gather(%shp, %z) {axis = 0}\n"
		"  %ns = Concat(%b0, %m1) {axis = 0}\n"
		"  %r = Reshape(%x, %ns)\n"
		"  %t = Transpose(%x) {perm = [0, 2, 1]}\n"
		"  %s = ReduceSum(%t, %ax) {keepdims = 0}\n"
		"  return %r, %s\n"
		"}\n", "sh.so");
	kiln_context *c = kiln_context_create(m, 2);
	assert_non_null(c);
	float x[2 * 3 * 4];
	for (int i = 0; i < 24; i++)
		x[i] = (float)i;
	int64_t shp[3] = {2, 3, 4};
	kiln_tensor in = tensor(KILN_F32, 3, shp, x, 4), out[2];
	memset(out, 0, sizeof out);
	if (kiln_run(c, &in, 1, out, 2))
		fail_msg("run: %s", kiln_last_error(c));
	assert_int_equal(out[0].rank, 2);
	assert_int_equal(out[0].shape[0], 2);
	assert_int_equal(out[0].shape[1], 12);
	assert_float_equal(((float *)out[0].data)[13], 13, 0);
	/* s[b, s] = sum over the 4 features */
	assert_int_equal(out[1].rank, 2);
	assert_int_equal(out[1].shape[1], 3);
	assert_float_equal(((float *)out[1].data)[0], 0 + 1 + 2 + 3, 0);
	assert_float_equal(((float *)out[1].data)[5], 20 + 21 + 22 + 23, 0);
	kiln_context_free(c);
	kiln_model_free(m);
}

/* ---- inline layout, gather and reduction loops -------------------------- */

static uint32_t rng_state = 12345;

static float rnd(void)
{
	rng_state = rng_state * 1664525u + 1013904223u;
	return (float)(rng_state >> 8) / (float)(1u << 24) * 4.0f - 2.0f;
}

/* Runs a compiled model; outputs context-owned. */
static void run_or_fail(kiln_context *c, kiln_tensor *in, int nin, kiln_tensor *out, int nout)
{
	memset(out, 0, (size_t)nout * sizeof *out);
	if (kiln_run(c, in, nin, out, nout))
		fail_msg("run: %s", kiln_last_error(c));
}

static void expect_close(const char *what, int64_t i, float got, float want)
{
	if (!(fabsf(got - want) <= 1e-5f * (1 + fabsf(want))) && !(isinf(want) && got == want))
		fail_msg("%s[%lld]: %g, expected %g", what, (long long)i, got, want);
}

static const char *layout_text =
	"graph @lay(%x: f32[n, 3, m], %b: f32[n, 2, m], %v: f32[m], %ids: i64[n, 3], "
	"%mk: bool[n, 3]) opset 17 {\n"
	"  %t = Transpose(%x) {perm = [2, 0, 1]} @\"tr\"\n"
	"  %ti = Transpose(%ids) @\"tri\"\n"
	"  %s3 = const i64[2] dense<[3, 1]>\n"
	"  %e = Expand(%v, %s3) @\"ex\"\n"
	"  %cat = Concat(%x, %b) {axis = 1} @\"cat\"\n"
	"  %sp = const i64[2] dense<[4, 1]>\n"
	"  %p0, %p1 = Split(%cat, %sp) {axis = 1} @\"split\"\n"
	"  %st = const i64[2] dense<[1, -1]>\n"
	"  %en = const i64[2] dense<[1000, -1000]>\n"
	"  %ax = const i64[2] dense<[2, 1]>\n"
	"  %sx = const i64[2] dense<[2, -1]>\n"
	"  %sl = Slice(%x, %st, %en, %ax, %sx) @\"slice\"\n"
	"  %f = Flatten(%t) {axis = 1} @\"flat\"\n"
	"  %bm = Concat(%mk, %mk) {axis = 0} @\"catb\"\n"
	"  return %t, %ti, %e, %p0, %p1, %sl, %f, %bm\n"
	"}\n";

static void check_layout(kiln_context *c, int64_t n, int64_t m)
{
	float x[4 * 3 * 9], b[4 * 2 * 9], v[9];
	int64_t ids[4 * 3];
	uint8_t mk[4 * 3];
	for (int i = 0; i < n * 3 * m; i++)
		x[i] = rnd();
	for (int i = 0; i < n * 2 * m; i++)
		b[i] = rnd();
	for (int i = 0; i < m; i++)
		v[i] = rnd();
	for (int i = 0; i < n * 3; i++) {
		ids[i] = 1000 * i - 7;
		mk[i] = i % 2;
	}
	int64_t sx[3] = {n, 3, m}, sb[3] = {n, 2, m}, sv[1] = {m}, si[2] = {n, 3};
	kiln_tensor in[5] = {tensor(KILN_F32, 3, sx, x, 4), tensor(KILN_F32, 3, sb, b, 4),
	                     tensor(KILN_F32, 1, sv, v, 4), tensor(KILN_I64, 2, si, ids, 8),
	                     tensor(KILN_BOOL, 2, si, mk, 1)}, out[8];
	run_or_fail(c, in, 5, out, 8);
	const float *t = out[0].data, *e = out[2].data, *p0 = out[3].data, *p1 = out[4].data;
	const float *sl = out[5].data, *fl = out[6].data;
	const int64_t *ti = out[1].data;
	const uint8_t *bm = out[7].data;
	/* t[k, i, j] = x[i, j, k] */
	assert_int_equal(out[0].shape[0], m);
	for (int64_t k = 0; k < m; k++)
		for (int64_t i = 0; i < n; i++)
			for (int64_t j = 0; j < 3; j++) {
				float want = x[(i * 3 + j) * m + k];
				assert_float_equal(t[(k * n + i) * 3 + j], want, 0);
				assert_float_equal(fl[k * n * 3 + i * 3 + j], want, 0);
			}
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < 3; j++)
			assert_int_equal(ti[j * n + i], ids[i * 3 + j]);
	for (int64_t r = 0; r < 3; r++)
		for (int64_t k = 0; k < m; k++)
			assert_float_equal(e[r * m + k], v[k], 0);
	/* cat = [x, b] along 1 (5 rows), split as 4 + 1 */
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < 5; j++)
			for (int64_t k = 0; k < m; k++) {
				float want = j < 3 ? x[(i * 3 + j) * m + k] : b[(i * 2 + j - 3) * m + k];
				float got = j < 4 ? p0[(i * 4 + j) * m + k] : p1[i * m + k];
				assert_float_equal(got, want, 0);
			}
	/* slice: axis 1 reversed (3 rows), axis 2 from 1 by 2 */
	int64_t ml = m > 1 ? (m - 2) / 2 + 1 : 0;
	assert_int_equal(out[5].shape[1], 3);
	assert_int_equal(out[5].shape[2], ml);
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < 3; j++)
			for (int64_t k = 0; k < ml; k++)
				assert_float_equal(sl[(i * 3 + j) * ml + k], x[(i * 3 + 2 - j) * m + 1 + 2 * k], 0);
	assert_int_equal(out[7].shape[0], 2 * n);
	for (int64_t i = 0; i < 2 * n * 3; i++)
		assert_int_equal(bm[i], mk[i % (n * 3)]);
}

static void test_layout_inline(void **state)
{
	(void)state;
	kiln_model *m = compile_load(layout_text, "lay.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	check_layout(c, 2, 5);
	check_layout(c, 4, 9);
	check_layout(c, 1, 1);
	check_layout(c, 3, 2);
	kiln_context_free(c);
	kiln_model_free(m);
}

static const char *gather_text =
	"graph @gat(%x: f32[n, 3, m], %i: i32[k], %tab: i64[v, 2], %j: i64[a, b]) opset 17 {\n"
	"  %g1 = Gather(%x, %i) {axis = -1} @\"g_inner\"\n"
	"  %g0 = Gather(%tab, %j) {axis = 0} @\"g_rows\"\n"
	"  return %g1, %g0\n"
	"}\n";

static void test_gather_inline(void **state)
{
	(void)state;
	kiln_model *m = compile_load(gather_text, "gat.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	float x[2 * 3 * 7];
	int64_t tab[5 * 2];
	for (int i = 0; i < 42; i++)
		x[i] = rnd();
	for (int i = 0; i < 10; i++)
		tab[i] = 100 + i;
	int32_t idx[4] = {6, -7, 0, -1};
	int64_t jdx[6] = {4, 0, -5, -1, 2, 2};
	int64_t sx[3] = {2, 3, 7}, sk = 4, st[2] = {5, 2}, sj[2] = {2, 3};
	kiln_tensor in[4] = {tensor(KILN_F32, 3, sx, x, 4), tensor(KILN_I32, 1, &sk, idx, 4),
	                     tensor(KILN_I64, 2, st, tab, 8), tensor(KILN_I64, 2, sj, jdx, 8)}, out[2];
	run_or_fail(c, in, 4, out, 2);
	const float *g1 = out[0].data;
	const int64_t *g0 = out[1].data;
	assert_int_equal(out[0].rank, 3);
	assert_int_equal(out[0].shape[2], 4);
	for (int r = 0; r < 6; r++)
		for (int q = 0; q < 4; q++)
			assert_float_equal(g1[r * 4 + q], x[r * 7 + (idx[q] < 0 ? idx[q] + 7 : idx[q])], 0);
	assert_int_equal(out[1].rank, 3);
	for (int q = 0; q < 6; q++)
		for (int e = 0; e < 2; e++)
			assert_int_equal(g0[q * 2 + e], tab[(jdx[q] < 0 ? jdx[q] + 5 : jdx[q]) * 2 + e]);
	/* out of range: one past the end, and below -n (the graph inputs named) */
	idx[2] = 7;
	assert_int_not_equal(kiln_run(c, in, 4, out, 2), 0);
	assert_string_equal(kiln_last_error(c), "node 'g_inner' (Gather): index 7 of 'i' out of range [0, 7)");
	idx[2] = 0;
	jdx[4] = -6;
	assert_int_not_equal(kiln_run(c, in, 4, out, 2), 0);
	assert_string_equal(kiln_last_error(c), "node 'g_rows' (Gather): index -6 of 'j' out of range [0, 5)");
	kiln_context_free(c);
	kiln_model_free(m);
}

static const char *reduce_text =
	"graph @red(%x: f32[n, 3, m]) opset 18 {\n"
	"  %l = const i64[1] dense<[-1]>\n"
	"  %l2 = const i64[2] dense<[1, 2]>\n"
	"  %s = ReduceSum(%x, %l) {keepdims = 0} @\"rs\"\n"
	"  %a = ReduceMean(%x, %l) {keepdims = 1} @\"rm\"\n"
	"  %h = ReduceMax(%x, %l) {keepdims = 0} @\"rx\"\n"
	"  %w = ReduceMin(%x, %l2) {keepdims = 1} @\"rn\"\n"
	"  %q = ReduceSum(%x, %l2) {keepdims = 0} @\"rs2\"\n"
	"  %y = Softmax(%x) {axis = -1} @\"sm\"\n"
	"  return %s, %a, %h, %w, %q, %y\n"
	"}\n";

static void check_reduce(kiln_context *c, int64_t n, int64_t m)
{
	static float x[3 * 3 * 40];
	for (int i = 0; i < n * 3 * m; i++)
		x[i] = rnd() * 4;
	x[m] = -INFINITY;             /* row 1 starts with -inf */
	if (n > 1)
		for (int k = 0; k < m; k++)
			x[3 * m + k] = -INFINITY;   /* row 3 all -inf: softmax as the kernel */
	int64_t sx[3] = {n, 3, m};
	kiln_tensor in = tensor(KILN_F32, 3, sx, x, 4), out[6];
	run_or_fail(c, &in, 1, out, 6);
	assert_int_equal(out[0].rank, 2);
	assert_int_equal(out[1].rank, 3);
	assert_int_equal(out[1].shape[2], 1);
	assert_int_equal(out[3].shape[1], 1);
	assert_int_equal(out[4].rank, 1);
	const float *s = out[0].data, *a = out[1].data, *h = out[2].data, *w = out[3].data;
	const float *q = out[4].data, *y = out[5].data;
	for (int64_t i = 0; i < n; i++) {
		double s2 = 0, w2 = INFINITY;
		for (int64_t j = 0; j < 3; j++) {
			int64_t r = i * 3 + j;
			double sum = 0, mx = -INFINITY;
			for (int64_t k = 0; k < m; k++) {
				sum += x[r * m + k];
				mx = x[r * m + k] > mx ? x[r * m + k] : mx;
				w2 = x[r * m + k] < w2 ? x[r * m + k] : w2;
			}
			s2 += sum;
			expect_close("ReduceSum", r, s[r], (float)sum);
			expect_close("ReduceMean", r, a[r], (float)(sum / (double)m));
			expect_close("ReduceMax", r, h[r], (float)mx);
			double z = 0, off = isinf(mx) ? 0 : mx;
			for (int64_t k = 0; k < m; k++)
				z += exp(x[r * m + k] - off);
			for (int64_t k = 0; k < m; k++) {
				float want = (float)(exp(x[r * m + k] - off) / z);
				if (z == 0) {
					assert_true(isnan(y[r * m + k]));   /* 0/0, as the kernel */
					continue;
				}
				if (fabsf(y[r * m + k] - want) > 1e-6f + 1e-5f * want)
					fail_msg("Softmax[%lld, %lld]: %g, expected %g", (long long)r,
					         (long long)k, y[r * m + k], want);
			}
		}
		expect_close("ReduceMin", i, w[i], (float)w2);
		expect_close("ReduceSum2", i, q[i], (float)s2);
	}
}

static void test_reduce_inline(void **state)
{
	(void)state;
	kiln_model *m = compile_load(reduce_text, "red.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	check_reduce(c, 2, 37);
	check_reduce(c, 3, 40);
	check_reduce(c, 1, 1);
	check_reduce(c, 2, 16);
	kiln_context_free(c);
	kiln_model_free(m);
}

/* The inline ops are loops without kernel calls, and the f32 ones vectorize. */
static void test_inline_llvm(void **state)
{
	(void)state;
	static const char *text =
		"graph @il(%x: f32[n, 16, 64], %i: i64[k], %e: f32[100, 64]) opset 17 {\n"
		"  %t = Transpose(%x) {perm = [1, 0, 2]}\n"
		"  %g = Gather(%e, %i) {axis = 0}\n"
		"  %ax = const i64[1] dense<[-1]>\n"
		"  %r = ReduceMean(%x, %ax) {keepdims = 1}\n"
		"  %s = Softmax(%x) {axis = -1}\n"
		"  return %t, %g, %r, %s\n"
		"}\n";
	BeOptions o = {.out = tmp_path("il.ll"), .emit = BE_EMIT_LLVM, .opt_level = 3};
	Diag d = {0};
	if (compile_opts(text, &o, &d))
		fail_msg("compile: %s", d.msg);
	FILE *f = fopen(o.out, "r");
	assert_non_null(f);
	char line[8192];
	int kernels = 0, vec = 0, calls = 0;
	while (fgets(line, sizeof line, f)) {
		kernels += strstr(line, "@rt_op_") != NULL;
		vec += strstr(line, "<16 x float>") != NULL || strstr(line, "<8 x float>") != NULL;
		calls += strstr(line, "call") && strstr(line, "@expf");
	}
	fclose(f);
	assert_int_equal(kernels, 0);   /* Transpose, Gather, ReduceMean, Softmax inline */
	assert_int_equal(calls, 0);
	assert_true(vec > 0);
}

/* ---- compile-time refusals ---------------------------------------------- */

static void expect_compile_error(const char *text, const char *needle)
{
	BeOptions o = {.out = tmp_path("bad.so"), .emit = BE_EMIT_SO};
	Diag d = {0};
	assert_int_not_equal(compile_opts(text, &o, &d), 0);
	if (!strstr(d.msg, needle))
		fail_msg("error '%s' lacks '%s'", d.msg, needle);
}

/* ---- data-dependent shapes: a Reshape whose shape is an input ----------
 * The extents are bound at run time; one context across good, bad and
 * good values (the dyn buffer grows, the context stays usable); the
 * output written in place in a static model is copied here. */

static void dd_run(kiln_context *c, int64_t n, const int64_t *s2, kiln_tensor *out)
{
	static float x[64];
	static int64_t s[2];
	for (int i = 0; i < n * 6; i++)
		x[i] = (float)i - 5.0f;
	memcpy(s, s2, sizeof s);
	int64_t sx[2] = {n, 6}, ss[1] = {2};
	kiln_tensor in[2] = {tensor(KILN_F32, 2, sx, x, 4), tensor(KILN_I64, 1, ss, s, 8)};
	memset(out, 0, 2 * sizeof *out);
	if (kiln_run(c, in, 2, out, 2))
		fail_msg("run: %s", kiln_last_error(c));
	for (int i = 0; i < n * 6; i++) {
		assert_float_equal(((const float *)out[0].data)[i], x[i] > 0 ? x[i] : 0, 0);
		assert_float_equal(((const float *)out[1].data)[i], -x[i], 0);
	}
}

static void test_data_dependent(void **state)
{
	(void)state;
	kiln_model *m = compile_load(
		"graph @dd(%x: f32[n, 6], %s: i64[2]) opset 17 {\n"
		"  %r = Reshape(%x, %s) @\"rs\"\n"
		"  %y = Relu(%r) @\"relu\"\n"
		"  %z = Neg(%x) @\"neg\"\n"
		"  return %y, %z\n"
		"}\n", "dd.so");
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	kiln_tensor out[2];
	dd_run(c, 2, (int64_t[]){3, -1}, out);
	assert_int_equal(out[0].rank, 2);
	assert_int_equal(out[0].shape[0], 3);
	assert_int_equal(out[0].shape[1], 4);
	assert_int_equal(out[1].shape[0], 2);
	/* 12 elements into 5 * k: one line naming the node */
	float x[12] = {0};
	int64_t sx[2] = {2, 6}, ss[1] = {2}, bad[2] = {5, -1};
	kiln_tensor in[2] = {tensor(KILN_F32, 2, sx, x, 4), tensor(KILN_I64, 1, ss, bad, 8)};
	memset(out, 0, sizeof out);
	assert_int_not_equal(kiln_run(c, in, 2, out, 2), 0);
	assert_non_null(strstr(kiln_last_error(c), "node 'rs' (Reshape): cannot reshape 12 elements"));
	assert_null(strchr(kiln_last_error(c), '\n'));
	/* more elements than before: the buffer grows */
	dd_run(c, 8, (int64_t[]){-1, 2}, out);
	assert_int_equal(out[0].shape[0], 24);
	assert_int_equal(out[0].shape[1], 2);
	dd_run(c, 1, (int64_t[]){0, 0}, out);   /* 0: the input's dim */
	assert_int_equal(out[0].shape[0], 1);
	assert_int_equal(out[0].shape[1], 6);
	kiln_context_free(c);
	kiln_model_free(m);
}

static void test_compile_errors(void **state)
{
	(void)state;
	/* elided constant (printed as a hash, parsed without data) */
	expect_compile_error(
		"graph @e(%x: f32[4]) opset 17 {\n"
		"  %w = const f32[4] #hash<0123456789abcdef>\n"
		"  %y = Add(%x, %w)\n"
		"  return %y\n"
		"}\n", "'w'");
	/* a symbol no input binds */
	expect_compile_error(
		"graph @u(%x: f32[2 * n]) opset 17 {\n"
		"  %y = Relu(%x)\n"
		"  return %y\n"
		"}\n", "'n'");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_softmax_mlp),
		cmocka_unit_test(test_external_weights),
		cmocka_unit_test(test_emit_llvm_obj),
		cmocka_unit_test(test_elementwise_inline),
		cmocka_unit_test(test_gather_out_of_range),
		cmocka_unit_test(test_broadcast_mismatch),
		cmocka_unit_test(test_expression_input_dim),
		cmocka_unit_test(test_output_copies),
		cmocka_unit_test(test_shape_ops),
		cmocka_unit_test(test_layout_inline),
		cmocka_unit_test(test_gather_inline),
		cmocka_unit_test(test_reduce_inline),
		cmocka_unit_test(test_inline_llvm),
		cmocka_unit_test(test_compile_errors),
		cmocka_unit_test(test_data_dependent),
	};
	return cmocka_run_group_tests(tests, tmp_setup, tmp_teardown);
}
