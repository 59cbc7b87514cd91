/* vmath.h: vector math shared by the runtime's kernels, private to the
 * runtime and its tests.
 *
 * The runtime is built without -march, so everything AVX-512 here is a
 * static inline function with a target attribute: call it only from
 * functions carrying the same attribute (VM_AVX512), and only after
 * vm_have_avx512() said yes.  vm_have_avx512 asks the CPU once per
 * translation unit and caches the answer.
 *
 *   vm_exp16(x)    exp over 16 lanes, Cephes' expf polynomial (about 1 ulp
 *                  against the exact value for normal results);
 *                  x < -104 or -inf -> 0, x > 88.72 or +inf -> +inf,
 *                  NaN -> NaN.
 *   vm_hmax16(v)   max of the 16 lanes (NaN lanes: as _mm512_max_ps)
 *   vm_hsum16(v)   sum of the 16 lanes
 *   vm_tail(n)     lane mask of the first min(n, 16) lanes (n >= 0)
 *
 * Also declared here: kernels_fused.c's switch between its AVX-512 and
 * scalar paths (for tests and benchmarks). */
#ifndef KILN_RT_VMATH_H
#define KILN_RT_VMATH_H

#include <immintrin.h>
#include <stdbool.h>
#include <stdint.h>

#define VM_AVX512 __attribute__((target("avx512f,fma")))

/* AVX-512F and FMA usable (CPU and OS), asked once. */
static inline bool vm_have_avx512(void)
{
	static int known;    /* 0 not asked yet, 1 no, 2 yes (racy but idempotent) */
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (!k) {
		__builtin_cpu_init();
		k = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma") ? 2 : 1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 2;
}

static inline __mmask16 vm_tail(int64_t n)
{
	return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1);
}

/* exp(x) = 2^n exp(r), r = x - n ln2 (ln2 split in two for exactness),
 * exp(r) by Cephes' degree-7 polynomial.  The clamp keeps n small enough
 * for scalef, which then rounds the result once: to 0 below about -103.97
 * and to +inf above 88.72.  Operand order of max/min lets NaN through. */
VM_AVX512
static inline __m512 vm_exp16(__m512 x)
{
	x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
	x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
	__m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
	                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
	r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
	__m512 p = _mm512_set1_ps(1.9875691500e-4f);
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
	p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
	p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
	return _mm512_scalef_ps(p, n);
}

VM_AVX512
static inline float vm_hmax16(__m512 v)
{
	__m256 h = _mm256_max_ps(_mm512_castps512_ps256(v),
	                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
	__m128 q = _mm_max_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
	q = _mm_max_ps(q, _mm_movehl_ps(q, q));
	q = _mm_max_ss(q, _mm_movehdup_ps(q));
	return _mm_cvtss_f32(q);
}

VM_AVX512
static inline float vm_hsum16(__m512 v)
{
	__m256 h = _mm256_add_ps(_mm512_castps512_ps256(v),
	                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
	__m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
	q = _mm_add_ps(q, _mm_movehl_ps(q, q));
	q = _mm_add_ss(q, _mm_movehdup_ps(q));
	return _mm_cvtss_f32(q);
}

/* kernels_fused.c: which path KlnAttention / KlnLayerNorm /
 * KlnSkipLayerNorm / KlnEmbedLayerNorm take.  on: 1 AVX-512 (returns -1,
 * changing nothing, when the CPU cannot), 0 scalar, -1 back to the CPU's
 * best.  Not thread-safe against running kernels: set it between runs. */
int rt_fused_simd_use(int on);

#endif
