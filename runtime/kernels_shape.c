/* kernels_shape.c: shape and layout ops: Shape, Size, Reshape, Flatten,
 * Squeeze, Unsqueeze, Transpose, Expand, Concat, Split, Slice, Tile, Pad, and
 * the generators Range, ConstantOfShape, EyeLike, Trilu.
 *
 * Attributes: Shape ia=[start, end]; Transpose ia=perm; Concat, Split
 * ia=[axis]; ConstantOfShape ia=[int value] or fa=[float value]; EyeLike
 * ia=[k]; Trilu ia=[upper] (k in in[1], optional).  Slice reads starts,
 * ends, axes, steps from in[1..4]; Tile repeats from in[1]; Range start,
 * limit, delta from in[0..2]; Pad ia=[mode] (constant, reflect, edge, wrap),
 * pads, constant_value, axes from in[1..3]. */
#include <math.h>
#include <string.h>

#include "rt_internal.h"

static size_t nbytes(const rt_t *t)
{
	return (size_t)rt_numel(t) * rt_dtype_size(t->dtype);
}

static void dense_strides(const rt_t *t, int64_t *st)
{
	int64_t s = 1;
	for (int d = t->rank - 1; d >= 0; d--) {
		st[d] = s;
		s *= t->dims[d];
	}
}

/* ---- Shape, Size ---- */

RT_KERNEL(Shape)
{
	int64_t r = in[0].rank;
	int64_t s = nia > 0 ? ia[0] : 0, e = nia > 1 ? ia[1] : r;
	s = s < 0 ? 0 : s > r ? r : s;
	e = e < s ? s : e > r ? r : e;
	if (out[0].dtype != KILN_I64 || rt_numel(&out[0]) != e - s)
		return rt_error(f, "node '%s' (Shape): output must be i64[%lld]", loc, (long long)(e - s));
	int64_t *y = out[0].data;
	for (int64_t i = s; i < e; i++)
		y[i - s] = in[0].dims[i];
	return 0;
}

RT_KERNEL(Size)
{
	if (out[0].dtype != KILN_I64)
		return rt_error(f, "node '%s' (Size): output must be i64", loc);
	*(int64_t *)out[0].data = rt_numel(&in[0]);
	return 0;
}

/* ---- Reshape & co: same bytes, new dims ---- */

static int same_data(kiln_frame *f, const char *loc, const char *op, const rt_t *in, rt_t *out)
{
	if (in->dtype != out->dtype || rt_numel(in) != rt_numel(out))
		return rt_error(f, "node '%s' (%s): %lld elements in, %lld out", loc, op,
		                (long long)rt_numel(in), (long long)rt_numel(out));
	size_t n = nbytes(in);
	if (n && out->data != in->data)
		memmove(out->data, in->data, n);
	return 0;
}

RT_KERNEL(Reshape) { return same_data(f, loc, "Reshape", &in[0], &out[0]); }
RT_KERNEL(Flatten) { return same_data(f, loc, "Flatten", &in[0], &out[0]); }
RT_KERNEL(Squeeze) { return same_data(f, loc, "Squeeze", &in[0], &out[0]); }
RT_KERNEL(Unsqueeze) { return same_data(f, loc, "Unsqueeze", &in[0], &out[0]); }

/* ---- Transpose, Expand ---- */

RT_KERNEL(Transpose)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	int r = x->rank;
	if (y->rank != r || y->dtype != x->dtype || (nia != r && nia != 0))
		return rt_error(f, "node '%s' (Transpose): bad permutation", loc);
	int64_t st[KILN_MAX_RANK], sst[KILN_MAX_RANK];
	bool seen[KILN_MAX_RANK] = {0};
	dense_strides(x, st);
	for (int d = 0; d < r; d++) {
		int64_t p = nia ? ia[d] : r - 1 - d;     /* default: reverse */
		if (p < 0 || p >= r || seen[p] || y->dims[d] != x->dims[p])
			return rt_error(f, "node '%s' (Transpose): bad permutation", loc);
		seen[p] = true;
		sst[d] = st[p];
	}
	rt_strided_copy(f, rt_dtype_size(x->dtype), r, y->dims, x->data, sst, y->data);
	return 0;
}

RT_KERNEL(Expand)
{
	int64_t st[KILN_MAX_RANK];
	if (in[0].dtype != out[0].dtype)
		return rt_error(f, "node '%s' (Expand): output dtype differs", loc);
	if (rt_bcast_strides(f, loc, "Expand", 0, &in[0], &out[0], st))
		return 1;
	rt_strided_copy(f, rt_dtype_size(out[0].dtype), out[0].rank, out[0].dims, in[0].data, st,
	                out[0].data);
	return 0;
}

/* ---- Concat, Split ---- */

static void outer_inner(const rt_t *t, int axis, int64_t *outer, int64_t *inner)
{
	*outer = *inner = 1;
	for (int d = 0; d < axis; d++)
		*outer *= t->dims[d];
	for (int d = axis + 1; d < t->rank; d++)
		*inner *= t->dims[d];
}

RT_KERNEL(Concat)
{
	rt_t *y = &out[0];
	int64_t axis = nia > 0 ? ia[0] : 0;
	if (axis < 0 || axis >= y->rank)
		return rt_error(f, "node '%s' (Concat): axis %lld out of range", loc, (long long)axis);
	size_t esz = rt_dtype_size(y->dtype);
	int64_t total = 0;
	for (int k = 0; k < nin; k++) {
		if (in[k].dtype != y->dtype || in[k].rank != y->rank)
			return rt_error(f, "node '%s' (Concat): input %d differs in dtype or rank", loc, k);
		for (int d = 0; d < y->rank; d++)
			if (d != axis && in[k].dims[d] != y->dims[d])
				return rt_error(f, "node '%s' (Concat): input %d dim %d is %lld, output %lld",
				                loc, k, d, (long long)in[k].dims[d], (long long)y->dims[d]);
		total += in[k].dims[axis];
	}
	if (total != y->dims[axis])
		return rt_error(f, "node '%s' (Concat): inputs sum to %lld along axis %lld, output %lld",
		                loc, (long long)total, (long long)axis, (long long)y->dims[axis]);
	int64_t outer, inner;
	outer_inner(y, (int)axis, &outer, &inner);
	size_t orow = (size_t)(y->dims[axis] * inner) * esz;
	size_t at = 0;
	for (int k = 0; k < nin; k++) {
		size_t row = (size_t)(in[k].dims[axis] * inner) * esz;
		if (row)
			for (int64_t o = 0; o < outer; o++)
				memcpy((char *)y->data + (size_t)o * orow + at,
				       (const char *)in[k].data + (size_t)o * row, row);
		at += row;
	}
	return 0;
}

RT_KERNEL(Split)
{
	const rt_t *x = &in[0];
	int64_t axis = nia > 0 ? ia[0] : 0;
	if (axis < 0 || axis >= x->rank)
		return rt_error(f, "node '%s' (Split): axis %lld out of range", loc, (long long)axis);
	size_t esz = rt_dtype_size(x->dtype);
	int64_t total = 0;
	for (int k = 0; k < nout; k++) {
		if (out[k].dtype != x->dtype || out[k].rank != x->rank)
			return rt_error(f, "node '%s' (Split): output %d differs in dtype or rank", loc, k);
		for (int d = 0; d < x->rank; d++)
			if (d != axis && out[k].dims[d] != x->dims[d])
				return rt_error(f, "node '%s' (Split): output %d dim %d is %lld, input %lld",
				                loc, k, d, (long long)out[k].dims[d], (long long)x->dims[d]);
		total += out[k].dims[axis];
	}
	if (total != x->dims[axis])
		return rt_error(f, "node '%s' (Split): outputs sum to %lld along axis %lld, input %lld",
		                loc, (long long)total, (long long)axis, (long long)x->dims[axis]);
	int64_t outer, inner;
	outer_inner(x, (int)axis, &outer, &inner);
	size_t irow = (size_t)(x->dims[axis] * inner) * esz;
	size_t at = 0;
	for (int k = 0; k < nout; k++) {
		size_t row = (size_t)(out[k].dims[axis] * inner) * esz;
		if (row && out[k].data)
			for (int64_t o = 0; o < outer; o++)
				memcpy((char *)out[k].data + (size_t)o * row,
				       (const char *)x->data + (size_t)o * irow + at, row);
		at += row;
	}
	return 0;
}

/* ---- Slice ---- */

static int int_vec(kiln_frame *f, const char *loc, const char *what, const rt_t *t, int64_t *v,
                   int64_t max)
{
	if (t->dtype != KILN_I64 && t->dtype != KILN_I32)
		return rt_error(f, "node '%s' (Slice): %s must be i32 or i64", loc, what);
	int64_t n = rt_numel(t);
	if (n > max)
		return rt_error(f, "node '%s' (Slice): %s has %lld entries, rank is %lld", loc, what,
		                (long long)n, (long long)max);
	for (int64_t i = 0; i < n; i++)
		v[i] = rt_get_i64(t->data, t->dtype, i);
	return 0;
}

/* hi wins when lo > hi: a negative step on a dim of 0 clamps the start
 * into [0, -1], which must give -1 (nothing taken), as emit_layout.c's
 * slice_axis and shape inference do */
static int64_t clamp(int64_t v, int64_t lo, int64_t hi)
{
	v = v < lo ? lo : v;
	return v > hi ? hi : v;
}

/* The start, step and length per axis of a Slice (ONNX clamping), from
 * starts, ends, axes, steps in in[1..4]; 0 or rt_error. */
static int slice_plan(kiln_frame *f, const char *loc, const rt_t *in, int32_t nin, int64_t *start,
                      int64_t *step, int64_t *len)
{
	const rt_t *x = &in[0];
	int r = x->rank;
	int64_t starts[KILN_MAX_RANK], ends[KILN_MAX_RANK], axes[KILN_MAX_RANK], steps[KILN_MAX_RANK];
	int64_t n = rt_numel(&in[1]);
	if (rt_numel(&in[2]) != n)
		return rt_error(f, "node '%s' (Slice): starts and ends differ in length", loc);
	if (int_vec(f, loc, "starts", &in[1], starts, r) || int_vec(f, loc, "ends", &in[2], ends, r))
		return 1;
	for (int64_t i = 0; i < n; i++) {
		axes[i] = i;
		steps[i] = 1;
	}
	if (nin > 3 && in[3].data) {
		if (rt_numel(&in[3]) != n || int_vec(f, loc, "axes", &in[3], axes, r))
			return rt_numel(&in[3]) != n
			       ? rt_error(f, "node '%s' (Slice): axes has the wrong length", loc) : 1;
	}
	if (nin > 4 && in[4].data) {
		if (rt_numel(&in[4]) != n || int_vec(f, loc, "steps", &in[4], steps, r))
			return rt_numel(&in[4]) != n
			       ? rt_error(f, "node '%s' (Slice): steps has the wrong length", loc) : 1;
	}
	bool seen[KILN_MAX_RANK] = {0};
	for (int d = 0; d < r; d++) {
		start[d] = 0;
		step[d] = 1;
		len[d] = x->dims[d];
	}
	for (int64_t i = 0; i < n; i++) {
		int64_t a = axes[i] < 0 ? axes[i] + r : axes[i];
		if (a < 0 || a >= r || seen[a])
			return rt_error(f, "node '%s' (Slice): bad axis %lld", loc, (long long)axes[i]);
		seen[a] = true;
		int64_t dim = x->dims[a], s = starts[i], e = ends[i], k = steps[i];
		if (k == 0)
			return rt_error(f, "node '%s' (Slice): step 0", loc);
		if (k == INT64_MIN)
			k = -INT64_MAX;            /* so that -k exists */
		if (s < 0)
			s = s < -dim ? -1 : s + dim;   /* (no overflow for s near INT64_MIN) */
		if (e < 0)
			e = e < -dim ? -1 : e + dim;
		if (k > 0) {
			s = clamp(s, 0, dim);
			e = clamp(e, 0, dim);
			len[a] = e > s ? (e - s - 1) / k + 1 : 0;
		} else {
			s = clamp(s, 0, dim - 1);
			e = clamp(e, -1, dim - 1);
			len[a] = s > e ? (s - e - 1) / -k + 1 : 0;
		}
		start[a] = s;
		step[a] = k;
	}
	return 0;
}

RT_KERNEL(Slice)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	int r = x->rank;
	int64_t st[KILN_MAX_RANK], start[KILN_MAX_RANK], step[KILN_MAX_RANK], len[KILN_MAX_RANK];
	if (slice_plan(f, loc, in, nin, start, step, len))
		return 1;
	dense_strides(x, st);
	int64_t off = 0, sst[KILN_MAX_RANK];
	for (int d = 0; d < r; d++) {
		if (y->rank != r || y->dims[d] != len[d])
			return rt_error(f, "node '%s' (Slice): output dim %d is %lld, slice gives %lld", loc,
			                d, d < y->rank ? (long long)y->dims[d] : -1LL, (long long)len[d]);
		if (len[d] > 0)
			off += start[d] * st[d];
		sst[d] = step[d] * st[d];
	}
	if (rt_numel(y) == 0)
		return 0;
	size_t esz = rt_dtype_size(x->dtype);
	rt_strided_copy(f, esz, r, y->dims, (const char *)x->data + off * (int64_t)esz, sst, y->data);
	return 0;
}

/* ---- Tile ---- */

RT_KERNEL(Tile)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	int r = x->rank;
	if (in[1].dtype != KILN_I64 || rt_numel(&in[1]) != r || y->rank != r)
		return rt_error(f, "node '%s' (Tile): repeats must be i64[%d]", loc, r);
	for (int d = 0; d < r; d++) {
		int64_t rep = rt_get_i64(in[1].data, KILN_I64, d), want;
		if (rep < 0 || !rt_ck_mul(x->dims[d], rep, &want))
			return rt_error(f, "node '%s' (Tile): repeat %d is %lld: negative or too large",
			                loc, d, (long long)rep);
		if (y->dims[d] != want)
			return rt_error(f, "node '%s' (Tile): output dim %d is %lld, expected %lld", loc, d,
			                (long long)y->dims[d], (long long)want);
	}
	if (rt_numel(y) == 0)
		return 0;
	size_t esz = rt_dtype_size(x->dtype);
	if (r == 0) {
		memcpy(y->data, x->data, esz);
		return 0;
	}
	int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
	dense_strides(x, st);
	int64_t inrow = x->dims[r - 1], outrow = y->dims[r - 1];
	int64_t rows = rt_numel(y) / outrow;
	char *dst = y->data;
	for (int64_t row = 0; row < rows; row++) {
		int64_t off = 0;
		for (int d = 0; d < r - 1; d++)
			off += (idx[d] % x->dims[d]) * st[d];
		const char *src = (const char *)x->data + off * (int64_t)esz;
		for (int64_t c = 0; c < outrow; c += inrow)
			memcpy(dst + c * (int64_t)esz, src, (size_t)inrow * esz);
		dst += outrow * (int64_t)esz;
		for (int d = r - 2; d >= 0; d--) {
			if (++idx[d] < y->dims[d])
				break;
			idx[d] = 0;
		}
	}
	return 0;
}

/* ---- Pad ---- */

enum { PAD_CONSTANT, PAD_REFLECT, PAD_EDGE, PAD_WRAP };

/* Pad's plan from pads (in[1]) and axes (in[3], optional): per axis the
 * begin pad b, the input range [lo, hi) that the negative pads keep (they
 * crop first, as ONNX Runtime does) and the output extent; checked as
 * ir/shape_layout.c pad_axis checks constant pads (reflect pads below the
 * kept length, edge and wrap only of a non-empty one). */
static int pad_plan(kiln_frame *f, const char *loc, const rt_t *in, int32_t nin, int mode,
                    int64_t *b, int64_t *lo, int64_t *hi, int64_t *dims)
{
	static const char *const modes[] = { "constant", "reflect", "edge", "wrap" };
	const rt_t *x = &in[0];
	int r = x->rank;
	int64_t ax[KILN_MAX_RANK], na = r;
	bool seen[KILN_MAX_RANK] = {0};
	if (mode < PAD_CONSTANT || mode > PAD_WRAP)
		return rt_error(f, "node '%s' (Pad): mode %d", loc, mode);
	for (int d = 0; d < r; d++) {
		ax[d] = d;
		b[d] = lo[d] = 0;
		hi[d] = dims[d] = x->dims[d];
	}
	if (nin > 3 && in[3].dtype) {
		if ((in[3].dtype != KILN_I64 && in[3].dtype != KILN_I32) ||
		    (!in[3].data && rt_numel(&in[3]) > 0))
			return rt_error(f, "node '%s' (Pad): axes must be i32 or i64", loc);
		if ((na = rt_numel(&in[3])) > r)
			return rt_error(f, "node '%s' (Pad): %lld axes for rank %d", loc, (long long)na, r);
		for (int64_t i = 0; i < na; i++)
			ax[i] = rt_get_i64(in[3].data, in[3].dtype, i);
	}
	const rt_t *p = &in[1];
	if (p->dtype != KILN_I64 || (!p->data && rt_numel(p) > 0))
		return rt_error(f, "node '%s' (Pad): pads must be i64", loc);
	if (rt_numel(p) != 2 * na)
		return rt_error(f, "node '%s' (Pad): pads has %lld elements, expected %lld (2 x %lld "
		                "axes)", loc, (long long)rt_numel(p), (long long)(2 * na), (long long)na);
	for (int64_t i = 0; i < na; i++) {
		int64_t a = ax[i] < 0 ? ax[i] + r : ax[i];
		if (a < 0 || a >= r || seen[a])
			return rt_error(f, "node '%s' (Pad): axis %lld out of range or repeated for rank %d",
			                loc, (long long)ax[i], r);
		seen[a] = true;
		int64_t pb = rt_get_i64(p->data, KILN_I64, i), pe = rt_get_i64(p->data, KILN_I64, i + na);
		int64_t dim = x->dims[a], L = dim, y;
		if ((pb < 0 && !rt_ck_add(L, pb, &L)) || (pe < 0 && !rt_ck_add(L, pe, &L)) || L < 0)
			return rt_error(f, "node '%s' (Pad): axis %lld: pads %lld, %lld crop more than its "
			                "%lld elements", loc, (long long)a, (long long)pb, (long long)pe,
			                (long long)dim);
		if (!rt_ck_add(dim, pb, &y) || !rt_ck_add(y, pe, &y))
			return rt_error(f, "node '%s' (Pad): axis %lld: pads %lld, %lld overflow", loc,
			                (long long)a, (long long)pb, (long long)pe);
		if (mode != PAD_CONSTANT && (pb > 0 || pe > 0) && L == 0)
			return rt_error(f, "node '%s' (Pad): axis %lld: cannot pad an empty axis in %s mode",
			                loc, (long long)a, modes[mode]);
		if (mode == PAD_REFLECT && ((pb > 0 && pb >= L) || (pe > 0 && pe >= L)))
			return rt_error(f, "node '%s' (Pad): axis %lld: reflect pads %lld, %lld: at most %lld "
			                "for %lld elements", loc, (long long)a, (long long)pb, (long long)pe,
			                (long long)(L - 1), (long long)L);
		b[a] = pb;
		lo[a] = pb < 0 ? -pb : 0;
		hi[a] = lo[a] + L;
		dims[a] = y;
	}
	return 0;
}

/* The input index of output index o on an axis of pad_plan's b, lo, hi;
 * -1: the constant. */
static int64_t pad_src(int64_t o, int64_t b, int64_t lo, int64_t hi, int mode)
{
	int64_t i = o - b, L = hi - lo, j, per;
	if (i >= lo && i < hi)
		return i;
	switch (mode) {
	case PAD_EDGE:
		return i < lo ? lo : hi - 1;
	case PAD_WRAP:
		j = (i - lo) % L;
		return lo + (j < 0 ? j + L : j);
	case PAD_REFLECT:
		if (L == 1)
			return lo;
		per = 2 * (L - 1);
		j = (i - lo) % per;
		j = j < 0 ? j + per : j;
		return lo + (j < L ? j : per - j);
	default:
		return -1;
	}
}

/* One output row (the last axis) of Pad: the kept input row copied, the
 * pads element by element. */
static void pad_row(char *dst, const char *src, size_t esz, int64_t n, int64_t b, int64_t lo,
                    int64_t hi, int mode, const char *val)
{
	int64_t in0 = b > 0 ? b : 0, L = hi - lo;
	if (L > 0)
		memcpy(dst + in0 * (int64_t)esz, src + lo * (int64_t)esz, (size_t)L * esz);
	for (int64_t o = 0; o < n; o++) {
		if (o == in0 && L > 0)
			o += L;
		if (o >= n)
			break;
		int64_t i = pad_src(o, b, lo, hi, mode);
		memcpy(dst + o * (int64_t)esz, i < 0 ? val : src + i * (int64_t)esz, esz);
	}
}

RT_KERNEL(Pad)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	int r = x->rank, mode = nia > 0 ? (int)ia[0] : PAD_CONSTANT;
	int64_t b[KILN_MAX_RANK], lo[KILN_MAX_RANK], hi[KILN_MAX_RANK], dims[KILN_MAX_RANK];
	if (pad_plan(f, loc, in, nin, mode, b, lo, hi, dims))
		return 1;
	if (y->rank != r || y->dtype != x->dtype)
		return rt_error(f, "node '%s' (Pad): output must be %s of rank %d", loc,
		                rt_dtype_name(x->dtype), r);
	for (int d = 0; d < r; d++)
		if (y->dims[d] != dims[d])
			return rt_error(f, "node '%s' (Pad): output dim %d is %lld, the pads give %lld", loc,
			                d, (long long)y->dims[d], (long long)dims[d]);
	size_t esz = rt_dtype_size(x->dtype);
	char val[8] = {0};
	if (nin > 2 && in[2].dtype) {
		if (in[2].dtype != x->dtype || rt_numel(&in[2]) != 1 || !in[2].data)
			return rt_error(f, "node '%s' (Pad): constant_value must be one %s", loc,
			                rt_dtype_name(x->dtype));
		memcpy(val, in[2].data, esz);
	}
	if (rt_numel(y) == 0)
		return 0;
	if (r == 0) {
		memcpy(y->data, x->data, esz);
		return 0;
	}
	int64_t st[KILN_MAX_RANK], idx[KILN_MAX_RANK] = {0};
	dense_strides(x, st);
	int64_t n = y->dims[r - 1], rows = rt_numel(y) / n;
	char *dst = y->data;
	for (int64_t row = 0; row < rows; row++, dst += n * (int64_t)esz) {
		int64_t off = 0;
		for (int d = 0; d < r - 1 && off >= 0; d++) {
			int64_t i = pad_src(idx[d], b[d], lo[d], hi[d], mode);
			off = i < 0 ? -1 : off + i * st[d];
		}
		if (off < 0)
			for (int64_t o = 0; o < n; o++)
				memcpy(dst + o * (int64_t)esz, val, esz);
		else
			pad_row(dst, (const char *)x->data + off * (int64_t)esz, esz, n, b[r - 1],
			        lo[r - 1], hi[r - 1], mode, val);
		for (int d = r - 2; d >= 0; d--) {
			if (++idx[d] < y->dims[d])
				break;
			idx[d] = 0;
		}
	}
	return 0;
}

/* ---- generators ---- */

RT_KERNEL(Range)
{
	int32_t dt = out[0].dtype;
	for (int k = 0; k < 3; k++)
		if (in[k].dtype != dt || rt_numel(&in[k]) != 1)
			return rt_error(f, "node '%s' (Range): input %d must be a %s scalar", loc, k,
			                rt_dtype_name(dt));
	int64_t n = rt_numel(&out[0]);
	if (rt_is_float(dt)) {
		double s = rt_get_f64(in[0].data, dt, 0), l = rt_get_f64(in[1].data, dt, 0);
		double d = rt_get_f64(in[2].data, dt, 0);
		double want = d != 0 ? ceil((l - s) / d) : -1;
		if (d == 0 || (want < 0 ? 0 : want) != (double)n)
			return rt_error(f, "node '%s' (Range): %lld elements, start/limit/delta give %g",
			                loc, (long long)n, want);
		for (int64_t i = 0; i < n; i++)
			rt_set_f64(out[0].data, dt, i, s + (double)i * d);
		return 0;
	}
	if (dt != KILN_I64 && dt != KILN_I32 && dt != KILN_I16)
		return rt_bad_dtype(f, loc, "Range", dt);
	int64_t s = rt_get_i64(in[0].data, dt, 0), l = rt_get_i64(in[1].data, dt, 0);
	int64_t d = rt_get_i64(in[2].data, dt, 0);
	if (d == 0)
		return rt_error(f, "node '%s' (Range): delta is 0", loc);
	/* ceil(|limit - start| / |delta|) in uint64: exact for any int64 values */
	bool up = d > 0;
	uint64_t span = up ? (l > s ? (uint64_t)l - (uint64_t)s : 0) : (s > l ? (uint64_t)s - (uint64_t)l : 0);
	uint64_t step = up ? (uint64_t)d : 0 - (uint64_t)d;
	uint64_t want = span / step + (span % step != 0);
	if (want != (uint64_t)n)
		return rt_error(f, "node '%s' (Range): %lld elements, start/limit/delta give %llu", loc,
		                (long long)n, (unsigned long long)want);
	for (int64_t i = 0; i < n; i++) {
		/* in [start, limit): the wrapping unsigned sum is the exact value */
		int64_t v = (int64_t)((uint64_t)s + (uint64_t)i * (uint64_t)d);
		switch (dt) {
		case KILN_I64: ((int64_t *)out[0].data)[i] = v; break;
		case KILN_I32: ((int32_t *)out[0].data)[i] = (int32_t)v; break;
		default: ((int16_t *)out[0].data)[i] = (int16_t)v; break;
		}
	}
	return 0;
}

/* Fill n elements of dtype dt with one value (integer iv or float fv). */
static int fill(void *p, int32_t dt, int64_t n, int64_t iv, double fv)
{
	size_t esz = rt_dtype_size(dt);
	if (!esz)
		return -1;
	if (n <= 0)   /* (an empty output may have no buffer: no memset of NULL) */
		return 0;
	unsigned char one[8];
	if (rt_is_float(dt))
		rt_set_f64(one, dt, 0, fv);
	else if (dt == KILN_BOOL)
		one[0] = iv != 0;
	else
		memcpy(one, &iv, esz);      /* little-endian: the low bytes */
	bool zero = true;
	for (size_t b = 0; b < esz; b++)
		zero = zero && one[b] == 0;
	if (zero) {
		memset(p, 0, (size_t)n * esz);
		return 0;
	}
	for (int64_t i = 0; i < n; i++)
		memcpy((char *)p + i * (int64_t)esz, one, esz);
	return 0;
}

RT_KERNEL(ConstantOfShape)
{
	int32_t dt = out[0].dtype;
	/* the shape input's values are the output dims the code was planned with */
	if (nin > 0 && in[0].data) {
		if ((in[0].dtype != KILN_I64 && in[0].dtype != KILN_I32) || in[0].rank != 1 ||
		    in[0].dims[0] != out[0].rank)
			return rt_error(f, "node '%s' (ConstantOfShape): shape input must be an integer "
			                "vector of %d elements", loc, out[0].rank);
		for (int k = 0; k < out[0].rank; k++) {
			int64_t v = rt_get_i64(in[0].data, in[0].dtype, k);
			if (v != out[0].dims[k])
				return rt_error(f, "node '%s' (ConstantOfShape): shape element %d is %lld, "
				                "the output dim %lld", loc, k, (long long)v,
				                (long long)out[0].dims[k]);
		}
	}
	if (fill(out[0].data, dt, rt_numel(&out[0]), nia > 0 ? ia[0] : 0, nfa > 0 ? fa[0] : 0.0))
		return rt_bad_dtype(f, loc, "ConstantOfShape", dt);
	return 0;
}

RT_KERNEL(EyeLike)
{
	rt_t *y = &out[0];
	int64_t k = nia > 0 ? ia[0] : 0;
	if (y->rank != 2)
		return rt_error(f, "node '%s' (EyeLike): output must be 2-D", loc);
	int64_t R = y->dims[0], C = y->dims[1];
	if (fill(y->data, y->dtype, R * C, 0, 0.0))
		return rt_bad_dtype(f, loc, "EyeLike", y->dtype);
	for (int64_t i = 0; i < R; i++)
		if (i + k >= 0 && i + k < C)
			fill((char *)y->data + (i * C + i + k) * (int64_t)rt_dtype_size(y->dtype), y->dtype,
			     1, 1, 1.0);
	return 0;
}

RT_KERNEL(Trilu)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	bool upper = nia <= 0 || ia[0];
	int64_t k = 0;
	if (nin > 1 && in[1].data) {
		if ((in[1].dtype != KILN_I64 && in[1].dtype != KILN_I32) || rt_numel(&in[1]) != 1)
			return rt_error(f, "node '%s' (Trilu): k must be an integer scalar", loc);
		k = rt_get_i64(in[1].data, in[1].dtype, 0);
	}
	if (x->rank < 2 || same_data(f, loc, "Trilu", x, y))
		return x->rank < 2 ? rt_error(f, "node '%s' (Trilu): rank < 2", loc) : 1;
	int64_t R = x->dims[x->rank - 2], C = x->dims[x->rank - 1];
	if (R * C == 0)
		return 0;
	int64_t nmat = rt_numel(x) / (R * C);
	size_t esz = rt_dtype_size(x->dtype);
	char *p = y->data;
	for (int64_t m = 0; m < nmat; m++)
		for (int64_t i = 0; i < R; i++)
			for (int64_t j = 0; j < C; j++) {
				bool keep = upper ? j - i >= k : j - i <= k;
				if (!keep)
					memset(p + ((m * R + i) * C + j) * (int64_t)esz, 0, esz);
			}
	return 0;
}

/* ---- shape functions: output extents from input values (rt.h) ----------
 * Called before the node when shape inference could not know an extent
 * (the values are run-time data); each checks the values as ONNX defines
 * them and writes out[k].dims for the rank the code was compiled with. */

/* The integer values of a 1-D (or scalar) tensor t into v (at most max). */
static int shape_ints(kiln_frame *f, const char *loc, const char *op, const char *what,
                      const rt_t *t, int64_t *v, int64_t max, int64_t *n)
{
	*n = 0;
	if (!t->data && rt_numel(t) > 0)
		return rt_error(f, "node '%s' (%s): %s is missing", loc, op, what);
	if (t->dtype != KILN_I64 && t->dtype != KILN_I32)
		return rt_error(f, "node '%s' (%s): %s must be i32 or i64, is %s", loc, op, what,
		                rt_dtype_name(t->dtype));
	*n = rt_numel(t);
	if (*n > max)
		return rt_error(f, "node '%s' (%s): %s has %lld elements, at most %lld", loc, op, what,
		                (long long)*n, (long long)max);
	for (int64_t i = 0; i < *n; i++)
		v[i] = rt_get_i64(t->data, t->dtype, i);
	return 0;
}

RT_SHAPE(Reshape)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	int64_t v[KILN_MAX_RANK] = {0}, n, known = 1, total;
	bool allowzero = nia > 0 && ia[0];
	if (shape_ints(f, loc, "Reshape", "shape", &in[1], v, KILN_MAX_RANK, &n))
		return 1;
	if (n != y->rank)
		return rt_error(f, "node '%s' (Reshape): shape has %lld elements, the compiled rank is %d",
		                loc, (long long)n, y->rank);
	int neg = -1;
	bool zero = false;
	for (int i = 0; i < y->rank; i++) {
		if (v[i] == -1) {
			if (neg >= 0)
				return rt_error(f, "node '%s' (Reshape): more than one -1 in shape", loc);
			neg = i;
			continue;
		}
		if (v[i] < -1)
			return rt_error(f, "node '%s' (Reshape): shape element %d is %lld", loc, i,
			                (long long)v[i]);
		if (v[i] == 0 && !allowzero) {
			if (i >= x->rank)
				return rt_error(f, "node '%s' (Reshape): shape element %d is 0 (copy) but the "
				                "input has rank %d", loc, i, x->rank);
			v[i] = x->dims[i];
		} else if (v[i] == 0) {
			zero = true;
		}
		y->dims[i] = v[i];
		if (!rt_ck_mul(known, v[i], &known))
			return rt_error(f, "node '%s' (Reshape): the shape's element count overflows", loc);
	}
	total = rt_numel(x);
	if (neg >= 0) {
		if (zero || known == 0)
			return rt_error(f, "node '%s' (Reshape): -1 with a zero-sized rest of the shape", loc);
		if (total % known)
			return rt_error(f, "node '%s' (Reshape): cannot reshape %lld elements with %lld per "
			                "-1 slot", loc, (long long)total, (long long)known);
		y->dims[neg] = total / known;
	} else if (known != total) {
		return rt_error(f, "node '%s' (Reshape): cannot reshape %lld elements into %lld", loc,
		                (long long)total, (long long)known);
	}
	return 0;
}

RT_SHAPE(Expand)
{
	const rt_t *x = &in[0];
	rt_t *y = &out[0];
	int64_t v[KILN_MAX_RANK] = {0}, n;
	if (shape_ints(f, loc, "Expand", "shape", &in[1], v, KILN_MAX_RANK, &n))
		return 1;
	int r = y->rank;
	if (r != (n > x->rank ? n : x->rank))
		return rt_error(f, "node '%s' (Expand): shape has %lld elements, the compiled rank is %d",
		                loc, (long long)n, r);
	for (int i = 0; i < r; i++) {
		int ix = i - (r - x->rank), iv = i - (r - (int)n);
		int64_t a = ix >= 0 ? x->dims[ix] : 1, b = iv >= 0 ? v[iv] : 1;
		if (b < 0)
			return rt_error(f, "node '%s' (Expand): shape element %d is %lld", loc, iv,
			                (long long)b);
		if (a != b && a != 1 && b != 1)
			return rt_error(f, "node '%s' (Expand): cannot broadcast dim %lld with %lld (axis "
			                "%d of the result)", loc, (long long)a, (long long)b, i);
		y->dims[i] = a == 1 ? b : a;
	}
	return 0;
}

RT_SHAPE(Tile)
{
	const rt_t *x = &in[0];
	int64_t v[KILN_MAX_RANK] = {0}, n;
	if (shape_ints(f, loc, "Tile", "repeats", &in[1], v, KILN_MAX_RANK, &n))
		return 1;
	if (n != x->rank || out[0].rank != x->rank)
		return rt_error(f, "node '%s' (Tile): %lld repeats for rank %d", loc, (long long)n,
		                x->rank);
	for (int i = 0; i < x->rank; i++)
		if (v[i] < 0 || !rt_ck_mul(x->dims[i], v[i], &out[0].dims[i]))
			return rt_error(f, "node '%s' (Tile): repeat %d is %lld: negative or too large", loc,
			                i, (long long)v[i]);
	return 0;
}

RT_SHAPE(Pad)
{
	int64_t b[KILN_MAX_RANK], lo[KILN_MAX_RANK], hi[KILN_MAX_RANK];
	if (out[0].rank != in[0].rank)
		return rt_error(f, "node '%s' (Pad): output rank %d, input %d", loc, out[0].rank,
		                in[0].rank);
	return pad_plan(f, loc, in, nin, nia > 0 ? (int)ia[0] : PAD_CONSTANT, b, lo, hi, out[0].dims);
}

RT_SHAPE(ConstantOfShape)
{
	int64_t v[KILN_MAX_RANK] = {0}, n;
	if (shape_ints(f, loc, "ConstantOfShape", "shape", &in[0], v, KILN_MAX_RANK, &n))
		return 1;
	if (n != out[0].rank)
		return rt_error(f, "node '%s' (ConstantOfShape): shape has %lld elements, the compiled "
		                "rank is %d", loc, (long long)n, out[0].rank);
	for (int i = 0; i < n; i++) {
		if (v[i] < 0)
			return rt_error(f, "node '%s' (ConstantOfShape): shape element %d is %lld", loc, i,
			                (long long)v[i]);
		out[0].dims[i] = v[i];
	}
	return 0;
}

RT_SHAPE(Range)
{
	int32_t dt = out[0].dtype;
	for (int k = 0; k < 3; k++)
		if (in[k].dtype != dt || rt_numel(&in[k]) != 1 || !in[k].data)
			return rt_error(f, "node '%s' (Range): input %d must be a %s scalar", loc, k,
			                rt_dtype_name(dt));
	if (rt_is_float(dt)) {
		double s = rt_get_f64(in[0].data, dt, 0), l = rt_get_f64(in[1].data, dt, 0);
		double d = rt_get_f64(in[2].data, dt, 0), n = d != 0 ? ceil((l - s) / d) : NAN;
		if (!(n == n) || n > 9.2e18)
			return rt_error(f, "node '%s' (Range): start %g, limit %g, delta %g give no length",
			                loc, s, l, d);
		out[0].dims[0] = n < 0 ? 0 : (int64_t)n;
		return 0;
	}
	int64_t s = rt_get_i64(in[0].data, dt, 0), l = rt_get_i64(in[1].data, dt, 0);
	int64_t d = rt_get_i64(in[2].data, dt, 0);
	if (d == 0)
		return rt_error(f, "node '%s' (Range): delta is 0", loc);
	bool up = d > 0;   /* as in the kernel: exact for any int64 values */
	uint64_t span = up ? (l > s ? (uint64_t)l - (uint64_t)s : 0) : (s > l ? (uint64_t)s - (uint64_t)l : 0);
	uint64_t step = up ? (uint64_t)d : 0 - (uint64_t)d;
	uint64_t n = span / step + (span % step != 0);
	if (n > (uint64_t)INT64_MAX)
		return rt_error(f, "node '%s' (Range): %llu elements overflow", loc, (unsigned long long)n);
	out[0].dims[0] = (int64_t)n;
	return 0;
}

RT_SHAPE(Slice)
{
	int64_t start[KILN_MAX_RANK], step[KILN_MAX_RANK];
	if (out[0].rank != in[0].rank)
		return rt_error(f, "node '%s' (Slice): output rank %d, input %d", loc, out[0].rank,
		                in[0].rank);
	return slice_plan(f, loc, in, nin, start, step, out[0].dims);
}

/* axes (in[1]) normalized against rank r into ax, distinct; their count. */
static int axes_of(kiln_frame *f, const char *loc, const char *op, const rt_t *t, int r,
                   bool *mark, int64_t *cnt)
{
	int64_t v[KILN_MAX_RANK] = {0};
	if (shape_ints(f, loc, op, "axes", t, v, KILN_MAX_RANK, cnt))
		return 1;
	for (int i = 0; i < r; i++)
		mark[i] = false;
	for (int64_t i = 0; i < *cnt; i++) {
		int64_t a = v[i] < 0 ? v[i] + r : v[i];
		if (a < 0 || a >= r || mark[a])
			return rt_error(f, "node '%s' (%s): axis %lld out of range or repeated for rank %d",
			                loc, op, (long long)v[i], r);
		mark[a] = true;
	}
	return 0;
}

RT_SHAPE(Squeeze)
{
	const rt_t *x = &in[0];
	bool drop[KILN_MAX_RANK];
	int64_t cnt;
	if (axes_of(f, loc, "Squeeze", &in[1], x->rank, drop, &cnt))
		return 1;
	if (x->rank - cnt != out[0].rank)
		return rt_error(f, "node '%s' (Squeeze): %lld axes, the compiled rank is %d", loc,
		                (long long)cnt, out[0].rank);
	for (int i = 0, k = 0; i < x->rank; i++) {
		if (drop[i] && x->dims[i] != 1)
			return rt_error(f, "node '%s' (Squeeze): cannot squeeze axis %d of size %lld", loc, i,
			                (long long)x->dims[i]);
		if (!drop[i])
			out[0].dims[k++] = x->dims[i];
	}
	return 0;
}

RT_SHAPE(Unsqueeze)
{
	const rt_t *x = &in[0];
	bool ins[KILN_MAX_RANK];
	int64_t cnt;
	int r = out[0].rank;
	if (axes_of(f, loc, "Unsqueeze", &in[1], r, ins, &cnt))
		return 1;
	if (x->rank + cnt != r)
		return rt_error(f, "node '%s' (Unsqueeze): %lld axes, the compiled rank is %d", loc,
		                (long long)cnt, r);
	for (int i = 0, k = 0; i < r; i++)
		out[0].dims[i] = ins[i] ? 1 : x->dims[k++];
	return 0;
}

RT_SHAPE(Split)
{
	const rt_t *x = &in[0];
	int64_t v[64] = {0}, n, axis = nia > 0 ? ia[0] : 0, sum = 0;
	if (axis < 0 || axis >= x->rank)
		return rt_error(f, "node '%s' (Split): axis %lld out of range", loc, (long long)axis);
	if (shape_ints(f, loc, "Split", "split", &in[1], v, 64, &n))
		return 1;
	if (n != nout)
		return rt_error(f, "node '%s' (Split): %lld split sizes for %d outputs", loc, (long long)n,
		                nout);
	for (int k = 0; k < nout; k++) {
		if (v[k] < 0 || !rt_ck_add(sum, v[k], &sum))
			return rt_error(f, "node '%s' (Split): split size %d is %lld", loc, k,
			                (long long)v[k]);
		for (int d = 0; d < x->rank; d++)
			out[k].dims[d] = d == axis ? v[k] : x->dims[d];
	}
	if (sum != x->dims[axis])
		return rt_error(f, "node '%s' (Split): split sizes sum to %lld, axis %lld has %lld", loc,
		                (long long)sum, (long long)axis, (long long)x->dims[axis]);
	return 0;
}

RT_SHAPE(OneHot)
{
	const rt_t *ind = &in[0], *dp = &in[1];
	int64_t axis = nia > 0 ? ia[0] : out[0].rank - 1;
	if (out[0].rank != ind->rank + 1 || axis < 0 || axis >= out[0].rank)
		return rt_error(f, "node '%s' (OneHot): axis %lld out of range", loc, (long long)axis);
	if (rt_numel(dp) != 1 || !dp->data)
		return rt_error(f, "node '%s' (OneHot): depth must have one element", loc);
	double d = rt_get_f64(dp->data, dp->dtype, 0);
	if (!(d >= 0 && d < 9.2e18))
		return rt_error(f, "node '%s' (OneHot): depth %g", loc, d);
	for (int i = 0, k = 0; i < out[0].rank; i++)
		out[0].dims[i] = i == axis ? (int64_t)d : ind->dims[k++];
	return 0;
}

RT_SHAPE(Reduce)
{
	const rt_t *x = &in[0];
	bool red[KILN_MAX_RANK];
	int64_t cnt;
	bool keep = nia > 0 ? ia[0] != 0 : true;
	if (axes_of(f, loc, "Reduce", &in[1], x->rank, red, &cnt))
		return 1;
	if (out[0].rank != (keep ? x->rank : x->rank - (int)cnt))
		return rt_error(f, "node '%s' (Reduce): %lld axes, the compiled rank is %d", loc,
		                (long long)cnt, out[0].rank);
	for (int i = 0, k = 0; i < x->rank; i++)
		if (!red[i])
			out[0].dims[k++] = x->dims[i];
		else if (keep)
			out[0].dims[k++] = 1;
	return 0;
}

int rt_reduce_axes(kiln_frame *f, const char *loc, const char *op, const rt_t *in, int32_t nin,
                   const int64_t *ia, int64_t *out, int32_t *nout)
{
	bool red[KILN_MAX_RANK];
	int64_t cnt = 0;
	int r = in[0].rank;
	if (nin < 2 || axes_of(f, loc, op, &in[1], r, red, &cnt))
		return nin < 2 ? rt_error(f, "node '%s' (%s): no axes input", loc, op) : 1;
	out[0] = ia[0];
	out[1] = 0;
	for (int d = 0; d < r; d++)   /* no axes: all of them, unless noop_with_empty_axes */
		if (red[d] || (cnt == 0 && !ia[2]))
			out[2 + out[1]++] = d;
	*nout = (int32_t)(2 + out[1]);
	return 0;
}
