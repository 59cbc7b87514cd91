/* Shape inference of the shape and layout ops (K_SHAPE in ops.def): Shape,
 * Size, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, Expand, Concat,
 * Split, Gather*, ScatterND, TopK, Tile, Pad, ConstantOfShape, EyeLike, OneHot, Trilu.  Slice and
 * Range live in shape_slice.c.
 *
 * Where an output's shape comes from the content of an input (Reshape's
 * shape, Expand, Tile, Pad's pads and axes, TopK's K, ConstantOfShape, Squeeze/Unsqueeze axes, Split's
 * split, OneHot's depth) and that content is not known symbolically (sval
 * or constant data), the output's rank comes from the input's static
 * length and its extents are data-dependent symbols (ir_shp_dyn) that the
 * node binds at run time; a length that is not static is refused. */
#include <string.h>

#include "ir.h"
#include "checked.h"
#include "shape_internal.h"

int ir_shp_slice(Sh *s);
int ir_shp_range(Sh *s);

/* Axes from input `in` (when present, opset 13+) or attribute `attr`.
 * *n = -1 when neither is given; an axes input whose content is only
 * known at run time: *n = -2 - its static length. */
static int get_axes(Sh *s, int in, const char *attr, int64_t *ax, int *n)
{
	if (ir_shp_in(s, in)) {
		DimId e[SH_MAX_SVAL];
		if (ir_shp_getsval(s, in, e, IR_MAX_RANK * 2) < 0) {
			int len = ir_shp_len(s, in, "axes", IR_MAX_RANK);
			*n = -2 - len;
			return len < 0 ? -1 : 0;
		}
		*n = ir_shp_ints(s, in, ax, IR_MAX_RANK * 2, "axes");
		return *n < 0 ? -1 : 0;
	}
	int cnt = 0;
	const int64_t *a = ir_attr_ints(s->g, s->id, attr, &cnt);
	if (!a) {
		*n = -1;
		return 0;
	}
	if (cnt > IR_MAX_RANK * 2)
		return ir_shp_fail(s, "too many axes");
	memcpy(ax, a, sizeof(int64_t) * (size_t)cnt);
	*n = cnt;
	return 0;
}

/* Passes the input's symbolic content through a reshaping op. */
static void pass_sval(Sh *s)
{
	DimId e[SH_MAX_SVAL];
	int n = ir_shp_getsval(s, 0, e, SH_MAX_SVAL);
	if (n >= 0)
		ir_shp_sval(s, 0, n, e);
}

static int infer_shape(Sh *s)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	int r = x->rank;
	int64_t a = ir_attr_int(s->g, s->id, "start", 0), b = ir_attr_int(s->g, s->id, "end", r);
	if (a < 0)
		a += r;
	if (b < 0)
		b += r;
	a = a < 0 ? 0 : a > r ? r : a;
	b = b < 0 ? 0 : b > r ? r : b;
	int n = b > a ? (int)(b - a) : 0;
	DimId d = ir_dim_const(s->g, n);
	ir_shp_out(s, 0, DT_I64, 1, &d);
	ir_shp_sval(s, 0, n, x->dims + a);
	return 0;
}

static int infer_size(Sh *s)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	DimId n = ir_shp_numel(s, x);
	ir_shp_out(s, 0, DT_I64, 0, NULL);
	ir_shp_sval(s, 0, 1, &n);
	return 0;
}

static int infer_reshape(Sh *s)
{
	const Value *x;
	DimId e[SH_MAX_SVAL], out[IR_MAX_RANK];
	if (ir_shp_need(s, 0, &x))
		return -1;
	int n = ir_shp_getsval(s, 1, e, SH_MAX_SVAL);
	if (n < 0) {   /* data-dependent: the rank is the shape's length */
		if ((n = ir_shp_len(s, 1, "shape", IR_MAX_RANK)) < 0)
			return -1;
		ir_shp_dyn_out(s, 0, x->dtype, n);
		return 0;
	}
	if (n > IR_MAX_RANK)
		return ir_shp_fail(s, "target rank %d exceeds %d", n, IR_MAX_RANK);
	bool allowzero = ir_attr_int(s->g, s->id, "allowzero", 0) != 0;
	int neg = -1;
	DimId known = ir_dim_const(s->g, 1);
	for (int i = 0; i < n; i++) {
		int64_t c;
		out[i] = e[i];
		if (ir_dim_is_const(s->g, e[i], &c)) {
			if (c == 0 && !allowzero) {
				if (i >= x->rank)
					return ir_shp_fail(s, "shape element %d is 0 (copy) but the input has rank %d", i, x->rank);
				out[i] = x->dims[i];
			} else if (c == -1) {
				if (neg >= 0)
					return ir_shp_fail(s, "more than one -1 in the target shape");
				neg = i;
				continue;
			} else if (c < -1) {
				return ir_shp_fail(s, "invalid target dim %lld", (long long)c);
			}
		}
		known = ir_dim_mul(s->g, known, out[i]);
	}
	DimId total = ir_shp_numel(s, x);
	int64_t ct, ck;
	bool kt = ir_dim_is_const(s->g, total, &ct), kk = ir_dim_is_const(s->g, known, &ck);
	if (neg >= 0) {
		if (kk && ck == 0)
			return ir_shp_fail(s, "-1 with a zero-sized rest of the shape");
		if (kt && kk && ct % ck != 0)
			return ir_shp_fail(s, "cannot reshape %lld elements with %lld per -1 slot", (long long)ct,
			                   (long long)ck);
		out[neg] = ir_dim_div(s->g, total, known);
	} else if (kt && kk && ct != ck) {
		return ir_shp_fail(s, "cannot reshape %lld elements into %lld", (long long)ct, (long long)ck);
	}
	ir_shp_out(s, 0, x->dtype, n, out);
	pass_sval(s);
	return 0;
}

static int infer_flatten(Sh *s)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	int64_t a = ir_attr_int(s->g, s->id, "axis", 1);
	if (a < -x->rank || a > x->rank)
		return ir_shp_fail(s, "axis %lld out of range for rank %d", (long long)a, x->rank);
	if (a < 0)
		a += x->rank;
	DimId d[2] = { ir_dim_const(s->g, 1), ir_dim_const(s->g, 1) };
	for (int i = 0; i < x->rank; i++)
		d[i >= a] = ir_dim_mul(s->g, d[i >= a], x->dims[i]);
	ir_shp_out(s, 0, x->dtype, 2, d);
	pass_sval(s);
	return 0;
}

static int infer_squeeze(Sh *s)
{
	const Value *x;
	int64_t ax[IR_MAX_RANK * 2];
	int n;
	if (ir_shp_need(s, 0, &x) || get_axes(s, 1, "axes", ax, &n))
		return -1;
	if (n < -1) {   /* data-dependent axes (distinct: checked at run time) */
		if (-2 - n > x->rank)
			return ir_shp_fail(s, "%d axes for rank %d", -2 - n, x->rank);
		ir_shp_dyn_out(s, 0, x->dtype, x->rank - (-2 - n));
		return 0;
	}
	bool drop[IR_MAX_RANK] = { 0 };
	for (int i = 0; i < n; i++) {
		int a;
		int64_t c;
		if (ir_shp_axis(s, ax[i], x->rank, &a))
			return -1;
		if (ir_dim_is_const(s->g, x->dims[a], &c) && c != 1)
			return ir_shp_fail(s, "cannot squeeze axis %d of size %lld", a, (long long)c);
		drop[a] = true;
	}
	if (n < 0) {   /* no axes: every dim of size 1 */
		for (int i = 0; i < x->rank; i++) {
			int64_t c;
			if (!ir_dim_is_const(s->g, x->dims[i], &c))
				return ir_shp_fail(s, "squeeze without axes of a symbolic dim (axis %d)", i);
			drop[i] = c == 1;
		}
	}
	DimId out[IR_MAX_RANK];
	int r = 0;
	for (int i = 0; i < x->rank; i++)
		if (!drop[i])
			out[r++] = x->dims[i];
	ir_shp_out(s, 0, x->dtype, r, out);
	pass_sval(s);
	return 0;
}

static int infer_unsqueeze(Sh *s)
{
	const Value *x;
	int64_t ax[IR_MAX_RANK * 2];
	int n;
	if (ir_shp_need(s, 0, &x) || get_axes(s, 1, "axes", ax, &n))
		return -1;
	if (n == -1)
		return ir_shp_fail(s, "no axes");
	if (n < -1) {   /* data-dependent axes */
		if (x->rank + (-2 - n) > IR_MAX_RANK)
			return ir_shp_fail(s, "result rank %d exceeds %d", x->rank - 2 - n, IR_MAX_RANK);
		ir_shp_dyn_out(s, 0, x->dtype, x->rank + (-2 - n));
		return 0;
	}
	int r = x->rank + n;
	if (r > IR_MAX_RANK)
		return ir_shp_fail(s, "result rank %d exceeds %d", r, IR_MAX_RANK);
	bool ins[IR_MAX_RANK] = { 0 };
	for (int i = 0; i < n; i++) {
		int a;
		if (ir_shp_axis(s, ax[i], r, &a))
			return -1;
		if (ins[a])
			return ir_shp_fail(s, "axis %d repeated", a);
		ins[a] = true;
	}
	DimId out[IR_MAX_RANK];
	for (int i = 0, k = 0; i < r; i++)
		out[i] = ins[i] ? ir_dim_const(s->g, 1) : x->dims[k++];
	ir_shp_out(s, 0, x->dtype, r, out);
	pass_sval(s);
	return 0;
}

static int infer_transpose(Sh *s)
{
	const Value *x;
	if (ir_shp_need(s, 0, &x))
		return -1;
	int cnt = 0;
	const int64_t *perm = ir_attr_ints(s->g, s->id, "perm", &cnt);
	DimId out[IR_MAX_RANK];
	if (perm && cnt != x->rank)
		return ir_shp_fail(s, "perm has %d entries for rank %d", cnt, x->rank);
	bool seen[IR_MAX_RANK] = { 0 };
	for (int i = 0; i < x->rank; i++) {
		int64_t p = perm ? perm[i] : x->rank - 1 - i;
		if (p < 0 || p >= x->rank || seen[p])
			return ir_shp_fail(s, "perm is not a permutation of 0..%d", x->rank - 1);
		seen[p] = true;
		out[i] = x->dims[p];
	}
	ir_shp_out(s, 0, x->dtype, x->rank, out);
	if (x->rank <= 1)
		pass_sval(s);
	return 0;
}

static int infer_expand(Sh *s)
{
	const Value *x;
	DimId e[SH_MAX_SVAL], out[IR_MAX_RANK];
	int r;
	if (ir_shp_need(s, 0, &x))
		return -1;
	int n = ir_shp_getsval(s, 1, e, SH_MAX_SVAL);
	if (n < 0) {   /* data-dependent: rank max(rank of x, length of shape) */
		if ((n = ir_shp_len(s, 1, "shape", IR_MAX_RANK)) < 0)
			return -1;
		ir_shp_dyn_out(s, 0, x->dtype, n > x->rank ? n : x->rank);
		return 0;
	}
	if (n > IR_MAX_RANK)
		return ir_shp_fail(s, "target rank %d exceeds %d", n, IR_MAX_RANK);
	if (ir_shp_bcast(s, x->rank, x->dims, n, e, &r, out))
		return -1;
	ir_shp_out(s, 0, x->dtype, r, out);
	/* content of a small expanded sval tensor */
	DimId in[SH_MAX_SVAL], res[SH_MAX_SVAL];
	int64_t numel;
	const Value *o = IR_VAL(s->g, SH_NODE(s)->out[0]);
	int k = ir_shp_getsval(s, 0, in, SH_MAX_SVAL);
	if (k == 1 && ir_shp_const_shape(s, o, &numel) && numel <= SH_MAX_SVAL) {
		for (int64_t i = 0; i < numel; i++)
			res[i] = in[0];
		ir_shp_sval(s, 0, (int)numel, res);
	}
	return 0;
}

static int infer_concat(Sh *s)
{
	const Value *x, *y;
	int nin = SH_NODE(s)->nin;
	if (ir_shp_need(s, 0, &x))
		return -1;
	int a;
	if (ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", 0), x->rank, &a))
		return -1;
	DimId out[IR_MAX_RANK];
	memcpy(out, x->dims, sizeof(DimId) * (size_t)x->rank);
	for (int i = 1; i < nin; i++) {
		if (ir_shp_need(s, i, &y))
			return -1;
		if (y->rank != x->rank || y->dtype != x->dtype)
			return ir_shp_fail(s, "input '%s' is %s rank %d, input '%s' is %s rank %d", ir_shp_inname(s, 0),
			                   ir_dtype_name(x->dtype), x->rank, ir_shp_inname(s, i), ir_dtype_name(y->dtype),
			                   y->rank);
		for (int d = 0; d < x->rank; d++) {
			if (d == a)
				out[d] = ir_dim_add(s->g, out[d], y->dims[d]);
			else if (ir_shp_unify(s, out[d], y->dims[d], &out[d], "non-concatenated axis"))
				return -1;
		}
	}
	ir_shp_out(s, 0, x->dtype, x->rank, out);
	/* content of concatenated 1-D shape vectors */
	DimId sv[SH_MAX_SVAL];
	int n = 0;
	if (x->rank != 1)
		return 0;
	for (int i = 0; i < nin; i++) {
		int k = ir_shp_getsval(s, i, sv + n, SH_MAX_SVAL - n);
		if (k < 0)
			return 0;
		n += k;
	}
	ir_shp_sval(s, 0, n, sv);
	return 0;
}

static int infer_split(Sh *s)
{
	const Value *x;
	Node *nd = SH_NODE(s);
	if (ir_shp_need(s, 0, &x))
		return -1;
	int a;
	if (ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", 0), x->rank, &a))
		return -1;
	int nout = nd->nout;
	int64_t sp[SH_MAX_SVAL];
	DimId e[SH_MAX_SVAL];
	int n = -1, cnt = 0;
	if (ir_shp_in(s, 1) && ir_shp_getsval(s, 1, e, SH_MAX_SVAL) < 0) {
		/* data-dependent split sizes: the axis of each output */
		if ((n = ir_shp_len(s, 1, "split", SH_MAX_SVAL)) < 0)
			return -1;
		if (n != nout)
			return ir_shp_fail(s, "%d split sizes for %d outputs", n, nout);
		DimId out[IR_MAX_RANK];
		memcpy(out, x->dims, sizeof(DimId) * (size_t)x->rank);
		for (int i = 0; i < nout; i++) {
			out[a] = ir_shp_dyn(s, i, a);
			ir_shp_out(s, i, x->dtype, x->rank, out);
		}
		return 0;
	}
	if (ir_shp_in(s, 1)) {
		if ((n = ir_shp_ints(s, 1, sp, SH_MAX_SVAL, "split")) < 0)
			return -1;
	} else {
		const int64_t *at = ir_attr_ints(s->g, s->id, "split", &cnt);
		if (at) {
			if (cnt > SH_MAX_SVAL)
				return ir_shp_fail(s, "too many splits");
			memcpy(sp, at, sizeof(int64_t) * (size_t)cnt);
			n = cnt;
		}
	}
	DimId d = x->dims[a];
	DimId out[IR_MAX_RANK];
	memcpy(out, x->dims, sizeof(DimId) * (size_t)x->rank);
	if (n >= 0) {
		if (n != nout)
			return ir_shp_fail(s, "%d split sizes for %d outputs", n, nout);
		DimId sum = ir_dim_const(s->g, 0);
		for (int i = 0; i < n; i++) {
			if (sp[i] < 0)
				return ir_shp_fail(s, "negative split size");
			out[a] = ir_dim_const(s->g, sp[i]);
			sum = ir_dim_add(s->g, sum, out[a]);
			ir_shp_out(s, i, x->dtype, x->rank, out);
		}
		int64_t cd, cs;
		if (ir_dim_is_const(s->g, d, &cd) && ir_dim_is_const(s->g, sum, &cs) && cd != cs)
			return ir_shp_fail(s, "split sizes sum to %lld, axis has %lld", (long long)cs, (long long)cd);
		return 0;
	}
	/* equal parts; with num_outputs (opset 18) the last may be smaller */
	int64_t no = ir_attr_int(s->g, s->id, "num_outputs", nout);
	if (no != nout || nout < 1)
		return ir_shp_fail(s, "num_outputs %lld but %d outputs", (long long)no, nout);
	DimId k = ir_dim_const(s->g, nout);
	int64_t cd;
	bool kd = ir_dim_is_const(s->g, d, &cd);
	if (kd && cd % nout != 0 && !ir_attr_get(s->g, s->id, "num_outputs"))
		return ir_shp_fail(s, "axis of size %lld does not split in %d equal parts", (long long)cd, nout);
	DimId chunk = ir_dim_div(s->g, ir_dim_add(s->g, d, ir_dim_const(s->g, nout - 1)), k);
	if (!kd && !ir_attr_get(s->g, s->id, "num_outputs"))
		chunk = ir_dim_div(s->g, d, k);   /* symbolic: it must divide */
	for (int i = 0; i < nout; i++) {
		out[a] = chunk;
		if (i == nout - 1)
			out[a] = ir_dim_sub(s->g, d, ir_dim_mul(s->g, chunk, ir_dim_const(s->g, nout - 1)));
		ir_shp_out(s, i, x->dtype, x->rank, out);
	}
	return 0;
}

static int infer_gather(Sh *s)
{
	const Value *x, *ix;
	if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &ix))
		return -1;
	if (!ir_dtype_is_int(ix->dtype))
		return ir_shp_fail(s, "indices '%s' are %s", ir_shp_inname(s, 1), ir_dtype_name(ix->dtype));
	int a;
	if (ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", 0), x->rank, &a))
		return -1;
	int r = x->rank - 1 + ix->rank;
	if (r > IR_MAX_RANK)
		return ir_shp_fail(s, "result rank %d exceeds %d", r, IR_MAX_RANK);
	DimId out[IR_MAX_RANK];
	int k = 0;
	for (int i = 0; i < a; i++)
		out[k++] = x->dims[i];
	for (int i = 0; i < ix->rank; i++)
		out[k++] = ix->dims[i];
	for (int i = a + 1; i < x->rank; i++)
		out[k++] = x->dims[i];
	/* constant indices must be in range of a constant axis */
	DimId iv[SH_MAX_SVAL], xv[SH_MAX_SVAL], res[SH_MAX_SVAL];
	int ni = ir_shp_getsval(s, 1, iv, SH_MAX_SVAL);
	int64_t len;
	bool klen = ir_dim_is_const(s->g, x->dims[a], &len);
	bool allk = ni >= 0;
	for (int i = 0; i < ni; i++) {
		int64_t c;
		if (!ir_dim_is_const(s->g, iv[i], &c)) {
			allk = false;
			continue;
		}
		if (klen && (c < -len || c >= len))
			return ir_shp_fail(s, "index %lld out of range for axis %d of size %lld", (long long)c, a,
			                   (long long)len);
		if (c < 0 && klen)
			c += len;
		iv[i] = ir_dim_const(s->g, c);
		if (c < 0)
			allk = false;
	}
	ir_shp_out(s, 0, x->dtype, r, out);
	/* content: gather from a 1-D shape vector */
	int nx = ir_shp_getsval(s, 0, xv, SH_MAX_SVAL);
	if (allk && x->rank == 1 && nx >= 0) {
		for (int i = 0; i < ni; i++) {
			int64_t c;
			ir_dim_is_const(s->g, iv[i], &c);
			if (c >= nx)
				return 0;
			res[i] = xv[c];
		}
		ir_shp_sval(s, 0, ni, res);
	}
	return 0;
}

static int infer_gather_nd(Sh *s)
{
	const Value *x, *ix;
	if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &ix))
		return -1;
	int64_t b = ir_attr_int(s->g, s->id, "batch_dims", 0), m;
	if (ix->rank < 1 || !ir_dim_is_const(s->g, ix->dims[ix->rank - 1], &m))
		return ir_shp_fail(s, "indices '%s' need a constant last dim", ir_shp_inname(s, 1));
	if (b < 0 || b + m > x->rank || b >= ix->rank)
		return ir_shp_fail(s, "batch_dims %lld and index depth %lld do not fit data rank %d", (long long)b,
		                   (long long)m, x->rank);
	int r = ix->rank - 1 + x->rank - (int)(b + m);
	if (r > IR_MAX_RANK)
		return ir_shp_fail(s, "result rank %d exceeds %d", r, IR_MAX_RANK);
	DimId out[IR_MAX_RANK];
	int k = 0;
	for (int i = 0; i < ix->rank - 1; i++)
		out[k++] = ix->dims[i];
	for (int i = (int)(b + m); i < x->rank; i++)
		out[k++] = x->dims[i];
	ir_shp_out(s, 0, x->dtype, r, out);
	return 0;
}

/* ScatterND: the data's shape; updates must be indices.shape[:-1] +
 * data.shape[k:] for index tuples of k (static) elements. */
static int infer_scatter_nd(Sh *s)
{
	const Value *x, *ix, *u;
	int64_t k;
	if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &ix) || ir_shp_need(s, 2, &u))
		return -1;
	if (ix->rank < 1 || !ir_dim_is_const(s->g, ix->dims[ix->rank - 1], &k))
		return ir_shp_fail(s, "indices must have a static last dim (the index tuples' length)");
	if (k < 1 || k > x->rank)
		return ir_shp_fail(s, "index tuples of %lld for data of rank %d", (long long)k, x->rank);
	int q = ix->rank - 1, want = q + x->rank - (int)k;
	if (u->rank != want)
		return ir_shp_fail(s, "updates has rank %d, expected %d", u->rank, want);
	DimId d;
	for (int i = 0; i < want; i++)
		if (ir_shp_unify(s, u->dims[i], i < q ? ix->dims[i] : x->dims[i - q + k], &d,
		                 "updates dim") < 0)
			return -1;
	const char *red = ir_attr_str(s->g, s->id, "reduction", "none");
	DType t = x->dtype;
	if (strcmp(red, "none") && t != DT_F32 && t != DT_F64 && t != DT_I32 && t != DT_I64)
		return ir_shp_fail(s, "reduction %s on %s data is not implemented (f32, f64, i32, i64)",
		                   red, ir_dtype_name(t));
	ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
	return 0;
}

/* TopK: the input's shape with K on axis; K's value known at run time
 * only: a data-dependent extent, one symbol for both outputs. */
static int infer_topk(Sh *s)
{
	const Value *x;
	DimId k[1], out[IR_MAX_RANK];
	int a;
	if (ir_shp_need(s, 0, &x) || ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", -1), x->rank, &a))
		return -1;
	if (ir_shp_getsval(s, 1, k, 1) != 1) {
		if (ir_shp_len(s, 1, "K", 1) < 0)
			return -1;
		k[0] = ir_shp_dyn(s, 0, a);
	}
	int64_t kc, dc;
	char buf[64];
	if (ir_dim_is_const(s->g, k[0], &kc) &&
	    (kc < 0 || (ir_dim_is_const(s->g, x->dims[a], &dc) && kc > dc)))
		return ir_shp_fail(s, "K %lld out of range for axis %d of %s", (long long)kc, a,
		                   ir_shp_dimstr(s, x->dims[a], buf, sizeof buf));
	for (int i = 0; i < x->rank; i++)
		out[i] = i == a ? k[0] : x->dims[i];
	ir_shp_out(s, 0, x->dtype, x->rank, out);
	ir_shp_out(s, 1, DT_I64, x->rank, out);
	return 0;
}

static int infer_tile(Sh *s)
{
	const Value *x;
	DimId e[SH_MAX_SVAL], out[IR_MAX_RANK];
	if (ir_shp_need(s, 0, &x))
		return -1;
	int n = ir_shp_getsval(s, 1, e, SH_MAX_SVAL);
	if (n < 0) {   /* data-dependent repeats */
		if ((n = ir_shp_len(s, 1, "repeats", IR_MAX_RANK)) < 0)
			return -1;
		if (n != x->rank)
			return ir_shp_fail(s, "%d repeats for rank %d", n, x->rank);
		ir_shp_dyn_out(s, 0, x->dtype, n);
		return 0;
	}
	if (n != x->rank)
		return ir_shp_fail(s, "%d repeats for rank %d", n, x->rank);
	for (int i = 0; i < n; i++) {
		int64_t a, b, p;   /* constant dims: the product must not wrap */
		if (ir_dim_is_const(s->g, x->dims[i], &a) && ir_dim_is_const(s->g, e[i], &b) &&
		    !ck_mul_i64(a, b, &p))
			return ir_shp_fail(s, "dim %d times repeat %lld overflows 64 bits", i, (long long)b);
		out[i] = ir_dim_mul(s->g, x->dims[i], e[i]);
	}
	ir_shp_out(s, 0, x->dtype, n, out);
	return 0;
}

/* Pad, one axis of extent x with constant pads b (begin) and e (end):
 * negative pads crop first (as ONNX Runtime does), then the rest of L
 * elements is padded; reflect needs pads below L, edge and wrap a
 * non-empty L (wrap repeats it as often as needed, as numpy's). */
static int pad_axis(Sh *s, int d, int64_t x, int64_t b, int64_t e, const char *mode)
{
	int64_t L = x, y;
	if ((b < 0 && !ck_add_i64(L, b, &L)) || (e < 0 && !ck_add_i64(L, e, &L)) || L < 0)
		return ir_shp_fail(s, "axis %d: pads %lld, %lld crop more than its %lld elements", d,
		                   (long long)b, (long long)e, (long long)x);
	if (!ck_add_i64(x, b, &y) || !ck_add_i64(y, e, &y))
		return ir_shp_fail(s, "axis %d: pads %lld, %lld overflow", d, (long long)b, (long long)e);
	bool pads = b > 0 || e > 0;
	if (strcmp(mode, "constant") && pads && L == 0)
		return ir_shp_fail(s, "axis %d: cannot pad an empty axis in %s mode", d, mode);
	if (!strcmp(mode, "reflect") && ((b > 0 && b >= L) || (e > 0 && e >= L)))
		return ir_shp_fail(s, "axis %d: reflect pads %lld, %lld: at most %lld for %lld elements",
		                   d, (long long)b, (long long)e, (long long)(L - 1), (long long)L);
	return 0;
}

/* Pad: each padded axis of the output is d + begin + end; pads or axes
 * known only at run time give every axis a data-dependent extent (the
 * pad's shape function binds them). */
static int infer_pad(Sh *s)
{
	const Value *x;
	int64_t ax[IR_MAX_RANK * 2];
	int na, where[IR_MAX_RANK];
	if (ir_shp_need(s, 0, &x) || get_axes(s, 3, "axes", ax, &na))
		return -1;
	int r = x->rank;
	bool all = na == -1;   /* no axes input: every axis, in order */
	for (int i = 0; i < r; i++)
		where[i] = all ? i : -1;
	for (int k = 0; !all && k < na; k++) {
		int a;
		if (ir_shp_axis(s, ax[k], r, &a))
			return -1;
		if (where[a] >= 0)
			return ir_shp_fail(s, "axis %lld repeated", (long long)ax[k]);
		where[a] = k;
	}
	int naxes = all ? r : na >= 0 ? na : -2 - na;
	DimId e[SH_MAX_SVAL];
	int n = ir_shp_getsval(s, 1, e, SH_MAX_SVAL);
	bool dyn = n < 0 || na < -1;
	if (n < 0 && (n = ir_shp_len(s, 1, "pads", IR_MAX_RANK * 2)) < 0)
		return -1;
	if (n != 2 * naxes)
		return ir_shp_fail(s, "pads has %d elements, expected %d (2 x %d axes)", n, 2 * naxes,
		                   naxes);
	const Value *cv = ir_shp_in(s, 2);
	int64_t cn;
	if (cv && ir_shp_const_shape(s, cv, &cn) && cn != 1)
		return ir_shp_fail(s, "constant_value has %lld elements, expected 1", (long long)cn);
	if (dyn) {
		ir_shp_dyn_out(s, 0, x->dtype, r);
		return 0;
	}
	const char *mode = ir_attr_str(s->g, s->id, "mode", "constant");
	DimId out[IR_MAX_RANK];
	for (int i = 0; i < r; i++) {
		int k = where[i];
		out[i] = x->dims[i];
		if (k < 0)
			continue;
		int64_t xc, bc, ec;
		if (ir_dim_is_const(s->g, x->dims[i], &xc) && ir_dim_is_const(s->g, e[k], &bc) &&
		    ir_dim_is_const(s->g, e[k + naxes], &ec) && pad_axis(s, i, xc, bc, ec, mode))
			return -1;
		out[i] = ir_dim_add(s->g, ir_dim_add(s->g, x->dims[i], e[k]), e[k + naxes]);
	}
	ir_shp_out(s, 0, x->dtype, r, out);
	return 0;
}

/* A scalar attribute tensor's value as an integer dim, if integral. */
static bool lit_int(const TensorLit *t, int64_t *v)
{
	size_t es = ir_dtype_size(t->dtype);
	if (!t->data || es == 0 || t->nbytes < es)
		return false;
	switch (t->dtype) {
	case DT_I64: memcpy(v, t->data, 8); return true;
	case DT_I32: { int32_t x; memcpy(&x, t->data, 4); *v = x; return true; }
	case DT_BOOL: case DT_U8: *v = *(const uint8_t *)t->data; return true;
	case DT_I8: *v = *(const int8_t *)t->data; return true;
	default: return false;
	}
}

static int infer_constant_of_shape(Sh *s)
{
	DimId e[SH_MAX_SVAL];
	int n = ir_shp_getsval(s, 0, e, SH_MAX_SVAL);
	bool dyn = n < 0;
	if (dyn && (n = ir_shp_len(s, 0, "shape", IR_MAX_RANK)) < 0)
		return -1;   /* data-dependent dims: the rank is the shape's length */
	if (n > IR_MAX_RANK)
		return ir_shp_fail(s, "rank %d exceeds %d", n, IR_MAX_RANK);
	for (int i = 0; dyn && i < n; i++)
		e[i] = ir_shp_dyn(s, 0, i);
	const Attr *va = ir_attr_get(s->g, s->id, "value");
	DType t = DT_F32;
	int64_t fill = 0;
	bool kfill = true;
	if (va) {
		if (va->kind != A_TENSOR || !va->u.t)
			return ir_shp_fail(s, "attribute 'value' is not a tensor");
		t = va->u.t->dtype;
		/* ONNX: a one-element tensor (the kernel would read its first) */
		size_t es = ir_dtype_size(t);
		if (!es || va->u.t->nbytes != es)
			return ir_shp_fail(s, "attribute 'value' has %zu elements, must have one",
			                   es ? va->u.t->nbytes / es : (size_t)0);
		kfill = lit_int(va->u.t, &fill);
	}
	ir_shp_out(s, 0, t, n, e);
	int64_t numel = 1;
	for (int i = 0; i < n && numel <= SH_MAX_SVAL; i++) {
		int64_t c;
		if (!ir_dim_is_const(s->g, e[i], &c) || c < 0 || !ck_mul_i64(numel, c, &numel))
			numel = SH_MAX_SVAL + 1;
	}
	if (kfill && ir_dtype_is_int(t) && numel >= 0 && numel <= SH_MAX_SVAL) {
		DimId res[SH_MAX_SVAL];
		for (int64_t i = 0; i < numel; i++)
			res[i] = ir_dim_const(s->g, fill);
		ir_shp_sval(s, 0, (int)numel, res);
	}
	return 0;
}

static int infer_one_hot(Sh *s)
{
	const Value *ix, *dv, *vals;
	if (ir_shp_need(s, 0, &ix) || ir_shp_need(s, 1, &dv) || ir_shp_need(s, 2, &vals))
		return -1;
	DimId depth[1];
	if (ir_shp_getsval(s, 1, depth, 1) != 1) {
		/* a float depth constant */
		float f;
		if (dv->kind == V_CONST && dv->data && dv->dtype == DT_F32 && dv->nbytes >= 4) {
			memcpy(&f, dv->data, 4);
			/* NaN or out of int64's range: converting is undefined */
			if (!(f > -1.0f && f < 9.2e18f))
				return ir_shp_fail(s, "depth %g is not a count (0 to 2^63)", (double)f);
			depth[0] = ir_dim_const(s->g, (int64_t)f);
		} else {
			depth[0] = -1;   /* data-dependent, below */
		}
	}
	int r = ix->rank + 1, a;
	if (r > IR_MAX_RANK)
		return ir_shp_fail(s, "result rank %d exceeds %d", r, IR_MAX_RANK);
	if (ir_shp_axis(s, ir_attr_int(s->g, s->id, "axis", -1), r, &a))
		return -1;
	if (depth[0] < 0)
		depth[0] = ir_shp_dyn(s, 0, a);
	DimId out[IR_MAX_RANK];
	for (int i = 0, k = 0; i < r; i++)
		out[i] = i == a ? depth[0] : ix->dims[k++];
	ir_shp_out(s, 0, vals->dtype, r, out);
	return 0;
}

int ir_shp_layout(Sh *s)
{
	const Value *x;
	switch (SH_NODE(s)->op) {
	case OP_Shape: return infer_shape(s);
	case OP_Size: return infer_size(s);
	case OP_Reshape: return infer_reshape(s);
	case OP_Flatten: return infer_flatten(s);
	case OP_Squeeze: return infer_squeeze(s);
	case OP_Unsqueeze: return infer_unsqueeze(s);
	case OP_Transpose: return infer_transpose(s);
	case OP_Expand: return infer_expand(s);
	case OP_Concat: return infer_concat(s);
	case OP_Split: return infer_split(s);
	case OP_Slice: return ir_shp_slice(s);
	case OP_Gather: return infer_gather(s);
	case OP_GatherND: return infer_gather_nd(s);
	case OP_Tile: return infer_tile(s);
	case OP_Pad: return infer_pad(s);
	case OP_ScatterND: return infer_scatter_nd(s);
	case OP_TopK: return infer_topk(s);
	case OP_Range: return ir_shp_range(s);
	case OP_ConstantOfShape: return infer_constant_of_shape(s);
	case OP_OneHot: return infer_one_hot(s);
	case OP_GatherElements:
		if (ir_shp_need(s, 0, &x) || ir_shp_need(s, 1, &x))
			return -1;
		ir_shp_out(s, 0, ir_shp_in(s, 0)->dtype, x->rank, x->dims);
		return 0;
	case OP_EyeLike:
		if (ir_shp_need(s, 0, &x))
			return -1;
		ir_shp_out(s, 0, (DType)ir_attr_int(s->g, s->id, "dtype", x->dtype), x->rank, x->dims);
		return 0;
	case OP_Trilu:
		if (ir_shp_need(s, 0, &x))
			return -1;
		if (x->rank < 2)
			return ir_shp_fail(s, "input rank %d < 2", x->rank);
		ir_shp_out(s, 0, x->dtype, x->rank, x->dims);
		return 0;
	default:
		return ir_shp_fail(s, "no shape rule");
	}
}
