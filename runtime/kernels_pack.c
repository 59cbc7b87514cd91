/* kernels_pack.c: padding-free batches (passes/pack_tokens.c, kiln compile
 * --remove-padding).
 *
 *   KlnPackTokens(x[B,S,H], mask[B,S], cu_seqlens_in[B+1]?) -> y[1,T,H], cu_seqlens[B+1]?
 *       mask (f32, i32, i64 or bool): 1 marks a real token, 0 padding, and
 *       each row's ones come first (right padding); anything else is an
 *       error naming the node (whose name names the mask).  T is the number
 *       of ones; cu_seqlens[b] (int32) the ones in rows 0 .. b-1.  y holds
 *       the real rows of x in order: row cu_seqlens[b] + s is x[b, s].
 *       Given cu_seqlens_in (another pack of the same mask made it), the
 *       mask is not read again.
 *   KlnUnpackTokens(x[1,T,H], cu_seqlens[B+1], mask[B,S]) -> y[B,S,H]
 *       the inverse: y[b, s] = x[cu_seqlens[b] + s] for s below the
 *       sequence's length, zeros at padded positions (S from mask's shape;
 *       its values are not read).
 *
 * The shape function rt_shape_KlnPackTokens (rt.h RT_SHAPE) checks the mask
 * and binds T before the pack runs. */
#include <string.h>

#include "rt_internal.h"

#define OP_PACK "KlnPackTokens"
#define OP_UNPACK "KlnUnpackTokens"

/* mask[i] as 0 or 1, -1 for any other value */
static int mask_at(const rt_t *m, int64_t i)
{
	double v;
	switch (m->dtype) {
	case KILN_F32: v = ((const float *)m->data)[i]; break;
	case KILN_I64: v = (double)((const int64_t *)m->data)[i]; break;
	case KILN_I32: v = ((const int32_t *)m->data)[i]; break;
	case KILN_BOOL: v = ((const unsigned char *)m->data)[i]; break;
	default: return -1;
	}
	return v == 0.0 ? 0 : v == 1.0 ? 1 : -1;
}

static double mask_value(const rt_t *m, int64_t i)
{
	switch (m->dtype) {
	case KILN_F32: return ((const float *)m->data)[i];
	case KILN_I64: return (double)((const int64_t *)m->data)[i];
	case KILN_I32: return ((const int32_t *)m->data)[i];
	default: return ((const unsigned char *)m->data)[i];
	}
}

/* Checks the mask [B, S] and writes the offsets of its rows' real tokens
 * into cu[0..B] (when not NULL); *T their count. */
static int mask_offsets(kiln_frame *f, const char *loc, const rt_t *m, int32_t *cu, int64_t *T)
{
	if (m->rank != 2)
		return rt_error(f, "node '%s' (%s): mask must have rank 2 [batch, seq], not %d", loc, OP_PACK,
		                m->rank);
	if (m->dtype != KILN_F32 && m->dtype != KILN_I64 && m->dtype != KILN_I32 && m->dtype != KILN_BOOL)
		return rt_bad_dtype(f, loc, OP_PACK, m->dtype);
	int64_t B = m->dims[0], S = m->dims[1], t = 0;
	if (cu)
		cu[0] = 0;
	for (int64_t b = 0; b < B; b++) {
		int64_t len = 0;
		for (int64_t s = 0; s < S; s++) {
			int v = mask_at(m, b * S + s);
			if (v < 0)
				return rt_error(f, "node '%s' (%s): mask value %g at [%lld, %lld] is not 0 or 1 "
				                "(--remove-padding needs a 0/1 key-padding mask)", loc, OP_PACK,
				                mask_value(m, b * S + s), (long long)b, (long long)s);
			if (v && len < s)
				return rt_error(f, "node '%s' (%s): mask row %lld is not right-padded: 0 at "
				                "position %lld before a 1 at %lld (--remove-padding needs each "
				                "row's real tokens first)", loc, OP_PACK, (long long)b,
				                (long long)len, (long long)s);
			len += v;
		}
		t += len;
		if (t > INT32_MAX)
			return rt_error(f, "node '%s' (%s): more than 2^31-1 real tokens", loc, OP_PACK);
		if (cu)
			cu[b + 1] = (int32_t)t;
	}
	*T = t;
	return 0;
}

/* cu [B+1] must be offsets 0 <= .. <= T with steps of at most S. */
static int check_offsets(kiln_frame *f, const char *loc, const char *op, const rt_t *cu, int64_t B,
                         int64_t S, int64_t T)
{
	if (cu->dtype != KILN_I32 || cu->rank != 1 || cu->dims[0] != B + 1)
		return rt_error(f, "node '%s' (%s): cu_seqlens must be i32 [%lld]", loc, op, (long long)(B + 1));
	const int32_t *c = cu->data;
	if (c[0] != 0 || c[B] != T)
		return rt_error(f, "node '%s' (%s): cu_seqlens runs from %d to %d, not 0 to %lld", loc, op,
		                c[0], c[B], (long long)T);
	for (int64_t b = 0; b < B; b++)
		if (c[b + 1] < c[b] || c[b + 1] - c[b] > S)
			return rt_error(f, "node '%s' (%s): cu_seqlens: sequence %lld has length %lld, not 0 to %lld",
			                loc, op, (long long)b, (long long)c[b + 1] - c[b], (long long)S);
	return 0;
}

RT_SHAPE(KlnPackTokens)
{
	(void)ia; (void)nia; (void)fa; (void)nfa;
	if (nin < 2 || nout < 1)
		return rt_error(f, "node '%s' (%s): bad arity", loc, OP_PACK);
	int64_t T;
	if (mask_offsets(f, loc, &in[1], NULL, &T))
		return 1;
	out[0].dims[0] = 1;
	out[0].dims[1] = T;
	out[0].dims[2] = in[0].rank == 3 ? in[0].dims[2] : 0;
	if (nout > 1 && out[1].rank == 1)
		out[1].dims[0] = in[1].dims[0] + 1;
	return 0;
}

RT_KERNEL(KlnPackTokens)
{
	(void)ia; (void)nia; (void)fa; (void)nfa;
	if (nin < 2 || nout < 1)
		return rt_error(f, "node '%s' (%s): bad arity", loc, OP_PACK);
	const rt_t *x = &in[0], *m = &in[1];
	rt_t *y = &out[0];
	if (x->dtype != KILN_F32 || y->dtype != KILN_F32 || x->rank != 3 || y->rank != 3 || m->rank != 2 ||
	    x->dims[0] != m->dims[0] || x->dims[1] != m->dims[1] || y->dims[0] != 1 ||
	    y->dims[2] != x->dims[2])
		return rt_error(f, "node '%s' (%s): x must be f32 [B, S, H] with mask [B, S], y [1, T, H]",
		                loc, OP_PACK);
	int64_t B = x->dims[0], S = x->dims[1], H = x->dims[2], T = y->dims[1];
	const int32_t *cu;
	if (nin > 2 && in[2].data) {
		if (check_offsets(f, loc, OP_PACK, &in[2], B, S, T))
			return 1;
		cu = in[2].data;
	} else {
		if (nout < 2 || !out[1].data || out[1].dtype != KILN_I32 || out[1].rank != 1 ||
		    out[1].dims[0] != B + 1)
			return rt_error(f, "node '%s' (%s): needs cu_seqlens_in or a cu_seqlens output i32 [%lld]",
			                loc, OP_PACK, (long long)(B + 1));
		int64_t t;
		if (mask_offsets(f, loc, m, out[1].data, &t))
			return 1;
		if (t != T)
			return rt_error(f, "node '%s' (%s): the mask has %lld real tokens, the output %lld rows",
			                loc, OP_PACK, (long long)t, (long long)T);
		cu = out[1].data;
	}
	const float *xs = x->data;
	float *yd = y->data;
	for (int64_t b = 0; b < B; b++) {
		int64_t len = cu[b + 1] - cu[b];
		if (len > 0)
			memcpy(yd + (int64_t)cu[b] * H, xs + b * S * H, (size_t)(len * H) * sizeof(float));
	}
	return 0;
}

RT_KERNEL(KlnUnpackTokens)
{
	(void)ia; (void)nia; (void)fa; (void)nfa;
	if (nin < 3 || nout < 1)
		return rt_error(f, "node '%s' (%s): bad arity", loc, OP_UNPACK);
	const rt_t *x = &in[0], *m = &in[2];
	rt_t *y = &out[0];
	if (x->dtype != KILN_F32 || y->dtype != KILN_F32 || x->rank != 3 || y->rank != 3 || m->rank != 2 ||
	    x->dims[0] != 1 || y->dims[0] != m->dims[0] || y->dims[1] != m->dims[1] ||
	    y->dims[2] != x->dims[2])
		return rt_error(f, "node '%s' (%s): x must be f32 [1, T, H], y [B, S, H] with mask [B, S]",
		                loc, OP_UNPACK);
	int64_t B = y->dims[0], S = y->dims[1], H = y->dims[2];
	if (check_offsets(f, loc, OP_UNPACK, &in[1], B, S, x->dims[1]))
		return 1;
	const int32_t *cu = in[1].data;
	const float *xs = x->data;
	float *yd = y->data;
	for (int64_t b = 0; b < B; b++) {
		int64_t len = cu[b + 1] - cu[b];
		float *row = yd + b * S * H;
		if (len > 0)
			memcpy(row, xs + (int64_t)cu[b] * H, (size_t)(len * H) * sizeof(float));
		if (S > len)
			memset(row + len * H, 0, (size_t)((S - len) * H) * sizeof(float));
	}
	return 0;
}
