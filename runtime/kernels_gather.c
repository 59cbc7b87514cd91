/* kernels_gather.c: indexing ops: Gather, GatherElements, GatherND,
 * ScatterND, OneHot, TopK.
 * Every index is bounds-checked (negative indices wrap once) before any
 * data moves: an out-of-range index -- e.g. a token id past the vocabulary
 * -- is an error naming the node, never a wild read.
 *
 * Attributes: Gather, GatherElements, OneHot ia=[axis]; GatherND
 * ia=[batch_dims]; ScatterND ia=[reduction] (0 none, 1 add, 2 mul, 3 max,
 * 4 min); TopK ia=[axis, largest, sorted] (K from in[1]). */
#include <stdlib.h>
#include <string.h>

#include "rt_internal.h"

/* Index i of ind, in [-n, n) (wrapped into [0, n)), else one line naming
 * the indices a user fed (token ids) and the table x indexed when it is a
 * constant (the word embedding). */
static int get_index(kiln_frame *f, const char *loc, const char *op, const rt_t *x,
                     const rt_t *ind, int64_t i, int64_t n, int64_t *out)
{
	int64_t v = rt_get_i64(ind->data, ind->dtype, i);
	if (v < -n || v >= n) {
		const char *name = rt_input_name(f, ind->data), *tab = rt_const_name(f, x->data);
		return rt_error(f, "node '%s' (%s): index %lld%s%s%s out of range [0, %lld)%s%s%s", loc,
		                op, (long long)v, name ? " of '" : "", name ? name : "",
		                name ? "'" : "", (long long)n, tab ? " of table '" : "",
		                tab ? tab : "", tab ? "'" : "");
	}
	*out = v < 0 ? v + n : v;
	return 0;
}

static int check_index_dtype(kiln_frame *f, const char *loc, const char *op, const rt_t *ind)
{
	if (ind->dtype != KILN_I64 && ind->dtype != KILN_I32)
		return rt_error(f, "node '%s' (%s): indices must be i32 or i64, got %s", loc, op,
		                rt_dtype_name(ind->dtype));
	return 0;
}

/* ---- Gather ---- */

typedef struct ga_job {
	const char *x;
	char *y;
	const rt_t *ind;
	int64_t nind, n, inner;
	size_t esz;
} ga_job;

static void ga_range(void *arg, int64_t b, int64_t e)
{
	const ga_job *j = arg;
	size_t row = (size_t)j->inner * j->esz;
	for (int64_t t = b; t < e; t++) {
		int64_t o = t / j->nind, k = t % j->nind;
		int64_t v = rt_get_i64(j->ind->data, j->ind->dtype, k);
		if (v < 0)
			v += j->n;                   /* checked already */
		memcpy(j->y + (size_t)t * row, j->x + (size_t)(o * j->n + v) * row, row);
	}
}

RT_KERNEL(Gather)
{
	const rt_t *x = &in[0], *ind = &in[1];
	rt_t *y = &out[0];
	int64_t axis = nia > 0 ? ia[0] : 0;
	if (axis < 0 || axis >= x->rank)
		return rt_error(f, "node '%s' (Gather): axis %lld out of range for rank %d", loc,
		                (long long)axis, x->rank);
	if (check_index_dtype(f, loc, "Gather", ind))
		return 1;
	ga_job j = { .x = x->data, .y = y->data, .ind = ind, .nind = rt_numel(ind),
	             .n = x->dims[axis], .inner = 1, .esz = rt_dtype_size(x->dtype) };
	int64_t outer = 1;
	for (int d = 0; d < axis; d++)
		outer *= x->dims[d];
	for (int d = (int)axis + 1; d < x->rank; d++)
		j.inner *= x->dims[d];
	if (y->dtype != x->dtype || rt_numel(y) != outer * j.nind * j.inner)
		return rt_error(f, "node '%s' (Gather): output has %lld elements, expected %lld", loc,
		                (long long)rt_numel(y), (long long)(outer * j.nind * j.inner));
	for (int64_t i = 0; i < j.nind; i++) {
		int64_t v;
		if (get_index(f, loc, "Gather", x, ind, i, j.n, &v))
			return 1;
	}
	rt_par(f, outer * j.nind, j.inner, ga_range, &j);
	return 0;
}

/* ---- GatherElements ---- */

RT_KERNEL(GatherElements)
{
	const rt_t *x = &in[0], *ind = &in[1];
	rt_t *y = &out[0];
	int r = x->rank;
	int64_t axis = nia > 0 ? ia[0] : 0;
	if (axis < 0 || axis >= r || ind->rank != r || y->rank != r || y->dtype != x->dtype)
		return rt_error(f, "node '%s' (GatherElements): bad axis or ranks", loc);
	if (check_index_dtype(f, loc, "GatherElements", ind))
		return 1;
	for (int d = 0; d < r; d++)
		if (y->dims[d] != ind->dims[d] || (d != axis && ind->dims[d] > x->dims[d]))
			return rt_error(f, "node '%s' (GatherElements): indices dim %d is %lld, data %lld",
			                loc, d, (long long)ind->dims[d], (long long)x->dims[d]);
	int64_t st[KILN_MAX_RANK], s = 1, idx[KILN_MAX_RANK] = {0};
	for (int d = r - 1; d >= 0; d--) {
		st[d] = s;
		s *= x->dims[d];
	}
	int64_t n = rt_numel(ind);
	size_t esz = rt_dtype_size(x->dtype);
	for (int64_t i = 0; i < n; i++) {
		int64_t v = 0, off = 0;
		if (get_index(f, loc, "GatherElements", x, ind, i, x->dims[axis], &v))
			return 1;
		for (int d = 0; d < r; d++)
			off += (d == axis ? v : idx[d]) * st[d];
		memcpy((char *)y->data + (size_t)i * esz, (const char *)x->data + (size_t)off * esz, esz);
		for (int d = r - 1; d >= 0; d--) {
			if (++idx[d] < ind->dims[d])
				break;
			idx[d] = 0;
		}
	}
	return 0;
}

/* ---- GatherND ---- */

RT_KERNEL(GatherND)
{
	const rt_t *x = &in[0], *ind = &in[1];
	rt_t *y = &out[0];
	int r = x->rank, q = ind->rank;
	int64_t b = nia > 0 ? ia[0] : 0;
	if (check_index_dtype(f, loc, "GatherND", ind))
		return 1;
	if (q < 1 || b < 0 || b >= q || b >= r)
		return rt_error(f, "node '%s' (GatherND): bad batch_dims %lld", loc, (long long)b);
	int64_t m = ind->dims[q - 1];
	if (m < 1 || m > r - b)
		return rt_error(f, "node '%s' (GatherND): index tuples of %lld for rank %d", loc,
		                (long long)m, r);
	int64_t nbatch = 1, ntup = 1, slice = 1, st[KILN_MAX_RANK], s = 1;
	for (int d = 0; d < b; d++) {
		if (ind->dims[d] != x->dims[d])
			return rt_error(f, "node '%s' (GatherND): batch dim %d is %lld in indices, %lld in "
			                "data", loc, d, (long long)ind->dims[d], (long long)x->dims[d]);
		nbatch *= x->dims[d];
	}
	for (int d = (int)b; d < q - 1; d++)
		ntup *= ind->dims[d];
	for (int d = (int)(b + m); d < r; d++)
		slice *= x->dims[d];
	for (int d = r - 1; d >= 0; d--) {
		st[d] = s;
		s *= x->dims[d];
	}
	int64_t bstride = b > 0 ? st[b - 1] : s;
	if (y->dtype != x->dtype || rt_numel(y) != nbatch * ntup * slice)
		return rt_error(f, "node '%s' (GatherND): output has %lld elements, expected %lld", loc,
		                (long long)rt_numel(y), (long long)(nbatch * ntup * slice));
	size_t esz = rt_dtype_size(x->dtype);
	for (int64_t t = 0; t < nbatch * ntup; t++) {      /* check all first */
		for (int64_t k = 0; k < m; k++) {
			int64_t v;
			if (get_index(f, loc, "GatherND", x, ind, t * m + k, x->dims[b + k], &v))
				return 1;
		}
	}
	for (int64_t t = 0; t < nbatch * ntup; t++) {
		int64_t off = (t / ntup) * bstride;
		for (int64_t k = 0; k < m; k++) {
			int64_t v = 0;
			get_index(f, loc, "GatherND", x, ind, t * m + k, x->dims[b + k], &v);
			off += v * st[b + k];
		}
		memcpy((char *)y->data + (size_t)(t * slice) * esz,
		       (const char *)x->data + (size_t)off * esz, (size_t)slice * esz);
	}
	return 0;
}

/* ---- ScatterND ---- */

enum { SC_NONE, SC_ADD, SC_MUL, SC_MAX, SC_MIN };

/* T's values, + and * in U (integers wrap, as ONNX Runtime's do) */
#define SC_COMBINE(T, U) { \
	T *d = dst; \
	const T *s = src; \
	for (int64_t i = 0; i < n; i++) \
		d[i] = red == SC_ADD ? (T)((U)d[i] + (U)s[i]) : red == SC_MUL ? (T)((U)d[i] * (U)s[i]) : \
		       red == SC_MAX ? (d[i] > s[i] ? d[i] : s[i]) : (d[i] < s[i] ? d[i] : s[i]); \
	return 0; }

/* dst[i] = dst[i] (red) src[i] for n elements; 1 for a dtype without. */
static int scatter_combine(void *dst, const void *src, int32_t dt, int64_t n, int red)
{
	switch (dt) {
	case KILN_F32: SC_COMBINE(float, float)
	case KILN_F64: SC_COMBINE(double, double)
	case KILN_I32: SC_COMBINE(int32_t, uint32_t)
	case KILN_I64: SC_COMBINE(int64_t, uint64_t)
	default: return 1;
	}
}

RT_KERNEL(ScatterND)
{
	const rt_t *x = &in[0], *ind = &in[1], *u = &in[2];
	rt_t *y = &out[0];
	int r = x->rank, q = ind->rank, red = nia > 0 ? (int)ia[0] : SC_NONE;
	if (check_index_dtype(f, loc, "ScatterND", ind))
		return 1;
	int64_t m = q > 0 ? ind->dims[q - 1] : 0, ntup = 1, slice = 1, st[KILN_MAX_RANK], s = 1;
	if (m < 1 || m > r)
		return rt_error(f, "node '%s' (ScatterND): index tuples of %lld for rank %d", loc,
		                (long long)m, r);
	for (int d = 0; d < q - 1; d++)
		ntup *= ind->dims[d];
	for (int d = (int)m; d < r; d++)
		slice *= x->dims[d];
	for (int d = r - 1; d >= 0; d--) {
		st[d] = s;
		s *= x->dims[d];
	}
	if (u->dtype != x->dtype || rt_numel(u) != ntup * slice || y->dtype != x->dtype ||
	    rt_numel(y) != rt_numel(x))
		return rt_error(f, "node '%s' (ScatterND): updates must be %lld %s elements", loc,
		                (long long)(ntup * slice), rt_dtype_name(x->dtype));
	if (red < SC_NONE || red > SC_MIN ||
	    (red != SC_NONE && scatter_combine(NULL, NULL, x->dtype, 0, red)))
		return rt_error(f, "node '%s' (ScatterND): reduction %d on %s", loc, red,
		                rt_dtype_name(x->dtype));
	for (int64_t t = 0; t < ntup; t++)      /* check all first */
		for (int64_t k = 0; k < m; k++) {
			int64_t v;
			if (get_index(f, loc, "ScatterND", x, ind, t * m + k, x->dims[k], &v))
				return 1;
		}
	size_t esz = rt_dtype_size(x->dtype);
	if (y->data != x->data && rt_numel(x) > 0)
		memmove(y->data, x->data, (size_t)rt_numel(x) * esz);
	for (int64_t t = 0; t < ntup; t++) {
		int64_t off = 0;
		for (int64_t k = 0; k < m; k++) {
			int64_t v = 0;
			get_index(f, loc, "ScatterND", x, ind, t * m + k, x->dims[k], &v);
			off += v * st[k];
		}
		char *dst = (char *)y->data + (size_t)off * esz;
		const char *src = (const char *)u->data + (size_t)(t * slice) * esz;
		if (red == SC_NONE)
			memcpy(dst, src, (size_t)slice * esz);
		else
			scatter_combine(dst, src, x->dtype, slice, red);
	}
	return 0;
}

/* ---- OneHot ---- */

RT_KERNEL(OneHot)
{
	const rt_t *ind = &in[0];
	rt_t *y = &out[0];
	int64_t axis = nia > 0 ? ia[0] : y->rank - 1;
	if (axis < 0 || axis >= y->rank || y->rank != ind->rank + 1)
		return rt_error(f, "node '%s' (OneHot): axis %lld out of range", loc, (long long)axis);
	if (rt_numel(&in[1]) != 1 || rt_numel(&in[2]) != 2 || in[2].dtype != y->dtype)
		return rt_error(f, "node '%s' (OneHot): depth must be a scalar, values [off, on] of the "
		                "output dtype", loc);
	int64_t depth = rt_get_i64(in[1].data, in[1].dtype, 0);
	if (depth != y->dims[axis])
		return rt_error(f, "node '%s' (OneHot): depth %lld, output dim %lld", loc,
		                (long long)depth, (long long)y->dims[axis]);
	int64_t outer = 1, inner = 1;
	for (int d = 0; d < ind->rank; d++)
		*(d < axis ? &outer : &inner) *= ind->dims[d];
	size_t esz = rt_dtype_size(y->dtype);
	const char *off = in[2].data, *on = off + esz;
	char *p = y->data;
	for (int64_t i = 0; i < outer * depth * inner; i++)
		memcpy(p + (size_t)i * esz, off, esz);
	for (int64_t o = 0; o < outer; o++)
		for (int64_t i = 0; i < inner; i++) {
			int64_t v = rt_get_i64(ind->data, ind->dtype, o * inner + i);
			if (v < 0)
				v += depth;
			if (v >= 0 && v < depth)
				memcpy(p + (size_t)((o * depth + v) * inner + i) * esz, on, esz);
		}
	return 0;
}

/* ---- TopK ---- */

/* K of TopK (in[1]) for an axis of n: 0 or rt_error. */
static int topk_k(kiln_frame *f, const char *loc, const rt_t *kt, int64_t n, int64_t *k)
{
	if (kt->dtype != KILN_I64 || rt_numel(kt) != 1 || !kt->data)
		return rt_error(f, "node '%s' (TopK): K must be one i64", loc);
	*k = rt_get_i64(kt->data, KILN_I64, 0);
	if (*k < 0 || *k > n)
		return rt_error(f, "node '%s' (TopK): K %lld out of range for an axis of %lld", loc,
		                (long long)*k, (long long)n);
	return 0;
}

RT_SHAPE(TopK)
{
	const rt_t *x = &in[0];
	int64_t axis = nia > 0 ? ia[0] : x->rank - 1, k = 0;
	if (axis < 0 || axis >= x->rank || out[0].rank != x->rank || out[1].rank != x->rank)
		return rt_error(f, "node '%s' (TopK): axis %lld for rank %d", loc, (long long)axis,
		                x->rank);
	if (topk_k(f, loc, &in[1], x->dims[axis], &k))
		return 1;
	for (int d = 0; d < x->rank; d++)
		out[0].dims[d] = out[1].dims[d] = d == axis ? k : x->dims[d];
	return 0;
}

/* Whether element a goes before element b (indices into one row of
 * stride st): the larger (smaller) first, NaN the largest, ties by the
 * lower index. */
static bool topk_before(const rt_t *x, int64_t base, int64_t st, int64_t a, int64_t b, bool largest)
{
	int c;
	if (rt_is_float(x->dtype)) {
		double va = rt_get_f64(x->data, x->dtype, base + a * st);
		double vb = rt_get_f64(x->data, x->dtype, base + b * st);
		bool na = va != va, nb = vb != vb;
		c = na || nb ? (int)na - (int)nb : (va > vb) - (va < vb);
	} else {
		int64_t va = rt_get_i64(x->data, x->dtype, base + a * st);
		int64_t vb = rt_get_i64(x->data, x->dtype, base + b * st);
		c = (va > vb) - (va < vb);
	}
	if (!largest)
		c = -c;
	return c > 0 || (c == 0 && a < b);
}

/* Sorts idx[0..n) by topk_before (merge sort through tmp). */
static void topk_sort(const rt_t *x, int64_t base, int64_t st, int64_t *idx, int64_t *tmp, int64_t n,
                      bool largest)
{
	for (int64_t w = 1; w < n; w *= 2) {
		for (int64_t lo = 0; lo < n; lo += 2 * w) {
			int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
			int64_t i = lo, j = mid, o = lo;
			while (i < mid && j < hi)
				tmp[o++] = topk_before(x, base, st, idx[j], idx[i], largest) ? idx[j++] : idx[i++];
			while (i < mid)
				tmp[o++] = idx[i++];
			while (j < hi)
				tmp[o++] = idx[j++];
		}
		memcpy(idx, tmp, (size_t)n * sizeof *idx);
	}
}

RT_KERNEL(TopK)
{
	const rt_t *x = &in[0];
	int r = x->rank;
	int64_t axis = nia > 0 ? ia[0] : r - 1, k = 0;
	bool largest = nia > 1 ? ia[1] != 0 : true;
	if (axis < 0 || axis >= r)
		return rt_error(f, "node '%s' (TopK): axis %lld for rank %d", loc, (long long)axis, r);
	int64_t n = x->dims[axis];
	if (topk_k(f, loc, &in[1], n, &k))
		return 1;
	for (int o = 0; o < 2; o++) {
		bool dims_ok = out[o].rank == r;
		for (int d = 0; dims_ok && d < r; d++)
			dims_ok = out[o].dims[d] == (d == axis ? k : x->dims[d]);
		if (!dims_ok || out[o].dtype != (o ? KILN_I64 : x->dtype))
			return rt_error(f, "node '%s' (TopK): output %d must be %s with %lld on axis %lld", loc,
			                o, rt_dtype_name(o ? KILN_I64 : x->dtype), (long long)k, (long long)axis);
	}
	int64_t outer = 1, inner = 1;
	for (int d = 0; d < axis; d++)
		outer *= x->dims[d];
	for (int d = (int)axis + 1; d < r; d++)
		inner *= x->dims[d];
	if (k == 0 || outer * inner == 0)
		return 0;
	int64_t *idx = malloc((size_t)n * 2 * sizeof *idx);
	if (!idx)
		return rt_error(f, "node '%s' (TopK): out of memory for %lld indices", loc, (long long)n);
	size_t esz = rt_dtype_size(x->dtype);
	for (int64_t p = 0; p < outer; p++)
		for (int64_t q = 0; q < inner; q++) {
			int64_t base = p * n * inner + q;
			for (int64_t i = 0; i < n; i++)
				idx[i] = i;
			topk_sort(x, base, inner, idx, idx + n, n, largest);
			for (int64_t j = 0; j < k; j++) {
				int64_t dst = (p * k + j) * inner + q;
				memcpy((char *)out[0].data + dst * (int64_t)esz,
				       (const char *)x->data + (base + idx[j] * inner) * (int64_t)esz, esz);
				((int64_t *)out[1].data)[dst] = idx[j];
			}
		}
	free(idx);
	return 0;
}
