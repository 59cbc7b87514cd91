/* kernels_norm.c: the fused ops of the norm and activation forms that
 * fuse-norm / fuse-gelu recognize besides the BERT ones (kernels_fused.c):
 *
 *   KlnRMSNorm(x[..., H], gamma[H], skip?) -> y like x, sum?   fa = [epsilon]
 *       s = x (+ skip, of x's shape: a residual Add before the norm);
 *       y = s / sqrt(mean(s^2 over the last axis) + epsilon) * gamma;
 *       sum = s, written when asked for (it needs skip)
 *       (T5, LLaMA, SmolLM's residual + norm; gamma may be one element,
 *       broadcast).  Rows run on AVX-512, AVX2 + FMA, NEON or scalar C,
 *       the best the CPU has (rt_rms_path_use forces one, for tests): the
 *       squares summed in float lanes or, in C, in double; everything else
 *       rounds alike on every path.
 *   KlnGelu with approximate 2 (QuickGELU, CLIP): y = x * sigmoid(1.702 x),
 *       called from KlnGelu's kernel (rt_quick_gelu).
 *
 * Rows are split over the pool with rt_par; QuickGELU is elementwise. */
#include <math.h>
#include <string.h>

#include "rt_internal.h"
#include "vmath.h"

/* ---- KlnRMSNorm ---- */

/* Its row paths.  They differ only in how the squares are summed (double
 * in C, float lanes in SIMD); the sum and y = s * inv * gamma round alike. */
enum { RMS_C, RMS_AVX2, RMS_AVX512, RMS_NEON };

typedef struct rms_job {
	const float *x, *skip, *gamma;
	float *y, *sum;     /* sum: x + skip (output 1) or NULL */
	int64_t n;
	bool g1;
	int path;
	float eps;
} rms_job;

static float rms_inv(const rms_job *j, double ss)
{
	return (float)(1.0 / sqrt(ss / (double)j->n + j->eps));
}

/* One row: s = x + k2 when k2 (written to s), then y = s * inv * gamma;
 * without k2, s is x.  s may be y (the sum is read back element by element). */
static void rms_row_c(const rms_job *j, const float *x, const float *k2, float *s, float *y)
{
	int64_t n = j->n;
	double acc = 0;
	for (int64_t k = 0; k < n; k++) {
		float v = x[k];
		if (k2)
			s[k] = v = v + k2[k];
		acc += (double)v * v;
	}
	float inv = rms_inv(j, acc);
	const float *src = k2 ? s : x;
	for (int64_t k = 0; k < n; k++)
		y[k] = src[k] * inv * j->gamma[j->g1 ? 0 : k];
}

#if defined(__x86_64__)
/* rms_row_c in 8 lanes, two accumulators; the last n % 8 scalar. */
VM_AVX2
static void rms_row_avx2(const rms_job *j, const float *x, const float *k2, float *s, float *y)
{
	int64_t n = j->n, k = 0;
	__m256 a0 = _mm256_setzero_ps(), a1 = a0;
	for (; k + 16 <= n; k += 16) {
		__m256 v0 = _mm256_loadu_ps(x + k), v1 = _mm256_loadu_ps(x + k + 8);
		if (k2) {
			v0 = _mm256_add_ps(v0, _mm256_loadu_ps(k2 + k));
			v1 = _mm256_add_ps(v1, _mm256_loadu_ps(k2 + k + 8));
			_mm256_storeu_ps(s + k, v0);
			_mm256_storeu_ps(s + k + 8, v1);
		}
		a0 = _mm256_fmadd_ps(v0, v0, a0);
		a1 = _mm256_fmadd_ps(v1, v1, a1);
	}
	for (; k + 8 <= n; k += 8) {
		__m256 v = _mm256_loadu_ps(x + k);
		if (k2) {
			v = _mm256_add_ps(v, _mm256_loadu_ps(k2 + k));
			_mm256_storeu_ps(s + k, v);
		}
		a0 = _mm256_fmadd_ps(v, v, a0);
	}
	double acc = vm_hsum8(_mm256_add_ps(a0, a1));
	for (; k < n; k++) {
		float v = x[k];
		if (k2)
			s[k] = v = v + k2[k];
		acc += (double)v * v;
	}
	float inv = rms_inv(j, acc);
	const float *src = k2 ? s : x;
	__m256 vi = _mm256_set1_ps(inv), g = _mm256_set1_ps(j->gamma[0]);
	for (k = 0; k + 8 <= n; k += 8) {
		if (!j->g1)
			g = _mm256_loadu_ps(j->gamma + k);
		_mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(src + k), vi), g));
	}
	for (; k < n; k++)
		y[k] = src[k] * inv * j->gamma[j->g1 ? 0 : k];
}

/* rms_row_c in 16 lanes, two accumulators, masked tail (lanes 0). */
VM_AVX512
static void rms_row_avx512(const rms_job *j, const float *x, const float *k2, float *s, float *y)
{
	int64_t n = j->n, k = 0;
	__m512 a0 = _mm512_setzero_ps(), a1 = a0;
	for (; k + 32 <= n; k += 32) {
		__m512 v0 = _mm512_loadu_ps(x + k), v1 = _mm512_loadu_ps(x + k + 16);
		if (k2) {
			v0 = _mm512_add_ps(v0, _mm512_loadu_ps(k2 + k));
			v1 = _mm512_add_ps(v1, _mm512_loadu_ps(k2 + k + 16));
			_mm512_storeu_ps(s + k, v0);
			_mm512_storeu_ps(s + k + 16, v1);
		}
		a0 = _mm512_fmadd_ps(v0, v0, a0);
		a1 = _mm512_fmadd_ps(v1, v1, a1);
	}
	for (; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		__m512 v = _mm512_maskz_loadu_ps(t, x + k);
		if (k2) {
			v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(t, k2 + k));
			_mm512_mask_storeu_ps(s + k, t, v);
		}
		a0 = _mm512_fmadd_ps(v, v, a0);
	}
	float inv = rms_inv(j, vm_hsum16(_mm512_add_ps(a0, a1)));
	const float *src = k2 ? s : x;
	__m512 vi = _mm512_set1_ps(inv), g = _mm512_set1_ps(j->gamma[0]);
	for (k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		if (!j->g1)
			g = _mm512_maskz_loadu_ps(t, j->gamma + k);
		_mm512_mask_storeu_ps(y + k, t, _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(t, src + k), vi), g));
	}
}
#elif defined(__aarch64__)
/* rms_row_c in 4 lanes, two accumulators, tail lanes 0. */
static void rms_row_neon(const rms_job *j, const float *x, const float *k2, float *s, float *y)
{
	int64_t n = j->n, k = 0;
	float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0;
	for (; k + 8 <= n; k += 8) {
		float32x4_t v0 = vld1q_f32(x + k), v1 = vld1q_f32(x + k + 4);
		if (k2) {
			v0 = vaddq_f32(v0, vld1q_f32(k2 + k));
			v1 = vaddq_f32(v1, vld1q_f32(k2 + k + 4));
			vst1q_f32(s + k, v0);
			vst1q_f32(s + k + 4, v1);
		}
		a0 = vfmaq_f32(a0, v0, v0);
		a1 = vfmaq_f32(a1, v1, v1);
	}
	for (; k < n; k += 4) {
		float32x4_t v = vm_ld4(x + k, n - k, 0.0f);
		if (k2) {
			v = vaddq_f32(v, vm_ld4(k2 + k, n - k, 0.0f));
			vm_st4(s + k, v, n - k);
		}
		a0 = vfmaq_f32(a0, v, v);
	}
	float inv = rms_inv(j, vaddvq_f32(vaddq_f32(a0, a1)));
	const float *src = k2 ? s : x;
	float32x4_t vi = vdupq_n_f32(inv), g = vdupq_n_f32(j->gamma[0]);
	for (k = 0; k < n; k += 4) {
		if (!j->g1)
			g = vm_ld4(j->gamma + k, n - k, 0.0f);
		vm_st4(y + k, vmulq_f32(vmulq_f32(vm_ld4(src + k, n - k, 0.0f), vi), g), n - k);
	}
}
#endif

static int rms_forced = -1;    /* rt_rms_path_use: -1 the CPU's best */

static bool rms_can(int path)
{
	switch (path) {
	case RMS_C: return true;
#if defined(__x86_64__)
	case RMS_AVX2: return vm_have_avx2();
	case RMS_AVX512: return vm_have_avx512();
#elif defined(__aarch64__)
	case RMS_NEON: return true;
#endif
	default: return false;
	}
}

static int rms_path(void)
{
	int p = __atomic_load_n(&rms_forced, __ATOMIC_RELAXED);
	if (p >= 0)
		return p;
	return rms_can(RMS_AVX512) ? RMS_AVX512 : rms_can(RMS_AVX2) ? RMS_AVX2 : rms_can(RMS_NEON) ? RMS_NEON : RMS_C;
}

int rt_rms_path_use(int path)
{
	if (path >= 0 && !rms_can(path))
		return -1;
	__atomic_store_n(&rms_forced, path < 0 ? -1 : path, __ATOMIC_RELAXED);
	return 0;
}

static void rms_range(void *arg, int64_t b, int64_t e)
{
	const rms_job *j = arg;
	int64_t n = j->n;
	for (int64_t r = b; r < e; r++) {
		const float *x = j->x + r * n, *k2 = j->skip ? j->skip + r * n : NULL;
		float *y = j->y + r * n;
		float *s = j->sum ? j->sum + r * n : y;   /* the sum goes to y when not wanted */
		switch (j->path) {
#if defined(__x86_64__)
		case RMS_AVX2: rms_row_avx2(j, x, k2, s, y); break;
		case RMS_AVX512: rms_row_avx512(j, x, k2, s, y); break;
#elif defined(__aarch64__)
		case RMS_NEON: rms_row_neon(j, x, k2, s, y); break;
#endif
		default: rms_row_c(j, x, k2, s, y); break;
		}
	}
}

RT_KERNEL(KlnRMSNorm)
{
	(void)ia; (void)nia;
	const char *op = "KlnRMSNorm";
	if (nin < 2 || nout < 1 || nfa < RT_NFA_KlnRMSNorm)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *x = &in[0], *g = &in[1];
	const rt_t *skip = nin > 2 && in[2].data ? &in[2] : NULL;
	rt_t *sum = nout > 1 && out[1].data ? &out[1] : NULL;
	if (!x->data || !g->data)
		return rt_error(f, "node '%s' (%s): an input is missing", loc, op);
	if (x->dtype != KILN_F32 || g->dtype != KILN_F32 || out[0].dtype != KILN_F32 ||
	    (skip && skip->dtype != KILN_F32) || (sum && sum->dtype != KILN_F32))
		return rt_error(f, "node '%s' (%s): x, gamma, skip and the outputs must be f32", loc, op);
	if (x->rank < 1)
		return rt_error(f, "node '%s' (%s): input must have rank >= 1", loc, op);
	rms_job j = {x->data, skip ? skip->data : NULL, g->data, out[0].data, sum ? sum->data : NULL,
	             x->dims[x->rank - 1], false, rms_path(), fa[RT_FA_KlnRMSNorm_epsilon]};
	int64_t total = rt_numel(x), ng = rt_numel(g);
	if (rt_numel(&out[0]) != total)
		return rt_error(f, "node '%s' (%s): output has the wrong size", loc, op);
	if (skip && rt_numel(skip) != total)
		return rt_error(f, "node '%s' (%s): skip must have the input's shape", loc, op);
	if (sum && (!skip || rt_numel(sum) != total))
		return rt_error(f, "node '%s' (%s): the sum output needs a skip input of x's shape", loc, op);
	if (ng != j.n && ng != 1)
		return rt_error(f, "node '%s' (%s): gamma has %lld elements, expected %lld", loc, op,
		                (long long)ng, (long long)j.n);
	j.g1 = ng == 1;
	if (j.n == 0 || total == 0)
		return 0;
	rt_par(f, total / j.n, j.n * 4, rms_range, &j);
	return 0;
}

/* ---- QuickGELU ---- */

typedef struct qg_job { const float *x; float *y; } qg_job;

static void quick_gelu_range(void *arg, int64_t b, int64_t e)
{
	const qg_job *j = arg;
	for (int64_t i = b; i < e; i++) {
		float v = j->x[i];
		j->y[i] = v / (1.0f + expf(-1.702f * v));
	}
}

void rt_quick_gelu(kiln_frame *f, const float *x, float *y, int64_t n)
{
	qg_job j = {x, y};
	rt_par(f, n, 20, quick_gelu_range, &j);
}
