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

static char tmpdir[256];

static int setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-be-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	char cmd[400];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *path_of(const char *name)
{
	static char buf[4][512];
	static int k;
	char *p = buf[k++ % 4];
	snprintf(p, 512, "%s/%s", tmpdir, name);
	return p;
}

static Graph *parse(const char *text)
{
	Diag d = {0};
	Graph *g = ir_parse(text, "test.kir", &d);
	if (!g)
		fail_msg("parse: %s", d.msg);
	if (ir_infer_shapes(g, &d))
		fail_msg("infer: %s", d.msg);
	return g;
}

/* Compiles text to OUT (in the temp dir); returns be_compile's status. */
static int compile_opts(const char *text, BeOptions *o, Diag *d)
{
	Graph *g = parse(text);
	BeStats st;
	int rc = be_compile(g, o, &st, d);
	ir_graph_free(g);
	return rc;
}

static kiln_model *compile_load(const char *text, const char *name)
{
	BeOptions o = {.out = path_of(name), .emit = BE_EMIT_SO, .opt_level = 2};
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
	FILE *f = fopen(path_of("use_mlp.c"), "w");
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
	         san, KILN_SOURCE_DIR, tmpdir, path_of("use_mlp"), path_of("use_mlp.c"), KILN_BINARY_DIR);
	assert_int_equal(system(cmd), 0);
	snprintf(cmd, sizeof cmd, "%s %s", path_of("use_mlp"), path_of("mlp.so"));
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
	BeOptions o = {.out = path_of("ext.so"), .emit = BE_EMIT_SO, .opt_level = 0,
	               .weights_external = true};
	Diag d = {0};
	if (compile_opts(softmax_text, &o, &d))
		fail_msg("compile: %s", d.msg);
	struct stat st;
	assert_int_equal(stat(path_of("ext.weights"), &st), 0);
	assert_int_equal(st.st_size, 128);   /* two constants, 64-byte aligned */
	kiln_model *m = kiln_model_load(o.out);
	if (!m)
		fail_msg("load: %s", kiln_load_error());
	run_softmax(m, 3);
	kiln_model_free(m);
	/* a truncated weights file is refused at context creation */
	assert_int_equal(truncate(path_of("ext.weights"), 64), 0);
	m = kiln_model_load(o.out);
	if (m) {
		assert_null(kiln_context_create(m, 1));
		kiln_model_free(m);
	}
}

static void test_emit_llvm_obj(void **state)
{
	(void)state;
	BeOptions o = {.out = path_of("mlp.ll"), .emit = BE_EMIT_LLVM, .opt_level = 3};
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
	o.out = path_of("mlp.o");
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
	BeOptions o = {.out = path_of("ew.ll"), .emit = BE_EMIT_LLVM, .opt_level = 3};
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

/* ---- compile-time refusals ---------------------------------------------- */

static void expect_compile_error(const char *text, const char *needle)
{
	BeOptions o = {.out = path_of("bad.so"), .emit = BE_EMIT_SO};
	Diag d = {0};
	assert_int_not_equal(compile_opts(text, &o, &d), 0);
	if (!strstr(d.msg, needle))
		fail_msg("error '%s' lacks '%s'", d.msg, needle);
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
		cmocka_unit_test(test_compile_errors),
	};
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
