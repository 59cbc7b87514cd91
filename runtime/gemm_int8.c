/* gemm_int8.c: the int8 GEMM of gemm_int8.h (quantization of A per row,
 * blocking, threads, dequantizing epilogue), its portable micro-kernel,
 * the run-time choice among the x86 ones (gemm_int8_x86.c), and the
 * KlnGemmQ kernel:
 *
 *   KlnGemmQ(A[..., K] f32, W i8 [ceil(N/16), ceil(K/4), 64], scale[N] f32,
 *            wsum[N] i32, bias[N]? f32) -> [..., N] f32
 *                                             ia = [act, per_tensor, wbits]
 *       W, scale, wsum: rt_q8_quantize_weights of the f32 weights
 *       (passes/quantize.c) or an imported int8 model's (fuse-qgemm);
 *       act as KlnGemm's (0 none, 1 GELU erf, 2 tanh, 3 quick); per_tensor 1: A
 *       quantized with one scale, exactly as DynamicQuantizeLinear does
 *       (a NaN or infinity in A is then an error, as there), else per row;
 *       wbits 7: every |W| <= RT_Q8_W7MAX (--quantize-weight-bits=7: the
 *       7-bit kernels may run; a weight outside is an error), 8: any.
 *
 * Work: one job per call: A quantized once (chunks of rows taken by the
 * threads from a shared counter; a thread starts a unit once its rows are
 * quantized, not once all are), then units of one group of column panels
 * (the kernel's np: 3 for "avx512vnni", else 1) times a chunk of rows that
 * stays in L2 (quantized A is 1 or 2 bytes a value),
 * at few rows cut into one contiguous run per thread (each streams its own
 * range of weight panels; a thread done with its run takes from the
 * others'), else taken by all threads in turn from one run (its last
 * units cut in halves of rows, for an even finish), the
 * micro-kernel giving MR x 16 int32 sums a panel over the whole K,
 * dequantized with the bias and GELU while they are in L1; the group of
 * the thread's likely next unit (its run's next, or with one run shared
 * by nt threads the one nt on) is prefetched meanwhile, in the kernel's
 * loop at up to 16 calls a unit, else in slices between the calls.  A row of A that holds a
 * NaN or an infinity gives a row of NaN (it cannot be quantized). */
#include <float.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "gemm_int8.h"
#include "rt_internal.h"

/* ---- portable micro-kernel: 4 rows x 16 columns ---- */

static void k_c(int64_t kq, const void *const *a, const int8_t *wp, int32_t *acc)
{
	for (int r = 0; r < 4; r++) {
		const uint8_t *ar = a[r];
		int32_t s[RT_Q8_NR] = {0};
		for (int64_t q = 0; q < kq; q++) {
			const int8_t *w = wp + q * 4 * RT_Q8_NR;
			const uint8_t *x = ar + 4 * q;
			for (int c = 0; c < RT_Q8_NR; c++)
				s[c] += x[0] * w[4 * c] + x[1] * w[4 * c + 1] + x[2] * w[4 * c + 2] +
				        x[3] * w[4 * c + 3];
		}
		memcpy(acc + r * RT_Q8_NR, s, sizeof s);
	}
}

static const rt_q8_ukernel q8_c = {"c", k_c, 4, 0, NULL, NULL, 0, NULL, 0, NULL, NULL, 1, {NULL, NULL},
                                   {NULL, NULL}};

/* ---- choice ---- */

static bool can_run(const rt_q8_ukernel *u)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (u == &rt_q8_avx512vnni || u == &rt_q8_avx512vnni16)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vnni");
	if (u == &rt_q8_avxvnni)
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("avxvnni");
	if (u == &rt_q8_avx2_w7 || u == &rt_q8_avx2 || u == &rt_q8_avx2_w7x4 || u == &rt_q8_avx2x4 ||
	    u == &rt_q8_avx2_narrow)
		return __builtin_cpu_supports("avx2");
#endif
	return u == &q8_c;
}

static const rt_q8_ukernel *const all_kernels[] = {
#if defined(__x86_64__)
	&rt_q8_avx512vnni, &rt_q8_avxvnni, &rt_q8_avx2_w7, &rt_q8_avx2, &rt_q8_avx2_w7x4,
	&rt_q8_avx2x4, &rt_q8_avx2_narrow, &rt_q8_avx512vnni16,
#endif
	&q8_c,
};

static const rt_q8_ukernel *forced;

/* the kernel for 7-bit weights (w7) or 8-bit ones: the first of
 * all_kernels the CPU runs, and never one that needs 7-bit weights for
 * 8-bit ones, even when forced */
static const rt_q8_ukernel *ukernel(bool w7)
{
	const rt_q8_ukernel *f = __atomic_load_n(&forced, __ATOMIC_RELAXED);
	if (f && (w7 || !f->w7))
		return f;
	static const rt_q8_ukernel *best[2];
	const rt_q8_ukernel *b = __atomic_load_n(&best[w7], __ATOMIC_RELAXED);
	if (b)
		return b;
	for (size_t i = 0; i < sizeof all_kernels / sizeof *all_kernels; i++)
		if ((w7 || !all_kernels[i]->w7) && can_run(all_kernels[i])) {
			b = all_kernels[i];
			break;
		}
	__atomic_store_n(&best[w7], b, __ATOMIC_RELAXED);
	return b;
}

const char *rt_qgemm_kernel(int flags)
{
	return ukernel((flags & RT_Q8_W7) != 0)->name;
}

int rt_qgemm_use(const char *name)
{
	if (!name) {
		__atomic_store_n(&forced, NULL, __ATOMIC_RELAXED);
		return 0;
	}
	for (size_t i = 0; i < sizeof all_kernels / sizeof *all_kernels; i++)
		if (!strcmp(all_kernels[i]->name, name)) {
			if (!can_run(all_kernels[i]))
				return -1;
			__atomic_store_n(&forced, all_kernels[i], __ATOMIC_RELAXED);
			return 0;
		}
	return -1;
}

/* ---- per-thread buffer of the quantized A ---- */

/* two per thread: 0 the quantized A (the calling thread's), 1 a widened
 * panel (each worker's) */
static pthread_key_t buf_key[2];
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static bool buf_key_ok;

static void buf_init(void)
{
	buf_key_ok = pthread_key_create(&buf_key[0], free) == 0 &&
	             pthread_key_create(&buf_key[1], free) == 0;
}

typedef struct qbuf { size_t cap; _Alignas(64) unsigned char data[]; } qbuf;

static void *buf_get(int which, size_t n)
{
	pthread_once(&buf_once, buf_init);
	if (!buf_key_ok)
		return NULL;
	pthread_key_t key = buf_key[which];
	qbuf *b = pthread_getspecific(key);
	if (b && b->cap >= n)
		return b->data;
	qbuf *nb = aligned_alloc(64, (sizeof *nb + n + 63) / 64 * 64);
	if (!nb || pthread_setspecific(key, nb)) {
		free(nb);
		return NULL;
	}
	free(b);
	nb->cap = n;
	return nb->data;
}

/* ---- the job ---- */

#define Q8_RUNS 16   /* at most this many runs of units (threads that own one) */
#define Q8_FEW_ROWS 48   /* at most this many rows: a run per thread */

typedef struct q8_job {
	const rt_q8_ukernel *uk;
	int64_t M, N, K, kq, lda, ldc, np, mc, rowb;   /* rowb: bytes of a quantized row */
	int64_t ng;            /* groups of the kernel's uk->np panels (the last may have fewer) */
	const float *A;
	const int8_t *Wp;
	const float *scale;
	const int32_t *wsum;
	float *C;
	const rt_gemm_epi *epi;
	bool per_tensor;       /* one scale for all of A (gs, gzp), ONNX's DynamicQuantizeLinear */
	float gs;
	int32_t gzp;
	unsigned char *aq;     /* M quantized rows of 4 * kq values (u8, or i16) */
	float *sa;             /* [M] scales (NaN: the row could not be quantized) */
	int32_t *zp;           /* [M] zero points */
	int wbad;              /* a 7-bit kernel met a weight outside the 7-bit range */
	bool wcheck;           /* a 7-bit kernel checks the panels (not RT_Q8_W7_KNOWN) */
	int64_t qrows, nq;     /* A is quantized in nq tasks of qrows rows */
	int64_t qnext;         /* the next quantization task (q8_work) */
	unsigned char *qready; /* [nq]: 1 once quantization task t is done */
	bool avx2fma;          /* the epilogue's AVX2 + FMA path can run */
	bool avx512;           /* its AVX-512 path (whole panels, no GELU or the erf one) can */
	/* the units (row chunk major, panel minor) cut into nruns contiguous
	 * runs, one per thread: run r's next unit and its end */
	int nruns;
	struct { int64_t next, end; char pad[48]; } run[Q8_RUNS];
	/* units from usplit on are halves (in rows) of the last chunk's last
	 * panels, two a panel, so that the threads finish closer together */
	int64_t usplit;
	int64_t nunits;        /* units in all (the halves counted) */
	int64_t pfstep;        /* a thread's next unit is likely u + pfstep (q8_work) */
} q8_job;

/* round to nearest even for |v| < 2^22, and vectorizable (nearbyintf is
 * not, without -fno-math-errno) */
static inline float rne(float v)
{
	return (v + 12582912.0f) - 12582912.0f;
}

/* row m with the tensor's scale and zero point, x / scale as ONNX's
 * DynamicQuantizeLinear divides (gs 0: every value 0) */
static void quant_row_div(const q8_job *j, int64_t m, const float *x)
{
	int64_t K = j->K, Kp = 4 * j->kq;
	float s = j->gs, fz = (float)j->gzp;
	j->sa[m] = s;
	j->zp[m] = j->gzp;
	for (int64_t k = 0; k < Kp; k++) {
		float v = k < K && s > 0 ? rne(x[k] / s) + fz : 0;
		v = v < 0 ? 0 : v > 255 ? 255 : v;
		if (j->uk->a16)
			((int16_t *)(void *)(j->aq + m * j->rowb))[k] = (int16_t)v;
		else
			(j->aq + m * j->rowb)[k] = (uint8_t)v;
	}
}

/* the per-tensor scale and zero point of A: -1 if A holds a NaN or an infinity */
static int tensor_scale(q8_job *j)
{
	float lo = 0, hi = 0;
	int bad = 0;
	for (int64_t m = 0; m < j->M; m++) {
		const float *x = j->A + m * j->lda;
		for (int64_t k = 0; k < j->K; k++) {
			lo = x[k] < lo ? x[k] : lo;
			hi = x[k] > hi ? x[k] : hi;
			bad |= !(x[k] - x[k] == 0);
		}
	}
	if (bad)
		return -1;
	j->gs = (hi - lo) / 255.0f;
	float z = j->gs > 0 ? rne(-lo / j->gs) : 0;
	j->gzp = z < 0 ? 0 : z > 255 ? 255 : (int32_t)z;
	return 0;
}

/* min(0, min x), max(0, max x) over the row, and whether it holds a NaN */
static void row_range(const float *x, int64_t K, float *mn, float *mx, int *bad)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx512f")) {
		rt_q8_row_range_avx512(x, K, mn, mx, bad);
		return;
	}
	if (__builtin_cpu_supports("avx2")) {
		rt_q8_row_range_avx2(x, K, mn, mx, bad);
		return;
	}
#endif
	float lo = 0, hi = 0;
	int nan = 0;
	for (int64_t k = 0; k < K; k++) {
		lo = x[k] < lo ? x[k] : lo;
		hi = x[k] > hi ? x[k] : hi;
		nan |= x[k] != x[k];
	}
	*mn = lo, *mx = hi, *bad = nan;
}

/* q[k] = clamp(rne(x[k] * inv) + zp, 0, 255); |x[k] * inv| <= 256 */
static void quant_u8(const float *x, int64_t K, float inv, int32_t zp, uint8_t *q)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx512bw")) {
		rt_q8_quant_u8_avx512(x, K, inv, zp, q);
		return;
	}
	if (__builtin_cpu_supports("avx2")) {
		rt_q8_quant_u8_avx2(x, K, inv, zp, q);
		return;
	}
#endif
	float fz = (float)zp;
	for (int64_t k = 0; k < K; k++) {
		float v = rne(x[k] * inv) + fz;
		q[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

/* rows [b, e) of A quantized (one pass over the row, in L1 for the second
 * read): u8, or for an i16 kernel u8 widened in place */
static void quant_rows(void *arg, int64_t b, int64_t e)
{
	const q8_job *j = arg;
	int64_t K = j->K, Kp = 4 * j->kq;
	for (int64_t m = b; m < e; m++) {
		const float *x = j->A + m * j->lda;
		if (j->per_tensor) {
			quant_row_div(j, m, x);
			continue;
		}
		float mn, mx;
		int bad;
		row_range(x, K, &mn, &mx, &bad);
		float s = (mx - mn) / 255.0f;
		bad |= !(s < INFINITY);
		if (bad)   /* (the vector min / max may have kept a NaN) */
			mn = mx = 0;
		if (bad || !(s >= FLT_MIN))   /* all zero, or 1 / s would overflow */
			s = 1;
		float inv = 1.0f / s;
		float z = rne(-mn * inv);
		int32_t zp = z < 0 ? 0 : z > 255 ? 255 : (int32_t)z;
		j->sa[m] = bad ? NAN : s;
		j->zp[m] = zp;
		unsigned char *row = j->aq + m * j->rowb;
		/* an i16 row: the u8 values at its second half first */
		uint8_t *q = j->uk->a16 ? row + Kp : row;
		if (bad)
			memset(q, 0, (size_t)K);
		else
			quant_u8(x, K, inv, zp, q);
		memset(q + K, 0, (size_t)(Kp - K));
		if (j->uk->a16) {   /* forward: element k's write never reaches an unread byte */
			int16_t *q16 = (int16_t *)(void *)row;
#if defined(__x86_64__)
			if (__builtin_cpu_supports("avx2")) {
				rt_q8_widen_u8_avx2(q, q16, Kp);
				continue;
			}
#endif
			for (int64_t k = 0; k < Kp; k++) {
				int16_t v = q[k];
				memcpy(q16 + k, &v, sizeof v);
			}
		}
	}
}

/* C rows [i0, i0 + mr) x columns [n0, n0 + nc) from the sums */
static void dequant(const q8_job *j, const int32_t *acc, int64_t i0, int mr, int64_t n0, int nc)
{
	const rt_gemm_epi *e = j->epi;
#if defined(__x86_64__)
	if (nc == RT_Q8_NR && j->avx2fma) {
		rt_q8_dequant16_avx2(acc, mr, j->C + i0 * j->ldc + n0, j->ldc, j->sa + i0, j->zp + i0,
		                     j->wsum + n0, j->scale + n0, e && e->bias ? e->bias + n0 : NULL,
		                     e ? e->act : 0);
		return;
	}
#endif
	for (int r = 0; r < mr; r++) {
		int64_t m = i0 + r;
		float *c = j->C + m * j->ldc + n0;
		float sa = j->sa[m];
		int32_t zp = j->zp[m];
		for (int k = 0; k < nc; k++) {
			int64_t n = n0 + k;
			float v = (float)(acc[r * RT_Q8_NR + k] - zp * j->wsum[n]) * (sa * j->scale[n]);
			c[k] = e && e->bias ? v + e->bias[n] : v;
		}
		if (e && e->act)
			rt_gelu_inplace(c, nc, e->act - 1);
	}
}

static void prefetch_lines(const int8_t *p, int64_t n)
{
	for (int64_t l = 0; l < n; l++)
		__builtin_prefetch(p + 64 * l, 0, 2);
}

/* One unit of work: C rows [i0, i1) x panel group g (the kernel's np
 * panels from g * np, fewer at the end of N), MR rows a micro-kernel call.
 * Group gn, the one the thread will likely take next (q8_work; -1: none),
 * goes to L2 while g computes, a slice before each call, so the weights
 * stream from DRAM behind the products, not between them (and the 7-bit
 * check reads the next panel from cache). */
static void q8_unit(q8_job *j, int64_t i0, int64_t i1, int64_t g, int64_t gn, int16_t *wide,
                    rt_q8_kern fn)
{
	const rt_q8_ukernel *uk = j->uk;
	int MR = uk->mr, GP = uk->np;
	int32_t acc[3 * 16 * RT_Q8_NR];
	const void *rows[16];
	int64_t pstride = j->kq * 4 * RT_Q8_NR, p0 = g * GP;
	int np = (int)(j->np - p0 < GP ? j->np - p0 : GP);
	const int8_t *wp = j->Wp + p0 * pstride;
	/* a 7-bit kernel would saturate on 8-bit weights: every panel is checked,
	 * once a call (in the first chunk of rows, which has every panel; C is
	 * undefined when one fails, so later chunks need not wait for it) */
	if (uk->w7 && j->wcheck && i0 == 0 && !rt_q8_w7_ok(wp, np * pstride)) {
		__atomic_store_n(&j->wbad, 1, __ATOMIC_RELAXED);
		return;
	}
	if (wide) {   /* (widening kernels read one panel a call) */
		uk->widen(j->kq, wp, wide);
		wp = (const int8_t *)(const void *)wide;
	}
	int64_t n0 = p0 * RT_Q8_NR;
	const int8_t *pf = gn >= 0 ? j->Wp + gn * GP * pstride : NULL;
	int64_t pnext = gn >= 0 ? j->np - gn * GP : 0;
	int64_t plines = (pnext < GP ? pnext : GP) * pstride / 64;
	int64_t calls = (i1 - i0 + MR - 1) / MR, per = (plines + calls - 1) / calls;
	bool tail = uk->tail && fn == uk->fn;
	int tmr = uk->tail_mr;
	rt_q8_kern full = np < GP ? uk->part[np - 1] : fn,
	           short_ = tail && np < GP ? uk->tail_part[np - 1] : uk->tail;
	/* few rows (at most 16 calls, 128 rows for MR 8: BERT's b1 s128,
	 * LXMERT's 20 and 36), where the weights' stream is the cost, and a
	 * kernel that prefetches in its loop (a whole group): a quarter of
	 * the next panel in each of the first 4 calls (np 1; np 3: a panel
	 * in each of the first 3), evenly over the products (the slices
	 * above, a burst before each call, stall it once the misses in
	 * flight reach the core's limit: +12-16% GOP/s on LXMERT's 20 rows;
	 * BERT-base b1 s128 1 thread, 16 calls: 4-6% less CPU time per run,
	 * its bursts of 36 lines were 5% of the profile in q8_unit's
	 * prefetcht1); fewer calls: the rest before the first.  More calls
	 * (b8's 85): the slices, with enough products between them */
	int64_t slice = GP == 1 ? pstride / 4 : pstride, pcalls = GP == 1 ? 4 : GP;
	bool inpf = pf && uk->fn_pf && fn == uk->fn && calls <= 16 && np == GP;
	if (inpf) {
		int64_t skip = (calls < pcalls ? calls : pcalls) * slice / 64;
		if (skip < plines)
			prefetch_lines(pf + 64 * skip, plines - skip);
	}
	for (int64_t i = i0, c = 0, mr; i < i1; i += mr, c++) {
		int64_t left = i1 - i;
		mr = left < MR ? left : MR;
		/* 7 or 8 rows left of MR 6: 4 + 3 or 4 + 4 on the tail kernel,
		 * not 6 + 1 or 6 + 2 (LXMERT's 20 tokens: 6 + 6 + 4 + 4) */
		if (tail && left > MR && left < MR + tmr - 1)
			mr = tmr;
		int64_t l0 = c * per;
		if (pf && !inpf && l0 < plines)
			prefetch_lines(pf + 64 * l0, plines - l0 < per ? plines - l0 : per);
		/* a short block repeats its last row; those sums are dropped */
		for (int r = 0; r < MR; r++)
			rows[r] = j->aq + (i + (r < mr ? r : mr - 1)) * j->rowb;
		bool t = tail && mr <= tmr;
		if (inpf)   /* past the group's slices: its own panel (in cache: no traffic) */
			(t ? uk->tail_pf : uk->fn_pf)(j->kq, rows, wp, acc,
			                              c < pcalls && c * slice < 64 * plines ? pf + c * slice : wp);
		else
			(t ? short_ : full)(j->kq, rows, wp, acc);
		int q = 0;
#if defined(__x86_64__)
		if (j->avx512) {   /* the whole panels at once (the last may be partial) */
			const rt_gemm_epi *e = j->epi;
			q = (int)((j->N - n0) / RT_Q8_NR < np ? (j->N - n0) / RT_Q8_NR : np);
			rt_q8_dequant_avx512(acc, MR, (int)mr, q, j->C + i * j->ldc + n0, j->ldc, j->sa + i,
			                     j->zp + i, j->wsum + n0, j->scale + n0,
			                     e && e->bias ? e->bias + n0 : NULL, e ? e->act : 0);
		}
#endif
		for (; q < np; q++) {
			int64_t nq = n0 + q * RT_Q8_NR;
			dequant(j, acc + q * MR * RT_Q8_NR, i, (int)mr, nq,
			        (int)(j->N - nq < RT_Q8_NR ? j->N - nq : RT_Q8_NR));
		}
	}
}

static inline void relax(void)
{
#if defined(__x86_64__)
	__builtin_ia32_pause();
#endif
}

/* the next unit for the thread that owns run t: its own run's next, else
 * (run done) one from the front of another's; -1 when none is left */
static int64_t next_unit(q8_job *j, int t)
{
	for (int r = 0; r < j->nruns; r++) {
		int u = (t + r) % j->nruns;
		if (__atomic_load_n(&j->run[u].next, __ATOMIC_RELAXED) >= j->run[u].end)
			continue;
		int64_t x = __atomic_fetch_add(&j->run[u].next, 1, __ATOMIC_RELAXED);
		if (x < j->run[u].end)
			return x;
	}
	return -1;
}

/* unit u's rows [*i0, *i1) and panel group *p: before usplit, chunk u / ng
 * times group u % ng; from it on, units in pairs, the first rows of a
 * group (a multiple of MR) and the rest */
static void unit_at(const q8_job *j, int64_t u, int64_t *i0, int64_t *i1, int64_t *p)
{
	int64_t v = u < j->usplit ? u : j->usplit + (u - j->usplit) / 2;
	*i0 = v / j->ng * j->mc;
	*i1 = j->M - *i0 < j->mc ? j->M : *i0 + j->mc;
	*p = v % j->ng;
	if (u < j->usplit)
		return;
	int mr = j->uk->mr;
	int64_t mid = *i0 + ((*i1 - *i0) / 2 + mr - 1) / mr * mr;
	mid = mid < *i1 ? mid : *i1;
	if ((u - j->usplit) % 2)
		*i0 = mid;
	else
		*i1 = mid;
}

/* Waits until rows [0, i1) of A are quantized: tasks [*seen, need) done
 * (*seen: the tasks this thread has already seen done, in order) */
static void wait_rows(const q8_job *j, int64_t *seen, int64_t i1)
{
	int64_t need = (i1 + j->qrows - 1) / j->qrows;
	for (; *seen < need; ++*seen)
		while (!__atomic_load_n(&j->qready[*seen], __ATOMIC_ACQUIRE))
			relax();
}

/* Runs [b, e) of the job (one per thread, unless a thread claims a second
 * one a slower thread has not started).  First the quantization of A, nq
 * chunks of qrows rows taken from a shared counter; then, once the rows of
 * its unit are quantized (the quantization tasks are all taken by then,
 * and none waits: no deadlock; a thread whose last task is in a later
 * chunk of rows does not hold up the others' first units, and none waits
 * at the end of the quantization for one that was preempted in a task of
 * a later chunk), the units of the thread's own run in order, so a
 * thread streams a contiguous range of weight panels (the panel it
 * prefetches is the one it computes next, and at few rows, where the
 * weights' stream is the cost, each panel is read by one thread only);
 * a thread whose run is done takes units from the front of the others'
 * (threads on a core shared with another process take fewer, and all
 * finish together).  Every C element comes from one unit with the same
 * kernel, so the bits do not depend on who took what. */
static void q8_work(void *arg, int64_t b, int64_t e)
{
	q8_job *j = arg;
	int64_t pstride = j->kq * 4 * RT_Q8_NR;
	/* the widened panel, or (no memory for it) the kernel that widens in its loop */
	int16_t *wide = j->uk->widen ? buf_get(1, (size_t)pstride * sizeof(int16_t)) : NULL;
	rt_q8_kern fn = j->uk->widen && !wide ? j->uk->narrow : j->uk->fn;
	for (int64_t t; (t = __atomic_fetch_add(&j->qnext, 1, __ATOMIC_RELAXED)) < j->nq;) {
		int64_t r0 = t * j->qrows;
		quant_rows(j, r0, j->M - r0 < j->qrows ? j->M : r0 + j->qrows);
		__atomic_store_n(&j->qready[t], 1, __ATOMIC_RELEASE);
	}
	int64_t seen = 0;
	for (int64_t r = b; r < e; r++)
		for (int64_t u; (u = next_unit(j, (int)r)) >= 0;) {
			int64_t i0, i1, p;
			unit_at(j, u, &i0, &i1, &p);
			/* the thread's likely next unit: the next of its own run,
			 * or of one run shared by all, nt on (the threads take
			 * them in turn: the next group would be another's) */
			int64_t un = u + j->pfstep, a, z, gn = -1;
			if (un < j->nunits)
				unit_at(j, un, &a, &z, &gn);
			if (i0 < i1) {
				wait_rows(j, &seen, i1);
				q8_unit(j, i0, i1, p, gn, wide, fn);
			}
		}
}

int rt_qgemm(struct rt_pool *pool, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda,
             const int8_t *Wp, const float *scale, const int32_t *wsum, float *C, int64_t ldc,
             const rt_gemm_epi *epi, int flags)
{
	if (K > RT_Q8_KMAX || M < 0 || N < 0 || K < 0)
		return -1;
	if (M == 0 || N == 0)
		return 0;
	q8_job j = { .uk = ukernel((flags & RT_Q8_W7) != 0), .M = M, .N = N, .K = K, .kq = rt_q8_quads(K), .lda = lda,
	             .ldc = ldc, .np = rt_q8_panels(N), .A = A, .Wp = Wp, .scale = scale,
	             .wsum = wsum, .C = C, .epi = epi, .per_tensor = (flags & RT_Q8_PER_TENSOR) != 0,
	             .wcheck = !(flags & RT_Q8_W7_KNOWN) };
#if defined(__x86_64__)
	j.avx2fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	j.avx512 = j.avx2fma && __builtin_cpu_supports("avx512f") && (!epi || epi->act <= 1);
#endif
	if (j.per_tensor && tensor_scale(&j))
		return -2;
	j.rowb = 4 * j.kq * (j.uk->a16 ? 2 : 1);
	j.rowb = (j.rowb + 63) / 64 * 64;
	size_t abytes = (size_t)M * (size_t)j.rowb;
	/* then sa, zp and qready (nq <= M tasks) */
	unsigned char *buf = buf_get(0, abytes + (size_t)M * (sizeof(float) + sizeof(int32_t) + 1));
	if (!buf)
		return -1;
	j.aq = buf;
	j.sa = (float *)(void *)(buf + abytes);
	j.zp = (int32_t *)(void *)(j.sa + M);
	j.qready = (unsigned char *)(j.zp + M);
	/* rows of quantized A per chunk: about 512 KB (L2: BERT-base's 128 rows of
	 * u8 at K = 3072 in one chunk, so W is read once), a multiple of MR */
	int64_t mc = (512 << 10) / j.rowb;
	mc = mc < j.uk->mr ? j.uk->mr : mc / j.uk->mr * j.uk->mr;
	j.mc = mc;
	j.ng = (j.np + j.uk->np - 1) / j.uk->np;
	/* A quantized in chunks of about 16K values */
	j.qrows = K >= 16384 ? 1 : 16384 / K;
	j.nq = (M + j.qrows - 1) / j.qrows;
	memset(j.qready, 0, (size_t)j.nq);
	double work = (double)M * (double)N * (double)K;
	int nt = work >= 5e5 ? rt_pool_size(pool) : 1;
	int64_t units = (M + mc - 1) / mc * j.ng;
	/* one run per thread at few rows (LXMERT's 20 and 36), where the
	 * weights' stream is the cost; more rows: one run that all threads
	 * take from in turn (the A/B on BERT-base b8 did not favour runs
	 * there, on a loaded machine) */
	nt = nt < Q8_RUNS ? nt : Q8_RUNS;
	j.nruns = M <= Q8_FEW_ROWS ? nt : 1;
	j.nruns = units < j.nruns ? (int)units : j.nruns;
	/* one shared run on several threads: its last 2 units per thread (of
	 * the last chunk of rows) each cut in two halves of rows, so that the
	 * threads finish closer together (whole units left one idle for up to
	 * a unit at the end: FFN-down's 128 x 16 x 3072 is 1/48 of BERT's
	 * GEMM); every C element still comes from one kernel call, the same
	 * bits */
	j.usplit = units;
	int64_t last = M - (M - 1) / mc * mc, nsplit = 2 * (int64_t)nt;
	nsplit = nsplit < j.ng ? nsplit : j.ng;
	if (j.nruns == 1 && nt > 1 && last >= 2 * j.uk->mr) {
		j.usplit = units - nsplit;
		units += nsplit;
	}
	j.nunits = units;
	j.pfstep = j.nruns == 1 && nt > 1 ? (units < nt ? units : nt) : 1;
	for (int r = 0; r < j.nruns; r++) {
		j.run[r].next = units * r / j.nruns;
		j.run[r].end = units * (r + 1) / j.nruns;
	}
	if (nt > 1 && units > 1)
		rt_parallel_for(pool, units < nt ? units : nt, q8_work, &j);
	else
		q8_work(&j, 0, 1);
	return __atomic_load_n(&j.wbad, __ATOMIC_RELAXED) ? -3 : 0;
}

/* ---- KlnGemmQ ---- */

static int need(kiln_frame *f, const char *loc, const rt_t *t, int32_t dt, int64_t n,
                const char *what)
{
	if (!t->data)
		return rt_error(f, "node '%s' (KlnGemmQ): %s is missing", loc, what);
	if (t->dtype != dt)
		return rt_error(f, "node '%s' (KlnGemmQ): %s must be %s, got %s", loc, what,
		                rt_dtype_name(dt), rt_dtype_name(t->dtype));
	if (n >= 0 && rt_numel(t) != n)
		return rt_error(f, "node '%s' (KlnGemmQ): %s has %lld elements, expected %lld", loc,
		                what, (long long)rt_numel(t), (long long)n);
	return 0;
}

/* W lies whole in the model's weights blob (hash-checked at load): a
 * constant that passes/quantize.c or fuse_qgemm.c gave its wbits from its
 * values (KlnGemmQ never comes from outside: the frontend refuses kiln's
 * fused ops), so wbits 7 holds without a check at run time */
static bool model_weights(const kiln_frame *f, const rt_t *W)
{
	if (!f || !f->ctx || !f->ctx->d || !f->weights)
		return false;
	uintptr_t w = (uintptr_t)W->data, b = (uintptr_t)f->weights;
	uint64_t n = (uint64_t)rt_numel(W), hot = f->ctx->d->weights_hot_bytes;
	return w >= b && w - b <= hot && n <= hot - (w - b);
}

RT_KERNEL(KlnGemmQ)
{
	(void)fa, (void)nfa;
	if (nin < 4 || nout < 1 || nia < RT_NIA_KlnGemmQ)
		return rt_error(f, "node '%s' (KlnGemmQ): bad arity", loc);
	const rt_t *A = &in[0], *W = &in[1];
	if (need(f, loc, A, KILN_F32, -1, "A") || need(f, loc, &out[0], KILN_F32, -1, "output"))
		return 1;
	if (A->rank < 1 || W->rank != 3)
		return rt_error(f, "node '%s' (KlnGemmQ): A needs a rank >= 1 and W rank 3", loc);
	int64_t K = A->dims[A->rank - 1], N = rt_numel(&in[2]);
	if (need(f, loc, W, KILN_I8, rt_q8_panel_bytes(K, N), "W") ||
	    need(f, loc, &in[2], KILN_F32, N, "scale") || need(f, loc, &in[3], KILN_I32, N, "wsum"))
		return 1;
	if (W->dims[0] != rt_q8_panels(N) || W->dims[1] != rt_q8_quads(K) || W->dims[2] != 64)
		return rt_error(f, "node '%s' (KlnGemmQ): W is not the panels of a [%lld, %lld] matrix",
		                loc, (long long)K, (long long)N);
	int64_t M = K ? rt_numel(A) / K : 0;
	if (rt_numel(&out[0]) != M * N)
		return rt_error(f, "node '%s' (KlnGemmQ): output has the wrong size", loc);
	rt_gemm_epi epi = {NULL, (int)ia[RT_IA_KlnGemmQ_act]};
	if (epi.act < 0 || epi.act > 3)
		return rt_error(f, "node '%s' (KlnGemmQ): unknown activation %d", loc, epi.act);
	if (nin > 4 && in[4].data) {
		if (need(f, loc, &in[4], KILN_F32, N, "bias"))
			return 1;
		epi.bias = in[4].data;
	}
	int64_t wbits = ia[RT_IA_KlnGemmQ_wbits];
	if (wbits != 7 && wbits != 8)
		return rt_error(f, "node '%s' (KlnGemmQ): wbits %lld is not 7 or 8", loc, (long long)wbits);
	if (M == 0 || N == 0)
		return 0;
	if (K == 0) {  /* no products: the bias (and GELU of it) */
		float *c = out[0].data;
		for (int64_t m = 0; m < M; m++) {
			for (int64_t n = 0; n < N; n++)
				c[m * N + n] = epi.bias ? epi.bias[n] : 0;
			if (epi.act)
				rt_gelu_inplace(c + m * N, N, epi.act - 1);
		}
		return 0;
	}
	int rc = rt_qgemm(f ? f->pool : NULL, M, N, K, A->data, K, W->data, in[2].data, in[3].data,
	                  out[0].data, N, epi.bias || epi.act ? &epi : NULL,
	                  (ia[RT_IA_KlnGemmQ_per_tensor] ? RT_Q8_PER_TENSOR : 0) |
	                  (wbits == 7 ? RT_Q8_W7 : 0) | (model_weights(f, W) ? RT_Q8_W7_KNOWN : 0));
	if (rc == -3)
		return rt_error(f, "node '%s' (KlnGemmQ): W holds a weight outside the 7-bit range "
		                "[-%d, %d] that its wbits 7 promises", loc, RT_Q8_W7MAX, RT_Q8_W7MAX);
	if (rc == -2)
		return rt_error(f, "node '%s' (KlnGemmQ): A holds a NaN or an infinity: cannot be "
		                "quantized per tensor", loc);
	if (rc)
		return rt_error(f, "node '%s' (KlnGemmQ): K = %lld over %d, or out of memory", loc,
		                (long long)K, RT_Q8_KMAX);
	return 0;
}
