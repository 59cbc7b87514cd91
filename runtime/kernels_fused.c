/* kernels_fused.c: kiln's fused ops (Kln*, created by passes/), f32.
 *
 * Attributes arrive in the named slots of runtime/fused_attrs.def:
 * ia[RT_IA_<Op>_<name>], fa[RT_FA_<Op>_<name>] (RT_NIA_<Op> ints and
 * RT_NFA_<Op> floats).  Per op:
 *
 *   KlnGemm(A[..., K], W[K, N], bias[N]?) -> [..., N]
 *       ia = [act, panel, wtype]  act: 0 none, 1 GELU erf, 2 GELU tanh,
 *       3 QuickGELU (x sigmoid(1.702 x)), applied after the bias; panel: RT_GEMM_PANEL when W's data is in
 *       the panel layout of rt.h (the backend packs constant weights), 0 (or
 *       absent) when it is row-major; wtype: RT_GEMM_W_BF16 when those
 *       panels hold bf16 (kiln compile --fpmath=bf16), else RT_GEMM_W_F32
 *       (or absent).
 *   KlnLayerNorm(x[..., H], gamma[H], beta[H])               fa = [epsilon]
 *   KlnSkipLayerNorm(x, skip, gamma, beta, bias?) -> y, sum?  fa = [epsilon]
 *       sum = x + skip (+ bias); y = LayerNorm(sum)
 *   KlnAttention(Q[B,Sq,*], K[B,Sk,*], V[B,Sk,*], bias?, mask?, cu_seqlens?) -> [B, Sq, H*Dv]
 *       ia = [head_size D, k_offset, layout, nan_guard, num_heads H, q_offset,
 *             v_head_size Dv, v_offset, causal, kv_num_heads, kv_tiled,
 *             mask_from, bias_from, mask_replace, fpmath], fa =
 *             [mask_filter, scale, causal_fill]
 *       kv_num_heads Hkv (0: H) divides H: K and V hold Hkv heads, Q head h
 *       reads K/V head h / (H / Hkv) (grouped-query attention, K/V repeated
 *       head by head), or with kv_tiled 1 head h % Hkv (K/V tiled along the
 *       heads, torch's Tensor.repeat); callers of 10 ints: kv_tiled 0
 *       layout 1: Q, K, V and the output are time-major, [S, B, *] (XLNet)
 *       head h of Q is columns q_offset + h*D .. + D of Q's last dim (K, V
 *       alike), so Q, K, V may be one packed tensor.  scores = scale * Q K^T
 *       + bias (broadcast to [B, H, Sq, Sk]) + pad, pad = 0 where
 *       mask[b, k] == 1, else (1 - mask[b, k]) * mask_filter (so a bool mask
 *       and a -inf filter work); causal: key k of query q is past the
 *       causal edge when k > q + (Sk - Sq); there causal 1 adds causal_fill
 *       to the score (after bias and pad: an additive causal bias), causal
 *       2 sets the scaled score to causal_fill before bias and pad are added
 *       (Where(causal, scores, fill) in the graph); no mask is materialized;
 *       mask_replace 1 (a Where(pad, scores, F) of finite F): no pad is
 *       added, a key with mask[b, k] != 1 gets the score mask_filter after
 *       scale, bias and causal fill (the last step, so a fully masked row
 *       is uniform as in the graph);
 *       softmax over keys (a row of -inf gives NaN as Softmax does; with
 *       nan_guard NaN probabilities become 0, as SDPA exports do); times V.
 *       With in[5] = cu_seqlens (i32 [B+1], padding-free batches): Q, K, V
 *       and the output are [1, T, *], sequence b the rows cu[b] .. cu[b+1]-1,
 *       each attending over its own rows only (no mask, no bias, layout 0).
 *       fpmath 1 (--fpmath=bf16): Q, K, V and the probabilities rounded to
 *       bf16 for Q K^T and P V, sums and softmax in f32 (att_block_abf on
 *       AVX512_BF16, att_block_bf16 elsewhere).
 *   KlnEmbedLayerNorm(ids[B,S], word[V,H], gamma, beta, pos_ids?, pos?, seg_ids?, seg?)
 *       -> y[B,S,H], sum?   fa = [epsilon]
 *       sum = word[ids] + pos[pos_ids] + seg[seg_ids], indices broadcast to
 *       [B, S] (rank 1 = [S]); negative indices count from the end; every
 *       index is checked against its table.
 *   KlnGelu(x)  ia = [approximate] (0 erf, 1 tanh, 2 QuickGELU: kernels_norm.c)
 *
 * Work is split over rows (or batch x head x query blocks) with rt_par.
 *
 * The attention softmax and the layer norms have a SIMD path (vector math
 * from vmath.h: AVX-512 on x86-64, NEON on aarch64), an AVX2 + FMA one
 * (x86-64 without AVX-512) and a scalar one, chosen once from the CPU
 * (rt_fused_simd_use overrides it).  The attention's scalar path (and
 * NEON's) take Q K^T and P V from rt_sgemm; its AVX2 path is one fused
 * kernel (its own micro-kernel, softmax on the scores while they are in
 * L1: see "the fused AVX2 attention" below), and so is its AVX-512 path on
 * x86-64 ("the fused AVX-512 attention", 6 rows by 32 keys or columns, the
 * softmax rows of softmax_row_avx512 between the products).  All follow the
 * semantics above; they differ only in rounding (the vector paths sum in
 * 16, 8 or 4x4 float lanes, the scalar layer norm in double; AVX2's exp
 * flushes results below exp(-87) to 0; the fused path applies 1/sum to
 * the output instead of to the probabilities). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "rt_internal.h"
#include "vmath.h"

/* rt_fused_simd_use: -1 auto, 0 scalar, 1 SIMD, 2 AVX2 */
static int simd_forced = -1;

static bool have_avx2(void)
{
#if defined(__x86_64__)
	return vm_have_avx2();
#else
	return false;
#endif
}

/* the attention's and the layer norms' path: 0 scalar, 1 wide SIMD
 * (AVX-512, NEON), 2 AVX2 + FMA (where the CPU has no AVX-512) */
static int att_path(void)
{
	int m = __atomic_load_n(&simd_forced, __ATOMIC_RELAXED);
	if (m >= 0)
		return m;
	return vm_have_simd() ? 1 : have_avx2() ? 2 : 0;
}

int rt_fused_simd_use(int on)
{
	if ((on == 1 && !vm_have_simd()) || (on == 2 && !have_avx2()) || on > 2)
		return -1;
	__atomic_store_n(&simd_forced, on < 0 ? -1 : on, __ATOMIC_RELAXED);
	return 0;
}

int rt_fused_path(void)
{
	return att_path();
}

static int need_f32(kiln_frame *f, const char *loc, const char *op, const rt_t *t, const char *what)
{
	if (!t->data)
		return rt_error(f, "node '%s' (%s): %s is missing", loc, op, what);
	if (t->dtype != KILN_F32)
		return rt_error(f, "node '%s' (%s): %s must be f32, got %s", loc, op, what,
		                rt_dtype_name(t->dtype));
	return 0;
}

/* t is a vector of length n (or one element, broadcast). */
static int need_vec(kiln_frame *f, const char *loc, const char *op, const rt_t *t, int64_t n,
                    const char *what)
{
	if (need_f32(f, loc, op, t, what))
		return 1;
	int64_t m = rt_numel(t);
	if (m != n && m != 1)
		return rt_error(f, "node '%s' (%s): %s has %lld elements, expected %lld", loc, op, what,
		                (long long)m, (long long)n);
	return 0;
}

/* ---- KlnGemm ---- */

/* One call of the runtime's GEMM (runtime/gemm.c) with the bias and GELU
 * as its epilogue; it splits the work over the pool itself. */
RT_KERNEL(KlnGemm)
{
	const char *op = "KlnGemm";
	if (nin < 2 || nout < 1 || nia <= RT_IA_KlnGemm_act)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *A = &in[0], *W = &in[1];
	if (need_f32(f, loc, op, A, "A") || need_f32(f, loc, op, W, "W") ||
	    need_f32(f, loc, op, &out[0], "output"))
		return 1;
	if (A->rank < 1 || W->rank != 2 || A->dims[A->rank - 1] != W->dims[0])
		return rt_error(f, "node '%s' (%s): A's last dim must equal W's rows", loc, op);
	int64_t K = W->dims[0], N = W->dims[1];
	int64_t M = K ? rt_numel(A) / K : rt_numel(&out[0]) / (N ? N : 1);
	if (rt_numel(&out[0]) != M * N)
		return rt_error(f, "node '%s' (%s): output has the wrong size", loc, op);
	rt_gemm_epi epi = {NULL, (int)ia[RT_IA_KlnGemm_act]};
	/* the backend's slots may be left out: row-major f32 */
	int64_t panel = nia > RT_IA_KlnGemm_panel ? ia[RT_IA_KlnGemm_panel] : 0;
	int64_t wtype = nia > RT_IA_KlnGemm_wtype ? ia[RT_IA_KlnGemm_wtype] : RT_GEMM_W_F32;
	if (panel != 0 && panel != RT_GEMM_PANEL)
		return rt_error(f, "node '%s' (%s): unknown weight layout %lld", loc, op, (long long)panel);
	if (wtype != RT_GEMM_W_F32 && (wtype != RT_GEMM_W_BF16 || !panel))
		return rt_error(f, "node '%s' (%s): unknown weight type %lld", loc, op, (long long)wtype);
	if (nin > 2 && in[2].data) {
		if (need_f32(f, loc, op, &in[2], "bias"))
			return 1;
		if (rt_numel(&in[2]) != N)
			return rt_error(f, "node '%s' (%s): bias must have %lld elements", loc, op,
			                (long long)N);
		epi.bias = in[2].data;
	}
	if (epi.act < 0 || epi.act > 3)
		return rt_error(f, "node '%s' (%s): unknown activation %d", loc, op, epi.act);
	if (M == 0 || N == 0)
		return 0;
	if (wtype == RT_GEMM_W_BF16)
		rt_sgemm_panels_bf16(f ? f->pool : NULL, M, N, K, A->data, K, W->data, out[0].data, N,
		                     &epi);
	else if (panel)
		rt_sgemm_panels(f ? f->pool : NULL, M, N, K, A->data, K, W->data, out[0].data, N, &epi);
	else
		rt_sgemm_epi(f ? f->pool : NULL, 0, 0, M, N, K, 1.0f, A->data, K, W->data, N, 0.0f,
		             out[0].data, N, &epi);
	return 0;
}

/* ---- layer norms ---- */

typedef struct ln_job {
	const float *x, *skip, *bias, *gamma, *beta;
	float *y, *sum;
	int64_t n;
	bool g1, b1, bias1;
	int path;                /* att_path(): 0 C, 1 AVX-512 or NEON, 2 AVX2 + FMA */
	float eps;
} ln_job;

/* LayerNorm of one row s (already summed) into y (y may be s), scalar:
 * mean and centered variance accumulated in double. */
static void ln_row_c(const ln_job *j, const float *s, float *y)
{
	int64_t n = j->n;
	double acc = 0;
	for (int64_t k = 0; k < n; k++)
		acc += s[k];
	float mean = (float)(acc / (double)n);
	double v = 0;
	for (int64_t k = 0; k < n; k++)
		v += (double)(s[k] - mean) * (s[k] - mean);
	float inv = (float)(1.0 / sqrt(v / (double)n + j->eps));
	for (int64_t k = 0; k < n; k++)
		y[k] = (s[k] - mean) * inv * j->gamma[j->g1 ? 0 : k] + j->beta[j->b1 ? 0 : k];
}

#if defined(__x86_64__)
/* Sum of s[0..n) in 16 float lanes, 4 accumulators (so 64 partial sums:
 * accurate enough for rows of a few thousand). */
VM_AVX512
static float sum_avx512(const float *s, int64_t n)
{
	__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 64 <= n; k += 64) {
		a0 = _mm512_add_ps(a0, _mm512_loadu_ps(s + k));
		a1 = _mm512_add_ps(a1, _mm512_loadu_ps(s + k + 16));
		a2 = _mm512_add_ps(a2, _mm512_loadu_ps(s + k + 32));
		a3 = _mm512_add_ps(a3, _mm512_loadu_ps(s + k + 48));
	}
	for (; k < n; k += 16)
		a0 = _mm512_add_ps(a0, _mm512_maskz_loadu_ps(vm_tail(n - k), s + k));
	return vm_hsum16(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* Sum of (s[k] - mean)^2, as sum_avx512 (tail lanes masked to 0). */
VM_AVX512
static float sqdev_avx512(const float *s, int64_t n, float mean)
{
	__m512 m = _mm512_set1_ps(mean);
	__m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 64 <= n; k += 64) {
		__m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(s + k), m);
		__m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(s + k + 16), m);
		__m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(s + k + 32), m);
		__m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(s + k + 48), m);
		a0 = _mm512_fmadd_ps(d0, d0, a0);
		a1 = _mm512_fmadd_ps(d1, d1, a1);
		a2 = _mm512_fmadd_ps(d2, d2, a2);
		a3 = _mm512_fmadd_ps(d3, d3, a3);
	}
	for (; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		__m512 d = _mm512_maskz_sub_ps(t, _mm512_maskz_loadu_ps(t, s + k), m);
		a0 = _mm512_fmadd_ps(d, d, a0);
	}
	return vm_hsum16(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}

/* ln_row_c in 16 lanes: two passes (mean, then centered variance), then
 * y = (s - mean) * inv * gamma + beta. */
VM_AVX512
static void ln_row_avx512(const ln_job *j, const float *s, float *y)
{
	int64_t n = j->n;
	float mean = (float)((double)sum_avx512(s, n) / (double)n);
	double v = sqdev_avx512(s, n, mean);
	float inv = (float)(1.0 / sqrt(v / (double)n + j->eps));
	__m512 vm = _mm512_set1_ps(mean), vi = _mm512_set1_ps(inv);
	__m512 g = _mm512_set1_ps(j->gamma[0]), b = _mm512_set1_ps(j->beta[0]);
	for (int64_t k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		__m512 x = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + k), vm), vi);
		if (!j->g1)
			g = _mm512_maskz_loadu_ps(t, j->gamma + k);
		if (!j->b1)
			b = _mm512_maskz_loadu_ps(t, j->beta + k);
		_mm512_mask_storeu_ps(y + k, t, _mm512_fmadd_ps(x, g, b));
	}
}

/* s = x + skip (+ bias), in the scalar path's order of additions. */
VM_AVX512
static void skip_sum_avx512(const ln_job *j, const float *x, const float *k2, float *s)
{
	int64_t n = j->n;
	__m512 bb = _mm512_set1_ps(j->bias ? j->bias[0] : 0.0f);
	for (int64_t k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		__m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(t, x + k), _mm512_maskz_loadu_ps(t, k2 + k));
		if (j->bias)
			v = _mm512_add_ps(v, j->bias1 ? bb : _mm512_maskz_loadu_ps(t, j->bias + k));
		_mm512_mask_storeu_ps(s + k, t, v);
	}
}

/* The first min(r, 8) lanes of an AVX2 mask load or store (r >= 0). */
VM_AVX2
static inline __m256i tail8(int64_t r)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(r < 8 ? r : 8)),
	                          _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* sum_avx512 in 8 lanes, 4 accumulators (32 partial sums); the tail lanes
 * are loaded masked (0). */
VM_AVX2
static float sum_avx2(const float *s, int64_t n)
{
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 32 <= n; k += 32) {
		a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s + k));
		a1 = _mm256_add_ps(a1, _mm256_loadu_ps(s + k + 8));
		a2 = _mm256_add_ps(a2, _mm256_loadu_ps(s + k + 16));
		a3 = _mm256_add_ps(a3, _mm256_loadu_ps(s + k + 24));
	}
	for (; k + 8 <= n; k += 8)
		a0 = _mm256_add_ps(a0, _mm256_loadu_ps(s + k));
	if (k < n)
		a1 = _mm256_add_ps(a1, _mm256_maskload_ps(s + k, tail8(n - k)));
	return vm_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* Sum of (s[k] - mean)^2, as sum_avx2 (tail lanes 0 after the subtraction). */
VM_AVX2
static float sqdev_avx2(const float *s, int64_t n, float mean)
{
	__m256 m = _mm256_set1_ps(mean);
	__m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 32 <= n; k += 32) {
		__m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(s + k), m);
		__m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(s + k + 8), m);
		__m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(s + k + 16), m);
		__m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(s + k + 24), m);
		a0 = _mm256_fmadd_ps(d0, d0, a0);
		a1 = _mm256_fmadd_ps(d1, d1, a1);
		a2 = _mm256_fmadd_ps(d2, d2, a2);
		a3 = _mm256_fmadd_ps(d3, d3, a3);
	}
	for (; k + 8 <= n; k += 8) {
		__m256 d = _mm256_sub_ps(_mm256_loadu_ps(s + k), m);
		a0 = _mm256_fmadd_ps(d, d, a0);
	}
	if (k < n) {
		__m256i t = tail8(n - k);
		__m256 d = _mm256_and_ps(_mm256_sub_ps(_mm256_maskload_ps(s + k, t), m),
		                         _mm256_castsi256_ps(t));
		a1 = _mm256_fmadd_ps(d, d, a1);
	}
	return vm_hsum8(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
}

/* y[k..k+8) (the first r lanes when r < 8) = (s - mean) * inv * gamma + beta */
VM_AVX2
static inline void ln_store8(const ln_job *j, const float *s, float *y, int64_t k, int64_t r,
                             __m256 vm, __m256 vi)
{
	__m256i t = tail8(r);
	bool full = r >= 8;
	__m256 x = full ? _mm256_loadu_ps(s + k) : _mm256_maskload_ps(s + k, t);
	__m256 g = j->g1 ? _mm256_set1_ps(j->gamma[0])
	         : full ? _mm256_loadu_ps(j->gamma + k) : _mm256_maskload_ps(j->gamma + k, t);
	__m256 b = j->b1 ? _mm256_set1_ps(j->beta[0])
	         : full ? _mm256_loadu_ps(j->beta + k) : _mm256_maskload_ps(j->beta + k, t);
	__m256 v = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_sub_ps(x, vm), vi), g, b);
	if (full)
		_mm256_storeu_ps(y + k, v);
	else
		_mm256_maskstore_ps(y + k, t, v);
}

/* ln_row_avx512 in 8 lanes. */
VM_AVX2
static void ln_row_avx2(const ln_job *j, const float *s, float *y)
{
	int64_t n = j->n;
	float mean = (float)((double)sum_avx2(s, n) / (double)n);
	double v = sqdev_avx2(s, n, mean);
	float inv = (float)(1.0 / sqrt(v / (double)n + j->eps));
	__m256 vm = _mm256_set1_ps(mean), vi = _mm256_set1_ps(inv);
	for (int64_t k = 0; k < n; k += 8)
		ln_store8(j, s, y, k, n - k, vm, vi);
}

/* s = x + skip (+ bias), in the scalar path's order of additions. */
VM_AVX2
static void skip_sum_avx2(const ln_job *j, const float *x, const float *k2, float *s)
{
	int64_t n = j->n, k = 0;
	__m256 bb = _mm256_set1_ps(j->bias ? j->bias[0] : 0.0f);
	for (; k + 8 <= n; k += 8) {
		__m256 v = _mm256_add_ps(_mm256_loadu_ps(x + k), _mm256_loadu_ps(k2 + k));
		if (j->bias)
			v = _mm256_add_ps(v, j->bias1 ? bb : _mm256_loadu_ps(j->bias + k));
		_mm256_storeu_ps(s + k, v);
	}
	if (k < n) {
		__m256i t = tail8(n - k);
		__m256 v = _mm256_add_ps(_mm256_maskload_ps(x + k, t), _mm256_maskload_ps(k2 + k, t));
		if (j->bias)
			v = _mm256_add_ps(v, j->bias1 ? bb : _mm256_maskload_ps(j->bias + k, t));
		_mm256_maskstore_ps(s + k, t, v);
	}
}

#define ln_row_simd ln_row_avx512
#define skip_sum_simd skip_sum_avx512
#elif defined(__aarch64__)
/* The AVX-512 path's sums in 4 float lanes, 4 accumulators (16 partial
 * sums); tail lanes 0. */
static float sum_neon(const float *s, int64_t n)
{
	float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 16 <= n; k += 16) {
		a0 = vaddq_f32(a0, vld1q_f32(s + k));
		a1 = vaddq_f32(a1, vld1q_f32(s + k + 4));
		a2 = vaddq_f32(a2, vld1q_f32(s + k + 8));
		a3 = vaddq_f32(a3, vld1q_f32(s + k + 12));
	}
	for (; k < n; k += 4)
		a0 = vaddq_f32(a0, vm_ld4(s + k, n - k, 0.0f));
	return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

static float sqdev_neon(const float *s, int64_t n, float mean)
{
	float32x4_t m = vdupq_n_f32(mean);
	float32x4_t a0 = vdupq_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
	int64_t k = 0;
	for (; k + 16 <= n; k += 16) {
		float32x4_t d0 = vsubq_f32(vld1q_f32(s + k), m);
		float32x4_t d1 = vsubq_f32(vld1q_f32(s + k + 4), m);
		float32x4_t d2 = vsubq_f32(vld1q_f32(s + k + 8), m);
		float32x4_t d3 = vsubq_f32(vld1q_f32(s + k + 12), m);
		a0 = vfmaq_f32(a0, d0, d0);
		a1 = vfmaq_f32(a1, d1, d1);
		a2 = vfmaq_f32(a2, d2, d2);
		a3 = vfmaq_f32(a3, d3, d3);
	}
	for (; k < n; k += 4) {
		float32x4_t d = vsubq_f32(vm_ld4(s + k, n - k, mean), m);   /* tail lanes 0 */
		a0 = vfmaq_f32(a0, d, d);
	}
	return vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
}

static void ln_row_neon(const ln_job *j, const float *s, float *y)
{
	int64_t n = j->n;
	float mean = (float)((double)sum_neon(s, n) / (double)n);
	double v = sqdev_neon(s, n, mean);
	float inv = (float)(1.0 / sqrt(v / (double)n + j->eps));
	float32x4_t vm = vdupq_n_f32(mean), vi = vdupq_n_f32(inv);
	float32x4_t g = vdupq_n_f32(j->gamma[0]), b = vdupq_n_f32(j->beta[0]);
	for (int64_t k = 0; k < n; k += 4) {
		float32x4_t x = vmulq_f32(vsubq_f32(vm_ld4(s + k, n - k, 0.0f), vm), vi);
		if (!j->g1)
			g = vm_ld4(j->gamma + k, n - k, 0.0f);
		if (!j->b1)
			b = vm_ld4(j->beta + k, n - k, 0.0f);
		vm_st4(y + k, vfmaq_f32(b, x, g), n - k);
	}
}

static void skip_sum_neon(const ln_job *j, const float *x, const float *k2, float *s)
{
	int64_t n = j->n;
	float32x4_t bb = vdupq_n_f32(j->bias ? j->bias[0] : 0.0f);
	for (int64_t k = 0; k < n; k += 4) {
		float32x4_t v = vaddq_f32(vm_ld4(x + k, n - k, 0.0f), vm_ld4(k2 + k, n - k, 0.0f));
		if (j->bias)
			v = vaddq_f32(v, j->bias1 ? bb : vm_ld4(j->bias + k, n - k, 0.0f));
		vm_st4(s + k, v, n - k);
	}
}
#define ln_row_simd ln_row_neon
#define skip_sum_simd skip_sum_neon
#else
/* no SIMD path (vm_have_simd() is false, j->path never 1) */
#define ln_row_simd ln_row_c
static void skip_sum_simd(const ln_job *j, const float *x, const float *k2, float *s)
{
	(void)j; (void)x; (void)k2; (void)s;
}
#endif

static void ln_row(const ln_job *j, const float *s, float *y)
{
	switch (j->path) {
	case 1: ln_row_simd(j, s, y); break;
#if defined(__x86_64__)
	case 2: ln_row_avx2(j, s, y); break;
#endif
	default: ln_row_c(j, s, y); break;
	}
}

/* s = x + skip (+ bias) */
static void skip_sum(const ln_job *j, const float *x, const float *k2, float *s)
{
	switch (j->path) {
	case 1: skip_sum_simd(j, x, k2, s); break;
#if defined(__x86_64__)
	case 2: skip_sum_avx2(j, x, k2, s); break;
#endif
	default:
		for (int64_t k = 0; k < j->n; k++)
			s[k] = x[k] + k2[k] + (j->bias ? j->bias[j->bias1 ? 0 : k] : 0.0f);
		break;
	}
}

static void ln_range(void *arg, int64_t b, int64_t e)
{
	const ln_job *j = arg;
	int64_t n = j->n;
	float tmp[1024];
	for (int64_t r = b; r < e; r++) {
		const float *x = j->x + r * n;
		float *y = j->y + r * n;
		if (!j->skip) {
			ln_row(j, x, y);
			continue;
		}
		/* the sum goes to `sum` when wanted, else to a row buffer (y itself
		 * when the row is too long: ln_row reads s[k] before writing y[k]
		 * only in its last loop, element by element or 16 at a time) */
		float *s = j->sum ? j->sum + r * n : n <= 1024 ? tmp : y;
		const float *k2 = j->skip + r * n;
		skip_sum(j, x, k2, s);
		ln_row(j, s, y);
	}
}

static int layernorm(kiln_frame *f, const char *loc, const char *op, const rt_t *in, int32_t nin,
                     rt_t *out, int32_t nout, const float *fa, int32_t nfa, bool skip)
{
	int gi = skip ? 2 : 1;
	if (nin < gi + 2 || nout < 1 || nfa < (skip ? RT_NFA_KlnSkipLayerNorm : RT_NFA_KlnLayerNorm))
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *x = &in[0];
	if (need_f32(f, loc, op, x, "input") || need_f32(f, loc, op, &out[0], "output"))
		return 1;
	if (x->rank < 1)
		return rt_error(f, "node '%s' (%s): input must have rank >= 1", loc, op);
	ln_job j = {0};
	j.n = x->dims[x->rank - 1];
	j.eps = fa[skip ? RT_FA_KlnSkipLayerNorm_epsilon : RT_FA_KlnLayerNorm_epsilon];
	j.path = att_path();
	int64_t total = rt_numel(x);
	if (rt_numel(&out[0]) != total)
		return rt_error(f, "node '%s' (%s): output has the wrong size", loc, op);
	if (need_vec(f, loc, op, &in[gi], j.n, "gamma") || need_vec(f, loc, op, &in[gi + 1], j.n, "beta"))
		return 1;
	j.x = x->data;
	j.gamma = in[gi].data;
	j.beta = in[gi + 1].data;
	j.g1 = rt_numel(&in[gi]) == 1;
	j.b1 = rt_numel(&in[gi + 1]) == 1;
	j.y = out[0].data;
	if (skip) {
		if (need_f32(f, loc, op, &in[1], "skip"))
			return 1;
		if (rt_numel(&in[1]) != total)
			return rt_error(f, "node '%s' (%s): skip must have the input's shape", loc, op);
		j.skip = in[1].data;
		if (nin > 4 && in[4].data) {
			if (need_vec(f, loc, op, &in[4], j.n, "bias"))
				return 1;
			j.bias = in[4].data;
			j.bias1 = rt_numel(&in[4]) == 1;
		}
		if (nout > 1 && out[1].data)
			j.sum = out[1].data;
	}
	if (j.n == 0)
		return 0;
	rt_par(f, total / j.n, j.n * 8, ln_range, &j);
	return 0;
}

RT_KERNEL(KlnLayerNorm)
{
	(void)ia; (void)nia;
	return layernorm(f, loc, "KlnLayerNorm", in, nin, out, nout, fa, nfa, false);
}

RT_KERNEL(KlnSkipLayerNorm)
{
	(void)ia; (void)nia;
	return layernorm(f, loc, "KlnSkipLayerNorm", in, nin, out, nout, fa, nfa, true);
}

/* ---- KlnGelu ---- */

typedef struct gelu_job { const float *x; float *y; int approx; } gelu_job;

/* the GEMM epilogue's GELU (gemm.c: vectorized where the CPU allows) */
static void gelu_range(void *arg, int64_t b, int64_t e)
{
	const gelu_job *j = arg;
	if (j->y != j->x)
		memcpy(j->y + b, j->x + b, (size_t)(e - b) * sizeof(float));
	rt_gelu_inplace(j->y + b, e - b, j->approx);
}

RT_KERNEL(KlnGelu)
{
	const char *op = "KlnGelu";
	if (nin < 1 || nout < 1 || nia < RT_NIA_KlnGelu)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	if (need_f32(f, loc, op, &in[0], "input") || need_f32(f, loc, op, &out[0], "output"))
		return 1;
	int64_t n = rt_numel(&in[0]);
	if (rt_numel(&out[0]) != n)
		return rt_error(f, "node '%s' (%s): output has the wrong size", loc, op);
	int64_t approx = ia[RT_IA_KlnGelu_approximate];
	if (approx < 0 || approx > 2)
		return rt_error(f, "node '%s' (%s): unknown approximation %lld", loc, op, (long long)approx);
	if (approx == 2) {   /* QuickGELU: kernels_norm.c */
		rt_quick_gelu(f, in[0].data, out[0].data, n);
		return 0;
	}
	gelu_job j = {in[0].data, out[0].data, approx != 0};
	rt_par(f, n, 20, gelu_range, &j);
	return 0;
}

/* ---- KlnAttention ---- */

#define ATT_STACK 16384    /* floats of score scratch per task on the stack */
#define ATT_PAD_STACK 4096 /* floats of additive mask rows ([B, Sk]) on the stack */
#define ATT_ORD_STACK 512  /* packed sequences ordered on the stack */

typedef struct att_job {
	const float *q, *k, *v, *bias;
	const float *pad;        /* [B, Sk] additive key-padding mask, or NULL; replace: the
	                          * score of a masked key, NaN for a kept one */
	const int32_t *cu;       /* packed: sequence b is rows cu[b] .. cu[b+1]-1 (Sq, Sk its max), or NULL */
	const int64_t *ord;      /* packed: the sequences longest first (low 32 bits: b), or NULL */
	float *o;
	int64_t B, H, Sq, Sk, D, Dv;
	int64_t rep;             /* Q heads per K/V head (num_heads / kv_num_heads) */
	int64_t hkv;             /* K/V heads */
	bool tiled;              /* Q head h reads K/V head h % hkv, else h / rep */
	int64_t ldq, ldk, ldv, qo, ko, vo;
	int64_t bs[4];           /* bias element strides over [B, H, Sq, Sk] */
	int64_t rq, rk, rv, ro;  /* element step between sequence rows of Q, K, V, O */
	int64_t bq, bk, bv, bo;  /* element step between batch entries */
	int64_t rows, nqb;       /* query rows per task, query blocks per (b, h) */
	int64_t tasks, nth;      /* tasks in all; threads of the pool */
	float scale, filter;
	int causal;              /* 0 none, 1 add cfill, 2 set cfill past the causal edge */
	float cfill;
	bool guard;
	bool replace;            /* mask_replace: pad holds the masked keys' scores (att_pad) */
	int path;                /* att_path(): 0 scalar, 1 wide SIMD, 2 AVX2 */
	bool bf16;               /* fpmath 1: the products on bf16 operands (att_block_bf16) */
	bool hwbf16;             /* ... and the CPU converts to bf16 (AVX512_BF16) */
	int failed;              /* scratch allocation failed (set by tasks) */
} att_job;

/* What task t of att_range works on: (batch entry or packed sequence b,
 * Q head h) and its query rows q0 .. q0+nr-1, with their operands. */
typedef struct att_task {
	int64_t b, h;
	int64_t kv;              /* which K/V head it reads: b * hkv + its K/V head */
	int64_t Sq, Sk, q0, nr;  /* this sequence's lengths; the block's rows */
	const float *q, *k, *v;  /* its first query row, first K and V rows */
	float *o;                /* its first output row */
} att_task;

static void att_task_of(const att_job *j, int64_t t, att_task *x)
{
	int64_t bh = t / j->nqb, qb = t % j->nqb;
	x->b = bh / j->H, x->h = bh % j->H;
	if (j->ord)
		x->b = j->ord[x->b] & 0xffffffff;
	int64_t hk = j->tiled ? x->h % j->hkv : x->h / j->rep;   /* the K/V head Q head h reads */
	x->kv = x->b * j->hkv + hk;
	/* packed (cu): sequence b's own length and first row, no batch step */
	x->Sq = j->cu ? j->cu[x->b + 1] - j->cu[x->b] : j->Sq;
	x->Sk = j->cu ? x->Sq : j->Sk;
	int64_t r0 = j->cu ? j->cu[x->b] : 0, bb = j->cu ? 0 : x->b;
	x->q0 = qb * j->rows;
	x->nr = (x->q0 + j->rows < x->Sq ? x->q0 + j->rows : x->Sq) - x->q0;
	x->q = j->q + bb * j->bq + (r0 + x->q0) * j->rq + j->qo + x->h * j->D;
	x->k = j->k + bb * j->bk + r0 * j->rk + j->ko + hk * j->D;
	x->v = j->v + bb * j->bv + r0 * j->rv + j->vo + hk * j->Dv;
	x->o = j->o + bb * j->bo + (r0 + x->q0) * j->ro + x->h * j->Dv;
}

/* A block with no keys: its output rows are 0.  Returns true when done
 * (no rows, or none of them attends anything). */
static bool att_trivial(const att_job *j, const att_task *x)
{
	if (x->nr <= 0)
		return true;
	if (x->Sk != 0)
		return false;
	for (int64_t r = 0; r < x->nr; r++)
		memset(x->o + r * j->ro, 0, (size_t)j->Dv * sizeof(float));
	return true;
}

/* p rounded up to 64 bytes */
static float *align16f(float *p)
{
	return (float *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

/* One row of scores: x = row * scale + bias (step bs[3]) + pad, then
 * softmax as Softmax does: exp(x - max) / sum, a row of -inf gives NaN
 * (0 with the guard).  Keys from na on are past the causal edge: there
 * x = cfill + bias + pad (causal 2, the graph's Where replaced the scaled
 * score) or x = row * scale + bias + pad + cfill (causal 1, an additive
 * causal bias).  With replace, pad is not added: a key whose pad is not
 * NaN gets x = pad, last. */
static void softmax_row_c(const att_job *j, float *row, int64_t n, const float *bias,
                          const float *pad, int64_t na)
{
	float mx = -INFINITY;
	for (int64_t kk = 0; kk < n; kk++) {
		float x = kk >= na && j->causal == 2 ? j->cfill : row[kk] * j->scale;
		if (bias)
			x += bias[kk * j->bs[3]];
		if (pad && !j->replace)
			x += pad[kk];
		if (kk >= na && j->causal == 1)
			x += j->cfill;
		if (pad && j->replace && !isnan(pad[kk]))
			x = pad[kk];
		row[kk] = x;
		if (x > mx)
			mx = x;
	}
	float sum = 0;
	for (int64_t kk = 0; kk < n; kk++) {
		row[kk] = expf(row[kk] - mx);
		sum += row[kk];
	}
	float inv = 1.0f / sum;
	for (int64_t kk = 0; kk < n; kk++) {
		float p = row[kk] * inv;
		row[kk] = j->guard && isnan(p) ? 0.0f : p;
	}
}

#if defined(__x86_64__)
/* softmax_row_c, 16 keys at a time (the tail masked).  NaN scores leave the
 * running max alone (as `x > mx` does) and make the row NaN through exp. */
VM_AVX512
static float softmax_exp_avx512(const att_job *j, float *row, int64_t n, const float *bias,
                                const float *pad, int64_t na)
{
	__m512 sc = _mm512_set1_ps(j->scale), mx = _mm512_set1_ps(-INFINITY);
	__m512 b1 = _mm512_set1_ps(bias ? bias[0] : 0.0f), cf = _mm512_set1_ps(j->cfill);
	bool bvec = bias && j->bs[3] != 0;
	for (int64_t k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		/* lanes past the causal edge (none when na >= k + 16) */
		__mmask16 c = j->causal ? (__mmask16)(t & ~vm_tail(na > k ? na - k : 0)) : 0;
		__m512 x = _mm512_maskz_loadu_ps(t, row + k);
		__m512 bv = bias ? (bvec ? _mm512_maskz_loadu_ps(t, bias + k) : b1) : _mm512_setzero_ps();
		if (j->causal == 2) {
			x = _mm512_mask_mov_ps(_mm512_mul_ps(x, sc), c, cf);
			if (bias)
				x = _mm512_add_ps(x, bv);
		} else {
			x = bias ? _mm512_fmadd_ps(x, sc, bv) : _mm512_mul_ps(x, sc);
		}
		if (pad && !j->replace)
			x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(t, pad + k));
		if (j->causal == 1)
			x = _mm512_mask_add_ps(x, c, x, cf);
		if (pad && j->replace) {
			__m512 pv = _mm512_maskz_loadu_ps(t, pad + k);
			x = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(pv, pv, _CMP_ORD_Q), pv);
		}
		_mm512_mask_storeu_ps(row + k, t, x);
		mx = _mm512_mask_max_ps(mx, t, x, mx);
	}
	__m512 m = _mm512_set1_ps(vm_hmax16(mx)), acc = _mm512_setzero_ps();
	for (int64_t k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		__m512 e = vm_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, row + k), m));
		_mm512_mask_storeu_ps(row + k, t, e);
		acc = _mm512_mask_add_ps(acc, t, acc, e);
	}
	return 1.0f / vm_hsum16(acc);
}

/* p = e * inv, NaN -> 0 with the guard (16 lanes) */
VM_AVX512 __attribute__((always_inline))
static inline __m512 softmax_p16(const att_job *j, const float *row, __mmask16 t, __m512 inv)
{
	__m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps(t, row), inv);
	if (j->guard)
		p = _mm512_mask_mov_ps(p, _mm512_cmp_ps_mask(p, p, _CMP_UNORD_Q), _mm512_setzero_ps());
	return p;
}

/* passes 1 and 2 (scores and exponentials, in row), then p in place */
VM_AVX512
static void softmax_row_avx512(const att_job *j, float *row, int64_t n, const float *bias,
                               const float *pad, int64_t na)
{
	__m512 inv = _mm512_set1_ps(softmax_exp_avx512(j, row, n, bias, pad, na));
	for (int64_t k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		_mm512_mask_storeu_ps(row + k, t, softmax_p16(j, row + k, t, inv));
	}
}

#define softmax_row_simd softmax_row_avx512

/* ---- the fused AVX2 attention (path 2) ----
 *
 * Per (batch, K/V head), K is packed once into panels of 16 keys ([D][16],
 * keys past Sk zero) and V into rows of dvp floats (Dv rounded up to 16,
 * zero beyond Dv), both contiguous: Q/K/V rows are often thousands of
 * floats apart (BERT's packed QKV: 2304), a stride that maps a head's rows
 * onto a few L1 sets.  Then per strip of up to 6 query rows:
 *   - the strip's scores by a 6x16 FMA micro-kernel (Q broadcast in place),
 *     softmax's first pass applied while they are in registers (scale,
 *     bias, pad, causal fill, running max; keys past Sk set to -inf);
 *   - e = exp(x - max) and its sum over each row, in L1;
 *   - E V by the same micro-kernel, 1/sum applied as the rows are stored.
 * The scores are rt_sgemm's FMA chain (d in order from 0) and the first
 * pass and the exponentials softmax_row_avx512's arithmetic in 8 lanes, so
 * they match the other paths bit for bit; the output differs from them by
 * where 1/sum is applied (a rounding).  With nan_guard a row whose sum is
 * NaN (a NaN score, or no finite one) takes probabilities 0, as there. */

#define ATT_MR 6     /* query rows per strip */
#define ATT_NR 16    /* keys per K panel; output columns per tile */

/* the rows of the next strip, left rows left: ATT_MR; 7..10 left: two
 * strips of 4 or 5 (a strip of 1 or 2 rows keeps too few FMA chains busy) */
static int64_t att_strip_rows(int64_t left)
{
	return left <= ATT_MR ? left : left <= 10 ? (left + 1) / 2 : ATT_MR;
}

/* c[2r], c[2r + 1] = sum over k < kc, in order, of a[r rs + k] * b[k bs +
 * 0..15] for r < R (a: rows of A in place, b: a 16-wide panel); W = 1:
 * only c[2r], b's first 8 columns (a panel's last keys, 8 or fewer) */
__attribute__((target("avx2,fma"), always_inline))
static inline void att_uk_body(const int R, const int W, int64_t kc, const float *a, int64_t rs,
                               const float *b, int64_t bs, __m256 *c)
{
	const float *a0 = a, *a1 = a + rs, *a2 = a + 2 * rs, *a3 = a + 3 * rs, *a4 = a + 4 * rs,
	            *a5 = a + 5 * rs;
#define ROW_DECL(r) __m256 c##r##0 = _mm256_setzero_ps(), c##r##1 = c##r##0;
	ROW_DECL(0) ROW_DECL(1) ROW_DECL(2) ROW_DECL(3) ROW_DECL(4) ROW_DECL(5)
#undef ROW_DECL
	for (int64_t k = 0; k < kc; k++, b += bs) {
		__m256 b0 = _mm256_loadu_ps(b), b1 = W > 1 ? _mm256_loadu_ps(b + 8) : b0;
#define ROW_FMA(r) if (r < R) { __m256 ar = _mm256_broadcast_ss(a##r + k); \
		c##r##0 = _mm256_fmadd_ps(ar, b0, c##r##0); \
		if (W > 1) c##r##1 = _mm256_fmadd_ps(ar, b1, c##r##1); }
		ROW_FMA(0) ROW_FMA(1) ROW_FMA(2) ROW_FMA(3) ROW_FMA(4) ROW_FMA(5)
#undef ROW_FMA
	}
#define ROW_ST(r) if (r < R) { c[2 * r] = c##r##0; c[2 * r + 1] = c##r##1; }
	ROW_ST(0) ROW_ST(1) ROW_ST(2) ROW_ST(3) ROW_ST(4) ROW_ST(5)
#undef ROW_ST
}

typedef void (*att_uk_fn)(int64_t kc, const float *a, int64_t rs, const float *b, int64_t bs,
                          __m256 *c);
#define ATT_UK(R, W) \
__attribute__((target("avx2,fma"))) \
static void att_uk_##R##_##W(int64_t kc, const float *a, int64_t rs, const float *b, \
                             int64_t bs, __m256 *c) \
{ \
	att_uk_body(R, W, kc, a, rs, b, bs, c); \
}
ATT_UK(1, 2) ATT_UK(2, 2) ATT_UK(3, 2) ATT_UK(4, 2) ATT_UK(5, 2) ATT_UK(6, 2)
ATT_UK(1, 1) ATT_UK(2, 1) ATT_UK(3, 1) ATT_UK(4, 1) ATT_UK(5, 1) ATT_UK(6, 1)
#undef ATT_UK
static const att_uk_fn att_uk[ATT_MR + 1] = {
	NULL, att_uk_1_2, att_uk_2_2, att_uk_3_2, att_uk_4_2, att_uk_5_2, att_uk_6_2,
};
static const att_uk_fn att_uk8[ATT_MR + 1] = {
	NULL, att_uk_1_1, att_uk_2_1, att_uk_3_1, att_uk_4_1, att_uk_5_1, att_uk_6_1,
};

/* One (batch, head) block's operands for the fused path. */
typedef struct att_head {
	const float *q;          /* the block's first query row, this head's columns */
	float *o;
	const float *bias;       /* bias row of the block's first query (step bs[2]), or NULL */
	const float *pad;        /* [Sk] additive mask, or NULL */
	const float *kp, *vp;    /* packed K panels, V rows */
	int64_t Sq, Sk, q0;      /* this sequence's lengths; the block's first query */
	int64_t skp, dvp;        /* Sk rounded up to 16 (score row stride), Dv to 16 */
} att_head;

static int64_t round16(int64_t n)
{
	return (n + 15) / 16 * 16;
}

/* dst[d * 16 + i] = src[i * rs + d] for i, d < 8 (an 8x8 transpose into
 * a K panel) */
VM_AVX2
static inline void att_tr8(const float *src, int64_t rs, float *dst)
{
	__m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + rs);
	__m256 r2 = _mm256_loadu_ps(src + 2 * rs), r3 = _mm256_loadu_ps(src + 3 * rs);
	__m256 r4 = _mm256_loadu_ps(src + 4 * rs), r5 = _mm256_loadu_ps(src + 5 * rs);
	__m256 r6 = _mm256_loadu_ps(src + 6 * rs), r7 = _mm256_loadu_ps(src + 7 * rs);
	__m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
	__m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
	__m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
	__m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
	__m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
	__m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
	__m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
	__m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
	_mm256_storeu_ps(dst + 0 * ATT_NR, _mm256_permute2f128_ps(u0, u4, 0x20));
	_mm256_storeu_ps(dst + 1 * ATT_NR, _mm256_permute2f128_ps(u1, u5, 0x20));
	_mm256_storeu_ps(dst + 2 * ATT_NR, _mm256_permute2f128_ps(u2, u6, 0x20));
	_mm256_storeu_ps(dst + 3 * ATT_NR, _mm256_permute2f128_ps(u3, u7, 0x20));
	_mm256_storeu_ps(dst + 4 * ATT_NR, _mm256_permute2f128_ps(u0, u4, 0x31));
	_mm256_storeu_ps(dst + 5 * ATT_NR, _mm256_permute2f128_ps(u1, u5, 0x31));
	_mm256_storeu_ps(dst + 6 * ATT_NR, _mm256_permute2f128_ps(u2, u6, 0x31));
	_mm256_storeu_ps(dst + 7 * ATT_NR, _mm256_permute2f128_ps(u3, u7, 0x31));
}

/* K [Sk rows, step rk] -> panels of 16 keys, [D][16] each, zero past Sk;
 * V [Sk rows, step rv] -> rows of dvp floats, zero past Dv.  Groups of 8
 * whole keys by 8 columns go through att_tr8, the rest one by one; the
 * next panel's rows are prefetched (they are usually far apart, out of
 * the hardware prefetcher's reach). */
VM_AVX2
static void att_pack(const att_job *j, const float *K, const float *V, const att_head *x,
                     float *kp, float *vp)
{
	int64_t D = j->D, D8 = D / 8 * 8;
	if (x->skp != x->Sk)    /* the last panel's keys past Sk */
		memset(kp + (x->skp - ATT_NR) * D, 0, (size_t)(ATT_NR * D) * sizeof(float));
	for (int64_t k0 = 0; k0 < x->Sk; k0 += ATT_NR) {
		for (int64_t k = k0 + ATT_NR; k < k0 + 2 * ATT_NR && k < x->Sk; k++) {
			for (int64_t d = 0; d < D; d += 16)
				_mm_prefetch((const char *)(K + k * j->rk + d), _MM_HINT_T0);
			for (int64_t d = 0; d < j->Dv; d += 16)
				_mm_prefetch((const char *)(V + k * j->rv + d), _MM_HINT_T0);
		}
		float *panel = kp + k0 * D;
		for (int64_t i = 0; i < ATT_NR && k0 + i < x->Sk; i += 8) {
			int64_t k = k0 + i, d = 0;
			if (k + 8 <= x->Sk)
				for (; d < D8; d += 8)
					att_tr8(K + k * j->rk + d, j->rk, panel + d * ATT_NR + i);
			for (int64_t kk = k; kk < k + 8 && kk < x->Sk; kk++)
				for (int64_t dd = d; dd < D; dd++)
					panel[dd * ATT_NR + (kk - k0)] = K[kk * j->rk + dd];
		}
		for (int64_t k = k0; k < k0 + ATT_NR && k < x->Sk; k++) {
			const float *src = V + k * j->rv;
			float *dst = vp + k * x->dvp;
			int64_t e = 0;
			for (; e + 8 <= j->Dv; e += 8)
				_mm256_storeu_ps(dst + e, _mm256_loadu_ps(src + e));
			for (; e < j->Dv; e++)
				dst[e] = src[e];
			for (; e < x->dvp; e++)
				dst[e] = 0.0f;
		}
	}
}

/* replace: the keys whose pv is not NaN get the score pv */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 att_replace8(__m256 v, __m256 pv)
{
	return _mm256_blendv_ps(v, pv, _mm256_cmp_ps(pv, pv, _CMP_ORD_Q));
}

/* The first pass of softmax_row_avx512 on 8 scores v of keys k.. (left
 * of them before Sk, 1..8) of one row: bias bv, pad pv, causal mask cm
 * (the keys past the causal edge) */
__attribute__((target("avx2,fma"), always_inline))
static inline __m256 att_first(const att_job *j, __m256 v, bool bias, __m256 bv, __m256 pv,
                               __m256 cm)
{
	__m256 sc = _mm256_set1_ps(j->scale), cf = _mm256_set1_ps(j->cfill);
	if (j->causal == 2) {
		v = _mm256_blendv_ps(_mm256_mul_ps(v, sc), cf, cm);
		if (bias)
			v = _mm256_add_ps(v, bv);
	} else {
		v = bias ? _mm256_fmadd_ps(v, sc, bv) : _mm256_mul_ps(v, sc);
	}
	if (j->pad && !j->replace)
		v = _mm256_add_ps(v, pv);
	if (j->causal == 1)
		v = _mm256_add_ps(v, _mm256_and_ps(cm, cf));
	if (j->pad && j->replace)
		v = att_replace8(v, pv);
	return v;
}

/* The scores of rows r0 .. r0+R-1 of the block, softmax's first pass
 * applied (softmax_row_avx512's arithmetic), into s (rows skp apart; keys
 * Sk .. round8(Sk) - 1 are -inf); each row's max into mx.  Whole groups of
 * 8 keys without bias, causal edge or tail take a short path. */
VM_AVX2
static void att_scores_avx2(const att_job *j, const att_head *x, int64_t r0, int R, float *s,
                            float *mx)
{
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256 sc = _mm256_set1_ps(j->scale), ninf = _mm256_set1_ps(-INFINITY);
	__m256 vmx[ATT_MR], c[2 * ATT_MR], b1[ATT_MR];
	const float *br[ATT_MR];
	int64_t na[ATT_MR];
	bool bvec = x->bias && j->bs[3] != 0, plain = !x->bias && !j->causal;
	for (int r = 0; r < R; r++) {
		vmx[r] = ninf;
		br[r] = x->bias ? x->bias + (r0 + r) * j->bs[2] : NULL;
		b1[r] = _mm256_set1_ps(br[r] ? br[r][0] : 0.0f);
		/* keys k <= q + (Sk - Sq) are before the causal edge */
		na[r] = j->causal ? x->q0 + r0 + r + x->Sk - x->Sq + 1 : x->Sk;
	}
	for (int64_t k0 = 0; k0 < x->Sk; k0 += ATT_NR) {
		/* a last panel of 8 keys or fewer: its first half only */
		(x->Sk - k0 <= 8 ? att_uk8 : att_uk)[R](j->D, x->q + r0 * j->rq, j->rq, x->kp + k0 * j->D,
		                                        ATT_NR, c);
		for (int hh = 0; hh < 2; hh++) {
			int64_t k = k0 + 8 * hh;
			if (k >= x->Sk) {
				for (int r = 0; r < R; r++)
					_mm256_storeu_ps(s + r * x->skp + k, ninf);
				continue;
			}
			int left = x->Sk - k < 8 ? (int)(x->Sk - k) : 8;
			__m256i ti = _mm256_cmpgt_epi32(_mm256_set1_epi32(left), lane);
			__m256 pv = _mm256_setzero_ps();
			if (x->pad)
				pv = left == 8 ? _mm256_loadu_ps(x->pad + k) : _mm256_maskload_ps(x->pad + k, ti);
			if (plain && left == 8) {
				for (int r = 0; r < R; r++) {
					__m256 v = _mm256_mul_ps(c[2 * r + hh], sc);
					if (x->pad)
						v = j->replace ? att_replace8(v, pv) : _mm256_add_ps(v, pv);
					_mm256_storeu_ps(s + r * x->skp + k, v);
					vmx[r] = _mm256_max_ps(v, vmx[r]);
				}
				continue;
			}
			for (int r = 0; r < R; r++) {
				__m256 bv = b1[r];
				if (bvec)
					bv = left == 8 ? _mm256_loadu_ps(br[r] + k) : _mm256_maskload_ps(br[r] + k, ti);
				int front = na[r] - k <= 0 ? 0 : na[r] - k >= 8 ? 8 : (int)(na[r] - k);
				__m256 cm = _mm256_castsi256_ps(_mm256_cmpgt_epi32(lane,
				                                                   _mm256_set1_epi32(front - 1)));
				__m256 v = att_first(j, c[2 * r + hh], br[r] != NULL, bv, pv, cm);
				if (left < 8)
					v = _mm256_blendv_ps(ninf, v, _mm256_castsi256_ps(ti));
				_mm256_storeu_ps(s + r * x->skp + k, v);
				vmx[r] = _mm256_max_ps(v, vmx[r]);   /* vmx where v is NaN, as `x > mx` */
			}
		}
	}
	for (int r = 0; r < R; r++)
		mx[r] = vm_hmax8(vmx[r]);
}

/* e = exp(x - max) over each row in place (keys up to round8(Sk)), and
 * 1/sum into inv; with nan_guard a NaN sum makes the row's e 0 and inv 1 */
VM_AVX2
static void att_exp_avx2(const att_job *j, const att_head *x, int R, float *s, const float *mx,
                         float *inv)
{
	int64_t n8 = (x->Sk + 7) / 8 * 8;
	for (int r = 0; r < R; r++) {
		float *row = s + r * x->skp;
		__m256 m = _mm256_set1_ps(mx[r]), acc = _mm256_setzero_ps();
		for (int64_t k = 0; k < n8; k += 8) {
			__m256 e = vm_exp8_nonpos(_mm256_sub_ps(_mm256_loadu_ps(row + k), m));
			_mm256_storeu_ps(row + k, e);
			acc = _mm256_add_ps(acc, e);
		}
		float sum = vm_hsum8(acc);
		inv[r] = 1.0f / sum;
		if (j->guard && isnan(sum)) {
			memset(row, 0, (size_t)n8 * sizeof(float));
			inv[r] = 1.0f;
		}
	}
}

/* O rows r0 .. r0+R-1 = (E V) * inv, Dv columns */
VM_AVX2
static void att_pv_avx2(const att_job *j, const att_head *x, int64_t r0, int R, const float *s,
                        const float *inv)
{
	const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	__m256 c[2 * ATT_MR];
	for (int64_t n0 = 0; n0 < j->Dv; n0 += ATT_NR) {
		att_uk[R](x->Sk, s, x->skp, x->vp + n0, x->dvp, c);
		int64_t left = j->Dv - n0;
		for (int r = 0; r < R; r++) {
			float *o = x->o + (r0 + r) * j->ro + n0;
			__m256 iv = _mm256_set1_ps(inv[r]);
			__m256 o0 = _mm256_mul_ps(c[2 * r], iv), o1 = _mm256_mul_ps(c[2 * r + 1], iv);
			if (left >= 16) {
				_mm256_storeu_ps(o, o0);
				_mm256_storeu_ps(o + 8, o1);
				continue;
			}
			if (left >= 8)
				_mm256_storeu_ps(o, o0);
			else
				_mm256_maskstore_ps(o, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lane), o0);
			if (left > 8)
				_mm256_maskstore_ps(o + 8, _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left - 8),
				                                                lane), o1);
		}
	}
}

/* floats of scratch the fused path needs per task: K panels, V rows, a
 * strip of scores (+ 16 to align the parts) */
static int64_t att_fused_floats(const att_job *j)
{
	int64_t skp = round16(j->Sk);
	return skp * j->D + skp * round16(j->Dv) + ATT_MR * skp + 48;
}

/* Into L2: K/V rows lo .. hi-1 of a head (another task's, fetched while
 * this one computes: a head's rows are far apart, out of the hardware
 * prefetcher's reach) */
static void att_prefetch_kv(const att_job *j, const float *K, const float *V, int64_t lo,
                            int64_t hi)
{
	for (int64_t k = lo; k < hi; k++) {
		for (int64_t d = 0; d < j->D; d += 16)
			_mm_prefetch((const char *)(K + k * j->rk + d), _MM_HINT_T1);
		for (int64_t d = 0; d < j->Dv; d += 16)
			_mm_prefetch((const char *)(V + k * j->rv + d), _MM_HINT_T1);
	}
}

/* The K/V head of task next (-1: none), when it is not the one packed:
 * its rows go into L2 spread over this task's strips (att_prefetch_kv),
 * as the row at r of nr is reached; 0 when there is nothing to fetch */
static int64_t att_next_keys(const att_job *j, int64_t next, int64_t packed, att_task *nx)
{
	if (next < 0)
		return 0;
	att_task_of(j, next, nx);
	return nx->kv != packed ? nx->Sk : 0;
}

/* att_block on the fused path; *packed: which (batch, K/V head) buf holds
 * packed (-1: none); next: the task this thread runs next (-1: none), whose
 * K/V rows are prefetched across the strips when it packs another head */
static void att_block_fused(const att_job *j, int64_t t, int64_t next, float *buf,
                            int64_t *packed)
{
	att_task tk;
	att_task_of(j, t, &tk);
	if (att_trivial(j, &tk))
		return;
	int64_t b = tk.b, h = tk.h, nr = tk.nr;
	att_head x = {.q = tk.q, .o = tk.o, .Sq = tk.Sq, .Sk = tk.Sk, .q0 = tk.q0};
	x.skp = round16(x.Sk);
	x.dvp = round16(j->Dv);
	float *kp = align16f(buf), *vp = align16f(kp + x.skp * j->D);
	float *s = align16f(vp + x.skp * x.dvp);
	x.kp = kp, x.vp = vp;
	if (*packed != tk.kv) {
		att_pack(j, tk.k, tk.v, &x, kp, vp);
		*packed = tk.kv;
	}
	att_task nx;
	int64_t Skn = att_next_keys(j, next, *packed, &nx);   /* prefetch another head's K/V */
	x.pad = j->pad ? j->pad + b * x.Sk : NULL;
	x.bias = j->bias ? j->bias + b * j->bs[0] + h * j->bs[1] + x.q0 * j->bs[2] : NULL;
	float mx[ATT_MR], inv[ATT_MR];
	for (int64_t r = 0, R; r < nr; r += R) {
		R = att_strip_rows(nr - r);
		att_scores_avx2(j, &x, r, (int)R, s, mx);
		att_exp_avx2(j, &x, (int)R, s, mx, inv);
		att_pv_avx2(j, &x, r, (int)R, s, inv);
		if (Skn)
			att_prefetch_kv(j, nx.k, nx.v, Skn * r / nr, Skn * (r + R) / nr);
	}
}
#elif defined(__aarch64__)
/* softmax_row_avx512 in 4 lanes (tails through vm_ld4 / vm_st4, their
 * missing lanes -inf for the max and the exponentials); causal rows and
 * replaced masks go through softmax_row_c */
static void softmax_row_neon(const att_job *j, float *row, int64_t n, const float *bias,
                             const float *pad, int64_t na)
{
	if (j->causal || (pad && j->replace)) {
		softmax_row_c(j, row, n, bias, pad, na);
		return;
	}
	float32x4_t sc = vdupq_n_f32(j->scale), mx = vdupq_n_f32(-INFINITY);
	float32x4_t b1 = vdupq_n_f32(bias ? bias[0] : 0.0f);
	bool bvec = bias && j->bs[3] != 0;
	for (int64_t k = 0; k < n; k += 4) {
		float32x4_t x = vm_ld4(row + k, n - k, 0.0f);
		if (bias)
			x = vfmaq_f32(bvec ? vm_ld4(bias + k, n - k, 0.0f) : b1, x, sc);
		else
			x = vmulq_f32(x, sc);
		if (pad)
			x = vaddq_f32(x, vm_ld4(pad + k, n - k, 0.0f));
		vm_st4(row + k, x, n - k);
		if (n - k < 4)       /* tail lanes -inf for the max */
			x = vm_ld4(row + k, n - k, -INFINITY);
		/* as _mm512_max_ps(x, mx): mx where either is NaN (x > mx false) */
		mx = vbslq_f32(vcgtq_f32(x, mx), x, mx);
	}
	float m = vmaxvq_f32(mx);
	float32x4_t vmx = vdupq_n_f32(m), acc = vdupq_n_f32(0.0f);
	for (int64_t k = 0; k < n; k += 4) {
		float32x4_t e = vm_exp4(vsubq_f32(vm_ld4(row + k, n - k, -INFINITY), vmx));
		vm_st4(row + k, e, n - k);
		acc = vaddq_f32(acc, e);
	}
	float32x4_t inv = vdupq_n_f32(1.0f / vaddvq_f32(acc)), zero = vdupq_n_f32(0.0f);
	for (int64_t k = 0; k < n; k += 4) {
		float32x4_t p = vmulq_f32(vm_ld4(row + k, n - k, 0.0f), inv);
		if (j->guard)
			p = vbslq_f32(vceqq_f32(p, p), p, zero);
		vm_st4(row + k, p, n - k);
	}
}
#define softmax_row_simd softmax_row_neon
#else
#define softmax_row_simd softmax_row_c
#endif

/* Query row r of a task: its bias row (NULL: none) and, in *na, how many
 * keys lie before the causal edge (k <= q + (Sk - Sq); all without one) */
static const float *att_row_bias(const att_job *j, const att_task *x, int64_t r, int64_t *na)
{
	*na = j->causal ? x->q0 + r + x->Sk - x->Sq + 1 : x->Sk;
	return j->bias ? j->bias + x->b * j->bs[0] + x->h * j->bs[1] + (x->q0 + r) * j->bs[2] :
	                 NULL;
}

/* softmax over the block's score rows r0 .. r0+n-1, s their first (ld
 * apart), on the path's row softmax */
static void att_softmax_rows(const att_job *j, const att_task *x, int64_t r0, int64_t n,
                             float *s, int64_t ld)
{
	int64_t Sk = x->Sk, na;
	const float *pad = j->pad ? j->pad + x->b * Sk : NULL;
	for (int64_t r = r0; r < r0 + n; r++) {
		const float *bias = att_row_bias(j, x, r, &na);
		float *row = s + (r - r0) * ld;
		if (j->path == 1)
			softmax_row_simd(j, row, Sk, bias, pad, na);
		else
			softmax_row_c(j, row, Sk, bias, pad, na);
	}
}

static void att_block(const att_job *j, int64_t t, float *s)
{
	att_task x;
	att_task_of(j, t, &x);
	if (att_trivial(j, &x))
		return;
	int64_t Sk = x.Sk, nr = x.nr;
	const float *Q = x.q, *K = x.k, *V = x.v;
	float *O = x.o;
	if (j->D == 0)
		memset(s, 0, (size_t)(nr * Sk) * sizeof(float));
	else
		rt_sgemm(NULL, 0, 1, nr, Sk, j->D, 1.0f, Q, j->rq, K, j->rk, 0.0f, s, Sk);
	att_softmax_rows(j, &x, 0, nr, s, Sk);
	rt_sgemm(NULL, 0, 0, nr, j->Dv, Sk, 1.0f, s, Sk, V, j->rv, 0.0f, O, j->ro);
}

/* ---- bf16 products (fpmath 1, kiln compile --fpmath=bf16) ----
 *
 * Per (batch, K/V head), once for the query blocks of a task range that
 * read it, K^T [D, Sk] and V [Sk, Dv] go into the bf16 panel layout of
 * rt.h (rounded to nearest even); per query block S = Q K^T and O = P V
 * are rt_sgemm_panels_bf16 (Q and P rounded to bf16 there), the softmax
 * between them att_block's, in f32.  Where the CPU has AVX512_BF16 the
 * products are vdpbf16ps (two products a lane, summed in f32); elsewhere
 * gemm.c multiplies the same rounded operands in f32, so every CPU rounds
 * the inputs alike and the results differ only in the order of the sums. */

/* floats of scratch a task needs on this path: scores, K^T and V panels,
 * a row in bf16 */
static int64_t att_bf16_floats(const att_job *j)
{
	int64_t wide = j->D > j->Dv ? j->D : j->Dv;
	return (rt_gemm_panel_bf16s(j->D, j->Sk) + rt_gemm_panel_bf16s(j->Sk, j->Dv)) / 2 +
	       j->rows * j->Sk + wide / 2 + 64;
}

#if defined(__x86_64__)
/* n floats to bf16 as rt_f32_to_bf16 (vcvtneps2bf16 rounds to nearest
 * even and quiets NaNs alike; it flushes subnormals, as gemm.c's A) */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void att_bf16_row512(const float *src, int64_t n, uint16_t *dst)
{
	for (int64_t k = 0; k < n; k += 16) {
		__mmask16 t = vm_tail(n - k);
		__m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(t, src + k));
		_mm256_mask_storeu_epi16(dst + k, t, (__m256i)h);
	}
}
#endif

static void att_bf16_row(const att_job *j, const float *src, int64_t n, uint16_t *dst)
{
#if defined(__x86_64__)
	if (j->hwbf16) {
		att_bf16_row512(src, n, dst);
		return;
	}
#endif
	for (int64_t k = 0; k < n; k++)
		dst[k] = rt_f32_to_bf16(src[k]);
}

/* K [Sk rows, step rk] as W = K^T [D, Sk] in bf16 panels: panel q's pair
 * p of column c is K[q*P + c, 2p], K[q*P + c, 2p + 1] (zeros past D, Sk):
 * a pair of one key's row, so each key is converted once (tmp) and its
 * pairs copied out */
static void att_pack_kt_bf16(const att_job *j, const float *K, int64_t Sk, uint16_t *dst,
                             uint16_t *tmp)
{
	int64_t P = RT_GEMM_PANEL, np = (j->D + 1) / 2;
	uint32_t *d32 = (uint32_t *)dst;
	memset(dst, 0, (size_t)rt_gemm_panel_bf16s(j->D, Sk) * sizeof(uint16_t));
	if (j->D & 1)
		tmp[j->D] = 0;
	for (int64_t c = 0; c < Sk; c++) {
		att_bf16_row(j, K + c * j->rk, j->D, tmp);
		uint32_t *w = d32 + c / P * np * P + c % P;
		for (int64_t p = 0; p < np; p++)
			w[p * P] = (uint32_t)tmp[2 * p] | (uint32_t)tmp[2 * p + 1] << 16;
	}
}

/* V [Sk rows, step rv] as W = V [Sk, Dv] in bf16 panels: panel q's pair p
 * of column c is V[2p, q*P + c], V[2p + 1, q*P + c] (zeros past Sk, Dv) */
static void att_pack_v_bf16(const att_job *j, const float *V, int64_t Sk, uint16_t *dst,
                            uint16_t *tmp)
{
	int64_t P = RT_GEMM_PANEL, Dv = j->Dv;
	memset(dst, 0, (size_t)rt_gemm_panel_bf16s(Sk, Dv) * sizeof(uint16_t));
	for (int64_t k = 0; k < Sk; k++) {
		att_bf16_row(j, V + k * j->rv, Dv, tmp);
		uint16_t *w = dst + k / 2 * 2 * P + k % 2;
		for (int64_t c = 0; c < Dv; c++)
			w[c / P * ((Sk + 1) / 2) * 2 * P + c % P * 2] = tmp[c];
	}
}

#if defined(__x86_64__)
/* The same on AVX512_BF16 in one kernel (hwbf16): per (batch, K/V head) K
 * into panels of 16 keys ([D/2 pairs][16 keys], a u32 pair K[k, 2p],
 * K[k, 2p+1] each; zero past Sk up to skp, Sk rounded up to 32) and V into
 * rows of key pairs ([Sk/2][dvp], V[2i, c], V[2i+1, c]; Dv rounded up to
 * 16 as dvp, zeros past Sk and Dv); per strip of up to 6 query rows: Q's
 * rows as bf16 pairs, the raw scores by vdpbf16ps (32 keys at a time), the
 * path's row softmax on each row (scale, bias, masks: att_softmax_rows),
 * P rounded to bf16 pairs, O = P V by vdpbf16ps (32 columns at a time).
 * The operands are rounded as att_block_bf16's gemm.c rounds them; the
 * sums run in another order. */
#define ABF_MR ATT_MR   /* att_strip_rows' strips */

typedef struct abf_head {
	const uint32_t *kp, *vp;
	int64_t Sk, skp, dvp, np; /* keys, keys rounded up to 32, Dv rounded to 16, D's pairs */
} abf_head;

/* floats of scratch a task needs on this path */
static int64_t abf_floats(const att_job *j)
{
	int64_t skp = (j->Sk + 31) / 32 * 32, np = (j->D + 1) / 2, dvp = round16(j->Dv);
	return skp * np + skp / 2 * dvp + ABF_MR * (skp + skp / 2 + np) + 6 * 16;
}

/* dst[c * 16 + i] = element c of r[i], c, i < 16: a 16 x 16 transpose of
 * 32-bit elements in registers (unpack 32, unpack 64, two lane shuffles) */
__attribute__((target("avx512f"), always_inline))
static inline void tr16_store(__m512i *r, void *dst)
{
	__m512i t[16];
	for (int i = 0; i < 16; i += 2) {
		t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) {
		r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	/* r[4b + c]: element 4 lane + c of rows 4b .. 4b+3, in each 128-bit lane */
	for (int c = 0; c < 4; c++) {
		__m512i a = _mm512_shuffle_i32x4(r[c], r[4 + c], 0x88);      /* lanes 0, 2 */
		__m512i b = _mm512_shuffle_i32x4(r[c], r[4 + c], 0xdd);      /* lanes 1, 3 */
		__m512i e = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0x88);
		__m512i f = _mm512_shuffle_i32x4(r[8 + c], r[12 + c], 0xdd);
		t[c] = _mm512_shuffle_i32x4(a, e, 0x88);        /* lane 0 */
		t[4 + c] = _mm512_shuffle_i32x4(b, f, 0x88);    /* lane 1 */
		t[8 + c] = _mm512_shuffle_i32x4(a, e, 0xdd);    /* lane 2 */
		t[12 + c] = _mm512_shuffle_i32x4(b, f, 0xdd);   /* lane 3 */
	}
	for (int c = 0; c < 16; c++)
		_mm512_storeu_si512((char *)dst + c * 64, t[c]);
}

/* 16 keys' 16 pairs (32 floats from each of the rows at src, rs apart) as
 * bf16 pairs into dst[p * 16 + key], the panel layout below, transposed in
 * registers: the 16 rows' loads issue back to back (a head's K rows are
 * 2304 floats apart in BERT's packed QKV, mostly out of this core's caches;
 * one row at a time, each followed by 16 scalar stores, kept few of them
 * in flight: ~3.5% of an int8 BERT-base b8 run waited on them, ~1% after).
 * The rounding is att_bf16_row512's (vcvtneps2bf16), so the same bits. */
__attribute__((target("avx512f,avx512bf16")))
static void abf_pack_k16(const float *src, int64_t rs, uint32_t *dst)
{
	__m512i r[16];
	for (int i = 0; i < 16; i++)
		r[i] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i * rs + 16),
		                                     _mm512_loadu_ps(src + i * rs));
	tr16_store(r, dst);
}

/* 16 columns of 8 pairs of V rows (src, rows rs apart) as bf16 pairs into
 * dst (pair rows ds apart): abf_pack's loop below for whole groups, with
 * the 16 loads first */
__attribute__((target("avx512f,avx512bf16")))
static void abf_pack_v16(const float *src, int64_t rs, uint32_t *dst, int64_t ds)
{
	__m512i h[16];
	for (int i = 0; i < 16; i++)
		h[i] = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(src + i * rs)));
	for (int i = 0; i < 8; i++)
		_mm512_storeu_si512(dst + i * ds, _mm512_or_si512(h[2 * i],
		                                                  _mm512_slli_epi32(h[2 * i + 1], 16)));
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
static void abf_pack(const att_job *j, const float *K, const float *V, const abf_head *x,
                     uint32_t *kp, uint32_t *vp, uint16_t *tmp)
{
	int64_t np = x->np, Sk = x->Sk, k0 = 0;
	/* whole groups of 16 keys with D a multiple of 32: in registers */
	if (j->D % 32 == 0)
		for (; k0 + 16 <= Sk; k0 += 16)
			for (int64_t p0 = 0; p0 < np; p0 += 16)
				abf_pack_k16(K + k0 * j->rk + 2 * p0, j->rk, kp + k0 * np + p0 * 16);
	memset(kp + k0 * np, 0, (size_t)((x->skp - k0) * np) * sizeof *kp);
	if (j->D & 1)
		tmp[j->D] = 0;
	for (int64_t k = k0; k < Sk; k++) {
		att_bf16_row512(K + k * j->rk, j->D, tmp);
		uint32_t *w = kp + k / 16 * np * 16 + k % 16;
		const uint32_t *t32 = (const uint32_t *)tmp;
		for (int64_t p = 0; p < np; p++)
			w[p * 16] = t32[p];
	}
	int64_t i0 = 0;
	if (j->Dv % 16 == 0)     /* 8 pairs of rows at a time: their loads back to back */
		for (; 2 * i0 + 16 <= Sk; i0 += 8)
			for (int64_t c = 0; c < j->Dv; c += 16)
				abf_pack_v16(V + 2 * i0 * j->rv + c, j->rv, vp + i0 * x->dvp + c, x->dvp);
	for (int64_t i = i0; i < (Sk + 1) / 2; i++) {
		const float *r0 = V + 2 * i * j->rv, *r1 = r0 + j->rv;
		bool two = 2 * i + 1 < Sk;
		for (int64_t c = 0; c < x->dvp; c += 16) {
			__mmask16 t = vm_tail(j->Dv - c > 0 ? j->Dv - c : 0);
			__m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(
				_mm512_maskz_loadu_ps(t, r0 + c)));
			__m512i hi = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(
				_mm512_maskz_loadu_ps(two ? t : 0, r1 + c)));
			_mm512_storeu_si512(vp + i * x->dvp + c, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
		}
	}
}

/* s[r * ld + k] = sum over pairs p of a[r * np + p] . kp (raw scores) for
 * keys 0 .. skp-1, rows r < R */
__attribute__((target("avx512f,avx512bf16"), always_inline))
static inline void abf_scores_body(const int R, const abf_head *x, const uint32_t *a, float *s,
                                   int64_t ld)
{
	int64_t np = x->np;
	for (int64_t k0 = 0; k0 < x->skp; k0 += 32) {
		const uint32_t *b0 = x->kp + k0 * np, *b1 = b0 + 16 * np;
		__m512 c[ABF_MR][2];
		for (int r = 0; r < R; r++)
			c[r][0] = c[r][1] = _mm512_setzero_ps();
		for (int64_t p = 0; p < np; p++) {
			__m512bh x0 = (__m512bh)_mm512_loadu_si512(b0 + 16 * p);
			__m512bh x1 = (__m512bh)_mm512_loadu_si512(b1 + 16 * p);
			for (int r = 0; r < R; r++) {
				__m512bh ar = (__m512bh)_mm512_set1_epi32((int)a[r * np + p]);
				c[r][0] = _mm512_dpbf16_ps(c[r][0], ar, x0);
				c[r][1] = _mm512_dpbf16_ps(c[r][1], ar, x1);
			}
		}
		for (int r = 0; r < R; r++) {
			_mm512_storeu_ps(s + r * ld + k0, c[r][0]);
			_mm512_storeu_ps(s + r * ld + k0 + 16, c[r][1]);
		}
	}
}

/* O rows r < R (ro apart) = P V, P rows of key pairs (ps apart) */
__attribute__((target("avx512f,avx512bf16"), always_inline))
static inline void abf_pv_body(const int R, const att_job *j, const abf_head *x,
                               const uint32_t *pp, int64_t ps, float *o)
{
	int64_t npk = (x->Sk + 1) / 2;
	for (int64_t n0 = 0; n0 < j->Dv; n0 += 32) {
		bool two = n0 + 16 < x->dvp;
		__m512 c[ABF_MR][2];
		for (int r = 0; r < R; r++)
			c[r][0] = c[r][1] = _mm512_setzero_ps();
		for (int64_t i = 0; i < npk; i++) {
			const uint32_t *b = x->vp + i * x->dvp + n0;
			__m512bh x0 = (__m512bh)_mm512_loadu_si512(b);
			__m512bh x1 = two ? (__m512bh)_mm512_loadu_si512(b + 16) : x0;
			for (int r = 0; r < R; r++) {
				__m512bh ar = (__m512bh)_mm512_set1_epi32((int)pp[r * ps + i]);
				c[r][0] = _mm512_dpbf16_ps(c[r][0], ar, x0);
				c[r][1] = _mm512_dpbf16_ps(c[r][1], ar, x1);
			}
		}
		__mmask16 t0 = vm_tail(j->Dv - n0), t1 = vm_tail(j->Dv - n0 - 16 > 0 ? j->Dv - n0 - 16 : 0);
		for (int r = 0; r < R; r++) {
			_mm512_mask_storeu_ps(o + r * j->ro + n0, t0, c[r][0]);
			_mm512_mask_storeu_ps(o + r * j->ro + n0 + 16, t1, c[r][1]);
		}
	}
}

#define ABF_FN(R) \
__attribute__((target("avx512f,avx512bf16"))) \
static void abf_scores_##R(const abf_head *x, const uint32_t *a, float *s, int64_t ld) \
{ \
	abf_scores_body(R, x, a, s, ld); \
} \
__attribute__((target("avx512f,avx512bf16"))) \
static void abf_pv_##R(const att_job *j, const abf_head *x, const uint32_t *pp, int64_t ps, \
                       float *o) \
{ \
	abf_pv_body(R, j, x, pp, ps, o); \
}
ABF_FN(1) ABF_FN(2) ABF_FN(3) ABF_FN(4) ABF_FN(5) ABF_FN(6)
#undef ABF_FN
typedef void (*abf_scores_fn)(const abf_head *, const uint32_t *, float *, int64_t);
typedef void (*abf_pv_fn)(const att_job *, const abf_head *, const uint32_t *, int64_t, float *);
static const abf_scores_fn abf_scores[ABF_MR + 1] = {
	NULL, abf_scores_1, abf_scores_2, abf_scores_3, abf_scores_4, abf_scores_5, abf_scores_6,
};
static const abf_pv_fn abf_pv[ABF_MR + 1] = {
	NULL, abf_pv_1, abf_pv_2, abf_pv_3, abf_pv_4, abf_pv_5, abf_pv_6,
};

/* rows r < R of src (ls apart, n values each) as bf16 pairs into dst (ds
 * u32 apart; an odd n's last pair ends in a zero) */
static void abf_pairs(const float *src, int64_t ls, int R, int64_t n, uint32_t *dst, int64_t ds)
{
	for (int r = 0; r < R; r++) {
		uint16_t *d = (uint16_t *)(dst + r * ds);
		if (n & 1)
			d[n] = 0;
		att_bf16_row512(src + r * ls, n, d);
	}
}

/* Query rows r .. r+R-1 of a task into L1 (the next strip's, whose rows
 * are a head's slice of rows far apart) */
static void att_prefetch_q(const att_job *j, const float *q, int64_t R)
{
	for (int64_t r = 0; r < R; r++)
		for (int64_t d = 0; d < j->D; d += 16)
			_mm_prefetch((const char *)(q + r * j->rq + d), _MM_HINT_T0);
}

/* att_softmax_rows on the SIMD path with abf_pairs' conversion of P folded
 * into its last pass: P's rows go straight to bf16 pairs (dst, ds u32
 * apart; an odd Sk's last pair ends in a zero), the same bits as p stored
 * and then rounded, one pass over the scores fewer */
__attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16,fma")))
static void abf_softmax_rows(const att_job *j, const att_task *x, int64_t r0, int64_t n,
                             float *s, int64_t ld, uint32_t *dst, int64_t ds)
{
	int64_t Sk = x->Sk, na;
	const float *pad = j->pad ? j->pad + x->b * Sk : NULL;
	for (int64_t r = r0; r < r0 + n; r++) {
		const float *bias = att_row_bias(j, x, r, &na);
		float *row = s + (r - r0) * ld;
		uint16_t *d = (uint16_t *)(dst + (r - r0) * ds);
		__m512 inv = _mm512_set1_ps(softmax_exp_avx512(j, row, Sk, bias, pad, na));
		for (int64_t k = 0; k < Sk; k += 16) {
			__mmask16 t = vm_tail(Sk - k);
			__m256bh h = _mm512_cvtneps_pbh(softmax_p16(j, row + k, t, inv));
			_mm256_mask_storeu_epi16(d + k, t, (__m256i)h);
		}
		if (Sk & 1)
			d[Sk] = 0;
	}
}

static void att_block_abf(const att_job *j, int64_t t, int64_t next, float *buf, int64_t *packed)
{
	att_task tk;
	att_task_of(j, t, &tk);
	if (att_trivial(j, &tk))
		return;
	abf_head x = {.Sk = tk.Sk, .skp = (tk.Sk + 31) / 32 * 32, .dvp = round16(j->Dv),
	              .np = (j->D + 1) / 2};
	int64_t mskp = (j->Sk + 31) / 32 * 32;    /* the largest sequence's (the buffer's) */
	uint32_t *kp = (uint32_t *)align16f(buf);
	uint32_t *vp = (uint32_t *)align16f((float *)kp + mskp * x.np);
	float *s = align16f((float *)vp + mskp / 2 * x.dvp);
	uint32_t *q32 = (uint32_t *)align16f(s + ABF_MR * mskp);
	uint32_t *p32 = (uint32_t *)align16f((float *)q32 + ABF_MR * x.np);
	x.kp = kp, x.vp = vp;
	if (*packed != tk.kv) {
		abf_pack(j, tk.k, tk.v, &x, kp, vp, (uint16_t *)q32);
		*packed = tk.kv;
	}
	att_task nx;
	int64_t Skn = att_next_keys(j, next, *packed, &nx), nr = tk.nr;
	int64_t ps = x.skp / 2;
	for (int64_t r = 0, R; r < nr; r += R) {
		R = att_strip_rows(nr - r);
		abf_pairs(tk.q + r * j->rq, j->rq, (int)R, j->D, q32, x.np);
		att_prefetch_q(j, tk.q + (r + R) * j->rq, att_strip_rows(nr - r - R));
		abf_scores[R](&x, q32, s, x.skp);
		if (j->path == 1) {
			abf_softmax_rows(j, &tk, r, R, s, x.skp, p32, ps);
		} else {
			att_softmax_rows(j, &tk, r, R, s, x.skp);
			abf_pairs(s, x.skp, (int)R, x.Sk, p32, ps);
		}
		abf_pv[R](j, &x, p32, ps, tk.o + r * j->ro);
		if (Skn)
			att_prefetch_kv(j, nx.k, nx.v, Skn * r / nr, Skn * (r + R) / nr);
	}
}
#endif

#if defined(__x86_64__)
/* ---- the fused AVX-512 attention (path 1 on x86-64, f32) ----
 * att_block's arithmetic without rt_sgemm's calls: per (batch, K/V head)
 * K into panels of 16 keys ([D][16], zero past Sk up to skp, Sk rounded
 * up to 32) and V into rows of dvp floats (Dv rounded up to 16, zeros
 * past Dv); per strip of up to 6 query rows the raw scores by FMAs over d
 * in order (as rt_sgemm sums), 32 keys at a time, the path's row softmax
 * (softmax_row_avx512), then O = P V by FMAs over the keys in order, 32
 * columns at a time.  rt_sgemm's 48-column panels left a third of P V's
 * work on zeros at Dv = 64. */
typedef struct afp_head {
	const float *kp, *vp;
	int64_t Sk, skp, dvp;
} afp_head;

static int64_t afp_floats(const att_job *j)
{
	int64_t skp = (j->Sk + 31) / 32 * 32;
	return skp * j->D + j->Sk * round16(j->Dv) + ABF_MR * skp + ABF_MR * j->D + 5 * 16;
}

VM_AVX512
static void afp_pack(const att_job *j, const float *K, const float *V, const afp_head *x,
                     float *kp, float *vp)
{
	int64_t D = j->D, k0 = 0;
	if (D % 16 == 0)      /* whole groups of 16 keys: transposed in registers */
		for (; k0 + 16 <= x->Sk; k0 += 16)
			for (int64_t d0 = 0; d0 < D; d0 += 16) {
				__m512i r[16];
				for (int i = 0; i < 16; i++)
					r[i] = _mm512_castps_si512(_mm512_loadu_ps(K + (k0 + i) * j->rk + d0));
				tr16_store(r, kp + k0 * D + d0 * 16);
			}
	memset(kp + k0 * D, 0, (size_t)((x->skp - k0) * D) * sizeof *kp);
	for (int64_t k = k0; k < x->Sk; k++) {
		const float *src = K + k * j->rk;
		float *w = kp + k / 16 * D * 16 + k % 16;
		for (int64_t d = 0; d < D; d++)
			w[d * 16] = src[d];
	}
	for (int64_t k = 0; k < x->Sk; k++)
		for (int64_t c = 0; c < x->dvp; c += 16) {
			__mmask16 t = vm_tail(j->Dv - c > 0 ? j->Dv - c : 0);
			_mm512_storeu_ps(vp + k * x->dvp + c, _mm512_maskz_loadu_ps(t, V + k * j->rv + c));
		}
}

__attribute__((target("avx512f,fma"), always_inline))
static inline void afp_scores_body(const int R, const att_job *j, const afp_head *x,
                                   const float *q, float *s)
{
	int64_t D = j->D;
	for (int64_t k0 = 0; k0 < x->skp; k0 += 32) {
		const float *b0 = x->kp + k0 * D, *b1 = b0 + 16 * D;
		__m512 c[ABF_MR][2];
		for (int r = 0; r < R; r++)
			c[r][0] = c[r][1] = _mm512_setzero_ps();
		for (int64_t d = 0; d < D; d++) {
			__m512 x0 = _mm512_loadu_ps(b0 + 16 * d), x1 = _mm512_loadu_ps(b1 + 16 * d);
			for (int r = 0; r < R; r++) {
				__m512 ar = _mm512_set1_ps(q[r * j->rq + d]);
				c[r][0] = _mm512_fmadd_ps(ar, x0, c[r][0]);
				c[r][1] = _mm512_fmadd_ps(ar, x1, c[r][1]);
			}
		}
		for (int r = 0; r < R; r++) {
			_mm512_storeu_ps(s + r * x->skp + k0, c[r][0]);
			_mm512_storeu_ps(s + r * x->skp + k0 + 16, c[r][1]);
		}
	}
}

__attribute__((target("avx512f,fma"), always_inline))
static inline void afp_pv_body(const int R, const att_job *j, const afp_head *x, const float *p,
                               float *o)
{
	for (int64_t n0 = 0; n0 < j->Dv; n0 += 32) {
		bool two = n0 + 16 < x->dvp;
		__m512 c[ABF_MR][2];
		for (int r = 0; r < R; r++)
			c[r][0] = c[r][1] = _mm512_setzero_ps();
		for (int64_t k = 0; k < x->Sk; k++) {
			const float *b = x->vp + k * x->dvp + n0;
			__m512 x0 = _mm512_loadu_ps(b), x1 = two ? _mm512_loadu_ps(b + 16) : x0;
			for (int r = 0; r < R; r++) {
				__m512 ar = _mm512_set1_ps(p[r * x->skp + k]);
				c[r][0] = _mm512_fmadd_ps(ar, x0, c[r][0]);
				c[r][1] = _mm512_fmadd_ps(ar, x1, c[r][1]);
			}
		}
		__mmask16 t0 = vm_tail(j->Dv - n0), t1 = vm_tail(j->Dv - n0 - 16 > 0 ? j->Dv - n0 - 16 : 0);
		for (int r = 0; r < R; r++) {
			_mm512_mask_storeu_ps(o + r * j->ro + n0, t0, c[r][0]);
			_mm512_mask_storeu_ps(o + r * j->ro + n0 + 16, t1, c[r][1]);
		}
	}
}

#define AFP_FN(R) \
__attribute__((target("avx512f,fma"))) \
static void afp_scores_##R(const att_job *j, const afp_head *x, const float *q, float *s) \
{ \
	afp_scores_body(R, j, x, q, s); \
} \
__attribute__((target("avx512f,fma"))) \
static void afp_pv_##R(const att_job *j, const afp_head *x, const float *p, float *o) \
{ \
	afp_pv_body(R, j, x, p, o); \
}
AFP_FN(1) AFP_FN(2) AFP_FN(3) AFP_FN(4) AFP_FN(5) AFP_FN(6)
#undef AFP_FN
typedef void (*afp_fn)(const att_job *, const afp_head *, const float *, float *);
static const afp_fn afp_scores[ABF_MR + 1] = {
	NULL, afp_scores_1, afp_scores_2, afp_scores_3, afp_scores_4, afp_scores_5, afp_scores_6,
};
static const afp_fn afp_pv[ABF_MR + 1] = {
	NULL, afp_pv_1, afp_pv_2, afp_pv_3, afp_pv_4, afp_pv_5, afp_pv_6,
};

/* rnd (fpmath 1 where vdpbf16ps is slow or missing: rt_sgemm_bf16_kernel
 * is not "avx512bf16"): Q, K, V and the probabilities rounded to bf16 as
 * att_block_abf rounds them, the products in f32 FMAs (on Emerald Rapids
 * 3.5 ms a BERT-base b1 run where att_block_bf16's two GEMMs per head took
 * 7.6) */
static void att_block_afp(const att_job *j, int64_t t, int64_t next, float *buf, int64_t *packed,
                          bool rnd)
{
	att_task tk;
	att_task_of(j, t, &tk);
	if (att_trivial(j, &tk))
		return;
	afp_head x = {.Sk = tk.Sk, .skp = (tk.Sk + 31) / 32 * 32, .dvp = round16(j->Dv)};
	int64_t mskp = (j->Sk + 31) / 32 * 32;    /* the largest sequence's (the buffer's) */
	float *kp = align16f(buf), *vp = align16f(kp + mskp * j->D);
	float *s = align16f(vp + j->Sk * x.dvp);
	float *qr = align16f(s + ABF_MR * mskp);  /* rnd: a strip of Q rounded, rows of D */
	att_job jr = *j;
	jr.rq = j->D;
	x.kp = kp, x.vp = vp;
	if (*packed != tk.kv) {
		afp_pack(j, tk.k, tk.v, &x, kp, vp);
		if (rnd) {
			vm_round_bf16_n(kp, kp, x.skp * j->D);
			vm_round_bf16_n(vp, vp, x.Sk * x.dvp);
		}
		*packed = tk.kv;
	}
	att_task nx;
	int64_t Skn = att_next_keys(j, next, *packed, &nx), nr = tk.nr;
	for (int64_t r = 0, R; r < nr; r += R) {
		R = att_strip_rows(nr - r);
		att_prefetch_q(j, tk.q + (r + R) * j->rq, att_strip_rows(nr - r - R));
		if (rnd) {
			for (int64_t i = 0; i < R; i++)
				vm_round_bf16_n(qr + i * j->D, tk.q + (r + i) * j->rq, j->D);
			afp_scores[R](&jr, &x, qr, s);
		} else {
			afp_scores[R](j, &x, tk.q + r * j->rq, s);
		}
		att_softmax_rows(j, &tk, r, R, s, x.skp);
		if (rnd)
			for (int64_t i = 0; i < R; i++)
				vm_round_bf16_n(s + i * x.skp, s + i * x.skp, x.Sk);
		afp_pv[R](j, &x, s, tk.o + r * j->ro);
		if (Skn)
			att_prefetch_kv(j, nx.k, nx.v, Skn * r / nr, Skn * (r + R) / nr);
	}
}
#endif

/* att_block with bf16 products; *packed: which (batch, K/V head) buf's
 * panels hold (-1: none) */
static void att_block_bf16(const att_job *j, int64_t t, float *buf, int64_t *packed)
{
	att_task x;
	att_task_of(j, t, &x);
	if (att_trivial(j, &x))
		return;
	int64_t Sk = x.Sk, nr = x.nr;
	float *s = align16f(buf);
	uint16_t *kt = (uint16_t *)align16f(s + j->rows * j->Sk);
	uint16_t *vp = kt + rt_gemm_panel_bf16s(j->D, j->Sk);
	uint16_t *tmp = vp + rt_gemm_panel_bf16s(j->Sk, j->Dv);
	if (*packed != x.kv) {
		att_pack_kt_bf16(j, x.k, Sk, kt, tmp);
		att_pack_v_bf16(j, x.v, Sk, vp, tmp);
		*packed = x.kv;
	}
	/* the panels were packed for this sequence's Sk (packed: each
	 * sequence's own; else every block's) */
	rt_sgemm_panels_bf16(NULL, nr, Sk, j->D, x.q, j->rq, kt, s, Sk, NULL);
	att_softmax_rows(j, &x, 0, nr, s, Sk);
	rt_sgemm_panels_bf16(NULL, nr, j->Dv, Sk, s, Sk, vp, x.o, j->ro, NULL);
}

static void att_range(void *arg, int64_t b, int64_t e)
{
	att_job *j = arg;
	float stack[ATT_STACK];
	float *s = stack;
	int64_t packed = -1;
#if defined(__x86_64__)
	int64_t need = j->path == 2 ? att_fused_floats(j) : j->rows * j->Sk;
#else
	int64_t need = j->rows * j->Sk;
#endif
	if (j->bf16)
		need = att_bf16_floats(j);
#if defined(__x86_64__)
	if (j->hwbf16)
		need = abf_floats(j);
	if (j->path == 1 && !j->hwbf16)
		need = afp_floats(j);
#endif
	if (need > ATT_STACK) {
		s = malloc((size_t)need * sizeof(float));
		if (!s) {
			__atomic_store_n(&j->failed, 1, __ATOMIC_RELAXED);
			return;
		}
	}
	for (int64_t t = b; t < e; t++) {
#if defined(__x86_64__)
		/* after its last task a thread most likely claims the chunk
		 * nth - 1 chunks on (the pool hands them out in order) */
		int64_t nx = t + 1 < e ? t + 1 : e + (j->nth - 1) * (e - b);
		nx = nx < j->tasks ? nx : -1;
		if (j->path == 1 && !j->hwbf16) {
			att_block_afp(j, t, nx, s, &packed, j->bf16);
			continue;
		}
#endif
		if (j->bf16) {
#if defined(__x86_64__)
			if (j->hwbf16) {
				att_block_abf(j, t, nx, s, &packed);
				continue;
			}
#endif
			att_block_bf16(j, t, s, &packed);
			continue;
		}
#if defined(__x86_64__)
		if (j->path == 2) {
			att_block_fused(j, t, nx, s, &packed);
			continue;
		}
#endif
		att_block(j, t, s);
	}
	if (s != stack)
		free(s);
}

/* The key-padding mask as an additive row per batch entry: 0 where
 * mask == 1, else (1 - mask) * filter (so a -inf filter works); replace:
 * NaN where mask == 1 (kept), else filter (the masked key's score). */
static void att_pad(const rt_t *m, float filter, bool replace, int64_t np, float *pad)
{
	for (int64_t i = 0; i < np; i++) {
		double mv = m->dtype == KILN_F32 ? ((const float *)m->data)[i] :
		            (double)rt_get_i64(m->data, m->dtype, i);
		if (replace)
			pad[i] = mv != 1.0 ? filter : NAN;
		else
			pad[i] = mv != 1.0 ? (float)(1.0 - mv) * filter : 0.0f;
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* Packed mode: the order the tasks take the sequences in, longest first
 * (then by index): the pool hands out chunks of tasks in order, so the
 * long sequences' work is spread first and the short ones fill the gaps
 * (ascending lengths, as a batch sorted by length, left the longest
 * sequence's heads to the end, one thread running them while the other
 * waited).  ord[i]'s low 32 bits: a sequence. */
static void att_order(const int32_t *cu, int64_t n, int64_t *ord)
{
	for (int64_t b = 0; b < n; b++)
		ord[b] = (int64_t)(INT32_MAX - (cu[b + 1] - cu[b])) << 32 | b;
	qsort(ord, (size_t)n, sizeof *ord, cmp_i64);
}

/* Packed mode (cu_seqlens, passes/pack_tokens.c): Q, K, V are [1, T, *]
 * (layout 0, self-attention, no bias or mask); cu [B+1] the offsets of the
 * B sequences.  Sq, Sk become the longest sequence's length. */
static int att_packed(kiln_frame *f, const char *loc, const rt_t *cu, bool mask, att_job *j)
{
	int64_t T = j->Sq, n = cu->rank == 1 ? cu->dims[0] : 0;
	if (cu->dtype != KILN_I32 || n < 1 || j->B != 1 || j->Sk != T || mask || j->bias || j->rq != j->ldq)
		return rt_error(f, "node '%s' (KlnAttention): packed tokens need i32 cu_seqlens, Q, K, V "
		                "[1, T, *], no mask, no bias, layout 0", loc);
	const int32_t *c = cu->data;
	int64_t mx = 0;
	for (int64_t b = 0; b + 1 < n; b++) {
		if (c[b + 1] < c[b])
			return rt_error(f, "node '%s' (KlnAttention): cu_seqlens decreases at %lld", loc, (long long)b);
		mx = c[b + 1] - c[b] > mx ? c[b + 1] - c[b] : mx;
	}
	if (c[0] != 0 || c[n - 1] != T)
		return rt_error(f, "node '%s' (KlnAttention): cu_seqlens runs from %d to %d, not 0 to %lld",
		                loc, c[0], c[n - 1], (long long)T);
	j->cu = c;
	j->B = n - 1;
	j->Sq = j->Sk = mx;
	return 0;
}

/* Int attribute slot of KlnAttention past kv_tiled (mask_from, bias_from:
 * the graph input a mask or bias is computed from; mask_replace), 0 when
 * the caller passed fewer attributes. */
static int64_t att_from(const int64_t *ia, int nia, int slot)
{
	return nia > slot ? ia[slot] : 0;
}

RT_KERNEL(KlnAttention)
{
	const char *op = "KlnAttention";
	if (nin < 3 || nout < 1 || nia < RT_IA_KlnAttention_kv_tiled || nfa < RT_NFA_KlnAttention)
		return rt_error(f, "node '%s' (%s): bad arity or attributes", loc, op);
	const rt_t *Q = &in[0], *K = &in[1], *V = &in[2];
	if (need_f32(f, loc, op, Q, "Q") || need_f32(f, loc, op, K, "K") ||
	    need_f32(f, loc, op, V, "V") || need_f32(f, loc, op, &out[0], "output"))
		return 1;
	if (Q->rank != 3 || K->rank != 3 || V->rank != 3)
		return rt_error(f, "node '%s' (%s): Q, K, V must have rank 3", loc, op);
	att_job j = {0};
	j.D = ia[RT_IA_KlnAttention_head_size];
	j.ko = ia[RT_IA_KlnAttention_k_offset];
	int64_t layout = ia[RT_IA_KlnAttention_layout];
	j.guard = ia[RT_IA_KlnAttention_nan_guard] != 0;
	j.H = ia[RT_IA_KlnAttention_num_heads];
	j.qo = ia[RT_IA_KlnAttention_q_offset];
	j.Dv = ia[RT_IA_KlnAttention_v_head_size];
	j.vo = ia[RT_IA_KlnAttention_v_offset];
	j.filter = fa[RT_FA_KlnAttention_mask_filter];
	j.scale = fa[RT_FA_KlnAttention_scale];
	j.causal = (int)ia[RT_IA_KlnAttention_causal];
	j.cfill = fa[RT_FA_KlnAttention_causal_fill];
	int64_t replace = att_from(ia, nia, RT_IA_KlnAttention_mask_replace);
	if (replace != 0 && replace != 1)
		return rt_error(f, "node '%s' (%s): mask_replace %lld is not 0 or 1", loc, op, (long long)replace);
	j.replace = replace != 0;
	int64_t fpmath = att_from(ia, nia, RT_IA_KlnAttention_fpmath);
	if (fpmath != 0 && fpmath != 1)
		return rt_error(f, "node '%s' (%s): fpmath %lld is not 0 (f32) or 1 (bf16)", loc, op,
		                (long long)fpmath);
	j.bf16 = fpmath != 0;
	j.hwbf16 = j.bf16 && !strcmp(rt_sgemm_bf16_kernel(), "avx512bf16");
	int64_t hkv = ia[RT_IA_KlnAttention_kv_num_heads];
	int64_t tiled = nia > RT_IA_KlnAttention_kv_tiled ? ia[RT_IA_KlnAttention_kv_tiled] : 0;
	if (tiled != 0 && tiled != 1)
		return rt_error(f, "node '%s' (%s): kv_tiled %lld is not 0 or 1", loc, op, (long long)tiled);
	if (j.causal < 0 || j.causal > 2)
		return rt_error(f, "node '%s' (%s): unknown causal mode %d", loc, op, j.causal);
	if (layout != 0 && layout != 1)
		return rt_error(f, "node '%s' (%s): unknown layout %lld", loc, op, (long long)layout);
	int bi = (int)layout, si = 1 - (int)layout;
	j.B = Q->dims[bi]; j.Sq = Q->dims[si]; j.Sk = K->dims[si];
	j.ldq = Q->dims[2]; j.ldk = K->dims[2]; j.ldv = V->dims[2];
	hkv = hkv ? hkv : j.H;
	if (j.H <= 0 || hkv <= 0 || j.H % hkv)
		return rt_error(f, "node '%s' (%s): %lld K/V heads for %lld heads", loc, op,
		                (long long)hkv, (long long)j.H);
	j.rep = j.H / hkv;
	j.hkv = hkv;
	j.tiled = tiled != 0;
	if (j.D < 0 || j.Dv < 0 || j.qo < 0 || j.ko < 0 || j.vo < 0 ||
	    j.qo + j.H * j.D > j.ldq || j.ko + hkv * j.D > j.ldk || j.vo + hkv * j.Dv > j.ldv)
		return rt_error(f, "node '%s' (%s): heads do not fit in Q/K/V", loc, op);
	if (K->dims[bi] != j.B || V->dims[bi] != j.B || V->dims[si] != j.Sk)
		return rt_error(f, "node '%s' (%s): Q, K, V disagree on batch (%lld, %lld, %lld) or "
		                "key length (%lld, %lld)", loc, op, (long long)j.B,
		                (long long)K->dims[bi], (long long)V->dims[bi], (long long)j.Sk,
		                (long long)V->dims[si]);
	rt_t *O = &out[0];
	int64_t ho = j.H * j.Dv;
	/* element steps: layout 0 rows are consecutive within a batch entry,
	 * layout 1 rows are B entries apart */
	if (layout == 0) {
		j.rq = j.ldq; j.rk = j.ldk; j.rv = j.ldv; j.ro = ho;
		j.bq = j.Sq * j.ldq; j.bk = j.Sk * j.ldk; j.bv = j.Sk * j.ldv; j.bo = j.Sq * ho;
	} else {
		j.rq = j.B * j.ldq; j.rk = j.B * j.ldk; j.rv = j.B * j.ldv; j.ro = j.B * ho;
		j.bq = j.ldq; j.bk = j.ldk; j.bv = j.ldv; j.bo = ho;
	}
	j.q = Q->data; j.k = K->data; j.v = V->data; j.o = O->data;
	if (nin > 3 && in[3].data) {
		const rt_t *bias = &in[3];
		if (need_f32(f, loc, op, bias, "bias"))
			return 1;
		if (bias->rank > 4)
			return rt_error(f, "node '%s' (%s): bias rank %d > 4", loc, op, bias->rank);
		int64_t full[4] = {j.B, j.H, j.Sq, j.Sk}, s = 1;
		for (int d = 3; d >= 0; d--) {
			int db = d - (4 - bias->rank);
			int64_t n = db >= 0 ? bias->dims[db] : 1;
			char bn[96];
			if (n != full[d] && n != 1)
				return rt_error(f, "node '%s' (%s): bias (%s) dim %d is %lld, expected 1 or %lld",
				                loc, op,
				                rt_in_desc_from(f, bias, 3, att_from(ia, nia, RT_IA_KlnAttention_bias_from),
				                                bn, sizeof bn),
				                db, (long long)n, (long long)full[d]);
			j.bs[d] = n == 1 ? 0 : s;
			s *= n;
		}
		j.bias = bias->data;
	}
	if (nin > 4 && in[4].data) {
		const rt_t *m = &in[4];
		char mn[96];
		if (m->rank != 2 || m->dims[0] != j.B || m->dims[1] != j.Sk)
			return rt_error(f, "node '%s' (%s): mask %s must be [%lld, %lld]", loc, op,
			                rt_in_desc_from(f, m, 4, att_from(ia, nia, RT_IA_KlnAttention_mask_from),
			                                mn, sizeof mn),
			                (long long)j.B, (long long)j.Sk);
		if (m->dtype != KILN_F32 && rt_is_float(m->dtype))
			return rt_bad_dtype(f, loc, op, m->dtype);
	}
	/* after the bias and mask: an output whose batch is the max() with a
	 * mask's batch of its own is a mask of the wrong size, said so above */
	if (O->rank != 3 || O->dims[bi] != j.B || O->dims[si] != j.Sq || O->dims[2] != ho)
		return rt_error(f, "node '%s' (%s): output shape disagrees with Q", loc, op);
	if (nin > 5 && in[5].data && att_packed(f, loc, &in[5], nin > 4 && in[4].data, &j))
		return 1;
	/* query rows per task: enough to amortize, small enough to spread */
	j.rows = j.Sk > 0 ? ATT_STACK / j.Sk : j.Sq;
	if (j.rows > 128)
		j.rows = 128;
	/* ... and at least 4 tasks a thread while blocks have 16 rows or more
	 * (a head's 128 rows in one block pack its K and V once: the products
	 * run ~15% faster than in blocks of 64) */
	int64_t heads = j.B * j.H, want = 4 * (int64_t)rt_pool_size(f ? f->pool : NULL);
	while (j.rows > 16 && heads * ((j.Sq + j.rows - 1) / j.rows) < want)
		j.rows /= 2;
	if (j.rows < 1)
		j.rows = 1;
	if (j.rows > j.Sq)
		j.rows = j.Sq > 0 ? j.Sq : 1;
	j.nqb = (j.Sq + j.rows - 1) / j.rows;
	int64_t tasks = j.B * j.H * j.nqb;
	if (tasks == 0)
		return 0;
	j.tasks = tasks;
	j.nth = rt_pool_size(f ? f->pool : NULL);
	j.path = att_path();
	int64_t ordbuf[ATT_ORD_STACK], *ord = NULL;
	if (j.cu && j.B > 1) {
		ord = j.B <= ATT_ORD_STACK ? ordbuf : malloc((size_t)j.B * sizeof *ord);
		if (!ord)
			return rt_error(f, "node '%s' (%s): out of memory for %lld sequences", loc, op,
			                (long long)j.B);
		att_order(j.cu, j.B, ord);
		j.ord = ord;
	}
	float padbuf[ATT_PAD_STACK], *pad = NULL;
	if (nin > 4 && in[4].data) {
		int64_t np = j.B * j.Sk;
		pad = np <= ATT_PAD_STACK ? padbuf : malloc((size_t)np * sizeof(float));
		if (!pad) {
			if (ord != ordbuf)
				free(ord);
			return rt_error(f, "node '%s' (%s): out of memory for a %lld x %lld mask", loc, op,
			                (long long)j.B, (long long)j.Sk);
		}
		att_pad(&in[4], j.filter, j.replace, np, pad);
		j.pad = pad;
	}
	/* ns of work per task, roughly: the fused path does ~32 multiply-adds
	 * a ns (measured on one Zen 3 core: 60-70 GFLOP/s), so LXMERT's 12
	 * heads of 20 x 20 or 20 x 36 stay on one thread (waking the pool costs
	 * more); the others a few */
	int64_t cost = j.rows * j.Sk * (j.D + j.Dv + 8);
	rt_par(f, tasks, j.path == 2 ? cost / 32 : cost, att_range, &j);
	if (pad != padbuf)
		free(pad);
	if (ord != ordbuf)
		free(ord);
	if (j.failed)
		return rt_error(f, "node '%s' (%s): out of memory for %lld scores", loc, op,
		                (long long)(j.rows * j.Sk));
	return 0;
}

/* ---- KlnEmbedLayerNorm ---- */

typedef struct emb_job {
	ln_job ln;
	const void *ix[3];
	int32_t ixdt[3];
	const float *tab[3];
	int64_t rows[3];
	int64_t ixs[3][2];       /* index strides over [B, S] (0: broadcast) */
	int inp[3];              /* the op input each index is */
	int nt;
	int64_t S, H;
} emb_job;

static int64_t emb_index(const emb_job *j, int t, int64_t b, int64_t s)
{
	int64_t x = rt_get_i64(j->ix[t], j->ixdt[t], b * j->ixs[t][0] + s * j->ixs[t][1]);
	return x < 0 ? x + j->rows[t] : x;
}

static void emb_range(void *arg, int64_t b, int64_t e)
{
	const emb_job *j = arg;
	int64_t H = j->H;
	for (int64_t r = b; r < e; r++) {
		int64_t bb = r / j->S, ss = r % j->S;
		float *y = j->ln.y + r * H;
		float *s = j->ln.sum ? j->ln.sum + r * H : y;
		const float *t0 = j->tab[0] + emb_index(j, 0, bb, ss) * H;
		for (int64_t k = 0; k < H; k++)
			s[k] = t0[k];
		for (int t = 1; t < j->nt; t++) {
			const float *tt = j->tab[t] + emb_index(j, t, bb, ss) * H;
			for (int64_t k = 0; k < H; k++)
				s[k] += tt[k];
		}
		ln_row(&j->ln, s, y);
	}
}

RT_KERNEL(KlnEmbedLayerNorm)
{
	const char *op = "KlnEmbedLayerNorm";
	(void)ia; (void)nia;
	if (nin < 4 || nout < 1 || nfa < RT_NFA_KlnEmbedLayerNorm)
		return rt_error(f, "node '%s' (%s): bad arity", loc, op);
	const rt_t *ids = &in[0], *word = &in[1];
	if (!ids->data || ids->rank != 2 || rt_is_float(ids->dtype) || ids->dtype == KILN_BOOL)
		return rt_error(f, "node '%s' (%s): ids must be integer [batch, seq]", loc, op);
	if (need_f32(f, loc, op, word, "word table") || word->rank != 2)
		return rt_error(f, "node '%s' (%s): word table must be f32 [vocab, hidden]", loc, op);
	emb_job j = {0};
	j.H = word->dims[1];
	rt_t *Y = &out[0];
	/* the output is the indices' broadcast [B, S] as the graph's Adds made
	 * it (the ids may be the broadcast ones: input_ids of batch 1 with
	 * token_type_ids of batch 2) */
	if (need_f32(f, loc, op, Y, "output") || Y->rank != 3 || Y->dims[2] != j.H)
		return rt_error(f, "node '%s' (%s): output must be [batch, seq, %lld]", loc, op,
		                (long long)j.H);
	int64_t B = Y->dims[0];
	j.S = Y->dims[1];
	if (need_vec(f, loc, op, &in[2], j.H, "gamma") || need_vec(f, loc, op, &in[3], j.H, "beta"))
		return 1;
	j.ln = (ln_job){.gamma = in[2].data, .beta = in[3].data, .n = j.H,
	                .eps = fa[RT_FA_KlnEmbedLayerNorm_epsilon],
	                .g1 = rt_numel(&in[2]) == 1, .b1 = rt_numel(&in[3]) == 1, .y = Y->data,
	                .path = att_path()};
	if (nout > 1 && out[1].data)
		j.ln.sum = out[1].data;
	j.ix[0] = ids->data; j.ixdt[0] = ids->dtype; j.tab[0] = word->data; j.rows[0] = word->dims[0];
	j.inp[0] = 0;
	j.nt = 1;
	for (int p = 4; p + 1 < nin && p <= 6; p += 2) {
		const rt_t *ix = &in[p], *tab = &in[p + 1];
		if (!ix->data || !tab->data)
			continue;
		if (need_f32(f, loc, op, tab, "table") || tab->rank != 2 || tab->dims[1] != j.H)
			return rt_error(f, "node '%s' (%s): table %d must be f32 [rows, %lld]", loc, op,
			                p + 1, (long long)j.H);
		if (rt_is_float(ix->dtype) || ix->dtype == KILN_BOOL || ix->rank < 1 || ix->rank > 2)
			return rt_error(f, "node '%s' (%s): index %d must be integer of rank 1 or 2", loc,
			                op, p);
		int64_t di = ix->rank == 2 ? ix->dims[0] : 1, si = ix->dims[ix->rank - 1];
		char xn[96], tn[96];
		/* position ids sliced from a buffer as long as the table: a longer
		 * sequence gets them cut at the table's length */
		if (si > 1 && si < j.S && si == tab->dims[0] && (di == B || di == 1))
			return rt_error(f, "node '%s' (%s): sequence %lld is longer than the model's "
			                "%lld positions (%s has %lld, the table %s has %lld rows)", loc,
			                op, (long long)j.S, (long long)si,
			                rt_in_desc(f, ix, p, xn, sizeof xn), (long long)si,
			                rt_in_desc(f, tab, p + 1, tn, sizeof tn), (long long)tab->dims[0]);
		int t = j.nt++;
		j.inp[t] = p;
		j.ix[t] = ix->data; j.ixdt[t] = ix->dtype; j.tab[t] = tab->data; j.rows[t] = tab->dims[0];
	}
	/* every index broadcasts to [B, S] (equal or 1, as the Adds required;
	 * the inputs of a dynamo export may have symbols of their own): else
	 * one line naming it and an index of the output's size */
	for (int t = 0; t < j.nt; t++) {
		const rt_t *ix = &in[j.inp[t]];
		int64_t di = ix->rank == 2 ? ix->dims[0] : 1, si = ix->dims[ix->rank - 1];
		if ((di != B && di != 1) || (si != j.S && si != 1)) {
			int q = 0;
			for (int u = 0; u < j.nt; u++) {
				const rt_t *o = &in[j.inp[u]];
				if (o->rank == 2 && u != t && o->dims[0] == B && o->dims[1] == j.S) {
					q = u;
					break;
				}
			}
			const rt_t *o = &in[j.inp[q]];
			char xn[96], on[96];
			return rt_error(f, "node '%s' (%s): %s of shape [%lld, %lld] does not broadcast "
			                "with %s of shape [%lld, %lld]", loc, op,
			                rt_in_desc(f, ix, j.inp[t], xn, sizeof xn), (long long)di,
			                (long long)si, rt_in_desc(f, o, j.inp[q], on, sizeof on),
			                (long long)(o->rank == 2 ? o->dims[0] : 1),
			                (long long)o->dims[o->rank - 1]);
		}
		j.ixs[t][0] = di == 1 ? 0 : si;
		j.ixs[t][1] = si == 1 ? 0 : 1;
	}
	/* every index in range, before any thread reads a table */
	for (int t = 0; t < j.nt; t++)
		for (int64_t bb = 0; bb < B; bb++)
			for (int64_t ss = 0; ss < j.S; ss++) {
				int64_t x = emb_index(&j, t, bb, ss);
				if (x < 0 || x >= j.rows[t]) {
					char xn[96], tn[96];
					int ti = t ? j.inp[t] + 1 : 1;
					return rt_error(f, "node '%s' (%s): index %lld at [%lld, %lld] of %s "
					                "is out of range [0, %lld) of the table %s", loc, op,
					                (long long)rt_get_i64(j.ix[t], j.ixdt[t],
					                                      bb * j.ixs[t][0] + ss * j.ixs[t][1]),
					                (long long)bb, (long long)ss,
					                rt_in_desc(f, &in[j.inp[t]], j.inp[t], xn, sizeof xn),
					                (long long)j.rows[t],
					                rt_in_desc(f, &in[ti], ti, tn, sizeof tn));
				}
			}
	if (j.H == 0)
		return 0;
	rt_par(f, B * j.S, j.H * 12, emb_range, &j);
	return 0;
}
