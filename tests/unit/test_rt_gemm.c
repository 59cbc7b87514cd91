/* test_rt_gemm.c: kiln's own sgemm (runtime/gemm.c) against a naive
 * double-precision reference: odd shapes, transposes, alpha/beta, leading
 * dims larger than the matrix, blocks crossing the KC/MC/NC boundaries,
 * the BERT-base shapes, the epilogue (bias, GELU, QuickGELU), weights in the panel
 * layout of rt.h (rt_sgemm_panels; few rows on 1 to 3 threads) and in its bf16 layout
 * (rt_sgemm_panels_bf16: against the product of the bf16-rounded operands)
 * -- for every micro-kernel this CPU can run, serial and on a two-thread
 * pool.  Sampled (rt_ref.h's ref_sampled: a sanitizer build), the big
 * shapes of few_rows_threads run on one pool size per kernel and split
 * (each size on two kernels), row_blocks_bitexact each kernel and M with
 * one of its three K (each K on a third of them), forced_blocking 8 of
 * its 24 random shapes per blocking (every transpose, epilogue and pool
 * size among them); every kernel, tail and boundary shape still runs. */
#include <math.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gemm.h"
#include "rt_internal.h"
#include "rt_ref.h"

static struct rt_pool *pool;
static int panels;      /* check() multiplies with B packed into panels: 1 f32, 2 bf16 */

/* One product; returns the worst error relative to sum |terms| per element. */
static double check(struct rt_pool *p, int ta, int tb, int64_t M, int64_t N, int64_t K,
                    float alpha, float beta, int64_t pad, const rt_gemm_epi *epi)
{
	RefGemm g = ref_gemm_new(ta, tb, M, N, K, alpha, beta, pad, pad, pad);
	if (panels) {
		assert_true(!ta && !tb && alpha == 1.0f && beta == 0.0f);
		float *Bc = ref_gemm_dense_b(&g);
		if (panels == 2) {
			/* the reference multiplies what every kernel does: W and A
			 * rounded to bf16 */
			uint16_t *Bh = ref_alloc(sizeof(uint16_t) * (size_t)rt_gemm_panel_bf16s(K, N));
			rt_gemm_pack_panels_bf16(Bc, K, N, Bh);
			rt_sgemm_panels_bf16(p, M, N, K, g.A, g.lda, Bh, g.C, g.ldc, epi);
			for (int64_t i = 0; i < K * g.ldb; i++)
				g.B[i] = rt_bf16_to_f32(rt_f32_to_bf16(g.B[i]));
			for (int64_t i = 0; i < M * g.lda; i++)
				g.A[i] = rt_bf16_to_f32(rt_f32_to_bf16(g.A[i]));
			free(Bh);
		} else {
			float *Bp = ref_alloc(sizeof(float) * (size_t)rt_gemm_panel_floats(K, N));
			rt_gemm_pack_panels(Bc, K, N, Bp);
			rt_sgemm_panels(p, M, N, K, g.A, g.lda, Bp, g.C, g.ldc, epi);
			free(Bp);
		}
		free(Bc);
	} else if (epi)
		rt_sgemm_epi(p, ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, g.C, g.ldc, epi);
	else
		rt_sgemm(p, ta, tb, M, N, K, alpha, g.A, g.lda, g.B, g.ldb, beta, g.C, g.ldc);
	double worst = ref_gemm_worst(&g, epi ? epi->bias : NULL, epi ? epi->act : 0, 1e-30);
	ref_gemm_free(&g);
	return worst;
}

#define TOL 1e-5

static void expect(struct rt_pool *p, int ta, int tb, int64_t M, int64_t N, int64_t K,
                   float alpha, float beta, int64_t pad, const rt_gemm_epi *epi)
{
	double e = check(p, ta, tb, M, N, K, alpha, beta, pad, epi);
	if (!(e < TOL)) {
		print_error("kernel %s: ta %d tb %d M %lld N %lld K %lld alpha %g beta %g pad %lld: "
		            "rel err %g\n", rt_sgemm_kernel(), ta, tb, (long long)M, (long long)N,
		            (long long)K, alpha, beta, (long long)pad, e);
		fail();
	}
}

static const char *const names[] = { "avx512", "avx2", "c" };

static void odd_shapes(void **state)
{
	(void)state;
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n])) {
			printf("# kernel %s: not supported here, skipped\n", names[n]);
			continue;
		}
		/* every size 1..67 in each dim at least once, all transposes */
		for (int s = 1; s <= 67; s++)
			for (int t = 0; t < 4; t++) {
				int64_t a = ref_irand(1, 67), b = ref_irand(1, 67);
				expect(NULL, t & 1, t >> 1, s, a, b, 1.0f, 0.0f, 0, NULL);
				a = ref_irand(1, 67), b = ref_irand(1, 67);
				expect(NULL, t & 1, t >> 1, a, s, b, 1.0f, 0.0f, 0, NULL);
				a = ref_irand(1, 67), b = ref_irand(1, 67);
				expect(pool, t & 1, t >> 1, a, b, s, 1.0f, 0.0f, 0, NULL);
			}
		/* alpha, beta, leading dims past the matrix */
		for (int r = 0; r < 60; r++) {
			int t = ref_irand(0, 3);
			float alpha = r % 3 == 0 ? 1.0f : ref_frand(-2, 2);
			float beta = r % 4 == 0 ? 0.0f : ref_frand(-1, 1);
			expect(r & 1 ? pool : NULL, t & 1, t >> 1, ref_irand(1, 67), ref_irand(1, 67),
			       ref_irand(1, 67), alpha, beta, ref_irand(0, 5), NULL);
		}
		rt_sgemm_use(NULL);
	}
}

/* sizes crossing KC (256), MC (192), NC (384), SMALL_M (48) */
static void block_edges(void **state)
{
	(void)state;
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		expect(pool, 0, 0, 200, 400, 600, 1.0f, 0.0f, 0, NULL);
		expect(pool, 1, 1, 391, 97, 257, 0.5f, 2.0f, 3, NULL);
		expect(pool, 0, 1, 5, 800, 513, 1.0f, 1.0f, 1, NULL);
		expect(NULL, 1, 0, 385, 3, 1000, -1.0f, 0.0f, 0, NULL);
		expect(pool, 0, 0, 1, 1, 3000, 1.0f, 0.0f, 0, NULL);
		/* few rows: B read in place (LXMERT-like), and just past the limit */
		expect(pool, 0, 0, 20, 800, 600, 1.0f, 0.0f, 5, NULL);
		expect(NULL, 1, 0, 36, 771, 300, 0.5f, 1.0f, 0, NULL);
		expect(pool, 0, 0, 49, 400, 513, 1.0f, 0.0f, 2, NULL);
		rt_sgemm_use(NULL);
	}
}

/* Every tile shape of every kernel: M over full row tiles plus each
 * number of leftover rows (6-row AVX2 tiles, 8-row AVX-512/NEON ones, 4-row
 * C ones), N over 16-wide sub-panels of a 48-wide panel and partial ones,
 * K over the 4-step unrolling's remainders and the K steps; A in place
 * (row-major) and packed (transposed), B packed at run time and in panels,
 * 1 and 2 threads, with and without the epilogue. */
static void tile_shapes(void **state)
{
	(void)state;
	/* 8, 9, 14, 20, 26, 128: a short last row tile evened out with the one
	 * before it (6 + 2 as 4 + 4 with avx2's 6 rows, 8 + 1 as 5 + 4 with 8) */
	static const int ms[] = { 1, 2, 5, 6, 7, 8, 9, 11, 12, 13, 14, 20, 23, 26, 36, 48, 49, 97,
	                          128 };
	static const int ns[] = { 1, 8, 15, 16, 17, 32, 47, 48, 49, 64, 95, 96, 100, 144 };
	static const int ks[] = { 1, 3, 4, 5, 8, 63, 255, 256, 257, 1023, 1025 };
	float bias[144];
	for (int i = 0; i < 144; i++)
		bias[i] = ref_frand(-1, 1);
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
			for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
				int M = ms[a], N = ns[b], K = ks[(a + b) % (sizeof ks / sizeof ks[0])];
				struct rt_pool *p = (a + b) & 1 ? pool : NULL;
				rt_gemm_epi e = { bias, (int)(a % 3) };
				expect(p, 0, 0, M, N, K, 1.0f, 0.0f, (a + b) % 3, NULL);
				expect(p, 1, 0, M, N, K, 1.0f, 0.0f, 1, NULL);
				expect(p, 0, 1, M, N, K, 0.5f, 1.0f, 2, &e);
				panels = 1;
				expect(p, 0, 0, M, N, K, 1.0f, 0.0f, b % 3, (a & 1) ? &e : NULL);
				panels = 0;
			}
		rt_sgemm_use(NULL);
	}
}

/* Every K step count a micro-kernel's unrolled loop can end on (K % 4 of
 * 0..3, fewer than 4 steps, a few iterations), A read in place with full
 * and partial row tiles and padded leading dims, alpha and beta, B in
 * place and in panels: the AVX2 kernel addresses its 4 k steps by
 * displacements and runs the last K % 4 alone. */
static void kernel_k_steps(void **state)
{
	(void)state;
	static const int ms[] = { 6, 12, 13, 16 };
	static const int ns[] = { 16, 48, 50 };
	float bias[64];
	for (int i = 0; i < 64; i++)
		bias[i] = ref_frand(-1, 1);
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		for (int K = 1; K <= 19; K++)
			for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
				for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
					struct rt_pool *p = (K + (int)a) & 1 ? pool : NULL;
					rt_gemm_epi e = { bias, K % 4 };
					expect(p, 0, 0, ms[a], ns[b], K, 0.75f, 0.5f, (K + (int)b) % 3, NULL);
					panels = 1;
					expect(p, 0, 0, ms[a], ns[b], K, 1.0f, 0.0f, (int)b, &e);
					panels = 0;
				}
		rt_sgemm_use(NULL);
	}
}

/* BERT-base at batch 1, sequence 128, with the CPU's own kernel */
static void bert_shapes(void **state)
{
	(void)state;
	expect(pool, 0, 0, 128, 768, 768, 1.0f, 0.0f, 0, NULL);
	expect(pool, 0, 0, 128, 2304, 768, 1.0f, 0.0f, 0, NULL);
	expect(pool, 0, 0, 128, 3072, 768, 1.0f, 0.0f, 0, NULL);
	expect(pool, 0, 0, 128, 768, 3072, 1.0f, 0.0f, 0, NULL);
	/* attention, per head: Q K^T and P V */
	expect(NULL, 0, 1, 128, 128, 64, 0.125f, 0.0f, 768 - 64, NULL);
	expect(NULL, 0, 0, 128, 64, 128, 1.0f, 0.0f, 0, NULL);
}

static void epilogues(void **state)
{
	(void)state;
	float bias[800];
	for (int i = 0; i < 800; i++)
		bias[i] = ref_frand(-1, 1);
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		for (int act = 0; act <= 3; act++) {
			rt_gemm_epi e = { act == 1 ? NULL : bias, act };
			expect(pool, 0, 0, 37, 800, 70, 1.0f, 0.0f, 0, &e);
			expect(NULL, 0, 1, 9, 17, 300, 0.5f, 1.0f, 2, &e);
		}
		rt_sgemm_use(NULL);
	}
	assert_int_equal(rt_sgemm_use("nope"), -1);
}

/* The GELU epilogues (act 1 erf: AVX2's tile epilogue has its own erf,
 * 2 tanh, 3 QuickGELU) on many shapes, for every kernel: every N from 1 to
 * 67 (the masked tails of every vector width, partial panels) with random
 * M and K, with and without a bias, serial and pooled, C strided with
 * padding columns that must stay untouched (check()), B in place and
 * packed into panels. */
static void gelu_epilogues(void **state)
{
	(void)state;
	float bias[200];
	for (int i = 0; i < 200; i++)
		bias[i] = ref_frand(-4, 4);
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		for (int act = 1; act <= 3; act++) {
			for (int N = 1; N <= 67; N++) {
				rt_gemm_epi e = { N & 1 ? bias : NULL, act };
				expect(N & 2 ? pool : NULL, 0, N % 3 == 0, ref_irand(1, 67), N,
				       ref_irand(1, 67), 1.0f, 0.0f, ref_irand(0, 3), &e);
				panels = 1;
				expect(N & 2 ? NULL : pool, 0, 0, ref_irand(1, 67), N + ref_irand(0, 130),
				       ref_irand(1, 300), 1.0f, 0.0f, ref_irand(0, 3), &e);
				panels = 0;
			}
		}
		rt_gemm_epi e = { bias, 3 };
		expect(pool, 0, 0, 200, 197, 600, 1.0f, 0.0f, 1, &e);    /* blocks past MC, KC */
		expect(NULL, 0, 0, 7, 200, 1000, 1.0f, 0.0f, 0, &e);     /* few rows: B in place */
		rt_sgemm_use(NULL);
	}
}

/* The end of same_bits_or_fail and near_or_fail: unless ok, print the
 * printf-style message (with element bad of C1 and C2 when bad >= 0); free
 * the five buffers (A, W, Bp, C1, C2) either way.  Returns !ok: the caller
 * ends its va_list, then fails. */
static bool report_and_free(float *buf[5], bool ok, long long bad, const char *fmt, va_list ap)
{
	if (!ok) {
		char msg[256];
		vsnprintf(msg, sizeof msg, fmt, ap);
		if (bad >= 0)
			print_error("%s: %g against %g\n", msg, (double)buf[3][bad], (double)buf[4][bad]);
		else
			print_error("%s\n", msg);
	}
	for (int i = 0; i < 5; i++)
		free(buf[i]);
	return !ok;
}

/* C1 and C2 (buf[3] and buf[4], n floats each) the same bit for bit, else
 * the printf-style message and the test fails; the five buffers (A, W, Bp,
 * C1, C2) freed either way, before failing. */
static void same_bits_or_fail(float *buf[5], size_t n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void same_bits_or_fail(float *buf[5], size_t n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	bool bad = report_and_free(buf, !memcmp(buf[3], buf[4], sizeof(float) * n), -1, fmt, ap);
	va_end(ap);
	if (bad)
		fail();
}

/* same_bits_or_fail within a bound: |buf[3] - buf[4]| <= tol (1 + |buf[4]|) */
static void near_or_fail(float *buf[5], size_t n, float tol, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void near_or_fail(float *buf[5], size_t n, float tol, const char *fmt, ...)
{
	size_t at = n;
	for (size_t i = 0; i < n && at == n; i++)
		if (!(fabsf(buf[3][i] - buf[4][i]) <= tol * (1.0f + fabsf(buf[4][i]))))
			at = i;
	va_list ap;
	va_start(ap, fmt);
	bool bad = report_and_free(buf, at == n, at < n ? (long long)at : -1, fmt, ap);
	va_end(ap);
	if (bad)
		fail();
}

/* The epilogue on the kernels whose fused form claims the exact operations
 * of the unfused one (avx512's tile epilogue, the portable kernel): the
 * GEMM with bias + act equals, bit for bit, the GEMM without epilogue
 * followed by c + bias and rt_gelu_inplace row by row (what the AVX-512
 * path ran before its one-pass tile epilogue); N 1 to 100 (every masked
 * tail, partial panels), weights in panels, 1 and 2 threads, C strided.
 * Except avx512's erf GELU, the rational one: within its bound. */
static void epilogue_bitexact(void **state)
{
	(void)state;
	static const char *exact[] = { "avx512", "c" };
	float bias[200];
	for (int i = 0; i < 200; i++)
		bias[i] = ref_frand(-4, 4);
	for (size_t n = 0; n < 2; n++) {
		if (rt_sgemm_use(exact[n]))
			continue;
		for (int N = 1; N <= 100; N++) {
			int64_t M = ref_irand(1, 40), K = ref_irand(1, 300), ldc = N + N % 3;
			int act = N % 4;
			rt_gemm_epi e = { N % 5 ? bias : NULL, act };
			float *A = ref_alloc(sizeof(float) * (size_t)(M * K));
			float *W = ref_alloc(sizeof(float) * (size_t)(K * N));
			float *Bp = ref_alloc(sizeof(float) * (size_t)rt_gemm_panel_floats(K, N));
			float *C1 = ref_alloc(sizeof(float) * (size_t)(M * ldc));
			float *C2 = ref_alloc(sizeof(float) * (size_t)(M * ldc));
			for (int64_t i = 0; i < M * K; i++)
				A[i] = ref_frand(-2, 2);
			for (int64_t i = 0; i < K * N; i++)
				W[i] = ref_frand(-2, 2);
			memset(C1, 0, sizeof(float) * (size_t)(M * ldc));
			memset(C2, 0, sizeof(float) * (size_t)(M * ldc));
			rt_gemm_pack_panels(W, K, N, Bp);
			struct rt_pool *p = N & 1 ? pool : NULL;
			rt_sgemm_panels(p, M, N, K, A, K, Bp, C1, ldc, &e);
			rt_sgemm_panels(p, M, N, K, A, K, Bp, C2, ldc, NULL);
			for (int64_t i = 0; i < M; i++) {
				if (e.bias)
					for (int64_t c = 0; c < N; c++)
						C2[i * ldc + c] += bias[c];
				if (act)
					rt_gelu_inplace(C2 + i * ldc, N, act - 1);
			}
			/* AVX-512's fused erf GELU is the rational one (as AVX2's):
			 * within its error bound of gelu_avx512's, not the same bits */
			if (act == 1 && n == 0)
				near_or_fail((float *[5]){ A, W, Bp, C1, C2 }, (size_t)(M * ldc), 2e-6f,
				             "kernel avx512: M %lld N %d K %lld: fused erf GELU",
				             (long long)M, N, (long long)K);
			else
				same_bits_or_fail((float *[5]){ A, W, Bp, C1, C2 }, (size_t)(M * ldc),
				                  "kernel %s: M %lld N %d K %lld act %d bias %d: fused "
				                  "epilogue not bit-identical", exact[n], (long long)M, N,
				                  (long long)K, act, e.bias != NULL);
		}
		rt_sgemm_use(NULL);
	}
}

/* Weights in panels, the blocking chosen from the caches: how the rows are
 * cut into row blocks (M around mc: one block or two) only moves work,
 * so with K in one K step (K <= kc: blocks of at most SMALL_M rows take
 * longer steps) the result is bit-identical to 72-row and 48-column blocks;
 * M around mc and 5/4 mc, 1 to 3 threads, every kernel, with and without
 * the epilogue; then against the reference (C's canaries). */
static void row_blocks_bitexact(void **state)
{
	(void)state;
	struct rt_pool *pools[3] = { NULL, pool, rt_pool_create(3) };
	assert_non_null(pools[2]);
	float bias[800];
	for (int i = 0; i < 800; i++)
		bias[i] = ref_frand(-1, 1);
	static const int64_t ms[] = { 119, 121, 128, 137, 144, 145, 150, 151, 263, 300 };
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		int64_t kc, mc, nc;
		rt_sgemm_blocking_get(&kc, &mc, &nc);
		for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
			for (size_t q = 0; q < 3; q++) {
				if (ref_sampled() && q != (i + n) % 3)
					continue;
				int64_t M = ms[i], K = q == 0 ? 7 : q == 1 ? 130 : kc - 5, N = i & 1 ? 770 : 97;
				rt_gemm_epi e = { bias, (int)(i % 4) };
				const rt_gemm_epi *ep = i % 3 ? &e : NULL;
				float *A = ref_alloc(sizeof(float) * (size_t)(M * K));
				float *W = ref_alloc(sizeof(float) * (size_t)(K * N));
				float *Bp = ref_alloc(sizeof(float) * (size_t)rt_gemm_panel_floats(K, N));
				float *C1 = ref_alloc(sizeof(float) * (size_t)(M * N));
				float *C2 = ref_alloc(sizeof(float) * (size_t)(M * N));
				ref_fill(A, M * K, -2, 2);
				ref_fill(W, K * N, -2, 2);
				rt_gemm_pack_panels(W, K, N, Bp);
				struct rt_pool *p = pools[(i + q) % 3];
				rt_sgemm_panels(p, M, N, K, A, K, Bp, C1, N, ep);
				rt_sgemm_blocking(kc, 72, 48);
				rt_sgemm_panels(p, M, N, K, A, K, Bp, C2, N, ep);
				rt_sgemm_blocking(0, 0, 0);
				same_bits_or_fail((float *[5]){ A, W, Bp, C1, C2 }, (size_t)(M * N),
				                  "kernel %s: M %lld N %lld K %lld: row blocks of the "
				                  "chosen blocking not bit-identical to 72-row blocks",
				                  names[n], (long long)M, (long long)N, (long long)K);
				panels = 1;
				expect(p, 0, 0, M, N, K, 1.0f, 0.0f, (int64_t)(i % 3), ep);
				panels = 0;
			}
		rt_sgemm_use(NULL);
	}
	rt_pool_free(pools[2]);
}

/* Weights packed at compile time: panels (mode 1: rt.h's f32 layout) or
 * bf16 panels (mode 2: the AVX512_BF16 kernel where the CPU has it, W
 * widened to f32 on the other kernels), for every kernel: odd N (a partial
 * last panel), odd K (a bf16 pair ending in padding), K across the K steps
 * (f32: 256, 1024 with few rows; bf16: 512, 2048), few and many rows, R-row
 * tails, with and without the epilogue */
static void panel_cases(int mode)
{
	float bias[800];
	for (int i = 0; i < 800; i++)
		bias[i] = ref_frand(-1, 1);
	panels = mode;
	/* bf16: the avx512 kernel with vdpbf16ps forced on, then off
	 * (rt_sgemm_bf16_use; by default it is measured) */
	for (size_t n = 0; n < 3 + (mode == 2); n++) {
		size_t kn = mode == 2 ? (n ? n - 1 : 0) : n;
		if (rt_sgemm_use(names[kn]) || (mode == 2 && rt_sgemm_bf16_use(n ? 2 : 1)))
			continue;
		if (mode == 2)
			printf("# bf16 panels: kernel %s\n", rt_sgemm_bf16_kernel());
		for (int r = 0; r < 40; r++)
			expect(r & 1 ? pool : NULL, 0, 0, ref_irand(1, 67), ref_irand(1, 110),
			       ref_irand(1, 67), 1.0f, 0.0f, ref_irand(0, 3), NULL);
		expect(pool, 0, 0, 20, 800, 600, 1.0f, 0.0f, 5, NULL);
		expect(pool, 0, 0, 200, 400, 1025, 1.0f, 0.0f, 0, NULL);
		expect(NULL, 0, 0, 49, 47, 513, 1.0f, 0.0f, 2, NULL);
		expect(pool, 0, 0, 20, 150, 2100, 1.0f, 0.0f, 1, NULL);
		expect(pool, 0, 0, 20, 150, 4100, 1.0f, 0.0f, 1, NULL);
		expect(NULL, 0, 0, 36, 97, 2049, 1.0f, 0.0f, 0, NULL);
		expect(pool, 0, 0, 128, 768, 768, 1.0f, 0.0f, 0, NULL);
		for (int act = 0; act <= 3; act++) {
			rt_gemm_epi e = { act == 1 ? NULL : bias, act };
			expect(pool, 0, 0, 37, 800, 70, 1.0f, 0.0f, 0, &e);
			expect(pool, 0, 0, 128, 770, 301, 1.0f, 0.0f, 1, &e);
		}
		rt_sgemm_use(NULL);
		rt_sgemm_bf16_use(0);
	}
	panels = 0;
}

static void panel_weights(void **state)
{
	(void)state;
	panel_cases(1);
}

static void panel_weights_bf16(void **state)
{
	(void)state;
	panel_cases(2);
}

/* the bf16 product is not the f32 one: a kernel that ignored the bf16
 * layout or rounded nothing would pass the test above only by accident */
static void bf16_rounds(void **state)
{
	(void)state;
	enum { M = 4, N = 48, K = 2 };
	float A[M * K], W[K * N], C[M * N];
	for (int i = 0; i < M * K; i++)
		A[i] = 1.0f + 1.0f / 1024;      /* not a bf16 value: 1.0 after rounding */
	for (int i = 0; i < K * N; i++)
		W[i] = 1.0f + 3.0f / 512;       /* rounds to 1 + 1/128 */
	uint16_t Wh[2 * 48];
	assert_int_equal(rt_gemm_panel_bf16s(K, N), 2 * 48);
	rt_gemm_pack_panels_bf16(W, K, N, Wh);
	assert_int_equal(Wh[0], 0x3f81);
	/* A rounds to 1.0 on every kernel: the widening fallback rounds it too
	 * (vdpbf16ps measured, forced on where the CPU has it, forced off) */
	for (int mode = 0; mode < 3; mode++) {
		if (rt_sgemm_bf16_use(mode))
			continue;
		rt_sgemm_panels_bf16(NULL, M, N, K, A, K, Wh, C, N, NULL);
		for (int i = 0; i < M * N; i++)
			assert_true(C[i] == 2.0f * (1.0f + 1.0f / 128));
	}
	assert_int_equal(rt_sgemm_bf16_use(0), 0);
	assert_int_equal(rt_sgemm_bf16_use(3), -1);
	assert_int_equal(rt_sgemm_bf16_use(-1), -1);
}

/* the vectorized GELU (and QuickGELU) against double erf/tanh/exp on a dense
 * grid, odd lengths (masked tails, canaries around them), NaN kept.  Error bound: a few ulps of the result plus
 * ~1 ulp of 1 in (1 + erf) times x/2 -- what 0.5x(1 + erff(..)) gives. */
static void gelu_accuracy(void **state)
{
	(void)state;
	enum { n = 200001 };
	float *x = malloc(n * sizeof(float));
	assert_non_null(x);
	for (size_t k = 0; k < 3; k++) {
		if (rt_sgemm_use(names[k]))
			continue;
		for (int act = 1; act <= 3; act++) {
			for (int i = 0; i < n; i++)
				x[i] = -14.0f + 28.0f * (float)i / (float)(n - 1);
			rt_gelu_inplace(x, n, act - 1);
			double worst = 0;
			for (int i = 0; i < n; i++) {
				double xi = -14.0f + 28.0f * (float)i / (float)(n - 1);
				double ref = ref_gelu((float)xi, act);
				double e = fabs(x[i] - ref) / (2e-6 * fabs(ref) + 6e-8 * fabs(xi) + 1e-38);
				if (!(e <= worst))
					worst = e;
			}
			if (!(worst <= 1.0)) {
				print_error("gelu (%s, act %d): error %g x the bound\n", names[k], act, worst);
				fail();
			}
			float y[3] = { NAN, 1.0f, -1.0f };
			rt_gelu_inplace(y, 3, act - 1);
			assert_true(isnan(y[0]));
			assert_true(fabsf(y[1] - (float)ref_gelu(1.0, act)) < 1e-6f);
			assert_true(fabsf(y[2] - (float)ref_gelu(-1.0, act)) < 1e-6f);
			/* every tail length: the lanes past n are neither read into the
			 * result nor written (canaries on both sides) */
			for (int len = 0; len <= 40; len++) {
				float buf[42];
				for (int i = 0; i < 42; i++)
					buf[i] = i == 0 || i > len ? 1234.5f : ref_frand(-8, 8);
				float in1 = buf[1];
				rt_gelu_inplace(buf + 1, len, act - 1);
				assert_true(buf[0] == 1234.5f);
				for (int i = len + 1; i < 42; i++)
					assert_true(buf[i] == 1234.5f);
				double r1 = ref_gelu(in1, act);
				if (len)
					assert_true(fabs(buf[1] - r1) <= 2e-6 * fabs(r1) + 6e-8 * fabsf(in1) + 1e-38);
			}
		}
		rt_sgemm_use(NULL);
	}
	free(x);
}

/* K == 0 and alpha == 0: C = beta * C, nothing else read */
/* Few rows with weights in panels on 1 to 3 threads (gemm.c's few-rows
 * split: each thread a contiguous run of panels, then the others'): every
 * M from 1 to 40 and the SMALL_M edge, odd N (fewer panels than threads, a
 * partial last panel), odd K (across the 1024-row K steps), bias and GELU
 * epilogues, C strided with padding columns that must stay untouched; for
 * every kernel, with the few-rows split and with the general one
 * (rt_sgemm_few_rows(0)).  A panel taken twice or never, or a run boundary off by
 * one, shows as a wrong column. */
static void few_rows_threads(void **state)
{
	(void)state;
	float bias[3100];
	for (int i = 0; i < 3100; i++)
		bias[i] = ref_frand(-1, 1);
	struct rt_pool *pools[3] = { rt_pool_create(1), pool, rt_pool_create(3) };
	assert_non_null(pools[0]);
	assert_non_null(pools[2]);
	panels = 1;
	for (size_t k = 0; k < 6; k++) {
		/* every kernel with the few-rows split, then with the general one */
		size_t n = k % 3;
		if (k == 3)
			assert_int_equal(rt_sgemm_few_rows(0), 1);
		if (rt_sgemm_use(names[n]))
			continue;
		for (int M = 1; M <= 40; M++) {
			int act = M % 4;
			rt_gemm_epi e = { M % 3 ? bias : NULL, act };
			int64_t N = ref_irand(1, 500) | 1, K = ref_irand(1, 1100) | 1;
			expect(pools[M % 3], 0, 0, M, N, K, 1.0f, 0.0f, ref_irand(0, 3),
			       act || e.bias ? &e : NULL);
		}
		for (int t = 0; t < 3; t++) {
			if (ref_sampled() && t != (int)(k + k / 3) % 3)
				continue;
			rt_gemm_epi bi = { bias, 0 }, ge = { bias, 1 };
			expect(pools[t], 0, 0, 20, 2304, 768, 1.0f, 0.0f, 1, &bi);
			expect(pools[t], 0, 0, 36, 3072, 769, 1.0f, 0.0f, 0, &ge);
			expect(pools[t], 0, 0, 36, 769, 2049, 1.0f, 0.0f, 3, &bi);
			expect(pools[t], 0, 0, 48, 97, 300, 1.0f, 0.0f, 0, NULL);     /* SMALL_M */
			expect(pools[t], 0, 0, 49, 97, 300, 1.0f, 0.0f, 0, NULL);
			expect(pools[t], 0, 0, 20, 47, 1500, 1.0f, 0.0f, 2, &ge);     /* one panel */
			expect(pools[t], 0, 0, 7, 97, 2000, 1.0f, 0.0f, 0, &bi);      /* 3 panels */
		}
		rt_sgemm_use(NULL);
	}
	assert_int_equal(rt_sgemm_few_rows(1), 0);
	panels = 0;
	rt_pool_free(pools[0]);
	rt_pool_free(pools[2]);
}

static void degenerate(void **state)
{
	(void)state;
	float C[6] = { 1, 2, 3, 4, 5, 6 }, A[1] = { NAN }, B[1] = { NAN };
	rt_sgemm(pool, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 2.0f, C, 3);
	for (int i = 0; i < 6; i++)
		assert_true(C[i] == 2.0f * (float)(i + 1));
	rt_sgemm(pool, 0, 0, 2, 3, 0, 1.0f, A, 1, B, 3, 0.0f, C, 3);
	for (int i = 0; i < 6; i++)
		assert_true(C[i] == 0.0f);
	rt_sgemm(pool, 0, 0, 0, 3, 4, 1.0f, A, 1, B, 3, 0.0f, C, 3);   /* M = 0: no-op */
}

/* Cache blockings forced small (rt_sgemm_blocking), so that modest shapes
 * cross every block boundary: M, N, K from 1 to about 3 blocks (kc, mc,
 * nc), odd sizes, all transposes, B in place, packed at run time and in
 * panels (f32 and bf16), every epilogue, beta 0 and not, alpha, padded
 * leading dims (C's canaries: check()), on 1 to 4 threads, every kernel.
 * Then the blocking chosen from the caches: sane, and K values around its
 * even split of K (kc = 768 on a 512 KB L2: 769, 1537 run as 2 and 3
 * steps of 388 and 516 floats). */
static void forced_blocking(void **state)
{
	(void)state;
	static const int64_t blk[][3] = { { 5, 24, 48 }, { 37, 48, 96 }, { 64, 72, 144 },
	                                  { 300, 24, 48 } };
	struct rt_pool *pools[5] = { NULL, NULL, pool, rt_pool_create(3), rt_pool_create(4) };
	float bias[700];
	for (int i = 0; i < 700; i++)
		bias[i] = ref_frand(-1, 1);
	for (size_t n = 0; n < 3; n++) {
		if (rt_sgemm_use(names[n]))
			continue;
		for (size_t b = 0; b < sizeof blk / sizeof blk[0]; b++) {
			rt_sgemm_blocking(blk[b][0], blk[b][1], blk[b][2]);
			int64_t kc, mc, nc;
			rt_sgemm_blocking_get(&kc, &mc, &nc);
			assert_int_equal(kc, blk[b][0]);
			assert_int_equal(mc, blk[b][1]);
			assert_int_equal(nc, blk[b][2]);
			for (int r = 0; r < ref_count(24, 3); r++) {
				int64_t M = ref_irand(1, 3 * mc + 5), N = ref_irand(1, 3 * nc + 5);
				int64_t K = ref_irand(1, 3 * kc + 5);
				struct rt_pool *p = pools[r % 4 + 1];
				rt_gemm_epi e = { r & 1 ? bias : NULL, r % 4 };
				int t = r % 4;
				float beta = r % 3 ? 0.0f : r % 2 ? 1.0f : -0.5f;
				expect(p, t & 1, t >> 1, M, N, K, r % 5 ? 1.0f : 0.75f, beta, r % 3,
				       r % 4 ? &e : NULL);
				panels = 1 + (r % 3 == 0);
				expect(p, 0, 0, M, N, K, 1.0f, 0.0f, r % 2, &e);
				panels = 0;
			}
			/* exactly at and one past the blocks */
			expect(pools[4], 0, 0, 3 * mc, 3 * nc, 3 * kc, 1.0f, 1.0f, 0, NULL);
			expect(pools[3], 1, 1, 3 * mc + 1, 3 * nc + 1, 3 * kc + 1, 1.0f, 0.0f, 1, NULL);
			panels = 1;
			rt_gemm_epi e = { bias, 1 };
			expect(pools[2], 0, 0, 2 * mc + 1, 2 * nc - 1, 2 * kc + 1, 1.0f, 0.0f, 2, &e);
			panels = 0;
		}
		rt_sgemm_blocking(0, 0, 0);
		int64_t kc, mc, nc;
		rt_sgemm_blocking_get(&kc, &mc, &nc);
		printf("# kernel %s: blocking kc %lld mc %lld nc %lld\n", names[n], (long long)kc,
		       (long long)mc, (long long)nc);
		assert_true(kc >= 128 && kc <= 1024);
		assert_true(mc >= 24 && mc % 24 == 0);
		assert_true(nc >= 48 && nc % 48 == 0);
		static const int64_t kk[] = { 769, 1537, 2305, 3072 };
		for (size_t i = 0; i < 4; i++) {
			panels = 1;
			rt_gemm_epi e = { bias, 1 };
			expect(i & 1 ? pool : NULL, 0, 0, 100 + (int64_t)i, 200, kk[i], 1.0f, 0.0f, 0, &e);
			panels = 0;
			expect(pools[4], 0, 0, 97, 150, kk[i], 1.0f, 1.0f, 1, NULL);
		}
		rt_sgemm_use(NULL);
	}
	rt_pool_free(pools[3]);
	rt_pool_free(pools[4]);
}

static int setup(void **state)
{
	(void)state;
	pool = rt_pool_create(2);
	printf("# best kernel here: %s\n", rt_sgemm_kernel());
	return pool ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	rt_pool_free(pool);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(odd_shapes),
		cmocka_unit_test(block_edges),
		cmocka_unit_test(tile_shapes),
		cmocka_unit_test(kernel_k_steps),
		cmocka_unit_test(bert_shapes),
		cmocka_unit_test(epilogues),
		cmocka_unit_test(gelu_epilogues),
		cmocka_unit_test(epilogue_bitexact),
		cmocka_unit_test(row_blocks_bitexact),
		cmocka_unit_test(panel_weights),
		cmocka_unit_test(panel_weights_bf16),
		cmocka_unit_test(bf16_rounds),
		cmocka_unit_test(few_rows_threads),
		cmocka_unit_test(degenerate),
		cmocka_unit_test(gelu_accuracy),
		cmocka_unit_test(forced_blocking),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
