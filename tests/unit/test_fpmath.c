/* --fpmath=bf16 (BeOptions.fpmath): rt.h's bf16 panel packer checked
 * against a layout and a round-to-nearest-even written here from the
 * definitions (odd K, N not a multiple of the panel width, ties, NaN,
 * overflow, zero padding); the backend storing a KlnGemm's W as bf16
 * panels (weights_bytes, the bytes of OUT.weights, the kernel's ia in the
 * LLVM IR), an f32 copy kept for other readers of the same constant; and
 * a compiled bf16 KlnGemm run against a reference on bf16-rounded
 * operands. */
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

#include "backend.h"
#include "ir.h"
#include "kiln.h"
#include "rt.h"
#include "be_test.h"
#include "test_files.h"

static float f_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof f);
	return f;
}

static uint32_t u_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof u);
	return u;
}

static bool bf16_is_nan(uint16_t h)
{
	return (h & 0x7f80u) == 0x7f80u && (h & 0x7fu) != 0;
}

/* Round to nearest even by value: of the two bf16 neighbours of x (its
 * truncation t and t + 1 ulp away from zero), the nearer, the even one on
 * a tie.  Finite x only; double holds both neighbours and x exactly.  Past
 * the largest bf16 the next value is 2^128, which overflows to inf. */
static uint16_t ref_bf16(float x)
{
	uint16_t t = (uint16_t)(u_of(x) >> 16);
	double lo = fabs((double)f_of((uint32_t)t << 16));
	double hi = fabs((double)f_of((uint32_t)(t + 1) << 16));
	double ax = fabs((double)x);
	if (isinf(hi))
		hi = ldexp(1.0, 128);
	if (ax - lo < hi - ax)
		return t;
	if (ax - lo > hi - ax)
		return (uint16_t)(t + 1);
	return (t & 1) ? (uint16_t)(t + 1) : t;
}

/* Single values: exact, ties both ways, just above a tie, signs, zero,
 * inf, overflow to inf, NaN (quiet and signalling) stays NaN. */
static void test_round(void **state)
{
	(void)state;
	assert_int_equal(rt_f32_to_bf16(1.0f), 0x3f80);
	assert_int_equal(rt_f32_to_bf16(f_of(0x3f808000u)), 0x3f80);  /* tie, even below */
	assert_int_equal(rt_f32_to_bf16(f_of(0x3f818000u)), 0x3f82);  /* tie, even above */
	assert_int_equal(rt_f32_to_bf16(f_of(0x3f808001u)), 0x3f81);  /* above the tie */
	assert_int_equal(rt_f32_to_bf16(f_of(0x3f807fffu)), 0x3f80);  /* below the tie */
	assert_int_equal(rt_f32_to_bf16(f_of(0xbf818000u)), 0xbf82);  /* negative tie */
	assert_int_equal(rt_f32_to_bf16(-0.0f), 0x8000);
	assert_int_equal(rt_f32_to_bf16(INFINITY), 0x7f80);
	assert_int_equal(rt_f32_to_bf16(-INFINITY), 0xff80);
	assert_int_equal(rt_f32_to_bf16(f_of(0x7f7fffffu)), 0x7f80);  /* FLT_MAX rounds to inf */
	assert_int_equal(rt_f32_to_bf16(f_of(0x7f7f7fffu)), 0x7f7f);  /* largest bf16 */
	assert_true(bf16_is_nan(rt_f32_to_bf16(NAN)));
	assert_true(bf16_is_nan(rt_f32_to_bf16(f_of(0x7f800001u))));  /* low-bit sNaN */
	assert_true(bf16_is_nan(rt_f32_to_bf16(f_of(0xff800001u))));
	assert_true(bf16_is_nan(rt_f32_to_bf16(f_of(0x7fff0000u | 0xffffu))));
	/* a sweep of finite values against the by-value reference */
	uint32_t s = 1;
	for (int i = 0; i < 200000; i++) {
		s = s * 1664525u + 1013904223u;
		uint32_t u = (s & 0x7fffffffu) < 0x7f800000u ? s : s & 0x807fffffu;
		if (i % 4 == 0)
			u = (u & 0xffff0000u) | 0x8000u;                      /* ties */
		if (rt_f32_to_bf16(f_of(u)) != ref_bf16(f_of(u)))
			fail_msg("0x%08x: got 0x%04x, want 0x%04x", u, rt_f32_to_bf16(f_of(u)), ref_bf16(f_of(u)));
	}
}

/* W[K, N] with K odd and N = 48 + 5: two panels, three row pairs, the last
 * pair's second row and the second panel's last 43 columns zero.  Special
 * values sit at a few places to be found again at their packed place. */
static void test_pack_layout(void **state)
{
	(void)state;
	enum { K = 5, N = 53, P = RT_GEMM_PANEL };
	static float w[K * N + 1];
	float *W = w + 1;                        /* the packer takes any alignment */
	for (int k = 0; k < K; k++)
		for (int c = 0; c < N; c++)
			W[k * N + c] = (float)((k * 131 + c * 17) % 97 - 48) / 7.0f + 1e-3f * (float)c;
	W[0 * N + 0] = f_of(0x3f808000u);        /* tie -> 0x3f80 */
	W[1 * N + 1] = f_of(0x3f818000u);        /* tie -> 0x3f82 */
	W[2 * N + 50] = NAN;
	W[4 * N + 52] = -0.0f;
	W[3 * N + 47] = f_of(0x7f7fffffu);       /* -> inf */
	int64_t n = rt_gemm_panel_bf16s(K, N);
	assert_int_equal(n, 3 * 2 * 2 * P);      /* ceil(K/2) pairs * 2 * ceil(N/P)*P */
	assert_int_equal(rt_gemm_panel_bf16s(4, 48), 4 * 48);
	assert_int_equal(rt_gemm_panel_bf16s(1, 1), 2 * 48);
	uint16_t *dst = malloc((size_t)(n + 8) * sizeof *dst);
	assert_non_null(dst);
	for (int64_t i = 0; i < n + 8; i++)
		dst[i] = 0xdead;                     /* written everywhere, nowhere past n */
	rt_gemm_pack_panels_bf16(W, K, N, dst);
	for (int64_t i = n; i < n + 8; i++)
		assert_int_equal(dst[i], 0xdead);
	int64_t i = 0;
	for (int q = 0; q < (N + P - 1) / P; q++)
		for (int p = 0; p < (K + 1) / 2; p++)
			for (int c = q * P; c < q * P + P; c++)
				for (int h = 0; h < 2; h++, i++) {
					int k = 2 * p + h;
					if (c >= N || k >= K) {
						if (dst[i] != 0)
							fail_msg("padding [%d, %d] = 0x%04x", k, c, dst[i]);
						continue;
					}
					float v = W[k * N + c];
					if (isnan(v))
						assert_true(bf16_is_nan(dst[i]));
					else if (dst[i] != ref_bf16(v))
						fail_msg("W[%d, %d] = %g (0x%08x): got 0x%04x, want 0x%04x", k, c, v,
						         u_of(v), dst[i], ref_bf16(v));
				}
	assert_int_equal(i, n);
	/* the special values at their places: pair p = k/2, half h = k%2 */
	assert_int_equal(dst[(0 * P + 0) * 2 + 0], 0x3f80);
	assert_int_equal(dst[(0 * P + 1) * 2 + 1], 0x3f82);
	assert_int_equal(dst[(1 * P + 47) * 2 + 1], 0x7f80);
	assert_true(bf16_is_nan(dst[3 * 2 * P + (1 * P + 2) * 2 + 0]));
	assert_int_equal(dst[3 * 2 * P + (2 * P + 4) * 2 + 0], 0x8000);
	free(dst);
}

/* ---- the backend ---------------------------------------------------------- */

enum { GK = 64, GN = 96 };
static float gW[GK * GN], gB[GN];

static void append(char **s, size_t *len, size_t *cap, const char *fmt, ...)
{
	va_list ap;
	for (;;) {
		va_start(ap, fmt);
		int n = vsnprintf(*s + *len, *cap - *len, fmt, ap);
		va_end(ap);
		if (n >= 0 && (size_t)n < *cap - *len) {
			*len += (size_t)n;
			return;
		}
		*cap = *cap * 2 + (size_t)n + 64;
		*s = realloc(*s, *cap);
		assert_non_null(*s);
	}
}

static void append_floats(char **s, size_t *len, size_t *cap, const float *v, int n)
{
	for (int i = 0; i < n; i++)
		append(s, len, cap, "%s%.9g", i ? ", " : "", (double)v[i]);
}

/* y = KlnGemm(x, W, b) (GELU when act), x [m, GK]; with_w_out: W is also
 * a graph output (so the backend keeps a row-major f32 copy of it). */
static char *gemm_text(int act, bool with_w_out)
{
	for (int i = 0; i < GK * GN; i++)
		gW[i] = sinf(0.37f * (float)i) * 0.25f + 1e-4f * (float)(i % 13);
	for (int i = 0; i < GN; i++)
		gB[i] = 0.01f * (float)(i % 7) - 0.03f;
	size_t len = 0, cap = 1 << 16;
	char *s = malloc(cap);
	assert_non_null(s);
	append(&s, &len, &cap, "graph @fp(%%x: f32[m, %d]) opset 17 {\n  %%W = const f32[%d, %d] dense<[",
	       GK, GK, GN);
	append_floats(&s, &len, &cap, gW, GK * GN);
	append(&s, &len, &cap, "]>\n  %%b = const f32[%d] dense<[", GN);
	append_floats(&s, &len, &cap, gB, GN);
	append(&s, &len, &cap, "]>\n  %%y = KlnGemm(%%x, %%W, %%b) {act = %d} @\"gemm\"\n", act);
	append(&s, &len, &cap, "  return %%y%s\n}\n", with_w_out ? ", %W" : "");
	return s;
}

static BeStats compile_text(const char *text, BeOptions *o)
{
	Diag d = {0};
	Graph *g = test_parse(text);
	BeStats st;
	memset(&st, 0, sizeof st);
	if (be_compile(g, o, &st, &d))
		fail_msg("compile %s: %s", o->out, d.msg);
	ir_graph_free(g);
	return st;
}

static unsigned char *read_all(const char *path, size_t *n)
{
	unsigned char *b = (unsigned char *)test_read_file(path, n);
	assert_non_null(b);
	return b;
}

static bool contains(const unsigned char *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i += 64)  /* pieces of the blob are 64-byte aligned */
		if (!memcmp(hay + i, needle, m))
			return true;
	return false;
}

/* weights_bytes halves for W: 64 x 96 f32 panels = 24576 bytes, bf16 ones
 * 12288, plus the bias (384); the external weights file holds exactly the
 * bf16 panels of rt_gemm_pack_panels_bf16 and no f32 copy of W. */
static void test_weights_bytes(void **state)
{
	(void)state;
	char *text = gemm_text(0, false);
	BeOptions o = {.out = tmp_path("f32.so"), .emit = BE_EMIT_SO, .opt_level = 0,
	               .weights_external = true};
	BeStats f32 = compile_text(text, &o);
	o.out = tmp_path("bf16.so");
	o.fpmath = BE_FPMATH_BF16;
	BeStats bf = compile_text(text, &o);
	assert_int_equal(f32.weights_bytes, GK * GN * 4 + GN * 4);
	assert_int_equal(bf.weights_bytes, GK * GN * 2 + GN * 4);
	size_t n;
	unsigned char *blob = read_all(tmp_path("bf16.weights"), &n);
	assert_int_equal(n, (size_t)bf.weights_bytes);
	uint16_t *panels = malloc((size_t)rt_gemm_panel_bf16s(GK, GN) * 2);
	float *fpanels = malloc((size_t)rt_gemm_panel_floats(GK, GN) * 4);
	assert_true(panels && fpanels);
	rt_gemm_pack_panels_bf16(gW, GK, GN, panels);
	rt_gemm_pack_panels(gW, GK, GN, fpanels);
	assert_true(contains(blob, n, panels, (size_t)rt_gemm_panel_bf16s(GK, GN) * 2));
	assert_true(contains(blob, n, gB, sizeof gB));
	free(blob);
	blob = read_all(tmp_path("f32.weights"), &n);
	assert_true(contains(blob, n, fpanels, (size_t)rt_gemm_panel_floats(GK, GN) * 4));
	free(blob);
	free(panels);
	free(fpanels);
	free(text);
}

/* W also a graph output: its row-major f32 copy stays (f32 bytes) beside
 * the bf16 panels. */
static void test_raw_copy_stays_f32(void **state)
{
	(void)state;
	char *text = gemm_text(0, true);
	BeOptions o = {.out = tmp_path("raw.so"), .emit = BE_EMIT_SO, .opt_level = 0,
	               .weights_external = true, .fpmath = BE_FPMATH_BF16};
	BeStats st = compile_text(text, &o);
	assert_int_equal(st.weights_bytes, GK * GN * 4 + GK * GN * 2 + GN * 4);
	size_t n;
	unsigned char *blob = read_all(tmp_path("raw.weights"), &n);
	assert_true(contains(blob, n, gW, sizeof gW));
	free(blob);
	free(text);
}

/* The kernel call's ia: [act, RT_GEMM_PANEL, RT_GEMM_W_BF16] under bf16,
 * [act, RT_GEMM_PANEL, RT_GEMM_W_F32] by default. */
static void test_gemm_ia(void **state)
{
	(void)state;
	char *text = gemm_text(1, false);
	for (int bf = 0; bf < 2; bf++) {
		BeOptions o = {.out = tmp_path("ia.ll"), .emit = BE_EMIT_LLVM, .opt_level = 0,
		               .fpmath = bf ? BE_FPMATH_BF16 : BE_FPMATH_F32};
		compile_text(text, &o);
		size_t n;
		char *ll = (char *)read_all(o.out, &n);
		ll[n] = 0;
		char want[128];
		snprintf(want, sizeof want, "[3 x i64] [i64 1, i64 %d, i64 %d]", RT_GEMM_PANEL,
		         bf ? RT_GEMM_W_BF16 : RT_GEMM_W_F32);
		if (!strstr(ll, want))
			fail_msg("fpmath %d: the LLVM IR lacks the attrs %s", bf, want);
		free(ll);
	}
	free(text);
}

static double bf16_round_d(float x)
{
	return (double)f_of((uint32_t)rt_f32_to_bf16(x) << 16);
}

/* Runs a bf16-compiled KlnGemm: close to the reference on bf16-rounded x
 * and W (fp32 sums: a few fp32 ulps of the sum's magnitude), and further
 * from the fp32 reference than that (the rounding is visible). */
static void test_run_bf16(void **state)
{
	(void)state;
	char *text = gemm_text(0, false);
	BeOptions o = {.out = tmp_path("run.so"), .emit = BE_EMIT_SO, .opt_level = 2,
	               .fpmath = BE_FPMATH_BF16};
	compile_text(text, &o);
	free(text);
	kiln_model *m = kiln_model_load(o.out);
	if (!m)
		fail_msg("load: %s", kiln_load_error());
	kiln_context *c = kiln_context_create(m, 1);
	assert_non_null(c);
	enum { M = 37 };
	static float x[M * GK];
	for (int i = 0; i < M * GK; i++)
		x[i] = cosf(0.11f * (float)i) + 1e-3f * (float)(i % 5);
	kiln_tensor in, out;
	memset(&in, 0, sizeof in);
	memset(&out, 0, sizeof out);
	in.dtype = KILN_F32;
	in.rank = 2;
	in.shape[0] = M;
	in.shape[1] = GK;
	in.data = x;
	in.nbytes = sizeof x;
	if (kiln_run(c, &in, 1, &out, 1))
		fail_msg("run: %s", kiln_last_error(c));
	assert_int_equal(out.shape[0], M);
	assert_int_equal(out.shape[1], GN);
	const float *y = out.data;
	double max_bf = 0, max_f32 = 0;
	for (int i = 0; i < M; i++)
		for (int j = 0; j < GN; j++) {
			double rb = gB[j], rf = gB[j], mag = 0;
			for (int k = 0; k < GK; k++) {
				rb += bf16_round_d(x[i * GK + k]) * bf16_round_d(gW[k * GN + j]);
				rf += (double)x[i * GK + k] * gW[k * GN + j];
				mag += fabs((double)x[i * GK + k] * gW[k * GN + j]);
			}
			double eb = fabs(y[i * GN + j] - rb) / (mag + 1e-30);
			double ef = fabs(y[i * GN + j] - rf) / (mag + 1e-30);
			max_bf = eb > max_bf ? eb : max_bf;
			max_f32 = ef > max_f32 ? ef : max_f32;
		}
	print_message("bf16 run: max error / sum|x*w|: %.3g vs bf16-rounded operands, %.3g vs fp32\n",
	              max_bf, max_f32);
	assert_true(max_bf < 1e-5);      /* fp32 accumulation of 64 terms */
	assert_true(max_f32 > 1e-4);     /* bf16 has 8 significant bits */
	assert_true(max_f32 < 1e-2);
	kiln_context_free(c);
	kiln_model_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round),
		cmocka_unit_test(test_pack_layout),
		cmocka_unit_test(test_weights_bytes),
		cmocka_unit_test(test_raw_copy_stays_f32),
		cmocka_unit_test(test_gemm_ia),
		cmocka_unit_test(test_run_bf16),
	};
	return cmocka_run_group_tests(tests, tmp_setup, tmp_teardown);
}
