/* test_rt_pool.c: the thread pool (runtime/pool.c).  rt_parallel_for on
 * 1..4 threads covers every index exactly once, in the contiguous chunks
 * rt_pool_chunks names; thousands of back-to-back jobs of changing sizes
 * (workers that wake late must not run a chunk of a job that is over, nor
 * one twice); jobs after the workers went to sleep; nested calls run
 * serially; and the caller runs the chunks a busy worker cannot take (a
 * worker blocked in its first chunk until the caller ran all the others:
 * a split that left the caller waiting for the worker's share times out). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "rt_internal.h"

#define NMAX 200000

typedef struct {
	int64_t n;
	atomic_int *hits;          /* [n] */
	atomic_int calls;          /* fn calls */
	atomic_int bad;            /* a range not on a chunk boundary, or empty */
	int chunks;                /* rt_pool_chunks(n, T) */
	atomic_int inner;          /* nested rt_parallel_for calls that ran serially */
	struct rt_pool *p;
} cover_job;

/* is [b, e) chunk i of c over [0, n) for some i? */
static int on_boundary(int64_t n, int c, int64_t b, int64_t e)
{
	int64_t i = b * c / n;    /* chunk i starts at n * i / c <= b */
	for (int64_t k = i > 0 ? i - 1 : 0; k <= i + 1 && k < c; k++)
		if (n * k / c == b && n * (k + 1) / c == e)
			return 1;
	return 0;
}

static void cover(void *arg, int64_t b, int64_t e)
{
	cover_job *j = arg;
	atomic_fetch_add(&j->calls, 1);
	if (b >= e || !on_boundary(j->n, j->chunks, b, e))
		atomic_fetch_add(&j->bad, 1);
	for (int64_t i = b; i < e; i++)
		atomic_fetch_add_explicit(&j->hits[i], 1, memory_order_relaxed);
}

/* run a job of n items on p (T threads) and check it */
static void run_cover(struct rt_pool *p, int T, int64_t n, atomic_int *hits)
{
	cover_job j = { .n = n, .hits = hits, .chunks = T == 1 ? 1 : rt_pool_chunks(n, T) };
	for (int64_t i = 0; i < n; i++)
		atomic_store_explicit(&hits[i], 0, memory_order_relaxed);
	rt_parallel_for(p, n, cover, &j);
	for (int64_t i = 0; i < n; i++)
		if (atomic_load_explicit(&hits[i], memory_order_relaxed) != 1)
			fail_msg("T %d n %lld: index %lld hit %d times", T, (long long)n,
			         (long long)i, atomic_load(&hits[i]));
	if (atomic_load(&j.bad))
		fail_msg("T %d n %lld: %d calls off the %d chunks' bounds", T, (long long)n,
		         atomic_load(&j.bad), j.chunks);
	/* serial (one thread, or n == 1): one call over everything */
	int want = T == 1 || n == 1 ? 1 : j.chunks;
	assert_int_equal(atomic_load(&j.calls), want);
}

static void test_chunks(void **state)
{
	(void)state;
	assert_int_equal(rt_pool_chunks(1, 2), 1);
	assert_int_equal(rt_pool_chunks(3, 4), 3);        /* fewer items than threads */
	assert_int_equal(rt_pool_chunks(12, 2), 12);      /* few items: one chunk each */
	assert_int_equal(rt_pool_chunks(100000, 2), 16);  /* many: 8 a thread */
	assert_int_equal(rt_pool_chunks((int64_t)1 << 40, 100000), 0xffff);  /* the ticket's limit */
}

static void test_cover(void **state)
{
	(void)state;
	atomic_int *hits = calloc(NMAX, sizeof *hits);
	assert_non_null(hits);
	static const int64_t big[] = { 15, 16, 17, 31, 33, 1000, 4097, NMAX };
	for (int T = 1; T <= 4; T++) {
		struct rt_pool *p = rt_pool_create(T);
		assert_non_null(p);
		assert_int_equal(rt_pool_size(p), T);
		for (int64_t n = 1; n <= 70; n++)
			run_cover(p, T, n, hits);
		for (size_t k = 0; k < sizeof big / sizeof *big; k++)
			run_cover(p, T, big[k], hits);
		rt_pool_free(p);
	}
	free(hits);
}

/* Many jobs back to back, sizes changing every time: a worker that saw
 * generation g late must not claim a chunk of g + 1 with g's count. */
static void test_back_to_back(void **state)
{
	(void)state;
	atomic_int *hits = calloc(4096, sizeof *hits);
	assert_non_null(hits);
	for (int T = 2; T <= 4; T++) {
		struct rt_pool *p = rt_pool_create(T);
		assert_non_null(p);
		uint32_t r = 12345;
		for (int k = 0; k < 3000; k++) {
			r = r * 1103515245u + 12345u;
			run_cover(p, T, 1 + (r >> 8) % (k & 1 ? 4096 : 9), hits);
		}
		rt_pool_free(p);
	}
	free(hits);
}

/* After the workers fell asleep (they spin about 4 ms first). */
static void test_after_sleep(void **state)
{
	(void)state;
	atomic_int hits[64];
	struct rt_pool *p = rt_pool_create(3);
	assert_non_null(p);
	for (int k = 0; k < 4; k++) {
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
		run_cover(p, 3, 64, hits);
	}
	rt_pool_free(p);
}

static void nested_inner(void *arg, int64_t b, int64_t e)
{
	cover_job *j = arg;
	atomic_fetch_add(&j->inner, 1);   /* one call: serial */
	(void)b, (void)e;
}

static void nested_outer(void *arg, int64_t b, int64_t e)
{
	cover_job *j = arg;
	for (int64_t i = b; i < e; i++) {
		cover_job in = { 0 };
		rt_parallel_for(j->p, 100, nested_inner, &in);
		if (atomic_load(&in.inner) != 1)   /* checked by the test's thread */
			atomic_fetch_add(&j->bad, 1);
		atomic_fetch_add(&j->hits[i], 1);
	}
}

static void test_nested(void **state)
{
	(void)state;
	atomic_int hits[40] = { 0 };
	struct rt_pool *p = rt_pool_create(2);
	assert_non_null(p);
	cover_job j = { .n = 40, .hits = hits, .p = p };
	rt_parallel_for(p, 40, nested_outer, &j);
	assert_int_equal(atomic_load(&j.bad), 0);
	for (int i = 0; i < 40; i++)
		assert_int_equal(atomic_load(&hits[i]), 1);
	rt_pool_free(p);
}

/* ---- the caller takes the chunks a busy worker cannot ---- */

typedef struct {
	pthread_t caller;
	int chunks;
	atomic_int by_caller, blocked, timed_out;
} busy_job;

static void busy(void *arg, int64_t b, int64_t e)
{
	busy_job *j = arg;
	(void)b, (void)e;
	if (pthread_equal(pthread_self(), j->caller)) {
		atomic_fetch_add(&j->by_caller, 1);
		return;
	}
	/* a worker: hold this chunk until every other chunk ran on the
	 * caller (at most 10 s) */
	atomic_fetch_add(&j->blocked, 1);
	for (int ms = 0; atomic_load(&j->by_caller) + atomic_load(&j->blocked) < j->chunks; ms++) {
		if (ms > 10000) {
			atomic_store(&j->timed_out, 1);
			return;
		}
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
}

static void test_caller_not_idle(void **state)
{
	(void)state;
	for (int T = 2; T <= 4; T++) {
		struct rt_pool *p = rt_pool_create(T);
		assert_non_null(p);
		for (int rep = 0; rep < 3; rep++) {
			busy_job j = { .caller = pthread_self(), .chunks = rt_pool_chunks(64, T) };
			rt_parallel_for(p, 64, busy, &j);
			assert_int_equal(atomic_load(&j.timed_out), 0);
			assert_int_equal(atomic_load(&j.by_caller) + atomic_load(&j.blocked), j.chunks);
			assert_true(atomic_load(&j.blocked) <= T - 1);
		}
		rt_pool_free(p);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chunks),
		cmocka_unit_test(test_cover),
		cmocka_unit_test(test_back_to_back),
		cmocka_unit_test(test_after_sleep),
		cmocka_unit_test(test_nested),
		cmocka_unit_test(test_caller_not_idle),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
