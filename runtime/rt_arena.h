/* rt_arena.h: where the planned buffers of a run go in the arena.  The one
 * packing, used by the runtime for each new set of input shapes
 * (rt_core.c) and by `kiln compile --stats` to measure the arena without
 * running the model (backend/plan.c), so the two cannot disagree.
 *
 * Greedy: largest first (ties by buffer index), each at the lowest offset,
 * a multiple of align, that overlaps no placed buffer whose lifetime
 * [first, last] (op indices) intersects its own; a buffer takes its size
 * rounded up to align.  Plain C, no dependencies: the runtime includes
 * nothing of the compiler, and the compiler may include this. */
#ifndef KILN_RT_ARENA_H
#define KILN_RT_ARENA_H

#include <stdint.h>
#include <stdlib.h>

#define RT_ARENA_ALIGN 64    /* every planned buffer's offset is a multiple */

typedef struct rt_arena_item { int64_t size; int32_t idx; } rt_arena_item;

static inline int rt_arena_by_size(const void *a, const void *b)
{
	const rt_arena_item *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static inline int rt_arena_by_start(const void *a, const void *b)
{
	const int64_t *x = a, *y = b;
	return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* size[nb]: bytes of each buffer (>= 0, at most INT64_MAX - align: the
 * callers' size checks see to that); first/last: their lifetimes; align a
 * power of two.  Writes each buffer's offset to off; ord (nb) and iv
 * (2 * nb) are scratch.  Returns the arena's total bytes, -1 if an offset
 * overflows. */
static inline int64_t rt_arena_assign(int32_t nb, const int64_t *size, const int32_t *first,
                                      const int32_t *last, int64_t align, int64_t *off,
                                      rt_arena_item *ord, int64_t *iv)
{
	for (int32_t i = 0; i < nb; i++)
		ord[i] = (rt_arena_item){size[i], i};
	qsort(ord, (size_t)nb, sizeof *ord, rt_arena_by_size);
	int64_t total = 0;
	for (int32_t oi = 0; oi < nb; oi++) {
		int32_t b = ord[oi].idx, niv = 0;
		int64_t sz = (size[b] + align - 1) & ~(align - 1);
		for (int32_t oj = 0; oj < oi; oj++) {
			int32_t p = ord[oj].idx;
			if (first[p] > last[b] || first[b] > last[p] || size[p] == 0)
				continue;
			iv[2 * niv] = off[p];
			iv[2 * niv + 1] = off[p] + ((size[p] + align - 1) & ~(align - 1));
			niv++;
		}
		qsort(iv, (size_t)niv, 2 * sizeof *iv, rt_arena_by_start);
		int64_t o = 0, end;
		for (int32_t k = 0; k < niv && sz > 0; k++) {
			if (iv[2 * k] >= o + sz)
				break;
			if (iv[2 * k + 1] > o)
				o = iv[2 * k + 1];
		}
		if (__builtin_add_overflow(o, sz, &end))
			return -1;
		off[b] = o;
		if (end > total)
			total = end;
	}
	return total;
}

#endif
