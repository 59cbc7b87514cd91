/* pool.c: the context's thread pool.  N threads in all: N-1 workers plus
 * the thread that calls rt_parallel_for.  One job at a time (a context is
 * used by one thread at a time).  A call made from inside a job (nested)
 * runs serially on the calling thread.
 *
 * A job's range is cut into chunks (contiguous, fixed by n and N only) that
 * the threads claim from a shared ticket, the caller included.  So the
 * caller never waits idle for a worker that has not woken up yet (on a
 * busy or virtual machine that takes from tens of microseconds to
 * milliseconds): it runs the chunks nobody claimed, and waits only for
 * chunks that are running.  The ticket is one 64-bit word, generation (32
 * bits) | chunks (16) | next chunk (16), claimed by compare-and-swap: a
 * worker that wakes late for a job that is over sees another generation
 * or no chunk left, and touches nothing of the job (its fn and arg may be
 * gone); a claim that succeeds keeps the job open until its chunk is
 * counted done, so fn, arg and total stay valid while it runs.
 *
 * Waiting spins before it sleeps.  A model runs hundreds of parallel jobs
 * per inference, microseconds apart; a worker that went to sleep on a
 * condition variable between two of them lets its CPU idle, and waking an
 * idle CPU (a halted vCPU on a virtual machine above all) costs from tens
 * of microseconds to milliseconds.  So both sides spin on an atomic for up
 * to SPIN_NS (yielding the CPU after YIELD_NS, in case more threads than
 * CPUs are runnable), then fall back to the mutex and condition variables
 * (idle contexts do not burn CPU).  The sleeping side announces itself in an
 * atomic counter; the posting side reads it after publishing (both
 * sequentially consistent), so a sleeper is never missed.
 *
 * Built with -DKILN_POOL_STATS, a pool counts where its threads' time goes
 * and prints it to stderr when it is freed: parallel jobs, per thread the
 * chunks and the time in them, the jobs it ran a chunk of and how long
 * after the post it claimed the first (wake-up lag), and the time the
 * caller waited for running chunks after it found none left to claim. */
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rt_internal.h"

#ifdef KILN_POOL_STATS
#include <stdio.h>
#define STATS(...) __VA_ARGS__
#define STATS_MAX 64           /* threads counted */
typedef struct {
	_Alignas(64) int64_t chunks, chunk_ns, lag_ns, joined;   /* joined: jobs it ran a chunk of */
} pool_stats;
#else
#define STATS(...)
#endif

#define SPIN_NS 4000000        /* spin this long before sleeping */
#define YIELD_NS 200000        /* from then on, sched_yield between checks */
#define CHUNKS_PER_THREAD 8    /* a job of many items: about this many chunks per thread */
#define MAX_CHUNKS 0xffff      /* what the ticket's 16-bit fields hold */

/* the ticket's fields */
#define T_GEN(w) ((uint32_t)((w) >> 32))
#define T_CHUNKS(w) ((int)(((w) >> 16) & 0xffff))
#define T_NEXT(w) ((int)((w) & 0xffff))

struct rt_pool {
	int n;                         /* threads, caller included */
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	/* the two words every claim and every finished chunk write, each on
	 * its own cache line (away from the fields that are only read) */
	_Alignas(64) atomic_uint_fast64_t ticket;
	_Alignas(64) atomic_int done_chunks;   /* chunks of this job finished */
	_Alignas(64) atomic_int sleepers;      /* workers asleep on go */
	atomic_int caller_asleep;      /* the caller is asleep on done */
	atomic_bool stop;
	int64_t total;
	void (*fn)(void *, int64_t, int64_t);
	void *arg;
	/* profiling: set between runs, read by the workers after they claimed
	 * a chunk (published before the ticket) */
	struct rt_prof *prof;
	STATS(int64_t jobs, wait_ns; _Atomic int64_t posted; pool_stats st[STATS_MAX];)
};

static _Thread_local bool in_job;

/* [b, e) of chunk i of c over [0, total) */
static void share(int64_t total, int c, int i, int64_t *b, int64_t *e)
{
	*b = total * i / c;
	*e = total * (i + 1) / c;
}

/* How many chunks a job of n items gets on T threads: one per item up to
 * CHUNKS_PER_THREAD per thread (few heavy items, as attention heads or
 * GEMM workers, balance item by item), else that many equal ones. */
int rt_pool_chunks(int64_t n, int T)
{
	int64_t c = (int64_t)T * CHUNKS_PER_THREAD;
	c = n < c ? n : c;
	return (int)(c > MAX_CHUNKS ? MAX_CHUNKS : c < 1 ? 1 : c);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	_mm_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* Called every 256 spins: starts the clock (*t0), yields the CPU past
 * YIELD_NS; true past SPIN_NS. */
static bool spin_expired(int64_t *t0)
{
	int64_t t = now_ns();
	if (!*t0) {
		*t0 = t;
		return false;
	}
	if (t - *t0 > YIELD_NS)
		sched_yield();
	return t - *t0 > SPIN_NS;
}

static uint32_t gen_now(struct rt_pool *p)
{
	return T_GEN(atomic_load_explicit(&p->ticket, memory_order_acquire));
}

/* Spin until the generation differs from seen or stop is set (true), or
 * SPIN_NS passed (false). */
static bool spin_for_job(struct rt_pool *p, uint32_t seen)
{
	int64_t t0 = 0;
	for (unsigned i = 1;; i++) {
		if (gen_now(p) != seen || atomic_load_explicit(&p->stop, memory_order_relaxed))
			return true;
		cpu_relax();
		if ((i & 255) == 0 && spin_expired(&t0))
			return false;
	}
}

/* Claim the next chunk of generation gen: its index, or -1 (another
 * generation, or every chunk claimed). */
static int claim(struct rt_pool *p, uint32_t gen, int *chunks)
{
	uint64_t w = atomic_load_explicit(&p->ticket, memory_order_acquire);
	do {
		if (T_GEN(w) != gen || T_NEXT(w) >= T_CHUNKS(w))
			return -1;
	} while (!atomic_compare_exchange_weak_explicit(&p->ticket, &w, w + 1,
	                                                memory_order_acq_rel,
	                                                memory_order_acquire));
	*chunks = T_CHUNKS(w);
	return T_NEXT(w);
}

/* Run chunks of generation gen until none is left.  A worker (idx > 0)
 * records each chunk in the profile before counting it done (after that
 * the job, and the node it belongs to, may be over). */
static void run_chunks(struct rt_pool *p, uint32_t gen, int idx)
{
	int chunks, i;
	STATS(pool_stats *st = idx < STATS_MAX ? &p->st[idx] : NULL; bool first = true;)
	while ((i = claim(p, gen, &chunks)) >= 0) {
		struct rt_prof *prof = idx > 0 ? p->prof : NULL;
		int64_t t0 = prof ? rt_prof_now() : 0, b, e;
		STATS(int64_t s0 = now_ns();
		      if (st && first) { st->joined++; st->lag_ns += s0 - atomic_load(&p->posted); }
		      first = false;)
		share(p->total, chunks, i, &b, &e);
		p->fn(p->arg, b, e);
		STATS(if (st) { st->chunks++; st->chunk_ns += now_ns() - s0; })
		if (prof)
			rt_prof_job(prof, idx, t0, rt_prof_now());
		if (atomic_fetch_add(&p->done_chunks, 1) + 1 == chunks && idx > 0 &&
		    atomic_load(&p->caller_asleep)) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
}

typedef struct { struct rt_pool *p; int idx; } worker_arg;

static void *worker(void *a)
{
	worker_arg wa = *(worker_arg *)a;
	free(a);
	struct rt_pool *p = wa.p;
	uint32_t seen = 0;
	in_job = true;
	for (;;) {
		if (!spin_for_job(p, seen)) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while (gen_now(p) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->go, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			break;
		seen = gen_now(p);
		run_chunks(p, seen, wa.idx);
	}
	return NULL;
}

struct rt_pool *rt_pool_create(int nthreads)
{
	if (nthreads <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		nthreads = c > 0 ? (int)c : 1;
	}
	if (nthreads > 256)
		nthreads = 256;
	struct rt_pool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->n = 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->go, NULL);
	pthread_cond_init(&p->done, NULL);
	p->th = calloc((size_t)nthreads, sizeof *p->th);
	if (!p->th) {
		rt_pool_free(p);
		return NULL;
	}
	for (int i = 1; i < nthreads; i++) {
		worker_arg *wa = malloc(sizeof *wa);
		if (!wa)
			break;
		wa->p = p;
		wa->idx = i;
		if (pthread_create(&p->th[i], NULL, worker, wa)) {
			free(wa);
			break;
		}
		p->n = i + 1;          /* workers 1..i are running */
	}
	return p;
}

#ifdef KILN_POOL_STATS
static void print_stats(const struct rt_pool *p)
{
	if (!p->jobs)
		return;
	fprintf(stderr, "pool: %d threads, %lld parallel jobs, caller waited %.3f ms for running chunks\n",
	        p->n, (long long)p->jobs, 1e-6 * (double)p->wait_ns);
	for (int i = 0; i < p->n && i < STATS_MAX; i++)
		fprintf(stderr, "pool: thread %d: %lld chunks, %.3f ms in them, a chunk of %lld jobs, "
		        "its first %.1f us after the post on average\n", i, (long long)p->st[i].chunks,
		        1e-6 * (double)p->st[i].chunk_ns, (long long)p->st[i].joined,
		        p->st[i].joined ? 1e-3 * (double)p->st[i].lag_ns / (double)p->st[i].joined : 0.0);
}
#endif

void rt_pool_free(struct rt_pool *p)
{
	if (!p)
		return;
	STATS(print_stats(p);)
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);
	for (int i = 1; i < p->n; i++)
		pthread_join(p->th[i], NULL);
	pthread_cond_destroy(&p->go);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p->th);
	free(p);
}

void rt_pool_set_prof(struct rt_pool *p, struct rt_prof *prof)
{
	if (p)
		p->prof = prof;
}

int rt_pool_size(const struct rt_pool *p)
{
	return p ? p->n : 1;
}

/* Spin, then sleep, until the job's chunks are all done. */
static void wait_done(struct rt_pool *p, int chunks)
{
	int64_t t0 = 0;
	for (unsigned i = 1;
	     atomic_load_explicit(&p->done_chunks, memory_order_acquire) < chunks; i++) {
		cpu_relax();
		if ((i & 255) == 0 && spin_expired(&t0)) {
			pthread_mutex_lock(&p->mu);
			atomic_store(&p->caller_asleep, 1);
			while (atomic_load(&p->done_chunks) < chunks)
				pthread_cond_wait(&p->done, &p->mu);
			atomic_store(&p->caller_asleep, 0);
			pthread_mutex_unlock(&p->mu);
			return;
		}
	}
}

void rt_parallel_for(struct rt_pool *p, int64_t n,
                     void (*fn)(void *arg, int64_t begin, int64_t end), void *arg)
{
	if (n <= 0)
		return;
	if (!p || p->n == 1 || n == 1 || in_job) {
		fn(arg, 0, n);
		return;
	}
	/* the last job is over (every chunk done): nobody reads these until
	 * it claims a chunk of the ticket published below */
	int chunks = rt_pool_chunks(n, p->n);
	p->fn = fn;
	p->arg = arg;
	p->total = n;
	atomic_store_explicit(&p->done_chunks, 0, memory_order_relaxed);
	uint32_t gen = gen_now(p) + 1;
	STATS(p->jobs++; atomic_store(&p->posted, now_ns());)
	atomic_store(&p->ticket, (uint64_t)gen << 32 | (uint64_t)chunks << 16);
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->go);
		pthread_mutex_unlock(&p->mu);
	}
	in_job = true;
	run_chunks(p, gen, 0);
	in_job = false;
	STATS(int64_t w0 = now_ns();)
	wait_done(p, chunks);
	STATS(p->wait_ns += now_ns() - w0;)
}

void rt_par(kiln_frame *f, int64_t n, int64_t cost,
            void (*fn)(void *arg, int64_t begin, int64_t end), void *arg)
{
	/* below ~50us of work the wake-up costs more than it saves */
	if (n <= 0)
		return;
	if (!f || !f->pool || n * (cost > 0 ? cost : 1) < 50000) {
		fn(arg, 0, n);
		return;
	}
	rt_parallel_for(f->pool, n, fn, arg);
}
