/* Numerical tests of the fusions.
 *
 * 1. The fused kernels (runtime/kernels_fused.c) against references written
 *    here the way the unfused ONNX graphs compute: attention with packed
 *    Q/K/V offsets, broadcast biases, key-padding masks and the SDPA NaN
 *    guard; GEMM with GELU epilogues; (skip) layer norms; embeddings with
 *    broadcast and negative indices; run on a 2-thread pool; bad inputs
 *    give errors, not crashes.
 * 2. End to end: every text-IR case in tests/passes is compiled twice with
 *    the backend, as is and after its pass pipeline, and both are run on
 *    the same random inputs: outputs agree within 1e-5 (relative to
 *    max(1, |value|)).  Cases the backend cannot compile yet are skipped.
 *    Sampled (rt_ref.h's ref_sampled: a sanitizer build), every case is
 *    parsed and runs its passes, but only every second one (by name) and
 *    each one with an op, as is or fused, that no case compiled before
 *    had are compiled and run: every op kind the cases hold still reaches
 *    the backend and the runtime under the sanitizers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <unistd.h>
#include <cmocka.h>

#include "backend.h"
#include "ir.h"
#include "kiln.h"
#include "passes.h"
#include "rt_internal.h"
#include "rt_ref.h"
#include "rt_test.h"

RT_KERNEL(KlnAttention);
RT_KERNEL(KlnGemm);
RT_KERNEL(KlnLayerNorm);
RT_KERNEL(KlnSkipLayerNorm);
RT_KERNEL(KlnEmbedLayerNorm);
RT_KERNEL(KlnGelu);
RT_KERNEL(KlnRMSNorm);

static uint64_t rng = 88172645463325252ULL;

static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) % 2000001) / 1000000.0f - 1.0f;
}

static float *frandv(size_t n)
{
	float *p = malloc(n * sizeof *p);
	assert_non_null(p);
	for (size_t i = 0; i < n; i++)
		p[i] = frand() * 2;
	return p;
}

static void assert_close(const float *a, const float *b, size_t n, double tol)
{
	for (size_t i = 0; i < n; i++) {
		if (isnan(b[i])) {
			if (!isnan(a[i]))
				fail_msg("element %zu: %g, expected NaN", i, a[i]);
			continue;
		}
		double lim = tol * (fabs(b[i]) > 1 ? fabs(b[i]) : 1);
		if (!(fabs((double)a[i] - b[i]) <= lim))
			fail_msg("element %zu: %.9g vs reference %.9g", i, a[i], b[i]);
	}
}

/* ---- attention ---------------------------------------------------------- */

typedef struct AttCase {
	int64_t B, Sq, Sk, H, D, Dv;
	int bias_kind;      /* 0 none, 1 [B,1,1,Sk], 2 [B,H,Sq,Sk], 3 [Sq, Sk] */
	bool packed, mask, guard, neg_inf_row;
	bool inf_filter;    /* SDPA's -inf instead of the float minimum */
	int64_t hkv;        /* K/V heads (0: H), grouped-query attention */
} AttCase;

/* Unfused reference: per head, S = (Q K^T) * scale + bias + pad (0 where
 * m == 1, else (1-m) * filter),
 * softmax (NaN for rows of -inf), optional guard, times V. */
static void att_ref(const AttCase *c, const float *q, int64_t ldq, int64_t qo, const float *k,
                    int64_t ldk, int64_t ko, const float *v, int64_t ldv, int64_t vo,
                    const float *bias, const int64_t *bs, const int64_t *mask, float filter,
                    float scale, float *o)
{
	float *s = malloc((size_t)c->Sk * sizeof *s);
	int64_t rep = c->hkv ? c->H / c->hkv : 1;
	for (int64_t b = 0; b < c->B; b++)
		for (int64_t h = 0; h < c->H; h++)
			for (int64_t i = 0; i < c->Sq; i++) {
				float mx = -INFINITY;
				for (int64_t j = 0; j < c->Sk; j++) {
					float acc = 0;
					for (int64_t d = 0; d < c->D; d++)
						acc += q[(b * c->Sq + i) * ldq + qo + h * c->D + d] *
						       k[(b * c->Sk + j) * ldk + ko + h / rep * c->D + d];
					acc *= scale;
					if (bias)
						acc += bias[b * bs[0] + h * bs[1] + i * bs[2] + j * bs[3]];
					if (mask && mask[b * c->Sk + j] != 1)
						acc += (float)(1 - mask[b * c->Sk + j]) * filter;
					s[j] = acc;
					mx = acc > mx ? acc : mx;
				}
				float sum = 0;
				for (int64_t j = 0; j < c->Sk; j++) {
					s[j] = expf(s[j] - mx);
					sum += s[j];
				}
				for (int64_t j = 0; j < c->Sk; j++) {
					s[j] /= sum;
					if (c->guard && isnan(s[j]))
						s[j] = 0;
				}
				for (int64_t d = 0; d < c->Dv; d++) {
					float acc = 0;
					for (int64_t j = 0; j < c->Sk; j++)
						acc += s[j] * v[(b * c->Sk + j) * ldv + vo + h / rep * c->Dv + d];
					o[(b * c->Sq + i) * c->H * c->Dv + h * c->Dv + d] = acc;
				}
			}
	free(s);
}

static void run_att(const AttCase *c)
{
	int64_t hd = c->H * c->D, hdv = c->H * c->Dv, hkv = c->hkv ? c->hkv : c->H;
	/* packed: Q, K, V in one tensor [B, S, 2*hd + hdv] (requires Sq == Sk) */
	int64_t ldq = c->packed ? 2 * hd + hdv : hd, ldk = c->packed ? ldq : hkv * c->D;
	int64_t ldv = c->packed ? ldq : hkv * c->Dv;
	int64_t qo = 0, ko = c->packed ? hd : 0, vo = c->packed ? 2 * hd : 0;
	float *q = frandv((size_t)(c->B * c->Sq * ldq));
	float *k = c->packed ? q : frandv((size_t)(c->B * c->Sk * ldk));
	float *v = c->packed ? q : frandv((size_t)(c->B * c->Sk * ldv));
	int64_t bd[4] = {1, 1, 1, 1}, bs[4] = {0, 0, 0, 0};
	int brank = 0;
	if (c->bias_kind == 1) {
		bd[0] = c->B; bd[3] = c->Sk; brank = 4;
		bs[0] = c->Sk; bs[3] = 1;
	} else if (c->bias_kind == 2) {
		bd[0] = c->B; bd[1] = c->H; bd[2] = c->Sq; bd[3] = c->Sk; brank = 4;
		bs[3] = 1; bs[2] = c->Sk; bs[1] = c->Sq * c->Sk; bs[0] = c->H * c->Sq * c->Sk;
	} else if (c->bias_kind == 3) {
		bd[0] = c->Sq; bd[1] = c->Sk; brank = 2;
		bs[2] = c->Sk; bs[3] = 1;
	}
	size_t nb = (size_t)(bd[0] * bd[1] * bd[2] * bd[3]);
	float *bias = c->bias_kind ? frandv(nb) : NULL;
	if (bias && c->neg_inf_row)
		for (int64_t j = 0; j < c->Sk; j++)
			bias[j] = -INFINITY;   /* batch 0 (and, for kind 2, head 0 row 0): all keys masked */
	int64_t *mask = NULL;
	if (c->mask) {
		mask = malloc((size_t)(c->B * c->Sk) * sizeof *mask);
		for (int64_t i = 0; i < c->B * c->Sk; i++)
			mask[i] = (i % c->Sk) < c->Sk - 1 - (i / c->Sk) ? 1 : 0;
	}
	float scale = 1.0f / sqrtf((float)c->D);
	float filter = c->inf_filter ? -INFINITY : -3.4028234663852886e+38f;
	float *o = calloc((size_t)(c->B * c->Sq * hdv), sizeof *o);
	float *ref = calloc((size_t)(c->B * c->Sq * hdv), sizeof *ref);
	att_ref(c, q, ldq, qo, k, ldk, ko, v, ldv, vo, bias, bs, mask, filter, scale, ref);
	rt_t in[5] = {T(q, 3, c->B, c->Sq, ldq, 0, KILN_F32), T(k, 3, c->B, c->Sk, ldk, 0, KILN_F32),
	              T(v, 3, c->B, c->Sk, ldv, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, 0),
	              T(NULL, 0, 0, 0, 0, 0, 0)};
	if (bias)
		in[3] = brank == 4 ? T(bias, 4, bd[0], bd[1], bd[2], bd[3], KILN_F32) :
		                     T(bias, 2, bd[0], bd[1], 0, 0, KILN_F32);
	if (mask)
		in[4] = T(mask, 2, c->B, c->Sk, 0, 0, KILN_I64);
	rt_t out = T(o, 3, c->B, c->Sq, hdv, 0, KILN_F32);
	/* ia: head_size, k_offset, layout, nan_guard, num_heads, q_offset, v_head_size, v_offset */
	int64_t ia[10] = {c->D, ko, 0, c->guard, c->H, qo, c->Dv, vo, 0, c->hkv};
	float fa[3] = {filter, scale, 0};
	int rc = rt_op_KlnAttention(frame(), "att", in, 5, &out, 1, ia, 10, fa, 3);
	assert_int_equal(rc, 0);
	assert_close(o, ref, (size_t)(c->B * c->Sq * hdv), 1e-5);
	free(o); free(ref); free(bias); free(mask);
	if (!c->packed) {
		free(k);
		free(v);
	}
	free(q);
}

static void test_attention_kernel(void **state)
{
	(void)state;
	AttCase cases[] = {
		{2, 5, 5, 2, 4, 4, 0, false, false, false, false, false, 0},
		{2, 5, 7, 3, 4, 2, 1, false, false, false, false, false, 0},  /* cross, Dv != D */
		{2, 6, 6, 2, 3, 3, 2, true, false, false, false, false, 0},   /* packed QKV */
		{1, 4, 9, 2, 2, 2, 3, false, true, false, false, false, 0},   /* [Sq,Sk] bias + key mask */
		{2, 3, 4, 2, 2, 2, 1, false, false, true, true, false, 0},    /* -inf row, NaN guard */
		{2, 3, 4, 2, 2, 2, 1, false, false, false, true, false, 0},   /* -inf row, NaN kept */
		{2, 96, 96, 4, 16, 16, 1, true, false, false, false, false, 0},  /* big enough to run parallel */
		{1, 70, 300, 2, 8, 8, 2, false, true, false, false, false, 0},   /* many query blocks */
		{2, 5, 6, 2, 2, 2, 0, false, true, true, false, true, 0}, /* bool-like mask, -inf */
		{2, 5, 7, 4, 3, 2, 1, false, false, false, false, false, 2},  /* GQA: 2 K/V heads */
		{2, 4, 4, 3, 2, 2, 0, false, true, false, false, false, 1},   /* MQA: one K/V head */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		run_att(&cases[i]);
}

static void test_attention_kernel_errors(void **state)
{
	(void)state;
	float q[2 * 3 * 4] = {0}, o[2 * 3 * 4];
	rt_t in[4] = {T(q, 3, 2, 3, 4, 0, KILN_F32), T(q, 3, 2, 3, 4, 0, KILN_F32),
	              T(q, 3, 2, 3, 4, 0, KILN_F32), T(q, 4, 2, 2, 3, 1, KILN_F32)};
	rt_t out = T(o, 3, 2, 3, 4, 0, KILN_F32);
	int64_t ia[10] = {2, 0, 0, 0, 2, 0, 2, 0, 0, 0};
	float fa[3] = {0, 1, 0};
	/* bias [2, 2, 3, 1]: dim 3 is 1, fine; make it [2, 3, 3, 1]: heads mismatch */
	assert_int_equal(rt_op_KlnAttention(frame(), "a", in, 4, &out, 1, ia, 10, fa, 3), 0);
	in[3] = T(q, 4, 2, 3, 2, 1, KILN_F32);
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 4, &out, 1, ia, 10, fa, 3), 0);
	/* heads do not fit */
	int64_t ia2[10] = {4, 0, 0, 0, 2, 0, 4, 0, 0, 0};
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 3, &out, 1, ia2, 10, fa, 3), 0);
	/* rank 2 Q */
	in[0] = T(q, 2, 6, 4, 0, 0, KILN_F32);
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 3, &out, 1, ia, 10, fa, 3), 0);
	/* missing attributes */
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 3, &out, 1, ia, 3, fa, 3), 0);
	/* unknown causal mode */
	in[0] = in[1];
	int64_t ia3[10] = {2, 0, 0, 0, 2, 0, 2, 0, 3, 0};
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 3, &out, 1, ia3, 10, fa, 3), 0);
	/* kv_num_heads that does not divide num_heads, or too many for K */
	int64_t ia4[10] = {1, 0, 0, 0, 2, 0, 1, 0, 0, 3};
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 3, &out, 1, ia4, 10, fa, 3), 0);
	int64_t ia5[10] = {1, 0, 0, 0, 8, 0, 1, 0, 0, 8};
	rt_t out8 = T(o, 3, 2, 3, 8, 0, KILN_F32);
	assert_int_not_equal(rt_op_KlnAttention(frame(), "a", in, 3, &out8, 1, ia5, 10, fa, 3), 0);
}

/* ---- GEMM, GELU ------------------------------------------------------------ */

static float gelu_ref(float x, int tanh_form)
{
	if (tanh_form) {
		float p = powf(x, 3.0f) * 0.044715f;
		return x * 0.5f * (1.0f + tanhf((x + p) * 0.797884583f));
	}
	return x * (erff(x / 1.41421354f) + 1.0f) * 0.5f;
}

static void test_gemm_kernel(void **state)
{
	(void)state;
	const int64_t M = 70, K = 24, N = 40;   /* M not a multiple of the row block */
	float *a = frandv((size_t)(M * K)), *w = frandv((size_t)(K * N)), *b = frandv((size_t)N);
	float *c = malloc((size_t)(M * N) * 4), *ref = malloc((size_t)(M * N) * 4);
	for (int act = 0; act < 3; act++) {
		for (int64_t i = 0; i < M; i++)
			for (int64_t j = 0; j < N; j++) {
				float acc = 0;
				for (int64_t k = 0; k < K; k++)
					acc += a[i * K + k] * w[k * N + j];
				acc += b[j];
				ref[i * N + j] = act ? gelu_ref(acc, act == 2) : acc;
			}
		rt_t in[3] = {T(a, 3, 2, 35, K, 0, KILN_F32), T(w, 2, K, N, 0, 0, KILN_F32),
		              T(b, 1, N, 0, 0, 0, KILN_F32)};
		rt_t out = T(c, 3, 2, 35, N, 0, KILN_F32);
		int64_t ia[1] = {act};
		assert_int_equal(rt_op_KlnGemm(frame(), "g", in, 3, &out, 1, ia, 1, NULL, 0), 0);
		assert_close(c, ref, (size_t)(M * N), 1e-5);
		/* GELU alone */
		if (act) {
			int64_t ga[1] = {act - 1};
			rt_t gi = T(ref, 1, M * N, 0, 0, 0, KILN_F32), go = T(c, 1, M * N, 0, 0, 0, KILN_F32);
			assert_int_equal(rt_op_KlnGelu(frame(), "gl", &gi, 1, &go, 1, ga, 1, NULL, 0), 0);
			for (int64_t i = 0; i < M * N; i++)
				ref[i] = gelu_ref(ref[i], act == 2);
			assert_close(c, ref, (size_t)(M * N), 1e-5);
		}
	}
	/* inner dims disagree */
	rt_t in[2] = {T(a, 2, M, K, 0, 0, KILN_F32), T(w, 2, K + 1, N, 0, 0, KILN_F32)};
	rt_t out = T(c, 2, M, N, 0, 0, KILN_F32);
	int64_t ia[1] = {0};
	assert_int_not_equal(rt_op_KlnGemm(frame(), "g", in, 2, &out, 1, ia, 1, NULL, 0), 0);
	free(a); free(w); free(b); free(c); free(ref);
}

/* ---- layer norms ----------------------------------------------------------- */

static void ln_ref(const float *s, const float *g, const float *b, int64_t rows, int64_t n,
                   float eps, float *y)
{
	/* as the decomposed graph: mean, centered, mean of squares, sqrt, div */
	for (int64_t r = 0; r < rows; r++) {
		const float *x = s + r * n;
		double m = 0, v = 0;
		for (int64_t k = 0; k < n; k++)
			m += x[k];
		m /= (double)n;
		for (int64_t k = 0; k < n; k++)
			v += ((double)x[k] - m) * ((double)x[k] - m);
		v /= (double)n;
		for (int64_t k = 0; k < n; k++)
			y[r * n + k] = (float)(((double)x[k] - m) / sqrt(v + eps)) * g[k] + b[k];
	}
}

static void test_layernorm_kernels(void **state)
{
	(void)state;
	const int64_t R = 37, H = 48;
	float *x = frandv((size_t)(R * H)), *sk = frandv((size_t)(R * H)), *bias = frandv((size_t)H);
	float *g = frandv((size_t)H), *b = frandv((size_t)H);
	float *y = malloc((size_t)(R * H) * 4), *sum = malloc((size_t)(R * H) * 4);
	float *ref = malloc((size_t)(R * H) * 4), *rsum = malloc((size_t)(R * H) * 4);
	float eps = 1e-12f;
	rt_t in[5] = {T(x, 2, R, H, 0, 0, KILN_F32), T(g, 1, H, 0, 0, 0, KILN_F32),
	              T(b, 1, H, 0, 0, 0, KILN_F32)};
	rt_t out[2] = {T(y, 2, R, H, 0, 0, KILN_F32), T(sum, 2, R, H, 0, 0, KILN_F32)};
	assert_int_equal(rt_op_KlnLayerNorm(frame(), "ln", in, 3, out, 1, NULL, 0, &eps, 1), 0);
	ln_ref(x, g, b, R, H, eps, ref);
	assert_close(y, ref, (size_t)(R * H), 1e-5);
	/* skip + bias, with the sum output */
	rt_t sin[5] = {T(x, 2, R, H, 0, 0, KILN_F32), T(sk, 2, R, H, 0, 0, KILN_F32),
	               T(g, 1, H, 0, 0, 0, KILN_F32), T(b, 1, H, 0, 0, 0, KILN_F32),
	               T(bias, 1, H, 0, 0, 0, KILN_F32)};
	for (int64_t i = 0; i < R * H; i++)
		rsum[i] = x[i] + sk[i] + bias[i % H];
	ln_ref(rsum, g, b, R, H, eps, ref);
	assert_int_equal(rt_op_KlnSkipLayerNorm(frame(), "sln", sin, 5, out, 2, NULL, 0, &eps, 1), 0);
	assert_close(y, ref, (size_t)(R * H), 1e-5);
	assert_close(sum, rsum, (size_t)(R * H), 1e-6);
	/* without bias and sum output */
	for (int64_t i = 0; i < R * H; i++)
		rsum[i] = x[i] + sk[i];
	ln_ref(rsum, g, b, R, H, eps, ref);
	assert_int_equal(rt_op_KlnSkipLayerNorm(frame(), "sln", sin, 4, out, 1, NULL, 0, &eps, 1), 0);
	assert_close(y, ref, (size_t)(R * H), 1e-5);
	/* gamma of the wrong width */
	sin[2] = T(g, 1, H - 1, 0, 0, 0, KILN_F32);
	assert_int_not_equal(rt_op_KlnSkipLayerNorm(frame(), "sln", sin, 4, out, 1, NULL, 0, &eps, 1), 0);
	free(x); free(sk); free(bias); free(g); free(b); free(y); free(sum); free(ref); free(rsum);
}

/* KlnRMSNorm against x / sqrt(mean(x^2) + eps) * gamma in double (gamma
 * per column and broadcast from one element; a wrong gamma is an error), and
 * KlnGelu approximate 2 against x * sigmoid(1.702 x) (3 is an error). */
static void test_rmsnorm_quick_gelu_kernels(void **state)
{
	(void)state;
	const int64_t R = 23, H = 40;
	float *x = frandv((size_t)(R * H)), *g = frandv((size_t)H);
	float *y = malloc((size_t)(R * H) * 4), *ref = malloc((size_t)(R * H) * 4);
	float eps = 1e-6f;
	for (int g1 = 0; g1 < 2; g1++) {
		for (int64_t r = 0; r < R; r++) {
			double acc = 0;
			for (int64_t k = 0; k < H; k++)
				acc += (double)x[r * H + k] * x[r * H + k];
			double inv = 1.0 / sqrt(acc / (double)H + eps);
			for (int64_t k = 0; k < H; k++)
				ref[r * H + k] = (float)(x[r * H + k] * inv * g[g1 ? 0 : k]);
		}
		rt_t in[2] = {T(x, 2, R, H, 0, 0, KILN_F32), T(g, 1, g1 ? 1 : H, 0, 0, 0, KILN_F32)};
		rt_t out[1] = {T(y, 2, R, H, 0, 0, KILN_F32)};
		assert_int_equal(rt_op_KlnRMSNorm(frame(), "rms", in, 2, out, 1, NULL, 0, &eps, 1), 0);
		assert_close(y, ref, (size_t)(R * H), 1e-5);
	}
	rt_t bad[2] = {T(x, 2, R, H, 0, 0, KILN_F32), T(g, 1, H - 1, 0, 0, 0, KILN_F32)};
	rt_t out[1] = {T(y, 2, R, H, 0, 0, KILN_F32)};
	assert_int_not_equal(rt_op_KlnRMSNorm(frame(), "rms", bad, 2, out, 1, NULL, 0, &eps, 1), 0);
	assert_int_not_equal(rt_op_KlnRMSNorm(frame(), "rms", bad, 2, out, 1, NULL, 0, &eps, 0), 0);
	for (int64_t i = 0; i < R * H; i++)
		ref[i] = (float)(x[i] / (1.0 + exp(-1.702 * x[i])));
	rt_t gin[1] = {T(x, 2, R, H, 0, 0, KILN_F32)};
	int64_t approx = 2;
	assert_int_equal(rt_op_KlnGelu(frame(), "qg", gin, 1, out, 1, &approx, 1, NULL, 0), 0);
	assert_close(y, ref, (size_t)(R * H), 1e-5);
	approx = 3;
	assert_int_not_equal(rt_op_KlnGelu(frame(), "qg", gin, 1, out, 1, &approx, 1, NULL, 0), 0);
	free(x); free(g); free(y); free(ref);
}

/* ---- embeddings ------------------------------------------------------------ */

static void test_embed_kernel(void **state)
{
	(void)state;
	const int64_t B = 2, S = 5, H = 8, V = 11, P = 7, TT = 2;
	float *word = frandv((size_t)(V * H)), *pos = frandv((size_t)(P * H)), *tt = frandv((size_t)(TT * H));
	float *g = frandv((size_t)H), *b = frandv((size_t)H);
	int64_t ids[10] = {1, 2, 3, 4, -1, 10, 9, 8, 0, 5};       /* -1: the last row */
	int32_t pids[5] = {0, 1, 2, 3, 4};                          /* rank 1, int32 */
	int64_t tids[10] = {0, 1, 0, 1, 0, 1, 1, 1, 0, 0};
	float y[2 * 5 * 8], sum[2 * 5 * 8], ref[2 * 5 * 8], rsum[2 * 5 * 8];
	for (int64_t i = 0; i < B * S; i++) {
		int64_t w = ids[i] < 0 ? ids[i] + V : ids[i];
		for (int64_t k = 0; k < H; k++)
			rsum[i * H + k] = word[w * H + k] + tt[tids[i] * H + k] + pos[pids[i % S] * H + k];
	}
	float eps = 1e-12f;
	ln_ref(rsum, g, b, B * S, H, eps, ref);
	rt_t in[8] = {T(ids, 2, B, S, 0, 0, KILN_I64), T(word, 2, V, H, 0, 0, KILN_F32),
	              T(g, 1, H, 0, 0, 0, KILN_F32), T(b, 1, H, 0, 0, 0, KILN_F32),
	              T(tids, 2, B, S, 0, 0, KILN_I64), T(tt, 2, TT, H, 0, 0, KILN_F32),
	              T(pids, 1, S, 0, 0, 0, KILN_I32), T(pos, 2, P, H, 0, 0, KILN_F32)};
	rt_t out[2] = {T(y, 3, B, S, H, 0, KILN_F32), T(sum, 3, B, S, H, 0, KILN_F32)};
	assert_int_equal(rt_op_KlnEmbedLayerNorm(frame(), "emb", in, 8, out, 2, NULL, 0, &eps, 1), 0);
	/* the gathers add in another order than the reference: allow rounding */
	assert_close(sum, rsum, (size_t)(B * S * H), 1e-6);
	assert_close(y, ref, (size_t)(B * S * H), 1e-5);
	/* an index out of range is an error naming it */
	kiln_frame *f = frame();
	ids[3] = 11;
	assert_int_not_equal(rt_op_KlnEmbedLayerNorm(f, "emb", in, 8, out, 2, NULL, 0, &eps, 1), 0);
	ids[3] = 4;
	tids[0] = -3;
	assert_int_not_equal(rt_op_KlnEmbedLayerNorm(f, "emb", in, 8, out, 2, NULL, 0, &eps, 1), 0);
	tids[0] = 0;
	/* position ids that do not broadcast */
	in[6] = T(pids, 1, 4, 0, 0, 0, KILN_I32);
	assert_int_not_equal(rt_op_KlnEmbedLayerNorm(f, "emb", in, 8, out, 2, NULL, 0, &eps, 1), 0);
	free(word); free(pos); free(tt); free(g); free(b);
}

/* ---- end to end: each tests/passes case, as is vs after its passes --------- */

static char tmpdir[256];

static Graph *load_case(const char *text, const char *path)
{
	Diag d = {0};
	Graph *g = ir_parse(text, path, &d);
	if (!g || ir_infer_shapes(g, &d))
		fail_msg("%s: %s", path, d.msg);
	return g;
}

/* Compiles; 1 if the backend does not support an op (skip), 0 ok. */
static int compile_case(Graph *g, const char *out, const char *path)
{
	BeOptions o = {.out = out, .emit = BE_EMIT_SO, .opt_level = 2};
	BeStats st;
	Diag d = {0};
	if (be_compile(g, &o, &st, &d)) {
		if (strstr(d.msg, "not supported by the backend"))
			return 1;
		fail_msg("%s: compile: %s", path, d.msg);
	}
	return 0;
}

static int64_t sym_value(const char *name)
{
	if (!strcmp(name, "batch"))
		return 2;
	if (!strcmp(name, "seq"))
		return 3;
	if (!strcmp(name, "regions"))
		return 5;
	return 2;
}

/* Runs model m on inputs made from g's input types (seeded); outputs into
 * malloc'd buffers. */
static void run_model(kiln_model *m, const Graph *g, uint64_t seed, float **outs, size_t *nouts)
{
	int64_t symv[64];
	for (int s = 0; s < ir_nsyms(g) && s < 64; s++)
		symv[s] = sym_value(ir_sym_name(g, s));
	kiln_tensor in[8];
	void *bufs[8];
	int nin = g->ninputs;
	assert_true(nin <= 8);
	rng = seed;
	for (int i = 0; i < nin; i++) {
		const Value *v = IR_VAL(g, g->inputs[i]);
		memset(&in[i], 0, sizeof in[i]);
		in[i].dtype = (kiln_dtype)v->dtype;
		in[i].rank = v->rank;
		size_t n = 1;
		for (int k = 0; k < v->rank; k++) {
			in[i].shape[k] = ir_dim_eval(g, v->dims[k], symv);
			n *= (size_t)in[i].shape[k];
		}
		size_t es = ir_dtype_size(v->dtype);
		bufs[i] = malloc(n * es + 1);
		for (size_t k = 0; k < n; k++) {
			if (v->dtype == DT_F32)
				((float *)bufs[i])[k] = frand() * 2;
			else if (v->dtype == DT_I64)
				((int64_t *)bufs[i])[k] = (int64_t)((rng >> 20) % 2), frand();
			else if (v->dtype == DT_BOOL)   /* 0/1: some rows all false */
				((unsigned char *)bufs[i])[k] = (unsigned char)((rng >> 20) % 2), frand();
			else
				fail_msg("input dtype %s not handled", ir_dtype_name(v->dtype));
		}
		in[i].data = bufs[i];
		in[i].nbytes = n * es;
	}
	kiln_context *c = kiln_context_create(m, 2);
	assert_non_null(c);
	kiln_tensor out[8];
	memset(out, 0, sizeof out);
	int nout = kiln_model_num_outputs(m);
	assert_true(nout <= 8);
	if (kiln_run(c, in, nin, out, nout))
		fail_msg("run: %s", kiln_last_error(c));
	for (int i = 0; i < nout; i++) {
		size_t n = 1;
		for (int k = 0; k < out[i].rank; k++)
			n *= (size_t)out[i].shape[k];
		outs[i] = malloc(n * sizeof(float) + 1);
		nouts[i] = out[i].dtype == KILN_F32 ? n : 0;   /* compare f32 outputs */
		if (nouts[i])
			memcpy(outs[i], out[i].data, n * sizeof(float));
	}
	kiln_context_free(c);
	for (int i = 0; i < nin; i++)
		free(bufs[i]);
}

/* Sampled: whether case i is left out (odd, and every op of a and b
 * already in a case compiled); marks the ops of a case kept */
static bool e2e_sampled_out(int i, const Graph *a, const Graph *b)
{
	static bool seen[OP_COUNT];
	if (!ref_sampled())
		return false;
	const Graph *g[2] = { a, b };
	bool fresh = false;
	for (int k = 0; k < 2; k++)
		for (int32_t n = 0; n < g[k]->nnodes; n++)
			fresh |= !IR_NODE(g[k], n)->dead && !seen[IR_NODE(g[k], n)->op];
	if (i % 2 && !fresh)
		return true;
	for (int k = 0; k < 2; k++)
		for (int32_t n = 0; n < g[k]->nnodes; n++)
			if (!IR_NODE(g[k], n)->dead)
				seen[IR_NODE(g[k], n)->op] = true;
	return false;
}

/* 0 compared, 1 skipped (the backend cannot compile it), 2 sampled out */
static int e2e_case(const char *path, int i)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	static char text[65536];
	size_t n = fread(text, 1, sizeof text - 1, fp);
	fclose(fp);
	text[n] = 0;
	char passes[512] = "";
	const char *r = strstr(text, "// RUN:");
	if (r)
		sscanf(r + 7, " %511s", passes);
	/* "// TOL: X": a pass that changes precision (fpmath-bf16) is held to
	 * X, relative above 1 and absolute below, instead of 1e-5 */
	double tol = 1e-5;
	const char *t = strstr(text, "// TOL:");
	if (t && sscanf(t + 7, " %lf", &tol) != 1)
		fail_msg("%s: '// TOL:' without a number", path);
	Graph *a = load_case(text, path), *b = load_case(text, path);
	PassOptions o = {.opt_level = 2, .passes = passes[0] ? passes : NULL, .verify_each = true};
	Diag d = {0};
	if (pass_run_pipeline(b, &o, NULL, &d))
		fail_msg("%s: %s", path, d.msg);
	char pa[512], pb[512];
	snprintf(pa, sizeof pa, "%s/a.so", tmpdir);
	snprintf(pb, sizeof pb, "%s/b.so", tmpdir);
	if (e2e_sampled_out(i, a, b)) {
		ir_graph_free(a);
		ir_graph_free(b);
		return 2;
	}
	int skip = compile_case(a, pa, path) || compile_case(b, pb, path);
	int ret = 1;
	if (!skip) {
		kiln_model *ma = kiln_model_load(pa), *mb = kiln_model_load(pb);
		assert_non_null(ma);
		assert_non_null(mb);
		float *oa[8], *ob[8];
		size_t na[8], nb[8];
		int nout = kiln_model_num_outputs(ma);
		for (uint64_t seed = 1; seed <= 3; seed++) {
			run_model(ma, a, seed * 7919, oa, na);
			run_model(mb, a, seed * 7919, ob, nb);
			for (int i = 0; i < nout; i++) {
				assert_int_equal(na[i], nb[i]);
				assert_close(ob[i], oa[i], na[i], tol);
				free(oa[i]);
				free(ob[i]);
			}
		}
		kiln_model_free(ma);
		kiln_model_free(mb);
		ret = 0;
	}
	ir_graph_free(a);
	ir_graph_free(b);
	return ret;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void test_cases_end_to_end(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kiln-test-passes-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	const char *dir = KILN_SOURCE_DIR "/tests/passes";
	DIR *dp = opendir(dir);
	assert_non_null(dp);
	char *names[256];
	int n = 0, ran = 0, skipped = 0, sampled = 0;
	struct dirent *e;
	while ((e = readdir(dp)) && n < 256) {
		size_t len = strlen(e->d_name);
		if (len > 3 && !strcmp(e->d_name + len - 3, ".ir"))
			names[n++] = strdup(e->d_name);
	}
	closedir(dp);
	qsort(names, (size_t)n, sizeof names[0], cmp_str);
	for (int i = 0; i < n; i++) {
		char path[1024];
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		int s = e2e_case(path, i);
		printf("%s %s\n", s == 2 ? "(sampled out)" : s ? "skip" : "ok  ", names[i]);
		skipped += s == 1;
		sampled += s == 2;
		ran += !s;
		free(names[i]);
	}
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		printf("could not remove %s\n", tmpdir);
	printf("%d cases compared, %d skipped (fused ops not lowered by the backend), %d sampled out\n",
	       ran, skipped, sampled);
	if (!ran)
		skip();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attention_kernel),
		cmocka_unit_test(test_attention_kernel_errors),
		cmocka_unit_test(test_gemm_kernel),
		cmocka_unit_test(test_layernorm_kernels),
		cmocka_unit_test(test_rmsnorm_quick_gelu_kernels),
		cmocka_unit_test(test_embed_kernel),
		cmocka_unit_test(test_cases_end_to_end),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
