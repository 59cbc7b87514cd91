/* Read-only helpers for pattern matching over the IR (see pass_internal.h).
 * Nothing here mutates the graph. */
#include <stdarg.h>
#include <stdio.h>
#include <math.h>
#include <string.h>

#include "pass_internal.h"

NodeId m_def(const Graph *g, ValId v, Op op)
{
	if (v < 0 || v >= g->nvals)
		return -1;
	const Value *val = IR_VAL(g, v);
	if (val->kind != V_NODE || val->def < 0)
		return -1;
	const Node *n = IR_NODE(g, val->def);
	if (n->dead || (op != OP_COUNT && n->op != op))
		return -1;
	return val->def;
}

bool m_is_const(const Graph *g, ValId v)
{
	return v >= 0 && IR_VAL(g, v)->kind == V_CONST && IR_VAL(g, v)->data;
}

/* Element k of a constant as a double; false for unsupported dtypes. */
static bool elem(const Value *v, int64_t k, double *x)
{
	const char *p = v->data;
	switch (v->dtype) {
	case DT_F32: { float f; memcpy(&f, p + 4 * k, 4); *x = f; return true; }
	case DT_F64: { double d; memcpy(&d, p + 8 * k, 8); *x = d; return true; }
	case DT_I64: { int64_t i; memcpy(&i, p + 8 * k, 8); *x = (double)i; return true; }
	case DT_I32: { int32_t i; memcpy(&i, p + 4 * k, 4); *x = i; return true; }
	case DT_BOOL: case DT_U8: *x = (unsigned char)p[k]; return true;
	default: return false;
	}
}

bool m_const_scalar(const Graph *g, ValId v, double *x)
{
	if (!m_is_const(g, v))
		return false;
	const Value *val = IR_VAL(g, v);
	int64_t n = ir_value_numel_const(g, v);
	size_t es = ir_dtype_size(val->dtype);
	if (n < 1 || !es || val->nbytes < (size_t)n * es || n > 4096)
		return false;
	double first;
	if (!elem(val, 0, &first))
		return false;
	for (int64_t k = 1; k < n; k++) {
		double e;
		if (!elem(val, k, &e) || !(e == first || (isnan(e) && isnan(first))))
			return false;
	}
	*x = first;
	return true;
}

int m_nuses(const Graph *g, ValId v)
{
	if (v < 0)
		return 0;
	return IR_VAL(g, v)->nuses + (ir_is_output(g, v) ? 1 : 0);
}

bool m_same_shape(const Graph *g, ValId a, ValId b)
{
	const Value *x = IR_VAL(g, a), *y = IR_VAL(g, b);
	if (x->rank < 0 || x->rank != y->rank)
		return false;
	for (int i = 0; i < x->rank; i++)
		if (x->dims[i] != y->dims[i])
			return false;
	return true;
}

bool m_dim_is(const Graph *g, DimId d, int64_t c)
{
	int64_t x;
	return ir_dim_is_const(g, d, &x) && x == c;
}

ValId m_other(const Graph *g, NodeId n, ValId x)
{
	const Node *nd = IR_NODE(g, n);
	if (nd->nin != 2)
		return -1;
	if (nd->in[0] == x)
		return nd->in[1];
	if (nd->in[1] == x)
		return nd->in[0];
	return -1;
}

int m_reduce_axes(const Graph *g, NodeId n, int rank, int64_t *axes, int max)
{
	const Node *nd = IR_NODE(g, n);
	int cnt = 0;
	const int64_t *a = ir_attr_ints(g, n, "axes", &cnt);
	int64_t buf[IR_MAX_RANK];
	if (!a && nd->nin > 1 && nd->in[1] >= 0) {
		const Value *v = IR_VAL(g, nd->in[1]);
		if (!m_is_const(g, nd->in[1]) || v->dtype != DT_I64)
			return -1;
		cnt = (int)(v->nbytes / 8);
		if (cnt > IR_MAX_RANK)
			return -1;
		memcpy(buf, v->data, (size_t)cnt * 8);
		a = buf;
	}
	if (!a || cnt > max)
		return -1;
	for (int i = 0; i < cnt; i++) {
		int64_t x = a[i] < 0 ? a[i] + rank : a[i];
		if (x < 0 || x >= rank)
			return -1;
		axes[i] = x;
	}
	return cnt;
}

bool m_perm_is(const Graph *g, NodeId n, const int64_t *p, int k)
{
	int cnt = 0;
	const int64_t *a = ir_attr_ints(g, n, "perm", &cnt);
	if (!a || cnt != k)
		return false;
	for (int i = 0; i < k; i++)
		if (a[i] != p[i])
			return false;
	return true;
}

void m_add(Match *m, NodeId n)
{
	if (n < 0 || m_has(m, n) || m->nnodes >= M_MAXNODES)
		return;
	m->nodes[m->nnodes++] = n;
}

bool m_has(const Match *m, NodeId n)
{
	for (int i = 0; i < m->nnodes; i++)
		if (m->nodes[i] == n)
			return true;
	return false;
}

bool m_closed(const Graph *g, const Match *m, ValId keep)
{
	if (m->nnodes >= M_MAXNODES)
		return false;   /* overflowed: be safe */
	for (int i = 0; i < m->nnodes; i++) {
		const Node *n = IR_NODE(g, m->nodes[i]);
		for (int k = 0; k < n->nout; k++) {
			ValId v = n->out[k];
			if (v == keep)
				continue;
			if (ir_is_output(g, v))
				return false;
			const Value *val = IR_VAL(g, v);
			for (int32_t u = 0; u < val->nuses; u++)
				if (!m_has(m, val->uses[u].node))
					return false;
		}
	}
	return true;
}

bool m_fail(const Graph *g, Match *m, NodeId at, const char *fmt, ...)
{
	(void)g;
	if (m->why[0])
		return false;
	m->why_node = at;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m->why, sizeof m->why, fmt, ap);
	va_end(ap);
	if (!m->why[0])
		snprintf(m->why, sizeof m->why, "no match");
	return false;
}

/* ---- shared helpers of the patterns ---------------------------------------- */

/* node n is a no-op on its input 0: Identity, Cast to its input's dtype,
 * Reshape/Flatten/Squeeze/Unsqueeze whose output has the input's dims */
static bool is_noop(const Graph *g, NodeId n)
{
	const Node *nd = IR_NODE(g, n);
	if (nd->nin < 1 || nd->nout != 1 || nd->in[0] < 0)
		return false;
	const Value *x = IR_VAL(g, nd->in[0]), *y = IR_VAL(g, nd->out[0]);
	switch (nd->op) {
	case OP_Identity:
		return true;
	case OP_Cast:
		return x->dtype == y->dtype && x->dtype != DT_UNDEF;
	case OP_Reshape: case OP_Flatten: case OP_Squeeze: case OP_Unsqueeze:
		return m_same_shape(g, nd->in[0], nd->out[0]);
	default:
		return false;
	}
}

ValId m_unwrap(const Graph *g, ValId v, Match *m)
{
	for (int depth = 0; v >= 0 && depth < 16; depth++) {
		NodeId d = m_def(g, v, OP_COUNT);
		if (d < 0 || !is_noop(g, d))
			break;
		if (m)
			m_add(m, d);
		v = IR_NODE(g, d)->in[0];
	}
	return v;
}

NodeId m_def_u(const Graph *g, ValId v, Op op, Match *m)
{
	int save = m ? m->nnodes : 0;
	NodeId d = m_def(g, m_unwrap(g, v, m), op);
	if (d < 0 && m)
		m->nnodes = save;   /* the wrappers are not part of a failed step */
	return d;
}

bool m_split(const Graph *g, NodeId n, Op op, Match *m, NodeId *def, ValId *other)
{
	const Node *nd = IR_NODE(g, n);
	if (nd->nin != 2)
		return false;
	for (int k = 0; k < 2; k++) {
		NodeId d = m_def_u(g, nd->in[k], op, m);
		if (d >= 0) {
			*def = d;
			*other = nd->in[1 - k];
			return true;
		}
	}
	return false;
}

bool m_split_const(const Graph *g, NodeId n, bool commutes, ValId *x, double *c)
{
	const Node *nd = IR_NODE(g, n);
	if (nd->nin != 2)
		return false;
	for (int k = 1; k >= (commutes ? 0 : 1); k--) {
		if (m_const_scalar(g, nd->in[k], c)) {
			*x = nd->in[1 - k];
			return true;
		}
	}
	return false;
}

bool m_near(double x, double want, double rtol)
{
	return fabs(x - want) <= rtol * fabs(want);
}

/* ---- polynomials ---------------------------------------------------------- */

static bool poly_at(const Graph *g, ValId v, ValId x, Match *m, double *c, int depth);

/* a * b into c (degree at most M_POLY_DEG) */
static bool poly_mul(const double *a, const double *b, double *c)
{
	double r[M_POLY_DEG + 1] = {0};
	for (int i = 0; i <= M_POLY_DEG; i++)
		for (int j = 0; j <= M_POLY_DEG; j++) {
			if (a[i] == 0 || b[j] == 0)
				continue;
			if (i + j > M_POLY_DEG)
				return false;
			r[i + j] += a[i] * b[j];
		}
	memcpy(c, r, sizeof r);
	return true;
}

static bool poly_node(const Graph *g, NodeId d, ValId x, Match *m, double *c, int depth)
{
	const Node *nd = IR_NODE(g, d);
	double a[M_POLY_DEG + 1], b[M_POLY_DEG + 1], k;
	ValId u;
	m_add(m, d);
	switch (nd->op) {
	case OP_Add: case OP_Sub:
		if (!poly_at(g, nd->in[0], x, m, a, depth + 1) || !poly_at(g, nd->in[1], x, m, b, depth + 1))
			return false;
		for (int i = 0; i <= M_POLY_DEG; i++)
			c[i] = nd->op == OP_Add ? a[i] + b[i] : a[i] - b[i];
		return true;
	case OP_Mul:
		if (!poly_at(g, nd->in[0], x, m, a, depth + 1) || !poly_at(g, nd->in[1], x, m, b, depth + 1))
			return false;
		if (!poly_mul(a, b, c))
			return m_fail(g, m, d, "the product has a degree over %d in x", M_POLY_DEG);
		return true;
	case OP_Div:
		if (!m_split_const(g, d, false, &u, &k) || k == 0)
			return m_fail(g, m, d, "Div by something other than a nonzero constant");
		if (!poly_at(g, u, x, m, c, depth + 1))
			return false;
		for (int i = 0; i <= M_POLY_DEG; i++)
			c[i] /= k;
		return true;
	case OP_Neg:
		if (!poly_at(g, nd->in[0], x, m, c, depth + 1))
			return false;
		for (int i = 0; i <= M_POLY_DEG; i++)
			c[i] = -c[i];
		return true;
	case OP_Pow:
		if (!m_const_scalar(g, nd->in[1], &k) || (k != 1 && k != 2 && k != 3))
			return m_fail(g, m, d, "Pow with an exponent other than a constant 1, 2 or 3");
		if (!poly_at(g, nd->in[0], x, m, a, depth + 1))
			return false;
		memcpy(c, a, sizeof a);
		for (int e = 1; e < (int)k; e++)
			if (!poly_mul(c, a, c))
				return m_fail(g, m, d, "the power has a degree over %d in x", M_POLY_DEG);
		return true;
	default:
		return m_fail(g, m, d, "%s is not a polynomial step (Add, Sub, Mul, Div by a constant, "
		              "Neg, Pow 2 or 3)", ir_opname(nd->op));
	}
}

static bool poly_at(const Graph *g, ValId v, ValId x, Match *m, double *c, int depth)
{
	double k;
	memset(c, 0, sizeof(double) * (M_POLY_DEG + 1));
	if (depth > 16)
		return m_fail(g, m, m->root, "polynomial in x nested deeper than 16 nodes");
	if (m_unwrap(g, v, NULL) == x) {   /* x's own wrappers are not the match's */
		c[1] = 1;
		return true;
	}
	v = m_unwrap(g, v, m);
	if (m_const_scalar(g, v, &k)) {
		c[0] = k;
		return true;
	}
	NodeId d = m_def(g, v, OP_COUNT);
	if (d < 0)
		return m_fail(g, m, m->root, "'%s' is neither x ('%s') nor a constant scalar nor computed from x",
		              IR_VAL(g, v)->name, IR_VAL(g, x)->name);
	if (m_nuses(g, v) != 1)
		return m_fail(g, m, d, "its result '%s' has other users", IR_VAL(g, v)->name);
	return poly_node(g, d, x, m, c, depth);
}

bool m_poly(const Graph *g, ValId v, ValId x, Match *m, double *c)
{
	return poly_at(g, v, m_unwrap(g, x, NULL), m, c, 0);
}
