/* KlnRMSNorm's kernel (runtime/kernels_norm.c) on each row path the CPU has
 * (scalar C, AVX2 + FMA, AVX-512; NEON is checked by tests/cross on
 * aarch64), against a double reference:
 * - with and without the residual input skip, with and without the sum
 *   output (without it the sum goes through y), gamma of n elements or one;
 * - row lengths 1..70, 128, 771 and 3000 (every tail of 8 and 16 lanes);
 * - the sum is x + skip rounded once, bit for bit; y within 1e-5 relative
 *   of s / sqrt(mean(s^2) + eps) * gamma in double (s that float sum);
 * - canaries: REF_GUARD (rt_ref.h) floats before and after y and sum must stay as they were;
 * - a NaN in a row makes that row NaN only;
 * - a weight of one element, 1 (fuse-norm's unweighted RMSNorm), gives
 *   bit for bit what n ones give;
 * - bad arguments (skip of another size, a sum without skip, f16 x) fail
 *   with an error, not a crash. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "rt_ref.h"
#include "rt_test.h"

RT_KERNEL(KlnRMSNorm);

static const char *const path_name[] = {"scalar", "AVX2", "AVX-512", "NEON"};

typedef struct RmsCase {
	int64_t rows, n;
	bool skip, sum, g1;
	bool nan;            /* x[0] = NaN (row 0) */
} RmsCase;

static void check_guard(const float *p, int64_t n, const char *what)
{
	int64_t i;
	if (ref_guard_hit(p, n, &i))
		fail_msg("%s: canary at %lld overwritten", what, (long long)i);
}

static void run_rms(const RmsCase *c, int path)
{
	int64_t R = c->rows, n = c->n, tot = R * n;
	float *x = ref_alloc((size_t)tot * sizeof *x), *sk = ref_alloc((size_t)tot * sizeof *sk);
	float *g = ref_alloc((size_t)n * sizeof *g);
	float *y = ref_guarded(tot), *sum = ref_guarded(tot);
	ref_fill(x, tot, -2, 2);
	ref_fill(sk, tot, -1, 1);
	ref_fill(g, n, 0.5f, 1.5f);
	if (c->nan)
		x[0] = NAN;
	float eps = 1e-6f;
	rt_t in[3] = {T(x, 2, R, n, 0, 0, KILN_F32), T(g, 1, c->g1 ? 1 : n, 0, 0, 0, KILN_F32),
	              T(c->skip ? sk : NULL, 2, R, n, 0, 0, KILN_F32)};
	rt_t out[2] = {T(y, 2, R, n, 0, 0, KILN_F32), T(c->sum ? sum : NULL, 2, R, n, 0, 0, KILN_F32)};
	assert_int_equal(rt_rms_path_use(path), 0);
	int rc = rt_op_KlnRMSNorm(frame(), "rms", in, 3, out, 2, NULL, 0, &eps, 1);
	assert_int_equal(rt_rms_path_use(-1), 0);
	assert_int_equal(rc, 0);
	check_guard(y, tot, "y");
	if (c->sum)
		check_guard(sum, tot, "sum");
	for (int64_t r = 0; r < R; r++) {
		double ss = 0;
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			float f = c->skip ? x[i] + sk[i] : x[i];   /* the sum as the kernel rounds it */
			if (c->sum && !(f == sum[i] || (isnan(f) && isnan(sum[i]))))
				fail_msg("%s, n %lld: sum[%lld] = %.9g, expected %.9g", path_name[path],
				         (long long)n, (long long)i, sum[i], f);
			ss += (double)f * f;
		}
		double inv = 1.0 / sqrt(ss / (double)n + eps);
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			float f = c->skip ? x[i] + sk[i] : x[i];
			double ref = f * inv * g[c->g1 ? 0 : k];
			bool ok = isnan(ref) ? isnan(y[i]) :
			          fabs((double)y[i] - ref) <= 1e-5 * (fabs(ref) > 1 ? fabs(ref) : 1);
			if (!ok)
				fail_msg("%s path, n %lld, row %lld, element %lld: %.9g, reference %.12g",
				         path_name[path], (long long)n, (long long)r, (long long)k, y[i], ref);
		}
	}
	free(x); free(sk); free(g); ref_guarded_free(y); ref_guarded_free(sum);
}

/* the paths this CPU runs (at least scalar) */
static int paths(int *p)
{
	int np = 0;
	for (int k = 0; k < 4; k++)
		if (rt_rms_path_use(k) == 0)
			p[np++] = k;
	rt_rms_path_use(-1);
	return np;
}

static void test_rmsnorm_lengths(void **state)
{
	(void)state;
	int p[4], np = paths(p);
	assert_true(np >= 1 && p[0] == 0);
	for (int a = 0; a < np; a++) {
		print_message("KlnRMSNorm: %s path\n", path_name[p[a]]);
		for (int i = 0; i < 73; i++) {
			int64_t n = i < 70 ? i + 1 : i == 70 ? 128 : i == 71 ? 771 : 3000;
			RmsCase plain = {3, n, false, false, n % 7 == 1, false};
			RmsCase skip = {4, n, true, n % 3 != 0, n % 4 == 3, false};
			RmsCase skip_sum = {2, n, true, true, false, false};
			run_rms(&plain, p[a]);
			run_rms(&skip, p[a]);
			run_rms(&skip_sum, p[a]);
		}
	}
}

/* A NaN in row 0 makes row 0 NaN and leaves the other rows right (the
 * reference says so; run_rms checks both). */
static void test_rmsnorm_nan_row(void **state)
{
	(void)state;
	int p[4], np = paths(p);
	for (int a = 0; a < np; a++) {
		RmsCase c1 = {3, 45, true, true, false, true}, c2 = {3, 16, false, false, false, true};
		run_rms(&c1, p[a]);
		run_rms(&c2, p[a]);
	}
}

/* The paths agree closely with each other on a long row (they differ only
 * in how the squares are summed). */
static void test_rmsnorm_paths_agree(void **state)
{
	(void)state;
	int p[4], np = paths(p);
	int64_t n = 4099;
	float *x = ref_alloc((size_t)n * sizeof *x), *sk = ref_alloc((size_t)n * sizeof *sk);
	float *g = ref_alloc((size_t)n * sizeof *g), *y0 = ref_alloc((size_t)n * sizeof *y0);
	float *y = ref_alloc((size_t)n * sizeof *y);
	ref_fill(x, n, -3, 3);
	ref_fill(sk, n, -3, 3);
	ref_fill(g, n, -2, 2);
	float eps = 1e-5f;
	rt_t in[3] = {T(x, 2, 1, n, 0, 0, KILN_F32), T(g, 1, n, 0, 0, 0, KILN_F32),
	              T(sk, 2, 1, n, 0, 0, KILN_F32)};
	for (int a = 0; a < np; a++) {
		rt_t out[1] = {T(a ? y : y0, 2, 1, n, 0, 0, KILN_F32)};
		assert_int_equal(rt_rms_path_use(p[a]), 0);
		assert_int_equal(rt_op_KlnRMSNorm(frame(), "rms", in, 3, out, 1, NULL, 0, &eps, 1), 0);
		for (int64_t k = 0; a && k < n; k++)
			if (fabsf(y[k] - y0[k]) > 1e-5f * (fabsf(y0[k]) > 1 ? fabsf(y0[k]) : 1))
				fail_msg("%s path: y[%lld] = %.9g, scalar %.9g", path_name[p[a]], (long long)k, y[k],
				         y0[k]);
	}
	rt_rms_path_use(-1);
	free(x); free(sk); free(g); free(y0); free(y);
}

/* fuse-norm's unweighted RMSNorm: a weight of one element, 1, broadcast
 * over the row, gives bit for bit what a weight of n ones gives, on every
 * path and every tail (so the one-element weight is exact for any width). */
static void test_rmsnorm_unit_weight(void **state)
{
	(void)state;
	int p[4], np = paths(p);
	float one = 1.0f, eps = 1e-6f;
	for (int a = 0; a < np; a++) {
		for (int64_t n = 1; n <= 67; n += 3) {
			int64_t R = 3, tot = R * n;
			float *x = ref_alloc((size_t)tot * sizeof *x), *g = ref_alloc((size_t)n * sizeof *g);
			float *y1 = ref_guarded(tot), *yn = ref_guarded(tot);
			ref_fill(x, tot, -4, 4);
			for (int64_t k = 0; k < n; k++)
				g[k] = 1.0f;
			rt_t in1[2] = {T(x, 2, R, n, 0, 0, KILN_F32), T(&one, 1, 1, 0, 0, 0, KILN_F32)};
			rt_t inn[2] = {T(x, 2, R, n, 0, 0, KILN_F32), T(g, 1, n, 0, 0, 0, KILN_F32)};
			rt_t o1[1] = {T(y1, 2, R, n, 0, 0, KILN_F32)}, on[1] = {T(yn, 2, R, n, 0, 0, KILN_F32)};
			assert_int_equal(rt_rms_path_use(p[a]), 0);
			assert_int_equal(rt_op_KlnRMSNorm(frame(), "rms", in1, 2, o1, 1, NULL, 0, &eps, 1), 0);
			assert_int_equal(rt_op_KlnRMSNorm(frame(), "rms", inn, 2, on, 1, NULL, 0, &eps, 1), 0);
			assert_int_equal(rt_rms_path_use(-1), 0);
			check_guard(y1, tot, "y (weight [1])");
			if (memcmp(y1, yn, (size_t)tot * sizeof *y1))
				fail_msg("%s path, n %lld: a weight [1] differs from n ones", path_name[p[a]],
				         (long long)n);
			free(x); free(g); ref_guarded_free(y1); ref_guarded_free(yn);
		}
	}
}

static void test_rmsnorm_errors(void **state)
{
	(void)state;
	float x[12] = {0}, g[4] = {1, 1, 1, 1}, sk[8] = {0}, y[12], s[12];
	uint16_t h[12] = {0};
	float eps = 1e-6f;
	rt_t out[2] = {T(y, 2, 3, 4, 0, 0, KILN_F32), T(s, 2, 3, 4, 0, 0, KILN_F32)};
	/* skip of another size */
	rt_t bad_skip[3] = {T(x, 2, 3, 4, 0, 0, KILN_F32), T(g, 1, 4, 0, 0, 0, KILN_F32),
	                    T(sk, 2, 2, 4, 0, 0, KILN_F32)};
	assert_int_not_equal(rt_op_KlnRMSNorm(frame(), "rms", bad_skip, 3, out, 1, NULL, 0, &eps, 1), 0);
	/* a sum output without a skip input */
	rt_t noskip[2] = {T(x, 2, 3, 4, 0, 0, KILN_F32), T(g, 1, 4, 0, 0, 0, KILN_F32)};
	assert_int_not_equal(rt_op_KlnRMSNorm(frame(), "rms", noskip, 2, out, 2, NULL, 0, &eps, 1), 0);
	/* f16 x */
	rt_t half[2] = {T(h, 2, 3, 4, 0, 0, KILN_F16), T(g, 1, 4, 0, 0, 0, KILN_F32)};
	assert_int_not_equal(rt_op_KlnRMSNorm(frame(), "rms", half, 2, out, 1, NULL, 0, &eps, 1), 0);
	/* a path the CPU lacks is refused and changes nothing */
	assert_int_equal(rt_rms_path_use(7), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rmsnorm_lengths),
		cmocka_unit_test(test_rmsnorm_nan_row),
		cmocka_unit_test(test_rmsnorm_paths_agree),
		cmocka_unit_test(test_rmsnorm_unit_weight),
		cmocka_unit_test(test_rmsnorm_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
