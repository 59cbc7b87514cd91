/* test_rt_fused.c: KlnAttention's vector paths (AVX2 + FMA, and AVX-512
 * where the CPU has it; rt_fused_simd_use) against its scalar path and a
 * double reference, whole attention (scores, softmax, P V), on random
 * configurations:
 *
 *   batch 1..3, heads 1..6 with kv_num_heads dividing them (GQA; Q head h
 *   reading K/V head h / (H / Hkv), or h % Hkv with kv_tiled), Sq and Sk
 *   1..40 (and some up to 130), head sizes D and Dv 1..130 (non-multiples
 *   of 8 included), Q/K/V with column offsets and spare columns, layouts 0
 *   and 1 (time-major), causal 0/1/2 with finite and -inf fills, bias of
 *   every broadcast shape [B|1, H|1, Sq|1, Sk|1] of rank 1..4, key-padding
 *   masks (i64, f32 with fractions, bool; finite and -inf filters, fully
 *   masked batch entries), nan_guard; and the packed path (cu_seqlens, with
 *   empty sequences);
 *   the shapes models run, S = 1..130 by D = 32, 64, 80 and 1..12 heads
 *   (test_attention_shapes), each with a mask, causal, bias or GQA variant;
 *   wider ones, S 1..300 by D 8..128 and 1..16 heads, self and cross,
 *   masked, biased, causal and packed, and 520 packed sequences
 *   (test_attention_wide); mask_replace (a Where's finite fill replacing a
 *   masked key's score, fully masked rows uniform) on random configurations
 *   and the models' shapes (test_attention_replace,
 *   test_attention_replace_uniform).
 * fpmath 1 (--fpmath=bf16: Q, K, V and P rounded to bf16 for the two
 * products) on every GEMM kernel the CPU runs (AVX512_BF16's own attention
 * kernel; the fp32 fallback through avx2 and c) on the same kinds of
 * configurations, against the double reference within bf16_bound
 * (test_attention_bf16), and changing BERT's outputs (test_attention_bf16_ran).
 * On x86-64 without AVX-512 the vector path is the fused AVX2 kernel
 * (packed K/V, 6x16 micro-kernel, 1/sum applied to the output).
 *
 * Also the Softmax / LogSoftmax ops (kernels_reduce.c, AVX2 rows where the
 * CPU has them) against double (sm_case), and vmath.h's vm_exp8_nonpos
 * (the fused path's exp) against vm_exp8, bit for bit.
 *
 * Every output is surrounded by canaries (rt_ref.h's ref_guarded: NaNs of
 * a pattern no kernel writes) that must survive.  Tolerances (V in [-1, 1], so outputs
 * are at most 1 in size): a vector path against the scalar one within
 * 2e-6 + 8 ulp(m) and against the reference within 5e-5 + 8 ulp(m), m the
 * largest |score| of the row that still counts (within 100 of the max):
 * a rounding of such a score moves the probabilities by ~ulp(m); NaN
 * exactly where the scalar path (and the reference) has NaN.
 *
 * Sampled (rt_ref.h's ref_sampled: a sanitizer build), the random loops
 * run the first quarter of their configurations (600 -> 150 random, 150 ->
 * 38 packed, 300 -> 75 replace, in bf16 200 -> 50 and 60 -> 15) and the
 * wide ones 10 of 30 (each of its five kinds twice); the models' shapes,
 * BERT's, the tiled and uniform cases and the 520 packed sequences all
 * run, on every path and GEMM kernel. */
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

#include "gemm.h"
#include "rt_internal.h"
#include "rt_ref.h"
#include "rt_test.h"
#include "vmath.h"

RT_KERNEL(KlnAttention);
RT_KERNEL(Softmax);
RT_KERNEL(LogSoftmax);

typedef struct Cfg {
	int64_t B, H, Hkv, Sq, Sk, D, Dv;
	bool tiled;                          /* kv_tiled: Q head h reads K/V head h % Hkv */
	int64_t qo, ko, vo, ldq, ldk, ldv;    /* column offsets and row widths */
	int layout;                          /* 0 [B, S, *], 1 [S, B, *] */
	int causal;
	float cfill, scale, filter;
	int bias_rank;                       /* 0 none, 1..4 */
	int64_t bdims[4];                    /* over [B, H, Sq, Sk], 1 where broadcast */
	int mask;                            /* 0 none, 1 i64, 2 f32 (0, 0.5, 1), 3 bool */
	bool replace;                        /* mask_replace: a masked key's score is filter, last */
	bool guard;
	int64_t nseq;                        /* packed: sequences (0: not packed) */
	int32_t cu[600];
} Cfg;

typedef struct Data {
	float *q, *k, *v, *bias;
	void *mask;
	int64_t nq, nk, nv, nb, nout;
} Data;

static float mask_val(const Cfg *c, const Data *d, int64_t b, int64_t k)
{
	int64_t i = b * c->Sk + k;
	return c->mask == 1 ? (float)((int64_t *)d->mask)[i] :
	       c->mask == 2 ? ((float *)d->mask)[i] : (float)((uint8_t *)d->mask)[i];
}

/* offsets of Q row s / K, V row s of batch b (sequence rows for packed) */
static int64_t qrow(const Cfg *c, int64_t b, int64_t s)
{
	return c->layout ? (s * c->B + b) * c->ldq : (b * c->Sq + s) * c->ldq;
}
static int64_t krow(const Cfg *c, int64_t b, int64_t s, int64_t ld)
{
	return c->layout ? (s * c->B + b) * ld : (b * c->Sk + s) * ld;
}
static int64_t orow(const Cfg *c, int64_t b, int64_t s)
{
	int64_t ho = c->H * c->Dv;
	return c->layout ? (s * c->B + b) * ho : (b * c->Sq + s) * ho;
}

/* The reference, in double from the float inputs: scores as the kernel
 * forms them (scale * QK^T rounded to float; the fills, bias, pad), softmax
 * and P V in double.  mag[] gets, per output row and head, the largest
 * |score| that counts (within 100 of the row's max). */
static void reference(const Cfg *c, const Data *d, double *ref, double *mag, double *qk)
{
	int64_t nb = c->nseq ? c->nseq : c->B, rep = c->H / c->Hkv;
#define KVH(h) (c->tiled ? (h) % c->Hkv : (h) / rep)   /* the K/V head of Q head h */
	double *x = ref_alloc((size_t)(c->Sk + 1) * sizeof *x);
	for (int64_t b = 0; b < nb; b++) {
		int64_t r0 = c->nseq ? c->cu[b] : 0, bb = c->nseq ? 0 : b;
		int64_t Sq = c->nseq ? c->cu[b + 1] - c->cu[b] : c->Sq, Sk = c->nseq ? Sq : c->Sk;
		for (int64_t h = 0; h < c->H; h++)
			for (int64_t i = 0; i < Sq; i++) {
				const float *qr = d->q + qrow(c, bb, r0 + i) + c->qo + h * c->D;
				double mx = -INFINITY, qkmax = 0;
				bool nan = false;
				for (int64_t j = 0; j < Sk; j++) {
					const float *kr = d->k + krow(c, bb, r0 + j, c->ldk) + c->ko + KVH(h) * c->D;
					double dot = 0, adot = 0;
					for (int64_t e = 0; e < c->D; e++) {
						dot += (double)qr[e] * kr[e];
						adot += fabs((double)qr[e] * kr[e]);
					}
					qkmax = adot > qkmax ? adot : qkmax;
					float s = (float)dot * c->scale;
					bool past = c->causal && j > i + Sk - Sq;
					if (past && c->causal == 2)
						s = c->cfill;
					if (c->bias_rank) {
						int64_t idx[4] = {b, h, i, j}, o = 0;
						for (int t = 0; t < 4; t++)
							o = o * c->bdims[t] + (c->bdims[t] == 1 ? 0 : idx[t]);
						s += d->bias[o];
					}
					float mv = c->mask ? mask_val(c, d, b, j) : 1.0f;
					if (mv != 1.0f && !c->replace)
						s += (float)(1.0 - mv) * c->filter;
					if (past && c->causal == 1)
						s += c->cfill;
					if (mv != 1.0f && c->replace)
						s = c->filter;
					x[j] = s;
					if (isnan(s))
						nan = true;
					else if (s > mx)
						mx = s;
				}
				double sum = 0, m = 0;
				for (int64_t j = 0; j < Sk; j++) {
					sum += exp(x[j] - mx);
					if (x[j] - mx > -100 && fabs(x[j]) > m)
						m = fabs(x[j]);
				}
				int64_t oi = orow(c, bb, r0 + i) + h * c->Dv;
				mag[oi / c->Dv] = m;
				qk[oi / c->Dv] = fabs((double)c->scale) * qkmax;
				for (int64_t e = 0; e < c->Dv; e++) {
					double acc = 0;
					bool bad = nan || isinf(mx) || Sk == 0;
					for (int64_t j = 0; j < Sk && !bad; j++) {
						double p = exp(x[j] - mx) / sum;
						acc += p * d->v[krow(c, bb, r0 + j, c->ldv) + c->vo + KVH(h) * c->Dv + e];
					}
					ref[oi + e] = Sk == 0 ? 0.0 : bad ? (c->guard ? 0.0 : NAN) : acc;
				}
			}
	}
	free(x);
#undef KVH
}

/* fpmath of the runs (1: bf16 products, test_attention_bf16) */
static int bf16_on;

/* one run on a path into a fresh output between canaries (ref_guarded;
 * the caller frees it with ref_guarded_free) */
static float *run(const Cfg *c, const Data *d, int mode)
{
	float *o = ref_guarded(d->nout);
	int bi = c->layout, si = 1 - c->layout;
	int64_t qd[2], kd[2];
	qd[bi] = c->nseq ? 1 : c->B, qd[si] = c->nseq ? c->cu[c->nseq] : c->Sq;
	kd[bi] = qd[bi], kd[si] = c->nseq ? qd[si] : c->Sk;
	rt_t in[6] = {T(d->q, 3, qd[0], qd[1], c->ldq, 0, KILN_F32),
	              T(d->k, 3, kd[0], kd[1], c->ldk, 0, KILN_F32),
	              T(d->v, 3, kd[0], kd[1], c->ldv, 0, KILN_F32),
	              T(NULL, 0, 0, 0, 0, 0, 0), T(NULL, 0, 0, 0, 0, 0, 0), T(NULL, 0, 0, 0, 0, 0, 0)};
	if (c->bias_rank) {
		const int64_t *bd = c->bdims + 4 - c->bias_rank;
		in[3] = T(d->bias, c->bias_rank, bd[0], c->bias_rank > 1 ? bd[1] : 0,
		          c->bias_rank > 2 ? bd[2] : 0, c->bias_rank > 3 ? bd[3] : 0, KILN_F32);
	}
	if (c->mask)
		in[4] = T(d->mask, 2, c->B, c->Sk, 0, 0,
		          c->mask == 1 ? KILN_I64 : c->mask == 2 ? KILN_F32 : KILN_BOOL);
	if (c->nseq)
		in[5] = T((void *)c->cu, 1, c->nseq + 1, 0, 0, 0, KILN_I32);
	rt_t out = T(o, 3, qd[0], qd[1], c->H * c->Dv, 0, KILN_F32);
	int64_t ia[RT_NIA_KlnAttention] = {0};
	ia[RT_IA_KlnAttention_head_size] = c->D;
	ia[RT_IA_KlnAttention_k_offset] = c->ko;
	ia[RT_IA_KlnAttention_layout] = c->layout;
	ia[RT_IA_KlnAttention_nan_guard] = c->guard;
	ia[RT_IA_KlnAttention_num_heads] = c->H;
	ia[RT_IA_KlnAttention_q_offset] = c->qo;
	ia[RT_IA_KlnAttention_v_head_size] = c->Dv;
	ia[RT_IA_KlnAttention_v_offset] = c->vo;
	ia[RT_IA_KlnAttention_causal] = c->causal;
	ia[RT_IA_KlnAttention_kv_num_heads] = c->Hkv == c->H ? 0 : c->Hkv;
	ia[RT_IA_KlnAttention_kv_tiled] = c->tiled;
	ia[RT_IA_KlnAttention_mask_replace] = c->replace;
	ia[RT_IA_KlnAttention_fpmath] = bf16_on;
	float fa[RT_NFA_KlnAttention] = {0};
	fa[RT_FA_KlnAttention_mask_filter] = c->filter;
	fa[RT_FA_KlnAttention_scale] = c->scale;
	fa[RT_FA_KlnAttention_causal_fill] = c->cfill;
	assert_int_equal(rt_fused_simd_use(mode), 0);
	int rc = rt_op_KlnAttention(frame(), "att", in, 6, &out, 1, ia, RT_NIA_KlnAttention, fa,
	                            RT_NFA_KlnAttention);
	assert_int_equal(rt_fused_simd_use(-1), 0);
	assert_int_equal(rc, 0);
	int64_t at;
	if (ref_guard_hit(o, d->nout, &at))
		fail_msg("path %d: B %lld H %lld Sq %lld Sk %lld D %lld Dv %lld: the canary at %lld "
		         "(of %lld outputs) was overwritten", mode, (long long)c->B, (long long)c->H,
		         (long long)c->Sq, (long long)c->Sk, (long long)c->D, (long long)c->Dv,
		         (long long)at, (long long)d->nout);
	return o;
}

static float *frand_arr(int64_t n, float lo, float hi)
{
	float *p = ref_alloc((size_t)n * sizeof *p);
	ref_fill(p, n, lo, hi);
	return p;
}

/* 8 ulps of m (at least of 1) */
static double ulp8(double m)
{
	int e;
	frexp(m > 1 ? m : 1, &e);
	return 8 * ldexp(1.0, e - 24);
}

static int64_t checked;    /* outputs compared, for the summary */
static double bf16_worst;  /* bf16 runs: the largest |out - ref| / its tolerance */

/* How far bf16 products (fpmath 1) may move an output from the exact
 * double reference, V in [-1, 1]; qk = |scale| max_k sum_e |q_e k_e| over
 * the row's keys.  Rounding to bf16 (nearest even, 8 significant bits)
 * has a relative error of at most u = 2^-9: Q and K move each score by at
 * most delta = (2u + u^2) qk; then each probability p_j e^(d_j) / sum_k
 * p_k e^(d_k) with |d| <= delta is within a factor e^(2 delta) of p_j, so
 * O moves by at most expm1(2 delta) (sum of p |v| <= 1); P and V rounded
 * for the second product add u (1 + u) + u.  The f32 parts keep the fp32
 * path's tolerance besides. */
static double bf16_bound(double qk)
{
	const double u = 1.0 / 512;
	return expm1(2 * (2 * u + u * u) * qk) + u * (1 + u) + u;
}

static void check(const Cfg *c, int mode)
{
	Data d = {0};
	int64_t nrows = c->nseq ? c->cu[c->nseq] : c->B * c->Sq;
	int64_t krows = c->nseq ? nrows : c->B * c->Sk;
	d.nq = nrows * c->ldq, d.nk = krows * c->ldk, d.nv = krows * c->ldv;
	d.nout = nrows * c->H * c->Dv;
	d.q = frand_arr(d.nq, -1, 1);
	d.k = frand_arr(d.nk, -1, 1);
	d.v = frand_arr(d.nv, -1, 1);
	if (c->bias_rank) {
		d.nb = c->bdims[0] * c->bdims[1] * c->bdims[2] * c->bdims[3];
		d.bias = frand_arr(d.nb, -3, 3);
	}
	if (c->mask) {
		size_t es = c->mask == 1 ? 8 : c->mask == 2 ? 4 : 1;
		d.mask = ref_alloc((size_t)(c->B * c->Sk) * es);
		for (int64_t b = 0; b < c->B; b++)
			for (int64_t k = 0; k < c->Sk; k++) {
				/* batch 1 fully masked, the others keep key 0 */
				int h = ref_irand(0, 4);
				float mv = b == 1 ? 0.0f : k == 0 || h >= 2 ? 1.0f : h == 1 && c->mask == 2 ? 0.5f : 0.0f;
				int64_t i = b * c->Sk + k;
				if (c->mask == 1)
					((int64_t *)d.mask)[i] = (int64_t)mv;
				else if (c->mask == 2)
					((float *)d.mask)[i] = mv;
				else
					((uint8_t *)d.mask)[i] = (uint8_t)mv;
			}
	}
	double *ref = ref_alloc((size_t)d.nout * sizeof *ref);
	double *mag = ref_alloc((size_t)(d.nout / (c->Dv ? c->Dv : 1) + 1) * sizeof *mag);
	double *qk = ref_alloc((size_t)(d.nout / (c->Dv ? c->Dv : 1) + 1) * sizeof *qk);
	reference(c, &d, ref, mag, qk);
	float *sc = run(c, &d, 0), *vp = run(c, &d, mode);
	for (int64_t i = 0; i < d.nout; i++) {
		double tol = ulp8(mag[i / c->Dv]), tb = bf16_on ? bf16_bound(qk[i / c->Dv]) : 0;
		bool ok = isnan(sc[i]) ? isnan(vp[i]) && isnan(ref[i]) :
		          !isnan(vp[i]) && fabs((double)vp[i] - sc[i]) <= 2e-6 + tol + 2 * tb &&
		          fabs((double)vp[i] - ref[i]) <= 5e-5 + tol + tb &&
		          fabs((double)sc[i] - ref[i]) <= 5e-5 + tol + tb;
		if (ok && tb > 0 && !isnan(vp[i])) {
			double r = fabs((double)vp[i] - ref[i]) / (5e-5 + tol + tb);
			bf16_worst = r > bf16_worst ? r : bf16_worst;
		}
		if (!ok)
			fail_msg("path %d%s: B %lld H %lld/%lld Sq %lld Sk %lld D %lld Dv %lld layout %d "
			         "tiled %d causal %d (%g) bias rank %d mask %d (%g%s) guard %d packed %lld: "
			         "output %lld is %.9g, scalar %.9g, reference %.12g", mode,
			         bf16_on ? " bf16" : "", (long long)c->B,
			         (long long)c->H, (long long)c->Hkv, (long long)c->Sq, (long long)c->Sk,
			         (long long)c->D, (long long)c->Dv, c->layout, c->tiled, c->causal, c->cfill,
			         c->bias_rank, c->mask, c->filter, c->replace ? ", replace" : "", c->guard,
			         (long long)c->nseq, (long long)i,
			         vp[i], sc[i], ref[i]);
	}
	checked += d.nout;
	ref_guarded_free(sc); ref_guarded_free(vp);
	free(d.q); free(d.k); free(d.v); free(d.bias); free(d.mask); free(ref); free(mag); free(qk);
}

static int pick(const int *v, int n)
{
	return v[ref_irand(0, n - 1)];
}

/* a random configuration; packed when `packed` */
static Cfg random_cfg(bool packed, bool big)
{
	static const int dims[] = {1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 128, 130};
	Cfg c = {0};
	c.Hkv = ref_irand(1, 3);
	c.H = c.Hkv * ref_irand(1, 2);
	c.tiled = c.H > c.Hkv && ref_irand(0, 1);
	c.D = pick(dims, 18);
	c.Dv = ref_irand(0, 2) ? c.D : pick(dims, 18);
	c.B = ref_irand(1, 3);
	c.Sq = big ? ref_irand(60, 130) : ref_irand(1, 40);
	c.Sk = ref_irand(0, 2) ? c.Sq : big ? ref_irand(60, 130) : ref_irand(1, 40);
	c.qo = ref_irand(0, 3), c.ko = ref_irand(0, 3), c.vo = ref_irand(0, 3);
	c.ldq = c.qo + c.H * c.D + ref_irand(0, 2);
	c.ldk = c.ko + c.Hkv * c.D + ref_irand(0, 2);
	c.ldv = c.vo + c.Hkv * c.Dv + ref_irand(0, 2);
	c.scale = 1.0f / sqrtf((float)c.D) * ref_frand(0.5f, 4.0f);
	c.guard = ref_irand(0, 1);
	if (packed) {
		c.nseq = ref_irand(1, 6);
		c.cu[0] = 0;
		for (int64_t b = 0; b < c.nseq; b++)
			c.cu[b + 1] = c.cu[b] + (ref_irand(0, 5) ? ref_irand(1, big ? 130 : 40) : 0);
		c.B = 1;
		c.Sq = c.Sk = 0;
		for (int64_t b = 0; b < c.nseq; b++)
			if (c.cu[b + 1] - c.cu[b] > c.Sq)
				c.Sq = c.Sk = c.cu[b + 1] - c.cu[b];
		c.causal = 0;
		return c;
	}
	c.layout = ref_irand(0, 3) == 0;
	c.causal = ref_irand(0, 2);
	static const float fills[] = {-INFINITY, -3.4028234663852886e+38f, -1e4f, -30.0f};
	c.cfill = fills[ref_irand(0, 3)];
	if (c.causal == 1 && c.cfill < -1e30f)
		c.cfill = -1e4f;     /* an additive -FLT_MAX would overflow with the bias */
	c.bias_rank = ref_irand(0, 4);
	int64_t full[4] = {c.B, c.H, c.Sq, c.Sk};
	for (int t = 0; t < 4; t++)
		c.bdims[t] = t < 4 - c.bias_rank ? 1 : ref_irand(0, 1) ? full[t] : 1;
	c.mask = ref_irand(0, 3);
	c.filter = ref_irand(0, 1) ? -INFINITY : -10000.0f;
	return c;
}

static void vector_paths(void (*body)(int mode))
{
	int n = 0;
	if (vm_have_avx2()) {
		body(2);
		n++;
	}
	if (vm_have_avx512()) {
		body(1);
		n++;
	}
	if (!n)
		skip();
}

static void random_body(int mode)
{
	ref_rng = 0x5eed0000ull + (uint64_t)mode;
	for (int t = 0; t < ref_count(600, 4); t++) {
		Cfg c = random_cfg(false, t % 10 == 0);
		check(&c, mode);
	}
}

static void packed_body(int mode)
{
	ref_rng = 0x9acc0000ull + (uint64_t)mode;
	for (int t = 0; t < ref_count(150, 4); t++) {
		Cfg c = random_cfg(true, t % 10 == 0);
		check(&c, mode);
	}
}

/* BERT's own shape: Sq = Sk = 128, D = 64, 12 heads packed in one QKV
 * tensor, a padding mask */
static void bert_body(int mode)
{
	ref_rng = 0xbe470000ull;
	Cfg c = {.B = 2, .H = 12, .Hkv = 12, .Sq = 128, .Sk = 128, .D = 64, .Dv = 64,
	         .qo = 0, .ko = 768, .vo = 1536, .ldq = 2304, .ldk = 2304, .ldv = 2304,
	         .scale = 0.125f, .filter = -10000.0f, .mask = 1};
	check(&c, mode);
	c.mask = 0, c.causal = 2, c.cfill = -3.4028234663852886e+38f, c.Sq = 1;   /* decoding */
	check(&c, mode);
}

/* The shapes models run (S = 1, 5, 20, 36, 128, 130 for queries and
 * keys; D = 32, 64, 80; 1, 5 and 12 heads): for each, Q/K/V packed in one
 * tensor as the fused graphs pass them, with a variant cycling through a
 * key-padding mask, causal 1 and 2, a [B, 1, Sq, Sk] or [1, H, 1, Sk] bias,
 * K/V tiled over fewer heads and nan_guard (the fused path's strips of 4-6
 * rows, its 16-key panels and its 16-column output tiles all end ragged
 * somewhere here) */
static void shapes_body(int mode)
{
	static const int64_t S[] = {1, 5, 20, 36, 128, 130}, Dh[] = {32, 64, 80}, Hs[] = {1, 5, 12};
	ref_rng = 0x54a9e000ull + (uint64_t)mode;
	int v = 0;
	for (int qi = 0; qi < 6; qi++)
		for (int ki = 0; ki < 6; ki++)
			for (int di = 0; di < 3; di++, v++) {
				if (ki != qi && (S[qi] == 128 || S[ki] == 128) && di != 1)
					continue;    /* the big cross shapes at D = 64 only */
				int64_t H = Hs[v % 3], D = Dh[di];
				Cfg c = {.B = 1 + v % 2, .H = H, .Hkv = H, .Sq = S[qi], .Sk = S[ki], .D = D,
				         .Dv = D, .scale = 1.0f / sqrtf((float)D), .filter = -10000.0f};
				c.ldq = c.ldk = c.ldv = 3 * H * D;
				c.qo = 0, c.ko = H * D, c.vo = 2 * H * D;
				switch (v % 6) {
				case 0: c.mask = 1; break;
				case 1: c.causal = 2, c.cfill = -INFINITY, c.guard = true; break;
				case 2: c.causal = 1, c.cfill = -1e4f, c.mask = 3, c.filter = -INFINITY; break;
				case 3:
					c.bias_rank = 4;
					c.bdims[0] = c.B, c.bdims[1] = 1, c.bdims[2] = c.Sq, c.bdims[3] = c.Sk;
					break;
				case 4:
					c.bias_rank = 3;
					c.bdims[0] = 1, c.bdims[1] = H, c.bdims[2] = 1, c.bdims[3] = c.Sk;
					c.mask = 2;
					break;
				default:
					if (H == 12)
						c.Hkv = 4, c.tiled = v % 4 == 1;
					c.guard = true, c.mask = 1, c.filter = -INFINITY;
					break;
				}
				check(&c, mode);
			}
}

/* K/V tiled along the heads (kv_tiled): 6 heads over 3 K/V heads and 4
 * over 2, where h % Hkv and h / (H / Hkv) differ, plain and packed */
static void tiled_body(int mode)
{
	ref_rng = 0x711e0000ull + (uint64_t)mode;
	Cfg c = {.B = 2, .H = 6, .Hkv = 3, .tiled = true, .Sq = 9, .Sk = 13, .D = 8, .Dv = 5,
	         .qo = 1, .ko = 2, .vo = 0, .ldq = 49, .ldk = 26, .ldv = 16,
	         .scale = 0.3f, .filter = -INFINITY, .mask = 3, .causal = 1, .cfill = -1e4f};
	check(&c, mode);
	Cfg p = {.B = 1, .H = 4, .Hkv = 2, .tiled = true, .Sq = 11, .Sk = 11, .D = 16, .Dv = 16,
	         .ldq = 64, .ldk = 32, .ldv = 32, .scale = 0.25f, .nseq = 3, .cu = {0, 4, 4, 11}};
	check(&p, mode);
}

/* Wider than random_body: Sq and Sk 1..300 (odd ones included), D and Dv
 * 8..128, 1..16 heads, self and cross attention, cycling through no mask,
 * a key-padding mask (check() masks batch entry 1 fully), an additive
 * [B, 1, Sq, Sk] bias, causal with a mask, and packed sequences of 0..300
 * tokens; B H Sq Sk (D + Dv) bounded so the double reference stays quick.
 * Then 520 packed sequences of 0..5 tokens (more than the kernel orders
 * on its stack, many of one length). */
static void wide_body(int mode)
{
	static const int64_t Ds[] = {8, 16, 24, 40, 64, 96, 128};
	ref_rng = 0x31de0000ull + (uint64_t)mode;
	for (int t = 0; t < ref_count(30, 3); t++) {
		Cfg c = {.B = ref_irand(1, 2), .D = Ds[ref_irand(0, 6)], .filter = -10000.0f};
		c.Dv = t % 4 == 3 ? Ds[ref_irand(0, 6)] : c.D;
		c.H = c.Hkv = ref_irand(1, 16);
		c.Sq = ref_irand(1, 300);
		c.Sk = t % 3 ? c.Sq : ref_irand(1, 300);
		while ((double)c.B * c.H * c.Sq * c.Sk * (double)(c.D + c.Dv) > 2e7 && c.H > 1)
			c.H = c.Hkv = c.H / 2;
		if ((double)c.B * c.H * c.Sq * c.Sk * (double)(c.D + c.Dv) > 2e7)
			c.B = 1;
		c.qo = t % 2, c.ko = 0, c.vo = t % 3;
		c.ldq = c.qo + c.H * c.D + 1, c.ldk = c.H * c.D, c.ldv = c.vo + c.H * c.Dv;
		c.scale = 1.0f / sqrtf((float)c.D);
		switch (t % 5) {
		case 0: break;
		case 1: c.mask = 1 + t % 3; break;
		case 2:
			c.bias_rank = 4;
			c.bdims[0] = c.B, c.bdims[1] = 1, c.bdims[2] = c.Sq, c.bdims[3] = c.Sk;
			break;
		case 3: c.causal = 2, c.cfill = -INFINITY, c.guard = true, c.mask = 1; break;
		default:
			c.B = 1, c.nseq = ref_irand(2, 7), c.Sq = c.Sk = 0;
			for (int64_t b = 0; b < c.nseq; b++) {
				int32_t n = ref_irand(0, 4) ? ref_irand(1, 300) : 0;
				c.cu[b + 1] = c.cu[b] + n;
				c.Sq = c.Sk = n > c.Sq ? n : c.Sq;
			}
			c.H = c.Hkv = ref_irand(1, 4);
			c.ldq = c.qo + c.H * c.D + 1, c.ldk = c.H * c.D, c.ldv = c.vo + c.H * c.Dv;
			break;
		}
		check(&c, mode);
	}
	Cfg p = {.B = 1, .H = 2, .Hkv = 2, .D = 8, .Dv = 8, .ldq = 16, .ldk = 16, .ldv = 16,
	         .scale = 0.35f, .nseq = 520};
	for (int64_t b = 0; b < p.nseq; b++) {
		int32_t n = ref_irand(0, 5);
		p.cu[b + 1] = p.cu[b] + n;
		p.Sq = p.Sk = n > p.Sq ? n : p.Sq;
	}
	check(&p, mode);
}

/* mask_replace (a Where's finite fill): a masked key's score becomes the
 * filter after scale, bias and causal fill.  Random configurations (every
 * mask dtype, causal 0/1/2, bias broadcasts, layouts, GQA) with fills
 * -1e4, -1e9, -65504, -30, 0 and 3, and the shapes models run, each with
 * batch entry 1 fully masked (check()): its rows are uniform over the keys,
 * the mean of V, where adding the fill would give softmax(scores). */
static void replace_body(int mode)
{
	static const float fills[] = {-1e4f, -1e9f, -65504.0f, -30.0f, 0.0f, 3.0f};
	static const int64_t S[] = {1, 5, 20, 36, 128, 130};
	ref_rng = 0x7e91ace0ull + (uint64_t)mode;
	for (int t = 0; t < ref_count(300, 4); t++) {
		Cfg c = random_cfg(false, t % 10 == 0);
		c.mask = 1 + t % 3, c.replace = true, c.filter = fills[t % 6];
		check(&c, mode);
	}
	for (int qi = 0; qi < 6; qi++)
		for (int ki = 0; ki < 6; ki++) {
			Cfg c = {.B = 2, .H = 4, .Hkv = 4, .Sq = S[qi], .Sk = S[ki], .D = 64, .Dv = 64,
			         .scale = 0.125f, .filter = fills[(qi + ki) % 6], .mask = 1 + ki % 3,
			         .replace = true, .causal = qi % 3, .cfill = qi % 3 == 2 ? -1e9f : -1e4f};
			c.ldq = c.ldk = c.ldv = 3 * c.H * c.D;
			c.qo = 0, c.ko = c.H * c.D, c.vo = 2 * c.H * c.D;
			if (ki % 2)
				c.bias_rank = 4, c.bdims[0] = c.B, c.bdims[1] = 1, c.bdims[2] = c.Sq,
				c.bdims[3] = c.Sk;
			check(&c, mode);
		}
}

/* bf16 products (fpmath 1): the models' shapes, BERT's, random
 * configurations (masks, replace, causal, bias, GQA, layouts), packed
 * sequences and the wide ones, against the double reference within
 * bf16_bound */
static void bf16_body(int mode)
{
	bert_body(mode);
	shapes_body(mode);
	ref_rng = 0xbf160000ull + (uint64_t)mode;
	for (int t = 0; t < ref_count(200, 4); t++) {
		Cfg c = random_cfg(false, t % 10 == 0);
		if (t % 4 == 3)
			c.mask = 1 + t % 3, c.replace = true, c.filter = t % 8 == 3 ? -1e9f : 0.0f;
		check(&c, mode);
	}
	for (int t = 0; t < ref_count(60, 4); t++) {
		Cfg c = random_cfg(true, t % 10 == 0);
		check(&c, mode);
	}
	tiled_body(mode);
	wide_body(mode);
}

/* The GEMM kernels the CPU runs, each forced in turn (rt_sgemm_use):
 * "avx512" takes AVX512_BF16's vdpbf16ps where the CPU has it, forced on
 * and then off (rt_sgemm_bf16_use: the default measures which is faster),
 * the others multiply the same bf16-rounded operands in f32; *hw: whether
 * vdpbf16ps ran */
static void bf16_kernels(void (*body)(int mode), bool *hw)
{
	static const char *const ks[] = {"avx512", "avx512", "avx2", "c"};
	static const int dot[] = {1, 2, 2, 2};
	*hw = false;
	bf16_on = 1;
	for (int i = 0; i < 4; i++) {
		if (rt_sgemm_use(ks[i]) || rt_sgemm_bf16_use(dot[i]))
			continue;
		*hw |= !strcmp(rt_sgemm_bf16_kernel(), "avx512bf16");
		if (i == 3)
			body(0 + (vm_have_avx512() ? 1 : vm_have_avx2() ? 2 : 0));
		else
			vector_paths(body);
	}
	rt_sgemm_use(NULL);
	rt_sgemm_bf16_use(0);
	bf16_on = 0;
}

static void test_attention_bf16(void **state)
{
	(void)state;
	bool hw;
	bf16_kernels(bf16_body, &hw);
	printf("test_attention_bf16: vdpbf16ps %s\n", hw ? "ran" : "not on this CPU");
}

/* fpmath 1 really changes the products (BERT's shape: some output moves by
 * more than the f32 tolerance, none by more than the bound), on each GEMM
 * kernel; fpmath 2 is refused */
static void bf16_ran_body(int mode)
{
	ref_rng = 0xbf17000ull;
	Cfg c = {.B = 1, .H = 12, .Hkv = 12, .Sq = 128, .Sk = 128, .D = 64, .Dv = 64,
	         .qo = 0, .ko = 768, .vo = 1536, .ldq = 2304, .ldk = 2304, .ldv = 2304,
	         .scale = 0.125f, .filter = -10000.0f, .mask = 1};
	Data d = {0};
	d.nq = d.nk = d.nv = 128 * 2304, d.nout = 128 * 768;
	d.q = d.k = d.v = frand_arr(d.nq, -1, 1);
	d.mask = ref_alloc(128 * sizeof(int64_t));
	for (int k = 0; k < 128; k++)
		((int64_t *)d.mask)[k] = k < 100;
	bf16_on = 0;
	float *f = run(&c, &d, mode);
	bf16_on = 1;
	float *b = run(&c, &d, mode);
	double worst = 0;
	for (int64_t i = 0; i < d.nout; i++)
		worst = fabs((double)f[i] - b[i]) > worst ? fabs((double)f[i] - b[i]) : worst;
	if (!(worst > 1e-4 && worst < 0.05))
		fail_msg("path %d, GEMM kernel %s: bf16 products moved the outputs by at most %g",
		         mode, rt_sgemm_kernel(), worst);
	ref_guarded_free(f); ref_guarded_free(b);
	free(d.q); free(d.mask);
}

/* A 4-head attention (2 K/V heads, head size 2) runs with the int
 * attribute slot at 1 and is refused with it at 2: a flag's other values
 * are errors, not guesses */
static void att_flag_refused(int slot)
{
	float q[8] = {0}, k[4] = {0}, v[4] = {0}, o[8];
	rt_t in[3] = {T(q, 3, 1, 1, 8, 0, KILN_F32), T(k, 3, 1, 1, 4, 0, KILN_F32),
	              T(v, 3, 1, 1, 4, 0, KILN_F32)};
	rt_t out = T(o, 3, 1, 1, 8, 0, KILN_F32);
	int64_t ia[RT_NIA_KlnAttention] = {0};
	float fa[RT_NFA_KlnAttention] = {0};
	ia[RT_IA_KlnAttention_head_size] = 2;
	ia[RT_IA_KlnAttention_num_heads] = 4;
	ia[RT_IA_KlnAttention_v_head_size] = 2;
	ia[RT_IA_KlnAttention_kv_num_heads] = 2;
	ia[slot] = 1;
	assert_int_equal(rt_op_KlnAttention(frame(), "att", in, 3, &out, 1, ia, RT_NIA_KlnAttention,
	                                    fa, RT_NFA_KlnAttention), 0);
	ia[slot] = 2;
	assert_int_not_equal(rt_op_KlnAttention(frame(), "att", in, 3, &out, 1, ia,
	                                        RT_NIA_KlnAttention, fa, RT_NFA_KlnAttention), 0);
}

static void test_attention_bf16_ran(void **state)
{
	(void)state;
	bool hw;
	bf16_kernels(bf16_ran_body, &hw);
	att_flag_refused(RT_IA_KlnAttention_fpmath);
}

/* A fully masked row in replace mode is the mean of V on every path (the
 * graph's Where makes every score the fill); adding the fill is not */
static void test_attention_replace_uniform(void **state)
{
	(void)state;
	enum { B = 2, S = 7, D = 4 };
	float q[B * S * D], k[B * S * D], v[B * S * D], o[B * S * D];
	uint8_t mask[B * S];
	ref_rng = 0x0afe11ull;
	ref_fill(q, B * S * D, -3, 3), ref_fill(k, B * S * D, -3, 3), ref_fill(v, B * S * D, -1, 1);
	for (int i = 0; i < B * S; i++)
		mask[i] = i < S ? i % 2 : 0;   /* batch 1 fully masked */
	rt_t in[5] = {T(q, 3, B, S, D, 0, KILN_F32), T(k, 3, B, S, D, 0, KILN_F32),
	              T(v, 3, B, S, D, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, 0),
	              T(mask, 2, B, S, 0, 0, KILN_BOOL)};
	rt_t out = T(o, 3, B, S, D, 0, KILN_F32);
	int64_t ia[RT_NIA_KlnAttention] = {0};
	float fa[RT_NFA_KlnAttention] = {0};
	ia[RT_IA_KlnAttention_head_size] = D, ia[RT_IA_KlnAttention_num_heads] = 1;
	ia[RT_IA_KlnAttention_v_head_size] = D;
	fa[RT_FA_KlnAttention_mask_filter] = -1e4f, fa[RT_FA_KlnAttention_scale] = 0.5f;
	for (int mode = 0; mode <= 2; mode++) {
		if ((mode == 1 && !vm_have_avx512()) || (mode == 2 && !vm_have_avx2()))
			continue;
		for (int rep = 1; rep >= 0; rep--) {
			ia[RT_IA_KlnAttention_mask_replace] = rep;
			assert_int_equal(rt_fused_simd_use(mode), 0);
			int rc = rt_op_KlnAttention(frame(), "att", in, 5, &out, 1, ia, RT_NIA_KlnAttention,
			                            fa, RT_NFA_KlnAttention);
			assert_int_equal(rt_fused_simd_use(-1), 0);
			assert_int_equal(rc, 0);
			double worst = 0;
			for (int r = 0; r < S; r++)
				for (int e = 0; e < D; e++) {
					double mean = 0;
					for (int kk = 0; kk < S; kk++)
						mean += v[(S + kk) * D + e] / S;
					double dd = fabs(o[(S + r) * D + e] - mean);
					worst = dd > worst ? dd : worst;
				}
			if (rep && worst > 1e-6)
				fail_msg("path %d: a fully masked row is %g off the mean of V", mode, worst);
			if (!rep && worst < 1e-3)
				fail_msg("path %d: adding the fill gave the mean of V too (the test proves "
				         "nothing)", mode);
		}
	}
	ia[RT_IA_KlnAttention_mask_replace] = 2;   /* neither mode: an error, not a guess */
	assert_int_not_equal(rt_op_KlnAttention(frame(), "att", in, 5, &out, 1, ia,
	                                        RT_NIA_KlnAttention, fa, RT_NFA_KlnAttention), 0);
}

/* kv_tiled other than 0 or 1 is an error, not a guess */
static void test_attention_tiled_refused(void **state)
{
	(void)state;
	att_flag_refused(RT_IA_KlnAttention_kv_tiled);
}

static void test_attention_random(void **state) { (void)state; vector_paths(random_body); }
static void test_attention_tiled(void **state) { (void)state; vector_paths(tiled_body); }
static void test_attention_packed(void **state) { (void)state; vector_paths(packed_body); }
static void test_attention_bert(void **state) { (void)state; vector_paths(bert_body); }
static void test_attention_wide(void **state) { (void)state; vector_paths(wide_body); }
static void test_attention_shapes(void **state) { (void)state; vector_paths(shapes_body); }
static void test_attention_replace(void **state) { (void)state; vector_paths(replace_body); }

/* The Softmax / LogSoftmax ops on rows of 1..70, 128, 771 (AVX2 rows where
 * the CPU has them, scalar otherwise) against double: probabilities within
 * (1e-6 + n 2^-24) relative + 1e-37 (exp's and the division's roundings,
 * the bound of a sum of n floats in order, vm_exp8's flush below exp(-87)),
 * log-probabilities within 2e-6 (1 + |y|) + ulp(max) (log(sum) + max is
 * rounded to float, as the scalar path does); rows with large spreads, a
 * NaN (all NaN), all -inf (all NaN); canaries around y. */
static void sm_case(int64_t rows, int64_t n, int special, bool lg)
{
	int64_t tot = rows * n;
	float *x = frand_arr(tot, -8, 8);
	float *y = ref_guarded(tot);
	for (int64_t i = 0; i < tot; i += 3)
		x[i] *= special == 1 ? 30.0f : 1.0f;    /* spreads past exp's range */
	if (special == 2)
		x[n / 2] = NAN;                        /* row 0 */
	for (int64_t i = 0; special == 3 && i < n; i++)
		x[i] = -INFINITY;                      /* row 0 */
	rt_t in = T(x, 2, rows, n, 0, 0, KILN_F32), out = T(y, 2, rows, n, 0, 0, KILN_F32);
	int64_t axis = 1;
	assert_int_equal((lg ? rt_op_LogSoftmax : rt_op_Softmax)(frame(), "sm", &in, 1, &out, 1, &axis,
	                                                         1, NULL, 0), 0);
	int64_t at;
	if (ref_guard_hit(y, tot, &at))
		fail_msg("%sSoftmax, %lld rows of %lld: the canary at %lld was overwritten",
		         lg ? "Log" : "", (long long)rows, (long long)n, (long long)at);
	for (int64_t r = 0; r < rows; r++) {
		const float *xr = x + r * n;
		double mx = -INFINITY, sum = 0;
		bool nan = false;
		for (int64_t k = 0; k < n; k++) {
			nan |= isnan(xr[k]);
			mx = xr[k] > mx ? xr[k] : mx;
		}
		/* x - max as the kernels round it, in float */
		for (int64_t k = 0; k < n; k++)
			sum += exp((float)(xr[k] - (float)mx));
		for (int64_t k = 0; k < n; k++) {
			float got = y[r * n + k];
			double want = lg ? xr[k] - mx - log(sum) : exp((float)(xr[k] - (float)mx)) / sum;
			bool ok = nan || isinf(mx) ? isnan(got) :
			          lg ? fabs(got - want) <= 2e-6 * (1 + fabs(want)) + 1.2e-7 * fabs(mx) :
			          fabs(got - want) <= (1e-6 + 6e-8 * (double)n) * want + 1e-37;
			if (!ok)
				fail_msg("%sSoftmax, n %lld, row %lld, element %lld: %.9g, reference %.12g",
				         lg ? "Log" : "", (long long)n, (long long)r, (long long)k, got, want);
		}
	}
	free(x);
	ref_guarded_free(y);
}

static void test_softmax_op(void **state)
{
	(void)state;
	ref_rng = 0x50f7ull;
	for (int lg = 0; lg < 2; lg++) {
		for (int64_t n = 1; n <= 70; n++)
			sm_case(3, n, (int)(n % 4), lg);
		sm_case(5, 128, 1, lg);
		sm_case(4, 771, 2, lg);
		sm_case(2, 771, 3, lg);
	}
}

#if defined(__x86_64__)
/* vm_exp8_nonpos(x) == vm_exp8(x) bit for bit on x <= 0: a sweep of
 * [-110, 0] in steps of ~1e-4 (around the -87 flush and the subnormal
 * results just above it included), -0, -inf, NaN */
VM_AVX2
static void exp_nonpos_sweep(void)
{
	float x[8];
	int64_t n = 0;
	for (int64_t i = 0; i <= 1100000; i += 8) {
		for (int l = 0; l < 8; l++)
			x[l] = -(float)(i + l) * 1e-4f;
		if (i == 0)
			x[1] = -0.0f, x[2] = -INFINITY, x[3] = NAN, x[4] = -87.0f, x[5] = -86.99999f;
		__m256 v = _mm256_loadu_ps(x);
		float a[8], b[8];
		_mm256_storeu_ps(a, vm_exp8_nonpos(v));
		_mm256_storeu_ps(b, vm_exp8(v));
		for (int l = 0; l < 8; l++, n++)
			if (memcmp(&a[l], &b[l], sizeof(float)) && !(isnan(a[l]) && isnan(b[l])))
				fail_msg("vm_exp8_nonpos(%.9g) = %.9g, vm_exp8 %.9g", x[l], a[l], b[l]);
	}
	assert_true(n > 1000000);
}

static void test_exp_nonpos(void **state)
{
	(void)state;
	if (!vm_have_avx2())
		skip();
	exp_nonpos_sweep();
}
#else
static void test_exp_nonpos(void **state)
{
	(void)state;
	skip();
}
#endif

/* a path the CPU lacks is refused and changes nothing */
static void test_path_refused(void **state)
{
	(void)state;
	assert_int_equal(rt_fused_simd_use(2), vm_have_avx2() ? 0 : -1);
	assert_int_equal(rt_fused_simd_use(7), -1);
	assert_int_equal(rt_fused_simd_use(-1), 0);
}

static int summary(void **state)
{
	(void)state;
	printf("test_rt_fused: %lld outputs compared; bf16 products: the worst used %.3f of its "
	       "bound\n", (long long)checked, bf16_worst);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_refused),
		cmocka_unit_test(test_attention_bert),
		cmocka_unit_test(test_attention_shapes),
		cmocka_unit_test(test_attention_random),
		cmocka_unit_test(test_attention_tiled),
		cmocka_unit_test(test_attention_tiled_refused),
		cmocka_unit_test(test_attention_packed),
		cmocka_unit_test(test_attention_wide),
		cmocka_unit_test(test_attention_replace),
		cmocka_unit_test(test_attention_replace_uniform),
		cmocka_unit_test(test_attention_bf16),
		cmocka_unit_test(test_attention_bf16_ran),
		cmocka_unit_test(test_softmax_op),
		cmocka_unit_test(test_exp_nonpos),
	};
	return cmocka_run_group_tests(tests, NULL, summary);
}
