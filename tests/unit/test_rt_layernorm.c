/* KlnLayerNorm's and KlnSkipLayerNorm's kernels (runtime/kernels_fused.c)
 * on each row path the CPU has (scalar C, AVX-512, AVX2 + FMA; NEON is
 * checked by tests/cross on aarch64), against a double reference:
 * - forcing a path (rt_fused_simd_use) makes the layer norms take it
 *   (rt_fused_path), or is refused when the CPU lacks it;
 * - row lengths 1..70, 128, 768, 771, 1024, 1025 and 3000 (every tail of 8
 *   and 16 lanes, the 1024-float row buffer and past it), 1 to 5 rows;
 * - LayerNorm plain and in place (y = x), SkipLayerNorm with and without
 *   the bias and the sum output, gamma, beta and bias of n elements or one;
 * - the sum is x + skip (+ bias) rounded as the scalar path, bit for bit;
 *   y within 1e-5 relative of (s - mean) / sqrt(var + eps) * gamma + beta
 *   in double (s that float sum);
 * - canaries: REF_GUARD (rt_ref.h) floats before and after y and sum must stay as they were;
 * - a NaN in a row makes that row NaN only; a large common offset (30)
 *   does not cost precision (the variance is centered);
 * - the paths agree with the scalar one on long rows. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rt_ref.h"
#include "rt_test.h"
#include "vmath.h"

RT_KERNEL(KlnLayerNorm);
RT_KERNEL(KlnSkipLayerNorm);

/* rt_fused_simd_use's paths */
static const char *const path_name[] = {"scalar", "AVX-512/NEON", "AVX2"};

typedef struct LnCase {
	int64_t rows, n;
	bool skip, bias, sum;
	bool g1, b1, bias1;   /* one element, broadcast */
	bool inplace;         /* plain LayerNorm with y = x */
	float offset;         /* added to every x */
	bool nan;             /* x[0] = NaN (row 0) */
} LnCase;

static void check_guard(const float *p, int64_t n, const char *what, const char *path)
{
	int64_t i;
	if (ref_guard_hit(p, n, &i))
		fail_msg("%s path, n %lld: %s canary at %lld overwritten", path, (long long)n, what,
		         (long long)i);
}

static void set_path(int path)
{
	assert_int_equal(rt_fused_simd_use(path), 0);
	assert_int_equal(rt_fused_path(), path);
}

/* the paths this CPU runs (at least scalar) */
static int paths(int *p)
{
	int np = 0;
	for (int k = 0; k < 3; k++)
		if (rt_fused_simd_use(k) == 0)
			p[np++] = k;
	assert_int_equal(rt_fused_simd_use(-1), 0);
	return np;
}

/* Runs the case on path; y (guarded) gets the output, sum (guarded) the
 * sum output when asked for; x is y itself in place. */
static void kernel(const LnCase *c, int path, float *x, const float *sk, const float *g,
                   const float *be, const float *bi, float *y, float *sum)
{
	int64_t R = c->rows, n = c->n;
	float eps = 1e-12f;
	rt_t gt = T((void *)g, 1, c->g1 ? 1 : n, 0, 0, 0, KILN_F32);
	rt_t bt = T((void *)be, 1, c->b1 ? 1 : n, 0, 0, 0, KILN_F32);
	rt_t out[2] = {T(y, 2, R, n, 0, 0, KILN_F32), T(c->sum ? sum : NULL, 2, R, n, 0, 0, KILN_F32)};
	set_path(path);
	int rc;
	if (c->skip) {
		rt_t in[5] = {T(x, 2, R, n, 0, 0, KILN_F32), T((void *)sk, 2, R, n, 0, 0, KILN_F32), gt, bt,
		              T(c->bias ? (void *)bi : NULL, 1, c->bias1 ? 1 : n, 0, 0, 0, KILN_F32)};
		rc = rt_op_KlnSkipLayerNorm(frame(), "sln", in, 5, out, 2, NULL, 0, &eps, 1);
	} else {
		rt_t in[3] = {T(c->inplace ? y : x, 2, R, n, 0, 0, KILN_F32), gt, bt};
		rc = rt_op_KlnLayerNorm(frame(), "ln", in, 3, out, 1, NULL, 0, &eps, 1);
	}
	assert_int_equal(rt_fused_simd_use(-1), 0);
	assert_int_equal(rc, 0);
}

static void run_ln(const LnCase *c, int path)
{
	int64_t R = c->rows, n = c->n, tot = R * n;
	const char *pn = path_name[path];
	float *x = ref_alloc((size_t)tot * sizeof *x), *sk = ref_alloc((size_t)tot * sizeof *sk);
	float *g = ref_alloc((size_t)n * sizeof *g), *be = ref_alloc((size_t)n * sizeof *be);
	float *bi = ref_alloc((size_t)n * sizeof *bi);
	float *y = ref_guarded(tot), *sum = ref_guarded(tot);
	double *s = ref_alloc((size_t)n * sizeof *s);
	ref_fill(x, tot, c->offset - 2, c->offset + 2);
	ref_fill(sk, tot, -1, 1);
	ref_fill(g, n, 0.5f, 1.5f);
	ref_fill(be, n, -1, 1);
	ref_fill(bi, n, -1, 1);
	if (c->nan)
		x[0] = NAN;
	if (c->inplace)
		memcpy(y, x, (size_t)tot * sizeof *x);
	kernel(c, path, x, sk, g, be, bi, y, sum);
	check_guard(y, tot, "y", pn);
	if (c->sum)
		check_guard(sum, tot, "sum", pn);
	for (int64_t r = 0; r < R; r++) {
		double mean = 0, var = 0;
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			/* the sum as the kernel rounds it, in float */
			float f = x[i];
			if (c->skip) {
				f = x[i] + sk[i];
				if (c->bias)
					f += bi[c->bias1 ? 0 : k];
			}
			if (c->sum && !(f == sum[i] || (isnan(f) && isnan(sum[i]))))
				fail_msg("%s path, n %lld: sum[%lld] = %.9g, expected %.9g", pn, (long long)n,
				         (long long)i, sum[i], f);
			s[k] = f;
			mean += f;
		}
		mean /= (double)n;
		for (int64_t k = 0; k < n; k++)
			var += (s[k] - mean) * (s[k] - mean);
		double inv = 1.0 / sqrt(var / (double)n + 1e-12f);
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			double ref = (s[k] - mean) * inv * g[c->g1 ? 0 : k] + be[c->b1 ? 0 : k];
			bool ok = isnan(ref) ? isnan(y[i]) :
			          fabs((double)y[i] - ref) <= 1e-5 * (fabs(ref) > 1 ? fabs(ref) : 1);
			if (!ok)
				fail_msg("%s path, n %lld, row %lld, element %lld: %.9g, reference %.12g", pn,
				         (long long)n, (long long)r, (long long)k, y[i], ref);
		}
	}
	free(x); free(sk); free(g); free(be); free(bi); ref_guarded_free(y); ref_guarded_free(sum); free(s);
}

static int64_t length(int i)
{
	static const int64_t big[] = {128, 768, 771, 1024, 1025, 3000};
	return i < 70 ? i + 1 : big[i - 70];
}
#define NLEN 76

static void test_layernorm_forced_path(void **state)
{
	(void)state;
	int p[3], np = paths(p);
	assert_true(np >= 1 && p[0] == 0);
	for (int a = 0; a < np; a++)
		set_path(p[a]);
#if defined(__x86_64__)
	/* where the CPU has AVX2 + FMA and no AVX-512 the layer norms run AVX2 */
	if (vm_have_avx2() && !vm_have_avx512()) {
		assert_int_equal(rt_fused_simd_use(-1), 0);
		assert_int_equal(rt_fused_path(), 2);
	}
#endif
	assert_int_equal(rt_fused_simd_use(3), -1);
	assert_int_equal(rt_fused_simd_use(-1), 0);
}

static void test_layernorm_lengths(void **state)
{
	(void)state;
	int p[3], np = paths(p);
	for (int a = 0; a < np; a++) {
		print_message("KlnLayerNorm: %s path\n", path_name[p[a]]);
		for (int i = 0; i < NLEN; i++) {
			int64_t n = length(i);
			LnCase plain = {.rows = 3, .n = n, .g1 = n % 7 == 1, .b1 = n % 5 == 2};
			LnCase inplace = {.rows = 2, .n = n, .inplace = true};
			LnCase skip = {.rows = 4, .n = n, .skip = true, .bias = n % 2 == 0, .sum = n % 3 != 0,
			               .g1 = n % 4 == 3, .b1 = n % 6 == 5, .bias1 = n % 8 == 0};
			LnCase skip_sum = {.rows = 5, .n = n, .skip = true, .bias = true, .sum = true};
			LnCase skip_nosum = {.rows = 1, .n = n, .skip = true, .bias = n % 2 == 1};
			run_ln(&plain, p[a]);
			run_ln(&inplace, p[a]);
			run_ln(&skip, p[a]);
			run_ln(&skip_sum, p[a]);
			run_ln(&skip_nosum, p[a]);
		}
	}
}

static void test_layernorm_specials(void **state)
{
	(void)state;
	LnCase cases[] = {
		{.rows = 5, .n = 768, .offset = 30.0f},                           /* offset mean */
		{.rows = 5, .n = 771, .skip = true, .bias = true, .sum = true, .offset = -30.0f},
		{.rows = 3, .n = 2000, .skip = true, .bias = true, .bias1 = true}, /* y as the buffer */
		{.rows = 3, .n = 45, .nan = true},                                 /* NaN row */
		{.rows = 3, .n = 100, .skip = true, .bias = true, .sum = true, .nan = true},
		{.rows = 3, .n = 13, .skip = true, .nan = true},
		{.rows = 2, .n = 1, .skip = true, .sum = true, .g1 = true, .b1 = true, .offset = 5.0f},
	};
	int p[3], np = paths(p);
	for (int a = 0; a < np; a++)
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
			run_ln(&cases[i], p[a]);
}

/* Every path close to the scalar one on long rows (they differ only in
 * how the sums are rounded). */
static void test_layernorm_paths_agree(void **state)
{
	(void)state;
	int p[3], np = paths(p);
	LnCase c = {.rows = 3, .n = 4099, .skip = true, .bias = true, .sum = true, .offset = 3.0f};
	int64_t tot = c.rows * c.n;
	float *x = ref_alloc((size_t)tot * sizeof *x), *sk = ref_alloc((size_t)tot * sizeof *sk);
	float *g = ref_alloc((size_t)c.n * sizeof *g), *be = ref_alloc((size_t)c.n * sizeof *be);
	float *bi = ref_alloc((size_t)c.n * sizeof *bi);
	float *y0 = ref_alloc((size_t)tot * sizeof *y0), *y = ref_alloc((size_t)tot * sizeof *y);
	float *s0 = ref_alloc((size_t)tot * sizeof *s0), *s = ref_alloc((size_t)tot * sizeof *s);
	ref_fill(x, tot, -3, 3);
	ref_fill(sk, tot, -3, 3);
	ref_fill(g, c.n, -2, 2);
	ref_fill(be, c.n, -1, 1);
	ref_fill(bi, c.n, -1, 1);
	kernel(&c, 0, x, sk, g, be, bi, y0, s0);
	for (int a = 1; a < np; a++) {
		kernel(&c, p[a], x, sk, g, be, bi, y, s);
		if (memcmp(s, s0, (size_t)tot * sizeof *s))
			fail_msg("%s path: the sum differs from the scalar path's", path_name[p[a]]);
		for (int64_t k = 0; k < tot; k++)
			if (fabsf(y[k] - y0[k]) > 1e-5f * (fabsf(y0[k]) > 1 ? fabsf(y0[k]) : 1))
				fail_msg("%s path: y[%lld] = %.9g, scalar %.9g", path_name[p[a]], (long long)k,
				         y[k], y0[k]);
	}
	free(x); free(sk); free(g); free(be); free(bi); free(y0); free(y); free(s0); free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layernorm_forced_path),
		cmocka_unit_test(test_layernorm_lengths),
		cmocka_unit_test(test_layernorm_specials),
		cmocka_unit_test(test_layernorm_paths_agree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
