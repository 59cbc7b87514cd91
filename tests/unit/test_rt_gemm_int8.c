/* test_rt_gemm_int8.c: the int8 GEMM (runtime/gemm_int8.h) for every
 * micro-kernel this CPU runs ("c", "avx2" and "avx2-narrow" on AVX2;
 * "avxvnni" and "avx512vnni" where the CPU has them), serial and on a two-thread pool:
 *
 *   - exact: operands built so that quantization loses nothing (power-of-two
 *     scales, each row reaching 0 and 255, each column +-127), against the
 *     integer product computed in double;
 *   - every kernel gives the same bits as the portable one, on many shapes
 *     (K not a multiple of 4, N not of 16, rows not of the kernel's MR);
 *   - C's padding (ldc > N) and the rows after it keep their canaries;
 *   - random f32 operands: against the f32 product within the bound that
 *     per-row / per-column quantization gives;
 *   - bias and both GELUs; a row with a NaN or an infinity gives NaN in that
 *     row only; K over RT_Q8_KMAX is refused;
 *   - per_tensor: A quantized with one scale as DynamicQuantizeLinear does
 *     (recomputed here from its definition), every kernel the same bits;
 *     a NaN is refused (-2). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gemm_int8.h"
#include "rt_internal.h"

static struct rt_pool *pool;
static uint64_t rng = 88172645463325252ull;
static const char *const kernels[] = {"c", "avx2", "avx2-narrow", "avxvnni", "avx512vnni"};
#define NK (int)(sizeof kernels / sizeof *kernels)
#define CANARY 12345.5f

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int irand(int lo, int hi)
{
	return lo + (int)(next() % (uint64_t)(hi - lo + 1));
}

static float frand(void)
{
	return (float)((double)(next() >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

typedef struct prob {
	int64_t M, N, K, ldc;
	float *A, *W, *bias;
	int8_t *Wp;
	float *scale;
	int32_t *wsum;
} prob;

static void prob_free(prob *p)
{
	free(p->A), free(p->W), free(p->bias), free(p->Wp), free(p->scale), free(p->wsum);
}

/* exact operands: A[m, k] = (q - zp_m) / 64 with q in [0, 255] reaching both
 * ends, W[k, n] = w * 2^-e_n with w in [-127, 127] reaching +-127 */
static prob make_exact(int64_t M, int64_t N, int64_t K)
{
	prob p = {M, N, K, N + 3, NULL, NULL, NULL, NULL, NULL, NULL};
	p.A = malloc(sizeof(float) * (size_t)(M * K + 1));
	p.W = malloc(sizeof(float) * (size_t)(K * N + 1));
	p.bias = malloc(sizeof(float) * (size_t)(N + 1));
	p.Wp = malloc((size_t)rt_q8_panel_bytes(K, N) + 1);
	p.scale = malloc(sizeof(float) * (size_t)(N + 1));
	p.wsum = malloc(sizeof(int32_t) * (size_t)(N + 1));
	assert_true(p.A && p.W && p.bias && p.Wp && p.scale && p.wsum);
	for (int64_t m = 0; m < M; m++) {
		int zp = irand(0, 255);
		for (int64_t k = 0; k < K; k++) {
			int q = k == 0 ? 0 : k == 1 ? 255 : irand(0, 255);
			p.A[m * K + k] = (float)(q - zp) / 64.0f;
		}
		if (K == 1)   /* one value: the range is [min(0, a), max(0, a)] */
			p.A[m] = (float)(255 - zp) / 64.0f;
	}
	for (int64_t n = 0; n < N; n++) {
		float s = ldexpf(1.0f, -irand(3, 9));
		int64_t top = irand(0, (int)K - 1);
		for (int64_t k = 0; k < K; k++)
			p.W[k * N + n] = (float)(k == top ? (n & 1 ? -127 : 127) : irand(-127, 127)) * s;
		p.bias[n] = frand();
	}
	rt_q8_quantize_weights(p.W, K, N, p.Wp, p.scale, p.wsum);
	return p;
}

static int per_tensor;   /* run() quantizes A per tensor */

static float *run(const prob *p, struct rt_pool *pl, const rt_gemm_epi *epi)
{
	int64_t rows = p->M + 2;
	float *C = malloc(sizeof(float) * (size_t)(rows * p->ldc));
	assert_non_null(C);
	for (int64_t i = 0; i < rows * p->ldc; i++)
		C[i] = CANARY;
	assert_int_equal(rt_qgemm(pl, p->M, p->N, p->K, p->A, p->K, p->Wp, p->scale, p->wsum, C,
	                          p->ldc, epi, per_tensor), 0);
	for (int64_t m = 0; m < rows; m++)
		for (int64_t n = 0; n < p->ldc; n++)
			if (m >= p->M || n >= p->N)
				assert_true(C[m * p->ldc + n] == CANARY);
	return C;
}

/* the f64 product of A and W (exact for the exact operands) */
static double ref_at(const prob *p, int64_t m, int64_t n, double *absum)
{
	double s = 0, a = 0;
	for (int64_t k = 0; k < p->K; k++) {
		double t = (double)p->A[m * p->K + k] * (double)p->W[k * p->N + n];
		s += t;
		a += fabs(t);
	}
	if (absum)
		*absum = a;
	return s;
}

static int usable(const char *k)
{
	return rt_qgemm_use(k) == 0;
}

/* the exact product, every kernel bit for bit as "c", serial and threaded */
static void shape(int64_t M, int64_t N, int64_t K)
{
	prob p = make_exact(M, N, K);
	assert_int_equal(rt_qgemm_use("c"), 0);
	float *C0 = run(&p, NULL, NULL);
	for (int64_t m = 0; m < M; m++)
		for (int64_t n = 0; n < N; n++) {
			double ab, r = ref_at(&p, m, n, &ab);
			double got = C0[m * p.ldc + n];
			if (!(fabs(got - r) <= 1e-6 * ab + 1e-30)) {
				printf("M %lld N %lld K %lld at (%lld, %lld): %.9g vs %.9g\n", (long long)M,
				       (long long)N, (long long)K, (long long)m, (long long)n, got, r);
				fail();
			}
		}
	for (int k = 0; k < NK; k++) {
		if (!usable(kernels[k]))
			continue;
		for (int t = 0; t < 2; t++) {
			float *C = run(&p, t ? pool : NULL, NULL);
			if (memcmp(C, C0, sizeof(float) * (size_t)(M * p.ldc))) {
				printf("kernel %s (threads %d) differs from c at M %lld N %lld K %lld\n",
				       kernels[k], t + 1, (long long)M, (long long)N, (long long)K);
				fail();
			}
			free(C);
		}
	}
	rt_qgemm_use(NULL);
	free(C0);
	prob_free(&p);
}

static void exact_shapes(void **state)
{
	(void)state;
	int n = 0;
	for (int k = 0; k < NK; k++)
		if (usable(kernels[k]))
			printf("# kernel %s runs here\n", kernels[k]), n++;
	rt_qgemm_use(NULL);
	printf("# best: %s\n", rt_qgemm_kernel());
	assert_true(n >= 1);
	for (int64_t M = 1; M <= 19; M += 3)
		for (int64_t N = 1; N <= 49; N += 8)
			for (int64_t K = 1; K <= 21; K += 5)
				shape(M, N, K);
	for (int i = 0; i < 40; i++)
		shape(irand(1, 70), irand(1, 90), irand(1, 400));
}

static void big_shapes(void **state)
{
	(void)state;
	shape(128, 96, 768);       /* BERT-base K, a slice of its N */
	shape(37, 64, 3072);       /* FFN2's K */
	shape(300, 40, 64);        /* rows past one L2 chunk of a small K */
	shape(2, 2304, 768);       /* the QKV width */
}

/* random f32 operands: the error of per-row / per-column quantization is
 * at most sum_k |a||dw| + |w||da| + |da||dw| with |da| <= sa/2, |dw| <= sw/2 */
static void against_f32(void **state)
{
	(void)state;
	for (int it = 0; it < 20; it++) {
		int64_t M = irand(1, 40), N = irand(1, 70), K = irand(1, 500);
		prob p = make_exact(M, N, K);
		for (int64_t i = 0; i < M * K; i++)
			p.A[i] = frand() * (i % 7 == 0 ? 8.0f : 1.0f);
		for (int64_t i = 0; i < K * N; i++)
			p.W[i] = frand() * 0.1f;
		rt_q8_quantize_weights(p.W, K, N, p.Wp, p.scale, p.wsum);
		float *C = run(&p, pool, NULL);
		for (int64_t m = 0; m < M; m++) {
			float mn = 0, mx = 0;
			for (int64_t k = 0; k < K; k++)
				mn = fminf(mn, p.A[m * K + k]), mx = fmaxf(mx, p.A[m * K + k]);
			double da = (mx - mn) / 255.0 / 2 * 1.001;
			for (int64_t n = 0; n < N; n++) {
				double dw = p.scale[n] / 2 * 1.001, bound = 0;
				for (int64_t k = 0; k < K; k++)
					bound += fabs(p.A[m * K + k]) * dw + fabs(p.W[k * N + n]) * da + da * dw;
				double r = ref_at(&p, m, n, NULL);
				assert_true(fabs(C[m * p.ldc + n] - r) <= bound + 1e-5 * fabs(r) + 1e-6);
			}
		}
		free(C);
		prob_free(&p);
	}
}

/* act: 1 erf, 2 tanh, 3 QuickGELU (with the float 1.702f the kernels hold) */
static double gelu_ref(double x, int act)
{
	if (act == 1)
		return 0.5 * x * erfc(-x / sqrt(2.0));
	if (act == 3)
		return x / (1.0 + exp(-(double)1.702f * x));
	return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

static void epilogues(void **state)
{
	(void)state;
	prob p = make_exact(9, 37, 50);
	for (int act = 0; act <= 3; act++) {
		rt_gemm_epi epi = {p.bias, act};
		float *C = run(&p, pool, &epi);
		for (int64_t m = 0; m < p.M; m++)
			for (int64_t n = 0; n < p.N; n++) {
				double ab, v = ref_at(&p, m, n, &ab) + p.bias[n];
				double r = act ? gelu_ref(v, act) : v;
				assert_true(fabs(C[m * p.ldc + n] - r) <= 1e-6 * ab + 2e-6 * (1 + fabs(r)));
			}
		free(C);
	}
	prob_free(&p);
}

static void nonfinite_rows(void **state)
{
	(void)state;
	prob p = make_exact(6, 20, 33);
	p.A[1 * 33 + 5] = NAN;
	p.A[3 * 33 + 0] = INFINITY;
	p.A[4 * 33 + 32] = -INFINITY;
	for (int k = 0; k < NK; k++) {
		if (!usable(kernels[k]))
			continue;
		float *C = run(&p, NULL, NULL);
		for (int64_t m = 0; m < p.M; m++)
			for (int64_t n = 0; n < p.N; n++) {
				bool bad = m == 1 || m == 3 || m == 4;
				assert_true(bad ? isnan(C[m * p.ldc + n]) : isfinite(C[m * p.ldc + n]));
			}
		free(C);
	}
	rt_qgemm_use(NULL);
	prob_free(&p);
}

static void refusals(void **state)
{
	(void)state;
	float a = 1, c = 0, s = 1;
	int8_t w[64] = {0};
	int32_t ws = 0;
	assert_int_equal(rt_qgemm(NULL, 1, 1, RT_Q8_KMAX + 1, &a, 1, w, &s, &ws, &c, 1, NULL, 0), -1);
	assert_int_equal(rt_qgemm(NULL, 0, 1, 1, &a, 1, w, &s, &ws, &c, 1, NULL, 0), 0);
	assert_int_equal(rt_qgemm_use("nope"), -1);
	assert_int_equal(rt_qgemm_use(NULL), 0);
	/* the weights' layout: column n's quad q at panel n/16, offset 4 (n % 16) */
	float W[5 * 17];
	for (int i = 0; i < 5 * 17; i++)
		W[i] = (float)(i % 17 == 16 ? -(i / 17) : i / 17);   /* W[k, n] = k, column 16: -k */
	int8_t Wp[2 * 2 * 64];
	float sc[17];
	int32_t sum[17];
	assert_int_equal(rt_q8_panel_bytes(5, 17), (int64_t)sizeof Wp);
	rt_q8_quantize_weights(W, 5, 17, Wp, sc, sum);
	assert_true(fabsf(sc[0] - 4.0f / 127) < 1e-7f && sum[0] == 127 + 64 + 32 + 95);
	assert_int_equal(Wp[4 * 3 + 1], 32);                /* k 1 of column 3: round(127 / 4) */
	assert_int_equal(Wp[64 + 4 * 3 + 0], 127);          /* quad 1: k 4 */
	assert_int_equal(Wp[64 + 4 * 3 + 1], 0);            /* k 5: past K */
	assert_int_equal(Wp[4 * 3 + 2], 64);                /* k 2 of column 3: round(2 * 127 / 4) */
	assert_int_equal(Wp[2 * 64 + 0 * 4 + 3], -95);      /* column 16, k 3 */
	assert_int_equal(Wp[2 * 64 + 64 + 1], 0);           /* past K */
}

/* DynamicQuantizeLinear's definition, then the integer product */
static void per_tensor_exact(void **state)
{
	(void)state;
	for (int it = 0; it < 12; it++) {
		int64_t M = irand(1, 30), N = irand(1, 50), K = irand(1, 300);
		prob p = make_exact(M, N, K);
		for (int64_t i = 0; i < M * K; i++)
			p.A[i] = frand() * (it & 1 ? 3.0f : 1.0f) + (it & 2 ? 0.7f : 0.0f);
		float lo = 0, hi = 0;
		for (int64_t i = 0; i < M * K; i++)
			lo = fminf(lo, p.A[i]), hi = fmaxf(hi, p.A[i]);
		float sa = (hi - lo) / 255.0f;
		float zp = fminf(fmaxf(nearbyintf(-lo / sa), 0), 255);
		per_tensor = 1;
		assert_int_equal(rt_qgemm_use("c"), 0);
		float *C0 = run(&p, NULL, NULL);
		for (int64_t m = 0; m < M; m++)
			for (int64_t n = 0; n < N; n++) {
				double acc = 0, ab = 0;
				for (int64_t k = 0; k < K; k++) {
					float q = fminf(fmaxf(nearbyintf(p.A[m * K + k] / sa) + zp, 0), 255);
					double t = (double)(q - zp) * (double)nearbyintf(p.W[k * N + n] / p.scale[n]);
					acc += t;
					ab += fabs(t);
				}
				double r = acc * (double)(sa * p.scale[n]);
				double tol = 1e-6 * ab * (double)(sa * p.scale[n]) + 1e-30;
				assert_true(fabs(C0[m * p.ldc + n] - r) <= tol);
			}
		for (int k = 0; k < NK; k++) {
			if (!usable(kernels[k]))
				continue;
			float *C = run(&p, pool, NULL);
			assert_memory_equal(C, C0, sizeof(float) * (size_t)(M * p.ldc));
			free(C);
		}
		per_tensor = 0;
		rt_qgemm_use(NULL);
		free(C0);
		p.A[M * K - 1] = NAN;
		float c[64 * 64];
		assert_int_equal(rt_qgemm(NULL, M, N, K, p.A, K, p.Wp, p.scale, p.wsum, c, N, NULL, 1), -2);
		prob_free(&p);
	}
}

static int setup(void **state)
{
	(void)state;
	pool = rt_pool_create(2);
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rt_qgemm_use(NULL);
	rt_pool_free(pool);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exact_shapes),
		cmocka_unit_test(big_shapes),
		cmocka_unit_test(against_f32),
		cmocka_unit_test(epilogues),
		cmocka_unit_test(nonfinite_rows),
		cmocka_unit_test(refusals),
		cmocka_unit_test(per_tensor_exact),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
