/* pool.c: the context's thread pool.  N threads in all: N-1 workers plus
 * the thread that calls rt_parallel_for, which runs the first share.  Work
 * is split statically into N contiguous ranges; one job at a time (a
 * context is used by one thread at a time).  A call made from inside a job
 * (nested) runs serially on the calling thread.
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
 * sequentially consistent), so a sleeper is never missed. */
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

#define SPIN_NS 4000000        /* spin this long before sleeping */
#define YIELD_NS 200000        /* from then on, sched_yield between checks */

struct rt_pool {
	int n;                         /* threads, caller included */
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	atomic_uint_fast64_t gen;      /* job generation */
	atomic_int pending;            /* workers not finished with this job */
	atomic_int sleepers;           /* workers asleep on go */
	atomic_int caller_asleep;      /* the caller is asleep on done */
	atomic_bool stop;
	int64_t total;
	void (*fn)(void *, int64_t, int64_t);
	void *arg;
	/* profiling: set between runs, read by the workers after they see a
	 * new generation (published after it) */
	struct rt_prof *prof;
};

static _Thread_local bool in_job;

static void share(int64_t total, int n, int i, int64_t *b, int64_t *e)
{
	*b = total * i / n;
	*e = total * (i + 1) / n;
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

/* Spin until gen differs from seen or stop is set (true), or SPIN_NS
 * passed (false). */
static bool spin_for_job(struct rt_pool *p, uint64_t seen)
{
	int64_t t0 = 0;
	for (unsigned i = 1;; i++) {
		if (atomic_load_explicit(&p->gen, memory_order_acquire) != seen ||
		    atomic_load_explicit(&p->stop, memory_order_relaxed))
			return true;
		cpu_relax();
		if ((i & 255) == 0 && spin_expired(&t0))
			return false;
	}
}

typedef struct { struct rt_pool *p; int idx; } worker_arg;

static void *worker(void *a)
{
	worker_arg wa = *(worker_arg *)a;
	free(a);
	struct rt_pool *p = wa.p;
	uint64_t seen = 0;
	in_job = true;
	for (;;) {
		if (!spin_for_job(p, seen)) {
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop))
				pthread_cond_wait(&p->go, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
		}
		if (atomic_load(&p->stop))
			break;
		seen = atomic_load_explicit(&p->gen, memory_order_acquire);
		int64_t b, e;
		share(p->total, p->n, wa.idx, &b, &e);
		if (b < e) {
			struct rt_prof *prof = p->prof;
			int64_t t0 = prof ? rt_prof_now() : 0;
			p->fn(p->arg, b, e);
			if (prof)   /* recorded before the caller may read it */
				rt_prof_job(prof, wa.idx, t0, rt_prof_now());
		}
		if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_asleep)) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
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

void rt_pool_free(struct rt_pool *p)
{
	if (!p)
		return;
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

/* Spin, then sleep, until every worker finished the current job. */
static void wait_done(struct rt_pool *p)
{
	int64_t t0 = 0;
	for (unsigned i = 1; atomic_load_explicit(&p->pending, memory_order_acquire) > 0; i++) {
		cpu_relax();
		if ((i & 255) == 0 && spin_expired(&t0)) {
			pthread_mutex_lock(&p->mu);
			atomic_store(&p->caller_asleep, 1);
			while (atomic_load(&p->pending) > 0)
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
	/* workers read fn, arg, total after they see the new generation */
	p->fn = fn;
	p->arg = arg;
	p->total = n;
	atomic_store(&p->pending, p->n - 1);
	atomic_fetch_add(&p->gen, 1);
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->go);
		pthread_mutex_unlock(&p->mu);
	}

	int64_t b, e;
	share(n, p->n, 0, &b, &e);
	in_job = true;
	if (b < e)
		fn(arg, b, e);
	in_job = false;
	wait_done(p);
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
