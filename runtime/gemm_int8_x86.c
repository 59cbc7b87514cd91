/* gemm_int8_x86.c: the x86-64 micro-kernels of the int8 GEMM (gemm_int8.h),
 * each compiled for its own instructions and chosen at run time by
 * gemm_int8.c.  They compute the same exact int32 sums as the portable one:
 *
 *   avx512vnni  8 rows x 16 columns, vpdpbusd zmm (u8 A quad broadcast x
 *               the 64-byte W quad), one accumulator per row
 *   avxvnni     4 x 16, VEX vpdpbusd on two ymm per row
 *   avx2        2 x 16, A as i16: a quad broadcast (64 bits); each 16 bytes
 *               of W (4 columns x 4 k) widened to i16 (vpmovsxbw) and
 *               multiplied by vpmaddwd (pairs summed to i32, exact; the
 *               u8 x s8 vpmaddubsw would saturate at 2 x 255 x 127), added
 *               with vpaddd; two i32 lanes per column, added at the end. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#include "gemm_int8.h"

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

/* ---- AVX512_VNNI ---- */

__attribute__((target("avx512f,avx512vnni")))
static void k_avx512vnni(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
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

const rt_q8_ukernel rt_q8_avx512vnni = {"avx512vnni", k_avx512vnni, 8, 0};

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

const rt_q8_ukernel rt_q8_avxvnni = {"avxvnni", k_avxvnni, 4, 0};

/* ---- AVX2 (exact: i16 x i16 -> i32 pairs) ---- */

/* Two accumulators of 4 columns x 2 partial sums -> 8 columns in order */
__attribute__((target("avx2")))
static inline void store_pairs(int32_t *dst, __m256i lo, __m256i hi)
{
	__m256i h = _mm256_hadd_epi32(lo, hi);   /* cols 0 1 4 5 | 2 3 6 7 */
	_mm256_storeu_si256((__m256i *)(void *)dst, _mm256_permute4x64_epi64(h, 0xD8));
}

__attribute__((target("avx2")))
static void k_avx2(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	const int16_t *r0 = a[0], *r1 = a[1];
	__m256i c00 = _mm256_setzero_si256(), c01 = c00, c02 = c00, c03 = c00;
	__m256i c10 = c00, c11 = c00, c12 = c00, c13 = c00;
	for (int64_t q = 0; q < kq; q++) {
		const int8_t *w = wp + q * 64;
		__m256i x0 = _mm256_set1_epi64x(ld64(r0 + 4 * q));
		__m256i x1 = _mm256_set1_epi64x(ld64(r1 + 4 * q));
		__m256i w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
		__m256i w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 16)));
		c00 = _mm256_add_epi32(c00, _mm256_madd_epi16(x0, w0));
		c10 = _mm256_add_epi32(c10, _mm256_madd_epi16(x1, w0));
		c01 = _mm256_add_epi32(c01, _mm256_madd_epi16(x0, w1));
		c11 = _mm256_add_epi32(c11, _mm256_madd_epi16(x1, w1));
		__m256i w2 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 32)));
		__m256i w3 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(w + 48)));
		c02 = _mm256_add_epi32(c02, _mm256_madd_epi16(x0, w2));
		c12 = _mm256_add_epi32(c12, _mm256_madd_epi16(x1, w2));
		c03 = _mm256_add_epi32(c03, _mm256_madd_epi16(x0, w3));
		c13 = _mm256_add_epi32(c13, _mm256_madd_epi16(x1, w3));
	}
	store_pairs(acc, c00, c01);
	store_pairs(acc + 8, c02, c03);
	store_pairs(acc + 16, c10, c11);
	store_pairs(acc + 24, c12, c13);
}

const rt_q8_ukernel rt_q8_avx2 = {"avx2", k_avx2, 2, 1};

#endif
