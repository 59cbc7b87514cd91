/* gemm_int8_x86.c: the x86-64 micro-kernels of the int8 GEMM (gemm_int8.h),
 * each compiled for its own instructions and chosen at run time by
 * gemm_int8.c.  They compute the same exact int32 sums as the portable one:
 *
 *   avx512vnni  8 rows x 48 columns (3 panels a call; 4 rows for the last
 *               rows of a chunk, 2 or 1 panels for the last of N) in
 *               assembly: vpdpbusd zmm, the u8 A quad broadcast x each
 *               panel's 64-byte W quad, 24 accumulators (each panel's quad
 *               loaded once for 8 rows, each broadcast used by 3 panels);
 *               its epilogue (dequant, bias, erf GELU) on AVX-512 over the
 *               tile's whole panels, the AVX2 epilogue's bits
 *   avx512vnni16  the kernel before it (tests, benchmarks): 8 x 16, one
 *               accumulator per row, in intrinsics
 *   avxvnni     4 x 16, VEX vpdpbusd on two ymm per row
 *   avx2-w7     6 x 16 (the last rows of a chunk 4 x 16: "avx2-w7x4"),
 *               each also in a form that prefetches a range (the next
 *               panel, at few rows) a line every 4 quads as it goes,
 *               7-bit weights only: the u8 A quad broadcast x each 32 bytes
 *               of W (8 columns x 4 k) by vpmaddubsw (i16 pair sums, at
 *               most 2 x 255 x 64 = 32640: no saturation), summed to i32 by
 *               vpmaddwd with ones, added with vpaddd: 32 products for two
 *               multiplies, twice "avx2"'s rate
 *   avx2        3 x 16, A as i16: a quad broadcast (64 bits); each 16 bytes
 *               of W (4 columns x 4 k) widened to i16 (vpmovsxbw, once per
 *               panel into a buffer that its row blocks share;
 *               "avx2-narrow", 2 x 16, widens in its loop) and multiplied by
 *               vpmaddwd (pairs summed to i32, exact; the u8 x s8 vpmaddubsw
 *               would saturate at 2 x 255 x 127), added with vpaddd; two i32
 *               lanes per column, added at the end ("avx2x4": 4 x 16 as two
 *               sweeps of 4 x 8, the kernel before "avx2")
 * On this AVX2 machine (Zen 3 class) the vector units issue about 3
 * instructions a cycle, 2 of them multiplies: the 7-bit form's 3
 * instructions per 32 products and the exact form's 2 per 16 are the
 * ceiling, and every broadcast or separate W load is taken from it.  W is
 * therefore read through the multiplies' memory operands (free there) and
 * the rows fill all 16 ymm registers, so one broadcast serves 16 columns. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <string.h>

#include "gemm_int8.h"
#include "vmath.h"

static inline int32_t ld32(const uint8_t *p)
{
	int32_t v;
	memcpy(&v, p, 4);
	return v;
}

static inline int64_t ld64(const int16_t *p)
{
	int64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* ---- quantization of a row of A ---- */

__attribute__((target("avx2")))
void rt_q8_row_range_avx2(const float *x, int64_t K, float *mn, float *mx, int *bad)
{
	__m256 lo = _mm256_setzero_ps(), hi = lo, nan = lo;
	int64_t k = 0;
	for (; k + 8 <= K; k += 8) {
		__m256 v = _mm256_loadu_ps(x + k);
		lo = _mm256_min_ps(lo, v);
		hi = _mm256_max_ps(hi, v);
		nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
	}
	float l[8], h[8];
	_mm256_storeu_ps(l, lo);
	_mm256_storeu_ps(h, hi);
	int b = _mm256_movemask_ps(nan) != 0;
	float a = 0, z = 0;
	for (int i = 0; i < 8; i++) {
		a = l[i] < a ? l[i] : a;
		z = h[i] > z ? h[i] : z;
	}
	for (; k < K; k++) {
		a = x[k] < a ? x[k] : a;
		z = x[k] > z ? x[k] : z;
		b |= x[k] != x[k];
	}
	*mn = a, *mx = z, *bad = b;
}

/* 32 values a step: vcvtps2dq rounds to nearest even (MXCSR's default,
 * as the portable rne), + zp, saturated to i16 then u8 (clamp [0, 255]);
 * the packs interleave 128-bit lanes, the permute restores the order */
__attribute__((target("avx2")))
void rt_q8_quant_u8_avx2(const float *x, int64_t K, float inv, int32_t zp, uint8_t *q)
{
	__m256 vi = _mm256_set1_ps(inv);
	__m256i vz = _mm256_set1_epi32(zp), order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
	int64_t k = 0;
	for (; k + 32 <= K; k += 32) {
		__m256i a = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k), vi)), vz);
		__m256i b = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 8), vi)), vz);
		__m256i c = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 16), vi)), vz);
		__m256i d = _mm256_add_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + k + 24), vi)), vz);
		__m256i u = _mm256_packus_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
		_mm256_storeu_si256((__m256i *)(void *)(q + k), _mm256_permutevar8x32_epi32(u, order));
	}
	float fz = (float)zp;
	for (; k < K; k++) {
		float v = ((x[k] * inv + 12582912.0f) - 12582912.0f) + fz;
		q[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

/* rt_q8_row_range_avx2 in 16 lanes, 32 values a step on two pairs of
 * accumulators, the tail under a mask (zeros: they change neither min(0,
 * .) nor max(0, .)): the same min, max and NaN flag */
__attribute__((target("avx512f")))
void rt_q8_row_range_avx512(const float *x, int64_t K, float *mn, float *mx, int *bad)
{
	__m512 lo = _mm512_setzero_ps(), hi = lo, lo2 = lo, hi2 = lo;
	__mmask16 nan = 0;
	int64_t k = 0;
	for (; k + 32 <= K; k += 32) {
		__m512 v = _mm512_loadu_ps(x + k), w = _mm512_loadu_ps(x + k + 16);
		lo = _mm512_min_ps(lo, v), hi = _mm512_max_ps(hi, v);
		lo2 = _mm512_min_ps(lo2, w), hi2 = _mm512_max_ps(hi2, w);
		nan |= _mm512_cmp_ps_mask(v, w, _CMP_UNORD_Q);
	}
	for (; k < K; k += 16) {
		__m512 v = _mm512_maskz_loadu_ps(vm_tail(K - k), x + k);
		lo = _mm512_min_ps(lo, v), hi = _mm512_max_ps(hi, v);
		nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
	}
	/* (a NaN may have stayed in a lane: the caller drops the range then) */
	lo = _mm512_min_ps(lo, lo2), hi = _mm512_max_ps(hi, hi2);
	*mn = _mm512_reduce_min_ps(lo), *mx = _mm512_reduce_max_ps(hi), *bad = nan != 0;
}

/* rt_q8_quant_u8_avx2 in 16 lanes: vcvtps2dq rounds to nearest even, + zp;
 * 64 values a step through its two saturating packs (i32 -> i16 -> u8, in
 * each 128-bit lane: a dword permute restores the order), the rest 16 at a
 * time clamped to [0, 255] (max with 0, then the unsigned saturating
 * narrowing: what the packs give), the tail under a mask */
__attribute__((target("avx512f,avx512bw")))
void rt_q8_quant_u8_avx512(const float *x, int64_t K, float inv, int32_t zp, uint8_t *q)
{
	__m512 vi = _mm512_set1_ps(inv);
	__m512i vz = _mm512_set1_epi32(zp), zero = _mm512_setzero_si512();
	__m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
	int64_t k = 0;
	for (; k + 64 <= K; k += 64) {
		__m512i a = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k), vi)), vz);
		__m512i b = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k + 16), vi)), vz);
		__m512i c = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k + 32), vi)), vz);
		__m512i d = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + k + 48), vi)), vz);
		__m512i u = _mm512_packus_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
		_mm512_storeu_si512((void *)(q + k), _mm512_permutexvar_epi32(order, u));
	}
	for (; k < K; k += 16) {
		__mmask16 m = vm_tail(K - k);
		__m512i v = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), vi)), vz);
		_mm512_mask_cvtusepi32_storeu_epi8(q + k, m, _mm512_max_epi32(v, zero));
	}
}

/* q[0 .. n) widened to dst[0 .. n), forward, 16 a step: dst may overlap q
 * from below (dst = q - n bytes: each store ends at or before the first
 * byte not yet read) */
__attribute__((target("avx2")))
void rt_q8_widen_u8_avx2(const uint8_t *q, int16_t *dst, int64_t n)
{
	int64_t k = 0;
	for (; k + 16 <= n; k += 16)
		_mm256_storeu_si256((__m256i *)(void *)(dst + k),
		                    _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(q + k))));
	for (; k < n; k++) {
		int16_t v = q[k];
		memcpy(dst + k, &v, sizeof v);
	}
}

/* ---- the epilogue: dequantize, bias, GELU on a tile of 16 columns ---- */

/* The portable dequant's arithmetic, 8 columns at a time (no FMA: the
 * same roundings, so the same bits): c = (acc - zp wsum) (sa scale) + bias,
 * the columns' wsum, scale and bias loaded once per tile */
__attribute__((target("avx2")))
static inline __m256 deq8(const int32_t *acc, __m256i zp, __m256i wsum, __m256 sa, __m256 scale,
                          const __m256 *bias)
{
	__m256i a = _mm256_sub_epi32(_mm256_loadu_si256((const __m256i *)(const void *)acc),
	                             _mm256_mullo_epi32(zp, wsum));
	__m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(a), _mm256_mul_ps(sa, scale));
	return bias ? _mm256_add_ps(v, *bias) : v;
}

/* GELU of the dequantized tile t (mr rows of 16 floats, in L1) into C: one
 * call a tile (its rows' chains overlap), in a function of its own so that
 * FMA stays out of deq8's roundings */
VM_AVX2
static void gelu_tile(const float *t, int mr, float *C, int64_t ldc, int act)
{
	/* the erf GELU on two rows (four vectors) at a time: their long
	 * dependency chains overlap (a row at a time left the FMA pipes idle:
	 * about 17% more time per 6 x 16 tile, measured by its own) */
	int r = 0;
	if (act == 1)
		for (; r + 2 <= mr; r += 2) {
			__m256 v[4];
			for (int i = 0; i < 4; i++)
				v[i] = vm_gelu_erf_fast8(_mm256_loadu_ps(t + r * RT_Q8_NR + 8 * i));
			for (int i = 0; i < 4; i++)
				_mm256_storeu_ps(C + (r + i / 2) * ldc + 8 * (i % 2), v[i]);
		}
	for (; r < mr; r++) {
		__m256 a = _mm256_loadu_ps(t + r * RT_Q8_NR), b = _mm256_loadu_ps(t + r * RT_Q8_NR + 8);
		if (act == 1) {
			a = vm_gelu_erf_fast8(a), b = vm_gelu_erf_fast8(b);
		} else {
			a = vm_gelu8(a, act - 1), b = vm_gelu8(b, act - 1);
		}
		_mm256_storeu_ps(C + r * ldc, a);
		_mm256_storeu_ps(C + r * ldc + 8, b);
	}
}

__attribute__((target("avx2")))
void rt_q8_dequant16_avx2(const int32_t *acc, int mr, float *C, int64_t ldc, const float *sa,
                          const int32_t *zp, const int32_t *wsum, const float *scale,
                          const float *bias, int act)
{
	float t[16 * RT_Q8_NR];   /* with a GELU (1 erf, 2 tanh, 3 QuickGELU): C written once */
	__m256i w0 = _mm256_loadu_si256((const __m256i *)(const void *)wsum);
	__m256i w1 = _mm256_loadu_si256((const __m256i *)(const void *)(wsum + 8));
	__m256 s0 = _mm256_loadu_ps(scale), s1 = _mm256_loadu_ps(scale + 8);
	__m256 b[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
	if (bias)
		b[0] = _mm256_loadu_ps(bias), b[1] = _mm256_loadu_ps(bias + 8);
	for (int r = 0; r < mr; r++) {
		float *c = act ? t + r * RT_Q8_NR : C + r * ldc;
		__m256i z = _mm256_set1_epi32(zp[r]);
		__m256 s = _mm256_set1_ps(sa[r]);
		_mm256_storeu_ps(c, deq8(acc + r * RT_Q8_NR, z, w0, s, s0, bias ? &b[0] : NULL));
		_mm256_storeu_ps(c + 8, deq8(acc + r * RT_Q8_NR + 8, z, w1, s, s1, bias ? &b[1] : NULL));
	}
	if (act)
		gelu_tile(t, mr, C, ldc, act);
}

/* deq8 in 16 lanes (mul then add, unfused: the same bits) */
__attribute__((target("avx512f")))
static inline __m512 deq16(const int32_t *acc, __m512i zp, __m512i wsum, __m512 sa, __m512 scale,
                           __m512 bias, bool has_bias)
{
	__m512i a = _mm512_sub_epi32(_mm512_loadu_si512((const void *)acc), _mm512_mullo_epi32(zp, wsum));
	__m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(a), _mm512_mul_ps(sa, scale));
	return has_bias ? _mm512_add_ps(v, bias) : v;
}

/* gemm_int8.h: the tile's whole panels, a row of 16 columns at a time */
__attribute__((target("avx512f,fma")))
void rt_q8_dequant_avx512(const int32_t *acc, int MR, int mr, int np, float *C, int64_t ldc,
                          const float *sa, const int32_t *zp, const int32_t *wsum,
                          const float *scale, const float *bias, int act)
{
	for (int g = 0; g < np; g++) {
		__m512i w = _mm512_loadu_si512((const void *)(wsum + 16 * g));
		__m512 s = _mm512_loadu_ps(scale + 16 * g);
		__m512 b = bias ? _mm512_loadu_ps(bias + 16 * g) : _mm512_setzero_ps();
		const int32_t *a = acc + g * MR * RT_Q8_NR;
		for (int r = 0; r < mr; r++) {
			__m512 v = deq16(a + r * RT_Q8_NR, _mm512_set1_epi32(zp[r]), w, _mm512_set1_ps(sa[r]),
			                 s, b, bias != NULL);
			_mm512_storeu_ps(C + r * ldc + 16 * g, act ? vm_gelu_erf_fast16(v) : v);
		}
	}
}

/* ---- AVX512_VNNI ---- */

/* The kernel before "avx512vnni" (tests and benchmarks: "avx512vnni16"):
 * 8 rows x one panel, one zmm accumulator per row, a broadcast per
 * vpdpbusd */
__attribute__((target("avx512f,avx512vnni")))
static void k_avx512vnni16(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	const uint8_t *r0 = a[0], *r1 = a[1], *r2 = a[2], *r3 = a[3];
	const uint8_t *r4 = a[4], *r5 = a[5], *r6 = a[6], *r7 = a[7];
	__m512i c0 = _mm512_setzero_si512(), c1 = c0, c2 = c0, c3 = c0, c4 = c0, c5 = c0, c6 = c0,
		c7 = c0;
	for (int64_t q = 0; q < kq; q++) {
		__m512i w = _mm512_loadu_si512((const void *)(wp + q * 64));
		int64_t o = 4 * q;
		c0 = _mm512_dpbusd_epi32(c0, _mm512_set1_epi32(ld32(r0 + o)), w);
		c1 = _mm512_dpbusd_epi32(c1, _mm512_set1_epi32(ld32(r1 + o)), w);
		c2 = _mm512_dpbusd_epi32(c2, _mm512_set1_epi32(ld32(r2 + o)), w);
		c3 = _mm512_dpbusd_epi32(c3, _mm512_set1_epi32(ld32(r3 + o)), w);
		c4 = _mm512_dpbusd_epi32(c4, _mm512_set1_epi32(ld32(r4 + o)), w);
		c5 = _mm512_dpbusd_epi32(c5, _mm512_set1_epi32(ld32(r5 + o)), w);
		c6 = _mm512_dpbusd_epi32(c6, _mm512_set1_epi32(ld32(r6 + o)), w);
		c7 = _mm512_dpbusd_epi32(c7, _mm512_set1_epi32(ld32(r7 + o)), w);
	}
	_mm512_storeu_si512((void *)(acc + 0 * 16), c0);
	_mm512_storeu_si512((void *)(acc + 1 * 16), c1);
	_mm512_storeu_si512((void *)(acc + 2 * 16), c2);
	_mm512_storeu_si512((void *)(acc + 3 * 16), c3);
	_mm512_storeu_si512((void *)(acc + 4 * 16), c4);
	_mm512_storeu_si512((void *)(acc + 5 * 16), c5);
	_mm512_storeu_si512((void *)(acc + 6 * 16), c6);
	_mm512_storeu_si512((void *)(acc + 7 * 16), c7);
}

/* "avx512vnni": R rows (8, or 4 for the last rows of a chunk) x P panels
 * (3, or 2 or 1 for the last panels of N) in assembly.  zmm0-23: panel g,
 * row r's 16 sums (zmm 8g + r); zmm24-26 the quad of panel g (loaded once,
 * for all R rows); zmm27-31 the rows' A quads (broadcast).  Per quad of
 * the full kernel: 3 loads and 8 broadcasts for 24 vpdpbusd, each of
 * which has 24 / 2 (two a cycle) = 12 cycles for its chain's latency.
 * The sums go to acc + 16 (8g + r) (panel g's tile at acc + 128 g). */
#define VD(w, x, c) "vpdpbusd %%zmm" #w ", %%zmm" #x ", %%zmm" #c "\n\t"
#define VB(r, x) "vpbroadcastd (%[a" #r "], %[o]), %%zmm" #x "\n\t"
#define VR1(r, x, c0, c1, c2) VB(r, x) VD(24, x, c0)
#define VR2(r, x, c0, c1, c2) VR1(r, x, c0, c1, c2) VD(25, x, c1)
#define VR3(r, x, c0, c1, c2) VR2(r, x, c0, c1, c2) VD(26, x, c2)
#define VROWS4(R) R(0, 27, 0, 8, 16) R(1, 28, 1, 9, 17) R(2, 29, 2, 10, 18) R(3, 30, 3, 11, 19)
#define VROWS8(R) \
	VROWS4(R) R(4, 31, 4, 12, 20) R(5, 27, 5, 13, 21) R(6, 28, 6, 14, 22) R(7, 29, 7, 15, 23)
#define VW1 "vmovdqu64 (%[w]), %%zmm24\n\t"
#define VW2 VW1 "vmovdqu64 (%[w], %[ps]), %%zmm25\n\t"
#define VW3 VW2 "vmovdqu64 (%[w], %[ps], 2), %%zmm26\n\t"
#define VS(c) "vmovdqu64 %%zmm" #c ", 64 * " #c "(%[o])\n\t"
#define VS1_4 VS(0) VS(1) VS(2) VS(3)
#define VS1_8 VS1_4 VS(4) VS(5) VS(6) VS(7)
#define VS2_4 VS1_4 VS(8) VS(9) VS(10) VS(11)
#define VS2_8 VS1_8 VS(8) VS(9) VS(10) VS(11) VS(12) VS(13) VS(14) VS(15)
#define VS3_4 VS2_4 VS(16) VS(17) VS(18) VS(19)
#define VS3_8 VS2_8 VS(16) VS(17) VS(18) VS(19) VS(20) VS(21) VS(22) VS(23)
#define VZ(c) "vpxord %%xmm" #c ", %%xmm" #c ", %%xmm" #c "\n\t"
#define VZERO \
	VZ(0) VZ(1) VZ(2) VZ(3) VZ(4) VZ(5) VZ(6) VZ(7) VZ(8) VZ(9) VZ(10) VZ(11) VZ(12) VZ(13) \
	VZ(14) VZ(15) VZ(16) VZ(17) VZ(18) VZ(19) VZ(20) VZ(21) VZ(22) VZ(23)
#define VA4 [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3])
#define VA8 VA4, [a4] "r"(a[4]), [a5] "r"(a[5]), [a6] "r"(a[6]), [a7] "r"(a[7])
/* the loop; after it o takes acc's address (one register fewer: 12 in
 * all, 13 with pf).  The _pf forms also prefetch to L2 a line from pf a
 * quad (kq lines: a panel a call) */
#define VPF_ARG , const int8_t *pf
#define VPF_OP , [pf] "+r"(pf)
#define VPF_I "prefetcht1 (%[pf])\n\tadd $64, %[pf]\n\t"
#define VKERNEL(NAME, R, P, PARG, POP, PI) \
	__attribute__((target("avx512f,avx512vnni"))) \
	static void NAME(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc PARG) \
	{ \
		int64_t o = 0, n = kq, ps = kq * 64; \
		__asm__ volatile( \
			VZERO \
			"test %[n], %[n]\n\tjz 2f\n\t" \
			"1:\n\t" \
			PI VW##P VROWS##R(VR##P) \
			"add $4, %[o]\n\tadd $64, %[w]\n\t" \
			"dec %[n]\n\tjnz 1b\n\t" \
			"2:\n\t" \
			"mov %[acc], %[o]\n\t" \
			VS##P##_##R \
			"vzeroupper\n\t" \
			: [o] "+r"(o), [w] "+r"(wp), [n] "+r"(n) POP \
			: VA##R, [ps] "r"(ps), [acc] "m"(acc) \
			: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
			  "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", \
			  "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", \
			  "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "cc", \
			  "memory"); \
	}
VKERNEL(k_vnni_8x3, 8, 3, , , )
VKERNEL(k_vnni_8x2, 8, 2, , , )
VKERNEL(k_vnni_8x1, 8, 1, , , )
VKERNEL(k_vnni_4x3, 4, 3, , , )
VKERNEL(k_vnni_4x2, 4, 2, , , )
VKERNEL(k_vnni_4x1, 4, 1, , , )
VKERNEL(k_vnni_8x3_pf, 8, 3, VPF_ARG, VPF_OP, VPF_I)
VKERNEL(k_vnni_4x3_pf, 4, 3, VPF_ARG, VPF_OP, VPF_I)
#undef VKERNEL
#undef VPF_I
#undef VPF_OP
#undef VPF_ARG
#undef VA8
#undef VA4
#undef VZERO
#undef VZ
#undef VS3_8
#undef VS3_4
#undef VS2_8
#undef VS2_4
#undef VS1_8
#undef VS1_4
#undef VS
#undef VW3
#undef VW2
#undef VW1
#undef VROWS8
#undef VROWS4
#undef VR3
#undef VR2
#undef VR1
#undef VB
#undef VD

/* 8 x 48, its 4-row form for the last rows of a chunk, and both on the
 * last 1 or 2 panels of N */
const rt_q8_ukernel rt_q8_avx512vnni = {"avx512vnni", k_vnni_8x3, 8, 0, NULL, NULL, 0, k_vnni_4x3,
                                        4, k_vnni_8x3_pf, k_vnni_4x3_pf, 3,
                                        {k_vnni_8x1, k_vnni_8x2}, {k_vnni_4x1, k_vnni_4x2}};
/* the kernel before it alone (benchmarks, tests) */
const rt_q8_ukernel rt_q8_avx512vnni16 = {"avx512vnni16", k_avx512vnni16, 8, 0, NULL, NULL, 0, NULL,
                                          0, NULL, NULL, 1, {NULL, NULL}, {NULL, NULL}};

/* ---- AVX-VNNI ---- */

__attribute__((target("avx2,avxvnni")))
static void k_avxvnni(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	const uint8_t *r0 = a[0], *r1 = a[1], *r2 = a[2], *r3 = a[3];
	__m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
		c30 = c00, c31 = c00;
	for (int64_t q = 0; q < kq; q++) {
		__m256i w0 = _mm256_loadu_si256((const __m256i *)(wp + q * 64));
		__m256i w1 = _mm256_loadu_si256((const __m256i *)(wp + q * 64 + 32));
		int64_t o = 4 * q;
		__m256i x = _mm256_set1_epi32(ld32(r0 + o));
		c00 = _mm256_dpbusd_avx_epi32(c00, x, w0);
		c01 = _mm256_dpbusd_avx_epi32(c01, x, w1);
		x = _mm256_set1_epi32(ld32(r1 + o));
		c10 = _mm256_dpbusd_avx_epi32(c10, x, w0);
		c11 = _mm256_dpbusd_avx_epi32(c11, x, w1);
		x = _mm256_set1_epi32(ld32(r2 + o));
		c20 = _mm256_dpbusd_avx_epi32(c20, x, w0);
		c21 = _mm256_dpbusd_avx_epi32(c21, x, w1);
		x = _mm256_set1_epi32(ld32(r3 + o));
		c30 = _mm256_dpbusd_avx_epi32(c30, x, w0);
		c31 = _mm256_dpbusd_avx_epi32(c31, x, w1);
	}
	__m256i *o = (__m256i *)(void *)acc;
	_mm256_storeu_si256(o + 0, c00);
	_mm256_storeu_si256(o + 1, c01);
	_mm256_storeu_si256(o + 2, c10);
	_mm256_storeu_si256(o + 3, c11);
	_mm256_storeu_si256(o + 4, c20);
	_mm256_storeu_si256(o + 5, c21);
	_mm256_storeu_si256(o + 6, c30);
	_mm256_storeu_si256(o + 7, c31);
}

const rt_q8_ukernel rt_q8_avxvnni = {"avxvnni", k_avxvnni, 4, 0, NULL, NULL, 0, NULL, 0, NULL, NULL,
                                     1, {NULL, NULL}, {NULL, NULL}};

/* ---- AVX2 on 7-bit weights: u8 x s8 -> i16 pairs (vpmaddubsw) ---- */

/* In assembly for the same reason as k_avx2 below.  ymm0-7: row r's
 * columns 0-7 (ymm 2r) and 8-15 (ymm 2r+1), one i32 sum per column;
 * ymm8/9 the quad of W (columns 0-7, 8-15); ymm10 i16 ones; ymm11 the
 * row's A quad; ymm12/13 products.  Two quads a step, the rows addressed
 * by one offset (fewer scalar instructions beside the 48 vector ones),
 * then the odd quad. */
__attribute__((target("avx2")))
static void k_avx2_w7_pf(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc,
                         const int8_t *pf)
{
	const uint8_t *r0 = a[0], *r1 = a[1], *r2 = a[2], *r3 = a[3];
	static const int16_t ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	int64_t n2 = kq / 2, odd = kq & 1, o = 0;
#define ROW(ra, d, c0, c1) \
	"vpbroadcastd " #d "(%[" #ra "], %[o]), %%ymm11\n\t" \
	"vpmaddubsw %%ymm8, %%ymm11, %%ymm12\n\t" \
	"vpmaddubsw %%ymm9, %%ymm11, %%ymm13\n\t" \
	"vpmaddwd %%ymm10, %%ymm12, %%ymm12\n\t" \
	"vpmaddwd %%ymm10, %%ymm13, %%ymm13\n\t" \
	"vpaddd %%ymm12, %%ymm" #c0 ", %%ymm" #c0 "\n\t" \
	"vpaddd %%ymm13, %%ymm" #c1 ", %%ymm" #c1 "\n\t"
#define QUAD(d, wo) \
	"vmovdqu " #wo "(%[w]), %%ymm8\n\t" \
	"vmovdqu " #wo "+32(%[w]), %%ymm9\n\t" \
	ROW(a0, d, 0, 1) ROW(a1, d, 2, 3) ROW(a2, d, 4, 5) ROW(a3, d, 6, 7)
	__asm__ volatile(
		"vmovdqu (%[ones]), %%ymm10\n\t"
		"vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
		"vpxor %%ymm2, %%ymm2, %%ymm2\n\tvpxor %%ymm3, %%ymm3, %%ymm3\n\t"
		"vpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
		"vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\t"
		"test %[n2], %[n2]\n\tjz 2f\n\t"
		"1:\n\t"
		"prefetcht1 (%[pf], %[o], 4)\n\t"
		QUAD(0, 0) QUAD(4, 64)
		"add $8, %[o]\n\tsub $-128, %[w]\n\t"
		"dec %[n2]\n\tjnz 1b\n\t"
		"2:\n\t"
		"test %[odd], %[odd]\n\tjz 3f\n\t"
		QUAD(0, 0)
		"3:\n\t"
		"vmovdqu %%ymm0, (%[acc])\n\tvmovdqu %%ymm1, 32(%[acc])\n\t"
		"vmovdqu %%ymm2, 64(%[acc])\n\tvmovdqu %%ymm3, 96(%[acc])\n\t"
		"vmovdqu %%ymm4, 128(%[acc])\n\tvmovdqu %%ymm5, 160(%[acc])\n\t"
		"vmovdqu %%ymm6, 192(%[acc])\n\tvmovdqu %%ymm7, 224(%[acc])\n\t"
		"vzeroupper\n\t"
		: [o] "+r"(o), [w] "+r"(wp), [n2] "+r"(n2)
		: [a0] "r"(r0), [a1] "r"(r1), [a2] "r"(r2), [a3] "r"(r3), [odd] "r"(odd),
		  [acc] "r"(acc), [ones] "r"(ones), [pf] "r"(pf)
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "cc", "memory");
#undef QUAD
#undef ROW
}

static void k_avx2_w7(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	k_avx2_w7_pf(kq, a, wp, acc, wp);
}

/* 6 rows x 16 columns: all 16 ymm registers.  ymm0-11: row r's columns
 * 0-7 (ymm 2r) and 8-15 (ymm 2r+1); ymm12 i16 ones; ymm13 the row's A
 * quad; ymm14/15 products.  W is read by vpmaddubsw's memory operand (the
 * loads ride on the multiplies: no vector instruction of their own), so
 * per quad 6 broadcasts serve 36 multiply / add instructions (the 4-row
 * kernel: 6 loads and broadcasts for 24).  One quad a step. */
__attribute__((target("avx2")))
static void k_avx2_w7_6_pf(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc,
                           const int8_t *pf)
{
	static const int16_t ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	int64_t o = 0;
#define ROW(ra, c0, c1) \
	"vpbroadcastd (%[" #ra "], %[o]), %%ymm13\n\t" \
	"vpmaddubsw (%[w]), %%ymm13, %%ymm14\n\t" \
	"vpmaddubsw 32(%[w]), %%ymm13, %%ymm15\n\t" \
	"vpmaddwd %%ymm12, %%ymm14, %%ymm14\n\t" \
	"vpmaddwd %%ymm12, %%ymm15, %%ymm15\n\t" \
	"vpaddd %%ymm14, %%ymm" #c0 ", %%ymm" #c0 "\n\t" \
	"vpaddd %%ymm15, %%ymm" #c1 ", %%ymm" #c1 "\n\t"
	__asm__ volatile(
		"vmovdqu (%[ones]), %%ymm12\n\t"
		"vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
		"vpxor %%ymm2, %%ymm2, %%ymm2\n\tvpxor %%ymm3, %%ymm3, %%ymm3\n\t"
		"vpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
		"vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\t"
		"vpxor %%ymm8, %%ymm8, %%ymm8\n\tvpxor %%ymm9, %%ymm9, %%ymm9\n\t"
		"vpxor %%ymm10, %%ymm10, %%ymm10\n\tvpxor %%ymm11, %%ymm11, %%ymm11\n\t"
		"test %[n], %[n]\n\tjz 2f\n\t"
		"1:\n\t"
		"prefetcht1 (%[pf], %[o], 4)\n\t"
		ROW(a0, 0, 1) ROW(a1, 2, 3) ROW(a2, 4, 5) ROW(a3, 6, 7) ROW(a4, 8, 9) ROW(a5, 10, 11)
		"add $4, %[o]\n\tadd $64, %[w]\n\t"
		"dec %[n]\n\tjnz 1b\n\t"
		"2:\n\t"
		"vmovdqu %%ymm0, (%[acc])\n\tvmovdqu %%ymm1, 32(%[acc])\n\t"
		"vmovdqu %%ymm2, 64(%[acc])\n\tvmovdqu %%ymm3, 96(%[acc])\n\t"
		"vmovdqu %%ymm4, 128(%[acc])\n\tvmovdqu %%ymm5, 160(%[acc])\n\t"
		"vmovdqu %%ymm6, 192(%[acc])\n\tvmovdqu %%ymm7, 224(%[acc])\n\t"
		"vmovdqu %%ymm8, 256(%[acc])\n\tvmovdqu %%ymm9, 288(%[acc])\n\t"
		"vmovdqu %%ymm10, 320(%[acc])\n\tvmovdqu %%ymm11, 352(%[acc])\n\t"
		"vzeroupper\n\t"
		: [o] "+r"(o), [w] "+r"(wp), [n] "+r"(kq)
		: [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [a3] "r"(a[3]), [a4] "r"(a[4]),
		  [a5] "r"(a[5]), [acc] "r"(acc), [ones] "r"(ones), [pf] "r"(pf)
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef ROW
}

static void k_avx2_w7_6(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	k_avx2_w7_6_pf(kq, a, wp, acc, wp);
}

/* the 6-row kernel, the 4-row one for the last rows of a chunk (M = 20: 6
 * + 6 + 6 + 2 rows would compute 24); both prefetch in their loops */
const rt_q8_ukernel rt_q8_avx2_w7 = {"avx2-w7", k_avx2_w7_6, 6, 0, NULL, NULL, 1, k_avx2_w7, 4,
                                     k_avx2_w7_6_pf, k_avx2_w7_pf, 1, {NULL, NULL}, {NULL, NULL}};
/* the 4-row kernel alone (benchmarks, tests) */
const rt_q8_ukernel rt_q8_avx2_w7x4 = {"avx2-w7x4", k_avx2_w7, 4, 0, NULL, NULL, 1, NULL, 0,
                                       k_avx2_w7_pf, NULL, 1, {NULL, NULL}, {NULL, NULL}};

/* the 7-bit check of a panel: max |w| over 32 bytes at a time */
__attribute__((target("avx2")))
static int w7_ok_avx2(const int8_t *w, int64_t n)
{
	__m256i mx = _mm256_setzero_si256();
	int64_t i = 0;
	for (; i + 32 <= n; i += 32)
		mx = _mm256_max_epu8(mx, _mm256_abs_epi8(_mm256_loadu_si256((const __m256i *)(const void *)(w + i))));
	/* abs(-128) is 0x80: 128 unsigned, caught as > 64 */
	__m256i over = _mm256_cmpeq_epi8(_mm256_max_epu8(mx, _mm256_set1_epi8(RT_Q8_W7MAX)),
	                                 _mm256_set1_epi8(RT_Q8_W7MAX));
	int ok = _mm256_movemask_epi8(over) == -1;
	for (; i < n; i++)
		ok &= w[i] >= -RT_Q8_W7MAX && w[i] <= RT_Q8_W7MAX;
	return ok;
}

int rt_q8_w7_ok(const int8_t *w, int64_t n)
{
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2"))
		return w7_ok_avx2(w, n);
	for (int64_t i = 0; i < n; i++)
		if (w[i] < -RT_Q8_W7MAX || w[i] > RT_Q8_W7MAX)
			return 0;
	return 1;
}

/* ---- AVX2 (exact: i16 x i16 -> i32 pairs) ---- */

/* Two accumulators of 4 columns x 2 partial sums -> 8 columns in order */
__attribute__((target("avx2")))
static inline void store_pairs(int32_t *dst, __m256i lo, __m256i hi)
{
	__m256i h = _mm256_hadd_epi32(lo, hi);   /* cols 0 1 4 5 | 2 3 6 7 */
	_mm256_storeu_si256((__m256i *)(void *)dst, _mm256_permute4x64_epi64(h, 0xD8));
}

/* the panel (kq quads of 64 int8) widened to i16, once per panel for all
 * its row blocks (so the inner loop is loads, vpmaddwd and vpaddd only) */
__attribute__((target("avx2")))
static void widen_avx2(int64_t kq, const int8_t *wp, int16_t *dst)
{
	for (int64_t i = 0; i < kq * 64; i += 16)
		_mm256_storeu_si256((__m256i *)(void *)(dst + i),
		                    _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(wp + i))));
}

/* The inner loop in assembly: GCC's allocation of the accumulators,
 * products and broadcasts copied every accumulator once per step, which
 * made the loop front-end bound.  4 rows x 16 columns as two sweeps over K
 * of 4 rows x 8 columns (half h: the widened quad's bytes 64h .. 64h+63,
 * columns 8h .. 8h+7), so one pair of W loads serves 4 rows (6 loads per
 * 16 vector instructions; 2 x 16 loaded W per row).  ymm0-7: row r's
 * columns 8h .. 8h+3 (ymm 2r) and 8h+4 .. 8h+7 (ymm 2r+1), two partial
 * sums per column; ymm8/9 the half quad of W; ymm10 the row's quad (four
 * i16, broadcast); ymm11/12 products. */
__attribute__((target("avx2")))
static void k_avx2_half(int64_t kq, const int16_t *const *r, const int16_t *wp, int32_t *t)
{
	int64_t o = 0;
#define ROW(ra, c0, c1) \
	"vpbroadcastq (%[" #ra "], %[o]), %%ymm10\n\t" \
	"vpmaddwd %%ymm8, %%ymm10, %%ymm11\n\t" \
	"vpmaddwd %%ymm9, %%ymm10, %%ymm12\n\t" \
	"vpaddd %%ymm11, %%ymm" #c0 ", %%ymm" #c0 "\n\t" \
	"vpaddd %%ymm12, %%ymm" #c1 ", %%ymm" #c1 "\n\t"
	__asm__ volatile(
		"vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
		"vpxor %%ymm2, %%ymm2, %%ymm2\n\tvpxor %%ymm3, %%ymm3, %%ymm3\n\t"
		"vpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
		"vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\t"
		"test %[n], %[n]\n\tjz 2f\n\t"
		"1:\n\t"
		"vmovdqu (%[w]), %%ymm8\n\t"
		"vmovdqu 32(%[w]), %%ymm9\n\t"
		ROW(a0, 0, 1) ROW(a1, 2, 3) ROW(a2, 4, 5) ROW(a3, 6, 7)
		"add $8, %[o]\n\tsub $-128, %[w]\n\t"
		"dec %[n]\n\tjnz 1b\n\t"
		"2:\n\t"
		"vmovdqu %%ymm0, (%[t])\n\tvmovdqu %%ymm1, 32(%[t])\n\t"
		"vmovdqu %%ymm2, 128(%[t])\n\tvmovdqu %%ymm3, 160(%[t])\n\t"
		"vmovdqu %%ymm4, 256(%[t])\n\tvmovdqu %%ymm5, 288(%[t])\n\t"
		"vmovdqu %%ymm6, 384(%[t])\n\tvmovdqu %%ymm7, 416(%[t])\n\t"
		"vzeroupper\n\t"
		: [o] "+r"(o), [w] "+r"(wp), [n] "+r"(kq)
		: [a0] "r"(r[0]), [a1] "r"(r[1]), [a2] "r"(r[2]), [a3] "r"(r[3]), [t] "r"(t)
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "cc", "memory");
#undef ROW
}

__attribute__((target("avx2")))
static void k_avx2(int64_t kq, const void *const *a, const int8_t *wp8, int32_t *acc)
{
	const int16_t *r[4] = {a[0], a[1], a[2], a[3]};
	const int16_t *wp = (const int16_t *)(const void *)wp8;   /* widened (widen_avx2) */
	int32_t t[4 * 32];   /* row r, group g of 4 columns: 8 lanes at t[32 r + 8 g] */
	k_avx2_half(kq, r, wp, t);
	k_avx2_half(kq, r, wp + 32, t + 16);
	/* each group: 4 columns x 2 partial sums */
	for (int i = 0; i < 4; i++)
		for (int c = 0; c < RT_Q8_NR; c++)
			acc[i * RT_Q8_NR + c] = t[i * 32 + (c / 4) * 8 + (c % 4) * 2] +
			                        t[i * 32 + (c / 4) * 8 + (c % 4) * 2 + 1];
}

/* the same from the int8 panel (vpmovsxbw in the loop): when no memory
 * for the widened panel could be had */
__attribute__((target("avx2")))
static void k_avx2_narrow(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	const int16_t *r0 = a[0], *r1 = a[1];
	__m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00;
	__m256i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
	for (int64_t q = 0; q < kq; q++) {
		const __m128i *w = (const __m128i *)(const void *)(wp + q * 64);
		__m256i x0 = _mm256_set1_epi64x(ld64(r0 + 4 * q));
		__m256i x1 = _mm256_set1_epi64x(ld64(r1 + 4 * q));
		__m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w));
		__m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w + 1));
		c00 = _mm256_add_epi32(_mm256_madd_epi16(x0, w0), c00);
		c10 = _mm256_add_epi32(_mm256_madd_epi16(x1, w0), c10);
		c01 = _mm256_add_epi32(_mm256_madd_epi16(x0, w1), c01);
		c11 = _mm256_add_epi32(_mm256_madd_epi16(x1, w1), c11);
		__m256i w2 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w + 2));
		__m256i w3 = _mm256_cvtepi8_epi16(_mm_loadu_si128(w + 3));
		c02 = _mm256_add_epi32(_mm256_madd_epi16(x0, w2), c02);
		c12 = _mm256_add_epi32(_mm256_madd_epi16(x1, w2), c12);
		c03 = _mm256_add_epi32(_mm256_madd_epi16(x0, w3), c03);
		c13 = _mm256_add_epi32(_mm256_madd_epi16(x1, w3), c13);
	}
	store_pairs(acc, c00, c01);
	store_pairs(acc + 8, c02, c03);
	store_pairs(acc + 16, c10, c11);
	store_pairs(acc + 24, c12, c13);
}

/* k_avx2_narrow on 4 rows (rt_q8_avx2's MR) */
static void k_avx2_narrow4(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	k_avx2_narrow(kq, a, wp, acc);
	k_avx2_narrow(kq, a + 2, wp, acc + 2 * RT_Q8_NR);
}

/* 3 rows x 16 columns in one sweep over K: ymm0-11 row r's columns 4g ..
 * 4g+3 (ymm 4r+g), two partial sums per column; ymm12 the row's quad (four
 * i16, broadcast); ymm13-15 products.  The widened W is read by vpmaddwd's
 * memory operand (no load instruction of its own): per quad 3 broadcasts
 * serve 24 multiply / add instructions (k_avx2_half: 6 loads and
 * broadcasts for 16). */
__attribute__((target("avx2")))
static void k_avx2_3(int64_t kq, const void *const *a, const int8_t *wp8, int32_t *acc)
{
	int32_t t[3 * 32];   /* row r, group g of 4 columns: 8 lanes at t[32 r + 8 g] */
	int64_t o = 0;
#define ROW(ra, c0, c1, c2, c3) \
	"vpbroadcastq (%[" #ra "], %[o]), %%ymm12\n\t" \
	"vpmaddwd (%[w]), %%ymm12, %%ymm13\n\t" \
	"vpmaddwd 32(%[w]), %%ymm12, %%ymm14\n\t" \
	"vpmaddwd 64(%[w]), %%ymm12, %%ymm15\n\t" \
	"vpaddd %%ymm13, %%ymm" #c0 ", %%ymm" #c0 "\n\t" \
	"vpmaddwd 96(%[w]), %%ymm12, %%ymm13\n\t" \
	"vpaddd %%ymm14, %%ymm" #c1 ", %%ymm" #c1 "\n\t" \
	"vpaddd %%ymm15, %%ymm" #c2 ", %%ymm" #c2 "\n\t" \
	"vpaddd %%ymm13, %%ymm" #c3 ", %%ymm" #c3 "\n\t"
	__asm__ volatile(
		"vpxor %%ymm0, %%ymm0, %%ymm0\n\tvpxor %%ymm1, %%ymm1, %%ymm1\n\t"
		"vpxor %%ymm2, %%ymm2, %%ymm2\n\tvpxor %%ymm3, %%ymm3, %%ymm3\n\t"
		"vpxor %%ymm4, %%ymm4, %%ymm4\n\tvpxor %%ymm5, %%ymm5, %%ymm5\n\t"
		"vpxor %%ymm6, %%ymm6, %%ymm6\n\tvpxor %%ymm7, %%ymm7, %%ymm7\n\t"
		"vpxor %%ymm8, %%ymm8, %%ymm8\n\tvpxor %%ymm9, %%ymm9, %%ymm9\n\t"
		"vpxor %%ymm10, %%ymm10, %%ymm10\n\tvpxor %%ymm11, %%ymm11, %%ymm11\n\t"
		"test %[n], %[n]\n\tjz 2f\n\t"
		"1:\n\t"
		ROW(a0, 0, 1, 2, 3) ROW(a1, 4, 5, 6, 7) ROW(a2, 8, 9, 10, 11)
		"add $8, %[o]\n\tsub $-128, %[w]\n\t"
		"dec %[n]\n\tjnz 1b\n\t"
		"2:\n\t"
		"vmovdqu %%ymm0, (%[t])\n\tvmovdqu %%ymm1, 32(%[t])\n\t"
		"vmovdqu %%ymm2, 64(%[t])\n\tvmovdqu %%ymm3, 96(%[t])\n\t"
		"vmovdqu %%ymm4, 128(%[t])\n\tvmovdqu %%ymm5, 160(%[t])\n\t"
		"vmovdqu %%ymm6, 192(%[t])\n\tvmovdqu %%ymm7, 224(%[t])\n\t"
		"vmovdqu %%ymm8, 256(%[t])\n\tvmovdqu %%ymm9, 288(%[t])\n\t"
		"vmovdqu %%ymm10, 320(%[t])\n\tvmovdqu %%ymm11, 352(%[t])\n\t"
		"vzeroupper\n\t"
		: [o] "+r"(o), [w] "+r"(wp8), [n] "+r"(kq)
		: [a0] "r"(a[0]), [a1] "r"(a[1]), [a2] "r"(a[2]), [t] "r"(t)
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc", "memory");
#undef ROW
	for (int i = 0; i < 3; i++)
		for (int c = 0; c < RT_Q8_NR; c++)
			acc[i * RT_Q8_NR + c] = t[i * 32 + (c / 4) * 8 + (c % 4) * 2] +
			                        t[i * 32 + (c / 4) * 8 + (c % 4) * 2 + 1];
}

/* k_avx2_narrow on 3 rows (rt_q8_avx2's MR): rows 0-1, then row 2 twice */
static void k_avx2_narrow3(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	const void *r2[2] = {a[2], a[2]};
	int32_t t[2 * RT_Q8_NR];
	k_avx2_narrow(kq, a, wp, acc);
	k_avx2_narrow(kq, r2, wp, t);
	memcpy(acc + 2 * RT_Q8_NR, t, sizeof(int32_t) * RT_Q8_NR);
}

const rt_q8_ukernel rt_q8_avx2 = {"avx2", k_avx2_3, 3, 1, widen_avx2, k_avx2_narrow3, 0, NULL, 0, NULL, NULL,
                                  1, {NULL, NULL}, {NULL, NULL}};
/* never the best (avx2 is); tests and benchmarks select them by name: the
 * 4-row two-sweep kernel, the one that widens in its loop */
const rt_q8_ukernel rt_q8_avx2x4 = {"avx2x4", k_avx2, 4, 1, widen_avx2, k_avx2_narrow4, 0, NULL, 0, NULL,
                                    NULL, 1, {NULL, NULL}, {NULL, NULL}};
const rt_q8_ukernel rt_q8_avx2_narrow = {"avx2-narrow", k_avx2_narrow, 2, 1, NULL, NULL, 0, NULL, 0,
                                         NULL, NULL, 1, {NULL, NULL}, {NULL, NULL}};

#else
#include "gemm_int8.h"

int rt_q8_w7_ok(const int8_t *w, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (w[i] < -RT_Q8_W7MAX || w[i] > RT_Q8_W7MAX)
			return 0;
	return 1;
}
#endif
