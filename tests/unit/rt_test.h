/* rt_test.h: helpers shared by the tests that call runtime kernels
 * directly (test_rt_vmath.c, test_passes_numeric.c, and
 * tests/cross/rt_kernels_check.c: plain C, no cmocka). */
#ifndef KILN_TESTS_RT_TEST_H
#define KILN_TESTS_RT_TEST_H

#include <string.h>

#include "rt_internal.h"

/* A tensor as kernels see it: data, rank and up to four dims, dtype. */
static inline rt_t T(void *data, int rank, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                     int32_t dt)
{
	rt_t t;
	memset(&t, 0, sizeof t);
	t.data = data;
	t.dtype = dt;
	t.rank = rank;
	int64_t d[4] = {d0, d1, d2, d3};
	for (int i = 0; i < rank && i < 4; i++)
		t.dims[i] = d[i];
	return t;
}

/* A frame whose kernels split work over a two-thread pool (kept for the
 * whole test program); the other fields zero. */
static kiln_frame *frame(void)
{
	static kiln_frame f;
	static struct rt_pool *pool;
	if (!pool)
		pool = rt_pool_create(2);
	memset(&f, 0, sizeof f);
	f.pool = pool;
	return &f;
}

#endif
