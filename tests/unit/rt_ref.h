/* rt_ref.h: double-precision references and checking helpers for the tests
 * that call runtime kernels directly: the cmocka unit tests (test_rt_gemm.c,
 * test_rt_vmath.c) and tests/cross/rt_kernels_check.c, which is cross-built
 * for aarch64 where there is no cmocka -- so plain C here, no test
 * framework: functions compute and return, the caller asserts.
 *
 * - ref_urand/ref_frand/ref_irand/ref_fill: a xorshift64 generator, one
 *   state per test program (ref_rng; a test may reseed it);
 * - ref_alloc: malloc that never returns NULL (exits 2 on no memory);
 * - ref_worse: the running worst error, NaN counted as infinite;
 * - ref_ulps: float against the exact double, in ulps;
 * - ref_gelu: GELU (erf, tanh or QuickGELU form) in double;
 * - RefGemm: operands of one sgemm with padded leading dimensions, filled
 *   at random (C with NaN when beta is 0: C must not be read), and the
 *   worst error of the result against the double product, padding columns
 *   of C (canaries) included;
 * - ref_guarded/ref_guard_hit: a float buffer between canaries, and the
 *   first canary a kernel overwrote;
 * - ref_sampled/ref_count: whether the slow tests check a sample (a
 *   sanitizer build, KILN_UNIT_SANITIZED, as tests/scripts/lib/sample.sh
 *   decides for the scripts; KILN_TEST_SAMPLE=0 or 1 overrides) and the
 *   count of a loop of random or repeated cases then. */
#ifndef KILN_TESTS_RT_REF_H
#define KILN_TESTS_RT_REF_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t ref_rng = 0x9E3779B97F4A7C15ull;

/* uniform in [0, 1) */
static inline double ref_urand(void)
{
	ref_rng ^= ref_rng << 13;
	ref_rng ^= ref_rng >> 7;
	ref_rng ^= ref_rng << 17;
	return (double)(ref_rng >> 11) / (double)(1ull << 53);
}

static inline float ref_frand(float lo, float hi)
{
	return (float)(lo + (hi - lo) * ref_urand());
}

/* uniform in [lo, hi] */
static inline int ref_irand(int lo, int hi)
{
	return lo + (int)(ref_urand() * (double)(hi - lo + 1));
}

static inline void ref_fill(float *p, int64_t n, float lo, float hi)
{
	for (int64_t i = 0; i < n; i++)
		p[i] = ref_frand(lo, hi);
}

/* 1 when the slow tests check a sample: under the sanitizers (every kernel
 * path and tail shape still runs; fewer random cases and repeats of the
 * big shapes), unless KILN_TEST_SAMPLE says 0 or 1 */
static inline int ref_sampled(void)
{
	const char *s = getenv("KILN_TEST_SAMPLE");
	if (s && (s[0] == '0' || s[0] == '1') && !s[1])
		return s[0] == '1';
#ifdef KILN_UNIT_SANITIZED
	return 1;
#else
	return 0;
#endif
}

/* n, or sampled the first ceil(n / d) of them */
static inline int ref_count(int n, int d)
{
	return ref_sampled() ? (n + d - 1) / d : n;
}

static inline void *ref_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		fprintf(stderr, "out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return p;
}

/* the larger of worst and err; NaN is worse than anything */
static inline double ref_worse(double worst, double err)
{
	return err <= worst ? worst : isnan(err) ? INFINITY : err;
}

/* ulps between float a and the exact value r (normal results), or for
 * results below FLT_MIN the absolute error in units of the smallest
 * denormal */
static inline double ref_ulps(float a, double r)
{
	if (fabs(r) < 1.17549435e-38)
		return fabs(a - r) / 1.4e-45;
	int e;
	frexp(r, &e);
	return fabs(a - r) / ldexp(1.0, e - 24);
}

/* GELU: act 2 the tanh form, otherwise the erf form (through erfc: 1 +
 * erf(z) without cancellation) */
/* act: 1 erf, 2 tanh, 3 QuickGELU (the float constant 1.702f, as the kernels) */
static inline double ref_gelu(double x, int act)
{
	if (act == 3)
		return x / (1.0 + exp(-(double)1.702f * x));
	if (act == 2)
		return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
	return 0.5 * x * erfc(-x / sqrt(2.0));
}

/* C = alpha op(A) op(B) + beta C (+ bias, GELU act) */
typedef struct {
	int ta, tb;
	int64_t M, N, K, lda, ldb, ldc;
	float alpha, beta;
	float *A, *B, *C, *C0;      /* C0: C before the product */
	float *Cg;                  /* C's allocation: REF_GUARD canaries, C, REF_GUARD canaries */
} RefGemm;

#define REF_GUARD 64
static const uint32_t ref_canary = 0x7fc0dead;   /* a NaN no kernel writes */

/* A buffer of n floats with REF_GUARD canaries on each side: returns the
 * first real float (free it with ref_guarded_free). */
static inline float *ref_guarded(int64_t n)
{
	float *p = ref_alloc(sizeof(float) * (size_t)(n + 2 * REF_GUARD));
	for (int64_t i = 0; i < n + 2 * REF_GUARD; i++)
		memcpy(&p[i], &ref_canary, sizeof ref_canary);
	return p + REF_GUARD;
}

static inline void ref_guarded_free(float *p)
{
	free(p - REF_GUARD);
}

/* Whether a canary around a ref_guarded buffer of n floats changed; *at
 * gets the first one's index from p (-REF_GUARD..-1 or n..n+REF_GUARD-1). */
static inline int ref_guard_hit(const float *p, int64_t n, int64_t *at)
{
	for (int64_t i = -REF_GUARD; i < n + REF_GUARD; i = i == -1 ? n : i + 1)
		if (memcmp(&p[i], &ref_canary, sizeof ref_canary)) {
			*at = i;
			return 1;
		}
	return 0;
}

/* Operands with leading dims past the matrix by pa, pb, pc, filled from
 * [-1, 1); C (and its copy C0) NaN when beta is 0. */
static inline RefGemm ref_gemm_new(int ta, int tb, int64_t M, int64_t N, int64_t K, float alpha,
                                   float beta, int64_t pa, int64_t pb, int64_t pc)
{
	RefGemm g = {ta, tb, M, N, K, (ta ? M : K) + pa, (tb ? K : N) + pb, N + pc, alpha, beta,
	             NULL, NULL, NULL, NULL, NULL};
	int64_t na = (ta ? K : M) * g.lda, nb = (tb ? N : K) * g.ldb, nc = M * g.ldc;
	g.A = ref_alloc(sizeof(float) * (size_t)na);
	g.B = ref_alloc(sizeof(float) * (size_t)nb);
	g.Cg = ref_alloc(sizeof(float) * (size_t)(nc + 2 * REF_GUARD));
	g.C = g.Cg + REF_GUARD;
	for (int64_t i = 0; i < REF_GUARD; i++) {
		memcpy(&g.Cg[i], &ref_canary, sizeof ref_canary);
		memcpy(&g.C[nc + i], &ref_canary, sizeof ref_canary);
	}
	g.C0 = ref_alloc(sizeof(float) * (size_t)nc);
	ref_fill(g.A, na, -1, 1);
	ref_fill(g.B, nb, -1, 1);
	for (int64_t i = 0; i < nc; i++)
		g.C0[i] = g.C[i] = g.beta == 0.0f ? NAN : ref_frand(-1, 1);
	return g;
}

/* B (not transposed) without its padding: K x N, for packing into panels;
 * the caller frees it */
static inline float *ref_gemm_dense_b(const RefGemm *g)
{
	float *b = ref_alloc(sizeof(float) * (size_t)(g->K * g->N));
	for (int64_t k = 0; k < g->K; k++)
		memcpy(b + k * g->N, g->B + k * g->ldb, (size_t)g->N * sizeof(float));
	return b;
}

/* The worst error of C against the double product, each element's
 * relative to the sum of the magnitudes of its terms plus tiny (the
 * epilogue's GELU applied to the reference); infinite if a padding column
 * of C or a canary around it changed. */
static inline double ref_gemm_worst(const RefGemm *g, const float *bias, int act, double tiny)
{
	double worst = 0;
	for (int64_t i = 0; i < g->M; i++)
		for (int64_t j = 0; j < g->N; j++) {
			double s = 0, mag = 0;
			for (int64_t k = 0; k < g->K; k++) {
				double a = g->ta ? g->A[k * g->lda + i] : g->A[i * g->lda + k];
				double b = g->tb ? g->B[j * g->ldb + k] : g->B[k * g->ldb + j];
				s += a * b;
				mag += fabs(a * b);
			}
			double c0 = g->C0[i * g->ldc + j];
			double ref = g->alpha * s, scale = fabs(g->alpha) * mag + tiny;
			if (g->beta != 0.0f) {
				ref += g->beta * c0;
				scale += fabs(g->beta * c0);
			}
			if (bias) {
				ref += bias[j];
				scale += fabs(bias[j]);
			}
			if (act)
				ref = ref_gelu(ref, act);
			worst = ref_worse(worst, fabs((double)g->C[i * g->ldc + j] - ref) / scale);
		}
	for (int64_t i = 0; i < g->M; i++)
		for (int64_t j = g->N; j < g->ldc; j++)
			if (memcmp(&g->C[i * g->ldc + j], &g->C0[i * g->ldc + j], sizeof(float)))
				worst = INFINITY;
	for (int64_t i = 0; i < REF_GUARD; i++)
		if (memcmp(&g->Cg[i], &ref_canary, sizeof ref_canary) ||
		    memcmp(&g->C[g->M * g->ldc + i], &ref_canary, sizeof ref_canary))
			worst = INFINITY;
	return worst;
}

static inline void ref_gemm_free(RefGemm *g)
{
	free(g->A);
	free(g->B);
	free(g->Cg);
	free(g->C0);
}

#endif
