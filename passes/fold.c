/* Pass `fold`: constant folding, numeric and symbolic.
 *
 * A node output becomes a constant when
 *   - its symbolic content (Value.sval, from shape inference) is fully
 *     known and its dims are static (shape arithmetic over static dims), or
 *   - all its inputs are constants with data and the op is one the small
 *     evaluator below knows (shape/index arithmetic, casts, elementwise math,
 *     layout: Shape Size Gather Unsqueeze Squeeze Reshape Flatten Concat
 *     Slice Range ConstantOfShape Expand Transpose Cast Where Equal ... CumSum).
 * Integers are computed exactly in int64, floats in double and rounded to
 * the output dtype once, which for + - * / sqrt equals the f32 result.
 * Anything the evaluator cannot do exactly (f16, division by zero, huge
 * tensors) is left alone for the runtime.
 *
 * requires: shapes inferred (output dtype and static dims are read from
 *           the node's output values).
 * preserves: shapes, graph outputs (a folded graph output keeps its name).
 * breaks: nothing; nodes whose outputs are all folded become dead (DCE). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "checked.h"
#include "pass_internal.h"

/* Largest tensor folded (elements, zero dims counted as 1): 4 Mi, at most
 * 32 MiB of int64/double while evaluating; bigger ones are left alone. */
#define FOLD_MAX_ELEMS (1 << 22)

/* A tensor being evaluated: ints (and bools) as int64, floats as double. */
typedef struct T {
	DType dt;
	bool isf;
	int rank;
	int64_t dims[IR_MAX_RANK];
	int64_t n;
	int64_t *i;
	double *f;
} T;

static void t_free(T *t)
{
	free(t->i);
	free(t->f);
	t->i = NULL;
	t->f = NULL;
}

static bool supported_dtype(DType d)
{
	switch (d) {
	case DT_F32: case DT_F64: case DT_I64: case DT_I32: case DT_I16: case DT_I8:
	case DT_U8: case DT_U16: case DT_U32: case DT_BOOL:
		return true;
	default:
		return false;
	}
}

static bool t_alloc(T *t, DType dt, int rank, const int64_t *dims)
{
	memset(t, 0, sizeof *t);
	t->dt = dt;
	t->isf = ir_dtype_is_float(dt);
	t->rank = rank;
	t->n = 1;
	int64_t bound, n;   /* ir/checked.h: never a wrapped product */
	if (rank > IR_MAX_RANK || !ck_dims(rank, dims, &bound, &n) || bound > FOLD_MAX_ELEMS)
		return false;
	memcpy(t->dims, dims, sizeof(int64_t) * (size_t)rank);
	t->n = n;
	size_t cnt = (size_t)(t->n ? t->n : 1);
	if (t->isf)
		t->f = calloc(cnt, sizeof(double));
	else
		t->i = calloc(cnt, sizeof(int64_t));
	if (!t->f && !t->i)
		abort();
	return true;
}

static bool static_dims(const Graph *g, const Value *v, int64_t *dims)
{
	if (v->rank < 0)
		return false;
	for (int k = 0; k < v->rank; k++)
		if (!ir_dim_is_const(g, v->dims[k], &dims[k]))
			return false;
	return true;
}

static bool t_load(const Graph *g, ValId id, T *t)
{
	const Value *v = IR_VAL(g, id);
	int64_t dims[IR_MAX_RANK];
	if (v->kind != V_CONST || !v->data || !supported_dtype(v->dtype) || !static_dims(g, v, dims))
		return false;
	if (!t_alloc(t, v->dtype, v->rank, dims))
		return false;
	if ((size_t)t->n * ir_dtype_size(v->dtype) > v->nbytes) {
		t_free(t);
		return false;
	}
	const char *p = v->data;
	for (int64_t k = 0; k < t->n; k++) {
		switch (v->dtype) {
		case DT_F32: { float x; memcpy(&x, p + 4 * k, 4); t->f[k] = x; break; }
		case DT_F64: memcpy(&t->f[k], p + 8 * k, 8); break;
		case DT_I64: memcpy(&t->i[k], p + 8 * k, 8); break;
		case DT_I32: { int32_t x; memcpy(&x, p + 4 * k, 4); t->i[k] = x; break; }
		case DT_U32: { uint32_t x; memcpy(&x, p + 4 * k, 4); t->i[k] = x; break; }
		case DT_I16: { int16_t x; memcpy(&x, p + 2 * k, 2); t->i[k] = x; break; }
		case DT_U16: { uint16_t x; memcpy(&x, p + 2 * k, 2); t->i[k] = x; break; }
		case DT_I8: t->i[k] = (int8_t)p[k]; break;
		case DT_U8: t->i[k] = (uint8_t)p[k]; break;
		case DT_BOOL: t->i[k] = p[k] != 0; break;
		default: break;
		}
	}
	return true;
}

/* Serializes t as dtype t->dt. */
static void *t_bytes(const T *t, size_t *nbytes)
{
	size_t es = ir_dtype_size(t->dt);
	*nbytes = (size_t)t->n * es;
	char *p = malloc(*nbytes ? *nbytes : 1);
	if (!p)
		abort();
	for (int64_t k = 0; k < t->n; k++) {
		switch (t->dt) {
		case DT_F32: { float x = (float)t->f[k]; memcpy(p + 4 * k, &x, 4); break; }
		case DT_F64: memcpy(p + 8 * k, &t->f[k], 8); break;
		case DT_I64: memcpy(p + 8 * k, &t->i[k], 8); break;
		case DT_I32: case DT_U32: { int32_t x = (int32_t)t->i[k]; memcpy(p + 4 * k, &x, 4); break; }
		case DT_I16: case DT_U16: { int16_t x = (int16_t)t->i[k]; memcpy(p + 2 * k, &x, 2); break; }
		case DT_I8: case DT_U8: p[k] = (char)t->i[k]; break;
		case DT_BOOL: p[k] = t->i[k] != 0; break;
		default: break;
		}
	}
	return p;
}

static double t_getf(const T *t, int64_t k)
{
	return t->isf ? t->f[k] : (double)t->i[k];
}

/* Wraps an int into the range of an integer dtype (what a C cast does). */
static int64_t wrap_int(DType dt, int64_t x)
{
	switch (dt) {
	case DT_I32: return (int32_t)x;
	case DT_U32: return (uint32_t)x;
	case DT_I16: return (int16_t)x;
	case DT_U16: return (uint16_t)x;
	case DT_I8: return (int8_t)x;
	case DT_U8: return (uint8_t)x;
	case DT_BOOL: return x != 0;
	default: return x;
	}
}

/* Offset into a tensor of dims `d` (rank r, right-aligned against the output
 * rank orank) for output multi-index idx, with numpy broadcasting. */
static int64_t bcast_off(const int64_t *d, int r, const int64_t *idx, int orank)
{
	int64_t off = 0;
	for (int k = 0; k < r; k++) {
		int64_t x = d[k] == 1 ? 0 : idx[orank - r + k];
		off = off * d[k] + x;
	}
	return off;
}

static void next_index(int64_t *idx, const int64_t *dims, int rank)
{
	for (int k = rank - 1; k >= 0; k--) {
		if (++idx[k] < dims[k])
			return;
		idx[k] = 0;
	}
}

static bool bcast_ok(const T *a, const T *o)
{
	if (a->rank > o->rank)
		return false;
	for (int k = 0; k < a->rank; k++) {
		int64_t od = o->dims[o->rank - a->rank + k];
		if (a->dims[k] != 1 && a->dims[k] != od)
			return false;
	}
	return true;
}

static int64_t floordiv(int64_t a, int64_t b)
{
	int64_t q = a / b;
	if ((a % b != 0) && ((a < 0) != (b < 0)))
		q--;
	return q;
}

/* Elementwise binary op in the input domain; result into o (its dtype). */
static bool binop(Op op, const T *a, const T *b, T *o, int64_t fmod_attr)
{
	if (!bcast_ok(a, o) || !bcast_ok(b, o))
		return false;
	bool flt = a->isf || b->isf;
	int64_t idx[IR_MAX_RANK] = {0};
	for (int64_t k = 0; k < o->n; k++, next_index(idx, o->dims, o->rank)) {
		int64_t ia = bcast_off(a->dims, a->rank, idx, o->rank);
		int64_t ib = bcast_off(b->dims, b->rank, idx, o->rank);
		double x = t_getf(a, ia), y = t_getf(b, ib), r = 0;
		int64_t xi = flt ? 0 : a->i[ia], yi = flt ? 0 : b->i[ib], ri = 0;
		bool isint = !flt;
		switch (op) {
		case OP_Add: r = x + y; ri = (int64_t)((uint64_t)xi + (uint64_t)yi); break;
		case OP_Sub: r = x - y; ri = (int64_t)((uint64_t)xi - (uint64_t)yi); break;
		case OP_Mul: r = x * y; ri = (int64_t)((uint64_t)xi * (uint64_t)yi); break;
		case OP_Div:
			if (isint) {
				if (yi == 0 || (xi == INT64_MIN && yi == -1))
					return false;
				ri = xi / yi;
			}
			r = x / y;
			break;
		case OP_Mod:
			if (isint) {
				if (yi == 0 || (xi == INT64_MIN && yi == -1))
					return false;
				ri = fmod_attr ? xi % yi : xi - floordiv(xi, yi) * yi;
			} else {
				if (!fmod_attr)
					return false;
				r = fmod(x, y);
			}
			break;
		case OP_Pow: r = pow(x, y); isint = false; break;
		case OP_Max: r = x > y ? x : y; ri = xi > yi ? xi : yi; break;
		case OP_Min: r = x < y ? x : y; ri = xi < yi ? xi : yi; break;
		case OP_Equal: ri = isint ? xi == yi : x == y; isint = true; break;
		case OP_Less: ri = isint ? xi < yi : x < y; isint = true; break;
		case OP_LessOrEqual: ri = isint ? xi <= yi : x <= y; isint = true; break;
		case OP_Greater: ri = isint ? xi > yi : x > y; isint = true; break;
		case OP_GreaterOrEqual: ri = isint ? xi >= yi : x >= y; isint = true; break;
		case OP_And: ri = (xi != 0) && (yi != 0); isint = true; break;
		case OP_Or: ri = (xi != 0) || (yi != 0); isint = true; break;
		case OP_Xor: ri = (xi != 0) != (yi != 0); isint = true; break;
		default: return false;
		}
		if (o->isf)
			o->f[k] = isint ? (double)ri : r;
		else if (isint)
			o->i[k] = wrap_int(o->dt, ri);
		else
			return false;   /* float result into an int tensor: not an ONNX op */
	}
	return true;
}

static bool unop(const Graph *g, NodeId nid, const T *a, T *o)
{
	Op op = IR_NODE(g, nid)->op;
	if (a->n != o->n)
		return false;
	for (int64_t k = 0; k < o->n; k++) {
		double x = t_getf(a, k), r;
		if (op == OP_Cast || op == OP_Identity) {
			if (o->isf) {
				o->f[k] = x;
			} else if (a->isf) {
				if (o->dt == DT_BOOL) {
					o->i[k] = x != 0;
				} else {
					if (!(x > -9.2e18 && x < 9.2e18))
						return false;
					o->i[k] = wrap_int(o->dt, (int64_t)x);
				}
			} else {
				o->i[k] = wrap_int(o->dt, a->i[k]);
			}
			continue;
		}
		if (op == OP_Not) {
			o->i[k] = a->i[k] == 0;
			continue;
		}
		if (!a->isf) {
			int64_t xi = a->i[k];
			switch (op) {
			case OP_Neg: o->i[k] = wrap_int(o->dt, (int64_t)(0 - (uint64_t)xi)); continue;
			case OP_Abs: o->i[k] = wrap_int(o->dt, xi < 0 ? (int64_t)(0 - (uint64_t)xi) : xi); continue;
			case OP_Relu: o->i[k] = xi < 0 ? 0 : xi; continue;
			case OP_Sign: o->i[k] = (xi > 0) - (xi < 0); continue;
			default: return false;
			}
		}
		switch (op) {
		case OP_Neg: r = -x; break;
		case OP_Abs: r = fabs(x); break;
		case OP_Sqrt: r = sqrt(x); break;
		case OP_Reciprocal: r = 1.0 / x; break;
		case OP_Relu: r = x < 0 ? 0 : x; break;
		case OP_Floor: r = floor(x); break;
		case OP_Ceil: r = ceil(x); break;
		case OP_Sign: r = isnan(x) ? x : (x > 0) - (x < 0); break;
		default: return false;
		}
		if (!o->isf)
			return false;
		o->f[k] = r;
	}
	return true;
}

static int64_t norm_axis(int64_t a, int rank)
{
	return a < 0 ? a + rank : a;
}

/* Ops that keep the element order: the data is copied as is. */
static bool same_data(const T *a, T *o)
{
	if (a->n != o->n || a->isf != o->isf)
		return false;
	if (o->isf)
		memcpy(o->f, a->f, (size_t)o->n * sizeof(double));
	else
		memcpy(o->i, a->i, (size_t)o->n * sizeof(int64_t));
	return true;
}

static void copy_elem(T *o, int64_t ko, const T *a, int64_t ka)
{
	if (o->isf)
		o->f[ko] = t_getf(a, ka);
	else
		o->i[ko] = a->isf ? (int64_t)a->f[ka] : a->i[ka];
}

static bool eval_gather(const Graph *g, NodeId nid, const T *d, const T *ix, T *o)
{
	int64_t axis = norm_axis(ir_attr_int(g, nid, "axis", 0), d->rank);
	if (axis < 0 || axis >= d->rank || ix->isf)
		return false;
	int64_t outer = 1, inner = 1, n = d->dims[axis];
	for (int k = 0; k < axis; k++)
		outer *= d->dims[k];
	for (int k = (int)axis + 1; k < d->rank; k++)
		inner *= d->dims[k];
	if (outer * ix->n * inner != o->n)
		return false;
	int64_t ko = 0;
	for (int64_t a = 0; a < outer; a++)
		for (int64_t j = 0; j < ix->n; j++) {
			int64_t x = ix->i[j] < 0 ? ix->i[j] + n : ix->i[j];
			if (x < 0 || x >= n)
				return false;
			for (int64_t b = 0; b < inner; b++)
				copy_elem(o, ko++, d, (a * n + x) * inner + b);
		}
	return true;
}

static bool eval_concat(const Graph *g, NodeId nid, T *ins, int nin, T *o)
{
	int64_t axis = norm_axis(ir_attr_int(g, nid, "axis", 0), o->rank);
	if (axis < 0 || axis >= o->rank)
		return false;
	int64_t outer = 1, inner = 1;
	for (int k = 0; k < axis; k++)
		outer *= o->dims[k];
	for (int k = (int)axis + 1; k < o->rank; k++)
		inner *= o->dims[k];
	int64_t ko = 0;
	for (int64_t a = 0; a < outer; a++)
		for (int j = 0; j < nin; j++) {
			if (ins[j].rank != o->rank)
				return false;
			int64_t len = ins[j].dims[axis] * inner;
			for (int64_t b = 0; b < len; b++)
				copy_elem(o, ko++, &ins[j], a * len + b);
		}
	return ko == o->n;
}

static bool eval_transpose(const Graph *g, NodeId nid, const T *a, T *o)
{
	int cnt = 0;
	const int64_t *perm = ir_attr_ints(g, nid, "perm", &cnt);
	int64_t p[IR_MAX_RANK];
	for (int k = 0; k < a->rank; k++)
		p[k] = perm ? perm[k] : a->rank - 1 - k;
	if (perm && cnt != a->rank)
		return false;
	int64_t stride[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
	for (int k = a->rank - 1, s = 1; k >= 0; k--) {
		stride[k] = s;
		s *= a->dims[k];
	}
	for (int64_t k = 0; k < o->n; k++, next_index(idx, o->dims, o->rank)) {
		int64_t off = 0;
		for (int j = 0; j < o->rank; j++)
			off += idx[j] * stride[p[j]];
		copy_elem(o, k, a, off);
	}
	return true;
}

static bool eval_slice(T *ins, int nin, T *o)
{
	const T *d = &ins[0];
	int64_t start[IR_MAX_RANK], step[IR_MAX_RANK];
	for (int k = 0; k < d->rank; k++) {
		start[k] = 0;
		step[k] = 1;
	}
	const T *st = &ins[1], *en = &ins[2];
	const T *ax = nin > 3 && ins[3].n ? &ins[3] : NULL;
	const T *sp = nin > 4 && ins[4].n ? &ins[4] : NULL;
	if (st->isf || en->isf || st->n != en->n)
		return false;
	for (int64_t j = 0; j < st->n; j++) {
		int64_t a = ax ? norm_axis(ax->i[j], d->rank) : j;
		if (a < 0 || a >= d->rank)
			return false;
		int64_t dim = d->dims[a], s = sp ? sp->i[j] : 1, b = st->i[j];
		if (s == 0)
			return false;
		if (b < 0)
			b += dim;
		if (s > 0)
			b = b < 0 ? 0 : b > dim ? dim : b;
		else    /* [0, dim - 1]: a start below -dim takes element 0 */
			b = b < 0 ? 0 : b > dim - 1 ? dim - 1 : b;
		start[a] = b;
		step[a] = s;
	}
	int64_t stride[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
	for (int k = d->rank - 1, s = 1; k >= 0; k--) {
		stride[k] = s;
		s *= d->dims[k];
	}
	if (o->rank != d->rank)
		return false;
	for (int64_t k = 0; k < o->n; k++, next_index(idx, o->dims, o->rank)) {
		int64_t off = 0;
		for (int j = 0; j < o->rank; j++)
			off += (start[j] + idx[j] * step[j]) * stride[j];
		copy_elem(o, k, d, off);
	}
	return true;
}

static bool eval_where(const T *c, const T *x, const T *y, T *o)
{
	if (!bcast_ok(c, o) || !bcast_ok(x, o) || !bcast_ok(y, o) || c->isf)
		return false;
	int64_t idx[IR_MAX_RANK] = {0};
	for (int64_t k = 0; k < o->n; k++, next_index(idx, o->dims, o->rank)) {
		bool cv = c->i[bcast_off(c->dims, c->rank, idx, o->rank)] != 0;
		const T *s = cv ? x : y;
		copy_elem(o, k, s, bcast_off(s->dims, s->rank, idx, o->rank));
	}
	return true;
}

static bool eval_expand(const T *a, T *o)
{
	if (!bcast_ok(a, o))
		return false;
	int64_t idx[IR_MAX_RANK] = {0};
	for (int64_t k = 0; k < o->n; k++, next_index(idx, o->dims, o->rank))
		copy_elem(o, k, a, bcast_off(a->dims, a->rank, idx, o->rank));
	return true;
}

static bool eval_range(const T *s, const T *l, const T *d, T *o)
{
	if (s->n != 1 || l->n != 1 || d->n != 1 || o->rank != 1)
		return false;
	for (int64_t k = 0; k < o->n; k++) {
		if (o->isf)
			o->f[k] = s->f[0] + (double)k * d->f[0];
		else if (!ck_mul_i64(k, d->i[0], &o->i[k]) || !ck_add_i64(o->i[k], s->i[0], &o->i[k]))
			return false;   /* leave an overflowing Range to the runtime */
	}
	return true;
}

static bool eval_cumsum(const Graph *g, NodeId nid, const T *a, const T *axt, T *o)
{
	if (axt->n != 1 || axt->isf || a->n != o->n)
		return false;
	int64_t axis = norm_axis(axt->i[0], a->rank);
	if (axis < 0 || axis >= a->rank)
		return false;
	bool excl = ir_attr_int(g, nid, "exclusive", 0), rev = ir_attr_int(g, nid, "reverse", 0);
	int64_t outer = 1, inner = 1, n = a->dims[axis];
	for (int k = 0; k < axis; k++)
		outer *= a->dims[k];
	for (int k = (int)axis + 1; k < a->rank; k++)
		inner *= a->dims[k];
	for (int64_t x = 0; x < outer; x++)
		for (int64_t y = 0; y < inner; y++) {
			double sf = 0;
			int64_t si = 0;
			for (int64_t j = 0; j < n; j++) {
				int64_t jj = rev ? n - 1 - j : j;
				int64_t off = (x * n + jj) * inner + y;
				double vf = t_getf(a, off);
				int64_t vi = a->isf ? 0 : a->i[off];
				if (!excl) {
					sf += vf;
					si += vi;
				}
				if (o->isf)
					o->f[off] = sf;
				else
					o->i[off] = si;
				if (excl) {
					sf += vf;
					si += vi;
				}
			}
		}
	return true;
}

static bool eval_cos(const Graph *g, NodeId nid, T *o)
{
	/* ConstantOfShape: value attribute (default f32 zero) */
	const Attr *a = ir_attr_get(g, nid, "value");
	double vf = 0;
	int64_t vi = 0;
	if (a && a->kind == A_TENSOR && a->u.t->nbytes) {
		const TensorLit *t = a->u.t;
		const char *p = t->data;
		if (t->dtype != o->dt || t->nbytes < ir_dtype_size(t->dtype))
			return false;
		switch (t->dtype) {
		case DT_F32: { float x; memcpy(&x, p, 4); vf = x; break; }
		case DT_F64: memcpy(&vf, p, 8); break;
		case DT_I64: memcpy(&vi, p, 8); break;
		case DT_I32: { int32_t x; memcpy(&x, p, 4); vi = x; break; }
		case DT_BOOL: case DT_U8: vi = (uint8_t)p[0]; break;
		case DT_I8: vi = (int8_t)p[0]; break;
		default: return false;
		}
	}
	for (int64_t k = 0; k < o->n; k++) {
		if (o->isf)
			o->f[k] = vf;
		else
			o->i[k] = vi;
	}
	return true;
}

/* Evaluates node nid (single output) on constant inputs into o. */
static bool eval_node(const Graph *g, NodeId nid, T *ins, int nin, T *o)
{
	const Node *n = IR_NODE(g, nid);
	Op op = n->op;
	switch (op) {
	case OP_Identity: case OP_Cast: case OP_Not: case OP_Neg: case OP_Abs: case OP_Sqrt:
	case OP_Reciprocal: case OP_Relu: case OP_Floor: case OP_Ceil: case OP_Sign:
		return unop(g, nid, &ins[0], o);
	case OP_Add: case OP_Sub: case OP_Mul: case OP_Div: case OP_Pow: case OP_Mod:
	case OP_Equal: case OP_Less: case OP_LessOrEqual: case OP_Greater: case OP_GreaterOrEqual:
	case OP_And: case OP_Or: case OP_Xor:
		return binop(op, &ins[0], &ins[1], o, ir_attr_int(g, nid, "fmod", 0));
	case OP_Max: case OP_Min:
		return nin == 2 && binop(op, &ins[0], &ins[1], o, 0);
	case OP_Reshape: case OP_Unsqueeze: case OP_Squeeze: case OP_Flatten:
		return same_data(&ins[0], o);
	case OP_Expand:
		return eval_expand(&ins[0], o);
	case OP_Gather:
		return eval_gather(g, nid, &ins[0], &ins[1], o);
	case OP_Concat:
		return eval_concat(g, nid, ins, nin, o);
	case OP_Transpose:
		return eval_transpose(g, nid, &ins[0], o);
	case OP_Slice:
		return eval_slice(ins, nin, o);
	case OP_Where:
		return eval_where(&ins[0], &ins[1], &ins[2], o);
	case OP_Range:
		return eval_range(&ins[0], &ins[1], &ins[2], o);
	case OP_CumSum:
		return eval_cumsum(g, nid, &ins[0], &ins[1], o);
	case OP_ConstantOfShape:
		return eval_cos(g, nid, o);
	default:
		return false;
	}
}

/* Ops whose output does not depend on input data (only on shapes). */
static bool shape_only(Op op)
{
	return op == OP_Shape || op == OP_Size;
}

/* Replaces output 0 of nid by a constant holding t. */
static void replace_with_const(Graph *g, NodeId nid, const T *t)
{
	ValId out = IR_NODE(g, nid)->out[0];
	size_t nb;
	void *bytes = t_bytes(t, &nb);
	/* keep the output's name: rename the node value, give it to the constant */
	const char *nm = IR_VAL(g, out)->name;
	char *old = malloc(strlen(nm) + 8);
	if (!old)
		abort();
	strcpy(old, nm);
	strcat(old, ".old");
	IR_VAL(g, out)->name = ir_arena_strdup(g->arena, old);
	free(old);
	ValId c = ir_const_new(g, nm, t->dt, t->rank, t->dims, bytes, nb, false);
	free(bytes);
	ir_replace_all_uses(g, out, c);
}

/* Folds from symbolic content: every element a constant dim. */
static bool fold_sval(Graph *g, NodeId nid)
{
	const Node *n = IR_NODE(g, nid);
	if (n->nout != 1)
		return false;
	const Value *v = IR_VAL(g, n->out[0]);
	int64_t dims[IR_MAX_RANK];
	if (!v->sval || (v->dtype != DT_I64 && v->dtype != DT_I32) || !static_dims(g, v, dims))
		return false;
	T t;
	if (!t_alloc(&t, v->dtype, v->rank, dims))
		return false;
	bool ok = t.n == v->nsval;
	for (int64_t k = 0; ok && k < t.n; k++)
		ok = ir_dim_is_const(g, v->sval[k], &t.i[k]);
	if (ok)
		replace_with_const(g, nid, &t);
	t_free(&t);
	return ok;
}

static bool fold_eval(Graph *g, NodeId nid)
{
	const Node *n = IR_NODE(g, nid);
	if (n->nout != 1 || n->nin > 8)
		return false;
	const Value *ov = IR_VAL(g, n->out[0]);
	int64_t dims[IR_MAX_RANK];
	if (!supported_dtype(ov->dtype) || !static_dims(g, ov, dims))
		return false;
	if (shape_only(n->op)) {
		/* static dims of the input: Shape/Size are known */
		const Value *iv = IR_VAL(g, n->in[0]);
		int64_t idims[IR_MAX_RANK];
		if (!static_dims(g, iv, idims))
			return false;
		T t;
		if (!t_alloc(&t, ov->dtype, ov->rank, dims))
			return false;
		if (n->op == OP_Size) {
			int64_t bound, s;
			if (!ck_dims(iv->rank, idims, &bound, &s)) {
				t_free(&t);
				return false;
			}
			t.i[0] = s;
		} else {
			int64_t st = ir_attr_int(g, nid, "start", 0), en = ir_attr_int(g, nid, "end", iv->rank);
			st = st < 0 ? st + iv->rank : st;
			en = en < 0 ? en + iv->rank : en;
			st = st < 0 ? 0 : st > iv->rank ? iv->rank : st;
			en = en < 0 ? 0 : en > iv->rank ? iv->rank : en;
			if (en - st != t.n) {
				t_free(&t);
				return false;
			}
			for (int64_t k = 0; k < t.n; k++)
				t.i[k] = idims[st + k];
		}
		replace_with_const(g, nid, &t);
		t_free(&t);
		return true;
	}
	T ins[8];
	int nin = n->nin;
	memset(ins, 0, sizeof ins);
	bool ok = true;
	for (int k = 0; k < nin && ok; k++) {
		if (n->in[k] < 0)
			continue;   /* absent optional input: n == 0 */
		ok = t_load(g, n->in[k], &ins[k]);
	}
	T o;
	memset(&o, 0, sizeof o);
	if (ok)
		ok = t_alloc(&o, ov->dtype, ov->rank, dims) && eval_node(g, nid, ins, nin, &o);
	if (ok)
		replace_with_const(g, nid, &o);
	for (int k = 0; k < nin; k++)
		t_free(&ins[k]);
	t_free(&o);
	return ok;
}

void pass_fold(Graph *g, PassCtx *pc)
{
	(void)pc;
	for (int32_t i = 0; i < g->norder; i++) {
		NodeId id = g->order[i];
		if (IR_NODE(g, id)->dead || ir_opinfo[IR_NODE(g, id)->op].kind == K_FUSED)
			continue;
		if (!fold_sval(g, id))
			fold_eval(g, id);
	}
	ir_dce(g);
}
