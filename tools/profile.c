/* profile.c: kiln run/bench --profile=PATH: the trace written by the
 * runtime (kiln_context_profile_write), and a table of where the time went
 * (by op type, then the slowest nodes), with GFLOP/s and the share of this
 * machine's fp32 FMA peak for GEMMs and attention.
 *
 * The peak is measured here, briefly: a loop of independent FMAs (AVX-512
 * where the CPU has it, else AVX2+FMA) on as many threads as the context
 * has.  Other CPUs and architectures: no peak, the column shows "-". */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "kiln.h"

/* ---- the FMA peak ---- */

/* iters x 10 FMAs of 8 (AVX2) or 16 (AVX-512) floats. */
#if defined(__x86_64__)
static void fma_avx2(long iters)
{
	__asm__ volatile(
		"vxorps %%ymm0, %%ymm0, %%ymm0\n\t" "vxorps %%ymm1, %%ymm1, %%ymm1\n\t"
		"vxorps %%ymm2, %%ymm2, %%ymm2\n\t" "vxorps %%ymm3, %%ymm3, %%ymm3\n\t"
		"vxorps %%ymm4, %%ymm4, %%ymm4\n\t" "vxorps %%ymm5, %%ymm5, %%ymm5\n\t"
		"vxorps %%ymm6, %%ymm6, %%ymm6\n\t" "vxorps %%ymm7, %%ymm7, %%ymm7\n\t"
		"vxorps %%ymm8, %%ymm8, %%ymm8\n\t" "vxorps %%ymm9, %%ymm9, %%ymm9\n\t"
		"vxorps %%ymm10, %%ymm10, %%ymm10\n\t" "vxorps %%ymm11, %%ymm11, %%ymm11\n\t"
		"1:\n\t"
		"vfmadd231ps %%ymm10, %%ymm11, %%ymm0\n\t" "vfmadd231ps %%ymm10, %%ymm11, %%ymm1\n\t"
		"vfmadd231ps %%ymm10, %%ymm11, %%ymm2\n\t" "vfmadd231ps %%ymm10, %%ymm11, %%ymm3\n\t"
		"vfmadd231ps %%ymm10, %%ymm11, %%ymm4\n\t" "vfmadd231ps %%ymm10, %%ymm11, %%ymm5\n\t"
		"vfmadd231ps %%ymm10, %%ymm11, %%ymm6\n\t" "vfmadd231ps %%ymm10, %%ymm11, %%ymm7\n\t"
		"vfmadd231ps %%ymm10, %%ymm11, %%ymm8\n\t" "vfmadd231ps %%ymm10, %%ymm11, %%ymm9\n\t"
		"dec %0\n\t"
		"jnz 1b\n\t"
		"vzeroupper\n\t"
		: "+r"(iters)
		:
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "cc");
}

static void fma_avx512(long iters)
{
	__asm__ volatile(
		"vxorps %%zmm0, %%zmm0, %%zmm0\n\t" "vxorps %%zmm1, %%zmm1, %%zmm1\n\t"
		"vxorps %%zmm2, %%zmm2, %%zmm2\n\t" "vxorps %%zmm3, %%zmm3, %%zmm3\n\t"
		"vxorps %%zmm4, %%zmm4, %%zmm4\n\t" "vxorps %%zmm5, %%zmm5, %%zmm5\n\t"
		"vxorps %%zmm6, %%zmm6, %%zmm6\n\t" "vxorps %%zmm7, %%zmm7, %%zmm7\n\t"
		"vxorps %%zmm8, %%zmm8, %%zmm8\n\t" "vxorps %%zmm9, %%zmm9, %%zmm9\n\t"
		"vxorps %%zmm10, %%zmm10, %%zmm10\n\t" "vxorps %%zmm11, %%zmm11, %%zmm11\n\t"
		"1:\n\t"
		"vfmadd231ps %%zmm10, %%zmm11, %%zmm0\n\t" "vfmadd231ps %%zmm10, %%zmm11, %%zmm1\n\t"
		"vfmadd231ps %%zmm10, %%zmm11, %%zmm2\n\t" "vfmadd231ps %%zmm10, %%zmm11, %%zmm3\n\t"
		"vfmadd231ps %%zmm10, %%zmm11, %%zmm4\n\t" "vfmadd231ps %%zmm10, %%zmm11, %%zmm5\n\t"
		"vfmadd231ps %%zmm10, %%zmm11, %%zmm6\n\t" "vfmadd231ps %%zmm10, %%zmm11, %%zmm7\n\t"
		"vfmadd231ps %%zmm10, %%zmm11, %%zmm8\n\t" "vfmadd231ps %%zmm10, %%zmm11, %%zmm9\n\t"
		"dec %0\n\t"
		"jnz 1b\n\t"
		"vzeroupper\n\t"
		: "+r"(iters)
		:
		: "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "cc");
}
#endif

typedef struct PeakJob {
	void (*loop)(long);
	long iters;
} PeakJob;

static void *peak_thread(void *arg)
{
	PeakJob *j = arg;
	j->loop(j->iters);
	return NULL;
}

/* FLOP/s of `threads` threads running the loop at once for about 20 ms. */
static double peak_once(void (*loop)(long), int lanes, int threads)
{
	long iters = 1 << 16;
	double t0 = cli_now_ms();
	loop(iters);                           /* calibrate: about 20 ms per thread */
	double ms = cli_now_ms() - t0;
	iters = ms > 0 ? (long)((double)iters * 20.0 / ms) : iters * 64;
	if (iters < 1024)
		iters = 1024;
	pthread_t th[256];
	PeakJob job = {loop, iters};
	int started = 0;
	t0 = cli_now_ms();
	for (int i = 1; i < threads && i < 256; i++)
		started += pthread_create(&th[started], NULL, peak_thread, &job) == 0;
	loop(iters);
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	ms = cli_now_ms() - t0;
	return ms > 0 ? (double)iters * 10 * lanes * 2 * (started + 1) / (ms * 1e-3) : 0;
}

double cli_fma_peak_gflops(int threads, const char **isa)
{
	*isa = NULL;
#if defined(__x86_64__)
	__builtin_cpu_init();
	void (*loop)(long) = NULL;
	int lanes = 0;
	if (__builtin_cpu_supports("avx512f"))
		loop = fma_avx512, lanes = 16, *isa = "AVX-512";
	else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
		loop = fma_avx2, lanes = 8, *isa = "AVX2+FMA";
	if (!loop)
		return 0;
	double best = 0;
	for (int k = 0; k < 3; k++) {      /* the best of three: other load only lowers it */
		double r = peak_once(loop, lanes, threads);
		best = r > best ? r : best;
	}
	return best / 1e9;
#else
	(void)threads;
	return 0;
#endif
}

/* ---- the table ---- */

typedef struct Row {
	const char *key;      /* op type, or node name */
	const char *op;
	const char *const *fused;   /* the ONNX nodes a fused op absorbed */
	int nfused;
	long calls;
	double ns, flops;
} Row;

static Row *row_for(Row **rows, int *n, int *cap, const char *key, const char *op)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp((*rows)[i].key, key) && !strcmp((*rows)[i].op, op))
			return &(*rows)[i];
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		Row *r = realloc(*rows, (size_t)*cap * sizeof *r);
		if (!r)
			return NULL;
		*rows = r;
	}
	Row *r = &(*rows)[(*n)++];
	*r = (Row){key, op, NULL, 0, 0, 0, 0};
	return r;
}

static int cmp_row(const void *a, const void *b)
{
	double x = ((const Row *)a)->ns, y = ((const Row *)b)->ns;
	return x < y ? 1 : x > y ? -1 : 0;
}

/* "  12.3   45.6%" or "-  -" when no flops */
static void print_rate(const Row *r, double peak)
{
	if (r->flops <= 0 || r->ns <= 0) {
		printf("  %9s  %7s", "-", "-");
		return;
	}
	double gf = r->flops / r->ns;        /* flop per ns = GFLOP/s */
	if (peak > 0)
		printf("  %9.1f  %6.1f%%", gf, 100 * gf / peak);
	else
		printf("  %9.1f  %7s", gf, "-");
}

static void print_name(const char *s, int width)
{
	char buf[512];
	diag_escape(buf, sizeof buf, s ? s : "?");
	printf("%-*s", width, buf);
}

static void print_table(Row *rows, int n, double total, int runs, double peak, bool nodes)
{
	qsort(rows, (size_t)n, sizeof *rows, cmp_row);
	if (nodes)
		printf("\nslowest nodes\n%10s %8s  %9s  %7s  %-18s %s\n", "ms/run", "share", "GFLOP/s",
		       "% peak", "op", "node");
	else
		printf("\n%-24s %8s %10s %10s %8s  %9s  %7s\n", "op", "calls", "total ms", "ms/run",
		       "share", "GFLOP/s", "% peak");
	for (int i = 0; i < n && (!nodes || i < 10); i++) {
		const Row *r = &rows[i];
		if (nodes) {   /* names last: they can be long */
			printf("%10.3f %7.1f%%", r->ns / 1e6 / runs, total > 0 ? 100 * r->ns / total : 0);
			print_rate(r, peak);
			printf("  ");
			print_name(r->op, 18);
			putchar(' ');
			print_name(r->key, 0);
		} else {
			print_name(r->key, 24);
			printf(" %8ld %10.3f %10.3f %7.1f%%", r->calls, r->ns / 1e6, r->ns / 1e6 / runs,
			       total > 0 ? 100 * r->ns / total : 0);
			print_rate(r, peak);
		}
		putchar('\n');
		for (int k = 0; nodes && k < r->nfused; k++) {
			char buf[512];
			diag_escape(buf, sizeof buf, r->fused[k] ? r->fused[k] : "?");
			printf("%s%s%s", k ? ", " : "            fused from: ", buf,
			       k + 1 == r->nfused ? "\n" : "");
		}
	}
}

int cli_profile_check_path(const char *path)
{
	/* O_NONBLOCK: a FIFO must not block; the runtime refuses it later */
	int fd = open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		cli_error("%s: cannot write the profile: %s", path,
		          fd < 0 ? strerror(errno) : "not a regular file");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	close(fd);
	return 0;
}

int cli_profile_report(kiln_context *c, const char *so, const char *path, int threads)
{
	if (kiln_context_profile_stop(c)) {
		cli_error("%s: %s", so, kiln_last_error(c));
		return -1;
	}
	if (kiln_context_profile_write(c, path)) {
		cli_error("%s", kiln_last_error(c));   /* names the path */
		return -1;
	}
	size_t n = kiln_context_profile_count(c);
	Row *ops = NULL, *nodes = NULL;
	int nops = 0, capops = 0, nnodes = 0, capnodes = 0, runs = 0;
	double total = 0, run_ns = 0, flops = 0;
	size_t written = 0;
	for (size_t i = 0; i < n; i++) {
		kiln_profile_event e;
		if (kiln_context_profile_event(c, i, &e))
			continue;
		written += e.kind != KILN_PROFILE_RUN;
		if (e.kind == KILN_PROFILE_RUN) {
			runs++;
			run_ns += (double)e.dur_ns;
		}
		if (e.kind != KILN_PROFILE_NODE)
			continue;
		Row *o = row_for(&ops, &nops, &capops, e.op, e.op);
		Row *r = row_for(&nodes, &nnodes, &capnodes, e.name, e.op);
		if (!o || !r) {
			cli_error("profile: out of memory");
			free(ops);
			free(nodes);
			return -1;
		}
		o->calls++, r->calls++;
		o->ns += (double)e.dur_ns, r->ns += (double)e.dur_ns;
		o->flops += e.flops, r->flops += e.flops;
		r->fused = e.fused_from;
		r->nfused = e.nfused;
		total += (double)e.dur_ns;
		flops += e.flops;
	}
	runs = runs ? runs : 1;
	const char *isa = NULL;
	double peak = flops > 0 ? cli_fma_peak_gflops(threads, &isa) : 0;
	printf("profile: %s (%zu events), %d run%s of %.3f ms on average, ops %.1f%% of it\n", path,
	       written, runs, runs == 1 ? "" : "s", run_ns / 1e6 / runs,
	       run_ns > 0 ? 100 * total / run_ns : 0);
	if (peak > 0)
		printf("peak: %.1f GFLOP/s (fp32 %s FMAs on %d thread%s, measured now)\n", peak, isa,
		       threads, threads == 1 ? "" : "s");
	print_table(ops, nops, total, runs, peak, false);
	print_table(nodes, nnodes, total, runs, peak, true);
	free(ops);
	free(nodes);
	return 0;
}
