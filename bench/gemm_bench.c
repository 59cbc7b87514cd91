/* gemm_bench.c: kiln's fp32 GEMM against the installed cblas_sgemm
 * (OpenBLAS as the system configured it, no environment variable) on the
 * BERT-base and LXMERT-base shapes, at 1 and 2 threads.  Built and run by
 * bench/gemm_bench.sh; not part of the test suite.
 *
 *   gemm_bench [KERNEL]      KERNEL: avx512, avx2, neon, c (rt_sgemm_use)
 *   GEMM_BENCH_CACHE=1       B stays in cache (one copy) instead of cycling
 *                            through >= 128 MB of copies (from DRAM, as a
 *                            model's weights are)
 *   GEMM_BENCH_PEAK=G        this machine's fp32 FMA peak in GFLOP per
 *                            CPU-second (kiln_peak's fp32_core): a % column
 *   gemm_bench int8 [KERNEL] rt_qgemm (KlnGemmQ's int8 GEMM) instead, 8-bit
 *                            and 7-bit weights, in GOP per CPU-second
 *                            (GEMM_BENCH_PEAK: kiln_peak's int8w7_core)
 *   GEMM_BENCH_ONLY=TEXT     only the shapes whose name holds TEXT
 *   GEMM_BENCH_AB=1          fp32, "panels" with few rows (M <= 48) on 2
 *                            threads: the few-rows split against the
 *                            general one (rt_sgemm_few_rows), call by call
 *                            in turn so both meet the same load; wall GB/s
 *                            of B (p10, median) and the median ratio of
 *                            neighbouring calls' times
 *   GEMM_BENCH_VS=KC,MC,NC   fp32 "panels": the blocking in force against
 *                            this one, call by call in turn (ab_block)
 *   GEMM_BENCH_VSK=KERNEL    the same with the kernel chosen for this CPU
 *                            against KERNEL (rt_sgemm_use)
 *   GEMM_BENCH_VSQ=KERNEL    int8: the chosen int8 kernel (or the one named)
 *                            against KERNEL (rt_qgemm_use), call by call
 *                            in turn, 8-bit weights, 1 and 2 threads;
 *                            =noepi: the same kernel without the epilogue
 *   GEMM_BENCH_BW=1          fp32: GB of B (the weights) read per
 *                            CPU-second instead of GFLOP (x T for the
 *                            wall-clock stream at T busy threads)
 *   GEMM_BENCH_QUICK=1       only "panels" (the others print "-")
 *   GEMM_BENCH_BF16=1        "panels" (and GEMM_BENCH_VS) with the weights in
 *                            bf16 panels (rt_sgemm_panels_bf16, as
 *                            --fpmath=bf16 runs them); % of the fp32 peak
 *   GEMM_BENCH_BLOCK=KC,MC,NC  fp32: that cache blocking (rt_sgemm_blocking)
 *                            instead of the one chosen from the caches
 *   GEMM_BENCH_HUGE=1        the panels in memory madvise'd MADV_HUGEPAGE
 *                            (2 MB pages where THP is in "madvise" mode)
 *   GEMM_BENCH_EPI=gelu      fp32: "panels" with the model's FFN-up epilogue
 *                            (bias and erf GELU, as KlnGemm fuses it); =bias:
 *                            the bias only.  int8: any value but 0 adds the
 *                            model's epilogue (a bias on every shape, the erf
 *                            GELU on the "up" ones, as KlnGemmQ runs them)
 *
 * The machine is shared, so the figure is GFLOP per CPU-second of this
 * process (getrusage: user + system time of all its threads, the pool's
 * spinning included), the best of the repetitions.  "panels" is the path
 * compiled models take (rt_sgemm_panels: W packed at compile time, A read
 * in place), "sgemm" row-major B packed at run time (rt_sgemm).  Threads
 * split the work the same way for both: rt_sgemm runs on a kiln pool,
 * OpenBLAS gets openblas_set_num_threads(T).  Batched (attention) shapes:
 * one call per head spread over the pool by head, as kiln's MatMul does. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include "gemm.h"
#include "gemm_int8.h"
#include "rt.h"
#include "rt_internal.h"

void openblas_set_num_threads(int);

/* CPU seconds used by the process so far (all threads) */
static double cpu_now(void)
{
	struct rusage u;
	getrusage(RUSAGE_SELF, &u);
	return (double)u.ru_utime.tv_sec + (double)u.ru_stime.tv_sec +
	       1e-6 * (double)(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

typedef struct { const char *what; int ta, tb; int64_t M, N, K, batch; } shape;

static const shape shapes[] = {
	{ "QKV proj", 0, 0, 128, 2304, 768, 1 },
	{ "attn out", 0, 0, 128, 768, 768, 1 },
	{ "FFN up", 0, 0, 128, 3072, 768, 1 },
	{ "FFN down", 0, 0, 128, 768, 3072, 1 },
	{ "QKV b8", 0, 0, 1024, 2304, 768, 1 },
	{ "out b8", 0, 0, 1024, 768, 768, 1 },
	{ "FFN up b8", 0, 0, 1024, 3072, 768, 1 },
	{ "FFN dn b8", 0, 0, 1024, 768, 3072, 1 },
	{ "QKV m576", 0, 0, 576, 2304, 768, 1 },     /* padding-free b8, lengths 16..128 */
	{ "up m576", 0, 0, 576, 3072, 768, 1 },
	{ "dn m576", 0, 0, 576, 768, 3072, 1 },
	{ "lx s20", 0, 0, 20, 768, 768, 1 },
	{ "lx s20 qkv", 0, 0, 20, 2304, 768, 1 },
	{ "lx s20 up", 0, 0, 20, 3072, 768, 1 },
	{ "lx s20 dn", 0, 0, 20, 768, 3072, 1 },
	{ "lx r36", 0, 0, 36, 768, 768, 1 },
	{ "lx r36 qkv", 0, 0, 36, 2304, 768, 1 },
	{ "lx r36 up", 0, 0, 36, 3072, 768, 1 },
	{ "lx r36 dn", 0, 0, 36, 768, 3072, 1 },
	{ "QK^T x12", 0, 1, 128, 128, 64, 12 },
	{ "PV x12", 0, 0, 128, 64, 128, 12 },
};

enum { KILN, PANELS, BLAS };

/* the "panels" epilogue (GEMM_BENCH_EPI), NULL: none */
static const rt_gemm_epi *bench_epi;
static bool bench_bf16;        /* GEMM_BENCH_BF16: "panels" is rt_sgemm_panels_bf16 */

/* the "panels" product; with GEMM_BENCH_BF16 Bp holds bf16 panels */
static void panels_call(const shape *s, struct rt_pool *pool, const float *A, const float *Bp,
                        float *C)
{
	if (bench_bf16)
		rt_sgemm_panels_bf16(pool, s->M, s->N, s->K, A, s->K, (const uint16_t *)Bp, C, s->N,
		                     bench_epi);
	else
		rt_sgemm_panels(pool, s->M, s->N, s->K, A, s->K, Bp, C, s->N, bench_epi);
}

typedef struct { const shape *s; const float *A, *B; float *C; int how; } bjob;

static void heads(void *arg, int64_t b, int64_t e)
{
	const bjob *j = arg;
	const shape *s = j->s;
	for (int64_t h = b; h < e; h++) {
		const float *A = j->A + h * s->M * s->K, *B = j->B + h * s->K * s->N;
		float *C = j->C + h * s->M * s->N;
		int64_t lda = s->ta ? s->M : s->K, ldb = s->tb ? s->K : s->N;
		if (j->how == BLAS)
			cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
			            s->tb ? CblasTrans : CblasNoTrans, (int)s->M, (int)s->N, (int)s->K,
			            1.0f, A, (int)lda, B, (int)ldb, 0.0f, C, (int)s->N);
		else
			rt_sgemm(NULL, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, lda, B, ldb, 0.0f, C,
			         s->N);
	}
}

/* one product: B (or its panels, Bp) is copy r % ncopy */
static void once(const shape *s, struct rt_pool *pool, int T, int how, const float *A,
                 const float *B, const float *Bp, float *C)
{
	if (s->batch > 1) {
		bjob j = { s, A, B, C, how };
		if (how == BLAS)
			openblas_set_num_threads(1);
		rt_parallel_for(pool, s->batch, heads, &j);
	} else if (how == BLAS) {
		openblas_set_num_threads(T);
		cblas_sgemm(CblasRowMajor, s->ta ? CblasTrans : CblasNoTrans,
		            s->tb ? CblasTrans : CblasNoTrans, (int)s->M, (int)s->N, (int)s->K,
		            1.0f, A, (int)(s->ta ? s->M : s->K), B, (int)(s->tb ? s->K : s->N),
		            0.0f, C, (int)s->N);
	} else if (how == PANELS) {
		panels_call(s, pool, A, Bp, C);
	} else {
		rt_sgemm(pool, s->ta, s->tb, s->M, s->N, s->K, 1.0f, A, s->ta ? s->M : s->K, B,
		         s->tb ? s->K : s->N, 0.0f, C, s->N);
	}
}

/* GFLOP per CPU-second: the best of a few groups of calls, each group long
 * enough (>= 20 ms of CPU) for getrusage's resolution */
static double run(const shape *s, struct rt_pool *pool, int T, int how, const float *A,
                  const float *B0, const float *Bp0, int ncopy, float *C)
{
	size_t nb = (size_t)(s->K * s->N * s->batch), np = (size_t)rt_gemm_panel_floats(s->K, s->N);
	double flop = 2.0 * (double)(s->M * s->N * s->K * s->batch), best = 0;
	int r = 0;
	once(s, pool, T, how, A, B0, Bp0, C);      /* warm up: buffers, threads */
	for (int g = 0; g < 7; g++) {
		double t0 = cpu_now(), t;
		int calls = 0;
		do {
			once(s, pool, T, how, A, B0 + (size_t)(r % ncopy) * nb,
			     Bp0 ? Bp0 + (size_t)(r % ncopy) * np : NULL, C);
			r++;
			calls++;
		} while ((t = cpu_now() - t0) < 0.02);
		double gf = flop * calls / t * 1e-9;
		if (gf > best)
			best = gf;
	}
	return best;
}

static double wall_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* GEMM_BENCH_AB: 400 pairs of calls, the few-rows split and the general
 * one in turn (which goes first alternates); prints wall GB/s of B */
static void ab_split(const shape *s, struct rt_pool *pool, const float *A, const float *Bp0,
                     int ncopy, float *C)
{
	enum { PAIRS = 400 };
	static double t[2][PAIRS], ratio[PAIRS];
	size_t np = (size_t)rt_gemm_panel_floats(s->K, s->N);
	int r = 0;
	for (int i = -5; i < PAIRS; i++)
		for (int v = 0; v < 2; v++) {
			int few = (v ^ i) & 1;
			rt_sgemm_few_rows(few);
			double t0 = wall_now();
			rt_sgemm_panels(pool, s->M, s->N, s->K, A, s->K, Bp0 + (size_t)(r++ % ncopy) * np,
			                C, s->N, bench_epi);
			if (i >= 0)
				t[few][i] = wall_now() - t0;
		}
	rt_sgemm_few_rows(1);
	for (int i = 0; i < PAIRS; i++)
		ratio[i] = t[1][i] / t[0][i];
	qsort(t[0], PAIRS, sizeof(double), cmp_double);
	qsort(t[1], PAIRS, sizeof(double), cmp_double);
	qsort(ratio, PAIRS, sizeof(double), cmp_double);
	double gb = 4e-9 * (double)(s->K * s->N);
	printf("%-10s %5lld %5lld %5lld | general %6.1f %6.1f | few-rows %6.1f %6.1f | %6.3f\n",
	       s->what, (long long)s->M, (long long)s->N, (long long)s->K, gb / t[0][PAIRS / 10],
	       gb / t[0][PAIRS / 2], gb / t[1][PAIRS / 10], gb / t[1][PAIRS / 2], ratio[PAIRS / 2]);
}

/* an A/B's line: the medians of n pairs' CPU seconds (ca a, cb b, as
 * GOP per CPU-second) and of their ratios b/a (rc CPU, rw wall) */
static void ab_report(const shape *s, int T, int n, double *ca, double *cb, double *rc, double *rw)
{
	qsort(ca, (size_t)n, sizeof(double), cmp_double);
	qsort(cb, (size_t)n, sizeof(double), cmp_double);
	qsort(rc, (size_t)n, sizeof(double), cmp_double);
	qsort(rw, (size_t)n, sizeof(double), cmp_double);
	double gf = 2e-9 * (double)(s->M * s->N * s->K);
	printf("%-10s %5lld %5lld %5lld %d | a %6.1f | b %6.1f | b/a cpu %6.3f wall %6.3f\n",
	       s->what, (long long)s->M, (long long)s->N, (long long)s->K, T,
	       gf / ca[n / 2], gf / cb[n / 2], rc[n / 2], rw[n / 2]);
}

static double proc_cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* GEMM_BENCH_VS: "panels" with the blocking in force (a) against another
 * (b: rt_sgemm_blocking), call by call in turn (which goes first
 * alternates) so both meet the same load; per variant the median process
 * CPU ms per call (the pool's spinning included) and the median ratio b/a
 * of neighbouring calls, CPU and wall */
static void ab_block(const shape *s, struct rt_pool *pool, int T, const float *A,
                     const float *Bp0, int ncopy, float *C, const int64_t vs[3],
                     const char *vsk)
{
	enum { PAIRS = 60 };
	static double cpu[2][PAIRS], rc[PAIRS], rw[PAIRS];
	size_t np = (size_t)rt_gemm_panel_floats(s->K, s->N);
	int r = 0;
	for (int i = -3; i < PAIRS; i++) {
		double tc[2], tw[2];
		for (int v = 0; v < 2; v++) {
			int b = (v ^ i) & 1;
			if (vsk)
				rt_sgemm_use(b ? vsk : NULL);
			else
				rt_sgemm_blocking(b ? vs[0] : 0, vs[1], vs[2]);
			double c0 = proc_cpu(), w0 = wall_now();
			panels_call(s, pool, A, Bp0 + (size_t)(r++ % ncopy) * np, C);
			tw[b] = wall_now() - w0;
			tc[b] = proc_cpu() - c0;
		}
		if (i < 0)
			continue;
		cpu[0][i] = tc[0], cpu[1][i] = tc[1];
		rc[i] = tc[1] / tc[0], rw[i] = tw[1] / tw[0];
	}
	rt_sgemm_blocking(0, 0, 0);
	rt_sgemm_use(NULL);
	ab_report(s, T, PAIRS, cpu[0], cpu[1], rc, rw);
}

/* ---- int8: rt_qgemm (KlnGemmQ's GEMM) ---- */

/* GOP (2 per multiply-add) per CPU-second of rt_qgemm on shape s with
 * flags (RT_Q8_W7: 7-bit weights), the best of 7 groups of >= 20 ms; the
 * weights cycle through ncopy copies (from DRAM unless ncopy is 1) */
static double run_q8(const shape *s, struct rt_pool *pool, const float *A, const int8_t *Wp0,
                     size_t np, int ncopy, const float *scale, const int32_t *wsum, float *C,
                     const rt_gemm_epi *epi, int flags)
{
	double ops = 2.0 * (double)(s->M * s->N * s->K), best = 0;
	int r = 0;
	rt_qgemm(pool, s->M, s->N, s->K, A, s->K, Wp0, scale, wsum, C, s->N, epi, flags);
	for (int g = 0; g < 7; g++) {
		double t0 = cpu_now(), t;
		int calls = 0;
		do {
			if (rt_qgemm(pool, s->M, s->N, s->K, A, s->K, Wp0 + (size_t)(r % ncopy) * np,
			             scale, wsum, C, s->N, epi, flags))
				return -1;
			r++;
			calls++;
		} while ((t = cpu_now() - t0) < 0.02);
		double gf = ops * calls / t * 1e-9;
		if (gf > best)
			best = gf;
	}
	return best;
}

/* GEMM_BENCH_VSQ=KERNEL (int8): the kernel chosen for this CPU (a, or the
 * one named on the command line) against KERNEL (b), call by call in turn
 * (which goes first alternates), 8-bit weights, as ab_block: median GOP
 * per CPU-second of each and the median ratio b/a of neighbouring calls */
static void ab_q8(const shape *s, struct rt_pool *pool, int T, const float *A, const int8_t *Wp0,
                  size_t np, int ncopy, const float *scale, const int32_t *wsum, float *C,
                  const rt_gemm_epi *epi, const char *ka, const char *kb)
{
	enum { PAIRS = 60 };
	static double cpu[2][PAIRS], rc[PAIRS], rw[PAIRS];
	int r = 0;
	for (int i = -3; i < PAIRS; i++) {
		double tc[2], tw[2];
		for (int v = 0; v < 2; v++) {
			int b = (v ^ i) & 1;
			bool noepi = !strcmp(kb, "noepi");
			rt_qgemm_use(b && !noepi ? kb : ka);
			double c0 = proc_cpu(), w0 = wall_now();
			rt_qgemm(pool, s->M, s->N, s->K, A, s->K, Wp0 + (size_t)(r++ % ncopy) * np, scale,
			         wsum, C, s->N, b && noepi ? NULL : epi, 0);
			tw[b] = wall_now() - w0;
			tc[b] = proc_cpu() - c0;
		}
		if (i < 0)
			continue;
		cpu[0][i] = tc[0], cpu[1][i] = tc[1];
		rc[i] = tc[1] / tc[0], rw[i] = tw[1] / tw[0];
	}
	rt_qgemm_use(ka);
	ab_report(s, T, PAIRS, cpu[0], cpu[1], rc, rw);
}

/* gemm_bench int8 [KERNEL]: 8-bit and 7-bit weights on the unbatched
 * shapes, 1 and 2 threads, in GOP per CPU-second (GEMM_BENCH_PEAK: the
 * int8 peak per CPU-second for a % column) */
static int int8_main(const char *kernel, bool cache, double peak)
{
	if (kernel && rt_qgemm_use(kernel)) {
		fprintf(stderr, "gemm_bench: int8 kernel %s not available\n", kernel);
		return 1;
	}
	const char *only = getenv("GEMM_BENCH_ONLY"), *ep = getenv("GEMM_BENCH_EPI");
	const char *vsq = getenv("GEMM_BENCH_VSQ");
	bool with_epi = ep && *ep && strcmp(ep, "0");
	if (vsq && strcmp(vsq, "noepi") && rt_qgemm_use(vsq)) {
		fprintf(stderr, "gemm_bench: int8 kernel %s not available\n", vsq);
		return 1;
	}
	rt_qgemm_use(kernel);
	printf("int8 kernels: %s (8-bit weights), %s (7-bit); W %s; %s; GOP per CPU-second\n",
	       rt_qgemm_kernel(0), rt_qgemm_kernel(RT_Q8_W7), cache ? "in cache" : "from DRAM",
	       with_epi ? "bias, GELU on up" : "no epilogue");
	printf("%-10s %5s %5s %5s | %7s %7s | %7s %7s\n", "shape", "M", "N", "K", "w8 t1", "w7 t1",
	       "w8 t2", "w7 t2");
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const shape *s = &shapes[i];
		if (s->batch > 1 || (only && !strstr(s->what, only)))
			continue;
		size_t na = (size_t)(s->M * s->K), np = (size_t)rt_q8_panel_bytes(s->K, s->N);
		int ncopy = cache ? 1 : (int)(((size_t)128 << 20) / np + 1);
		ncopy = ncopy > 40 ? 40 : ncopy;
		float *A = malloc(na * 4), *W = malloc((size_t)(s->K * s->N) * 4),
		      *C = malloc((size_t)(s->M * s->N) * 4), *scale = malloc((size_t)s->N * 8);
		int8_t *Wp = aligned_alloc(64, (np * (size_t)ncopy + 63) / 64 * 64);
		int32_t *wsum = malloc((size_t)s->N * 4);
		float *bias = malloc((size_t)s->N * 4);
		if (!A || !W || !C || !scale || !Wp || !wsum || !bias) {
			fprintf(stderr, "gemm_bench: out of memory\n");
			return 1;
		}
		for (size_t k = 0; k < na; k++)
			A[k] = (float)((k * 7919) % 1001) / 500.0f - 1.0f;
		for (size_t k = 0; k < (size_t)(s->K * s->N); k++)
			W[k] = (float)((k * 104729) % 2003) / 1000.0f - 1.0f;
		for (int64_t n = 0; n < s->N; n++)
			bias[n] = 0.01f * (float)(n % 13) - 0.06f;
		rt_gemm_epi epi = {bias, strstr(s->what, "up") ? 1 : 0};
		if (vsq) {
			rt_q8_quantize_weights_bits(W, s->K, s->N, 8, Wp, scale, wsum);
			for (int c = 1; c < ncopy; c++)
				memcpy(Wp + (size_t)c * np, Wp, np);
			for (int T = 1; T <= 2; T++) {
				struct rt_pool *pool = rt_pool_create(T);
				ab_q8(s, pool, T, A, Wp, np, ncopy, scale, wsum, C, with_epi ? &epi : NULL,
				      kernel, vsq);
				rt_pool_free(pool);
			}
			free(A), free(W), free(C), free(scale), free(Wp), free(wsum), free(bias);
			continue;
		}
		double g[4] = {0};
		for (int bits = 8; bits >= 7; bits--) {
			rt_q8_quantize_weights_bits(W, s->K, s->N, bits, Wp, scale, wsum);
			for (int c = 1; c < ncopy; c++)
				memcpy(Wp + (size_t)c * np, Wp, np);
			for (int T = 1; T <= 2; T++) {
				struct rt_pool *pool = rt_pool_create(T);
				g[(T - 1) * 2 + (8 - bits)] = run_q8(s, pool, A, Wp, np, ncopy, scale, wsum, C,
				                                     with_epi ? &epi : NULL,
				                                     bits == 7 ? RT_Q8_W7 : 0);
				rt_pool_free(pool);
			}
		}
		printf("%-10s %5lld %5lld %5lld |", s->what, (long long)s->M, (long long)s->N,
		       (long long)s->K);
		for (int c = 0; c < 4; c++) {
			if (c == 2)
				printf(" |");
			if (peak > 0)
				printf(" %6.0f%%", 100 * g[c] / peak);
			else
				printf(" %7.1f", g[c]);
		}
		printf("\n");
		free(A), free(W), free(C), free(scale), free(Wp), free(wsum), free(bias);
	}
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && !strcmp(argv[1], "int8")) {
		const char *ce = getenv("GEMM_BENCH_CACHE"), *pe = getenv("GEMM_BENCH_PEAK");
		return int8_main(argc > 2 ? argv[2] : NULL, ce && *ce && strcmp(ce, "0"),
		                 pe ? atof(pe) : 0);
	}
	if (argc > 1 && rt_sgemm_use(argv[1])) {
		fprintf(stderr, "gemm_bench: kernel %s not available\n", argv[1]);
		return 1;
	}
	const char *ce = getenv("GEMM_BENCH_CACHE"), *pe = getenv("GEMM_BENCH_PEAK");
	bool cache = ce && *ce && strcmp(ce, "0");
	double peak = pe ? atof(pe) : 0;
	const char *we = getenv("GEMM_BENCH_BW"), *ae = getenv("GEMM_BENCH_AB");
	const char *be = getenv("GEMM_BENCH_BLOCK"), *vse = getenv("GEMM_BENCH_VS");
	long long vk, vm, vn;
	const char *vsk = getenv("GEMM_BENCH_VSK");
	bool vs = vse && sscanf(vse, "%lld,%lld,%lld", &vk, &vm, &vn) == 3;
	if (vsk && *vsk && rt_sgemm_use(vsk) == 0) {
		rt_sgemm_use(NULL);
		vs = true;
		vse = vsk;
	} else {
		vsk = NULL;
	}
	const int64_t vsb[3] = { vs ? vk : 0, vs ? vm : 0, vs ? vn : 0 };
	long long bkc, bmc, bnc;
	if (be && sscanf(be, "%lld,%lld,%lld", &bkc, &bmc, &bnc) == 3)
		rt_sgemm_blocking(bkc, bmc, bnc);
	{
		int64_t k, m, n;
		rt_sgemm_blocking_get(&k, &m, &n);
		printf("blocking: kc %lld, mc %lld, nc %lld\n", (long long)k, (long long)m,
		       (long long)n);
	}
	bool bw = we && *we && strcmp(we, "0"), ab = ae && *ae && strcmp(ae, "0");
	if (bw)
		peak = 0;
	if (vs) {
		printf("kernel: %s; B %s; GFLOP per CPU-second (median) of a (blocking above) and b "
		       "(%s), median ratio b/a of neighbouring calls' CPU and wall time\n",
		       rt_sgemm_kernel(), cache ? "in cache" : "from DRAM", vse);
	} else if (ab) {
		printf("kernel: %s; B %s; 2 threads; wall GB/s of B (p10, median) with the general "
		       "split and the few-rows one; median time ratio few-rows/general\n",
		       rt_sgemm_kernel(), cache ? "in cache" : "from DRAM");
	} else {
		printf("kernel: %s; B %s; %s per CPU-second", rt_sgemm_kernel(),
		       cache ? "in cache" : "from DRAM", bw ? "GB of B" : "GFLOP");
		if (peak > 0)
			printf(" (%% of the fp32 peak %.1f per CPU-second)", peak);
		printf("\n%-10s %5s %5s %5s %3s | %7s %7s %7s | %7s %7s %7s\n", "shape", "M", "N",
		       "K", "x", "sgemm1", "panels1", "blas1", "sgemm2", "panels2", "blas2");
	}
	const char *only = getenv("GEMM_BENCH_ONLY"), *ee = getenv("GEMM_BENCH_EPI");
	const char *qe = getenv("GEMM_BENCH_QUICK"), *he = getenv("GEMM_BENCH_HUGE");
	bool huge = he && *he && strcmp(he, "0");
	bool quick = qe && *qe && strcmp(qe, "0");
	const char *bfe = getenv("GEMM_BENCH_BF16");
	bench_bf16 = bfe && *bfe && strcmp(bfe, "0");
	if (bench_bf16)
		printf("panels: bf16 weights (rt_sgemm_panels_bf16, kernel %s)\n",
		       rt_sgemm_bf16_kernel());
	static float bias[4096];
	static rt_gemm_epi epi = { bias, 0 };
	if (ee && *ee) {
		for (int k = 0; k < 4096; k++)
			bias[k] = (float)(k % 11) * 0.01f - 0.05f;
		epi.act = !strcmp(ee, "gelu") ? 1 : 0;
		bench_epi = &epi;
		printf("panels with epilogue: bias%s\n", epi.act ? " + erf GELU" : "");
	}
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const shape *s = &shapes[i];
		if (only && *only && !strstr(s->what, only))
			continue;
		size_t na = (size_t)(s->M * s->K * s->batch), nb = (size_t)(s->K * s->N * s->batch),
		       nc = (size_t)(s->M * s->N * s->batch);
		int ncopy = cache || s->batch > 1 ? 1 : (int)(((size_t)128 << 20) / (nb * 4) + 1);
		if (ncopy > 15)
			ncopy = 15;
		bool panels = s->batch == 1 && !s->ta && !s->tb;
		size_t np = (size_t)rt_gemm_panel_floats(s->K, s->N);
		float *A = malloc(na * 4), *B = malloc(nb * 4 * (size_t)ncopy), *C = malloc(nc * 4);
		float *Bp = NULL;
		if (panels && huge) {      /* 2 MB aligned, transparent huge pages asked for */
			size_t hb = (np * 4 * (size_t)ncopy + (2u << 20) - 1) / (2u << 20) * (2u << 20);
			if (!posix_memalign((void **)&Bp, (size_t)2 << 20, hb))
				madvise(Bp, hb, MADV_HUGEPAGE);
		} else if (panels) {
			Bp = aligned_alloc(64, np * 4 * (size_t)ncopy);
		}
		if (!A || !B || !C || (panels && !Bp)) {
			fprintf(stderr, "gemm_bench: out of memory\n");
			return 1;
		}
		for (size_t k = 0; k < na; k++) A[k] = (float)(k % 7) * 0.1f;
		for (size_t k = 0; k < nb * (size_t)ncopy; k++) B[k] = (float)(k % 5) * 0.1f;
		for (int c = 0; panels && c < ncopy; c++)
			if (bench_bf16)     /* fewer bytes than the f32 panels: same stride */
				rt_gemm_pack_panels_bf16(B + (size_t)c * nb, s->K, s->N,
				                         (uint16_t *)(Bp + (size_t)c * np));
			else
				rt_gemm_pack_panels(B + (size_t)c * nb, s->K, s->N, Bp + (size_t)c * np);
		memset(C, 0, nc * 4);
		if (vs) {
			for (int T = 1; panels && T <= 2; T++) {
				struct rt_pool *pool = rt_pool_create(T);
				ab_block(s, pool, T, A, Bp, ncopy, C, vsb, vsk);
				rt_pool_free(pool);
			}
			free(A); free(B); free(C); free(Bp);
			continue;
		}
		if (ab) {
			if (panels && s->M <= 48) {
				struct rt_pool *pool = rt_pool_create(2);
				ab_split(s, pool, A, Bp, ncopy, C);
				rt_pool_free(pool);
			}
			free(A); free(B); free(C); free(Bp);
			continue;
		}
		double g[6] = { 0 };
		for (int T = 1; T <= 2; T++) {
			struct rt_pool *pool = rt_pool_create(T);
			for (int how = KILN; how <= BLAS; how++)
				if ((how != PANELS || panels) && (!quick || how == PANELS))
					g[(T - 1) * 3 + how] = run(s, pool, T, how, A, B, Bp, ncopy, C);
			rt_pool_free(pool);
		}
		printf("%-10s %5lld %5lld %5lld %3lld |", s->what, (long long)s->M, (long long)s->N,
		       (long long)s->K, (long long)s->batch);
		for (int c = 0; c < 6; c++) {
			if (c == 3)
				printf(" |");
			if (!g[c])
				printf(" %7s", "-");
			else if (bw)      /* GFLOP -> GB of B: 4 bytes per 2 M flop */
				printf(" %7.2f", g[c] * 2.0 / (double)s->M);
			else if (peak > 0)
				printf(" %6.0f%%", 100 * g[c] / peak);
			else
				printf(" %7.1f", g[c]);
		}
		printf("\n");
		free(A); free(B); free(C); free(Bp);
	}
	return 0;
}
