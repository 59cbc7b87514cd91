/* test_rt_gemm_int8.c: the int8 GEMM (runtime/gemm_int8.h) for every
 * micro-kernel this CPU runs ("c", "avx2", "avx2x4" and "avx2-narrow" on AVX2;
 * "avxvnni", "avx512vnni" and "avx512vnni16" where the CPU has them), serial and on a
 * two-thread pool:
 *
 *   - exact: operands built so that quantization loses nothing (power-of-two
 *     scales, each row reaching 0 and 255, each column +-127), against the
 *     integer product computed in double;
 *   - every kernel gives the same bits as the portable one, on many shapes
 *     (K not a multiple of 4, N not of 16, rows not of the kernel's MR);
 *   - C's padding (ldc > N) and the rows after it keep their canaries;
 *   - random f32 operands: against the f32 product within the bound that
 *     per-row / per-column quantization gives;
 *   - bias and the GELUs (also swept over -14 .. 14 on whole 16-column
 *     tiles: the AVX2 epilogue's rational erf); a row with a NaN or an infinity gives NaN in that
 *     row only; K over RT_Q8_KMAX is refused;
 *   - per_tensor: A quantized with one scale as DynamicQuantizeLinear does
 *     (recomputed here from its definition), every kernel the same bits;
 *     a NaN is refused (-2);
 *   - 7-bit weights (RT_Q8_W7, |w| <= 64): the same exact tests, plus the
 *     extremes where a pair of products reaches +-2 x 255 x 64 (the most
 *     vpmaddubsw holds), for every kernel including "avx2-w7";
 *   - 8-bit weights never reach "avx2-w7": forced, it is replaced by the
 *     exact 8-bit kernel on operands it would saturate on, and weights that
 *     lie about being 7-bit are refused (-3);
 *   - 1 to 4 threads (the units cut into one contiguous run per thread):
 *     every kernel the same bits as serial "c", bias and GELU included;
 *   - "avx512vnni" (3 panels a call, 4-row tail) chosen where the CPU has
 *     AVX512_VNNI, refused elsewhere (skipped there); on rows 1 .. 40 and
 *     128, N ending in 1, 2 or 3 panels, K 1, 7 and 130, per row and per
 *     tensor, 8- and 7-bit weights, 1 to 4 threads: serial "c"'s bits;
 *   - the AVX-512 epilogue (whole panels of a tile) the AVX2 one's bits,
 *     with and without bias and erf GELU, a NaN row included;
 *   - the AVX-512 quantization of a row of A (range, NaN flag, u8 values)
 *     the AVX2 one's and the definition's, masked tails and clamps included;
 *   - the KlnGemmQ kernel: wbits 7 runs the 7-bit kernels, a weight outside
 *     [-64, 64] under wbits 7 is a one-line error naming the node (where
 *     "avx2-w7" runs), a wbits other than 7 or 8 too. */
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
static const char *const kernels[] = {"c", "avx2-w7", "avx2", "avx2-w7x4", "avx2x4",
                                       "avx2-narrow", "avxvnni", "avx512vnni", "avx512vnni16"};
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

static int wbits = 8;   /* make_exact's weights and run()'s flags: 8 or 7 bits */

/* exact operands: A[m, k] = (q - zp_m) / 64 with q in [0, 255] reaching both
 * ends, W[k, n] = w * 2^-e_n with w in [-qmax, qmax] reaching +-qmax (qmax
 * 127, or 64 for 7-bit weights) */
static prob make_exact(int64_t M, int64_t N, int64_t K)
{
	int qmax = wbits == 7 ? RT_Q8_W7MAX : 127;
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
			p.W[k * N + n] = (float)(k == top ? (n & 1 ? -qmax : qmax) : irand(-qmax, qmax)) * s;
		p.bias[n] = frand();
	}
	rt_q8_quantize_weights_bits(p.W, K, N, wbits, p.Wp, p.scale, p.wsum);
	return p;
}

static int per_tensor;   /* run() quantizes A per tensor */

/* pools of 2, 3 and 4 threads at pools[2..4] (1 thread: no pool) */
static void pools_new(struct rt_pool *pools[5])
{
	for (int t = 2; t <= 4; t++) {
		pools[t] = rt_pool_create(t);
		assert_non_null(pools[t]);
	}
}

static void pools_free(struct rt_pool *pools[5])
{
	for (int t = 2; t <= 4; t++)
		rt_pool_free(pools[t]);
}

static float *run(const prob *p, struct rt_pool *pl, const rt_gemm_epi *epi)
{
	int64_t rows = p->M + 2;
	float *C = malloc(sizeof(float) * (size_t)(rows * p->ldc));
	assert_non_null(C);
	for (int64_t i = 0; i < rows * p->ldc; i++)
		C[i] = CANARY;
	int flags = (per_tensor ? RT_Q8_PER_TENSOR : 0) | (wbits == 7 ? RT_Q8_W7 : 0);
	assert_int_equal(rt_qgemm(pl, p->M, p->N, p->K, p->A, p->K, p->Wp, p->scale, p->wsum, C,
	                          p->ldc, epi, flags), 0);
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
	printf("# best: %s (8-bit weights), %s (7-bit)\n", rt_qgemm_kernel(0),
	       rt_qgemm_kernel(RT_Q8_W7));
	assert_true(n >= 1);
	for (int64_t M = 1; M <= 19; M += 3)
		for (int64_t N = 1; N <= 49; N += 8)
			for (int64_t K = 1; K <= 21; K += 5)
				shape(M, N, K);
	for (int i = 0; i < 40; i++)
		shape(irand(1, 70), irand(1, 90), irand(1, 400));
	/* every row count of the last block of "avx2-w7" (MR 6, 4-row tail)
	 * and "avx2" (MR 3), with an odd quad count */
	for (int64_t M = 1; M <= 13; M++)
		shape(M, 33, 13);
}

static void big_shapes(void **state)
{
	(void)state;
	shape(128, 96, 768);       /* BERT-base K, a slice of its N */
	shape(37, 64, 3072);       /* FFN2's K */
	shape(300, 40, 64);        /* rows past one L2 chunk of a small K */
	shape(2, 2304, 768);       /* the QKV width */
	shape(700, 40, 768);       /* two chunks of rows (the u8 ones hold 678 for MR 6, i16
	                              339 for MR 3), A quantized in 34 tasks, the last short */
	shape(20, 48, 768);        /* LXMERT's 20 tokens: 6 + 6 + 6 + a 2-row tail */
	shape(36, 32, 3072);       /* its 36 regions at FFN2's K: 6 blocks of 6 */
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
		rt_q8_quantize_weights_bits(p.W, K, N, wbits, p.Wp, p.scale, p.wsum);
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

/* the GELUs over pre-activations from -14 to 14 (K 1: C is A's one value,
 * plus a bias), whole 16-column tiles (the AVX2 epilogue, whose erf is a
 * rational approximation) and a partial one, against the f64 GELU */
static void gelu_sweep(void **state)
{
	(void)state;
	int64_t M = 113, N = 40;
	prob p = make_exact(M, N, 1);
	for (int64_t m = 0; m < M; m++)
		p.A[m] = -14.0f + 28.0f * (float)m / (float)(M - 1);
	for (int64_t n = 0; n < N; n++)
		p.W[n] = 1.0f, p.bias[n] = 0.01f * (float)n - 0.2f;
	rt_q8_quantize_weights_bits(p.W, 1, N, wbits, p.Wp, p.scale, p.wsum);
	for (int act = 1; act <= 3; act++) {
		rt_gemm_epi epi = {p.bias, act};
		float *C = run(&p, pool, &epi);
		for (int64_t m = 0; m < M; m++)
			for (int64_t n = 0; n < N; n++) {
				double v = ref_at(&p, m, n, NULL) + p.bias[n], r = gelu_ref(v, act);
				double got = C[m * p.ldc + n];
				if (!(fabs(got - r) <= 2e-6 * (1 + fabs(r)))) {
					printf("act %d at %.9g: %.9g vs %.9g\n", act, v, got, r);
					fail();
				}
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

/* the tests above on 7-bit weights (|w| <= 64, RT_Q8_W7): "avx2-w7" runs
 * too where the CPU has AVX2 */
static void w7(void (*test)(void **), void **state)
{
	wbits = 7;
	test(state);
	wbits = 8;
}
static void exact_shapes_w7(void **state) { w7(exact_shapes, state); }
static void big_shapes_w7(void **state) { w7(big_shapes, state); }
static void against_f32_w7(void **state) { w7(against_f32, state); }
static void epilogues_w7(void **state) { w7(epilogues, state); }
static void nonfinite_rows_w7(void **state) { w7(nonfinite_rows, state); }

/* 7-bit quantization: every column reaches +-64 and stays within it, and
 * the scale is max |W| / 64 */
static void w7_quantize(void **state)
{
	(void)state;
	int64_t K = 37, N = 21;
	float *W = malloc(sizeof(float) * (size_t)(K * N));
	int8_t *Wp = malloc((size_t)rt_q8_panel_bytes(K, N));
	float sc[21];
	int32_t sum[21];
	assert_true(W && Wp);
	for (int64_t i = 0; i < K * N; i++)
		W[i] = frand() * (float)(1 + i % 5);
	rt_q8_quantize_weights_bits(W, K, N, 7, Wp, sc, sum);
	assert_true(rt_q8_w7_ok(Wp, rt_q8_panel_bytes(K, N)));
	for (int64_t n = 0; n < N; n++) {
		float mx = 0;
		int top = 0;
		for (int64_t k = 0; k < K; k++) {
			mx = fmaxf(mx, fabsf(W[k * N + n]));
			int8_t w = Wp[(n / 16) * rt_q8_quads(K) * 64 + (k / 4) * 64 + (n % 16) * 4 + k % 4];
			top = abs(w) > top ? abs(w) : top;
		}
		assert_int_equal(top, RT_Q8_W7MAX);
		assert_true(sc[n] == mx / 64.0f);
	}
	/* the check itself: -65, 65 and -128 are out, -64 and 64 in, anywhere in
	 * a vector step or in the tail */
	int8_t v[77];
	for (int at = 0; at < 77; at += 19) {
		memset(v, 64, sizeof v);
		v[3] = -64;
		assert_true(rt_q8_w7_ok(v, 77));
		const int8_t bad[3] = {65, -65, -128};
		for (int b = 0; b < 3; b++) {
			v[at] = bad[b];
			assert_false(rt_q8_w7_ok(v, 77));
		}
	}
	free(W);
	free(Wp);
}

/* the largest pair sums 7-bit weights allow: A's quantized values all 255 or
 * all 0 (zero point 0 or 255), W's +-64, so vpmaddubsw's i16 pair sums reach
 * +-32640; every kernel exact */
static void w7_extremes(void **state)
{
	(void)state;
	wbits = 7;
	int64_t M = 9, N = 35, K = 131;
	prob p = make_exact(M, N, K);
	for (int64_t m = 0; m < M; m++)
		for (int64_t k = 0; k < K; k++)   /* row m: zp 0 (all 255) or 255 (all 0 but one) */
			p.A[m * K + k] = m & 1 ? (k ? -255.0f : 0.0f) / 64.0f : 255.0f / 64.0f;
	for (int64_t n = 0; n < N; n++)
		for (int64_t k = 0; k < K; k++)
			p.W[k * N + n] = (float)(n % 3 == 0 ? 64 : n % 3 == 1 ? -64 : (k & 1 ? 64 : -64));
	rt_q8_quantize_weights_bits(p.W, K, N, 7, p.Wp, p.scale, p.wsum);
	for (int k = 0; k < NK; k++) {
		if (!usable(kernels[k]))
			continue;
		float *C = run(&p, pool, NULL);
		for (int64_t m = 0; m < M; m++)
			for (int64_t n = 0; n < N; n++)
				assert_true(C[m * p.ldc + n] == (float)ref_at(&p, m, n, NULL));
		free(C);
	}
	rt_qgemm_use(NULL);
	wbits = 8;
	prob_free(&p);
}

/* 8-bit weights on operands where vpmaddubsw saturates (A's values 255,
 * W's +-127: pair sums 2 x 255 x 127 > 32767): with "avx2-w7" forced,
 * rt_qgemm still runs an exact kernel; weights that claim to be 7-bit
 * (RT_Q8_W7) but are not are refused with -3 by the 7-bit kernel */
static void w8_never_w7(void **state)
{
	(void)state;
	if (rt_qgemm_use("avx2-w7")) {
		printf("# no AVX2: avx2-w7 does not run here\n");
		skip();
	}
	assert_string_equal(rt_qgemm_kernel(RT_Q8_W7), "avx2-w7");
	assert_string_not_equal(rt_qgemm_kernel(0), "avx2-w7");
	int64_t M = 6, N = 40, K = 96;
	prob p = make_exact(M, N, K);
	for (int64_t i = 0; i < M * K; i++)
		p.A[i] = 255.0f / 64.0f;
	for (int64_t i = 0; i < K * N; i++)   /* columns of 127s and of -127s */
		p.W[i] = i % N % 2 ? 127.0f : -127.0f;
	rt_q8_quantize_weights(p.W, K, N, p.Wp, p.scale, p.wsum);
	for (int t = 0; t < 2; t++) {
		float *C = run(&p, t ? pool : NULL, NULL);
		for (int64_t m = 0; m < M; m++)
			for (int64_t n = 0; n < N; n++)
				assert_true(C[m * p.ldc + n] == (float)ref_at(&p, m, n, NULL));
		free(C);
	}
	float *C = malloc(sizeof(float) * (size_t)(M * N));
	assert_non_null(C);
	for (int t = 0; t < 2; t++)
		assert_int_equal(rt_qgemm(t ? pool : NULL, M, N, K, p.A, K, p.Wp, p.scale, p.wsum, C, N,
		                          NULL, RT_Q8_W7), -3);
	/* one weight out of range, in the last panel */
	wbits = 7;
	prob q = make_exact(M, N, K);
	wbits = 8;
	assert_int_equal(rt_qgemm(pool, M, N, K, q.A, K, q.Wp, q.scale, q.wsum, C, N, NULL, RT_Q8_W7), 0);
	q.Wp[rt_q8_panel_bytes(K, N) - 64 + 5] = 65;
	assert_int_equal(rt_qgemm(pool, M, N, K, q.A, K, q.Wp, q.scale, q.wsum, C, N, NULL, RT_Q8_W7), -3);
	/* with rows in several chunks (K 8192: about 64 rows a chunk), each
	 * panel checked in the first one: the bad last panel is still found */
	{
		int64_t M2 = 200, K2 = 8192;
		wbits = 7;
		prob b = make_exact(M2, N, K2);
		wbits = 8;
		float *C2 = malloc(sizeof(float) * (size_t)(M2 * N));
		assert_non_null(C2);
		for (int t = 0; t < 2; t++)
			assert_int_equal(rt_qgemm(t ? pool : NULL, M2, N, K2, b.A, K2, b.Wp, b.scale, b.wsum,
			                          C2, N, NULL, RT_Q8_W7), 0);
		b.Wp[rt_q8_panel_bytes(K2, N) - 64 * 100 + 7] = -70;
		for (int t = 0; t < 2; t++)
			assert_int_equal(rt_qgemm(t ? pool : NULL, M2, N, K2, b.A, K2, b.Wp, b.scale, b.wsum,
			                          C2, N, NULL, RT_Q8_W7), -3);
		free(C2);
		prob_free(&b);
	}
	/* the portable kernel is exact on any weights: it takes them */
	assert_int_equal(rt_qgemm_use("c"), 0);
	assert_int_equal(rt_qgemm(pool, M, N, K, q.A, K, q.Wp, q.scale, q.wsum, C, N, NULL, RT_Q8_W7), 0);
	rt_qgemm_use(NULL);
	free(C);
	prob_free(&q);
	prob_free(&p);
}

RT_KERNEL(KlnGemmQ);

static void kernel_wbits(void **state)
{
	(void)state;
	struct kiln_context ctx;
	memset(&ctx, 0, sizeof ctx);
	kiln_frame F = {.pool = pool, .ctx = &ctx};
	wbits = 7;
	int64_t M = 5, N = 19, K = 70;
	prob p = make_exact(M, N, K);
	wbits = 8;
	float *Y = malloc(sizeof(float) * (size_t)(M * N));
	assert_non_null(Y);
	rt_t in[4] = {{.data = p.A, .dtype = KILN_F32, .rank = 2, .dims = {M, K}},
	              {.data = p.Wp, .dtype = KILN_I8, .rank = 3,
	               .dims = {rt_q8_panels(N), rt_q8_quads(K), 64}},
	              {.data = p.scale, .dtype = KILN_F32, .rank = 1, .dims = {N}},
	              {.data = p.wsum, .dtype = KILN_I32, .rank = 1, .dims = {N}}};
	rt_t out = {.data = Y, .dtype = KILN_F32, .rank = 2, .dims = {M, N}};
	int64_t ia[RT_NIA_KlnGemmQ] = {0};
	ia[RT_IA_KlnGemmQ_wbits] = 7;
	assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 0);
	for (int64_t m = 0; m < M; m++)
		for (int64_t n = 0; n < N; n++) {
			double ab, r = ref_at(&p, m, n, &ab);
			assert_true(fabs(Y[m * N + n] - r) <= 1e-6 * ab + 1e-30);
		}
	p.Wp[64 * 3 + 7] = 100;
	int rc = rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0);
	if (!strcmp(rt_qgemm_kernel(RT_Q8_W7), "avx2-w7")) {
		assert_int_equal(rc, 1);
		assert_string_equal(ctx.err, "node 'q' (KlnGemmQ): W holds a weight outside the 7-bit "
		                             "range [-64, 64] that its wbits 7 promises");
	} else {   /* VNNI or portable: exact on any weights */
		assert_int_equal(rc, 0);
	}
	ia[RT_IA_KlnGemmQ_wbits] = 8;   /* 8-bit: any weights, the exact kernels */
	assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 0);
	ia[RT_IA_KlnGemmQ_wbits] = 6;
	assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 1);
	assert_string_equal(ctx.err, "node 'q' (KlnGemmQ): wbits 6 is not 7 or 8");
	/* W inside the model's weights blob is trusted (no check at run time);
	 * a W that starts before the blob or ends past it is checked */
	if (!strcmp(rt_qgemm_kernel(RT_Q8_W7), "avx2-w7")) {
		int64_t wb = rt_q8_panel_bytes(K, N);
		rt_model_desc d;
		memset(&d, 0, sizeof d);
		ctx.d = &d;
		ia[RT_IA_KlnGemmQ_wbits] = 7;
		F.weights = (const char *)p.Wp - 64, d.weights_hot_bytes = (uint64_t)wb + 63;
		assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 1);
		F.weights = (const char *)p.Wp + 64, d.weights_hot_bytes = (uint64_t)wb;
		assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 1);
		p.Wp[64 * 3 + 7] = 64;   /* 7-bit again: inside the blob, the same sums as checked */
		F.weights = (const char *)p.Wp, d.weights_hot_bytes = (uint64_t)wb;
		float *Y2 = malloc(sizeof(float) * (size_t)(M * N));
		assert_non_null(Y2);
		out.data = Y2;
		assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 0);
		F.weights = NULL;
		out.data = Y;
		assert_int_equal(rt_op_KlnGemmQ(&F, "q", in, 4, &out, 1, ia, RT_NIA_KlnGemmQ, NULL, 0), 0);
		assert_memory_equal(Y, Y2, sizeof(float) * (size_t)(M * N));
		free(Y2);
		ctx.d = NULL;
	}
	free(Y);
	prob_free(&p);
}

/* 1 to 4 threads: the units are cut into one contiguous run per thread
 * (fewer when there are fewer units: one panel, or one row chunk of one
 * panel), and a thread whose run is done takes from the others'.  On
 * shapes with one panel, one row chunk, several chunks, the LXMERT and
 * BERT-base ones, with the bias and the erf GELU: every kernel on every
 * pool the same bits as serial "c" (whose sums are checked exactly, and
 * whose epilogue against the f64 GELU), the canaries around C kept;
 * with one shared run (over 48 rows), its last units cut in two halves of
 * rows (each C element from one of them: the same bits). */
static void threads_1_to_4(void **state)
{
	(void)state;
	static const int64_t shapes[][3] = {
		{40, 16, 1000},    /* one panel: a single unit, one run */
		{700, 16, 768},    /* one panel, two row chunks: two units */
		{20, 48, 768},     /* LXMERT's tokens: 3 panels, runs of 1 at 3 threads */
		{36, 80, 3072},    /* its regions at FFN2's K: 5 panels */
		{128, 96, 768},    /* BERT-base b1, a slice of N */
		{700, 40, 768},    /* two chunks of 3 panels: runs cross a chunk */
		{1, 2304, 768},    /* one row, the QKV width */
		/* one shared run (over 48 rows): its last units cut in halves of rows */
		{97, 33, 50},      /* 3 panels, the last partial: every unit cut */
		{130, 200, 13},    /* 13 panels, halves of 66 / 64 rows (MR 6) */
		{683, 48, 768},    /* a last chunk of 5 rows (MR 6): too few to cut */
		{1030, 40, 768},   /* a last chunk of 352 rows (MR 6), 13 (MR 3): cut */
		/* BERT's FFN-down K: 7 row chunks of u8 (13 of i16), 206 quantization
		 * tasks; a thread starts a unit once its rows are quantized, while
		 * the others may still quantize later chunks */
		{1030, 40, 3072},
	};
	struct rt_pool *pools[5] = {NULL};
	pools_new(pools);
	for (int w = 0; w < 2; w++) {
		wbits = w ? 7 : 8;
		for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
			prob p = make_exact(shapes[s][0], shapes[s][1], shapes[s][2]);
			rt_gemm_epi epi = {p.bias, 1};
			assert_int_equal(rt_qgemm_use("c"), 0);
			float *C0 = run(&p, NULL, &epi);
			for (int64_t m = 0; m < p.M; m++)
				for (int64_t n = 0; n < p.N; n++) {
					double ab, r = gelu_ref(ref_at(&p, m, n, &ab) + p.bias[n], 1);
					assert_true(fabs(C0[m * p.ldc + n] - r) <= 1e-6 * ab + 2e-6 * (1 + fabs(r)));
				}
			for (int k = 0; k < NK; k++) {
				if (!usable(kernels[k]))
					continue;
				for (int t = 1; t <= 4; t++) {
					float *C = run(&p, t > 1 ? pools[t] : NULL, &epi);
					if (memcmp(C, C0, sizeof(float) * (size_t)(p.M * p.ldc))) {
						printf("kernel %s, %d threads, %d-bit: differs from serial c at M %lld "
						       "N %lld K %lld\n", kernels[k], t, wbits, (long long)p.M,
						       (long long)p.N, (long long)p.K);
						fail();
					}
					free(C);
				}
			}
			rt_qgemm_use(NULL);
			free(C0);
			prob_free(&p);
		}
	}
	wbits = 8;
	pools_free(pools);
}

/* "avx512vnni" (8 or 4 rows x 3, 2 or 1 panels a call): chosen exactly
 * where the CPU has AVX512_VNNI; on every row count 1 .. 40 and 128 (8-row
 * blocks, the 4-row tail, short blocks), N with a last group of 1, 2 or 3
 * panels, partial or whole, K 1, not a multiple of 4, and a larger one,
 * per row and per tensor, 8- and 7-bit weights, 1 to 4 threads: the same
 * bits as serial "c", with the bias and the erf GELU, canaries kept */
static void vnni_shapes(void **state)
{
	(void)state;
#if defined(__x86_64__)
	__builtin_cpu_init();
	bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
#else
	bool vnni = false;
#endif
	rt_qgemm_use(NULL);
	if (vnni)
		assert_string_equal(rt_qgemm_kernel(0), "avx512vnni");
	if (!vnni) {
		assert_int_equal(rt_qgemm_use("avx512vnni"), -1);
		skip();
	}
	static const int64_t Ns[] = {1, 17, 47, 50, 97, 113};
	static const int64_t Ks[] = {1, 7, 130};
	struct rt_pool *pools[5] = {NULL};
	pools_new(pools);
	for (int64_t M = 1; M <= 41; M++)
		for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
			for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++) {
				int v = (int)(M + ni + ki);
				wbits = v % 2 ? 7 : 8;
				per_tensor = v % 3 == 0;
				prob p = make_exact(M == 41 ? 128 : M, Ns[ni], Ks[ki]);
				rt_gemm_epi epi = {p.bias, 1};
				assert_int_equal(rt_qgemm_use("c"), 0);
				float *C0 = run(&p, NULL, &epi);
				assert_int_equal(rt_qgemm_use("avx512vnni"), 0);
				for (int t = 1; t <= 4; t++) {
					float *C = run(&p, t > 1 ? pools[t] : NULL, &epi);
					if (memcmp(C, C0, sizeof(float) * (size_t)(p.M * p.ldc))) {
						printf("avx512vnni, %d threads, %d-bit%s: differs from serial c at M "
						       "%lld N %lld K %lld\n", t, wbits, per_tensor ? ", per tensor" : "",
						       (long long)p.M, (long long)p.N, (long long)p.K);
						fail();
					}
					free(C);
				}
				free(C0);
				prob_free(&p);
			}
	rt_qgemm_use(NULL);
	wbits = 8;
	per_tensor = 0;
	pools_free(pools);
}

/* the AVX-512 epilogue (whole panels of a kernel's tile) against the AVX2
 * one, panel by panel: the same bits, with and without the bias and the erf
 * GELU, on sums that put the GELU's input over -20 .. 20 (both clamps of
 * its erf), a NaN row (sa NaN) included; skipped without AVX512F */
static void epilogue_avx512(void **state)
{
	(void)state;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx2") ||
	    !__builtin_cpu_supports("fma"))
		skip();
	enum { MR = 8, NP = 3, LD = 16 * NP + 5 };
	int32_t acc[NP * MR * RT_Q8_NR], wsum[16 * NP], zp[MR];
	float sa[MR], scale[16 * NP], bias[16 * NP], C0[MR * LD], C1[MR * LD];
	for (int it = 0; it < 200; it++) {
		int mr = 1 + it % MR, np = 1 + it / MR % NP, act = it / (MR * NP) % 2;
		bool hb = it / (2 * MR * NP) % 2;
		for (int i = 0; i < NP * MR * RT_Q8_NR; i++)
			acc[i] = irand(-400000, 400000);
		for (int n = 0; n < 16 * NP; n++)
			wsum[n] = irand(-3000, 3000), scale[n] = ldexpf(1.0f + frand() / 4, -irand(6, 9)),
			bias[n] = 3 * frand();
		for (int r = 0; r < MR; r++)
			zp[r] = irand(0, 255), sa[r] = r == 5 && it % 7 == 0 ? NAN : ldexpf(1.0f, -irand(8, 11));
		for (int i = 0; i < MR * LD; i++)
			C0[i] = C1[i] = CANARY;
		for (int g = 0; g < np; g++)
			rt_q8_dequant16_avx2(acc + g * MR * RT_Q8_NR, mr, C0 + 16 * g, LD, sa, zp, wsum + 16 * g,
			                     scale + 16 * g, hb ? bias + 16 * g : NULL, act);
		rt_q8_dequant_avx512(acc, MR, mr, np, C1, LD, sa, zp, wsum, scale, hb ? bias : NULL, act);
		if (memcmp(C0, C1, sizeof C0)) {
			printf("avx512 epilogue differs from avx2: mr %d np %d act %d bias %d\n", mr, np, act, hb);
			fail();
		}
	}
#else
	skip();
#endif
}

/* the AVX-512 quantization of a row of A against the AVX2 one and the
 * definition (q = clamp(rne(x * inv) + zp, 0, 255); min(0, min x),
 * max(0, max x), NaN flag): the same bytes, min, max and flag on K 0 .. 70
 * (64 a step, then 16, then a masked tail) and BERT's 768 / 3072 (+1),
 * values past the u8 range (both clamps), -0, a NaN or an infinity in some
 * rows; the byte after the row keeps its canary; skipped without AVX512F
 * and AVX512BW */
static void quant_avx512(void **state)
{
	(void)state;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
	    !__builtin_cpu_supports("avx2"))
		skip();
	static const int64_t big[] = {767, 768, 769, 3071, 3072, 3073};
	enum { KMAX = 3073 };
	float *x = malloc(sizeof(float) * KMAX);
	uint8_t *q0 = malloc(KMAX + 1), *q1 = malloc(KMAX + 1), *qr = malloc(KMAX + 1);
	assert_true(x && q0 && q1 && qr);
	for (int it = 0; it < 71 + 6 * 8; it++) {
		int64_t K = it < 71 ? it : big[(it - 71) / 8];
		float amp = ldexpf(1.0f, irand(-6, 6));
		for (int64_t k = 0; k < K; k++)
			x[k] = k % 11 == 3 ? -0.0f : amp * (2 * frand() - 0.5f);
		if (it % 5 == 1 && K > 0)
			x[irand(0, (int)K - 1)] = it % 2 ? NAN : -INFINITY;
		float mn0, mx0, mn1, mx1, lo = 0, hi = 0;
		int b0, b1, nan = 0;
		for (int64_t k = 0; k < K; k++)
			lo = x[k] < lo ? x[k] : lo, hi = x[k] > hi ? x[k] : hi, nan |= x[k] != x[k];
		rt_q8_row_range_avx2(x, K, &mn0, &mx0, &b0);
		rt_q8_row_range_avx512(x, K, &mn1, &mx1, &b1);
		assert_int_equal(b1, b0);
		assert_int_equal(b1, nan);
		if (!nan)
			assert_true(mn1 == lo && mx1 == hi && mn0 == lo && mx0 == hi);
		if (nan || isinf(lo))
			continue;
		/* inv up to 1.5 x the row's: the clamps at 0 and 255 are reached */
		float s = (hi - lo) / 255.0f, inv = s > 0 ? (1.0f + frand() / 2) / s : 1.0f;
		int32_t zp = irand(0, 255);
		memset(q0, 0xa5, KMAX + 1), memset(q1, 0xa5, KMAX + 1);
		rt_q8_quant_u8_avx2(x, K, inv, zp, q0);
		rt_q8_quant_u8_avx512(x, K, inv, zp, q1);
		for (int64_t k = 0; k < K; k++) {
			float v = nearbyintf(x[k] * inv) + (float)zp;
			qr[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
		}
		if (memcmp(q1, q0, (size_t)K + 1) || memcmp(q1, qr, (size_t)K) || q1[K] != 0xa5) {
			printf("avx512 quantization differs at K %lld\n", (long long)K);
			fail();
		}
	}
	free(x), free(q0), free(q1), free(qr);
#else
	skip();
#endif
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
		cmocka_unit_test(gelu_sweep),
		cmocka_unit_test(nonfinite_rows),
		cmocka_unit_test(refusals),
		cmocka_unit_test(per_tensor_exact),
		cmocka_unit_test(exact_shapes_w7),
		cmocka_unit_test(big_shapes_w7),
		cmocka_unit_test(against_f32_w7),
		cmocka_unit_test(epilogues_w7),
		cmocka_unit_test(nonfinite_rows_w7),
		cmocka_unit_test(w7_quantize),
		cmocka_unit_test(w7_extremes),
		cmocka_unit_test(w8_never_w7),
		cmocka_unit_test(kernel_wbits),
		cmocka_unit_test(threads_1_to_4),
		cmocka_unit_test(vnni_shapes),
		cmocka_unit_test(epilogue_avx512),
		cmocka_unit_test(quant_avx512),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
