/* pool.c: the context's thread pool.  N threads in all: N-1 workers plus
 * the thread that calls rt_parallel_for, which runs the first share.  Work
 * is split statically into N contiguous ranges; one job at a time (a
 * context is used by one thread at a time).  A call made from inside a job
 * (nested) runs serially on the calling thread. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "rt_internal.h"

struct rt_pool {
	int n;                         /* threads, caller included */
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t go, done;
	uint64_t gen;                  /* job generation */
	int pending;                   /* workers not finished with this job */
	bool stop;
	int64_t total;
	void (*fn)(void *, int64_t, int64_t);
	void *arg;
};

static _Thread_local bool in_job;

static void share(int64_t total, int n, int i, int64_t *b, int64_t *e)
{
	*b = total * i / n;
	*e = total * (i + 1) / n;
}

typedef struct { struct rt_pool *p; int idx; } worker_arg;

static void *worker(void *a)
{
	worker_arg wa = *(worker_arg *)a;
	free(a);
	struct rt_pool *p = wa.p;
	uint64_t seen = 0;
	in_job = true;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		while (p->gen == seen && !p->stop)
			pthread_cond_wait(&p->go, &p->mu);
		if (p->stop)
			break;
		seen = p->gen;
		int64_t b, e;
		share(p->total, p->n, wa.idx, &b, &e);
		void (*fn)(void *, int64_t, int64_t) = p->fn;
		void *arg = p->arg;
		pthread_mutex_unlock(&p->mu);
		if (b < e)
			fn(arg, b, e);
		pthread_mutex_lock(&p->mu);
		if (--p->pending == 0)
			pthread_cond_signal(&p->done);
	}
	pthread_mutex_unlock(&p->mu);
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
	p->stop = true;
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

int rt_pool_size(const struct rt_pool *p)
{
	return p ? p->n : 1;
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
	pthread_mutex_lock(&p->mu);
	p->fn = fn;
	p->arg = arg;
	p->total = n;
	p->pending = p->n - 1;
	p->gen++;
	pthread_cond_broadcast(&p->go);
	pthread_mutex_unlock(&p->mu);

	int64_t b, e;
	share(n, p->n, 0, &b, &e);
	in_job = true;
	if (b < e)
		fn(arg, b, e);
	in_job = false;

	pthread_mutex_lock(&p->mu);
	while (p->pending > 0)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
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
