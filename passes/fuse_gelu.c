/* Pass `fuse-gelu`: GELU in the forms the exporters write.
 *
 * Pattern `gelu` (root: the last Mul, or the Gelu op):
 *   erf form:   0.5 * x * (1 + Erf(x / sqrt(2)))     (x / 1.41421 or x * 0.70711;
 *               the three factors multiplied in any grouping and order)
 *   tanh form:  0.5 * x * (1 + Tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))
 *               (x^3 as Pow(x, 3) or x*x*x), or with the argument factored
 *               as sqrt(2/pi) * x * (1 + 0.044715 * x * x) (no cube)
 *   Gelu(x, approximate = none | tanh)
 *   -> KlnGelu(x) {approximate: 0 erf, 1 tanh}
 *
 * requires: nothing (constants are compared with a relative tolerance of 1e-5).
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <math.h>
#include <string.h>

#include "pass_internal.h"

static bool near(double x, double want)
{
	return fabs(x - want) <= 1e-5 * fabs(want);
}

/* Leaves of the product tree under Mul node n: inner Muls with a single use
 * are descended into (and recorded in m).  Returns the leaf count or -1. */
static int mul_leaves(const Graph *g, NodeId n, Match *m, ValId *leaves, int max, int cnt)
{
	const Node *nd = IR_NODE(g, n);
	m_add(m, n);
	for (int k = 0; k < 2; k++) {
		ValId v = nd->in[k];
		NodeId d = m_def(g, v, OP_Mul);
		if (d >= 0 && m_nuses(g, v) == 1) {
			cnt = mul_leaves(g, d, m, leaves, max, cnt);
			if (cnt < 0)
				return -1;
		} else {
			if (cnt >= max)
				return -1;
			leaves[cnt++] = v;
		}
	}
	return cnt;
}

/* v = Add(f, 1) with f = fn(arg): returns the node producing f, else -1. */
static NodeId one_plus(const Graph *g, ValId v, Op fn, Match *m)
{
	NodeId add = m_def(g, v, OP_Add);
	if (add < 0)
		return -1;
	const Node *a = IR_NODE(g, add);
	for (int k = 0; k < 2; k++) {
		double one;
		NodeId f = m_def(g, a->in[k], fn);
		if (f >= 0 && m_const_scalar(g, a->in[1 - k], &one) && one == 1.0) {
			m_add(m, add);
			m_add(m, f);
			return f;
		}
	}
	return -1;
}

/* Binary op node n is (x op c) with c a constant scalar; x into *x. */
static bool bin_const(const Graph *g, NodeId n, bool commutes, ValId *x, double *c)
{
	const Node *nd = IR_NODE(g, n);
	if (m_const_scalar(g, nd->in[1], c)) {
		*x = nd->in[0];
		return true;
	}
	if (commutes && m_const_scalar(g, nd->in[0], c)) {
		*x = nd->in[1];
		return true;
	}
	return false;
}

/* Erf argument: x / sqrt2 or x * (1/sqrt2). */
static bool erf_arg(const Graph *g, ValId z, ValId *x, Match *m)
{
	double c;
	NodeId d = m_def(g, z, OP_Div);
	if (d >= 0 && bin_const(g, d, false, x, &c) && near(c, M_SQRT2)) {
		m_add(m, d);
		return true;
	}
	d = m_def(g, z, OP_Mul);
	if (d >= 0 && bin_const(g, d, true, x, &c) && near(c, M_SQRT1_2)) {
		m_add(m, d);
		return true;
	}
	return false;
}

/* v == x^3 as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x). */
static bool cube_of(const Graph *g, ValId v, ValId x, Match *m)
{
	double c;
	NodeId p = m_def(g, v, OP_Pow);
	if (p >= 0) {
		if (IR_NODE(g, p)->in[0] != x || !m_const_scalar(g, IR_NODE(g, p)->in[1], &c) || c != 3.0)
			return false;
		m_add(m, p);
		return true;
	}
	p = m_def(g, v, OP_Mul);
	if (p < 0)
		return false;
	ValId sq = m_other(g, p, x);
	NodeId s = m_def(g, sq, OP_Mul);
	if (sq < 0 || s < 0 || IR_NODE(g, s)->in[0] != x || IR_NODE(g, s)->in[1] != x)
		return false;
	m_add(m, p);
	m_add(m, s);
	return true;
}

/* Splits the leaves of a Mul tree into the product of its constant scalars
 * (*c) and the rest; returns how many are not constant (at most max). */
static int split_leaves(const Graph *g, const ValId *leaves, int n, double *c, ValId *rest, int max)
{
	int nrest = 0;
	*c = 1;
	for (int k = 0; k < n; k++) {
		double v;
		if (m_const_scalar(g, leaves[k], &v))
			*c *= v;
		else if (nrest < max)
			rest[nrest++] = leaves[k];
		else
			return max + 1;
	}
	return nrest;
}

/* v == 1 + 0.044715 * x * x (the factors in any grouping), x given. */
static bool one_plus_kxx(const Graph *g, ValId v, ValId x, Match *m)
{
	NodeId add = m_def(g, v, OP_Add);
	if (add < 0)
		return false;
	const Node *a = IR_NODE(g, add);
	int save = m->nnodes;
	for (int k = 0; k < 2; k++) {
		double one, c;
		ValId leaves[4], rest[2];
		m->nnodes = save;
		NodeId mul = m_def(g, a->in[1 - k], OP_Mul);
		if (!m_const_scalar(g, a->in[k], &one) || one != 1.0 || mul < 0 ||
		    m_nuses(g, a->in[1 - k]) != 1)
			continue;
		m_add(m, add);
		int n = mul_leaves(g, mul, m, leaves, 4, 0);
		if (n < 0 || split_leaves(g, leaves, n, &c, rest, 2) != 2 || !near(c, 0.044715) ||
		    rest[0] != x || rest[1] != x)
			continue;
		return true;
	}
	m->nnodes = save;
	return false;
}

/* Tanh argument, factored: sqrt(2/pi) * x * (1 + 0.044715 * x * x) (the
 * form some exporters write without a cube), factors in any grouping. */
static bool tanh_arg_factored(const Graph *g, ValId z, ValId *x, Match *m)
{
	NodeId mul = m_def(g, z, OP_Mul);
	if (mul < 0)
		return false;
	int save = m->nnodes;
	ValId leaves[4], rest[2];
	double c;
	int n = mul_leaves(g, mul, m, leaves, 4, 0);
	if (n < 0 || split_leaves(g, leaves, n, &c, rest, 2) != 2 || !near(c, sqrt(2.0 / M_PI))) {
		m->nnodes = save;
		return false;
	}
	int after = m->nnodes;
	for (int k = 0; k < 2; k++) {
		m->nnodes = after;
		if (one_plus_kxx(g, rest[1 - k], rest[k], m)) {
			*x = rest[k];
			return true;
		}
	}
	m->nnodes = save;
	return false;
}

/* Tanh argument: sqrt(2/pi) * (x + 0.044715 * x^3). */
static bool tanh_arg_cubic(const Graph *g, ValId z, ValId *x, Match *m)
{
	double c;
	ValId u, cube;
	NodeId mul = m_def(g, z, OP_Mul);
	if (mul < 0 || !bin_const(g, mul, true, &u, &c) || !near(c, sqrt(2.0 / M_PI)))
		return false;
	NodeId add = m_def(g, u, OP_Add);
	if (add < 0)
		return false;
	const Node *a = IR_NODE(g, add);
	int save = m->nnodes;
	for (int k = 0; k < 2; k++) {
		m->nnodes = save;
		NodeId cm = m_def(g, a->in[1 - k], OP_Mul);
		if (cm < 0 || !bin_const(g, cm, true, &cube, &c) || !near(c, 0.044715))
			continue;
		if (!cube_of(g, cube, a->in[k], m))
			continue;
		*x = a->in[k];
		m_add(m, mul);
		m_add(m, add);
		m_add(m, cm);
		return true;
	}
	return false;
}

/* Tanh argument: sqrt(2/pi) * (x + 0.044715 * x^3), or factored as above. */
static bool tanh_arg(const Graph *g, ValId z, ValId *x, Match *m)
{
	if (tanh_arg_factored(g, z, x, m))
		return true;
	return tanh_arg_cubic(g, z, x, m);
}

static bool match_gelu_expr(const Graph *g, NodeId root, Match *m)
{
	ValId leaves[4];
	int n = mul_leaves(g, root, m, leaves, 4, 0);
	if (n < 2)
		return false;
	double half = 1;
	ValId rest[4];
	int nrest = 0;
	for (int k = 0; k < n; k++) {
		double c;
		if (m_const_scalar(g, leaves[k], &c))
			half *= c;
		else
			rest[nrest++] = leaves[k];
	}
	if (nrest != 2 || !near(half, 0.5))
		return false;
	int save = m->nnodes;
	for (int k = 0; k < 2; k++) {
		ValId x = -1;
		int approx;
		/* failed attempts must not leave nodes in the match */
		m->nnodes = save;
		NodeId f = one_plus(g, rest[k], OP_Erf, m);
		if (f >= 0 && erf_arg(g, IR_NODE(g, f)->in[0], &x, m)) {
			approx = 0;
		} else if ((m->nnodes = save, f = one_plus(g, rest[k], OP_Tanh, m)) >= 0 &&
		           tanh_arg(g, IR_NODE(g, f)->in[0], &x, m)) {
			approx = 1;
		} else {
			continue;
		}
		if (x != rest[1 - k] || IR_VAL(g, x)->dtype != DT_F32)
			return false;
		if (!m_closed(g, m, IR_NODE(g, root)->out[0]))
			return false;
		m->v[0] = x;
		m->v[1] = IR_NODE(g, root)->out[0];
		m->i[0] = approx;
		return true;
	}
	return false;
}

static bool match_gelu_op(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	const char *a = ir_attr_str(g, root, "approximate", "none");
	if (IR_VAL(g, n->in[0])->dtype != DT_F32 || (strcmp(a, "none") && strcmp(a, "tanh")))
		return false;
	m_add(m, root);
	m->v[0] = n->in[0];
	m->v[1] = n->out[0];
	m->i[0] = !strcmp(a, "tanh");
	return true;
}

static void rewrite_gelu(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	NodeId n = rw_replace(g, OP_KlnGelu, IR_NODE(g, m->root)->name, 1, &m->v[0], m->v[1]);
	ir_attr_set_int(g, n, "approximate", m->i[0]);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	{"gelu", OP_Mul, match_gelu_expr, rewrite_gelu},
	{"gelu", OP_Gelu, match_gelu_op, rewrite_gelu},
};

void pass_fuse_gelu(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
