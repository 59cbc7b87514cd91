/* peak.c: this machine's arithmetic peaks and read bandwidth, measured with
 * assembly loops (loops written with intrinsics spill and under-measure).
 *
 *   kiln_peak [--seconds S] [--threads N]   (defaults: 1 s each, all online CPUs)
 *
 * Each loop is independent accumulator chains of one instruction on
 * registers only (no loads), enough chains to cover its latency:
 *   fp32   vfmadd231ps: 24 zmm chains (AVX-512F) else 12 ymm (AVX2+FMA);
 *          2 flops per lane
 *   bf16   vdpbf16ps zmm, 24 chains (only with AVX512_BF16); 4 flops per lane
 *   int8   vpdpbusd: zmm, 24 chains (AVX512_VNNI), else ymm {vex} (AVX-VNNI),
 *          else AVX2's exact widening form that kiln's int8 GEMM uses
 *          (vpmaddwd on i16 + vpaddd, 6 chains): 2 ops per multiply-add
 *   int8w7 the form 7-bit weights run: vpdpbusd as int8 with VNNI, else
 *          AVX2's vpmaddubsw + vpmaddwd by ones + vpaddd (kiln's "avx2-w7"
 *          kernel, and ONNX Runtime's AVX2 u8 x s8 GEMM), 6 chains
 *   read bandwidth: a 256 MiB buffer summed (vectorized C: memory bound).
 * Each runs on 1 thread and on N threads at once (one loop per thread; the
 * total is N times the per-thread work over the wall time).  CPU features
 * are detected at run time; a peak the CPU lacks prints as null.  The
 * output: one human line per measure, then one JSON line (bench/bench.sh
 * reads it).  It measures, it asserts nothing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <stdbool.h>

#include "gemm.h"

#if !defined(__x86_64__)
int main(void)
{
	puts("{\"error\": \"kiln_peak measures x86-64 only\"}");
	return 0;
}
#else

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- the loops: each runs `it` iterations and returns ops done ---- */

#define R4(m, a, b, c, d) m(a) m(b) m(c) m(d)

/* AVX2 FMA: 12 ymm accumulators, x2 unrolled: 24 FMAs per iteration */
__attribute__((target("avx2,fma"))) static double loop_fma_ymm(uint64_t it)
{
#define F(r) "vfmadd231ps %%ymm12, %%ymm13, %%ymm" #r "\n\t"
	__asm__ volatile(
		"vxorps %%ymm12, %%ymm12, %%ymm12\n\tvxorps %%ymm13, %%ymm13, %%ymm13\n\t"
		R4(F, 0, 1, 2, 3) R4(F, 4, 5, 6, 7) R4(F, 8, 9, 10, 11)
		"1:\n\t"
		R4(F, 0, 1, 2, 3) R4(F, 4, 5, 6, 7) R4(F, 8, 9, 10, 11)
		R4(F, 0, 1, 2, 3) R4(F, 4, 5, 6, 7) R4(F, 8, 9, 10, 11)
		"dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
		: "+r"(it) :
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "cc");
#undef F
	return 0;
}

#define Z24(m) R4(m, 0, 1, 2, 3) R4(m, 4, 5, 6, 7) R4(m, 8, 9, 10, 11) \
	R4(m, 12, 13, 14, 15) R4(m, 16, 17, 18, 19) R4(m, 20, 21, 22, 23)
#define ZCLOB "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", \
	"xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", \
	"xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm30", "xmm31", "cc"
#define ZINIT "vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n\t"

/* AVX-512: 24 zmm accumulators, 24 instructions per iteration */
__attribute__((target("avx512f"))) static double loop_fma_zmm(uint64_t it)
{
#define F(r) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"
	__asm__ volatile(ZINIT Z24(F) "1:\n\t" Z24(F) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
	                 : "+r"(it) : : ZCLOB);
#undef F
	return 0;
}

__attribute__((target("avx512f,avx512bf16"))) static double loop_bf16_zmm(uint64_t it)
{
#define F(r) "vdpbf16ps %%zmm30, %%zmm31, %%zmm" #r "\n\t"
	__asm__ volatile(ZINIT Z24(F) "1:\n\t" Z24(F) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
	                 : "+r"(it) : : ZCLOB);
#undef F
	return 0;
}

__attribute__((target("avx512f,avx512vnni"))) static double loop_vnni_zmm(uint64_t it)
{
#define F(r) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #r "\n\t"
	__asm__ volatile(ZINIT Z24(F) "1:\n\t" Z24(F) "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
	                 : "+r"(it) : : ZCLOB);
#undef F
	return 0;
}

/* AVX-VNNI (VEX vpdpbusd on ymm): 12 chains, x2 unrolled */
__attribute__((target("avx2"))) static double loop_vnni_ymm(uint64_t it)
{
#define F(r) "%{vex%} vpdpbusd %%ymm12, %%ymm13, %%ymm" #r "\n\t"
	__asm__ volatile(
		"vpxor %%ymm12, %%ymm12, %%ymm12\n\tvpxor %%ymm13, %%ymm13, %%ymm13\n\t"
		"1:\n\t"
		R4(F, 0, 1, 2, 3) R4(F, 4, 5, 6, 7) R4(F, 8, 9, 10, 11)
		R4(F, 0, 1, 2, 3) R4(F, 4, 5, 6, 7) R4(F, 8, 9, 10, 11)
		"dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
		: "+r"(it) :
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "cc");
#undef F
	return 0;
}

/* AVX2 exact int8 (kiln's AVX2 int8 GEMM): i16 pairs multiplied and summed
 * to i32 by vpmaddwd, added to 6 accumulators by vpaddd; x2 unrolled */
__attribute__((target("avx2"))) static double loop_madd_ymm(uint64_t it)
{
#define F(r) "vpmaddwd %%ymm12, %%ymm13, %%ymm" #r "\n\t"
#define A(r) "vpaddd %%ymm" #r ", %%ymm6, %%ymm6\n\t"
#define G(a, t) "vpmaddwd %%ymm12, %%ymm13, %%ymm" #t "\n\tvpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define G6 G(0, 6) G(1, 7) G(2, 8) G(3, 9) G(4, 10) G(5, 11)
	__asm__ volatile(
		"vpxor %%ymm12, %%ymm12, %%ymm12\n\tvpxor %%ymm13, %%ymm13, %%ymm13\n\t"
		"1:\n\t" G6 G6 "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
		: "+r"(it) :
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "cc");
#undef F
#undef A
#undef G
#undef G6
	return 0;
}

/* AVX2 u8 x s8 (kiln's 7-bit kernel "avx2-w7", and what ONNX Runtime's
 * MLAS runs on AVX2 without VNNI): vpmaddubsw multiplies u8 by s8 and sums
 * pairs to i16 (saturating), vpmaddwd by ones sums those pairs to i32,
 * vpaddd accumulates: 32 multiply-adds per three instructions; 6 chains,
 * x2 unrolled.  ymm12/13 the operands, ymm14 the ones. */
__attribute__((target("avx2"))) static double loop_maddubs_ymm(uint64_t it)
{
#define G(a, t) "vpmaddubsw %%ymm13, %%ymm12, %%ymm" #t "\n\t" \
	"vpmaddwd %%ymm14, %%ymm" #t ", %%ymm" #t "\n\t" \
	"vpaddd %%ymm" #t ", %%ymm" #a ", %%ymm" #a "\n\t"
#define G6 G(0, 6) G(1, 7) G(2, 8) G(3, 9) G(4, 10) G(5, 11)
	__asm__ volatile(
		"vpxor %%ymm12, %%ymm12, %%ymm12\n\tvpxor %%ymm13, %%ymm13, %%ymm13\n\t"
		"vpxor %%ymm14, %%ymm14, %%ymm14\n\t"
		"1:\n\t" G6 G6 "dec %0\n\tjnz 1b\n\tvzeroupper\n\t"
		: "+r"(it) :
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "cc");
#undef G
#undef G6
	return 0;
}

typedef struct loop {
	const char *key, *what, *unit;
	double (*fn)(uint64_t);
	double ops_per_it;
} loop;

/* ---- read bandwidth ---- */

static uint32_t *bw_buf;
static size_t bw_n;          /* words */

/* bytes read by `it` passes over [b, e) (an integer sum, which the
 * compiler vectorizes: memory bound, not add bound) */
__attribute__((optimize("O3"))) static double loop_bw_range(size_t b, size_t e, uint64_t it,
                                                             uint32_t *sink)
{
	uint32_t s = 0;
	for (uint64_t r = 0; r < it; r++)
		for (size_t i = b; i < e; i++)
			s += bw_buf[i];
	*sink = s;
	return (double)(e - b) * sizeof(uint32_t) * (double)it;
}

/* ---- threads ---- */

typedef struct job {
	const loop *l;       /* compute loop, or NULL: bandwidth */
	uint64_t it;
	size_t b, e;         /* bandwidth: this thread's range */
	pthread_barrier_t *bar;
	double ops;
	double cpu;          /* this thread's CPU seconds in the loop */
	uint32_t sink;
} job;

static double cpu_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void *run_job(void *p)
{
	job *j = p;
	pthread_barrier_wait(j->bar);
	double c0 = cpu_now();
	if (j->l) {
		j->l->fn(j->it);
		j->ops = j->l->ops_per_it * (double)j->it;
	} else {
		j->ops = loop_bw_range(j->b, j->e, j->it, &j->sink);
	}
	j->cpu = cpu_now() - c0;
	pthread_barrier_wait(j->bar);
	return NULL;
}

/* ops per second of l (NULL: bandwidth, bytes/s) on n threads for it
 * iterations; *share: the CPU time the threads got over n x the wall time
 * (below 1 when other processes share the cores) */
static double run_threads(const loop *l, int n, uint64_t it, double *share)
{
	pthread_t th[256];
	job jobs[256];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n + 1);
	size_t per = (bw_n / (size_t)n) & ~(size_t)15;
	for (int i = 0; i < n; i++) {
		jobs[i] = (job){l, it, per * (size_t)i, per * (size_t)(i + 1), &bar, 0, 0, 0};
		pthread_create(&th[i], NULL, run_job, &jobs[i]);
	}
	pthread_barrier_wait(&bar);
	double t0 = now();
	pthread_barrier_wait(&bar);
	double t = now() - t0;
	double ops = 0, cpu = 0;
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		ops += jobs[i].ops;
		cpu += jobs[i].cpu;
	}
	*share = cpu / ((double)n * t);
	pthread_barrier_destroy(&bar);
	return ops / t;
}

/* iterations for about `secs` seconds on one thread, from a short trial */
static uint64_t calibrate(const loop *l, double secs)
{
	uint64_t it = l ? 1u << 16 : 1;
	for (;;) {
		double t0 = now();
		if (l)
			l->fn(it);
		else {
			uint32_t s;
			loop_bw_range(0, bw_n, it, &s);
		}
		double t = now() - t0;
		if (t > 0.05 || it > (1ull << 40))
			return (uint64_t)((double)it * secs / (t > 0 ? t : 1e-9)) + 1;
		it *= 4;
	}
}

int main(int argc, char **argv)
{
	double secs = 1.0;
	long nthr = sysconf(_SC_NPROCESSORS_ONLN);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			secs = atof(argv[++i]);
		else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
			nthr = atol(argv[++i]);
		else {
			fprintf(stderr, "usage: kiln_peak [--seconds S] [--threads N]\n");
			return 2;
		}
	}
	if (!(secs > 0 && secs <= 60) || nthr < 1 || nthr > 256) {
		fprintf(stderr, "kiln_peak: --seconds 0 to 60, --threads 1 to 256\n");
		return 2;
	}
	__builtin_cpu_init();
	bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	bool z = __builtin_cpu_supports("avx512f");
	bool bf16 = z && __builtin_cpu_supports("avx512bf16");
	bool vnni = z && __builtin_cpu_supports("avx512vnni");
	bool avxvnni = avx2 && __builtin_cpu_supports("avxvnni");
	loop fp32 = z ? (loop){"fp32", "fp32 vfmadd231ps zmm x24", "GFLOP/s", loop_fma_zmm, 24 * 32}
	              : (loop){"fp32", "fp32 vfmadd231ps ymm x12", "GFLOP/s", loop_fma_ymm, 24 * 16};
	loop lbf16 = {"bf16", "bf16 vdpbf16ps zmm x24", "GFLOP/s", loop_bf16_zmm, 24 * 64};
	loop int8 = vnni      ? (loop){"int8", "int8 vpdpbusd zmm x24", "GOP/s", loop_vnni_zmm, 24 * 128}
	            : avxvnni ? (loop){"int8", "int8 {vex} vpdpbusd ymm x12", "GOP/s", loop_vnni_ymm, 24 * 64}
	                      : (loop){"int8", "int8 AVX2 exact vpmaddwd+vpaddd ymm x6", "GOP/s",
	                               loop_madd_ymm, 12 * 32};
	/* 7-bit weights: VNNI runs them as 8-bit ones; AVX2 on vpmaddubsw */
	loop int8w7 = vnni || avxvnni ? int8
	              : (loop){"int8w7", "int8w7 AVX2 vpmaddubsw+vpmaddwd ymm x6", "GOP/s",
	                       loop_maddubs_ymm, 12 * 64};
	int8w7.key = "int8w7";
	if (vnni || avxvnni) /* the same loop, labelled as the int8w7 rows' peak */
		int8w7.what = vnni ? "int8w7 = int8 vpdpbusd zmm x24" : "int8w7 = int8 {vex} vpdpbusd ymm x12";
	enum { NL = 4 };
	const loop *ls[NL] = {avx2 || z ? &fp32 : NULL, bf16 ? &lbf16 : NULL, &int8, &int8w7};
	if (!avx2 && !z)
		ls[2] = ls[3] = NULL;
	char json[4096];
	int o = snprintf(json, sizeof json, "{\"threads\": %ld", nthr);
	const char *keys[NL] = {"fp32", "bf16", "int8", "int8w7"};
	for (int k = 0; k < NL; k++) {
		if (!ls[k]) {
			printf("%-40s not on this CPU\n", keys[k]);
			o += snprintf(json + o, sizeof json - (size_t)o,
			              ", \"%s_1\": null, \"%s_all\": null, \"%s_what\": null", keys[k], keys[k],
			              keys[k]);
			continue;
		}
		uint64_t it = calibrate(ls[k], secs);
		double s1, sa;
		double one = run_threads(ls[k], 1, it, &s1) / 1e9;
		double all = run_threads(ls[k], (int)nthr, it, &sa) / 1e9;
		/* per CPU-second: the core's rate while the loop had it */
		double core = s1 > 0 ? one / s1 : 0;
		printf("%-40s 1 thread %7.1f %s (cpu share %3.0f%%: %.1f per CPU-second), "
		       "%ld threads %7.1f (%3.0f%%)\n",
		       ls[k]->what, one, ls[k]->unit, 100 * s1, core, nthr, all, 100 * sa);
		o += snprintf(json + o, sizeof json - (size_t)o,
		              ", \"%s_1\": %.1f, \"%s_all\": %.1f, \"%s_core\": %.1f, "
		              "\"%s_share_all\": %.2f, \"%s_what\": \"%s\"",
		              keys[k], one, keys[k], all, keys[k], core, keys[k], sa, keys[k], ls[k]->what);
	}
	bw_n = (256u << 20) / sizeof(uint32_t);
	bw_buf = aligned_alloc(64, bw_n * sizeof(uint32_t));
	if (bw_buf) {
		for (size_t i = 0; i < bw_n; i++)
			bw_buf[i] = (uint32_t)i;
		uint64_t it = calibrate(NULL, secs);
		double s1, sa;
		double one = run_threads(NULL, 1, it, &s1) / 1e9;
		double all = run_threads(NULL, (int)nthr, it, &sa) / 1e9;
		printf("%-40s 1 thread %8.1f GB/s,    %ld threads %8.1f GB/s\n", "read bandwidth (256 MiB sum)",
		       one, nthr, all);
		o += snprintf(json + o, sizeof json - (size_t)o, ", \"bw_1\": %.1f, \"bw_all\": %.1f", one,
		              all);
		free(bw_buf);
	}
	/* the kernel kiln's runtime runs bf16 weights on here (vdpbf16ps only
	 * where it measured faster than f32: gemm.c) */
	printf("%-40s %s\n", "bf16 GEMM kernel (the runtime's choice)", rt_sgemm_bf16_kernel());
	o += snprintf(json + o, sizeof json - (size_t)o, ", \"bf16_kernel\": \"%s\"",
	              rt_sgemm_bf16_kernel());
	snprintf(json + o, sizeof json - (size_t)o, "}");
	puts(json);
	return 0;
}
#endif
