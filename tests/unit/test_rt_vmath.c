/* test_rt_vmath.c: the vector math of runtime/vmath.h and the two paths
 * (AVX-512, scalar: rt_fused_simd_use) of the attention softmax and the
 * layer norms in runtime/kernels_fused.c, against double references.
 *
 * - vm_exp16: ulp error over [-104, 88.7] (denormal results: absolute),
 *   -inf and very negative -> 0, overflow and +inf -> inf, NaN -> NaN;
 *   vm_hmax16, vm_hsum16, vm_tail.
 * - KlnAttention with V = identity, so the output rows are the softmax
 *   probabilities themselves: key lengths 1..70, 128, 771; bias per key or
 *   one per row; key-padding masks (i64, f32 with fractions, bool) with
 *   zeros, finite and -inf filters, all-masked rows (NaN, or 0 with the
 *   guard), large and tiny scores, NaN scores.
 * - KlnLayerNorm / KlnSkipLayerNorm: lengths 1..70, 128, 771, 3000,
 *   gamma/beta/bias of one element, the sum output, an offset mean, a NaN.
 * AVX-512 checks are skipped on CPUs without it. */
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

#include "rt_internal.h"
#include "rt_ref.h"
#include "rt_test.h"
#include "vmath.h"

RT_KERNEL(KlnAttention);
RT_KERNEL(KlnLayerNorm);
RT_KERNEL(KlnSkipLayerNorm);

/* paths (rt_fused_simd_use): 0 scalar, 1 AVX-512, 2 AVX2 + FMA; a path
 * runs when the CPU has it */
#define NMODES 3
static const char *const mode_name[NMODES] = {"scalar", "AVX-512", "AVX2"};

static bool mode_ok(int m)
{
	return m == 0 || (m == 1 && vm_have_avx512()) || (m == 2 && vm_have_avx2());
}

/* the path after m that the CPU has, -1 after the last */
static int next_mode(int m)
{
	while (++m < NMODES)
		if (mode_ok(m))
			return m;
	return -1;
}

static void set_mode(int m)
{
	assert_int_equal(rt_fused_simd_use(m), 0);
}

/* ---- vmath.h ---------------------------------------------------------- */

/* The ulp sweep of vm_exp16 (LANES 16, through arr) or vm_exp8 (LANES 8):
 * exp of an even sweep over [-104, 88.7] of odd length (a partial last
 * vector) is within 2 ulp where the result is normal.  Below that, vm_exp16
 * gives denormals (within one denormal step of exp), vm_exp8 flushes:
 * exactly 0 for x < -87 (and within 2 ulp from -87 up). */
static void exp_sweep(int lanes, void (*arr)(const float *, float *, int64_t))
{
	enum { N = 200003 };
	bool flushes = lanes == 8;
	float *x = ref_alloc(N * sizeof *x), *y = ref_alloc(N * sizeof *y);
	for (int i = 0; i < N; i++)
		x[i] = -104.0f + (88.7f + 104.0f) * (float)i / (float)(N - 1);
	arr(x, y, N);
	double worst = 0;
	for (int i = 0; i < N; i++) {
		double r = exp((double)x[i]);
		if (flushes ? x[i] >= -87.0f : r >= 0x1p-126) {
			double u = ref_ulps(y[i], r);
			worst = u > worst ? u : worst;
			if (u > 2.0)
				fail_msg("vm_exp%d(%.9g) = %.9g, exact %.17g (%.2f ulp)", lanes, x[i], y[i], r, u);
		} else if (flushes ? y[i] != 0.0f : fabs((double)y[i] - r) > 0x1p-149) {
			fail_msg("vm_exp%d(%.9g) = %.9g, exact %.17g%s", lanes, x[i], y[i], r,
			         flushes ? ", expected 0 (flushed)" : "");
		}
	}
	print_message("vm_exp%d: worst %.2f ulp over [%s, 88.7]\n", lanes, worst, flushes ? "-87" : "-104");
	free(x);
	free(y);
}

VM_AVX512
static void exp_arr(const float *x, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i += 16) {
		__mmask16 t = vm_tail(n - i);
		_mm512_mask_storeu_ps(y + i, t, vm_exp16(_mm512_maskz_loadu_ps(t, x + i)));
	}
}

VM_AVX512
static void hred(const float *x, float *mx, float *sum)
{
	__m512 v = _mm512_loadu_ps(x);
	*mx = vm_hmax16(v);
	*sum = vm_hsum16(v);
}

VM_AVX512
static void round_bf16_arr(float *dst, const float *src, int64_t n)
{
	vm_round_bf16_n(dst, src, n);
}

/* vm_round_bf16 (the bf16 rounding of the widened GEMM and of the fp32
 * attention under fpmath 1) against rt_f32_to_bf16, bit for bit: ties to
 * even both ways, the largest finite values (rounding up to infinity),
 * infinities, NaNs (quieted), subnormals, -0, and random bit patterns;
 * odd lengths (a masked tail, canaries after it) */
static void test_round_bf16(void **state)
{
	(void)state;
	if (!vm_have_avx512())
		skip();
	static const uint32_t special[] = {
		0x00000000u, 0x80000000u, 0x3f808000u, 0x3f818000u, 0x3f807fffu, 0x3f808001u,
		0x7f7fffffu, 0xff7fffffu, 0x7f7f8000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
		0x7f800001u, 0xff800001u, 0x7fbfffffu, 0x00000001u, 0x807fffffu, 0x00008000u,
		0x00018000u, 0x3effffffu,
	};
	enum { N = 100003 };
	uint32_t *u = malloc((N + 16) * sizeof *u);
	float *y = malloc((N + 16) * sizeof *y);
	assert_non_null(u);
	assert_non_null(y);
	uint64_t st = 0x5eed5eedull;
	for (int i = 0; i < N; i++) {
		st = st * 6364136223846793005ull + 1442695040888963407ull;
		u[i] = i < (int)(sizeof special / sizeof *special) ? special[i] : (uint32_t)(st >> 32);
	}
	for (int i = N; i < N + 16; i++)
		memcpy(&y[i], &(float){ 7.0f }, sizeof(float));
	round_bf16_arr(y, (const float *)u, N);
	for (int i = 0; i < N; i++) {
		float x;
		memcpy(&x, &u[i], sizeof x);
		uint32_t want = (uint32_t)rt_f32_to_bf16(x) << 16, got;
		memcpy(&got, &y[i], sizeof got);
		if (got != want)
			fail_msg("vm_round_bf16(0x%08x) = 0x%08x, rt_f32_to_bf16 gives 0x%08x", u[i], got, want);
	}
	for (int i = N; i < N + 16; i++)
		assert_true(y[i] == 7.0f);
	free(u);
	free(y);
}

static void test_exp16(void **state)
{
	(void)state;
	if (!vm_have_avx512())
		skip();
	exp_sweep(16, exp_arr);
	/* exact points and specials */
	float sx[] = {0.0f, -0.0f, 1.0f, -INFINITY, -1000.0f, -104.5f, -200.0f, 89.0f, 1000.0f,
	              INFINITY, NAN, -NAN, 88.72f, 88.7228394f, -87.0f};
	int ns = (int)(sizeof sx / sizeof sx[0]);
	float sy[sizeof sx / sizeof sx[0]];
	exp_arr(sx, sy, ns);
	assert_true(sy[0] == 1.0f && sy[1] == 1.0f);
	assert_true(ref_ulps(sy[2], M_E) <= 1.0);
	for (int i = 3; i <= 6; i++)
		assert_true(sy[i] == 0.0f);
	for (int i = 7; i <= 9; i++)
		assert_true(isinf(sy[i]) && sy[i] > 0);
	assert_true(isnan(sy[10]) && isnan(sy[11]));
	assert_true(ref_ulps(sy[12], exp((double)sx[12])) <= 2.0);
	assert_true(isinf(sy[13]) || ref_ulps(sy[13], exp((double)sx[13])) <= 2.0);
	assert_true(ref_ulps(sy[14], exp((double)sx[14])) <= 2.0);
	/* every tail length writes exactly its lanes */
	for (int n = 0; n <= 16; n++) {
		float in[16], out[17];
		for (int i = 0; i < 16; i++)
			in[i] = (float)i * 0.25f;
		for (int i = 0; i < 17; i++)
			out[i] = -7.0f;
		exp_arr(in, out, n);
		for (int i = 0; i < 17; i++)
			assert_true(i < n ? ref_ulps(out[i], exp((double)in[i])) <= 1.0 : out[i] == -7.0f);
	}
}

/* ---- the AVX2 forms ---- */

VM_AVX2
static void exp8_arr(const float *x, float *y, int64_t n)
{
	for (int64_t i = 0; i < n; i += 8) {
		float t[8] = {0};
		int64_t m = n - i < 8 ? n - i : 8;
		memcpy(t, x + i, (size_t)m * sizeof *t);
		_mm256_storeu_ps(t, vm_exp8(_mm256_loadu_ps(t)));
		memcpy(y + i, t, (size_t)m * sizeof *t);
	}
}

VM_AVX2
static void gelu8_arr(const float *x, float *y, int64_t n, int approx)
{
	for (int64_t i = 0; i < n; i += 8) {
		float t[8] = {0};
		int64_t m = n - i < 8 ? n - i : 8;
		memcpy(t, x + i, (size_t)m * sizeof *t);
		_mm256_storeu_ps(t, vm_gelu8(_mm256_loadu_ps(t), approx));
		memcpy(y + i, t, (size_t)m * sizeof *t);
	}
}

VM_AVX2
static void hred8(const float *x, float *mx, float *sum)
{
	__m256 v = _mm256_loadu_ps(x);
	*mx = vm_hmax8(v);
	*sum = vm_hsum8(v);
}

/* vm_exp8: <= 2 ulp where the result is >= exp(-87) (normal), exactly 0
 * below -87 (flushed, no subnormal result), the specials of vm_exp16 */
static void test_exp8(void **state)
{
	(void)state;
	if (!vm_have_avx2())
		skip();
	exp_sweep(8, exp8_arr);
	float sx[] = {0.0f, -0.0f, 1.0f, -INFINITY, -1000.0f, -87.01f, -104.5f, 89.0f, 1000.0f,
	              INFINITY, NAN, -NAN, 88.72f, 88.7228394f, -87.0f, -86.5f};
	int ns = (int)(sizeof sx / sizeof sx[0]);
	float sy[sizeof sx / sizeof sx[0]];
	exp8_arr(sx, sy, ns);
	assert_true(sy[0] == 1.0f && sy[1] == 1.0f);
	assert_true(ref_ulps(sy[2], M_E) <= 1.0);
	for (int i = 3; i <= 6; i++)
		assert_true(sy[i] == 0.0f);
	for (int i = 7; i <= 9; i++)
		assert_true(isinf(sy[i]) && sy[i] > 0);
	assert_true(isnan(sy[10]) && isnan(sy[11]));
	assert_true(ref_ulps(sy[12], exp((double)sx[12])) <= 2.0);
	assert_true(isinf(sy[13]) || ref_ulps(sy[13], exp((double)sx[13])) <= 2.0);
	for (int i = 14; i <= 15; i++)
		assert_true(ref_ulps(sy[i], exp((double)sx[i])) <= 2.0 && sy[i] >= 0x1p-126f);
}

/* vm_gelu8 against double GELUs: erf, tanh and QuickGELU over [-20, 20]
 * (absolute 2e-6 or relative 1e-5), far tails, the specials */
static void test_gelu8(void **state)
{
	(void)state;
	if (!vm_have_avx2())
		skip();
	enum { N = 40001 };
	float *x = ref_alloc(N * sizeof *x), *y = ref_alloc(N * sizeof *y);
	for (int i = 0; i < N; i++)
		x[i] = -20.0f + 40.0f * (float)i / (float)(N - 1);
	for (int a = 0; a < 3; a++) {
		gelu8_arr(x, y, N, a);
		for (int i = 0; i < N; i++) {
			double v = x[i], r = a == 0 ? 0.5 * v * (1 + erf(v / sqrt(2.0))) :
			           a == 1 ? 0.5 * v * (1 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))) :
			           v / (1 + exp(-1.702 * v));
			double err = fabs((double)y[i] - r);
			if (err > 2e-6 && err > 1e-5 * fabs(r))
				fail_msg("gelu8 (approx %d) of %.9g = %.9g, reference %.12g", a, x[i], y[i], r);
		}
		float sx[] = {-1e30f, -200.0f, -60.0f, 60.0f, 200.0f, 1e30f, INFINITY, NAN, 0.0f};
		float sy[9];
		gelu8_arr(sx, sy, 9, a);
		for (int i = 0; i < 3; i++)   /* far left: -0 or a tiny negative (no NaN) */
			assert_true(sy[i] <= 0.0f && sy[i] > -1e-30f);
		for (int i = 3; i <= 6; i++)
			assert_true(sy[i] == sx[i]);
		assert_true(isnan(sy[7]) && sy[8] == 0.0f);
	}
	free(x);
	free(y);
}

static void test_hreduce8(void **state)
{
	(void)state;
	if (!vm_have_avx2())
		skip();
	for (int t = 0; t < 100; t++) {
		float v[8], mx, sum;
		double rm = -INFINITY, rs = 0;
		for (int i = 0; i < 8; i++) {
			v[i] = ref_frand(-100, 100);
			rm = v[i] > rm ? v[i] : rm;
			rs += v[i];
		}
		hred8(v, &mx, &sum);
		assert_true(mx == (float)rm && fabs(sum - rs) <= 1e-4);
	}
}

static void test_hreduce(void **state)
{
	(void)state;
	assert_int_equal(vm_tail(0), 0);
	assert_int_equal(vm_tail(5), 0x1f);
	assert_int_equal(vm_tail(16), 0xffff);
	assert_int_equal(vm_tail(1000), 0xffff);
	if (!vm_have_avx512())
		skip();
	for (int t = 0; t < 100; t++) {
		float v[16], mx, sum;
		for (int i = 0; i < 16; i++)
			v[i] = ref_frand(-100, 100);
		if (t % 3 == 0)
			v[t % 16] = -INFINITY;    /* the sum is -inf, the max is not */
		double rm = -INFINITY, rs = 0;
		for (int i = 0; i < 16; i++) {
			rm = v[i] > rm ? v[i] : rm;
			rs += v[i];
		}
		hred(v, &mx, &sum);
		assert_true(mx == (float)rm);
		assert_true(t % 3 == 0 ? isinf(sum) && sum < 0 : fabs(sum - rs) <= 1e-4);
	}
}

/* ---- attention softmax ------------------------------------------------ */

typedef struct SmCase {
	int64_t B, Sq, Sk, H, D;
	int bias;           /* 0 none, 1 [B,1,1,Sk], 2 [B,H,Sq,1] (one per row) */
	int mask;           /* 0 none, 1 i64, 2 f32 (0, 0.5, 1), 3 bool */
	bool inf_filter, guard;
	float qk;           /* |Q|, |K| entries: integers in [-qk, qk] (exact scores) */
	float scale;
	int special;        /* 0, 1 all keys of batch 0 masked, 2 NaN in Q row 0,
	                     * 3 NaN in K of batch 0 */
	int causal;         /* 0 none, 1 add cfill, 2 set cfill past k > q + Sk - Sq */
	float cfill;
} SmCase;

static float mask_val(const SmCase *c, int64_t b, int64_t k)
{
	if (c->special == 1 && b == 0)
		return 0.0f;
	if (k == 0)
		return 1.0f;           /* at least one key of every other batch entry kept */
	uint64_t h = (uint64_t)(b * 7919 + k * 104729) % 5;
	if (c->mask == 2 && h == 1)
		return 0.5f;
	return h == 0 ? 0.0f : 1.0f;
}

/* Reference: the float scores as the kernel forms them (scale * QK^T in
 * double, rounded; + bias; + pad, in float), then softmax in double. */
static void sm_ref(const SmCase *c, const float *q, const float *k, const float *bias,
                   float filter, double *ref)
{
	int64_t Sk = c->Sk, hd = c->H * c->D, ho = c->H * Sk;
	double *x = ref_alloc((size_t)Sk * sizeof *x);
	for (int64_t b = 0; b < c->B; b++)
		for (int64_t h = 0; h < c->H; h++)
			for (int64_t i = 0; i < c->Sq; i++) {
				bool nan = false;
				double mx = -INFINITY;
				for (int64_t j = 0; j < Sk; j++) {
					double dot = 0;
					for (int64_t d = 0; d < c->D; d++)
						dot += (double)q[(b * c->Sq + i) * hd + h * c->D + d] *
						       k[(b * Sk + j) * hd + h * c->D + d];
					float s = (float)((float)dot * c->scale);
					bool past = c->causal && j > i + Sk - c->Sq;
					if (past && c->causal == 2)
						s = c->cfill;
					if (c->bias == 1)
						s += bias[b * Sk + j];
					else if (c->bias == 2)
						s += bias[(b * c->H + h) * c->Sq + i];
					if (c->mask) {
						float mv = mask_val(c, b, j);
						if (mv != 1.0f)
							s += (float)(1.0 - mv) * filter;
					}
					if (past && c->causal == 1)
						s += c->cfill;
					x[j] = s;
					if (isnan(s))
						nan = true;
					else if (s > mx)
						mx = s;
				}
				double sum = 0;
				for (int64_t j = 0; j < Sk; j++)
					sum += exp(x[j] - mx);
				double *r = ref + (b * c->Sq + i) * ho + h * Sk;
				for (int64_t j = 0; j < Sk; j++) {
					double p = nan || isinf(mx) ? NAN : exp(x[j] - mx) / sum;
					r[j] = c->guard && isnan(p) ? 0.0 : p;
				}
			}
	free(x);
}

static void run_sm(const SmCase *c, int mode)
{
	int64_t B = c->B, Sq = c->Sq, Sk = c->Sk, H = c->H, D = c->D, hd = H * D, ho = H * Sk;
	float *q = ref_alloc((size_t)(B * Sq * hd) * sizeof *q);
	float *k = ref_alloc((size_t)(B * Sk * hd) * sizeof *k);
	float *v = calloc((size_t)(B * Sk * ho), sizeof *v);
	float *o = ref_alloc((size_t)(B * Sq * ho) * sizeof *o);
	double *ref = ref_alloc((size_t)(B * Sq * ho) * sizeof *ref);
	assert_non_null(v);
	uint64_t seed = ref_rng;
	for (int64_t i = 0; i < B * Sq * hd; i++)
		q[i] = c->qk > 0 ? (float)floor(ref_frand(-c->qk, c->qk + 1)) : ref_frand(-1, 1);
	for (int64_t i = 0; i < B * Sk * hd; i++)
		k[i] = c->qk > 0 ? (float)floor(ref_frand(-c->qk, c->qk + 1)) : ref_frand(-1, 1);
	if (c->special == 2)
		q[0] = NAN;             /* batch 0, query 0, head 0 */
	if (c->special == 3)
		k[0] = NAN;             /* batch 0, key 0, head 0: every query of (0, 0) */
	/* V = identity per head: output[b, i, h*Sk + j] = p[b, h, i, j] */
	for (int64_t b = 0; b < B; b++)
		for (int64_t h = 0; h < H; h++)
			for (int64_t j = 0; j < Sk; j++)
				v[(b * Sk + j) * ho + h * Sk + j] = 1.0f;
	int64_t nb = c->bias == 1 ? B * Sk : c->bias == 2 ? B * H * Sq : 0;
	float *bias = ref_alloc((size_t)nb * sizeof *bias);
	for (int64_t i = 0; i < nb; i++)
		bias[i] = ref_frand(-3, 3);
	void *mask = NULL;
	rt_t min = T(NULL, 0, 0, 0, 0, 0, 0);
	if (c->mask) {
		size_t es = c->mask == 1 ? 8 : c->mask == 2 ? 4 : 1;
		mask = ref_alloc((size_t)(B * Sk) * es);
		for (int64_t b = 0; b < B; b++)
			for (int64_t j = 0; j < Sk; j++) {
				float mv = mask_val(c, b, j);
				if (c->mask == 1)
					((int64_t *)mask)[b * Sk + j] = (int64_t)mv;
				else if (c->mask == 2)
					((float *)mask)[b * Sk + j] = mv;
				else
					((uint8_t *)mask)[b * Sk + j] = (uint8_t)mv;
			}
		min = T(mask, 2, B, Sk,
		        0, 0, c->mask == 1 ? KILN_I64 : c->mask == 2 ? KILN_F32 : KILN_BOOL);
	}
	float filter = c->inf_filter ? -INFINITY : -10000.0f;
	sm_ref(c, q, k, bias, filter, ref);
	rt_t in[5] = {T(q, 3, B, Sq, hd, 0, KILN_F32), T(k, 3, B, Sk, hd, 0, KILN_F32),
	              T(v, 3, B, Sk, ho, 0, KILN_F32), T(NULL, 0, 0, 0, 0, 0, 0), min};
	if (c->bias == 1)
		in[3] = T(bias, 4, B, 1, 1, Sk, KILN_F32);
	else if (c->bias == 2)
		in[3] = T(bias, 4, B, H, Sq, 1, KILN_F32);
	rt_t out = T(o, 3, B, Sq, ho, 0, KILN_F32);
	/* ia: head_size, k_offset, layout, nan_guard, num_heads, q_offset, v_head_size, v_offset,
	 * causal, kv_num_heads */
	int64_t ia[10] = {D, 0, 0, c->guard, H, 0, Sk, 0, c->causal, 0};
	float fa[3] = {filter, c->scale, c->cfill};
	set_mode(mode);
	assert_int_equal(rt_op_KlnAttention(frame(), "att", in, 5, &out, 1, ia, 10, fa, 3), 0);
	set_mode(-1);
	for (int64_t i = 0; i < B * Sq * ho; i++) {
		double r = ref[i];
		bool ok = isnan(r) ? isnan(o[i]) : fabs((double)o[i] - r) <= 4e-6 * r + 1e-30;
		if (!ok)
			fail_msg("%s path, Sk %lld, element %lld (b %lld, q %lld, head %lld, key %lld): "
			         "%.9g, reference %.12g (seed %llu)", mode_name[mode],
			         (long long)Sk, (long long)i, (long long)(i / (Sq * ho)),
			         (long long)(i / ho % Sq), (long long)(i % ho / Sk), (long long)(i % Sk),
			         o[i], r, (unsigned long long)seed);
	}
	free(q); free(k); free(v); free(o); free(ref); free(bias); free(mask);
}

/* Row lengths that cross the 16-lane tails: 1 .. 70, 128, 771 (and 3000,
 * past the layer norm's row buffer, when long); returns how many (<= 74). */
static int row_lengths(int64_t *lens, bool long_rows)
{
	int nl = 0;
	for (int64_t n = 1; n <= 70; n++)
		lens[nl++] = n;
	lens[nl++] = 128;
	lens[nl++] = 771;
	if (long_rows)
		lens[nl++] = 3000;
	return nl;
}

static void test_softmax_lengths(void **state)
{
	(void)state;
	int64_t lens[74];
	int nl = row_lengths(lens, false);
	for (int mode = 0; mode >= 0; mode = next_mode(mode))
		for (int i = 0; i < nl; i++) {
			int64_t n = lens[i];
			SmCase c = {2, n > 128 ? 3 : 5, n, 2, 8, (int)(n % 3), (int)(n % 4), n % 2 == 0,
			            n % 5 == 0, 0, 0.35f, 0, 0, 0};
			run_sm(&c, mode);
			/* causal, both modes, the edge crossing the 8- and 16-lane blocks */
			c.causal = 1 + (int)(n % 2);
			c.cfill = n % 3 == 0 ? -INFINITY : c.causal == 2 ? -3.4028234663852886e+38f : -1e4f;
			c.Sq = n > 20 ? 19 : n;
			run_sm(&c, mode);
		}
}

static void test_softmax_specials(void **state)
{
	(void)state;
	SmCase cases[] = {
		/* all keys of batch 0 masked with -inf: NaN rows; 0 with the guard */
		{2, 4, 37, 2, 4, 1, 1, true, false, 0, 0.5f, 1, 0, 0},
		{2, 4, 37, 2, 4, 1, 1, true, true, 0, 0.5f, 1, 0, 0},
		{2, 4, 16, 2, 4, 0, 3, true, true, 0, 0.5f, 1, 0, 0},
		/* all masked with a finite filter: the scores still decide */
		{2, 4, 37, 2, 4, 1, 2, false, false, 2, 0.5f, 1, 0, 0},   /* exact: -10000 + x rounds */
		/* large exact scores (|x| up to ~2e4): most probabilities underflow */
		{2, 5, 67, 2, 4, 0, 1, false, false, 64, 1.0f, 0, 0, 0},
		{1, 5, 128, 1, 4, 1, 0, false, false, 16, 0.125f, 0, 0, 0},
		/* tiny scores: almost uniform */
		{1, 6, 771, 2, 8, 0, 0, false, false, 0, 1e-6f, 0, 0, 0},
		{1, 6, 33, 2, 8, 2, 2, true, false, 0, 1e-30f, 0, 0, 0},
		/* NaN in Q: that row NaN (0 with the guard); in K: all rows of (0, 0) */
		{2, 3, 19, 2, 4, 1, 1, false, false, 0, 0.5f, 2, 0, 0},
		{2, 3, 19, 2, 4, 1, 1, false, true, 0, 0.5f, 2, 0, 0},
		{2, 3, 40, 2, 4, 0, 0, true, false, 0, 0.5f, 3, 0, 0},
		{2, 3, 40, 2, 4, 0, 0, true, true, 0, 0.5f, 3, 0, 0},
		/* causal with Sq > Sk: the first rows have no key before the edge
		 * (a -inf fill gives NaN rows, a finite set fill a uniform row) */
		{1, 6, 3, 2, 4, 0, 0, false, false, 0, 0.5f, 0, 1, -INFINITY},
		{1, 6, 3, 2, 4, 0, 0, false, true, 0, 0.5f, 0, 1, -INFINITY},
		{1, 6, 3, 2, 4, 1, 0, false, false, 0, 0.5f, 0, 2, -3.4028234663852886e+38f},
		/* causal and padding: fully masked rows as the graph gives them */
		{2, 17, 17, 2, 4, 1, 1, true, false, 0, 0.5f, 1, 2, -3.4028234663852886e+38f},
		{2, 17, 17, 2, 4, 1, 1, false, false, 0, 0.5f, 1, 1, -3.4028234663852886e+38f},
	};
	for (int mode = 0; mode >= 0; mode = next_mode(mode))
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
			run_sm(&cases[i], mode);
}

/* forcing a path is accepted, or refused as the CPU says */
static void test_mode_switch(void **state)
{
	(void)state;
	assert_int_equal(rt_fused_simd_use(0), 0);
	assert_int_equal(rt_fused_simd_use(1), vm_have_avx512() ? 0 : -1);
	assert_int_equal(rt_fused_simd_use(2), vm_have_avx2() ? 0 : -1);
	assert_int_equal(rt_fused_simd_use(3), -1);
	assert_int_equal(rt_fused_simd_use(-1), 0);
}

/* ---- layer norms ------------------------------------------------------ */

typedef struct LnCase {
	int64_t rows, n;
	bool skip, bias, sum, g1, b1, bias1;
	float offset;       /* added to every x */
	bool nan;           /* x[0] = NaN (row 0) */
} LnCase;

static void run_ln(const LnCase *c, int mode)
{
	int64_t R = c->rows, n = c->n, tot = R * n;
	float *x = ref_alloc((size_t)tot * sizeof *x), *sk = ref_alloc((size_t)tot * sizeof *sk);
	float *g = ref_alloc((size_t)n * sizeof *g), *be = ref_alloc((size_t)n * sizeof *be);
	float *bi = ref_alloc((size_t)n * sizeof *bi);
	float *y = ref_alloc((size_t)tot * sizeof *y), *sum = ref_alloc((size_t)tot * sizeof *sum);
	for (int64_t i = 0; i < tot; i++) {
		x[i] = c->offset + ref_frand(-2, 2);
		sk[i] = ref_frand(-1, 1);
	}
	if (c->nan)
		x[0] = NAN;
	for (int64_t i = 0; i < n; i++) {
		g[i] = ref_frand(0.5f, 1.5f);
		be[i] = ref_frand(-1, 1);
		bi[i] = ref_frand(-1, 1);
	}
	float eps = 1e-12f;
	int64_t ng = c->g1 ? 1 : n, nbe = c->b1 ? 1 : n, nbi = c->bias1 ? 1 : n;
	rt_t gt = T(g, 1, ng, 0, 0, 0, KILN_F32), bt = T(be, 1, nbe, 0, 0, 0, KILN_F32);
	rt_t out[2] = {T(y, 2, R, n, 0, 0, KILN_F32), T(c->sum ? sum : NULL, 2, R, n, 0, 0, KILN_F32)};
	set_mode(mode);
	if (c->skip) {
		rt_t in[5] = {T(x, 2, R, n, 0, 0, KILN_F32), T(sk, 2, R, n, 0, 0, KILN_F32), gt, bt,
		              T(c->bias ? bi : NULL, 1, nbi, 0, 0, 0, KILN_F32)};
		assert_int_equal(rt_op_KlnSkipLayerNorm(frame(), "sln", in, 5, out, 2, NULL, 0, &eps, 1), 0);
	} else {
		rt_t in[3] = {T(x, 2, R, n, 0, 0, KILN_F32), gt, bt};
		assert_int_equal(rt_op_KlnLayerNorm(frame(), "ln", in, 3, out, 1, NULL, 0, &eps, 1), 0);
	}
	set_mode(-1);
	double *s = ref_alloc((size_t)n * sizeof *s);
	for (int64_t r = 0; r < R; r++) {
		double mean = 0, var = 0;
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			/* the sum as the kernel rounds it, in float */
			float f = c->skip ? x[i] + sk[i] + (c->bias ? bi[c->bias1 ? 0 : k] : 0.0f) : x[i];
			if (c->skip && c->sum && !(f == sum[i] || (isnan(f) && isnan(sum[i]))))
				fail_msg("sum[%lld] = %.9g, expected %.9g", (long long)i, sum[i], f);
			s[k] = f;
			mean += f;
		}
		mean /= (double)n;
		for (int64_t k = 0; k < n; k++)
			var += (s[k] - mean) * (s[k] - mean);
		double inv = 1.0 / sqrt(var / (double)n + eps);
		for (int64_t k = 0; k < n; k++) {
			int64_t i = r * n + k;
			double ref = (s[k] - mean) * inv * g[c->g1 ? 0 : k] + be[c->b1 ? 0 : k];
			bool ok = isnan(ref) ? isnan(y[i]) :
			          fabs((double)y[i] - ref) <= 1e-5 * (fabs(ref) > 1 ? fabs(ref) : 1);
			if (!ok)
				fail_msg("%s path, n %lld, row %lld, element %lld: %.9g, reference %.12g",
				         mode_name[mode], (long long)n, (long long)r, (long long)k,
				         y[i], ref);
		}
	}
	free(x); free(sk); free(g); free(be); free(bi); free(y); free(sum); free(s);
}

static void test_layernorm_lengths(void **state)
{
	(void)state;
	int64_t lens[74];
	int nl = row_lengths(lens, true);
	for (int mode = 0; mode >= 0; mode = next_mode(mode))
		for (int i = 0; i < nl; i++) {
			int64_t n = lens[i];
			LnCase plain = {3, n, false, false, false, n % 7 == 1, n % 5 == 2, false, 0, false};
			LnCase skip = {4, n, true, n % 2 == 0, n % 3 != 0, n % 4 == 3, n % 6 == 5, n % 8 == 0,
			               0, false};
			run_ln(&plain, mode);
			run_ln(&skip, mode);
		}
}

static void test_layernorm_specials(void **state)
{
	(void)state;
	LnCase cases[] = {
		{5, 768, false, false, false, false, false, false, 30.0f, false},   /* offset mean */
		{5, 771, true, true, true, false, false, false, -30.0f, false},
		{3, 2000, true, true, false, false, false, true, 0, false},         /* > 1024: y as buffer */
		{3, 45, false, false, false, false, false, false, 0, true},         /* NaN row */
		{3, 100, true, true, true, false, false, false, 0, true},
		{2, 1, true, false, true, true, true, false, 5.0f, false},           /* n = 1: y = beta */
	};
	for (int mode = 0; mode >= 0; mode = next_mode(mode))
		for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
			run_ln(&cases[i], mode);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exp16),
		cmocka_unit_test(test_round_bf16),
		cmocka_unit_test(test_hreduce),
		cmocka_unit_test(test_exp8),
		cmocka_unit_test(test_gelu8),
		cmocka_unit_test(test_hreduce8),
		cmocka_unit_test(test_mode_switch),
		cmocka_unit_test(test_softmax_lengths),
		cmocka_unit_test(test_softmax_specials),
		cmocka_unit_test(test_layernorm_lengths),
		cmocka_unit_test(test_layernorm_specials),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
