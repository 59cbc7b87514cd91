/* gemm.c: kiln's GEMM (see gemm.h), so the runtime does not depend on how
 * the installed BLAS was tuned for this CPU.
 *
 * Blocking (BLIS style): C is cut into blocks of mc rows and up to nc
 * columns, taken by the pool's threads dynamically (guided: blocks shrink
 * toward the end); with weights in panels kc, mc, nc come from the CPU's L2
 * size (blocking_default).
 * A block walks K in kc steps: it packs its kc x n slice
 * of op(B) into panels NR columns wide (unless B is already in rt.h's panel
 * layout) and reads op(A) in place (or packs it into panels MR rows tall),
 * then runs the MR x NR micro-kernel over every (panel, panel) pair.  Edge
 * tiles go through a small tile buffer.  The epilogue (bias, GELU or
 * QuickGELU) runs on
 * each tile after its last K step, while it is in L1.
 *
 * Micro-kernels, chosen once from the CPU: on x86-64 AVX-512 8x48 (24 zmm
 * accumulators, 3 loads + 8 broadcasts per 24 FMAs), AVX2 6x16; on aarch64
 * NEON 8x12 (24 q accumulators); plain C 4x16 everywhere; for bf16 weight
 * panels (kiln compile --fpmath=bf16) an AVX512_BF16 8x48 (vdpbf16ps, A
 * rounded to bf16 once per product).  The runtime is built without -march,
 * so x86 SIMD code sits in target-attributed functions; NEON is part of
 * every aarch64 target.  Architecture-specific code is inside
 * #if defined(__x86_64__) / defined(__aarch64__); the rest is portable C.
 *
 * Packing buffers: one per thread, allocated on its first GEMM, freed at
 * thread exit (pthread key destructor). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "gemm.h"
#include "rt_internal.h"
#include "vmath.h"

#define QUICK_K 1.702f         /* QuickGELU: x sigmoid(QUICK_K x) */
#define KC 256                 /* blocking without a known L2 size */
#define MC 192                 /* multiple of every MR (8, 6, 4) */
#define NC 384                 /* multiple of every NR (48, 16) */
#define MR_MAX 8
#define K_PANEL 1024           /* K step when nothing is packed (few rows) */
#define SMALL_M 48             /* up to this many rows, B is not packed */
#define NR_MAX 48

/* Lines to prefetch (to L2) while a micro-kernel runs: `lines` consecutive
 * cache lines from line `line` of row p.  The caller walks the rows (each
 * `rowlines` lines long, `stride` bytes apart) from call to call. */
typedef struct pf_t {
	const char *p;
	int64_t stride, rowlines, line, lines;
} pf_t;

typedef void (*ukernel_fn)(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b,
                           int64_t bs, float *c, int64_t ldc, float alpha, float beta,
                           const pf_t *pf);

typedef struct ukernel {
	const char *name;
	int mr, nr;
	ukernel_fn fn;
	const ukernel_fn *tail;        /* tail[r]: r < mr rows, A read in place; or NULL */
	int pf_per4;                   /* prefetches a call issues per 4 k steps */
	/* the epilogue's vector forms, or NULL (scalar) */
	void (*add)(float *c, const float *b, int64_t n);
	void (*gelu)(float *x, int64_t n, int approx);
	/* or the whole epilogue on an m x n tile of C (row stride ldc) in one
	 * call: c = act(c + bias[col]), bias may be NULL; or NULL.  A kernel
	 * with it needs no `add` (gelu still serves rt_gelu_inplace) */
	void (*tile_epi)(float *c, int64_t ldc, int64_t m, int64_t n, const float *bias, int act);
} ukernel;

/* ---- micro-kernels ------------------------------------------------------
 * Element (r, k) of the A tile is a[r * rs + k * ks]: packed (rs 1, ks MR)
 * or read in place from row-major op(A) (rs lda, ks 1).  b: kc x NR, row k
 * at b + k * bs: packed (bs NR) or in place (bs ldb).  c[MR x NR] (row
 * stride ldc) = alpha * a.b + beta * c; beta == 0: c is not read.  The
 * bodies take the row count R as a constant (always inlined): the R-row
 * variants serve the last rows of a block (M = 20 or 36 is 2 or 4 full
 * tiles plus 4 rows) without padding them to MR. */

/* One prefetch of the kernels' loops: the next of pn lines from pp (both
 * locals of the body, set from pf).  Consecutive lines: a call's lines may
 * run past the end of a row (harmless prefetches); the caller moves to the
 * next row between calls.  Two registers, so the row pointers of A stay in
 * registers. */
#define PF_ONE() if (pn > 0) { \
		__builtin_prefetch(pp, 0, 2); \
		pp += 64; \
		pn--; \
	}

#if defined(__x86_64__)
#include <immintrin.h>

/* The 8 x 48 AVX-512 kernels' pieces (R rows, R a constant; row r's A at
 * a<r>): accumulators c<r>0..2 set to zero; for every row, three FMAs of
 * a<r>[k] broadcast with the B vectors x0, x1, x2; every row stored,
 * c = acc (+ c when beta != 0) */
#define Z48_DECL(r) __m512 c##r##0 = _mm512_setzero_ps(), c##r##1 = c##r##0, c##r##2 = c##r##0;
#define Z48_DECL8 Z48_DECL(0) Z48_DECL(1) Z48_DECL(2) Z48_DECL(3) \
	Z48_DECL(4) Z48_DECL(5) Z48_DECL(6) Z48_DECL(7)
#define Z48_FMA(r, k, x) if (r < R) { __m512 ar = _mm512_set1_ps(a##r[k]); \
		c##r##0 = _mm512_fmadd_ps(ar, x##0, c##r##0); \
		c##r##1 = _mm512_fmadd_ps(ar, x##1, c##r##1); \
		c##r##2 = _mm512_fmadd_ps(ar, x##2, c##r##2); }
#define Z48_FMA8(k, x) Z48_FMA(0, k, x) Z48_FMA(1, k, x) Z48_FMA(2, k, x) Z48_FMA(3, k, x) \
	Z48_FMA(4, k, x) Z48_FMA(5, k, x) Z48_FMA(6, k, x) Z48_FMA(7, k, x)
#define Z48_STORE(r) if (r < R) { float *cr = c + r * ldc; \
		if (beta != 0.0f) { \
			c##r##0 = _mm512_add_ps(c##r##0, _mm512_loadu_ps(cr)); \
			c##r##1 = _mm512_add_ps(c##r##1, _mm512_loadu_ps(cr + 16)); \
			c##r##2 = _mm512_add_ps(c##r##2, _mm512_loadu_ps(cr + 32)); \
		} \
		_mm512_storeu_ps(cr, c##r##0); \
		_mm512_storeu_ps(cr + 16, c##r##1); \
		_mm512_storeu_ps(cr + 32, c##r##2); }
#define Z48_STORE8 Z48_STORE(0) Z48_STORE(1) Z48_STORE(2) Z48_STORE(3) \
	Z48_STORE(4) Z48_STORE(5) Z48_STORE(6) Z48_STORE(7)
/* the bf16 kernels' loop over kp pairs: STEP(p) each (a macro of the
 * kernel's), a prefetch every two */
#define Z48_PAIRS(kp) { \
		int64_t p = 0; \
		for (; p + 4 <= (kp); p += 4) { \
			PF_ONE() \
			STEP(p) STEP(p + 1) \
			PF_ONE() \
			STEP(p + 2) STEP(p + 3) \
		} \
		for (; p < (kp); p++) \
			STEP(p) \
	}

/* The body, inlined with R and the A strides as constants. */
__attribute__((target("avx512f,fma"), always_inline))
static inline void uk512_body(const int R, int64_t kc, const float *a, int64_t rs, int64_t ks,
                              const float *b, int64_t bs, float *c, int64_t ldc, float alpha,
                              float beta, const pf_t *pf)
{
	/* two prefetches per 4 k steps, spread so they never stall the FMAs */
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs,
	            *a5 = a + 5 * rs, *a6 = a + 6 * rs, *a7 = a + 7 * rs;
	__m512 b0, b1, b2;
	Z48_DECL8
#define STEP(ka, bo) { \
		b0 = _mm512_loadu_ps(b + (bo)); b1 = _mm512_loadu_ps(b + (bo) + 16); \
		b2 = _mm512_loadu_ps(b + (bo) + 32); \
		Z48_FMA8(ka, b) }
	int64_t k = 0, ka = 0;
	for (; k + 4 <= kc; k += 4, ka += 4 * ks, b += 4 * bs) {
		PF_ONE()
		STEP(ka, 0) STEP(ka + ks, bs)
		PF_ONE()
		STEP(ka + 2 * ks, 2 * bs) STEP(ka + 3 * ks, 3 * bs)
	}
	for (; k < kc; k++, ka += ks, b += bs)
		STEP(ka, 0)
#undef STEP
	__m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#define ROW_ST(r) if (r < R) { float *cr = c + r * ldc; \
		if (beta == 0.0f) { \
			_mm512_storeu_ps(cr, _mm512_mul_ps(va, c##r##0)); \
			_mm512_storeu_ps(cr + 16, _mm512_mul_ps(va, c##r##1)); \
			_mm512_storeu_ps(cr + 32, _mm512_mul_ps(va, c##r##2)); \
		} else { \
			_mm512_storeu_ps(cr, _mm512_fmadd_ps(va, c##r##0, \
			                 _mm512_mul_ps(vb, _mm512_loadu_ps(cr)))); \
			_mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(va, c##r##1, \
			                 _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16)))); \
			_mm512_storeu_ps(cr + 32, _mm512_fmadd_ps(va, c##r##2, \
			                 _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 32)))); \
		} }
	ROW_ST(0) ROW_ST(1) ROW_ST(2) ROW_ST(3)
	ROW_ST(4) ROW_ST(5) ROW_ST(6) ROW_ST(7)
#undef ROW_ST
}

/* uk_avx512_R: R rows; A in place (rows rs apart) or packed; B packed
 * (48 wide, the stride a constant) or in place */
#define UK512(R) \
__attribute__((target("avx512f,fma"))) \
static void uk_avx512_##R(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b, \
                          int64_t bs, float *c, int64_t ldc, float alpha, float beta, \
                          const pf_t *pf) \
{ \
	if (bs == 48) { \
		if (ks == 1) \
			uk512_body(R, kc, a, rs, 1, b, 48, c, ldc, alpha, beta, pf); \
		else \
			uk512_body(R, kc, a, 1, 8, b, 48, c, ldc, alpha, beta, pf); \
	} else { \
		if (ks == 1) \
			uk512_body(R, kc, a, rs, 1, b, bs, c, ldc, alpha, beta, pf); \
		else \
			uk512_body(R, kc, a, 1, 8, b, bs, c, ldc, alpha, beta, pf); \
	} \
}
UK512(8)
UK512(7)
UK512(6)
UK512(5)
UK512(4)
UK512(3)
UK512(2)
UK512(1)
#undef UK512
#define uk_avx512 uk_avx512_8

static const ukernel_fn tail512[8] = {
	NULL, uk_avx512_1, uk_avx512_2, uk_avx512_3, uk_avx512_4, uk_avx512_5, uk_avx512_6,
	uk_avx512_7,
};

__attribute__((target("avx2,fma"), always_inline))
static inline void uk256_body(const int R, int64_t kc, const float *a, int64_t rs, int64_t ks,
                              const float *b, int64_t bs, float *c, int64_t ldc, float alpha,
                              float beta, const pf_t *pf)
{
	/* one prefetch per 4 k steps */
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs,
	            *a5 = a + 5 * rs;
	__m256 b0, b1;
#define ROW_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = c##r##0;
	ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3) ROW_DECL(4) ROW_DECL(5)
#undef ROW_DECL
#define ROW_FMA(r, ka) if (r < R) { __m256 ar = _mm256_broadcast_ss(a##r + (ka)); \
		c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0); \
		c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1); }
#define STEP(ka, bo) { b0 = _mm256_loadu_ps(b + (bo)); b1 = _mm256_loadu_ps(b + (bo) + 8); \
		ROW_FMA(0, ka) ROW_FMA(1, ka) ROW_FMA(2, ka) ROW_FMA(3, ka) ROW_FMA(4, ka) \
		ROW_FMA(5, ka) }
	int64_t k = 0, ka = 0;
	for (; k + 4 <= kc; k += 4, ka += 4 * ks, b += 4 * bs) {
		PF_ONE()
		STEP(ka, 0) STEP(ka + ks, bs) STEP(ka + 2 * ks, 2 * bs) STEP(ka + 3 * ks, 3 * bs)
	}
	for (; k < kc; k++, ka += ks, b += bs)
		STEP(ka, 0)
#undef STEP
#undef ROW_FMA
	__m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
#define ROW_ST(r) if (r < R) { float *cr = c + r * ldc; \
		if (beta == 0.0f) { \
			_mm256_storeu_ps(cr, _mm256_mul_ps(va, c##r##0)); \
			_mm256_storeu_ps(cr + 8, _mm256_mul_ps(va, c##r##1)); \
		} else { \
			_mm256_storeu_ps(cr, _mm256_fmadd_ps(va, c##r##0, \
			                 _mm256_mul_ps(vb, _mm256_loadu_ps(cr)))); \
			_mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, c##r##1, \
			                 _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8)))); \
		} }
	ROW_ST(0) ROW_ST(1) ROW_ST(2) ROW_ST(3) ROW_ST(4) ROW_ST(5)
#undef ROW_ST
}

#define UK256(R) \
__attribute__((target("avx2,fma"))) \
static void uk_avx2_##R(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b, \
                        int64_t bs, float *c, int64_t ldc, float alpha, float beta, \
                        const pf_t *pf) \
{ \
	if (bs == 16) { \
		if (ks == 1) \
			uk256_body(R, kc, a, rs, 1, b, 16, c, ldc, alpha, beta, pf); \
		else \
			uk256_body(R, kc, a, 1, 6, b, 16, c, ldc, alpha, beta, pf); \
	} else { \
		if (ks == 1) \
			uk256_body(R, kc, a, rs, 1, b, bs, c, ldc, alpha, beta, pf); \
		else \
			uk256_body(R, kc, a, 1, 6, b, bs, c, ldc, alpha, beta, pf); \
	} \
}
UK256(5)
UK256(4)
UK256(3)
UK256(2)
UK256(1)
#undef UK256

/* The full 6x16 AVX2 tile in assembly: the intrinsic body above, with 12
 * accumulators, 2 B vectors and the broadcasts in 16 ymm registers, left
 * GCC spilling accumulators and copying registers in the loop.  Here
 * ymm0/1 hold B's row k, ymm2/3 alternate the broadcasts of A, and the 12
 * accumulators take the other 12 (operands).  Row r of A is at a + r rs:
 * rows 0, 1, 2, 4 from a (index rs scaled 1, 2, 4), rows 3 and 5 from
 * a3 = a + 3 rs; both step ks floats per k (in place: rs lda, ks 1;
 * packed: rs 1, ks 6).  B steps bs floats per k.  One prefetch of pf per
 * 4 k steps, as the other kernels. */
#define A2_ROW(r, base, idx, ar) \
	"vbroadcastss " base idx ", %%" ar "\n\t" \
	"vfmadd231ps %%ymm0, %%" ar ", %[c" #r "0]\n\t" \
	"vfmadd231ps %%ymm1, %%" ar ", %[c" #r "1]\n\t"
#define A2_STEP \
	"vmovups (%[b]), %%ymm0\n\t" \
	"vmovups 32(%[b]), %%ymm1\n\t" \
	"add %[bs], %[b]\n\t" \
	A2_ROW(0, "(%[a]", ")", "ymm2") \
	A2_ROW(1, "(%[a],%[rs],1", ")", "ymm3") \
	A2_ROW(2, "(%[a],%[rs],2", ")", "ymm2") \
	A2_ROW(3, "(%[a3]", ")", "ymm3") \
	A2_ROW(4, "(%[a],%[rs],4", ")", "ymm2") \
	A2_ROW(5, "(%[a3],%[rs],2", ")", "ymm3") \
	"add %[ks], %[a]\n\t" \
	"add %[ks], %[a3]\n\t"

/* What both 6x16 asm kernels share: zeroing the accumulators, the loop
 * head with its one prefetch per 4 k steps, the accumulator operands, and
 * storing C = alpha acc + beta C. */
#define UK6_Z(r) "vxorps %[c" #r "0], %[c" #r "0], %[c" #r "0]\n\t" \
	"vxorps %[c" #r "1], %[c" #r "1], %[c" #r "1]\n\t"
#define UK6_HEAD \
	UK6_Z(0) UK6_Z(1) UK6_Z(2) UK6_Z(3) UK6_Z(4) UK6_Z(5) \
	"test %[n4], %[n4]\n\t" \
	"jz 3f\n\t" \
	"1:\n\t" \
	"test %[pn], %[pn]\n\t" \
	"jle 2f\n\t" \
	"prefetcht1 (%[pp])\n\t" \
	"add $64, %[pp]\n\t" \
	"dec %[pn]\n\t" \
	"2:\n\t"
#define UK6_ACC \
	[c00] "=&x"(c00), [c01] "=&x"(c01), [c10] "=&x"(c10), [c11] "=&x"(c11), \
	[c20] "=&x"(c20), [c21] "=&x"(c21), [c30] "=&x"(c30), [c31] "=&x"(c31), \
	[c40] "=&x"(c40), [c41] "=&x"(c41), [c50] "=&x"(c50), [c51] "=&x"(c51)

__attribute__((target("avx2,fma")))
static inline void uk6_store(float *c, int64_t ldc, float alpha, float beta, const __m256 *acc)
{
	__m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
	for (int r = 0; r < 6; r++) {
		float *cr = c + r * ldc;
		__m256 lo, hi;
		if (beta == 0.0f) {
			lo = _mm256_mul_ps(va, acc[2 * r]);
			hi = _mm256_mul_ps(va, acc[2 * r + 1]);
		} else {
			lo = _mm256_fmadd_ps(va, acc[2 * r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr)));
			hi = _mm256_fmadd_ps(va, acc[2 * r + 1], _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8)));
		}
		_mm256_storeu_ps(cr, lo);
		_mm256_storeu_ps(cr + 8, hi);
	}
}

__attribute__((target("avx2,fma")))
static void uk_avx2_6s(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b,
                       int64_t bs, float *c, int64_t ldc, float alpha, float beta,
                      const pf_t *pf)
{
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const float *a3 = a + 3 * rs;
	int64_t rsb = rs * 4, ksb = ks * 4, bsb = bs * 4, n4 = kc / 4, n1 = kc % 4;
	__m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
	__asm__ volatile(
		UK6_HEAD
		A2_STEP A2_STEP A2_STEP A2_STEP
		"dec %[n4]\n\t"
		"jnz 1b\n\t"
		"3:\n\t"
		"test %[n1], %[n1]\n\t"
		"jz 5f\n\t"
		"4:\n\t"
		A2_STEP
		"dec %[n1]\n\t"
		"jnz 4b\n\t"
		"5:\n\t"
		: UK6_ACC,
		  [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [n4] "+r"(n4), [n1] "+r"(n1),
		  [pp] "+r"(pp), [pn] "+r"(pn)
		: [rs] "r"(rsb), [ks] "r"(ksb), [bs] "r"(bsb)
		: "xmm0", "xmm1", "xmm2", "xmm3", "cc", "memory");
	const __m256 acc[12] = { c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51 };
	uk6_store(c, ldc, alpha, beta, acc);
}

/* uk_avx2_6: with A read in place (ks 1, the compiled models' GEMMs), the
 * 4 k steps of an iteration address A and B by displacements: 4 pointer
 * updates per 4 k steps instead of 12 (the loop issues 20 instructions a k
 * step for 12 FMAs, and the 8 it saves per iteration took 3-5% less CPU
 * per call on BERT-base's GEMMs in gemm_bench's call-by-call A/B,
 * GEMM_BENCH_VSK); packed A (ks MR) goes to uk_avx2_6s, which steps the
 * pointers every k. */
#define D_ROW(r, mem, ar) \
	"vbroadcastss " mem ", %%" ar "\n\t" \
	"vfmadd231ps %%ymm0, %%" ar ", %[c" #r "0]\n\t" \
	"vfmadd231ps %%ymm1, %%" ar ", %[c" #r "1]\n\t"
#define D_STEP(d, bm) \
	"vmovups " bm ", %%ymm0\n\t" \
	"vmovups 32" bm ", %%ymm1\n\t" \
	D_ROW(0, d "(%[a])", "ymm2") \
	D_ROW(1, d "(%[a],%[rs],1)", "ymm3") \
	D_ROW(2, d "(%[a],%[rs],2)", "ymm2") \
	D_ROW(3, d "(%[a3])", "ymm3") \
	D_ROW(4, d "(%[a],%[rs],4)", "ymm2") \
	D_ROW(5, d "(%[a3],%[rs],2)", "ymm3")

__attribute__((target("avx2,fma")))
static void uk_avx2_6(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b,
                      int64_t bs, float *c, int64_t ldc, float alpha, float beta,
                      const pf_t *pf)
{
	if (ks != 1) {
		uk_avx2_6s(kc, a, rs, ks, b, bs, c, ldc, alpha, beta, pf);
		return;
	}
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const float *a3 = a + 3 * rs, *b2 = b + 2 * bs;
	int64_t rsb = rs * 4, bsb = bs * 4, n4 = kc / 4, n1 = kc % 4;
	__m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
	__asm__ volatile(
		UK6_HEAD
		D_STEP("0", "(%[b])") D_STEP("4", "(%[b],%[bs],1)")
		D_STEP("8", "(%[b2])") D_STEP("12", "(%[b2],%[bs],1)")
		"add $16, %[a]\n\t"
		"add $16, %[a3]\n\t"
		"lea (%[b],%[bs],4), %[b]\n\t"
		"lea (%[b2],%[bs],4), %[b2]\n\t"
		"dec %[n4]\n\t"
		"jnz 1b\n\t"
		"3:\n\t"
		"test %[n1], %[n1]\n\t"
		"jz 5f\n\t"
		"4:\n\t"
		D_STEP("0", "(%[b])")
		"add $4, %[a]\n\t"
		"add $4, %[a3]\n\t"
		"add %[bs], %[b]\n\t"
		"dec %[n1]\n\t"
		"jnz 4b\n\t"
		"5:\n\t"
		: UK6_ACC,
		  [a] "+r"(a), [a3] "+r"(a3), [b] "+r"(b), [b2] "+r"(b2), [n4] "+r"(n4),
		  [n1] "+r"(n1), [pp] "+r"(pp), [pn] "+r"(pn)
		: [rs] "r"(rsb), [bs] "r"(bsb)
		: "xmm0", "xmm1", "xmm2", "xmm3", "cc", "memory");
	const __m256 acc[12] = { c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51 };
	uk6_store(c, ldc, alpha, beta, acc);
}
#undef D_STEP
#undef D_ROW
#undef A2_STEP
#undef A2_ROW
#undef UK6_ACC
#undef UK6_HEAD
#undef UK6_Z
#define uk_avx2 uk_avx2_6

/* ---- the AVX2 kernel's epilogue (bias, GELU) ----
 * gelu_avx512's arithmetic in 8 lanes */

/* GELU over n floats (approx 0 erf, 1 tanh, 2 QuickGELU): vmath.h's
 * vm_gelu8 */
VM_AVX2
static void gelu_avx2(float *x, int64_t n, int approx)
{
	for (int64_t i = 0; i < n; i += 8) {
		/* full vectors: plain loads and stores (AMD's masked store is
		 * microcoded and slow); the tail through a buffer */
		float t[8] = { 0 };
		bool full = n - i >= 8;
		if (!full)
			memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
		__m256 y = vm_gelu8(_mm256_loadu_ps(full ? x + i : t), approx);
		if (full) {
			_mm256_storeu_ps(x + i, y);
		} else {
			_mm256_storeu_ps(t, y);
			memcpy(x + i, t, (size_t)(n - i) * sizeof(float));
		}
	}
}

/* c = act(c + bias) over 8 lanes (act: the epilogue's, 0 none): one add,
 * then gelu_avx2's arithmetic, except the erf GELU (act 1), which
 * is vm_gelu_erf_fast8 (error below 1.5e-6 (1 + |GELU|), within
 * test_rt_gemm's bounds): vm_gelu8's erf took ~31 cycles per 8 lanes here,
 * ~9% of a BERT FFN-up product's time at K = 768, the fast one ~14 */
VM_AVX2 __attribute__((always_inline))
static inline __m256 epi8(__m256 v, const float *bias, const int act)
{
	if (bias)
		v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
	if (act == 1)
		return vm_gelu_erf_fast8(v);
	return act ? vm_gelu8(v, act - 1) : v;
}

/* tile_epi for AVX2, act a constant: full vectors in place, the last
 * n % 8 columns of each row through a buffer (zeros past n, as gelu_avx2) */
VM_AVX2 __attribute__((always_inline))
static inline void epi_tile_avx2_body(float *c, int64_t ldc, int64_t m, int64_t n,
                                      const float *bias, const int act)
{
	int64_t nf = n / 8 * 8;
	float bt[8] = { 0 };
	if (bias && nf < n)
		memcpy(bt, bias + nf, (size_t)(n - nf) * sizeof(float));
	for (int64_t r = 0; r < m; r++, c += ldc) {
		for (int64_t k = 0; k < nf; k += 8)
			_mm256_storeu_ps(c + k, epi8(_mm256_loadu_ps(c + k), bias ? bias + k : NULL, act));
		if (nf < n) {
			float t[8] = { 0 };
			memcpy(t, c + nf, (size_t)(n - nf) * sizeof(float));
			_mm256_storeu_ps(t, epi8(_mm256_loadu_ps(t), bias ? bt : NULL, act));
			memcpy(c + nf, t, (size_t)(n - nf) * sizeof(float));
		}
	}
}

VM_AVX2
static void epi_tile_avx2(float *c, int64_t ldc, int64_t m, int64_t n, const float *bias, int act)
{
	switch (act) {
	case 0: epi_tile_avx2_body(c, ldc, m, n, bias, 0); break;
	case 1: epi_tile_avx2_body(c, ldc, m, n, bias, 1); break;
	case 2: epi_tile_avx2_body(c, ldc, m, n, bias, 2); break;
	default: epi_tile_avx2_body(c, ldc, m, n, bias, 3); break;
	}
}

static const ukernel_fn tail256[6] = {
	NULL, uk_avx2_1, uk_avx2_2, uk_avx2_3, uk_avx2_4, uk_avx2_5,
};

static void gelu_avx512(float *x, int64_t n, int approx);
static void epi_tile_avx512(float *c, int64_t ldc, int64_t m, int64_t n, const float *bias,
                            int act);
static void gelu_avx2(float *x, int64_t n, int approx);
#endif

#if defined(__aarch64__)
#include <arm_neon.h>

/* NEON 8x12: 24 accumulators of 4 floats, 3 loads of B and 8 scalars of A
 * (by-element FMAs) per 24 FMAs.  Same contract as uk512_body. */
__attribute__((always_inline))
static inline void ukneon_body(const int R, int64_t kc, const float *a, int64_t rs, int64_t ks,
                               const float *b, int64_t bs, float *c, int64_t ldc, float alpha,
                               float beta, const pf_t *pf)
{
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs,
	            *a5 = a + 5 * rs, *a6 = a + 6 * rs, *a7 = a + 7 * rs;
	float32x4_t b0, b1, b2;
#define ROW_DECL(r) float32x4_t c##r##0 = vdupq_n_f32(0.0f), c##r##1 = c##r##0, c##r##2 = c##r##0;
	ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3)
	ROW_DECL(4) ROW_DECL(5) ROW_DECL(6) ROW_DECL(7)
#undef ROW_DECL
#define ROW_FMA(r, ka) if (r < R) { float ar = a##r[ka]; \
		c##r##0 = vfmaq_n_f32(c##r##0, b0, ar); \
		c##r##1 = vfmaq_n_f32(c##r##1, b1, ar); \
		c##r##2 = vfmaq_n_f32(c##r##2, b2, ar); }
#define STEP(ka, bo) { \
		b0 = vld1q_f32(b + (bo)); b1 = vld1q_f32(b + (bo) + 4); b2 = vld1q_f32(b + (bo) + 8); \
		ROW_FMA(0, ka) ROW_FMA(1, ka) ROW_FMA(2, ka) ROW_FMA(3, ka) \
		ROW_FMA(4, ka) ROW_FMA(5, ka) ROW_FMA(6, ka) ROW_FMA(7, ka) }
	int64_t k = 0, ka = 0;
	for (; k + 4 <= kc; k += 4, ka += 4 * ks, b += 4 * bs) {
		PF_ONE()
		STEP(ka, 0) STEP(ka + ks, bs) STEP(ka + 2 * ks, 2 * bs) STEP(ka + 3 * ks, 3 * bs)
	}
	for (; k < kc; k++, ka += ks, b += bs)
		STEP(ka, 0)
#undef STEP
#undef ROW_FMA
#define ST1(r, q) if (beta == 0.0f) \
			vst1q_f32(cr + 4 * q, vmulq_n_f32(c##r##q, alpha)); \
		else \
			vst1q_f32(cr + 4 * q, vfmaq_n_f32(vmulq_n_f32(vld1q_f32(cr + 4 * q), beta), \
			                                  c##r##q, alpha));
#define ROW_ST(r) if (r < R) { float *cr = c + r * ldc; ST1(r, 0) ST1(r, 1) ST1(r, 2) }
	ROW_ST(0) ROW_ST(1) ROW_ST(2) ROW_ST(3)
	ROW_ST(4) ROW_ST(5) ROW_ST(6) ROW_ST(7)
#undef ROW_ST
#undef ST1
}

#define UKNEON(R) \
static void uk_neon_##R(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b, \
                        int64_t bs, float *c, int64_t ldc, float alpha, float beta, \
                        const pf_t *pf) \
{ \
	if (ks == 1) \
		ukneon_body(R, kc, a, rs, 1, b, bs, c, ldc, alpha, beta, pf); \
	else \
		ukneon_body(R, kc, a, 1, 8, b, bs, c, ldc, alpha, beta, pf); \
}
UKNEON(8)
UKNEON(7)
UKNEON(6)
UKNEON(5)
UKNEON(4)
UKNEON(3)
UKNEON(2)
UKNEON(1)
#undef UKNEON
#define uk_neon uk_neon_8

static const ukernel_fn tailneon[8] = {
	NULL, uk_neon_1, uk_neon_2, uk_neon_3, uk_neon_4, uk_neon_5, uk_neon_6, uk_neon_7,
};

static void add_neon(float *c, const float *b, int64_t n);
static void gelu_neon(float *x, int64_t n, int approx);
#endif

static void uk_c(int64_t kc, const float *a, int64_t rs, int64_t ks, const float *b,
                 int64_t bs, float *c, int64_t ldc, float alpha, float beta, const pf_t *pf)
{
	(void)pf;
	float acc[4][16] = {{0}};
	for (int64_t k = 0; k < kc; k++, a += ks, b += bs)
		for (int r = 0; r < 4; r++)
			for (int j = 0; j < 16; j++)
				acc[r][j] += a[r * rs] * b[j];
	for (int r = 0; r < 4; r++)
		for (int j = 0; j < 16; j++)
			c[r * ldc + j] = alpha * acc[r][j] + (beta == 0.0f ? 0.0f : beta * c[r * ldc + j]);
}

/* best first; the last is the portable one */
static const ukernel kernels[] = {
#if defined(__x86_64__)
	{ "avx512", 8, 48, uk_avx512, tail512, 2, NULL, gelu_avx512, epi_tile_avx512 },
	{ "avx2", 6, 16, uk_avx2, tail256, 1, NULL, gelu_avx2, epi_tile_avx2 },
#elif defined(__aarch64__)
	{ "neon", 8, 12, uk_neon, tailneon, 1, add_neon, gelu_neon, NULL },
#endif
	{ "c", 4, 16, uk_c, NULL, 1, NULL, NULL, NULL },
};
#define NKERNELS (sizeof kernels / sizeof kernels[0])

static bool cpu_can(const ukernel *k)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (k->fn == uk_avx512)
		return vm_have_avx512();
	if (k->fn == uk_avx2)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
	(void)k;
	return true;     /* C, and NEON (every aarch64 Linux has it) */
}

static const ukernel *forced;   /* rt_sgemm_use */
static const ukernel *chosen;   /* best for this CPU, set once (racy but idempotent) */

static const ukernel *ukernel_get(void)
{
	const ukernel *k = __atomic_load_n(&forced, __ATOMIC_RELAXED);
	if (k)
		return k;
	k = __atomic_load_n(&chosen, __ATOMIC_RELAXED);
	if (k)
		return k;
	k = &kernels[NKERNELS - 1];
	for (size_t i = 0; i < NKERNELS; i++)
		if (cpu_can(&kernels[i])) {
			k = &kernels[i];
			break;
		}
	__atomic_store_n(&chosen, k, __ATOMIC_RELAXED);
	return k;
}

const char *rt_sgemm_kernel(void)
{
	return ukernel_get()->name;
}

int rt_sgemm_use(const char *name)
{
	if (!name) {
		__atomic_store_n(&forced, NULL, __ATOMIC_RELAXED);
		return 0;
	}
	for (size_t i = 0; i < NKERNELS; i++)
		if (!strcmp(kernels[i].name, name)) {
			if (!cpu_can(&kernels[i]))
				return -1;
			__atomic_store_n(&forced, &kernels[i], __ATOMIC_RELAXED);
			return 0;
		}
	return -1;
}

static int64_t ceil_div(int64_t a, int64_t b)
{
	return (a + b - 1) / b;
}

static int64_t round_up(int64_t a, int64_t b)
{
	return ceil_div(a, b) * b;
}

/* ---- cache blocking ----
 * kc (K step), mc (most rows of a block), nc (most columns).  With weights
 * in panels (rt_sgemm_panels: nothing to pack) set once from the CPU's
 * cache sizes (blocking_default); with op(B) packed at run time (rt_sgemm,
 * and bf16 panels widened per block) KC, MC, NC: each row block packs its
 * B slices again, and mc 72 (the L2 choice below) made rt_sgemm 4-28%
 * slower on BERT shapes.  rt_sgemm_blocking forces one for both.  A job
 * copies them when it starts. */
typedef struct blocking {
	int64_t kc, mc, nc;
} blocking;

static blocking blk_forced;    /* rt_sgemm_blocking; kc 0: none */
static blocking blk_chosen;    /* from the caches, set once (racy but idempotent) */

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* From the per-core L2 (sysconf, which reads cpuid on x86): a long K step
 * (the C block is re-read once per step, and each micro-kernel call's
 * fixed cost is spread over more FMAs), the A block (mc x kc, read in
 * place or packed) about half of L2, the kc rows of one weight panel
 * (kc x 48 floats) streaming through the rest.  On a 512 KB L2 (Zen 3)
 * that is kc 768, mc 72: kc 768 instead of 256 measured 5-8% faster on
 * BERT-base's GEMMs (M 128..1024, K 768 and 3072, 1 and 2 threads); mc
 * from 72 to 192 made no difference measurable there.  Without a size
 * (0 or an error): KC, MC, NC. */
static blocking blocking_default(void)
{
	blocking b = { KC, MC, NC };
#if defined(_SC_LEVEL2_CACHE_SIZE)
	long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
	if (l2 >= 64 * 1024 && l2 <= 64L * 1024 * 1024) {
		b.kc = clamp64(l2 / 640 / 64 * 64, 128, K_PANEL);
		b.mc = clamp64(l2 / 2 / (b.kc * 4) / 24 * 24, 24, 384);
	}
#endif
	return b;
}

static blocking blocking_get(bool panels)
{
	blocking b;
	b.kc = __atomic_load_n(&blk_forced.kc, __ATOMIC_RELAXED);
	if (b.kc) {
		b.mc = __atomic_load_n(&blk_forced.mc, __ATOMIC_RELAXED);
		b.nc = __atomic_load_n(&blk_forced.nc, __ATOMIC_RELAXED);
		return b;
	}
	if (!panels)
		return (blocking){ KC, MC, NC };
	if (!__atomic_load_n(&blk_chosen.kc, __ATOMIC_RELAXED)) {
		b = blocking_default();
		__atomic_store_n(&blk_chosen.mc, b.mc, __ATOMIC_RELAXED);
		__atomic_store_n(&blk_chosen.nc, b.nc, __ATOMIC_RELAXED);
		__atomic_store_n(&blk_chosen.kc, b.kc, __ATOMIC_RELAXED);
		return b;
	}
	b.kc = __atomic_load_n(&blk_chosen.kc, __ATOMIC_RELAXED);
	b.mc = __atomic_load_n(&blk_chosen.mc, __ATOMIC_RELAXED);
	b.nc = __atomic_load_n(&blk_chosen.nc, __ATOMIC_RELAXED);
	return b;
}

void rt_sgemm_blocking(int64_t kc, int64_t mc, int64_t nc)
{
	if (kc <= 0) {
		__atomic_store_n(&blk_forced.kc, 0, __ATOMIC_RELAXED);
		return;
	}
	/* mc a multiple of every MR (8, 6, 4), nc of every NR (48, 16) */
	__atomic_store_n(&blk_forced.mc, round_up(clamp64(mc, 1, 1 << 16), 24), __ATOMIC_RELAXED);
	__atomic_store_n(&blk_forced.nc, round_up(clamp64(nc, 1, 1 << 16), 48), __ATOMIC_RELAXED);
	__atomic_store_n(&blk_forced.kc, clamp64(kc, 1, 1 << 16), __ATOMIC_RELAXED);
}

void rt_sgemm_blocking_get(int64_t *kc, int64_t *mc, int64_t *nc)
{
	blocking b = blocking_get(true);
	*kc = b.kc;
	*mc = b.mc;
	*nc = b.nc;
}

/* A K step of at most `most` that splits K evenly (a multiple of mult,
 * K > 0): 768 = 1 x 768, not 640 + 128 */
static int64_t even_step(int64_t K, int64_t most, int64_t mult)
{
	int64_t even = round_up(ceil_div(K, ceil_div(K, most)), mult);
	return even < most ? even : most;
}

/* ---- per-thread packing buffers ----
 * mc x kc floats for A and kc x nc for B; grown when a job's blocking needs
 * more.  A 64-byte header before the floats holds their count. */

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static bool buf_key_ok;

static void buf_init(void)
{
	buf_key_ok = pthread_key_create(&buf_key, free) == 0;
}

static float *thread_buf(size_t floats)
{
	pthread_once(&buf_once, buf_init);
	if (!buf_key_ok)
		return NULL;
	char *p = pthread_getspecific(buf_key);
	size_t have = 0;
	if (p)
		memcpy(&have, p, sizeof have);
	if (have < floats) {
		size_t bytes = (64 + floats * sizeof(float) + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN;
		char *q = aligned_alloc(RT_ALIGN, bytes);
		if (!q || pthread_setspecific(buf_key, q)) {
			free(q);
			return NULL;    /* the old buffer stays with the thread */
		}
		free(p);
		p = q;
		memcpy(p, &floats, sizeof floats);
	}
	return (float *)(p + 64);
}

/* ---- packing ---- */

typedef struct sg_job {
	const ukernel *uk;
	bool ta, tb;
	int64_t M, N, K;
	float alpha, beta;
	const float *A, *B;
	const float *Bp;               /* op(B) in the panel layout of rt.h, or NULL */
	const uint16_t *Bh;            /* op(B) in the bf16 panel layout of rt.h, or NULL */
	bool bf16;                     /* Bh read by block_bf16 (else expanded by pack_b) */
	bool bfw;                      /* ... widened in registers (ukbw), not by vdpbf16ps */
	const uint32_t *Ah;            /* then op(A) in bf16 pairs, rows of (K + 1) / 2; with
	                                  bfw, A rounded to bf16 as f32, rows of K rounded up
	                                  to even (a zero after an odd K) */
	int64_t lda, ldb, ldc;
	float *C;
	const rt_gemm_epi *epi;
	int64_t kc, bmc, bnc;          /* blocking (blocking_get) when the job started */
	int64_t kcb;                   /* bf16 K step forced (rt_sgemm_blocking, even), or 0 */
	int64_t mc, ncp;               /* block rows; most panels (nr columns) a block has */
	int64_t np, nunit, next;       /* panels along N; row blocks x np; next unit (atomic) */
	int T;                         /* threads taking blocks */
} sg_job;

/* op(A)[i0 .. i0+m, k0 .. k0+kc] into panels of mr rows: panel p holds,
 * for each k, the mr values of rows p*mr ..; rows past m are zero. */
static void pack_a(const sg_job *j, int64_t i0, int64_t m, int64_t k0, int64_t kc, float *dst)
{
	int mr = j->uk->mr;
	for (int64_t p = 0; p < m; p += mr, dst += mr * kc) {
		int64_t rows = m - p < mr ? m - p : mr;
		if (rows < mr)
			memset(dst, 0, (size_t)(mr * kc) * sizeof(float));
		if (!j->ta) {
			for (int64_t r = 0; r < rows; r++) {
				const float *src = j->A + (i0 + p + r) * j->lda + k0;
				for (int64_t k = 0; k < kc; k++)
					dst[k * mr + r] = src[k];
			}
		} else {
			for (int64_t k = 0; k < kc; k++) {
				const float *src = j->A + (k0 + k) * j->lda + i0 + p;
				for (int64_t r = 0; r < rows; r++)
					dst[k * mr + r] = src[r];
			}
		}
	}
}

/* op(B)[k0 .. k0+kc, j0 .. j0+n] into panels of nr columns: panel q holds,
 * for each k, the nr values of columns q*nr ..; columns past n are zero. */
static void pack_b(const sg_job *j, int64_t k0, int64_t kc, int64_t j0, int64_t n, float *dst)
{
	int nr = j->uk->nr;
	if (j->Bh) {
		/* bf16 panels on a CPU (or kernel) without AVX512_BF16: widened */
		int64_t kpad = (j->K + 1) / 2 * 2;
		for (int64_t q = 0; q < n; q += nr, dst += nr * kc)
			for (int64_t k = 0; k < kc; k++)
				for (int64_t c = 0; c < nr; c++) {
					int64_t col = j0 + q + c, row = k0 + k;
					uint32_t u = 0;
					if (q + c < n)
						u = (uint32_t)j->Bh[col / RT_GEMM_PANEL * kpad * RT_GEMM_PANEL +
						                    row / 2 * 2 * RT_GEMM_PANEL +
						                    col % RT_GEMM_PANEL * 2 + row % 2] << 16;
					memcpy(&dst[k * nr + c], &u, sizeof u);
				}
		return;
	}
	if (!j->tb) {
		/* row by row: one contiguous read of n floats per k */
		int64_t full = n / nr * nr;
		for (int64_t k = 0; k < kc; k++) {
			const float *src = j->B + (k0 + k) * j->ldb + j0;
			if (k + 1 < kc)
				for (int64_t q = 0; q < n; q += 16)
					__builtin_prefetch(src + j->ldb + q);
			for (int64_t q = 0; q < full; q += nr)
				memcpy(dst + q * kc + k * nr, src + q, (size_t)nr * sizeof(float));
			if (full < n) {
				float *d = dst + full * kc + k * nr;
				memcpy(d, src + full, (size_t)(n - full) * sizeof(float));
				memset(d + n - full, 0, (size_t)(nr - (n - full)) * sizeof(float));
			}
		}
		return;
	}
	for (int64_t q = 0; q < n; q += nr, dst += nr * kc) {
		int64_t cols = n - q < nr ? n - q : nr;
		{
			if (cols < nr)
				memset(dst, 0, (size_t)(nr * kc) * sizeof(float));
			for (int64_t c = 0; c < cols; c++) {
				const float *src = j->B + (j0 + q + c) * j->ldb + k0;
				for (int64_t k = 0; k < kc; k++)
					dst[k * nr + c] = src[k];
			}
		}
	}
}

/* ---- epilogue ---- */

static inline float gelu_erf1(float x)
{
	return 0.5f * x * (1.0f + erff(x * (float)M_SQRT1_2));
}

static inline float gelu_tanh1(float x)
{
	return 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
}

/* QuickGELU x * sigmoid(1.702 x), as x / (1 + exp(-1.702 x)) (the
 * standalone kernel's formula: -inf gives NaN, as -inf * sigmoid(-inf)) */
static inline float gelu_quick1(float x)
{
	return x / (1.0f + expf(-QUICK_K * x));
}

/* rt_gelu_inplace in plain C (approx: 0 erf, 1 tanh, 2 quick) */
static void gelu_c(float *x, int64_t n, int approx)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = approx == 2 ? gelu_quick1(x[i]) : approx ? gelu_tanh1(x[i]) : gelu_erf1(x[i]);
}

#if defined(__x86_64__)
/* 1 + erf(z), 16 lanes: below -0.9277 it is exp(r), above 0.9277 2 - exp(r),
 * else 1 + z P(z^2).  Polynomials: N. Juffa's erff (max error ~1 ulp of
 * erf, so the absolute error of 1 + erf is ~1e-7, as with 1.0f + erff). */
__attribute__((target("avx512f,fma")))
static inline __m512 one_plus_erf16(__m512 z)
{
	__m512 t = _mm512_abs_ps(z), s = _mm512_mul_ps(z, z);
	__m512 r = _mm512_fmadd_ps(_mm512_set1_ps(-1.72853470e-5f), t, _mm512_set1_ps(3.83197126e-4f));
	__m512 u = _mm512_fmadd_ps(_mm512_set1_ps(-3.88396438e-3f), t, _mm512_set1_ps(2.42546219e-2f));
	r = _mm512_fmadd_ps(r, s, u);
	r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-1.06777877e-1f));
	r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-6.34846687e-1f));
	r = _mm512_fmadd_ps(r, t, _mm512_set1_ps(-1.28717512e-1f));
	r = _mm512_fmsub_ps(r, t, t);
	__m512 e = vm_exp16(r);
	__m512 big = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LT_OQ),
	                                  _mm512_sub_ps(_mm512_set1_ps(2.0f), e), e);
	__m512 q = _mm512_set1_ps(-5.96761703e-4f);
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(4.99119423e-3f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-2.67681349e-2f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(1.12819925e-1f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(-3.76125336e-1f));
	q = _mm512_fmadd_ps(q, s, _mm512_set1_ps(1.28379166e-1f));
	q = _mm512_add_ps(_mm512_fmadd_ps(q, z, z), _mm512_set1_ps(1.0f));
	return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(t, _mm512_set1_ps(0.927734375f), _CMP_GT_OQ),
	                            q, big);
}

/* GELU of 16 lanes (approx: 0 erf, 1 tanh, 2 quick; a constant where
 * inlined); NaN in, NaN out (whatever the polynomials make of it) */
__attribute__((target("avx512f,fma"), always_inline))
static inline __m512 gelu16(__m512 v, const int approx)
{
	__m512 y;
	if (approx == 2) {
		__m512 e = vm_exp16(_mm512_mul_ps(v, _mm512_set1_ps(-QUICK_K)));
		y = _mm512_div_ps(v, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
	} else if (approx) {    /* 0.5 v (1 + tanh(u)) = v / (1 + exp(-2u)) */
		__m512 u = _mm512_mul_ps(v, _mm512_fmadd_ps(_mm512_mul_ps(v, v),
		                         _mm512_set1_ps(0.044715f * 0.7978845608028654f),
		                         _mm512_set1_ps(0.7978845608028654f)));
		__m512 e = vm_exp16(_mm512_mul_ps(u, _mm512_set1_ps(-2.0f)));
		y = _mm512_div_ps(v, _mm512_add_ps(e, _mm512_set1_ps(1.0f)));
	} else {
		__m512 h = _mm512_mul_ps(v, _mm512_set1_ps(0.5f));
		y = _mm512_mul_ps(h, one_plus_erf16(
			_mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f))));
	}
	return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

/* GELU over n floats (n may be anything: the tail is masked) */
__attribute__((target("avx512f,fma")))
static void gelu_avx512(float *x, int64_t n, int approx)
{
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 m = vm_tail(n - i);
		_mm512_mask_storeu_ps(x + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i), approx));
	}
}

/* tile_epi for AVX-512, act a constant: c = act(c + bias) in one pass over
 * the tile (the tail columns masked): the same operations as the bias
 * add and gelu_avx512 it replaced (two calls per row), so the results are
 * bit-identical to theirs, except the erf GELU (act 1): as in epi8, that
 * is the rational vm_gelu_erf_fast16 (2.8 ns per 16 lanes against 6.8 for
 * gelu16's erf with an exp, on Zen 5; error below 1.5e-6 (1 + |GELU|),
 * within test_rt_gemm's bounds for the epilogue) */
__attribute__((target("avx512f,fma"), always_inline))
static inline void epi_tile_avx512_body(float *c, int64_t ldc, int64_t m, int64_t n,
                                        const float *bias, const int act)
{
	for (int64_t r = 0; r < m; r++, c += ldc)
		for (int64_t k = 0; k < n; k += 16) {
			__mmask16 mk = vm_tail(n - k);
			__m512 v = _mm512_maskz_loadu_ps(mk, c + k);
			if (bias)
				v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mk, bias + k));
			if (act == 1)
				v = vm_gelu_erf_fast16(v);
			else if (act)
				v = gelu16(v, act - 1);
			_mm512_mask_storeu_ps(c + k, mk, v);
		}
}

__attribute__((target("avx512f,fma")))
static void epi_tile_avx512(float *c, int64_t ldc, int64_t m, int64_t n, const float *bias,
                            int act)
{
	switch (act) {
	case 0: epi_tile_avx512_body(c, ldc, m, n, bias, 0); break;
	case 1: epi_tile_avx512_body(c, ldc, m, n, bias, 1); break;
	case 2: epi_tile_avx512_body(c, ldc, m, n, bias, 2); break;
	default: epi_tile_avx512_body(c, ldc, m, n, bias, 3); break;
	}
}

#endif

#if defined(__aarch64__)
/* one_plus_erf16 in 4 lanes */
static inline float32x4_t one_plus_erf4(float32x4_t z)
{
	float32x4_t t = vabsq_f32(z), s = vmulq_f32(z, z);
	float32x4_t r = vfmaq_f32(vdupq_n_f32(3.83197126e-4f), vdupq_n_f32(-1.72853470e-5f), t);
	float32x4_t u = vfmaq_f32(vdupq_n_f32(2.42546219e-2f), vdupq_n_f32(-3.88396438e-3f), t);
	r = vfmaq_f32(u, r, s);
	r = vfmaq_f32(vdupq_n_f32(-1.06777877e-1f), r, t);
	r = vfmaq_f32(vdupq_n_f32(-6.34846687e-1f), r, t);
	r = vfmaq_f32(vdupq_n_f32(-1.28717512e-1f), r, t);
	r = vfmaq_f32(vnegq_f32(t), r, t);
	float32x4_t e = vm_exp4(r);
	float32x4_t big = vbslq_f32(vcltq_f32(z, vdupq_n_f32(0.0f)), e,
	                            vsubq_f32(vdupq_n_f32(2.0f), e));
	float32x4_t q = vdupq_n_f32(-5.96761703e-4f);
	q = vfmaq_f32(vdupq_n_f32(4.99119423e-3f), q, s);
	q = vfmaq_f32(vdupq_n_f32(-2.67681349e-2f), q, s);
	q = vfmaq_f32(vdupq_n_f32(1.12819925e-1f), q, s);
	q = vfmaq_f32(vdupq_n_f32(-3.76125336e-1f), q, s);
	q = vfmaq_f32(vdupq_n_f32(1.28379166e-1f), q, s);
	q = vaddq_f32(vfmaq_f32(z, q, z), vdupq_n_f32(1.0f));
	return vbslq_f32(vcgtq_f32(t, vdupq_n_f32(0.927734375f)), big, q);
}

/* gelu_avx512 in 4 lanes (the tail through vm_ld4 / vm_st4) */
static void gelu_neon(float *x, int64_t n, int approx)
{
	for (int64_t i = 0; i < n; i += 4) {
		float32x4_t v = vm_ld4(x + i, n - i, 0.0f), y;
		if (approx == 2) {
			float32x4_t e = vm_exp4(vmulq_f32(v, vdupq_n_f32(-QUICK_K)));
			y = vdivq_f32(v, vaddq_f32(e, vdupq_n_f32(1.0f)));
		} else if (approx) {
			float32x4_t u = vmulq_f32(v, vfmaq_f32(vdupq_n_f32(0.7978845608028654f),
			                                       vmulq_f32(v, v),
			                                       vdupq_n_f32(0.044715f * 0.7978845608028654f)));
			float32x4_t e = vm_exp4(vmulq_f32(u, vdupq_n_f32(-2.0f)));
			y = vdivq_f32(v, vaddq_f32(e, vdupq_n_f32(1.0f)));
		} else {
			float32x4_t h = vmulq_f32(v, vdupq_n_f32(0.5f));
			y = vmulq_f32(h, one_plus_erf4(vmulq_f32(v, vdupq_n_f32(0.70710678118654752f))));
		}
		y = vbslq_f32(vceqq_f32(v, v), y, v);      /* NaN in, NaN out */
		vm_st4(x + i, y, n - i);
	}
}

static void add_neon(float *c, const float *b, int64_t n)
{
	int64_t k = 0;
	for (; k + 4 <= n; k += 4)
		vst1q_f32(c + k, vaddq_f32(vld1q_f32(c + k), vld1q_f32(b + k)));
	for (; k < n; k++)
		c[k] += b[k];
}
#endif


void rt_gelu_inplace(float *x, int64_t n, int approx)
{
	const ukernel *k = ukernel_get();
	if (k->gelu) {
		k->gelu(x, n, approx);
		return;
	}
	gelu_c(x, n, approx);
}

/* bias and activation on C[i0 .. i0+m, j0 .. j0+n): the blocks call it
 * on each tile after its last K step, while the tile is in L1 */
static void epilogue(const sg_job *j, int64_t i0, int64_t m, int64_t j0, int64_t n)
{
	const rt_gemm_epi *e = j->epi;
	if (j->uk->tile_epi) {
		j->uk->tile_epi(j->C + i0 * j->ldc + j0, j->ldc, m, n, e->bias ? e->bias + j0 : NULL,
		                e->act);
		return;
	}
	for (int64_t i = i0; i < i0 + m; i++) {
		float *c = j->C + i * j->ldc + j0;
		if (e->bias && j->uk->add)
			j->uk->add(c, e->bias + j0, n);
		else if (e->bias)
			for (int64_t k = 0; k < n; k++)
				c[k] += e->bias[j0 + k];
		if (e->act)
			rt_gelu_inplace(c, n, e->act - 1);
	}
}

/* ---- blocks ---- */

/* Prefetches one micro-kernel call can issue: 2 per 4 k steps (AVX-512),
 * 1 (the others). */
static int64_t pf_cap(const ukernel *uk, int64_t kc)
{
	return kc * uk->pf_per4 / 4;
}

/* The weights stream (j->Bp) is prefetched to L2 one panel ahead of the
 * one in use, in the order the block reads it: its panels one after the
 * other in a K step, then the next K step's, then the first K step of the
 * panels that follow the block (the block this thread takes next when it
 * works alone, a neighbour's with threads: either way those weights come
 * from DRAM behind the FMAs, not after them).  One panel ahead keeps what
 * is in flight small next to A's rows in L2.  This returns the prefetch of
 * the panel after the one holding column col (in [j0, j0+n), K step
 * [k0, k0+KS)), spread over `calls` micro-kernel calls, at most cap lines
 * a call. */
static pf_t pf_panels(const sg_job *j, int64_t k0, int64_t KS, int64_t j0, int64_t n,
                      int64_t col, int64_t calls, int64_t cap)
{
	const int64_t P = RT_GEMM_PANEL, K = j->K;
	pf_t pf = { 0 };
	int64_t k1 = k0, c1 = (col / P + 1) * P;
	if (c1 >= j0 + n) {
		if (k0 + KS < K) {
			k1 = k0 + KS;
			c1 = j0;
		} else {
			k1 = 0;
			c1 = j0 + n;
		}
	}
	if (c1 >= j->N)
		return pf;
	int64_t kc1 = K - k1 < KS ? K - k1 : KS;
	pf.p = (const char *)(j->Bp + (c1 / P * K + k1) * P);
	pf.stride = K * P * 4;
	pf.rowlines = ceil_div(kc1 * P * 4, 64);
	pf.lines = ceil_div(pf.rowlines, calls);
	if (pf.lines > cap)
		pf.lines = cap;
	return pf;
}

/* The C tile a micro-kernel call is about to accumulate into, to L1 for
 * writing: the kernel reads (beta != 0) or writes it only after its K loop,
 * and a block's C (mc x n, re-read every K step) does not stay in L2 next to
 * A's rows, so without this each call ended on a stall of a dozen misses to
 * L3 or DRAM (~10% of a BERT-base GEMM at 1024 rows). */
static inline void prefetch_tile(const float *c, int64_t ldc, int64_t m, int64_t n)
{
	for (int64_t r = 0; r < m; r++) {
		__builtin_prefetch(c + r * ldc, 1, 3);
		__builtin_prefetch(c + r * ldc + n - 1, 1, 3);
	}
}

/* Rows of the next row tile when `left` rows are left.  With R-row
 * variants (split), a short last tile is evened out with the one before
 * it: 6 + 2 rows run as 4 + 4 (128 = 20 x 6 + 2 x 4), since a kernel call
 * on 1 or 2 rows has too few accumulators to hide the FMA latency. */
static int64_t tile_rows(int64_t left, int mr, bool split)
{
	if (left >= mr && !(split && left > mr && left - mr < mr / 2))
		return mr;
	return left > mr ? (left + 1) / 2 : left;
}

/* C block [i0, i0+m) x [j0, j0+n), every K step, using buf. */
static void block(const sg_job *j, int64_t i0, int64_t m, int64_t j0, int64_t n, float *buf)
{
	const ukernel *uk = j->uk;
	int mr = uk->mr, nr = uk->nr;
	float *ap = buf, *bp = buf + j->bmc * j->kc;
	float tile[MR_MAX * NR_MAX];
	int64_t calls = ceil_div(n, nr) * ceil_div(m, mr);
	/* nothing to pack (B in panels, A in place): longer K steps, C
	 * re-read less often; a panel's K_PANEL rows (192 KB) stay in L2 */
	int64_t KS = j->Bp && !j->ta && uk->tail && m <= SMALL_M ? K_PANEL : j->kc;
	for (int64_t k0 = 0; k0 < j->K; k0 += KS) {
		int64_t kc = j->K - k0 < KS ? j->K - k0 : KS;
		float beta = k0 == 0 ? j->beta : 1.0f;
		/* few rows (LXMERT's 20 tokens, 36 regions): each B element is used
		 * by m rows only, packing it would cost about as much as the
		 * product, so row-major op(B) is read in place (full panels; a
		 * partial last panel is packed, zero padded) */
		int64_t nfull = j->Bp || (!j->tb && !j->Bh && m <= SMALL_M) ? n / nr * nr : 0;
		if (!j->Bp && nfull < n)
			pack_b(j, k0, kc, j0 + nfull, n - nfull, bp + nfull * kc);
		/* the op(B) slice of the next K step goes to L2 while this one
		 * computes: the weights stream from DRAM behind the FMAs */
		pf_t pf = { 0 };
		if (!j->Bp && k0 + KS < j->K && !j->Bh) {
			int64_t k1 = k0 + KS, kc1 = j->K - k1 < KS ? j->K - k1 : KS;
			int64_t rows = j->tb ? n : kc1, bytes = (j->tb ? kc1 : n) * 4;
			pf.p = (const char *)(j->tb ? j->B + j0 * j->ldb + k1 : j->B + k1 * j->ldb + j0);
			pf.stride = j->ldb * 4;
			pf.rowlines = ceil_div(bytes, 64);
			pf.lines = ceil_div(rows * pf.rowlines, calls);
			if (pf.lines > pf_cap(uk, kc))    /* what one call can issue */
				pf.lines = pf_cap(uk, kc);
		}
		int64_t pf_left = pf.lines * calls;
		/* op(A) row-major: full row tiles are read in place, and so is
		 * a last partial one where the kernel has an R-row variant;
		 * otherwise that one is packed (zero rows) */
		int64_t mfull = j->ta ? 0 : m / mr * mr;
		bool tail_direct = !j->ta && mfull < m && uk->tail;
		if (mfull < m && !tail_direct)
			pack_a(j, i0 + mfull, m - mfull, k0, kc, ap + mfull * kc);
		for (int64_t jr = 0; jr < n; jr += nr) {
			int64_t nn = n - jr < nr ? n - jr : nr;
			const float *b = bp + jr * kc;
			if (j->Bp && (jr == 0 || (j0 + jr) % RT_GEMM_PANEL == 0)) {
				/* a new panel: prefetch the next one over its calls */
				int64_t col = j0 + jr, end = (col / RT_GEMM_PANEL + 1) * RT_GEMM_PANEL;
				int64_t pcalls = ceil_div((end < j0 + n ? end : j0 + n) - col, nr) *
				                 ceil_div(m, mr);
				pf = pf_panels(j, k0, KS, j0, n, col, pcalls, pf_cap(uk, kc));
				pf_left = pf.lines * pcalls;
			}
			int64_t bs = nr;
			if (j->Bp) {
				int64_t col = j0 + jr;
				b = j->Bp + (col / RT_GEMM_PANEL * j->K + k0) * RT_GEMM_PANEL +
				    col % RT_GEMM_PANEL;
				bs = RT_GEMM_PANEL;
			} else if (jr < nfull) {
				b = j->B + k0 * j->ldb + j0 + jr;
				bs = j->ldb;
			}
			for (int64_t ir = 0, mm; ir < m; ir += mm) {
				mm = tile_rows(m - ir, mr, tail_direct);
				const float *a = ap + ir * kc;
				int64_t rs = 1, ks = mr;
				ukernel_fn fn = uk->fn;
				if (ir < mfull || tail_direct) {
					a = j->A + (i0 + ir) * j->lda + k0;
					rs = j->lda;
					ks = 1;
					if (mm < mr)
						fn = uk->tail[mm];
				}
				float *c = j->C + (i0 + ir) * j->ldc + j0 + jr;
				prefetch_tile(c, j->ldc, mm, nn);
				if ((mm == mr || tail_direct) && nn == nr) {
					if (pf_left > 0) {
						fn(kc, a, rs, ks, b, bs, c, j->ldc, j->alpha, beta, &pf);
						pf_left -= pf.lines;
						pf.line += pf.lines;      /* advance past what was fetched */
						pf.p += pf.line / pf.rowlines * pf.stride;
						pf.line %= pf.rowlines;
					} else {
						fn(kc, a, rs, ks, b, bs, c, j->ldc, j->alpha, beta, NULL);
					}
				} else {
					if (beta != 0.0f)
						for (int64_t r = 0; r < mm; r++)
							memcpy(tile + r * nr, c + r * j->ldc, (size_t)nn * sizeof(float));
					fn(kc, a, rs, ks, b, bs, tile, nr, j->alpha, beta, NULL);
					for (int64_t r = 0; r < mm; r++)
						memcpy(c + r * j->ldc, tile + r * nr, (size_t)nn * sizeof(float));
				}
				if (j->epi && k0 + KS >= j->K)     /* the tile is final and in L1 */
					epilogue(j, i0 + ir, mm, j0 + jr, nn);
			}
		}
	}
}

/* ---- bf16 weights (AVX512_BF16) ----
 * B in the bf16 panel layout of rt.h, A rounded to bf16 pairs once per
 * product (row r's pair p: A[r, 2p], A[r, 2p+1]).  vdpbf16ps adds the two
 * products of a pair to an f32 lane: 64 flops an instruction, twice the
 * f32 FMA's.  x86-64 only; elsewhere bf16 panels are widened (pack_b). */

#if defined(__x86_64__)
static bool cpu_has_bf16(void)
{
	static int known;    /* 0 not asked yet, 1 no, 2 yes (racy but idempotent) */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (!k) {
		__builtin_cpu_init();
		k = vm_have_avx512() && __builtin_cpu_supports("avx512bw") &&
		    __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16") ? 2 : 1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 2;
}

/* vdpbf16ps does 64 flops an instruction, vfmadd231ps 32, but they do not
 * issue at the same rate everywhere: AMD's Zen 4 and 5 run vdpbf16ps as
 * fast as an FMA (twice f32's flops), Intel's Emerald Rapids at a quarter
 * of the FMA's rate (half f32's flops: 89 against 182 GFLOP/s measured;
 * without AMX, bf16 is slower than f32 there).  So the rate is measured
 * once per process: 24 independent chains of each instruction (on zeros:
 * no denormal assists), the best of 7 short runs after a warm-up that
 * wakes the upper AVX-512 lanes, in TSC ticks (the same clock for both).
 * The vdpbf16ps kernel is used where it gives at least 1.25x f32's flops;
 * elsewhere bf16 panels are widened to f32 (the same bf16-rounded
 * operands, f32 FMA).  KILN_BF16_DOT=1 or 0 overrides (the tests force both
 * with rt_sgemm_bf16_use). */
#define Z24(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) \
	F(12) F(13) F(14) F(15) F(16) F(17) F(18) F(19) F(20) F(21) F(22) F(23)
#define ZCLOB "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", \
	"xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", \
	"xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31", "cc"
#define ZZERO(r) "vpxord %%zmm" #r ", %%zmm" #r ", %%zmm" #r "\n\t"
#define ZINIT Z24(ZZERO) "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t"

/* name(it): TSC ticks of `it` rounds of F_name (one instruction) on the 24 chains */
#define TICKS(name, tgt) \
__attribute__((target(tgt))) static uint64_t name(uint64_t it) \
{ \
	uint64_t t0 = __rdtsc(); \
	__asm__ volatile(ZINIT "1:\n\t" Z24(F_##name) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t" \
	                 : "+r"(it) : : ZCLOB); \
	return __rdtsc() - t0; \
}
#define F_fma_ticks(r) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"
#define F_dpbf_ticks(r) "vdpbf16ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"
TICKS(fma_ticks, "avx512f")
TICKS(dpbf_ticks, "avx512f,avx512bf16")

static int bf16_mode;             /* rt_sgemm_bf16_use: 0 measured, 1 vdpbf16ps, 2 widened */
static bool bf16_fast_v;
static pthread_once_t bf16_once = PTHREAD_ONCE_INIT;

static void bf16_measure(void)
{
	const char *e = getenv("KILN_BF16_DOT");
	if (e && (!strcmp(e, "0") || !strcmp(e, "1"))) {
		bf16_fast_v = e[0] == '1';
		return;
	}
	fma_ticks(20000);              /* ~0.1 ms: the wide lanes powered up */
	uint64_t f = UINT64_MAX, b = UINT64_MAX;
	for (int i = 0; i < 7; i++) {
		uint64_t t = fma_ticks(256);
		f = t < f ? t : f;
		t = dpbf_ticks(256);
		b = t < b ? t : b;
	}
	/* flops per tick: 64 / b against 1.25 * 32 / f */
	bf16_fast_v = 8 * (double)f >= 5 * (double)b;
}

static bool bf16_fast(void)
{
	pthread_once(&bf16_once, bf16_measure);
	return bf16_fast_v;
}

/* c[R x 48] (row stride ldc) = a . b (+ c when beta != 0); a: R rows of
 * kp pairs, as = row stride in pairs; b: kp rows of 48 pairs. */
__attribute__((target("avx512f,avx512bf16"), always_inline))
static inline void ukbf_body(const int R, int64_t kp, const uint32_t *a, int64_t as,
                             const uint16_t *b, float *c, int64_t ldc, float beta,
                             const pf_t *pf)
{
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const uint32_t *a0 = a, *a1 = a + as, *a2 = a + 2 * as, *a3 = a + 3 * as,
	               *a4 = a + 4 * as, *a5 = a + 5 * as, *a6 = a + 6 * as, *a7 = a + 7 * as;
	__m512bh b0, b1, b2;
	Z48_DECL8
#define ROW_DP(r, p) if (r < R) { \
		__m512bh ar = (__m512bh)_mm512_set1_epi32((int)a##r[p]); \
		c##r##0 = _mm512_dpbf16_ps(c##r##0, ar, b0); \
		c##r##1 = _mm512_dpbf16_ps(c##r##1, ar, b1); \
		c##r##2 = _mm512_dpbf16_ps(c##r##2, ar, b2); }
#define STEP(p) { \
		const uint16_t *bq = b + (p) * 2 * RT_GEMM_PANEL; \
		b0 = (__m512bh)_mm512_loadu_si512(bq); \
		b1 = (__m512bh)_mm512_loadu_si512(bq + 32); \
		b2 = (__m512bh)_mm512_loadu_si512(bq + 64); \
		ROW_DP(0, p) ROW_DP(1, p) ROW_DP(2, p) ROW_DP(3, p) \
		ROW_DP(4, p) ROW_DP(5, p) ROW_DP(6, p) ROW_DP(7, p) }
	Z48_PAIRS(kp)
#undef STEP
#undef ROW_DP
	Z48_STORE8
}

typedef void (*ukbf_fn)(int64_t kp, const uint32_t *a, int64_t as, const uint16_t *b, float *c,
                        int64_t ldc, float beta, const pf_t *pf);

/* NAME_1 .. NAME_8: NAME_body for 1-8 rows, and the table NAME of them */
#define UKBF_R(name, tgt, R) \
__attribute__((target(tgt))) \
static void name##_##R(int64_t kp, const uint32_t *a, int64_t as, const uint16_t *b, float *c, \
                       int64_t ldc, float beta, const pf_t *pf) \
{ \
	name##_body(R, kp, a, as, b, c, ldc, beta, pf); \
}
#define UKBF_ALL(name, tgt) \
	UKBF_R(name, tgt, 1) UKBF_R(name, tgt, 2) UKBF_R(name, tgt, 3) UKBF_R(name, tgt, 4) \
	UKBF_R(name, tgt, 5) UKBF_R(name, tgt, 6) UKBF_R(name, tgt, 7) UKBF_R(name, tgt, 8) \
	static const ukbf_fn name[9] = { NULL, name##_1, name##_2, name##_3, name##_4, \
	                                 name##_5, name##_6, name##_7, name##_8 };
UKBF_ALL(ukbf, "avx512f,avx512bf16")

/* The same product with bf16 panels widened to f32 in registers, for an
 * AVX-512 CPU where vdpbf16ps is slow or missing: a is A rounded to bf16
 * (as f32), row r at a + r * as floats (as = the row stride, even), pair p
 * at a[2p], a[2p + 1]; each 32-bit pair of the panel gives W[2p, c] (its
 * low half shifted up) and W[2p + 1, c] (its high half masked), two f32
 * FMAs per pair and row: the widened sum of pack_b's path, in the same
 * order, without writing f32 panels (which cost more than the products:
 * 163 against 133 ms for BERT-base b1 on Emerald Rapids) */
__attribute__((target("avx512f"), always_inline))
static inline void ukbw_body(const int R, int64_t kp, const uint32_t *a, int64_t as,
                             const uint16_t *b, float *c, int64_t ldc, float beta,
                             const pf_t *pf)
{
	const char *pp = pf ? pf->p + pf->line * 64 : NULL;
	int64_t pn = pf ? pf->lines : 0;
	const float *a0 = (const float *)a, *a1 = a0 + as, *a2 = a0 + 2 * as, *a3 = a0 + 3 * as,
	            *a4 = a0 + 4 * as, *a5 = a0 + 5 * as, *a6 = a0 + 6 * as, *a7 = a0 + 7 * as;
	const __m512i himask = _mm512_set1_epi32((int)0xffff0000u);
	__m512 w0, w1, w2;
	Z48_DECL8
#define STEP(p) { \
		const uint16_t *bq = b + (p) * 2 * RT_GEMM_PANEL; \
		__m512i v0 = _mm512_loadu_si512(bq), v1 = _mm512_loadu_si512(bq + 32), \
		        v2 = _mm512_loadu_si512(bq + 64); \
		w0 = _mm512_castsi512_ps(_mm512_slli_epi32(v0, 16)); \
		w1 = _mm512_castsi512_ps(_mm512_slli_epi32(v1, 16)); \
		w2 = _mm512_castsi512_ps(_mm512_slli_epi32(v2, 16)); \
		Z48_FMA8(2 * (p), w) \
		w0 = _mm512_castsi512_ps(_mm512_and_si512(v0, himask)); \
		w1 = _mm512_castsi512_ps(_mm512_and_si512(v1, himask)); \
		w2 = _mm512_castsi512_ps(_mm512_and_si512(v2, himask)); \
		Z48_FMA8(2 * (p) + 1, w) }
	Z48_PAIRS(kp)
#undef STEP
	Z48_STORE8
}

UKBF_ALL(ukbw, "avx512f")

/* The AVX512_BF16 kernel is used with the avx512 f32 kernel only, where
 * vdpbf16ps is fast (bf16_fast) or forced. */
static bool bf16_kernel(const ukernel *uk)
{
	if (uk->fn != uk_avx512 || !cpu_has_bf16())
		return false;
	int m = __atomic_load_n(&bf16_mode, __ATOMIC_RELAXED);
	return m == 1 || (m == 0 && bf16_fast());
}

int rt_sgemm_bf16_use(int mode)
{
	if (mode < 0 || mode > 2 || (mode == 1 && !cpu_has_bf16()))
		return -1;
	__atomic_store_n(&bf16_mode, mode, __ATOMIC_RELAXED);
	return 0;
}
#else
static bool bf16_kernel(const ukernel *uk)
{
	(void)uk;
	return false;
}

int rt_sgemm_bf16_use(int mode)
{
	return mode == 0 || mode == 2 ? 0 : -1;
}
#endif

/* A in bf16 pairs for a whole product, converted once (in parallel) for
 * all its blocks: the calling thread's buffer, grown as needed and kept, so
 * repeated shapes allocate nothing.  Freed at thread exit. */
static pthread_key_t pairs_key;
static pthread_once_t pairs_once = PTHREAD_ONCE_INIT;
static bool pairs_key_ok;

typedef struct pairs_buf { size_t cap; uint32_t data[]; } pairs_buf;

static void pairs_init(void)
{
	pairs_key_ok = pthread_key_create(&pairs_key, free) == 0;
}

static uint32_t *pairs_get(size_t n)
{
	pthread_once(&pairs_once, pairs_init);
	if (!pairs_key_ok)
		return NULL;
	pairs_buf *b = pthread_getspecific(pairs_key);
	if (b && b->cap >= n)
		return b->data;
	pairs_buf *nb = malloc(sizeof *nb + n * sizeof(uint32_t));
	if (!nb || pthread_setspecific(pairs_key, nb)) {
		free(nb);
		return NULL;
	}
	free(b);
	nb->cap = n;
	return nb->data;
}

#if defined(__x86_64__)
/* rows [b, e) of A into pairs: row r's pair p is A[r, 2p], A[r, 2p+1] (an
 * odd K's last pair ends in a zero) */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void pairs_rows(void *arg, int64_t b, int64_t e)
{
	const sg_job *j = arg;
	int64_t K = j->K, kp = (K + 1) / 2;
	for (int64_t r = b; r < e; r++) {
		const float *src = j->A + r * j->lda;
		uint16_t *d = (uint16_t *)(j->Ah + r * kp);
		int64_t k = 0;
		for (; k + 32 <= K; k += 32)
			_mm512_storeu_si512(d + k, (__m512i)_mm512_cvtne2ps_pbh(
				_mm512_loadu_ps(src + k + 16), _mm512_loadu_ps(src + k)));
		for (; k < 2 * kp; k += 16) {
			__mmask16 msk = vm_tail(K - k > 0 ? K - k : 0);
			__m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(msk, src + k));
			_mm256_mask_storeu_epi16(d + k, vm_tail(2 * kp - k), (__m256i)h);
		}
	}
}

/* rows [b, e) of A rounded to bf16 (kept as f32) into j->Ah, rows of K
 * rounded up to even, an odd K's last pair ending in a zero (bfw) */
VM_AVX512
static void round_rows_even(void *arg, int64_t b, int64_t e)
{
	const sg_job *j = arg;
	int64_t K = j->K, kpad = (K + 1) / 2 * 2;
	for (int64_t r = b; r < e; r++) {
		float *d = (float *)j->Ah + r * kpad;
		vm_round_bf16_n(d, j->A + r * j->lda, K);
		if (kpad > K)
			d[K] = 0.0f;
	}
}

#endif

/* rows [b, e) of A rounded to bf16 (kept as f32) into j->Ah, rows of K */
static void round_rows(void *arg, int64_t b, int64_t e)
{
	const sg_job *j = arg;
	float *d = (float *)j->Ah;
	for (int64_t r = b; r < e; r++)
		for (int64_t k = 0; k < j->K; k++)
			d[r * j->K + k] = rt_bf16_to_f32(rt_f32_to_bf16(j->A[r * j->lda + k]));
}

/* Most k values a K step of the bf16 blocks takes (evened out over K,
 * unless forced): K 768 in one step of 768 (the C tile written once), 3072
 * in 3 of 1024.  512 (768 as 512 + 256) measured 3-10% slower per
 * CPU-second on BERT-base's K-768 shapes (gemm_bench GEMM_BENCH_BF16 with
 * GEMM_BENCH_VS on Zen 5, 1 MB L2): an A block of MC rows x 1024 k is
 * 384 KB of pairs in L2, a panel's step 96 KB. */
#define KC_BF16 1024
#define KC_BF16_FEW 2048       /* ... with few rows (no more than SMALL_M) */

#if defined(__x86_64__)
/* kp pair rows of a bf16 panel (48 columns) widened into 2 kp rows of 48 f32 */
VM_AVX512
static void widen_panel(const uint16_t *b, int64_t kp, float *w)
{
	const __m512i hi = _mm512_set1_epi32((int)0xffff0000u);
	for (int64_t p = 0; p < kp; p++, b += 2 * RT_GEMM_PANEL, w += 2 * RT_GEMM_PANEL)
		for (int q = 0; q < 3; q++) {
			__m512i v = _mm512_loadu_si512(b + 32 * q);
			_mm512_storeu_ps(w + 16 * q, _mm512_castsi512_ps(_mm512_slli_epi32(v, 16)));
			_mm512_storeu_ps(w + 48 + 16 * q, _mm512_castsi512_ps(_mm512_and_si512(v, hi)));
		}
}

/* block() for bf16 panels on the AVX512_BF16 kernel, or with bfw the
 * widening one (nr 48, j0 a multiple of 48: the avx512 kernel's blocks);
 * A's row stride `as` and offsets count pairs: 32-bit bf16 pairs, or with
 * bfw two f32 (two 32-bit words) each */
static void block_bf16(const sg_job *j, int64_t i0, int64_t m, int64_t j0, int64_t n)
{
	float tile[MR_MAX * NR_MAX];
	const int64_t P = RT_GEMM_PANEL, kpad = (j->K + 1) / 2 * 2, kph = kpad / 2;
	const int64_t w = j->bfw ? 2 : 1, as = kph * w;
	const ukbf_fn *uk = j->bfw ? ukbw : ukbf;
	int64_t KS = m <= SMALL_M ? KC_BF16_FEW : even_step(j->K, KC_BF16, 2);
	if (j->kcb)
		KS = j->kcb;
	/* widened (bfw) with more than SMALL_M rows: each panel's K step
	 * widened once into wb, then the f32 kernel over the block's rows
	 * (BERT-base bf16 on Emerald Rapids, kiln bench 2 x 20 runs: b1 84 ->
	 * 80 ms, b8 653 -> 615 ms); with fewer rows ukbw widens in registers
	 * (LXMERT's 20 and 36 rows: 51 ms, 54 through wb) */
	float *wb = j->bfw && m > SMALL_M ? thread_buf((size_t)(KS + 2) * P) : NULL;
	int64_t calls = ceil_div(n, P) * ceil_div(m, MR_MAX);
	for (int64_t k0 = 0; k0 < j->K; k0 += KS) {
		int64_t kc = j->K - k0 < KS ? j->K - k0 : KS, kp = (kc + 1) / 2;
		float beta = k0 == 0 ? j->beta : 1.0f;
		/* the block's panels' next K step to L2 while this one computes */
		pf_t pf = { 0 };
		if (k0 + KS < j->K) {
			int64_t k1 = k0 + KS, kc1 = j->K - k1 < KS ? j->K - k1 : KS;
			pf.p = (const char *)(j->Bh + (j0 / P * kpad + k1) * P);
			pf.stride = kpad * P * 2;
			pf.rowlines = ceil_div((kc1 + 1) / 2 * 2 * P * 2, 64);
			pf.lines = ceil_div(ceil_div(n, P) * pf.rowlines, calls);
			if (pf.lines > kp / 2)
				pf.lines = kp / 2;
		}
		int64_t pf_left = pf.lines * calls;
		for (int64_t jr = 0; jr < n; jr += P) {
			int64_t nn = n - jr < P ? n - jr : P, col = j0 + jr;
			const uint16_t *b = j->Bh + (col / P * kpad + k0) * P;
			if (wb)
				widen_panel(b, kp, wb);
			for (int64_t ir = 0; ir < m; ir += MR_MAX) {
				int64_t mm = m - ir < MR_MAX ? m - ir : MR_MAX;
				const uint32_t *a = j->Ah + (i0 + ir) * as + k0 / 2 * w;
				float *c = j->C + (i0 + ir) * j->ldc + col;
				/* a partial panel goes through tile (its columns past n
				 * computed on the panel's zeros and dropped) */
				float *cc = nn == P ? c : tile;
				int64_t ldcc = nn == P ? j->ldc : P;
				if (nn < P && beta != 0.0f)
					for (int64_t r = 0; r < mm; r++)
						memcpy(tile + r * P, c + r * j->ldc, (size_t)nn * sizeof(float));
				if (wb) {
					ukernel_fn fn = mm == MR_MAX ? j->uk->fn : j->uk->tail[mm];
					fn(2 * kp, (const float *)a, kpad, 1, wb, P, cc, ldcc, 1.0f, beta, NULL);
				} else if (nn == P && pf_left > 0) {
					uk[mm](kp, a, as, b, cc, ldcc, beta, &pf);
					pf_left -= pf.lines;
					pf.line += pf.lines;
					pf.p += pf.line / pf.rowlines * pf.stride;
					pf.line %= pf.rowlines;
				} else {
					uk[mm](kp, a, as, b, cc, ldcc, beta, NULL);
				}
				if (nn < P)
					for (int64_t r = 0; r < mm; r++)
						memcpy(c + r * j->ldc, tile + r * P, (size_t)nn * sizeof(float));
				if (j->epi && k0 + KS >= j->K)
					epilogue(j, i0 + ir, mm, col, nn);
			}
		}
	}
}

#endif

/* no packing buffer (only when malloc failed): plain loops */
static void block_plain(const sg_job *j, int64_t i0, int64_t m, int64_t j0, int64_t n)
{
	if (j->Bh) {
		int64_t kpad = (j->K + 1) / 2 * 2;
		for (int64_t i = i0; i < i0 + m; i++)
			for (int64_t c = j0; c < j0 + n; c++) {
				const uint16_t *b = j->Bh + c / RT_GEMM_PANEL * kpad * RT_GEMM_PANEL +
				                    c % RT_GEMM_PANEL * 2;
				float acc = 0;
				for (int64_t k = 0; k < j->K; k++) {
					uint32_t u = (uint32_t)b[k / 2 * 2 * RT_GEMM_PANEL + k % 2] << 16;
					float w;
					memcpy(&w, &u, sizeof w);
					acc += j->A[i * j->lda + k] * w;
				}
				j->C[i * j->ldc + c] = acc;
			}
		if (j->epi)
			epilogue(j, i0, m, j0, n);
		return;
	}
	if (j->Bp) {
		for (int64_t i = i0; i < i0 + m; i++)
			for (int64_t c = j0; c < j0 + n; c++) {
				const float *b = j->Bp + c / RT_GEMM_PANEL * j->K * RT_GEMM_PANEL +
				                 c % RT_GEMM_PANEL;
				float acc = 0;
				for (int64_t k = 0; k < j->K; k++)
					acc += j->A[i * j->lda + k] * b[k * RT_GEMM_PANEL];
				j->C[i * j->ldc + c] = acc;
			}
		if (j->epi)
			epilogue(j, i0, m, j0, n);
		return;
	}
	for (int64_t i = i0; i < i0 + m; i++)
		for (int64_t c = j0; c < j0 + n; c++) {
			float acc = 0;
			for (int64_t k = 0; k < j->K; k++)
				acc += (j->ta ? j->A[k * j->lda + i] : j->A[i * j->lda + k]) *
				       (j->tb ? j->B[c * j->ldb + k] : j->B[k * j->ldb + c]);
			float *dst = &j->C[i * j->ldc + c];
			*dst = j->alpha * acc + (j->beta != 0.0f ? j->beta * *dst : 0.0f);
		}
	if (j->epi)
		epilogue(j, i0, m, j0, n);
}

/* The next block: units are (row block, panel) in row-block order; a
 * thread takes about a 2T-th of the units left (guided: at most ncp, at
 * least one, never past its row block), so blocks shrink toward the end
 * and the threads finish together.  Taken dynamically: on a loaded machine
 * a thread that got no CPU for a while leaves its blocks to the others. */
static bool next_block(sg_job *j, int64_t *i0, int64_t *m, int64_t *j0, int64_t *n)
{
	int64_t t = __atomic_load_n(&j->next, __ATOMIC_RELAXED), c;
	do {
		if (t >= j->nunit)
			return false;
		int64_t p = t % j->np, left = j->nunit - t;
		c = j->T > 1 ? left / (2 * j->T) : j->ncp;
		c = c < 1 ? 1 : c > j->ncp ? j->ncp : c;
		if (c > j->np - p)
			c = j->np - p;
	} while (!__atomic_compare_exchange_n(&j->next, &t, t + c, false, __ATOMIC_RELAXED,
	                                      __ATOMIC_RELAXED));
	int nr = j->uk->nr;
	*i0 = t / j->np * j->mc;
	*m = j->M - *i0 < j->mc ? j->M - *i0 : j->mc;
	*j0 = t % j->np * nr;
	*n = j->N - *j0 < c * nr ? j->N - *j0 : c * nr;
	return true;
}

static void sg_worker(void *arg, int64_t b, int64_t e)
{
	(void)b; (void)e;
	sg_job *j = arg;
	float *buf = thread_buf((size_t)(j->bmc * j->kc + j->kc * j->bnc));
	int64_t i0, m, j0, n;
	while (next_block(j, &i0, &m, &j0, &n)) {
#if defined(__x86_64__)
		if (j->bf16)
			block_bf16(j, i0, m, j0, n);
		else
#endif
		if (buf)
			block(j, i0, m, j0, n, buf);
		else
			block_plain(j, i0, m, j0, n);
	}
}

/* ---- few rows, weights in panels, several threads ----
 * With M <= SMALL_M rows (LXMERT's 20 tokens, 36 regions) there is one row
 * block, and the product is bound by how fast the weight panels stream
 * from DRAM.  next_block's guided split hands the threads interleaved
 * blocks of a few panels, so the panel a thread prefetches at the end of
 * a block (the one after it, pf_panels) is mostly a neighbour's, and the
 * first panel of its next block arrives unprefetched.  Here thread t owns
 * the t-th contiguous run of panels, takes them one at a time from the
 * front, and so the panel it prefetches is the one it takes next; one long
 * sequential stream per thread also suits the hardware prefetchers.  A
 * thread whose run is done takes panels from the others' runs (from their
 * fronts: the same counters), so one that got no CPU for a while leaves
 * its panels to the others, as with next_block. */
#define FEW_RUNS 16            /* most threads (runs) the split serves */

typedef struct few_job {
	sg_job *j;
	int runs;
	struct {
		int64_t next, end;     /* this run's next panel (atomic), one past its last */
		char pad[64 - 2 * sizeof(int64_t)];
	} run[FEW_RUNS];
} few_job;

static int few_rows_on = 1;     /* rt_sgemm_few_rows */

int rt_sgemm_few_rows(int on)
{
	return __atomic_exchange_n(&few_rows_on, on != 0, __ATOMIC_RELAXED);
}

static bool few_rows_path(const sg_job *j, int T)
{
	return __atomic_load_n(&few_rows_on, __ATOMIC_RELAXED) && T > 1 && T <= FEW_RUNS &&
	       j->Bp && !j->ta && j->M <= SMALL_M && RT_GEMM_PANEL % j->uk->nr == 0;
}

/* the next panel for the thread owning run t, or -1 */
static int64_t few_next(few_job *f, int t)
{
	for (int r = 0; r < f->runs; r++) {
		int u = (t + r) % f->runs;
		if (__atomic_load_n(&f->run[u].next, __ATOMIC_RELAXED) >= f->run[u].end)
			continue;
		int64_t p = __atomic_fetch_add(&f->run[u].next, 1, __ATOMIC_RELAXED);
		if (p < f->run[u].end)
			return p;
	}
	return -1;
}

static void few_worker(void *arg, int64_t b, int64_t e)
{
	few_job *f = arg;
	const sg_job *j = f->j;
	float *buf = thread_buf((size_t)(j->bmc * j->kc + j->kc * j->bnc));
	for (int64_t t = b; t < e; t++)
		for (int64_t p; (p = few_next(f, (int)t)) >= 0;) {
			int64_t j0 = p * RT_GEMM_PANEL;
			int64_t n = j->N - j0 < RT_GEMM_PANEL ? j->N - j0 : RT_GEMM_PANEL;
			if (buf)
				block(j, 0, j->M, j0, n, buf);
			else
				block_plain(j, 0, j->M, j0, n);
		}
}

/* the panels cut into T contiguous runs, one per thread */
static void run_few(struct rt_pool *pool, sg_job *j, int T)
{
	int64_t np = ceil_div(j->N, RT_GEMM_PANEL);
	few_job f = { .j = j, .runs = T > np ? (int)np : T };
	for (int t = 0; t < f.runs; t++) {
		f.run[t].next = np * t / f.runs;
		f.run[t].end = np * (t + 1) / f.runs;
	}
	rt_parallel_for(pool, f.runs, few_worker, &f);
}

/* C = beta * C (K == 0 or alpha == 0) */
static void scale_c(const sg_job *j)
{
	for (int64_t i = 0; i < j->M; i++) {
		float *c = j->C + i * j->ldc;
		for (int64_t k = 0; k < j->N; k++)
			c[k] = j->beta == 0.0f ? 0.0f : j->beta * c[k];
	}
	if (j->epi)
		epilogue(j, 0, j->M, 0, j->N);
}

/* Cut C into blocks for the pool's threads and run them. */
static void run_job(struct rt_pool *pool, sg_job *j)
{
	if (j->M <= 0 || j->N <= 0)
		return;
	if (j->epi && !j->epi->bias && !j->epi->act)
		j->epi = NULL;
	if (j->K <= 0 || j->alpha == 0.0f) {
		scale_c(j);
		return;
	}
	int T = rt_pool_size(pool);
	/* work below ~1 MFLOP is not worth waking the workers */
	if ((double)j->M * (double)j->N * (double)j->K < 5e5)
		T = 1;
	bool panels = j->Bp != NULL;
	blocking bl = blocking_get(panels);
	/* the chosen K step evened out over K (even_step) */
	j->kc = bl.kc;
	bool forced = __atomic_load_n(&blk_forced.kc, __ATOMIC_RELAXED) != 0;
	j->kcb = forced ? round_up(bl.kc, 2) : 0;     /* whole bf16 pairs */
	if (panels && !forced && j->K > 0)
		j->kc = even_step(j->K, bl.kc, 4);
	j->bmc = bl.mc;
	j->bnc = bl.nc;
	if (few_rows_path(j, T)) {
		run_few(pool, j, T);
		return;
	}
	int mr = j->uk->mr, nr = j->uk->nr;
	int64_t M = j->M, N = j->N;
	/* one row block for up to 5/4 mc rows (BERT b1's M 128 as one block of
	 * 128 rather than two of 64, each streaming the weights) measured 4-7%
	 * slower in wall time at b1 s128 on 2 threads (bench/model_ab.sh, three
	 * rounds of 20 pairs, Zen 5, loaded machine) and was not kept */
	int64_t nib = ceil_div(M, bl.mc), njb = ceil_div(N, bl.nc);
	/* with threads: about 4 blocks per thread where the shape allows it
	 * (blocks at least 2 panels wide), taken dynamically */
	int64_t want = T > 1 ? 4 * (int64_t)T : 1;
	while (nib * njb < want && njb < ceil_div(N, 2 * nr))
		njb++;
	while (nib * njb < want && nib < ceil_div(M, 4 * mr))
		nib++;
	j->mc = round_up(ceil_div(M, nib), mr);
	j->ncp = ceil_div(ceil_div(N, njb), nr);
	j->np = ceil_div(N, nr);
	j->nunit = ceil_div(M, j->mc) * j->np;
	j->T = T;
	int64_t blocks = ceil_div(M, j->mc) * ceil_div(j->np, j->ncp);
	rt_parallel_for(T > 1 ? pool : NULL, T > blocks ? blocks : T, sg_worker, j);
}

void rt_sgemm_epi(struct rt_pool *pool, int transA, int transB, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                  float beta, float *C, int64_t ldc, const rt_gemm_epi *epi)
{
	sg_job j = { .uk = ukernel_get(), .ta = transA != 0, .tb = transB != 0, .M = M, .N = N,
	             .K = K, .alpha = alpha, .beta = beta, .A = A, .B = B, .lda = lda, .ldb = ldb,
	             .ldc = ldc, .C = C, .epi = epi };
	run_job(pool, &j);
}

void rt_sgemm_panels(struct rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                     int64_t lda, const float *Wp, float *C, int64_t ldc, const rt_gemm_epi *epi)
{
	sg_job j = { .uk = ukernel_get(), .M = M, .N = N, .K = K, .alpha = 1.0f, .beta = 0.0f,
	             .A = A, .Bp = Wp, .lda = lda, .ldc = ldc, .C = C, .epi = epi };
	run_job(pool, &j);
}

void rt_sgemm(struct rt_pool *pool, int transA, int transB, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc)
{
	rt_sgemm_epi(pool, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

void rt_sgemm_panels_bf16(struct rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                          int64_t lda, const uint16_t *Wh, float *C, int64_t ldc,
                          const rt_gemm_epi *epi)
{
	sg_job j = { .uk = ukernel_get(), .M = M, .N = N, .K = K, .alpha = 1.0f, .beta = 0.0f,
	             .A = A, .Bh = Wh, .lda = lda, .ldc = ldc, .C = C, .epi = epi };
	bool par = (double)M * (double)K >= 65536;
#if defined(__x86_64__)
	if (bf16_kernel(j.uk) && M > 0 && K > 0) {
		uint32_t *ah = pairs_get((size_t)M * (size_t)((K + 1) / 2));
		if (ah) {      /* else: W widened (block) */
			j.bf16 = true;
			j.Ah = ah;
			rt_parallel_for(par ? pool : NULL, M, pairs_rows, &j);
		}
	} else if (j.uk->fn == uk_avx512 && M > 0 && K > 0) {
		/* vdpbf16ps slow or missing: W widened in registers (ukbw) */
		uint32_t *ah = pairs_get((size_t)M * (size_t)((K + 1) / 2 * 2));
		if (ah) {      /* else: W widened (block) */
			j.bf16 = j.bfw = true;
			j.Ah = ah;
			rt_parallel_for(par ? pool : NULL, M, round_rows_even, &j);
		}
	}
#endif
	float *ar = NULL;
	if (!j.bf16 && M > 0 && K > 0 && (ar = (float *)pairs_get((size_t)M * (size_t)K))) {
		/* no AVX512_BF16: A rounded to bf16 as that kernel does (so a bf16
		 * model computes the same products on every CPU), W widened per
		 * block */
		j.Ah = (const uint32_t *)ar;
		rt_parallel_for(par ? pool : NULL, M, round_rows, &j);
		j.A = ar;
		j.lda = K;
		j.Ah = NULL;
	}
	run_job(pool, &j);
}

const char *rt_sgemm_bf16_kernel(void)
{
	const ukernel *uk = ukernel_get();
	if (bf16_kernel(uk))
		return "avx512bf16";
#if defined(__x86_64__)
	if (uk->fn == uk_avx512)
		return "avx512bf16w";  /* widened in registers */
#endif
	return uk->name;
}
