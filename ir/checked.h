/* checked.h: overflow-checked size arithmetic for the compiler (ir/,
 * passes/, backend/, tools/).  Element counts and byte sizes are computed
 * only through these, so a size that does not fit in 64 bits is an error
 * (a value), never a wrapped number.
 *
 * The runtime cannot include ir/ (runtime/rt_internal.h has its own copy
 * of the two helpers, rt_ck_*); keep the rules below the same there.
 *
 * The size limit: a tensor's dims, with zero dims counted as 1, times its
 * element size must be at most the limit (default IR_MAX_TENSOR_BYTES,
 * `kiln compile --max-tensor-bytes=N`, Graph.max_tensor_bytes).  Counting
 * zeros as 1 bounds every partial product of the dims (strides, offsets),
 * not only the element count. */
#ifndef KILN_IR_CHECKED_H
#define KILN_IR_CHECKED_H

#include <stdbool.h>
#include <stdint.h>

/* 64 GiB: far above any transformer activation (BERT-large's attention
 * scores at batch 64, sequence 512 are 1 GiB), far below 2^63. */
#define IR_MAX_TENSOR_BYTES ((int64_t)64 << 30)

/* *r = a * b; false (and *r unspecified) when it overflows int64. */
static inline bool ck_mul_i64(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

static inline bool ck_add_i64(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

static inline bool ck_sub_i64(int64_t a, int64_t b, int64_t *r)
{
	return !__builtin_sub_overflow(a, b, r);
}

/* The product of dims[0..rank) with zeros counted as 1 (*bound) and the
 * element count (*numel, 0 when a dim is 0).  false when a dim is negative
 * or the product overflows. */
static inline bool ck_dims(int rank, const int64_t *dims, int64_t *bound, int64_t *numel)
{
	int64_t b = 1;
	bool zero = false;
	for (int i = 0; i < rank; i++) {
		if (dims[i] < 0)
			return false;
		zero = zero || dims[i] == 0;
		if (!ck_mul_i64(b, dims[i] ? dims[i] : 1, &b))
			return false;
	}
	*bound = b;
	*numel = zero ? 0 : b;
	return true;
}

/* Whether a tensor of these dims and element size fits the limit (0: the
 * default); *bytes gets its byte size when it does. */
static inline bool ck_tensor_fits(int rank, const int64_t *dims, int64_t esize, int64_t limit,
                                  int64_t *bytes)
{
	int64_t bound, numel, bb;
	if (limit <= 0)
		limit = IR_MAX_TENSOR_BYTES;
	if (!ck_dims(rank, dims, &bound, &numel) || !ck_mul_i64(bound, esize, &bb) || bb > limit)
		return false;
	if (bytes)
		*bytes = numel * esize;
	return true;
}

#endif
