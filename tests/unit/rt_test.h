/* rt_test.h: helpers shared by the unit tests that call runtime kernels
 * directly (test_rt_vmath.c, test_passes_numeric.c). */
#ifndef KILN_TESTS_RT_TEST_H
#define KILN_TESTS_RT_TEST_H

#include <string.h>

#include "rt.h"

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

#endif
