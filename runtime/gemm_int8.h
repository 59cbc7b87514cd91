/* gemm_int8.h: kiln's int8 GEMM (kiln compile --quantize=int8; KlnGemmQ),
 * private to the runtime, its tests and the compiler's quantize pass.
 *
 *   C[M x N] = act(deq(quant(A) * Wq) + bias)
 *
 * W (f32 [K, N]) is quantized at compile time per output column n,
 * symmetric: scale[n] = max_k |W[k, n]| / qmax, Wq = round(W / scale) in
 * [-qmax, qmax]; wsum[n] = sum_k Wq[k, n].  qmax is 127 (8-bit weights) or,
 * with 7-bit weights (kiln compile --quantize-weight-bits=7, as ONNX
 * Runtime's reduce_range), RT_Q8_W7MAX = 64: then a u8 x s8 pair sum is at
 * most 2 * 255 * 64 = 32640, so AVX2's vpmaddubsw (which saturates its
 * i16 pair sums) is exact on them.  A (f32 [M, K]) is quantized per row
 * m at run time, asymmetric uint8 (zero exact, as ONNX's
 * DynamicQuantizeLinear but per row): sa[m] = (max(0, max_k A) - min(0,
 * min_k A)) / 255, zp[m] = round(-min / sa) in [0, 255], q = clamp(round(A /
 * sa) + zp, 0, 255).  The products are summed exactly in int32 (|q * w| <=
 * 255 * 127, so K up to 65536), then
 *
 *   C[m, n] = (acc[m, n] - zp[m] * wsum[n]) * sa[m] * scale[n] + bias[n]
 *
 * Wq is stored in panels of RT_Q8_NR = 16 columns: panel p, k quad q, column
 * c: the 4 bytes Wq[4q .. 4q+3, 16p + c] (zeros past K and N), 64 bytes per
 * quad: what vpdpbusd multiplies (one zmm, or two ymm, per quad), and what
 * AVX2 widens to i16 pairs for vpmaddwd.  As an IR tensor: i8
 * [ceil(N/16), ceil(K/4), 64].
 *
 * Micro-kernels, chosen at run time: "avx512vnni" (vpdpbusd zmm, 8 x 48:
 * three panels a call; "avx512vnni16", 8 x 16, for tests and benchmarks),
 * "avxvnni" (VEX vpdpbusd ymm), "avx2-w7" (6 x 16, u8 x s8 vpmaddubsw +
 * vpmaddwd by ones: about 1.5 times the rate of "avx2", exact ONLY on 7-bit
 * weights, so chosen only when the caller says the weights are 7-bit
 * (RT_Q8_W7), and it checks every panel it reads), "avx2" (3 x 16, A as
 * i16, W widened once per panel, vpmaddwd: exact on 8-bit weights, where
 * vpmaddubsw would saturate; "avx2-narrow" widens in its loop, used when
 * the panel buffer cannot be had), "c" (portable; the only one off
 * x86-64); "avx2-w7x4" and "avx2x4", the 4-row kernels before them, for
 * tests and benchmarks.
 * All give the same int32 sums, so the same C bit for bit. */
#ifndef KILN_RT_GEMM_INT8_H
#define KILN_RT_GEMM_INT8_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "gemm.h"

#define RT_Q8_NR 16
#define RT_Q8_KMAX 65536     /* larger K could overflow the int32 sums */
#define RT_Q8_W7MAX 64       /* |Wq| of 7-bit weights: 2 * 255 * 64 fits an i16 */

/* rt_qgemm's flags */
#define RT_Q8_PER_TENSOR 1   /* A quantized with one scale (DynamicQuantizeLinear) */
#define RT_Q8_W7 2           /* every |Wq| <= RT_Q8_W7MAX (the 7-bit kernels may run) */
/* with RT_Q8_W7: W is a model's own constant, which the compiler quantized
 * to 7 bits or found within them (KlnGemmQ's wbits 7; the weights blob is
 * checked against the compiler's hash at load): the 7-bit kernels skip
 * their check of every panel */
#define RT_Q8_W7_KNOWN 4

static inline int64_t rt_q8_panels(int64_t N) { return (N + RT_Q8_NR - 1) / RT_Q8_NR; }
static inline int64_t rt_q8_quads(int64_t K) { return (K + 3) / 4; }
static inline int64_t rt_q8_panel_bytes(int64_t K, int64_t N)
{
	return rt_q8_panels(N) * rt_q8_quads(K) * 4 * RT_Q8_NR;
}

/* W (row-major f32 [K, N]) quantized per column into dst (the panel layout,
 * rt_q8_panel_bytes(K, N) bytes), scale[N] and wsum[N]; bits 8 (|Wq| <= 127)
 * or 7 (|Wq| <= RT_Q8_W7MAX).  W must be finite: passes/quantize.c leaves a
 * GEMM whose weights are not in fp32. */
static inline void rt_q8_quantize_weights_bits(const float *W, int64_t K, int64_t N, int bits,
                                               int8_t *dst, float *scale, int32_t *wsum)
{
	const float qmax = bits == 7 ? (float)RT_Q8_W7MAX : 127.0f;
	memset(dst, 0, (size_t)rt_q8_panel_bytes(K, N));
	int64_t kq = rt_q8_quads(K);
	for (int64_t n = 0; n < N; n++) {
		float mx = 0;
		for (int64_t k = 0; k < K; k++)
			mx = fmaxf(mx, fabsf(W[k * N + n]));
		float s = mx > 0 ? mx / qmax : 1.0f;
		int32_t sum = 0;
		int8_t *pan = dst + (n / RT_Q8_NR) * kq * 4 * RT_Q8_NR + (n % RT_Q8_NR) * 4;
		for (int64_t k = 0; k < K; k++) {
			float q = nearbyintf(W[k * N + n] / s);
			int8_t v = (int8_t)(q > qmax ? qmax : q < -qmax ? -qmax : q);
			pan[(k / 4) * 4 * RT_Q8_NR + k % 4] = v;
			sum += v;
		}
		scale[n] = s;
		wsum[n] = sum;
	}
}

static inline void rt_q8_quantize_weights(const float *W, int64_t K, int64_t N, int8_t *dst,
                                          float *scale, int32_t *wsum)
{
	rt_q8_quantize_weights_bits(W, K, N, 8, dst, scale, wsum);
}

/* 7 if every one of the n weights is within [-RT_Q8_W7MAX, RT_Q8_W7MAX]
 * (KlnGemmQ's wbits: the 7-bit kernels may run), else 8 */
static inline int rt_q8_wbits(const int8_t *w, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		if (w[i] < -RT_Q8_W7MAX || w[i] > RT_Q8_W7MAX)
			return 8;
	return 7;
}

/* Wq (row-major int8 [K, N], already quantized: an imported model's) into
 * dst (the panel layout) and its column sums wsum[N]. */
static inline void rt_q8_pack(const int8_t *Wq, int64_t K, int64_t N, int8_t *dst, int32_t *wsum)
{
	memset(dst, 0, (size_t)rt_q8_panel_bytes(K, N));
	int64_t kq = rt_q8_quads(K);
	for (int64_t n = 0; n < N; n++) {
		int8_t *pan = dst + (n / RT_Q8_NR) * kq * 4 * RT_Q8_NR + (n % RT_Q8_NR) * 4;
		int32_t sum = 0;
		for (int64_t k = 0; k < K; k++) {
			pan[(k / 4) * 4 * RT_Q8_NR + k % 4] = Wq[k * N + n];
			sum += Wq[k * N + n];
		}
		wsum[n] = sum;
	}
}

/* The GEMM above; Wp/scale/wsum from rt_q8_quantize_weights, epi may be
 * NULL.  Work is split over pool's threads (pool may be NULL).  flags:
 * RT_Q8_PER_TENSOR: A quantized with one scale and zero point for all its
 * rows, computed as ONNX's DynamicQuantizeLinear does (x / scale, min and
 * max including 0); RT_Q8_W7: the weights are 7-bit (|Wq| <= RT_Q8_W7MAX),
 * checked panel by panel unless RT_Q8_W7_KNOWN.
 * Returns -1 (and computes nothing) when K > RT_Q8_KMAX or memory runs out,
 * -2 when per tensor and A holds a NaN or an infinity, -3 when RT_Q8_W7
 * and a 7-bit kernel found a weight outside the 7-bit range (C is then
 * undefined). */
int rt_qgemm(struct rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
             const int8_t *Wp, const float *scale, const int32_t *wsum, float *C, int64_t ldc,
             const rt_gemm_epi *epi, int flags);

/* The micro-kernel rt_qgemm uses for weights of these flags (RT_Q8_W7 or
 * 0): "avx512vnni", "avxvnni", "avx2-w7" (7-bit weights only), "avx2" or
 * "c" (chosen once from the CPU; "avx2-w7x4", "avx2x4", "avx2-narrow" and
 * "avx512vnni16" only when forced).  rt_qgemm_use forces one (tests,
 * benchmarks): -1 if the CPU cannot run it or the name is unknown; NULL
 * resets.  A forced 7-bit kernel never sees 8-bit weights: rt_qgemm then
 * runs the best 8-bit one. */
const char *rt_qgemm_kernel(int flags);
int rt_qgemm_use(const char *name);

/* ---- private to gemm_int8*.c ---- */

/* acc[r * 16 + c] = sum over kq quads of A_r . W panel column c, for the
 * kernel's MR rows: a[r] points at row r (u8, or i16 for "avx2"), wp at
 * the panel. */
typedef void (*rt_q8_kern)(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc);
/* the same, also prefetching to L2 the 16 kq bytes from pf (a line every 4
 * quads, spread over the loop: a quarter of the next panel a call), or for
 * a kernel of np > 1 panels the 64 kq bytes (a line a quad: a panel) */
typedef void (*rt_q8_kern_pf)(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc,
                              const int8_t *pf);

typedef struct rt_q8_ukernel {
	const char *name;
	rt_q8_kern fn;
	int mr;            /* rows per call */
	int a16;           /* A rows as i16 (else u8) */
	/* NULL, or: the kernel reads each panel (kq quads) widened by this
	 * into kq * 64 int16 (once per panel, shared by its row blocks) */
	void (*widen)(int64_t kq, const int8_t *wp, int16_t *dst);
	rt_q8_kern narrow;  /* with widen: fn on the int8 panel (no memory for the widened one) */
	int w7;            /* exact only when every |Wq| <= RT_Q8_W7MAX */
	/* NULL, or: the kernel for blocks of at most tail_mr rows (the last
	 * rows of a chunk; on the same A and W as fn, the same sums) */
	rt_q8_kern tail;
	int tail_mr;
	/* NULL, or fn and tail that prefetch as they go (rt_q8_kern_pf) */
	rt_q8_kern_pf fn_pf, tail_pf;
	/* panels per call: fn and tail read np contiguous panels (panel g at
	 * wp + g * kq * 64) and write panel g's MR x 16 sums at acc + g * MR * 16;
	 * part[k - 1] and tail_part[k - 1] are the same on k < np panels (the
	 * last ones of N) */
	int np;
	rt_q8_kern part[2], tail_part[2];
} rt_q8_ukernel;

/* 1 if every one of the n values of w is within [-RT_Q8_W7MAX, RT_Q8_W7MAX] */
int rt_q8_w7_ok(const int8_t *w, int64_t n);

#if defined(__x86_64__)
/* gemm_int8.c's quantization of a row of A, on AVX2 (the same results as
 * its portable loops) */
void rt_q8_row_range_avx2(const float *x, int64_t K, float *mn, float *mx, int *bad);
void rt_q8_quant_u8_avx2(const float *x, int64_t K, float inv, int32_t zp, uint8_t *q);
/* the same two in 16 lanes (the same results); the CPU must have AVX512F,
 * and for the second AVX512BW */
void rt_q8_row_range_avx512(const float *x, int64_t K, float *mn, float *mx, int *bad);
void rt_q8_quant_u8_avx512(const float *x, int64_t K, float inv, int32_t zp, uint8_t *q);
/* q[0 .. n) widened to i16 into dst, which may start n bytes below q */
void rt_q8_widen_u8_avx2(const uint8_t *q, int16_t *dst, int64_t n);
/* gemm_int8.c's dequant of an MR x 16 tile (rows of sa, zp; columns of wsum,
 * scale, bias), then act (1 GELU erf: a rational erf, absolute error of the
 * GELU below 1.5e-6 (1 + |GELU|); 2 tanh, 3 QuickGELU: vmath.h's vm_gelu8)
 * with AVX2 + FMA: the CPU must have both */
void rt_q8_dequant16_avx2(const int32_t *acc, int mr, float *C, int64_t ldc, const float *sa,
                          const int32_t *zp, const int32_t *wsum, const float *scale,
                          const float *bias, int act);
/* the same on np whole panels of a kernel's tile (panel g's sums at
 * acc + g * MR * 16, into C's columns 16 g ..) in 16 lanes, act 0 or 1 (the
 * erf GELU): the same operations lane by lane, so the same bits as it;
 * the CPU must have AVX512F */
void rt_q8_dequant_avx512(const int32_t *acc, int MR, int mr, int np, float *C, int64_t ldc,
                          const float *sa, const int32_t *zp, const int32_t *wsum,
                          const float *scale, const float *bias, int act);
extern const rt_q8_ukernel rt_q8_avx512vnni, rt_q8_avx512vnni16, rt_q8_avxvnni, rt_q8_avx2_w7, rt_q8_avx2,
	rt_q8_avx2_w7x4, rt_q8_avx2x4, rt_q8_avx2_narrow;
#endif

#endif
