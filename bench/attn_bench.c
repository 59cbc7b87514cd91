/* attn_bench.c: one KlnAttention (runtime/kernels_fused.c) in isolation on
 * BERT-base's and LXMERT-base's shapes, at 1 and 2 threads.  Built and run
 * by bench/attn_bench.sh; not part of the test suite.
 *
 *   attn_bench [PATH]        PATH: 0 scalar, 1 AVX-512 (or NEON), 2 AVX2
 *                            (rt_fused_simd_use); default the CPU's best
 *   ATTN_BENCH_PEAK=G        this machine's fp32 FMA peak in GFLOP per
 *                            CPU-second (kiln_peak's fp32_core): a % column
 *   ATTN_BENCH_ONLY=TEXT     only the shapes whose name holds TEXT
 *   ATTN_BENCH_BF16=1        fpmath 1: the products on bf16 operands (kiln
 *                            compile --fpmath=bf16; vdpbf16ps where the CPU
 *                            has AVX512_BF16); ATTN_BENCH_PEAK is then the
 *                            bf16 peak (kiln_peak's bf16_core)
 *   ATTN_BENCH_QKV=FILE      Q/K/V of the self-attention shapes read from FILE
 *                            (raw f32 [B, S, 3*H*D], e.g. a model's QKV GEMM
 *                            output dumped from a debugger) where its size
 *                            fits, else the synthetic values
 *   ATTN_BENCH_EVICT=MB      before every call (untimed, but counted in the
 *                            CPU-second figure) write MB MiB of another
 *                            buffer: Q/K/V leave L2 (and L3 with MB past
 *                            its size), as after the model's QKV GEMM
 *   ATTN_BENCH_GEMM=1        before every call (untimed) an fp32 GEMM of
 *                            BERT-base's FFN size ([128, 768] x [768, 3072],
 *                            rt_sgemm, 1 thread), as the model's other ops
 *                            run between its attention nodes
 *
 * Q, K and V are one packed [B, S, 3*H*D] tensor as the fused BERT graph
 * passes them (self-attention), or Q [B, Sq, H*D] and a packed K/V [B, Sk,
 * 2*H*D] (LXMERT's cross-attention).  FLOPs are counted as the profiler
 * counts them: 2*B*H*Sq*Sk*(D+Dv).  The machine is shared, so the figure is
 * GFLOP per CPU-second of this process (CLOCK_PROCESS_CPUTIME_ID: user + system time of
 * all its threads, the pool's spinning included), the best of 7 groups of
 * calls; in parentheses the GFLOP/s of the fastest single call (wall
 * clock), the rate when nothing else took the core during the call, and
 * GFLOP per wall-clock second over all calls: what `kiln bench --profile`
 * reports per op (its times are CLOCK_MONOTONIC), so on a loaded machine it
 * counts the time other processes held the core (issue #15: BERT-base's
 * attention nodes' fastest calls run at this bench's fastest rate, the
 * profile's lower figure is that wall-clock count). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt.h"
#include "gemm.h"
#include "rt_internal.h"
#include "vmath.h"

RT_KERNEL(KlnAttention);

/* seconds on clock id: CLOCK_MONOTONIC (wall), CLOCK_PROCESS_CPUTIME_ID
 * (CPU-seconds of this process, all threads: read around each call so
 * ATTN_BENCH_EVICT's writes are not counted) */
static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

typedef struct {
	const char *what;
	int64_t B, Sq, Sk, H, D;
	int cross;     /* Q alone, K/V packed (else Q/K/V packed) */
	int mask;      /* an i64 key-padding mask: 1 all ones but the last quarter of keys of
	                * entry 0; 2 all ones (BERT-base in `kiln bench` without --lengths) */
	int causal;
	int packed;    /* B sequences of lengths spread evenly over Sk/8..Sk (kiln bench --lengths
	                * 16..128, ascending), packed as --remove-padding runs them: Q/K/V [1, T,
	                * 3*H*D] and cu_seqlens, no mask */
} shape;

static int fpmath;   /* ATTN_BENCH_BF16 */

static const shape shapes[] = {
	{ "bert b1", 1, 128, 128, 12, 64, 0, 1, 0 },
	{ "bert b8", 8, 128, 128, 12, 64, 0, 1, 0 },
	{ "bert b1 nomask", 1, 128, 128, 12, 64, 0, 0, 0 },
	/* the form BERT-base's 12 KlnAttention nodes run in `kiln bench --batch 1
	 * --seq 128`: Q/K/V at offsets 0/768/1536 of the QKV GEMM's [1, 128,
	 * 2304], an i64 mask of ones, no bias, layout 0 (read off the compiled
	 * model's calls, issue #15) */
	{ "bert b1 ones", 1, 128, 128, 12, 64, 0, 2, 0 },
	{ "lx s20", 1, 20, 20, 12, 64, 0, 1, 0 },
	{ "lx r36", 1, 36, 36, 12, 64, 0, 0, 0 },
	{ "lx x20-36", 1, 20, 36, 12, 64, 1, 0, 0 },
	{ "lx x36-20", 1, 36, 20, 12, 64, 1, 1, 0 },
	{ "causal s128", 1, 128, 128, 12, 64, 0, 0, 2 },
	{ "packed b8 16..128", 8, 128, 128, 12, 64, 0, 0, 0, 1 },
};

typedef struct {
	kiln_frame *f;
	rt_t in[6], out;
	int32_t cu[65];
	int64_t ia[RT_NIA_KlnAttention];
	float fa[RT_NFA_KlnAttention];
} call;

/* packed shapes: cu_seqlens into cu (lengths Sk/8 .. Sk over the B
 * sequences, ascending, as `kiln bench --lengths 16..128`); the rows T
 * (B * Sq when not packed) */
static int64_t packed_rows(const shape *s, int32_t *cu)
{
	if (!s->packed)
		return s->B * s->Sq;
	int64_t lo = s->Sk / 8, hi = s->Sk;
	cu[0] = 0;
	for (int64_t b = 0; b < s->B; b++)
		cu[b + 1] = cu[b] + (int32_t)(s->B > 1 ? lo + (hi - lo) * b / (s->B - 1) : hi);
	return cu[s->B];
}

static void setup(const shape *s, call *c, float *q, float *kv, int64_t *mask, float *o)
{
	int64_t hd = s->H * s->D;
	memset(c->in, 0, sizeof c->in);
	memset(&c->out, 0, sizeof c->out);
	int64_t ldq = s->cross ? hd : 3 * hd, ldk = s->cross ? 2 * hd : 3 * hd;
	rt_t *t[4] = {&c->in[0], &c->in[1], &c->in[2], &c->out};
	void *data[4] = {q, s->cross ? kv : q, s->cross ? kv : q, o};
	int64_t rows[4] = {s->Sq, s->Sk, s->Sk, s->Sq}, cols[4] = {ldq, ldk, ldk, hd};
	int64_t T = packed_rows(s, c->cu);
	for (int i = 0; i < 4; i++) {
		t[i]->data = data[i];
		t[i]->dtype = KILN_F32;
		t[i]->rank = 3;
		t[i]->dims[0] = s->packed ? 1 : s->B, t[i]->dims[1] = s->packed ? T : rows[i];
		t[i]->dims[2] = cols[i];
	}
	if (s->packed) {
		c->in[5].data = c->cu;
		c->in[5].dtype = KILN_I32;
		c->in[5].rank = 1;
		c->in[5].dims[0] = s->B + 1;
	}
	if (s->mask) {
		c->in[4].data = mask;
		c->in[4].dtype = KILN_I64;
		c->in[4].rank = 2;
		c->in[4].dims[0] = s->B, c->in[4].dims[1] = s->Sk;
	}
	memset(c->ia, 0, sizeof c->ia);
	memset(c->fa, 0, sizeof c->fa);
	c->ia[RT_IA_KlnAttention_head_size] = s->D;
	c->ia[RT_IA_KlnAttention_v_head_size] = s->D;
	c->ia[RT_IA_KlnAttention_num_heads] = s->H;
	c->ia[RT_IA_KlnAttention_q_offset] = 0;
	c->ia[RT_IA_KlnAttention_k_offset] = s->cross ? 0 : hd;
	c->ia[RT_IA_KlnAttention_v_offset] = s->cross ? hd : 2 * hd;
	c->ia[RT_IA_KlnAttention_causal] = s->causal;
	c->ia[RT_IA_KlnAttention_fpmath] = fpmath;
	c->fa[RT_FA_KlnAttention_scale] = 0.125f;
	c->fa[RT_FA_KlnAttention_mask_filter] = -10000.0f;
	c->fa[RT_FA_KlnAttention_causal_fill] = -3.4028234663852886e+38f;
}

/* n floats of FILE into q; false (q untouched) when FILE's size is not n */
static bool load_qkv(const char *file, float *q, size_t n)
{
	FILE *fp = fopen(file, "rb");
	if (!fp)
		return false;
	bool ok = fseek(fp, 0, SEEK_END) == 0 && ftell(fp) == (long)(n * 4) &&
	          fseek(fp, 0, SEEK_SET) == 0 && fread(q, 4, n, fp) == n;
	fclose(fp);
	return ok;
}

static float *evict_buf;
static size_t evict_n;
static float *gemm_a, *gemm_b, *gemm_c;   /* ATTN_BENCH_GEMM's operands */

static int once(call *c)
{
	return rt_op_KlnAttention(c->f, "att", c->in, 6, &c->out, 1, c->ia, RT_NIA_KlnAttention, c->fa,
	                          RT_NFA_KlnAttention);
}

/* The clock this thread gets per second of its CPU time, in GHz: a chain
 * of 2M dependent adds (one cycle each) over CLOCK_THREAD_CPUTIME_ID.  On
 * a shared VM it varies from call to call (the host shares the core), so a
 * CPU-second is not a fixed number of cycles: issue #15's 1.6x between
 * this bench's best group and the model's profile was that.  *mean: the
 * mean over n probes; returns the best. */
static double cpu_ghz(int n, double *mean)
{
	double best = 0, sum = 0;
	for (int i = 0; i < n; i++) {
		struct timespec t0, t1;
		long x = 0;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
		for (long k = 0; k < 2000000; k++) {
			x += 1;                           /* kept: the asm reads and writes x */
			__asm__ volatile("" : "+r"(x));
		}
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
		double g = 2e6 / ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec));
		sum += g;
		best = g > best ? g : best;
	}
	*mean = sum / n;
	return best;
}

/* GFLOP per CPU-second: the best of 7 groups of calls of >= 20 ms CPU
 * each; r[0]: GFLOP/s of the fastest single call (wall clock) of all
 * groups, the rate when nothing else ran on the core; r[1]: GFLOP per
 * wall-clock second over all calls, as the profiler counts; r[2]: GFLOP
 * per CPU-second over all calls (not only the best group's) */
static double run(const shape *s, call *c, double r[3])
{
	double flop = 2.0 * (double)(s->B * s->H * s->Sq * s->Sk * 2 * s->D), best = 0, tmin = 1e9;
	if (s->packed) {   /* the real work: each sequence over its own length */
		flop = 0;
		for (int64_t b = 0; b < s->B; b++) {
			double n = c->cu[b + 1] - c->cu[b];
			flop += 2.0 * (double)(s->H * 2 * s->D) * n * n;
		}
	}
	double wsum = 0, csum = 0;
	int64_t ncalls = 0;
	if (once(c))
		return -1;
	for (int g = 0; g < 7; g++) {
		double t = 0;
		int calls = 0;
		do {
			for (size_t k = 0; k < evict_n; k += 16)
				evict_buf[k] += 1.0f;
			if (gemm_a)
				rt_sgemm(NULL, 0, 0, 128, 3072, 768, 1.0f, gemm_a, 768, gemm_b, 3072, 0.0f,
				         gemm_c, 3072);
			double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
			once(c);
			double w = clock_s(CLOCK_MONOTONIC) - w0;
			t += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
			tmin = w < tmin ? w : tmin;
			wsum += w;
			calls++;
		} while (t < 0.02);
		ncalls += calls;
		csum += t;
		double gf = flop * calls / t * 1e-9;
		best = gf > best ? gf : best;
	}
	r[0] = flop / tmin * 1e-9;
	r[1] = flop * (double)ncalls / wsum * 1e-9;
	r[2] = flop * (double)ncalls / csum * 1e-9;
	return best;
}

int main(int argc, char **argv)
{
	if (argc > 1 && rt_fused_simd_use(atoi(argv[1]))) {
		fprintf(stderr, "attn_bench: path %s not available on this CPU\n", argv[1]);
		return 1;
	}
	const char *only = getenv("ATTN_BENCH_ONLY"), *pk = getenv("ATTN_BENCH_PEAK");
	const char *qkv = getenv("ATTN_BENCH_QKV"), *ev = getenv("ATTN_BENCH_EVICT");
	if (ev && atoi(ev) > 0) {
		evict_n = (size_t)atoi(ev) << 18;
		evict_buf = calloc(evict_n, sizeof(float));
		if (!evict_buf)
			evict_n = 0;
		printf("%zu MiB written before every call\n", evict_n >> 18);
	}
	if (getenv("ATTN_BENCH_GEMM") && atoi(getenv("ATTN_BENCH_GEMM")) > 0) {
		gemm_a = calloc(128 * 768, sizeof(float));
		gemm_b = calloc(768 * 3072, sizeof(float));
		gemm_c = calloc(128 * 3072, sizeof(float));
		if (!gemm_a || !gemm_b || !gemm_c) {
			fprintf(stderr, "attn_bench: out of memory\n");
			return 1;
		}
		printf("a [128, 768] x [768, 3072] GEMM before every call\n");
	}
	double peak = pk && *pk ? atof(pk) : 0;
	fpmath = getenv("ATTN_BENCH_BF16") && atoi(getenv("ATTN_BENCH_BF16")) > 0;
	if (fpmath)
		printf("fpmath 1: bf16 products (GEMM kernel %s)\n", rt_sgemm_bf16_kernel());
	printf("KlnAttention path %d (0 scalar, 1 AVX-512/NEON, 2 AVX2); GFLOP per CPU-second "
	       "(fastest call's GFLOP/s; GFLOP per wall-second, per CPU-second of all calls)%s\n", rt_fused_path(), peak > 0 ? ", % of the 1-core FMA peak" : "");
	if (qkv && *qkv)
		printf("rows marked *: Q/K/V read from %s\n", qkv);
	double gmean, gbest = cpu_ghz(50, &gmean);
	printf("clock per CPU-second (dependent adds): best %.2f GHz, mean %.2f GHz\n", gbest, gmean);
	printf("%-16s %2s %4s %4s %3s %3s | %26s %6s | %26s %6s\n", "shape", "B", "Sq", "Sk", "H",
	       "D", "t1", peak > 0 ? "%" : "", "t2", peak > 0 ? "%" : "");
	struct rt_pool *pools[2] = {rt_pool_create(1), rt_pool_create(2)};
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
		const shape *s = &shapes[i];
		if (only && !strstr(s->what, only))
			continue;
		int64_t hd = s->H * s->D;
		size_t nq = (size_t)(s->B * s->Sq * (s->cross ? hd : 3 * hd));
		size_t nkv = s->cross ? (size_t)(s->B * s->Sk * 2 * hd) : 1;
		float *q = malloc(nq * 4), *kv = malloc(nkv * 4), *o = malloc((size_t)(s->B * s->Sq * hd) * 4);
		int64_t *mask = malloc((size_t)(s->B * s->Sk) * 8);
		if (!q || !kv || !o || !mask) {
			fprintf(stderr, "attn_bench: out of memory\n");
			return 1;
		}
		for (size_t k = 0; k < nq; k++)
			q[k] = (float)((k * 7919) % 1001) / 500.0f - 1.0f;
		for (size_t k = 0; k < nkv; k++)
			kv[k] = (float)((k * 104729) % 2003) / 1000.0f - 1.0f;
		bool real = qkv && *qkv && !s->cross && load_qkv(qkv, q, nq);
		for (int64_t k = 0; k < s->B * s->Sk; k++)
			mask[k] = s->mask == 2 || k < s->Sk * 3 / 4 || k >= s->Sk;
		double g[2], r[2][3];
		for (int t = 0; t < 2; t++) {
			kiln_frame f;
			memset(&f, 0, sizeof f);
			f.pool = pools[t];
			call c;
			c.f = &f;
			setup(s, &c, q, kv, mask, o);
			g[t] = run(s, &c, r[t]);
			if (g[t] < 0) {
				fprintf(stderr, "attn_bench: %s failed\n", s->what);
				return 1;
			}
		}
		printf("%-16s%c%2lld %4lld %4lld %3lld %3lld | %6.1f (%5.1f %5.1f %5.1f) ", s->what, real ? '*' : ' ', (long long)s->B,
		       (long long)s->Sq, (long long)s->Sk, (long long)s->H, (long long)s->D, g[0], r[0][0], r[0][1], r[0][2]);
		if (peak > 0)
			printf("%5.1f%% ", 100 * g[0] / peak);
		else
			printf("%6s ", "");
		printf("| %6.1f (%5.1f %5.1f %5.1f) ", g[1], r[1][0], r[1][1], r[1][2]);
		if (peak > 0)
			printf("%5.1f%%", 100 * g[1] / peak);
		printf("\n");
		free(q); free(kv); free(o); free(mask);
	}
	gbest = cpu_ghz(50, &gmean);
	printf("clock per CPU-second after: best %.2f GHz, mean %.2f GHz\n", gbest, gmean);
	rt_pool_free(pools[0]);
	rt_pool_free(pools[1]);
	return 0;
}
