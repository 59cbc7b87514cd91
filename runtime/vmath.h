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
 * AVX2 and FMA (VM_AVX2 functions, after vm_have_avx2() said yes):
 *   vm_exp8(x)     exp over 8 lanes, vm_exp16's polynomial and accuracy
 *                  for normal results; results below FLT_MIN's range
 *                  (x < -87) are 0 instead of subnormal (an assist on
 *                  these CPUs; off by < 1.7e-38), -inf -> 0, x > 88.72 or
 *                  +inf -> +inf, NaN -> NaN.
 *   vm_exp8_nonpos(x)  vm_exp8 for x <= 0 or NaN (exp(x - max)), the
 *                  same results with fewer instructions
 *   vm_one_plus_erf8(z)  1 + erf(z) (N. Juffa's erff, absolute error
 *                  ~1e-7), the GELUs' core
 *   vm_gelu8(v, approx)  GELU: approx 0 erf, 1 tanh, 2 QuickGELU
 *                  (v sigmoid(1.702 v)); NaN in, NaN out
 *   vm_gelu_erf_fast8(v)  the erf GELU with a rational erf (error below
 *                  1.5e-6 (1 + |GELU|)), a third of vm_gelu8's work
 *   vm_gelu_erf_fast16(v) the same in 16 lanes, the same bits lane by lane
 *   vm_hmax8(v), vm_hsum8(v)   max / sum of the 8 lanes
 *
 * On aarch64 (NEON, part of every aarch64 Linux ABI, so never asked for):
 *   vm_exp4(x)     exp over 4 lanes, the same polynomial and limits
 *   vm_ld4(p, n, fill), vm_st4(p, v, n)   the first min(n, 4) lanes from
 *                  or to p, the other lanes `fill` / not written
 * vm_have_simd() says whether the SIMD path of kernels_fused.c can run:
 * AVX-512 on x86-64, NEON on aarch64, none elsewhere (its attention and
 * layer norms also have an AVX2 path, for x86-64 CPUs without AVX-512).
 *
 * Also declared here: kernels_fused.c's switch between its SIMD and
 * scalar paths (for tests and benchmarks). */
#ifndef KILN_RT_VMATH_H
#define KILN_RT_VMATH_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define VM_AVX512 __attribute__((target("avx512f,fma")))
#define VM_AVX2 __attribute__((target("avx2,fma")))

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

/* x rounded to bf16, kept as f32: as rt_f32_to_bf16 rounds (to nearest
 * even; a NaN stays a quiet NaN), with integer ops (no AVX512_BF16) */
VM_AVX512
static inline __m512 vm_round_bf16(__m512 x)
{
	__m512i u = _mm512_castps_si512(x);
	__m512i rn = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff),
	                 _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
	__mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
	                                        _mm512_set1_epi32(0x7f800000));
	rn = _mm512_mask_or_epi32(rn, nan, u, _mm512_set1_epi32(0x00400000));
	return _mm512_castsi512_ps(_mm512_and_si512(rn, _mm512_set1_epi32((int)0xffff0000u)));
}

/* n floats of src rounded to bf16 (as f32) into dst (may be src) */
VM_AVX512
static inline void vm_round_bf16_n(float *dst, const float *src, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 t = vm_tail(n - i);
		_mm512_mask_storeu_ps(dst + i, t, vm_round_bf16(_mm512_maskz_loadu_ps(t, src + i)));
	}
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

/* AVX2 and FMA usable, asked once (as vm_have_avx512). */
static inline bool vm_have_avx2(void)
{
	static int known;
	int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
	if (!k) {
		__builtin_cpu_init();
		k = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 2 : 1;
		__atomic_store_n(&known, k, __ATOMIC_RELAXED);
	}
	return k == 2;
}

/* exp(x) = p 2^n for a clamped x: n = round(x log2 e), r = x - n ln 2 in
 * two steps, p = exp(r) by Cephes' degree-7 polynomial (vm_exp16's) */
VM_AVX2 __attribute__((always_inline))
static inline __m256 vm_exp8_core(__m256 x, __m256 *n_out)
{
	__m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
	                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
	__m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
	r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
	__m256 p = _mm256_set1_ps(1.9875691500e-4f);
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
	p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
	*n_out = n;
	return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
}

/* vm_exp16's method in 8 lanes.  AVX2 has no scalef: 2^n is applied as
 * 2^h 2^(n-h), h = n/2, two normal floats for every clamped n (as vm_exp4),
 * so x up to 89 still overflows to +inf.  Below -87 the result would be
 * within a factor 1.4 of FLT_MIN or subnormal: it is flushed to 0 (the
 * operand order of the compare keeps NaN). */
VM_AVX2
static inline __m256 vm_exp8(__m256 x)
{
	__m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_NLT_UQ);
	x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
	x = _mm256_min_ps(_mm256_set1_ps(89.0f), x);
	__m256 n, p = vm_exp8_core(x, &n);
	__m256i ni = _mm256_cvtps_epi32(n), h = _mm256_srai_epi32(ni, 1);
	__m256i bias = _mm256_set1_epi32(127);
	__m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
	__m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(
		_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
	return _mm256_and_ps(keep, _mm256_mul_ps(_mm256_mul_ps(p, s1), s2));
}

/* vm_exp8 where x <= 0 or NaN (softmax's exp(x - max)): the same
 * results, from one clamp and one multiply by 2^n fewer.  After the clamp
 * x is in [-87, 0], so n = round(x log2 e) is in [-126, 0] and 2^n a
 * normal float: p 2^n rounds once, as vm_exp8's (p 2^h) 2^(n-h) does (p
 * 2^h is exact).  x > 0 is outside its contract (no overflow to +inf). */
VM_AVX2
static inline __m256 vm_exp8_nonpos(__m256 x)
{
	__m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_NLT_UQ);
	x = _mm256_max_ps(_mm256_set1_ps(-87.0f), x);
	__m256 n, p = vm_exp8_core(x, &n);
	__m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
	                              23);
	return _mm256_and_ps(keep, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* 1 + erf(z): erf by N. Juffa's erff (as gemm.c's one_plus_erf16): for
 * |z| <= 0.9277 an odd polynomial, beyond it 1 - exp(poly(|z|)), so 1 + erf
 * is exp(...) for z < 0 (no cancellation) and 2 - exp(...) for z >= 0. */
VM_AVX2
static inline __m256 vm_one_plus_erf8(__m256 z)
{
	__m256 t = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), z), s = _mm256_mul_ps(z, z);
	__m256 r = _mm256_fmadd_ps(_mm256_set1_ps(-1.72853470e-5f), t, _mm256_set1_ps(3.83197126e-4f));
	__m256 u = _mm256_fmadd_ps(_mm256_set1_ps(-3.88396438e-3f), t, _mm256_set1_ps(2.42546219e-2f));
	r = _mm256_fmadd_ps(r, s, u);
	r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-1.06777877e-1f));
	r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-6.34846687e-1f));
	r = _mm256_fmadd_ps(r, t, _mm256_set1_ps(-1.28717512e-1f));
	r = _mm256_fmsub_ps(r, t, t);
	__m256 e = vm_exp8(r);
	__m256 big = _mm256_blendv_ps(e, _mm256_sub_ps(_mm256_set1_ps(2.0f), e),
	                              _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ));
	__m256 q = _mm256_set1_ps(-5.96761703e-4f);
	q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(4.99119423e-3f));
	q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-2.67681349e-2f));
	q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(1.12819925e-1f));
	q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(-3.76125336e-1f));
	q = _mm256_fmadd_ps(q, s, _mm256_set1_ps(1.28379166e-1f));
	q = _mm256_add_ps(_mm256_fmadd_ps(q, z, z), _mm256_set1_ps(1.0f));
	return _mm256_blendv_ps(q, big, _mm256_cmp_ps(t, _mm256_set1_ps(0.927734375f), _CMP_GT_OQ));
}

/* GELU over 8 lanes, the arithmetic of gemm.c's gelu_avx512: erf as
 * 0.5 v (1 + erf(v / sqrt 2)), tanh as 0.5 v (1 + tanh(u)) = v / (1 +
 * exp(-2u)), QuickGELU as v / (1 + exp(-1.702 v)) */
VM_AVX2
static inline __m256 vm_gelu8(__m256 v, int approx)
{
	__m256 y, one = _mm256_set1_ps(1.0f);
	if (approx == 2) {
		y = _mm256_div_ps(v, _mm256_add_ps(vm_exp8(_mm256_mul_ps(v, _mm256_set1_ps(-1.702f))), one));
	} else if (approx) {
		__m256 u = _mm256_mul_ps(v, _mm256_fmadd_ps(_mm256_mul_ps(v, v),
		                         _mm256_set1_ps(0.044715f * 0.7978845608028654f),
		                         _mm256_set1_ps(0.7978845608028654f)));
		y = _mm256_div_ps(v, _mm256_add_ps(vm_exp8(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f))), one));
	} else {
		y = _mm256_mul_ps(_mm256_mul_ps(v, _mm256_set1_ps(0.5f)),
		                  vm_one_plus_erf8(_mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f))));
	}
	return _mm256_blendv_ps(y, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* The coefficients of vm_gelu_erf_fast8's rational erf (numerator P in x2
 * from the highest power, times z; denominator Q likewise), one list for
 * its 8- and 16-lane forms (gemm_int8_x86.c), which must give the same bits */
#define VM_ERFF_P0 -2.72614225801306e-10f
#define VM_ERFF_P1 2.77068142495902e-08f
#define VM_ERFF_P2 -2.10102402082508e-06f
#define VM_ERFF_P3 -5.69250639462346e-05f
#define VM_ERFF_P4 -7.34990630326855e-04f
#define VM_ERFF_P5 -2.95459980854025e-03f
#define VM_ERFF_P6 -1.60960333262415e-02f
#define VM_ERFF_Q0 -1.45660718464996e-05f
#define VM_ERFF_Q1 -2.13374055278905e-04f
#define VM_ERFF_Q2 -1.68282697438203e-03f
#define VM_ERFF_Q3 -7.37332916720468e-03f
#define VM_ERFF_Q4 -1.42647390514189e-02f

/* GELU (erf) over 8 lanes, 0.5 v (1 + erf(v / sqrt 2)), with erf as a
 * rational function of z = v / sqrt 2 clamped to [-4, 4]: odd numerator
 * of degree 13 over an even denominator of degree 8 (Eigen's
 * generic_fast_erf_float, as XLA's f32 erf), absolute error of erf below
 * 5e-7, so of the GELU below 1.5e-6 (1 + |GELU|); z < -4 gives 0 (the GELU
 * is above -5e-8 there), NaN stays NaN.  About a third of the instructions
 * of vm_gelu8's erf, which computes both of its branches, with an exp
 * (the largest of the int8 GEMM epilogue's costs on FFN-up products). */
VM_AVX2
static inline __m256 vm_gelu_erf_fast8(__m256 v)
{
	__m256 z = _mm256_mul_ps(v, _mm256_set1_ps(0.70710678118654752f));
	__m256 low = _mm256_cmp_ps(z, _mm256_set1_ps(-4.0f), _CMP_LT_OQ);
	z = _mm256_min_ps(_mm256_max_ps(z, _mm256_set1_ps(-4.0f)), _mm256_set1_ps(4.0f));
	__m256 x2 = _mm256_mul_ps(z, z);
	__m256 p = _mm256_fmadd_ps(x2, _mm256_set1_ps(VM_ERFF_P0),
	                           _mm256_set1_ps(VM_ERFF_P1));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VM_ERFF_P2));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VM_ERFF_P3));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VM_ERFF_P4));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VM_ERFF_P5));
	p = _mm256_fmadd_ps(x2, p, _mm256_set1_ps(VM_ERFF_P6));
	p = _mm256_mul_ps(z, p);
	__m256 q = _mm256_fmadd_ps(x2, _mm256_set1_ps(VM_ERFF_Q0),
	                           _mm256_set1_ps(VM_ERFF_Q1));
	q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(VM_ERFF_Q2));
	q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(VM_ERFF_Q3));
	q = _mm256_fmadd_ps(x2, q, _mm256_set1_ps(VM_ERFF_Q4));
	__m256 h = _mm256_mul_ps(v, _mm256_set1_ps(0.5f));
	__m256 y = _mm256_andnot_ps(low, _mm256_fmadd_ps(h, _mm256_div_ps(p, q), h));
	return _mm256_blendv_ps(y, v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* vm_gelu_erf_fast8 in 16 lanes: the same operations lane by lane, so the
 * same bits */
VM_AVX512
static inline __m512 vm_gelu_erf_fast16(__m512 v)
{
	__m512 z = _mm512_mul_ps(v, _mm512_set1_ps(0.70710678118654752f));
	__mmask16 low = _mm512_cmp_ps_mask(z, _mm512_set1_ps(-4.0f), _CMP_LT_OQ);
	z = _mm512_min_ps(_mm512_max_ps(z, _mm512_set1_ps(-4.0f)), _mm512_set1_ps(4.0f));
	__m512 x2 = _mm512_mul_ps(z, z);
	__m512 p = _mm512_fmadd_ps(x2, _mm512_set1_ps(VM_ERFF_P0),
	                           _mm512_set1_ps(VM_ERFF_P1));
	p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VM_ERFF_P2));
	p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VM_ERFF_P3));
	p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VM_ERFF_P4));
	p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VM_ERFF_P5));
	p = _mm512_fmadd_ps(x2, p, _mm512_set1_ps(VM_ERFF_P6));
	p = _mm512_mul_ps(z, p);
	__m512 q = _mm512_fmadd_ps(x2, _mm512_set1_ps(VM_ERFF_Q0),
	                           _mm512_set1_ps(VM_ERFF_Q1));
	q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(VM_ERFF_Q2));
	q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(VM_ERFF_Q3));
	q = _mm512_fmadd_ps(x2, q, _mm512_set1_ps(VM_ERFF_Q4));
	__m512 h = _mm512_mul_ps(v, _mm512_set1_ps(0.5f));
	__m512 y = _mm512_maskz_mov_ps((__mmask16)~low, _mm512_fmadd_ps(h, _mm512_div_ps(p, q), h));
	return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), v);
}

VM_AVX2
static inline float vm_hmax8(__m256 v)
{
	__m128 q = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	q = _mm_max_ps(q, _mm_movehl_ps(q, q));
	q = _mm_max_ss(q, _mm_movehdup_ps(q));
	return _mm_cvtss_f32(q);
}

VM_AVX2
static inline float vm_hsum8(__m256 v)
{
	__m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	q = _mm_add_ps(q, _mm_movehl_ps(q, q));
	q = _mm_add_ss(q, _mm_movehdup_ps(q));
	return _mm_cvtss_f32(q);
}

static inline bool vm_have_simd(void)
{
	return vm_have_avx512();
}

#elif defined(__aarch64__)
#include <arm_neon.h>
#include <string.h>

static inline bool vm_have_simd(void)
{
	return true;
}

static inline float32x4_t vm_ld4(const float *p, int64_t n, float fill)
{
	if (n >= 4)
		return vld1q_f32(p);
	float t[4] = {fill, fill, fill, fill};
	memcpy(t, p, (size_t)(n > 0 ? n : 0) * sizeof(float));
	return vld1q_f32(t);
}

static inline void vm_st4(float *p, float32x4_t v, int64_t n)
{
	if (n >= 4) {
		vst1q_f32(p, v);
		return;
	}
	float t[4];
	vst1q_f32(t, v);
	memcpy(p, t, (size_t)(n > 0 ? n : 0) * sizeof(float));
}

/* vm_exp16's method in 4 lanes.  NEON has no scalef: 2^n is applied as
 * 2^(n>>1) * 2^(n - (n>>1)), two factors that are normal floats for every
 * clamped n, so large n still overflow to +inf and small ones go to 0. */
static inline float32x4_t vm_exp4(float32x4_t x)
{
	x = vmaxq_f32(vdupq_n_f32(-104.0f), x);
	x = vminq_f32(vdupq_n_f32(89.0f), x);
	float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
	float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
	r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
	float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
	p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
	p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
	p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
	p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
	p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
	p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
	int32x4_t ni = vcvtq_s32_f32(n);
	int32x4_t n1 = vshrq_n_s32(ni, 1), n2 = vsubq_s32(ni, n1);
	float32x4_t s1 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n1, vdupq_n_s32(127)), 23));
	float32x4_t s2 = vreinterpretq_f32_s32(vshlq_n_s32(vaddq_s32(n2, vdupq_n_s32(127)), 23));
	return vmulq_f32(vmulq_f32(p, s1), s2);
}

#else
static inline bool vm_have_simd(void)
{
	return false;
}
#endif

/* kernels_fused.c: which path KlnAttention / KlnLayerNorm /
 * KlnSkipLayerNorm / KlnEmbedLayerNorm take.  on: 1 AVX-512 or NEON, 2
 * AVX2 + FMA, each returning -1, changing nothing, when the CPU cannot; 0
 * scalar, -1 back to the CPU's best (AVX-512 or NEON, else AVX2, else
 * scalar).  Not thread-safe against running kernels: set it between runs.
 * rt_fused_path: the path they take now (0, 1 or 2). */
int rt_fused_simd_use(int on);
int rt_fused_path(void);

#endif
