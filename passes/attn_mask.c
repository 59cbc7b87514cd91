/* Value analyses of attention masks (see attn_mask.h): a tensor as a
 * function of the query position q and the key position k of the scores.
 *
 * Three levels, each proved from how the value is computed, never from an
 * exporter's node names:
 *   affine index   v = cf[0] * i0 + cf[1] * i1 + ... + c, where i_r is the
 *                  index along the r-th axis from the right (0: keys k,
 *                  1: queries q) and each varying axis comes from a Range
 *                  of a known length;
 *   predicate      bool v = (k - q <= t) or its negation;
 *   step           v = (k - q <= t) ? lo : hi.
 * A constant band (GPT-2's causal buffer) sliced is a step or a predicate
 * too: its entries are checked one by one, its slice bounds symbolically. */
#include <math.h>
#include <string.h>

#include "attn_mask.h"

#define MAXR 4
#define DEPTH 16

typedef struct Aff {
	int64_t cf[MAXR];    /* per axis from the right */
	DimId cd[MAXR];      /* the iota's length along that axis (where cf != 0) */
	int64_t c;
	DimId cs;            /* symbolic part of the constant (a KV cache's past length), or -1 */
} Aff;

/* The dims are hash-consed in the graph: forming a - b or a + b interns a
 * new expression, which changes no value, node or shape.  The matchers get
 * a const Graph; these are the only writes they make. */
static DimId dsum(const Graph *g, DimId a, DimId b, int sign)
{
	Graph *mg = (Graph *)g;
	if (b < 0)
		return a;
	if (sign < 0)
		b = ir_dim_sub(mg, ir_dim_const(mg, 0), b);
	return a < 0 ? b : ir_dim_add(mg, a, b);
}

static DimId dscale(const Graph *g, DimId a, int64_t s)
{
	return a < 0 ? a : ir_dim_mul((Graph *)g, a, ir_dim_const((Graph *)g, s));
}

static bool fail(const char **why, const char *msg)
{
	if (why && !*why)
		*why = msg;
	return false;
}

static bool int_scalar(const Graph *g, ValId v, int64_t *x)
{
	double d;
	if (!m_const_scalar(g, v, &d) || d != floor(d) || fabs(d) > 1e15)
		return false;
	*x = (int64_t)d;
	return true;
}

/* v is one integer known to shape inference: a constant *x (*xs = -1) or
 * a symbolic one *xs (a length read by Shape/Gather, *x = 0). */
static bool sym_scalar(const Graph *g, ValId v, int64_t *x, DimId *xs)
{
	*xs = -1;
	if (int_scalar(g, v, x))
		return true;
	const Value *vv = IR_VAL(g, v);
	if (!vv->sval || vv->nsval != 1 || vv->rank > 1 || !ir_dtype_is_int(vv->dtype))
		return false;
	if (ir_dim_is_const(g, vv->sval[0], x))
		return true;
	*x = 0;
	*xs = vv->sval[0];
	return true;
}

/* Maps axes of x onto axes of y = Unsqueeze/Reshape(x) that only inserts
 * or removes unit dims: the non-unit dims agree in order.  map[r] is the
 * axis from the right of y holding x's axis r from the right (-1: unit). */
static bool unit_map(const Graph *g, ValId x, ValId y, int *map)
{
	const Value *xv = IR_VAL(g, x), *yv = IR_VAL(g, y);
	if (xv->rank < 0 || yv->rank < 0 || xv->rank > MAXR || yv->rank > MAXR)
		return false;
	int j = yv->rank - 1;
	for (int i = xv->rank - 1; i >= 0; i--) {
		int rx = xv->rank - 1 - i;
		if (m_dim_is(g, xv->dims[i], 1)) {
			map[rx] = -1;
			continue;
		}
		while (j >= 0 && m_dim_is(g, yv->dims[j], 1))
			j--;
		if (j < 0 || yv->dims[j] != xv->dims[i])
			return false;
		map[rx] = yv->rank - 1 - j;
		j--;
	}
	for (; j >= 0; j--)
		if (!m_dim_is(g, yv->dims[j], 1))
			return false;
	return true;
}

static bool aff(const Graph *g, ValId v, Aff *a, int depth, const char **why);

static bool aff_binary(const Graph *g, const Node *nd, Aff *a, int depth, const char **why)
{
	Aff x, y;
	int64_t s;
	if (nd->op == OP_Mul) {
		for (int k = 0; k < 2; k++)
			if (int_scalar(g, nd->in[1 - k], &s) && aff(g, nd->in[k], a, depth + 1, why)) {
				for (int r = 0; r < MAXR; r++)
					a->cf[r] *= s;
				a->c *= s;
				a->cs = dscale(g, a->cs, s);
				return true;
			}
		return fail(why, "an index multiplied by a non-constant");
	}
	if (!aff(g, nd->in[0], &x, depth + 1, why) || !aff(g, nd->in[1], &y, depth + 1, why))
		return false;
	int sg = nd->op == OP_Sub ? -1 : 1;
	*a = x;
	a->c = x.c + sg * y.c;
	a->cs = dsum(g, x.cs, y.cs, sg);
	for (int r = 0; r < MAXR; r++) {
		if (y.cf[r] && x.cf[r] && x.cd[r] != y.cd[r])
			return fail(why, "two iotas of different lengths on one axis");
		if (y.cf[r] && !x.cf[r])
			a->cd[r] = y.cd[r];
		a->cf[r] = x.cf[r] + sg * y.cf[r];
	}
	return true;
}

/* v is an affine function of its indices (see the top). */
static bool aff(const Graph *g, ValId v, Aff *a, int depth, const char **why)
{
	memset(a, 0, sizeof *a);
	a->cs = -1;
	if (depth > DEPTH)
		return fail(why, "index expression too deep");
	if (sym_scalar(g, v, &a->c, &a->cs))
		return true;
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0)
		return fail(why, "an index that is neither a constant nor computed from a Range");
	const Node *nd = IR_NODE(g, n);
	const Value *vv = IR_VAL(g, v);
	int map[MAXR];
	switch (nd->op) {
	case OP_Range:
		if (vv->rank != 1 || !sym_scalar(g, nd->in[0], &a->c, &a->cs) ||
		    !int_scalar(g, nd->in[2], &a->cf[0]))
			return fail(why, "a Range whose start or delta is not a constant");
		a->cd[0] = vv->dims[0];
		return true;
	case OP_Unsqueeze:
	case OP_Reshape: {
		Aff x;
		if (!unit_map(g, nd->in[0], v, map))
			return fail(why, "a Reshape that does more than insert unit dims");
		if (!aff(g, nd->in[0], &x, depth + 1, why))
			return false;
		a->c = x.c;
		a->cs = x.cs;
		for (int r = 0; r < IR_VAL(g, nd->in[0])->rank; r++)
			if (x.cf[r] && map[r] >= 0) {
				a->cf[map[r]] = x.cf[r];
				a->cd[map[r]] = x.cd[r];
			}
		return true;
	}
	case OP_Expand:   /* right-aligned: varying axes keep their place and length */
	case OP_Cast:
		if (nd->op == OP_Cast && ir_attr_int(g, n, "to", 0) == DT_BOOL)
			return fail(why, "an index cast to bool");
		return aff(g, nd->in[0], a, depth + 1, why);
	case OP_Add:
	case OP_Sub:
	case OP_Mul:
		return aff_binary(g, nd, a, depth, why);
	default:
		return fail(why, "an index computed by an op other than Range, Unsqueeze, Reshape, "
		                 "Expand, Cast, Add, Sub, Mul");
	}
}

/* a is s * (k - q) + c over scores [.., sq, sk]: the iotas have the
 * scores' lengths, nothing else varies. */
static bool aff_kq(const Aff *a, DimId sq, DimId sk, int64_t *s, const char **why)
{
	for (int r = 2; r < MAXR; r++)
		if (a->cf[r])
			return fail(why, "the compared indices vary along a batch or head axis");
	if ((a->cf[0] != 1 && a->cf[0] != -1) || a->cf[1] != -a->cf[0])
		return fail(why, "the comparison is not of k - q (key index against query index)");
	if (a->cd[0] != sk || a->cd[1] != sq)
		return fail(why, "the key or query iota's length is not the scores' key or query length");
	*s = a->cf[0];
	return true;
}

/* Shape-only steps that keep a mask's last two axes: Unsqueeze, Reshape
 * inserting unit dims in front, Expand, bool Cast of a bool. */
static ValId through_views(const Graph *g, ValId v)
{
	for (int i = 0; i < DEPTH; i++) {
		NodeId n = m_def(g, v, OP_COUNT);
		if (n < 0)
			return v;
		const Node *nd = IR_NODE(g, n);
		ValId x = nd->nin > 0 ? nd->in[0] : -1;
		const Value *xv = x >= 0 ? IR_VAL(g, x) : NULL, *vv = IR_VAL(g, v);
		bool ok = false;
		int map[MAXR];
		switch (nd->op) {
		case OP_Expand:
			ok = xv->rank >= 2 && vv->rank >= xv->rank &&
			     vv->dims[vv->rank - 1] == xv->dims[xv->rank - 1] &&
			     vv->dims[vv->rank - 2] == xv->dims[xv->rank - 2];
			break;
		case OP_Unsqueeze:
		case OP_Reshape:
			ok = xv->rank >= 2 && unit_map(g, x, v, map) && map[0] == 0 && map[1] == 1;
			break;
		case OP_Cast:
			ok = xv->dtype == vv->dtype;
			break;
		default:
			break;
		}
		if (!ok)
			return v;
		v = x;
	}
	return v;
}

/* ---- a constant causal buffer, sliced (GPT-2 through TorchScript) -------- */

/* Element k of a small integer value v as a dim: a constant or a symbolic
 * length (shape arithmetic); -1 if unknown. */
static DimId elem_dim(const Graph *g, ValId v, int64_t k)
{
	const Value *vv = IR_VAL(g, v);
	if (vv->sval && k < vv->nsval)
		return vv->sval[k];
	if (vv->data && vv->dtype == DT_I64 && vv->nbytes >= (size_t)(k + 1) * 8) {
		int64_t x;
		memcpy(&x, (const char *)vv->data + 8 * (size_t)k, 8);
		return ir_dim_const((Graph *)g, x);
	}
	return -1;
}

/* Element k of constant c as a number (bool, u8, i32, i64, f32). */
static double const_elem(const Value *c, size_t k)
{
	const char *p = c->data;
	switch (c->dtype) {
	case DT_I32: { int32_t i; memcpy(&i, p + 4 * k, 4); return i; }
	case DT_I64: { int64_t i; memcpy(&i, p + 8 * k, 8); return (double)i; }
	case DT_F32: { float f; memcpy(&f, p + 4 * k, 4); return f; }
	default: return (unsigned char)p[k];   /* bool, u8 */
	}
}

/* Constant c [1.., N, N]: c[.., i, j] = j - i <= *d ? *lo : *hi, checked
 * entry by entry (a buffer with one entry off is not a band). */
static bool const_band(const Graph *g, ValId cv, int64_t *d, double *lo, double *hi,
                       const char **why)
{
	const Value *c = IR_VAL(g, cv);
	int64_t n, m;
	DType t = c->dtype;
	if (!m_is_const(g, cv) || c->rank < 2 || c->rank > MAXR ||
	    (t != DT_BOOL && t != DT_U8 && t != DT_I32 && t != DT_I64 && t != DT_F32))
		return fail(why, "the sliced buffer is not a bool, integer or f32 constant with data");
	for (int k = 0; k < c->rank - 2; k++)
		if (!m_dim_is(g, c->dims[k], 1))
			return fail(why, "the sliced buffer has a leading dim that is not 1");
	if (!ir_dim_is_const(g, c->dims[c->rank - 2], &n) ||
	    !ir_dim_is_const(g, c->dims[c->rank - 1], &m) || n != m || n < 2 ||
	    c->nbytes < (size_t)(n * n) * ir_dtype_size(t))
		return fail(why, "the sliced buffer is not a square [.., N, N] matrix, N >= 2");
	*lo = const_elem(c, 0);
	for (*d = 0; *d + 1 < n && const_elem(c, (size_t)*d + 1) == *lo; ++*d)
		;
	if (*d + 1 >= n)
		return fail(why, "the sliced buffer's first row is one value: not a causal band");
	*hi = const_elem(c, (size_t)*d + 1);
	for (int64_t i = 0; i < n; i++)
		for (int64_t j = 0; j < n; j++)
			if (const_elem(c, (size_t)(i * n + j)) != (j - i <= *d ? *lo : *hi))
				return fail(why, "the sliced buffer is not a band (lower-triangular): an entry "
				                 "differs");
	return true;
}

/* One Slice of the last two axes of its input (rows: slot 0, columns:
 * slot 1) with steps 1: its start and end per slot, as dims. */
static bool slice_bounds(const Graph *g, NodeId n, DimId *b0, DimId *b1, const char **why)
{
	const Node *nd = IR_NODE(g, n);
	const Value *x = IR_VAL(g, nd->in[0]), *sv = IR_VAL(g, nd->in[1]);
	int64_t cnt, ax, step;
	if (nd->nin < 3 || sv->rank != 1 || !ir_dim_is_const(g, sv->dims[0], &cnt) || cnt > MAXR)
		return fail(why, "a Slice whose starts are not a static list");
	for (int64_t e = 0; e < cnt; e++) {
		ax = e;
		if (nd->nin > 3 && nd->in[3] >= 0 &&
		    !ir_dim_is_const(g, elem_dim(g, nd->in[3], e), &ax))
			return fail(why, "a Slice whose axes are not constants");
		if (nd->nin > 4 && nd->in[4] >= 0 &&
		    (!ir_dim_is_const(g, elem_dim(g, nd->in[4], e), &step) || step != 1))
			return fail(why, "a Slice whose steps are not 1");
		ax = ax < 0 ? ax + x->rank : ax;
		int slot = (int)(ax - (x->rank - 2));
		if (slot < 0 || slot > 1 || b0[slot] >= 0)
			return fail(why, "a Slice of an axis other than the last two (rows, columns)");
		b0[slot] = elem_dim(g, nd->in[1], e);
		b1[slot] = elem_dim(g, nd->in[2], e);
		if (b0[slot] < 0 || b1[slot] < 0)
			return fail(why, "a Slice whose starts or ends are not known lengths");
	}
	return true;
}

/* v = Slice(C) (one Slice of both axes, or one per axis) of a constant
 * band C [1.., N, N] (const_band) taking rows r0 .. r1 and columns c0 ..
 * c1: v[q, k] = C[r0 + q, c0 + k].  Sound only when the block is taken
 * whole, so the bounds must be the causal buffer's: columns 0 .. Sk, rows
 * r0 .. Sk with r0 = Sk - Sq provably >= 0.  Then wherever the graph runs,
 * Sk <= N (else the columns are clamped to N and the Where cannot
 * broadcast them against the scores), every bound is in range, and v is
 * the step k - q <= d + r0. */
static bool slice_step(const Graph *g, NodeId n, DimId sq, DimId sk, QkStep *st, const char **why)
{
	DimId b0[2] = {-1, -1}, b1[2] = {-1, -1};
	ValId src = IR_NODE(g, n)->in[0];
	if (!slice_bounds(g, n, b0, b1, why))
		return false;
	NodeId n2 = m_def(g, src, OP_Slice);
	if (n2 >= 0) {
		if (!slice_bounds(g, n2, b0, b1, why))
			return false;
		src = IR_NODE(g, n2)->in[0];
	}
	int64_t d;
	double lo, hi;
	if (!const_band(g, src, &d, &lo, &hi, why))
		return false;
	Graph *mg = (Graph *)g;   /* interning only, see dsum */
	DimId zero = ir_dim_const(mg, 0), r0 = b0[0];
	if (b0[1] != zero || b1[1] != sk || b1[0] != sk || r0 < 0 ||
	    ir_dim_sub(mg, b1[0], r0) != sq || ir_dim_max(mg, r0, zero) != r0)
		return fail(why, "the buffer is not sliced as the causal block: rows key length - "
		                 "query length .. key length, columns 0 .. key length");
	int64_t rc;
	if (ir_dim_is_const(g, r0, &rc))
		*st = (QkStep){d + rc, -1, lo, hi};
	else
		*st = (QkStep){d, r0, lo, hi};
	return true;
}

static bool trilu_step(const Graph *g, NodeId n, DimId sq, DimId sk, QkStep *st, const char **why);

/* bool v = (k - q <= *t) != *neg */
static bool pred(const Graph *g, ValId v, DimId sq, DimId sk, int64_t *t, DimId *ts, bool *neg,
                 int depth, const char **why)
{
	v = through_views(g, v);
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0 || depth > DEPTH)
		return fail(why, "the condition is not computed by a comparison");
	const Node *nd = IR_NODE(g, n);
	bool strict = nd->op == OP_Less || nd->op == OP_Greater;
	bool swap = nd->op == OP_Greater || nd->op == OP_GreaterOrEqual;
	Aff x, y;
	int64_t s;
	switch (nd->op) {
	case OP_Not:
		if (!pred(g, nd->in[0], sq, sk, t, ts, neg, depth + 1, why))
			return false;
		*neg = !*neg;
		return true;
	case OP_And:   /* And(true, p) is p: and_masks starts from a true scalar */
	case OP_Or:    /* Or(false, p) is p */
		for (int k = 0; k < 2; k++) {
			double f;
			if (IR_VAL(g, nd->in[1 - k])->dtype == DT_BOOL &&
			    attn_filled(g, nd->in[1 - k], &f) && (f != 0) == (nd->op == OP_And))
				return pred(g, nd->in[k], sq, sk, t, ts, neg, depth + 1, why);
		}
		return fail(why, "the condition is an And/Or of two masks, neither of them constant");
	case OP_Trilu: {   /* of a true-filled bool tensor: ones(L, S).tril() */
		QkStep st;
		if (!trilu_step(g, n, sq, sk, &st, why))
			return false;
		if ((st.lo != 0) == (st.hi != 0))
			return fail(why, "Trilu of a tensor filled with false");
		*t = st.t;
		*ts = st.ts;
		*neg = st.lo == 0;
		return true;
	}
	case OP_Slice: {   /* of a constant band (GPT-2's causal buffer) */
		QkStep st;
		if (!slice_step(g, n, sq, sk, &st, why))
			return false;
		*t = st.t;
		*ts = st.ts;
		*neg = st.lo == 0;
		return true;
	}
	case OP_Less:
	case OP_LessOrEqual:
	case OP_Greater:
	case OP_GreaterOrEqual:
		if (!aff(g, nd->in[swap], &x, 0, why) || !aff(g, nd->in[!swap], &y, 0, why))
			return false;
		/* x - y <= u, u = -1 when strict (integers) */
		for (int r = 0; r < MAXR; r++) {
			if (x.cf[r] && y.cf[r] && x.cd[r] != y.cd[r])
				return fail(why, "compared iotas of different lengths on one axis");
			x.cd[r] = x.cf[r] ? x.cd[r] : y.cd[r];
			x.cf[r] -= y.cf[r];
		}
		x.c -= y.c;
		x.cs = dsum(g, x.cs, y.cs, -1);
		if (!aff_kq(&x, sq, sk, &s, why))
			return false;
		int64_t u = strict ? -1 : 0;
		if (s == 1) {          /* k - q <= u - c */
			*t = u - x.c;
			*ts = dsum(g, -1, x.cs, -1);
			*neg = false;
		} else {               /* k - q >= c - u, not (k - q <= c - u - 1) */
			*t = x.c - u - 1;
			*ts = x.cs;
			*neg = true;
		}
		return true;
	default:
		return fail(why, "the condition is not a comparison of query and key indices");
	}
}

bool attn_filled(const Graph *g, ValId v, double *f)
{
	for (int i = 0; i < DEPTH; i++) {
		if (m_const_scalar(g, v, f))
			return true;
		NodeId n = m_def(g, v, OP_COUNT);
		if (n < 0)
			return false;
		const Node *nd = IR_NODE(g, n);
		if (nd->op == OP_Expand) {
			v = nd->in[0];
			continue;
		}
		if (nd->op != OP_ConstantOfShape)
			return false;
		const Attr *a = ir_attr_get(g, n, "value");
		if (!a) {
			*f = 0;
			return true;
		}
		const TensorLit *t = a->kind == A_TENSOR ? a->u.t : NULL;
		if (!t || !t->data || t->nbytes != ir_dtype_size(t->dtype))
			return false;
		switch (t->dtype) {
		case DT_F32: { float x; memcpy(&x, t->data, 4); *f = x; return true; }
		case DT_I64: { int64_t x; memcpy(&x, t->data, 8); *f = (double)x; return true; }
		case DT_BOOL: *f = ((const unsigned char *)t->data)[0]; return true;
		default: return false;
		}
	}
	return false;
}

/* a op b in v's dtype (f32 rounding for f32, as the graph computes) */
static double arith(Op op, double a, double b, DType t)
{
	double r = op == OP_Add ? a + b : op == OP_Sub ? a - b : op == OP_Mul ? a * b : a / b;
	return t == DT_F32 ? (double)(float)r : r;
}

static double cast_to(double x, DType t)
{
	if (t == DT_BOOL)
		return x != 0;
	if (t == DT_F32)
		return (double)(float)x;
	return ir_dtype_is_int(t) ? trunc(x) : x;
}

static bool step(const Graph *g, ValId v, DimId sq, DimId sk, QkStep *st, int depth,
                 const char **why);

static bool trilu_step(const Graph *g, NodeId n, DimId sq, DimId sk, QkStep *st, const char **why)
{
	const Node *nd = IR_NODE(g, n);
	const Value *xv = IR_VAL(g, nd->in[0]);
	double f;
	int64_t kk = 0;
	DimId ks = -1;
	if (xv->rank < 2 || xv->dims[xv->rank - 2] != sq || xv->dims[xv->rank - 1] != sk)
		return fail(why, "Trilu's input is not [.., query length, key length]");
	if (!attn_filled(g, nd->in[0], &f))
		return fail(why, "Trilu's input is not one number everywhere");
	if (nd->nin > 1 && nd->in[1] >= 0 && !sym_scalar(g, nd->in[1], &kk, &ks))
		return fail(why, "Trilu's diagonal k is not a constant or a known length");
	if (ir_attr_int(g, n, "upper", 1)) {      /* keeps k - q >= kk */
		*st = (QkStep){kk - 1, ks, 0, f};
	} else {                                   /* keeps k - q <= kk */
		*st = (QkStep){kk, ks, f, 0};
	}
	return true;
}

/* A bool constant c [1.., Sq, Sk] of static lengths (what fold makes of an
 * opset < 14 export's causal mask, or of a static one): a QkStep when
 * every entry is c[q, k] = k - q <= t ? lo : hi, t read off row 0.  A
 * constant with one entry off is no step. */
static bool const_step(const Graph *g, ValId cv, DimId sq, DimId sk, QkStep *st,
                       const char **why)
{
	const Value *c = IR_VAL(g, cv);
	int64_t nq, nk;
	if (c->dtype != DT_BOOL || !c->data || c->rank < 2 || c->rank > MAXR)
		return fail(why, "the mask is a constant that is not bool [.., queries, keys]");
	for (int k = 0; k < c->rank - 2; k++)
		if (!m_dim_is(g, c->dims[k], 1))
			return fail(why, "the constant mask has a leading dim that is not 1");
	if (!ir_dim_is_const(g, sq, &nq) || !ir_dim_is_const(g, sk, &nk) ||
	    !m_dim_is(g, c->dims[c->rank - 2], nq) || !m_dim_is(g, c->dims[c->rank - 1], nk) ||
	    nq < 1 || nk < 2 || c->nbytes < (size_t)(nq * nk))
		return fail(why, "the constant mask is not [queries, keys] of the scores' static lengths");
	const unsigned char *b = c->data;
	int64_t t = 0;
	while (t + 1 < nk && !b[t + 1] == !b[0])
		t++;
	if (t + 1 >= nk)
		return fail(why, "the constant mask's first row is one value: not causal");
	for (int64_t q = 0; q < nq; q++)
		for (int64_t k = 0; k < nk; k++)
			if (!b[q * nk + k] != !(k - q <= t ? b[0] : !b[0]))
				return fail(why, "the constant mask is not a causal band: an entry differs");
	*st = (QkStep){t, -1, b[0] ? 1 : 0, b[0] ? 0 : 1};
	return true;
}

static bool step(const Graph *g, ValId v, DimId sq, DimId sk, QkStep *st, int depth,
                 const char **why)
{
	v = through_views(g, v);
	const Value *vv = IR_VAL(g, v);
	NodeId n = m_def(g, v, OP_COUNT);
	if (n < 0 && depth == 0 && vv->dtype == DT_BOOL && m_is_const(g, v))
		return const_step(g, v, sq, sk, st, why);
	if (n < 0 || depth > DEPTH)
		return fail(why, "the mask is an input or a constant, not a construction from indices");
	const Node *nd = IR_NODE(g, n);
	int64_t t;
	DimId ts;
	bool neg;
	double c, a, b;
	if (vv->dtype == DT_BOOL && nd->op != OP_Cast && nd->op != OP_Where) {
		if (!pred(g, v, sq, sk, &t, &ts, &neg, depth + 1, why))
			return false;
		*st = (QkStep){t, ts, neg ? 0 : 1, neg ? 1 : 0};
		return true;
	}
	switch (nd->op) {
	case OP_Trilu:
		return trilu_step(g, n, sq, sk, st, why);
	case OP_Slice:
		return slice_step(g, n, sq, sk, st, why);
	case OP_Where:
		if (!attn_filled(g, nd->in[1], &a) || !attn_filled(g, nd->in[2], &b))
			return fail(why, "Where's branches are not constants");
		if (!pred(g, nd->in[0], sq, sk, &t, &ts, &neg, depth + 1, why))
			return false;
		*st = (QkStep){t, ts, cast_to(neg ? b : a, vv->dtype), cast_to(neg ? a : b, vv->dtype)};
		return true;
	case OP_Cast:
		if (!step(g, nd->in[0], sq, sk, st, depth + 1, why))
			return false;
		st->lo = cast_to(st->lo, vv->dtype);
		st->hi = cast_to(st->hi, vv->dtype);
		return true;
	case OP_Add:
	case OP_Sub:
	case OP_Mul:
	case OP_Div:
		for (int k = 0; k < 2; k++) {
			if (!attn_filled(g, nd->in[1 - k], &c) || IR_VAL(g, nd->in[1 - k])->rank > vv->rank)
				continue;
			if (k == 1 && nd->op == OP_Div)
				break;
			if (!step(g, nd->in[k], sq, sk, st, depth + 1, why))
				return false;
			/* (x op c) or (c op x) */
			st->lo = k == 0 ? arith(nd->op, st->lo, c, vv->dtype) : arith(nd->op, c, st->lo, vv->dtype);
			st->hi = k == 0 ? arith(nd->op, st->hi, c, vv->dtype) : arith(nd->op, c, st->hi, vv->dtype);
			return true;
		}
		return fail(why, "arithmetic on the mask with a non-constant operand");
	default:
		return fail(why, "the mask is computed by an op that is not a comparison, Where, Cast, "
		                 "Trilu or arithmetic with a constant");
	}
}

bool attn_qk_step(const Graph *g, ValId v, DimId sq, DimId sk, QkStep *st, const char **why)
{
	if (why)
		*why = NULL;
	const Value *vv = IR_VAL(g, v);
	if (vv->rank < 2 || vv->rank > MAXR)
		return fail(why, "the mask's rank is not 2 to 4");
	return step(g, v, sq, sk, st, 0, why);
}

bool attn_qk_causal_edge(const Graph *g, const QkStep *st, DimId sq, DimId sk)
{
	Graph *mg = (Graph *)g;   /* interning only, see dsum */
	DimId want = ir_dim_sub(mg, sk, sq);
	DimId have = dsum(g, ir_dim_const(mg, st->t), st->ts, 1);
	return have == want;
}

/* ---- masks that are not causal (fuse_attention.c's where_mask) ---------- */

bool attn_fill_absorbs(double f)
{
	return f <= -0x1p110;   /* -inf too */
}

/* c behind Expands and bool Casts of bools: as a Where's condition (whose
 * result the caller checks has the scores' shape) they are c itself.  An
 * Expand to Shape(scores) (expand_as), both used once, goes into m (when
 * not NULL): it reads the scores, and dies with them. */
ValId attn_cond_peel(const Graph *g, ValId c, Match *m)
{
	for (int i = 0; i < 8; i++) {
		NodeId n = m_def(g, c, OP_COUNT);
		if (n < 0)
			return c;
		const Node *nd = IR_NODE(g, n);
		ValId x = nd->in[0];
		if (!(nd->op == OP_Expand && IR_VAL(g, x)->rank >= 0 &&
		      IR_VAL(g, x)->rank <= IR_VAL(g, c)->rank) &&
		    !(nd->op == OP_Cast && IR_VAL(g, x)->dtype == DT_BOOL))
			return c;
		NodeId sh = nd->op == OP_Expand ? m_def(g, nd->in[1], OP_Shape) : -1;
		if (m && sh >= 0 && m_nuses(g, c) == 1 && m_nuses(g, nd->in[1]) == 1) {
			m_add(m, n);
			m_add(m, sh);
		}
		c = x;
	}
	return c;
}

/* c is [B, 1, 1, Sk] of scores dims s: a mask of (batch, key) only; *src
 * the [B, Sk] value it reshapes, or c. */
bool attn_pad_shaped(const Graph *g, ValId c, const DimId *s, ValId *src)
{
	const Value *cv = IR_VAL(g, c);
	if (cv->rank != 4 || cv->dims[0] != s[0] || !m_dim_is(g, cv->dims[1], 1) ||
	    !m_dim_is(g, cv->dims[2], 1) || cv->dims[3] != s[3])
		return false;
	*src = c;
	NodeId r = m_def(g, c, OP_Reshape) >= 0 ? m_def(g, c, OP_Reshape) : m_def(g, c, OP_Unsqueeze);
	if (r >= 0) {
		const Value *xv = IR_VAL(g, IR_NODE(g, r)->in[0]);
		if (xv->rank == 2 && xv->dims[0] == s[0] && xv->dims[1] == s[3])
			*src = IR_NODE(g, r)->in[0];   /* unit dims inserted: same flat order */
	}
	return true;
}

/* Condition e over scores of dims sd (true keeps the score) is And(C, P),
 * C the causal predicate k <= q + Sk - Sq and P [B, 1, 1, Sk] (pad_shaped;
 * *pad its [B, Sk] source): transformers' masking_utils and_masks of a
 * causal and a padding mask.  With a -inf fill the kernel's causal flag
 * and key-padding mask, both filling -inf, give the same numbers (a key
 * masked twice is -inf either way; a row with every key masked is NaN in
 * both); with a finite fill such a key would get it twice. */
bool attn_causal_and_pad(const Graph *g, ValId e, const DimId *sd, ValId *pad)
{
	NodeId a = m_def(g, attn_cond_peel(g, e, NULL), OP_And);
	for (int t = 0; a >= 0 && t < 2; t++) {
		ValId c = IR_NODE(g, a)->in[t], p = attn_cond_peel(g, IR_NODE(g, a)->in[1 - t], NULL);
		QkStep st;
		if (attn_pad_shaped(g, p, sd, pad) && attn_qk_step(g, c, sd[2], sd[3], &st, NULL) &&
		    attn_qk_causal_edge(g, &st, sd[2], sd[3]) && st.lo == 1 && st.hi == 0)
			return true;
	}
	return false;
}
