/* gemm.h: kiln's own fp32 GEMM (runtime/gemm.c), private to the runtime
 * and its tests.  Row-major, cblas semantics:
 *
 *   C[M x N] = alpha * op(A)[M x K] * op(B)[K x N] + beta * C
 *
 * op(X) = X, or X^T when transX != 0 (then X is stored K x M / N x K).
 * beta == 0 means C is not read (NaNs in C do not propagate).  Work is
 * split over pool's threads (a call made inside a pool job runs serially);
 * pool may be NULL.  Packing buffers are per thread, allocated once. */
#ifndef KILN_RT_GEMM_H
#define KILN_RT_GEMM_H

#include <stdint.h>

struct rt_pool;

/* Epilogue applied to each C element after alpha*AB + beta*C:
 * c = act(c + bias[col]) (+ nothing else yet). */
typedef struct rt_gemm_epi {
	const float *bias;           /* [N], or NULL */
	int act;                     /* 0 none, 1 GELU (erf), 2 GELU (tanh), 3 QuickGELU
	                              * (x sigmoid(1.702 x)): rt_gelu_inplace(act - 1) */
} rt_gemm_epi;

void rt_sgemm(struct rt_pool *pool, int transA, int transB, int64_t M, int64_t N, int64_t K,
              float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta,
              float *C, int64_t ldc);

/* rt_sgemm, then the epilogue (epi may be NULL). */
void rt_sgemm_epi(struct rt_pool *pool, int transA, int transB, int64_t M, int64_t N, int64_t K,
                  float alpha, const float *A, int64_t lda, const float *B, int64_t ldb,
                  float beta, float *C, int64_t ldc, const rt_gemm_epi *epi);

/* C[M x N] = A[M x K] * W + epilogue, W [K x N] in the panel layout of
 * rt.h (rt_gemm_pack_panels): no packing of W at run time. */
void rt_sgemm_panels(struct rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                     int64_t lda, const float *Wp, float *C, int64_t ldc, const rt_gemm_epi *epi);

/* rt_sgemm_panels with W in the bf16 panel layout of rt.h
 * (rt_gemm_pack_panels_bf16): A is rounded to bf16 and the products are
 * summed in f32 (vdpbf16ps) where the CPU has AVX512_BF16 and the avx512
 * kernel is in use; otherwise W is widened to f32 and A used as is. */
void rt_sgemm_panels_bf16(struct rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A,
                          int64_t lda, const uint16_t *Wh, float *C, int64_t ldc,
                          const rt_gemm_epi *epi);
/* The kernel rt_sgemm_panels_bf16 uses: "avx512bf16" (vdpbf16ps),
 * "avx512bf16w" (the avx512 kernel's shape, W widened to f32 in
 * registers), else rt_sgemm_kernel() (W widened into f32 panels). */
const char *rt_sgemm_bf16_kernel(void);
/* Whether bf16 panels run on vdpbf16ps (with the avx512 kernel, on a CPU
 * with AVX512_BF16): 0 where it measured faster than f32 (the default;
 * KILN_BF16_DOT=1/0 decides instead), 1 always, 2 never (widened to f32).
 * Returns -1 for 1 on a CPU without it, or a mode that is not 0-2. */
int rt_sgemm_bf16_use(int mode);

/* Which micro-kernel rt_sgemm uses: "avx512", "avx2" or "c" (chosen once
 * from the CPU).  rt_sgemm_use forces one (tests, benchmarks); returns -1
 * if the CPU cannot run it or the name is unknown, NULL resets. */
const char *rt_sgemm_kernel(void);
int rt_sgemm_use(const char *name);

/* rt_sgemm_panels with few rows (up to 48) on several threads gives each
 * thread a contiguous run of weight panels (gemm.c's few-rows split)
 * unless this turned it off (0; 1: on again): tests and benchmarks compare
 * it with the general split.  Returns the previous setting. */
int rt_sgemm_few_rows(int on);

/* Cache blocking of rt_sgemm*: K step kc, at most mc rows and nc columns a
 * block (mc rounded up to a multiple of 24, nc of 48).  rt_sgemm_panels's
 * is chosen once from the CPU's cache sizes (rt_sgemm_blocking_get gives
 * it), the others' are fixed; rt_sgemm_blocking forces one for all (tests,
 * benchmarks; the bf16 kernel's K step too, rounded up to even), kc <= 0
 * goes back to the defaults.  Not to be changed while
 * a GEMM runs on another thread. */
void rt_sgemm_blocking(int64_t kc, int64_t mc, int64_t nc);
void rt_sgemm_blocking_get(int64_t *kc, int64_t *mc, int64_t *nc);

/* GELU over n floats in place, vectorized (erf: approx == 0; tanh: 1;
 * QuickGELU x / (1 + exp(-1.702 x)): 2 -- KlnGelu's approximate). */
void rt_gelu_inplace(float *x, int64_t n, int approx);

#endif
