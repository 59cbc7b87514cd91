/* Pass `fuse-gelu`: GELU in the forms the exporters write.
 *
 * Pattern `gelu` (root: the last Mul, or the Gelu op):
 *   erf form:     0.5 * x * (1 + Erf(z)),  z = x / sqrt(2)
 *   tanh form:    0.5 * x * (1 + Tanh(z)), z = sqrt(2/pi) * (x + 0.044715 * x^3)
 *   sigmoid form: x * Sigmoid(2 * z) with the tanh form's z (0.5 * (1 + tanh(z))
 *                 is sigmoid(2z))
 *   Gelu(x, approximate = none | tanh)
 *   -> KlnGelu(x) {approximate: 0 erf, 1 tanh}
 * Pattern `quick_gelu` (root: the Mul):
 *   x * Sigmoid(1.702 * x)  -> KlnGelu(x) {approximate = 2}
 * The outer product is a tree of Muls (any grouping and order; its constants
 * multiplied together), the 1 + f addition in either order, and z is
 * compared by what it computes, as a polynomial in x (m_poly): x * 0.70711,
 * x / 1.41421, the cube as Pow(x, 3) or x*x*x, the argument factored as
 * sqrt(2/pi) * x * (1 + 0.044715 * x * x), ... all match.  No-op Identity,
 * Cast and Reshape nodes on the way are skipped (m_unwrap).
 *
 * requires: nothing (constants are compared with a relative tolerance of 1e-5).
 * preserves: shapes, graph output names.
 * breaks: nothing. */
#include <math.h>
#include <string.h>

#include "pass_internal.h"

#define TOL 1e-5
#define QUICK 1.702

/* gelu, quick_gelu: y = GELU(x) */
typedef struct GeluMatch {
	Match m;
	ValId x;        /* the GELU's input */
	ValId y;        /* its result, taken over by the KlnGelu */
	int approx;     /* KlnGelu approximate: 0 erf, 1 tanh, 2 quick */
} GeluMatch;

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

/* What a GELU factor other than x is. */
enum { F_NONE, F_ERF, F_TANH, F_SIGMOID };

/* v is 1 + Erf(z) or 1 + Tanh(z) (either order), or Sigmoid(z): the kind,
 * *fn the Erf/Tanh/Sigmoid node.  Nothing is added to m. */
static int gelu_factor(const Graph *g, ValId v, NodeId *fn)
{
	NodeId d = m_def_u(g, v, OP_Sigmoid, NULL);
	if (d >= 0) {
		*fn = d;
		return F_SIGMOID;
	}
	NodeId add = m_def_u(g, v, OP_Add, NULL);
	if (add < 0)
		return F_NONE;
	const Node *a = IR_NODE(g, add);
	for (int k = 0; k < 2; k++) {
		double one;
		if (!m_const_scalar(g, a->in[1 - k], &one) || one != 1.0)
			continue;
		if ((d = m_def_u(g, a->in[k], OP_Erf, NULL)) >= 0) {
			*fn = d;
			return F_ERF;
		}
		if ((d = m_def_u(g, a->in[k], OP_Tanh, NULL)) >= 0) {
			*fn = d;
			return F_TANH;
		}
	}
	return F_NONE;
}

static const char *const kind_name[] = {"", "1 + Erf", "1 + Tanh", "Sigmoid"};

/* The factor v (kind, function node fn) around x, with the product's
 * constant c: checks c and z = fn's input; the approximate value or -1. */
static int check_factor(const Graph *g, Match *m, ValId v, int kind, NodeId fn, ValId x, double c,
                        bool quick)
{
	const double s = sqrt(2.0 / M_PI), k3 = 0.044715;
	double p[M_POLY_DEG + 1];
	/* the nodes from v to fn (wrappers, the Add) are the match's */
	if (kind == F_SIGMOID) {
		m_unwrap(g, v, m);
	} else {
		NodeId add = m_def_u(g, v, OP_Add, m);
		m_add(m, add);
		for (int k = 0; k < 2; k++)
			m_unwrap(g, IR_NODE(g, add)->in[k], m);
	}
	m_add(m, fn);
	if (quick && kind != F_SIGMOID)
		return m_fail(g, m, fn, "QuickGELU is x * Sigmoid(1.702 * x), found x * (%s)",
		              kind_name[kind]), -1;
	double want_c = kind == F_SIGMOID ? 1.0 : 0.5;
	if (!m_near(c, want_c, TOL))
		return m_fail(g, m, m->root, "the constant factors multiply to %.9g, the %s form needs %g",
		              c, kind_name[kind], want_c), -1;
	if (!m_poly(g, IR_NODE(g, fn)->in[0], x, m, p))
		return -1;
	if (kind == F_ERF) {
		if (p[0] == 0 && m_near(p[1], M_SQRT1_2, TOL) && p[2] == 0 && p[3] == 0)
			return 0;
		return m_fail(g, m, fn, "Erf's argument is %.9g*x + %.9g*x^3 (+ %.9g*x^2 + %.9g), "
		              "GELU needs x/sqrt(2) = 0.707107*x", p[1], p[3], p[2], p[0]), -1;
	}
	double f = kind == F_SIGMOID ? 2.0 : 1.0;   /* sigmoid(2z) == (1 + tanh(z)) / 2 */
	if (p[0] == 0 && p[2] == 0 && m_near(p[1], f * s, TOL) && m_near(p[3], f * s * k3, TOL))
		return quick ? (m_fail(g, m, fn, "this is the tanh GELU in sigmoid form (pattern gelu)"), -1) : 1;
	if (kind == F_SIGMOID && p[0] == 0 && p[2] == 0 && p[3] == 0 && m_near(p[1], QUICK, TOL))
		return quick ? 2 : (m_fail(g, m, fn, "x * Sigmoid(1.702 * x) is QuickGELU (pattern quick_gelu)"), -1);
	if (quick)
		return m_fail(g, m, fn, "Sigmoid's argument is %.9g*x + %.9g*x^3 (+ %.9g*x^2 + %.9g), "
		              "QuickGELU needs 1.702*x", p[1], p[3], p[2], p[0]), -1;
	return m_fail(g, m, fn, "%s's argument is %.9g*x + %.9g*x^3 (+ %.9g*x^2 + %.9g), the tanh "
	              "GELU needs %.9g*x + %.9g*x^3", kind == F_SIGMOID ? "Sigmoid" : "Tanh", p[1], p[3],
	              p[2], p[0], f * s, f * s * k3), -1;
}

static bool match_mul_gelu(const Graph *g, NodeId root, Match *m, bool quick)
{
	ValId leaves[4], rest[4];
	int n = mul_leaves(g, root, m, leaves, 4, 0), nrest = 0;
	if (n < 0)
		return m_fail(g, m, root, "a product of more than 4 factors");
	double c = 1;
	for (int k = 0; k < n; k++) {
		double v;
		if (m_const_scalar(g, leaves[k], &v))
			c *= v;
		else
			rest[nrest++] = leaves[k];
	}
	if (nrest != 2)
		return m_fail(g, m, root, "%s is x times one other factor (and constants); "
		              "this product has %d factors that are not constants",
		              quick ? "QuickGELU" : "a GELU", nrest);
	int save = m->nnodes;
	for (int k = 0; k < 2; k++) {
		NodeId fn;
		int kind = gelu_factor(g, rest[1 - k], &fn);
		if (kind == F_NONE)
			continue;
		m->nnodes = save;
		ValId x = m_unwrap(g, rest[k], NULL);
		int approx = check_factor(g, m, rest[1 - k], kind, fn, x, c, quick);
		if (approx < 0)
			continue;    /* the reason is recorded; the other order may match */
		if (IR_VAL(g, x)->dtype != DT_F32)
			return m_fail(g, m, root, "x '%s' is %s, KlnGelu runs on f32", IR_VAL(g, x)->name,
			              ir_dtype_name(IR_VAL(g, x)->dtype));
		if (!m_closed(g, m, IR_NODE(g, root)->out[0]))
			return m_fail(g, m, root, "a value inside the GELU is used outside it");
		GeluMatch *gm = M_AS(GeluMatch, m);
		gm->x = x;
		gm->y = IR_NODE(g, root)->out[0];
		gm->approx = approx;
		return true;
	}
	return m_fail(g, m, root, quick ? "no factor is Sigmoid(..)" :
	              "no factor is 1 + Erf(..), 1 + Tanh(..) or Sigmoid(..)");
}

static bool match_gelu_expr(const Graph *g, NodeId root, Match *m)
{
	return match_mul_gelu(g, root, m, false);
}

static bool match_quick_gelu(const Graph *g, NodeId root, Match *m)
{
	return match_mul_gelu(g, root, m, true);
}

static bool match_gelu_op(const Graph *g, NodeId root, Match *m)
{
	const Node *n = IR_NODE(g, root);
	const char *a = ir_attr_str(g, root, "approximate", "none");
	if (IR_VAL(g, n->in[0])->dtype != DT_F32)
		return m_fail(g, m, root, "input is %s, KlnGelu runs on f32",
		              ir_dtype_name(IR_VAL(g, n->in[0])->dtype));
	if (strcmp(a, "none") && strcmp(a, "tanh"))
		return m_fail(g, m, root, "approximate is '%s', not none or tanh", a);
	m_add(m, root);
	GeluMatch *gm = M_AS(GeluMatch, m);
	gm->x = n->in[0];
	gm->y = n->out[0];
	gm->approx = !strcmp(a, "tanh");
	return true;
}

static void rewrite_gelu(Graph *g, const Match *m, PassCtx *pc)
{
	(void)pc;
	const GeluMatch *gm = M_AS_CONST(GeluMatch, m);
	NodeId n = rw_replace(g, OP_KlnGelu, IR_NODE(g, m->root)->name, 1, &gm->x, gm->y);
	ir_attr_set_int(g, n, "approximate", gm->approx);
	rw_erase_match(g, m);
}

static const Pattern patterns[] = {
	PATTERN_ROW("gelu", OP_Mul, GeluMatch, match_gelu_expr, rewrite_gelu),
	PATTERN_ROW("gelu", OP_Gelu, GeluMatch, match_gelu_op, rewrite_gelu),
	PATTERN_ROW("quick_gelu", OP_Mul, GeluMatch, match_quick_gelu, rewrite_gelu),
};

void pass_fuse_gelu(Graph *g, PassCtx *pc)
{
	fuse_run(g, pc, patterns, (int)(sizeof patterns / sizeof patterns[0]));
}
