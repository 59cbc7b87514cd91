/* Shape inference of Slice and Range: output lengths as clamped symbolic
 * arithmetic (ONNX semantics), folded when constant.
 *
 * Slice, step > 0:  s' = clamp(s < 0 ? s + d : s, 0, d), likewise e',
 *                   (only max(s', 0) and min(e', d) are needed, see below)
 *                   len = ceil(max(e' - s', 0) / step)
 * Slice, step < 0:  s' = clamp(s < 0 ? s + d : s, 0, d - 1),
 *                   e' = clamp(e < 0 ? e + d : e, -1, d - 1),
 *                   len = ceil(max(s' - e', 0) / -step)
 * A symbolic start/end is taken as non-negative unless it is provably
 * <= 0.  Constant ends at or beyond +-2^31 mean "to the end" (exporters
 * write INT64_MAX, INT32_MAX and friends there).
 * Range: len = max(ceil((limit - start) / delta), 0).
 * When a start, end, axis or step (Slice) or the start, limit or delta
 * (Range) is only known at run time, every extent of the output is a
 * data-dependent symbol (ir_shp_dyn) the node binds at run time. */
#include <string.h>

#include "checked.h"
#include "ir.h"
#include "shape_internal.h"

#define BIG ((int64_t)INT32_MAX)

static DimId C(Sh *s, int64_t c)
{
	return ir_dim_const(s->g, c);
}

static DimId clamp(Sh *s, DimId x, DimId lo, DimId hi)
{
	return ir_dim_min(s->g, ir_dim_max(s->g, x, lo), hi);
}

/* Is x provably <= 0 (and not 0)?  Used to pick the negative-index branch. */
static bool is_negative(Sh *s, DimId x)
{
	int64_t c;
	if (ir_dim_is_const(s->g, x, &c))
		return c < 0;
	return ir_dim_max(s->g, x, C(s, 0)) == C(s, 0);
}

/* Start or end index normalized against dim d, before clamping. */
static DimId norm_index(Sh *s, DimId x, DimId d, bool *huge_pos, bool *huge_neg)
{
	int64_t c;
	*huge_pos = *huge_neg = false;
	if (ir_dim_is_const(s->g, x, &c)) {
		*huge_pos = c >= BIG;
		*huge_neg = c <= -BIG;
		if (*huge_pos || *huge_neg)
			return x;
	}
	return is_negative(s, x) ? ir_dim_add(s->g, x, d) : x;
}

static DimId ceil_div(Sh *s, DimId a, int64_t k)
{
	int64_t c;
	if (k == 1)
		return a;
	if (ir_dim_is_const(s->g, a, &c) && c >= 0)   /* a + k - 1 could wrap */
		return C(s, c / k + (c % k != 0));
	return ir_dim_div(s->g, ir_dim_add(s->g, a, C(s, k - 1)), C(s, k));
}

static DimId slice_len(Sh *s, DimId d, DimId st, DimId en, int64_t step)
{
	bool hp, hn;
	DimId a = norm_index(s, st, d, &hp, &hn), b;
	if (step > 0) {
		/* end <= d makes start's upper clamp and start >= 0 end's lower
		 * clamp redundant under the final max(., 0) */
		a = hp ? d : hn ? C(s, 0) : ir_dim_max(s->g, a, C(s, 0));
		b = norm_index(s, en, d, &hp, &hn);
		b = hp ? d : hn ? C(s, 0) : ir_dim_min(s->g, b, d);
		return ceil_div(s, ir_dim_max(s->g, ir_dim_sub(s->g, b, a), C(s, 0)), step);
	}
	DimId last = ir_dim_sub(s->g, d, C(s, 1));
	/* a huge negative start clamps to 0, but to -1 (nothing) on a dim of 0 */
	a = hp ? last : hn ? ir_dim_min(s->g, C(s, 0), last) : clamp(s, a, C(s, 0), last);
	b = norm_index(s, en, d, &hp, &hn);
	b = hp ? last : hn ? C(s, -1) : ir_dim_max(s->g, b, C(s, -1));   /* upper clamp redundant */
	return ceil_div(s, ir_dim_max(s->g, ir_dim_sub(s->g, a, b), C(s, 0)), -step);
}

int ir_shp_slice(Sh *s)
{
	const Value *x;
	DimId st[SH_MAX_SVAL], en[SH_MAX_SVAL];
	int64_t ax[SH_MAX_SVAL], steps[SH_MAX_SVAL];
	if (ir_shp_need(s, 0, &x))
		return -1;
	int ns = ir_shp_getsval(s, 1, st, SH_MAX_SVAL), ne = ir_shp_getsval(s, 2, en, SH_MAX_SVAL);
	bool known = ns >= 0 && ne >= 0;
	DimId tmp[SH_MAX_SVAL];
	for (int k = 3; k <= 4; k++)
		if (ir_shp_in(s, k) && ir_shp_getsval(s, k, tmp, SH_MAX_SVAL) < 0)
			known = false;
	if (!known) {   /* data-dependent */
		ir_shp_dyn_out(s, 0, x->dtype, x->rank);
		return 0;
	}
	if (ns != ne)
		return ir_shp_fail(s, "%d starts but %d ends", ns, ne);
	int n = ns;
	if (ir_shp_in(s, 3)) {
		if (ir_shp_ints(s, 3, ax, SH_MAX_SVAL, "axes") != n)
			return ir_shp_fail(s, "axes and starts differ in length");
	} else {
		for (int i = 0; i < n; i++)
			ax[i] = i;
	}
	if (ir_shp_in(s, 4)) {
		if (ir_shp_ints(s, 4, steps, SH_MAX_SVAL, "steps") != n)
			return ir_shp_fail(s, "steps and starts differ in length");
	} else {
		for (int i = 0; i < n; i++)
			steps[i] = 1;
	}
	DimId out[IR_MAX_RANK];
	memcpy(out, x->dims, sizeof(DimId) * (size_t)x->rank);
	bool seen[IR_MAX_RANK] = { 0 };
	for (int i = 0; i < n; i++) {
		int a;
		if (ir_shp_axis(s, ax[i], x->rank, &a))
			return -1;
		if (seen[a])
			return ir_shp_fail(s, "axis %d repeated", a);
		if (steps[i] == 0)
			return ir_shp_fail(s, "step 0");
		if (steps[i] == INT64_MIN)
			return ir_shp_fail(s, "step out of range");
		seen[a] = true;
		out[a] = slice_len(s, x->dims[a], st[i], en[i], steps[i]);
	}
	ir_shp_out(s, 0, x->dtype, x->rank, out);
	/* content of a sliced 1-D shape vector (constant bounds) */
	DimId xv[SH_MAX_SVAL], res[SH_MAX_SVAL];
	int64_t len, b0, c;
	if (x->rank != 1 || n != 1 || ir_shp_getsval(s, 0, xv, SH_MAX_SVAL) < 0 ||
	    !ir_dim_is_const(s->g, out[0], &len))
		return 0;
	/* the first index taken: recompute the clamped start */
	int64_t d = 0;
	if (!ir_dim_is_const(s->g, x->dims[0], &d) || !ir_dim_is_const(s->g, st[0], &c))
		return 0;
	if (steps[0] > 0)
		b0 = c < 0 ? (c + d < 0 ? 0 : c + d) : (c > d ? d : c);
	else
		b0 = c < 0 ? (c + d < 0 ? 0 : c + d) : (c > d - 1 ? d - 1 : c);
	for (int64_t i = 0; i < len; i++) {
		int64_t k = b0 + i * steps[0];
		if (k < 0 || k >= d)
			return 0;
		res[i] = xv[k];
	}
	ir_shp_sval(s, 0, (int)len, res);
	return 0;
}

/* A scalar input as a dim: symbolic content, or an integral float constant. */
static bool scalar_dim(Sh *s, int i, DimId *d)
{
	if (ir_shp_getsval(s, i, d, 1) == 1)
		return true;
	const Value *v = ir_shp_in(s, i);
	double x;
	if (!v || v->kind != V_CONST || !v->data)
		return false;
	if (v->dtype == DT_F32 && v->nbytes >= 4) {
		float f;
		memcpy(&f, v->data, 4);
		x = f;
	} else if (v->dtype == DT_F64 && v->nbytes >= 8) {
		memcpy(&x, v->data, 8);
	} else {
		return false;
	}
	if (!(x >= -9e15 && x <= 9e15) || x != (double)(int64_t)x)
		return false;
	*d = C(s, (int64_t)x);
	return true;
}

int ir_shp_range(Sh *s)
{
	const Value *a, *b, *c;
	if (ir_shp_need(s, 0, &a) || ir_shp_need(s, 1, &b) || ir_shp_need(s, 2, &c))
		return -1;
	if (a->dtype != b->dtype || a->dtype != c->dtype)
		return ir_shp_fail(s, "start, limit and delta differ in dtype");
	DimId v[3];
	int64_t delta;
	bool known = true;
	for (int i = 0; i < 3; i++)
		known = known && scalar_dim(s, i, &v[i]);
	if (!known || !ir_dim_is_const(s->g, v[2], &delta)) {   /* data-dependent length */
		ir_shp_dyn_out(s, 0, a->dtype, 1);
		return 0;
	}
	if (delta == 0 || delta == INT64_MIN)
		return ir_shp_fail(s, "delta %lld", (long long)delta);
	int64_t c0, c1, cspan;   /* constant bounds: limit - start must not wrap */
	if (ir_dim_is_const(s->g, v[0], &c0) && ir_dim_is_const(s->g, v[1], &c1) &&
	    !(delta > 0 ? ck_sub_i64(c1, c0, &cspan) : ck_sub_i64(c0, c1, &cspan)))
		return ir_shp_fail(s, "start %lld and limit %lld: the length overflows 64 bits",
		                   (long long)c0, (long long)c1);
	DimId span = delta > 0 ? ir_dim_sub(s->g, v[1], v[0]) : ir_dim_sub(s->g, v[0], v[1]);
	DimId len = ceil_div(s, span, delta > 0 ? delta : -delta);
	len = ir_dim_max(s->g, len, C(s, 0));
	ir_shp_out(s, 0, a->dtype, 1, &len);
	int64_t n;
	if (ir_dim_is_const(s->g, len, &n) && n <= SH_MAX_SVAL && ir_dtype_is_int(a->dtype)) {
		DimId res[SH_MAX_SVAL];
		for (int64_t i = 0; i < n; i++)
			res[i] = ir_dim_add(s->g, v[0], C(s, i * delta));
		ir_shp_sval(s, 0, (int)n, res);
	}
	return 0;
}
